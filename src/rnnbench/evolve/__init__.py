"""Jozefowicz et al.'s architecture search: ``python -m rnnbench.evolve`` (docs/evolve.md).

A list of the best architectures, started from built-in cells written as genomes
(``rnnbench.cells.genome``); each step either re-evaluates a listed architecture on new hyperparameter
draws or mutates one and evaluates the mutant in stages (``controller``). Every evaluation is a study of
``rnnbench.search`` (``stages``): the same storage, workers, launchers and kill-safety. The controller's
choices depend only on its seed and on the trials' results, so a search that is stopped or killed and
run again replays what it decided, reads the results it already has, and trains only what is new
(``record`` writes what it decided, for the report).
"""
