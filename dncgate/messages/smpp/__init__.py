"""SMPP: the proxy between bulk senders (ESMEs) and the carrier's SMSC that checks every submit."""
