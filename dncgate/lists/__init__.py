"""The data room: list file formats, loading, and the set encodings the stores use."""
