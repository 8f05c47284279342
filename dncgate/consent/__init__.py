"""The consent ledger: evidence, append-only history, current state, export and retention."""
