"""The choices of the training and search keys, defined once: the schema checks configs against them and
the code that acts on a choice reads them from here (``rnnbench.training``, ``rnnbench.search``). Choices
of the lower layers (cells, tasks, ``cell.impl``, ``model.init``, ``model.initial_state``) live with their
code, and the schema reads them there."""

OPTIMIZERS = ("sgd", "adam", "rmsprop")  # rnnbench.training.optim
SCHEDULES = ("constant", "zaremba", "halving")  # rnnbench.training.schedules
LOSS_OVER_TIME = ("mean", "sum")  # rnnbench.training.trainer.training_loss
AMP = (None, "bf16", "fp16")  # CUDA autocast dtypes
RESUME = ("auto", "never")
TEST_WEIGHTS = ("best", "last")  # rnnbench.training.trainer.Trainer.finish
SAMPLERS = ("random", "tpe", "cmaes", "gp")  # rnnbench.search.study.make_sampler
PRUNERS = ("none", "median", "hyperband")  # rnnbench.search.study.make_pruner
LAUNCHERS = ("local", "slurm")  # rnnbench.search.launch | rnnbench.search.slurm
