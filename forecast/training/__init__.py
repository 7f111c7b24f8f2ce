"""Training: the Lightning module, callbacks and experiment tracking."""
