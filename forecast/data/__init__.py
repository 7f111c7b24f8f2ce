"""Data pipeline: raw CF sources, checks, the analysis-ready store, windows and loaders."""
