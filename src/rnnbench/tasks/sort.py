"""Sort (encoder-decoder in one stream): read numbers, a delimiter, then emit the numbers sorted.

An example with 10 values (each number is one token), with its answer::

    7 2 9 2 | 2 2 7 9

The length is drawn uniformly from [min_length, max_length]; the numbers uniformly and independently
from 0..num_values-1, so repeats occur. The answer has as many tokens as the input, so it needs no end
symbol. Metrics (``rnnbench.tasks.prompt_answer``): ``acc``, per-token accuracy on the answer under
teacher forcing (the headline); ``exact``, whole answers right under greedy decoding; ``loss``.
"""

from __future__ import annotations

from rnnbench.errors import ConfigError, check_positive
from rnnbench.tasks.prompt_answer import PAD, PromptAnswerTask

DELIMITER = "|"


class SortTask(PromptAnswerTask):
    name = "sort"

    def __init__(
        self,
        seed: int,
        num_values: int = 10,
        min_length: int = 2,
        max_length: int = 10,
        batch_size: int = 32,
        batches_per_epoch: int = 100,
        eval_size: int = 1000,
        eval_seed: int = 1234,
    ):
        check_positive("task.num_values", num_values, integer=True)
        check_positive("task.min_length", min_length, integer=True)
        if max_length < min_length:
            raise ConfigError(f"task.max_length={max_length} is below task.min_length={min_length}")
        self.num_values, self.lengths = num_values, (min_length, max_length)
        self.alphabet = [PAD, *map(str, range(num_values)), DELIMITER]
        super().__init__(seed, batch_size, batches_per_epoch, eval_size, eval_seed)

    def make_example(self, rng):
        n = rng.integers(self.lengths[0], self.lengths[1] + 1)
        values = rng.integers(0, self.num_values, size=n)
        return [*map(str, values), DELIMITER], [str(v) for v in sorted(values)]
