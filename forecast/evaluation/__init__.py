"""Evaluation: skill metrics, baselines comparison and plots."""
