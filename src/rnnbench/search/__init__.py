"""Hyperparameter studies on Optuna: ``python -m rnnbench.search`` (docs/search.md)."""
