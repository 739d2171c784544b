"""Copy (Jozefowicz et al.'s memorisation filter): read ``length`` symbols, a delimiter, then emit them.

An example over 26 letters, with its answer::

    qhcxa|qhcxa

Symbols are drawn uniformly and independently from the first ``num_symbols`` lowercase letters. The
paper screens architectures with this task: a cell passes when it reproduces 95% of the symbols.

Metrics (``rnnbench.tasks.prompt_answer``): ``acc``, per-symbol accuracy on the answer under teacher
forcing (the headline); ``exact``, whole answers right under greedy decoding; ``loss``; and ``pass``,
1.0 when ``acc`` >= 0.95, else 0.0.
"""

from __future__ import annotations

import string

from rnnbench.errors import ConfigError, check_positive
from rnnbench.tasks.prompt_answer import PAD, PromptAnswerTask

DELIMITER = "|"
PASS_ACC = 0.95  # Jozefowicz et al.: a cell "passes" the memorisation task at 95% accuracy


class CopyTask(PromptAnswerTask):
    name = "copy"

    def __init__(
        self,
        seed: int,
        length: int = 5,
        num_symbols: int = 26,
        batch_size: int = 32,
        batches_per_epoch: int = 100,
        eval_size: int = 1000,
        eval_seed: int = 1234,
    ):
        check_positive("task.length", length, integer=True)
        if not 2 <= num_symbols <= 26:
            raise ConfigError(f"task.num_symbols={num_symbols!r} is not valid; it must be in 2..26")
        self.length = length
        self.symbols = string.ascii_lowercase[:num_symbols]
        self.alphabet = PAD + self.symbols + DELIMITER
        super().__init__(seed, batch_size, batches_per_epoch, eval_size, eval_seed)

    def make_example(self, rng):
        word = "".join(rng.choice(list(self.symbols), size=self.length))
        return word + DELIMITER, word

    def derived(self, means):
        return {"pass": float(means["acc"] >= PASS_ACC)}
