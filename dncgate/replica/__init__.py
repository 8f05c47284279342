"""The in-process replica of the lists (issue 14): compact, memory-mapped list files (``compact``)."""
