"""Population training: K runs of one cell trained at once as one batched model (``trainer.population=K``,
``search.population=K``). It wraps the layers and trainers of the core; nothing in the core knows of it.

``train``: the population's loop, its members (one ``Trainer`` each) and their checkpoints in rounds;
``member_layer``: the template's recurrent layers, run for all members under vmap; ``member_steps``: the
step loop of all members at once; ``lstm_members``: the LSTM family's fused kernel for all members;
``stacked_optim``: every member's own optimiser values; ``padding``: members of other hidden sizes.
"""

from rnnbench.population.train import (
    PADDABLE,
    Member,
    Population,
    check_compatible,
    member_configs,
    train_population,
)

__all__ = ["PADDABLE", "Member", "Population", "check_compatible", "member_configs", "train_population"]
