"""``python -m rnnbench [group=choice ...] [key=value ...]``: compose the configs and train one run.

Hydra composes ``configs/config.yaml`` with the chosen groups; ``--help`` lists them, ``-m`` sweeps.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rnnbench.cli_checks import check_group_choices, check_keys
from rnnbench.errors import ConfigError

# Names a run directory after its overrides; a run without overrides is "default".
OmegaConf.register_new_resolver("run_name", lambda overrides: overrides or "default", replace=True)


@hydra.main(version_base="1.3", config_path="pkg://rnnbench.configs", config_name="config")
def hydra_main(cfg: DictConfig):
    from rnnbench.trainer import train  # imported here so that --help answers quickly

    try:
        summary = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    except ConfigError as error:
        print(f"rnnbench: error: {error}", file=sys.stderr)
        sys.exit(2)
    if summary["status"] == "interrupted":  # a scheduler sees the run did not finish
        sys.exit(128 + getattr(signal.Signals, summary["stop_reason"], signal.SIGTERM).value)
    return summary["best"].get(summary["headline"])  # the value a sweep optimises


def main() -> None:
    try:
        check_group_choices(sys.argv[1:])
        check_keys(sys.argv[1:])
    except ConfigError as error:
        print(f"rnnbench: error: {error}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
