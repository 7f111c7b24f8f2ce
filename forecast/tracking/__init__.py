"""Experiment tracking in MLflow: a logger that survives server outages, plots, the packaged model, the registry."""
