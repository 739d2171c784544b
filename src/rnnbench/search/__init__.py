"""Hyperparameter studies on Optuna: ``python -m rnnbench.search`` (README, "Search")."""
