"""The reliability suite: real processes, real kills, real damage (all marked slow)."""
