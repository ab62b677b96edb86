"""GPU runs of the training stages on random-initialised real-size models (see README.md)."""
