"""Clean-photo corpus and training data."""
