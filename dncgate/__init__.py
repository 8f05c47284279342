"""dncgate: a do-not-call gate that lives inside the telephone switch."""

__version__ = "0.1.0"
