"""The HTTP API (``/v1``): consent ledger, subscriber self-service, decisions without a call."""
