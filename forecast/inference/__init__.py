"""Inference: batch forecasts written as CF files."""
