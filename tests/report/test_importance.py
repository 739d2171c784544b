"""fANOVA shares are variances over the distribution the search drew from."""

import numpy as np
import pandas as pd

from rnnbench.report.importance import fanova


def test_a_log_drawn_hyperparameter_is_weighted_by_its_decades():
    # The test value jumps by 10 below lr 1e-4 (half of a log-uniform draw in [1e-6, 1e-2]) and rises
    # by 5 across the input noise. Over the log-uniform measure the jump's variance is 25 against the
    # noise's 2.1; integrated uniformly on a linear lr axis, the jump would cover 1% of it (variance
    # ~1) and the noise would come out first.
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-6, -2, 80)
    noise = rng.uniform(0, 1, 80)
    frame = pd.DataFrame(
        {
            "task": "jsb",
            "cell": "greff_v",
            "state": "complete",
            "params": [{"trainer.lr": a, "model.input_noise_std": b} for a, b in zip(lr, noise)],
            "test": 10.0 * (lr < 1e-4) + 5.0 * noise,
        }
    )
    shares = fanova(frame, {"trainer.lr": "log", "model.input_noise_std": "linear"})
    share = dict(zip(shares["param"], shares["importance"]))
    assert share["trainer.lr"] > 0.7
    assert share["model.input_noise_std"] < 0.2
