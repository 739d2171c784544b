"""``python -m rnnbench.sample run_dir=<dir> length=200 temperature=0.8 seed=1``: text from a trained model.

Rebuilds the task and the model of a run from ``<run_dir>/config.yaml`` and ``<run_dir>/model.pt`` (the
best weights) and prints ``length`` tokens drawn one at a time, each fed back as the next input.
``temperature`` divides the logits before the softmax (0 = greedy argmax; else a finite number > 0);
``seed`` fixes the draws. ``data_dir=`` names the data folder when it is not the run's (files moved).

Any token-level language-model task works: ``input_kind`` "tokens", input and output over the same
vocabulary, and a method ``decode(ids) -> str`` that joins the tokens' text with the task's
``separator`` ("" for characters, " " for words). The first input is the task's ``start_id`` (e.g. the
end-of-line token) when it has one, else token 0; it is not printed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from rnnbench.errors import ConfigError, check_positive
from rnnbench.model.network import build_model
from rnnbench.tasks import build_task
from rnnbench.training.runfiles import RunFiles

DEFAULTS = {"run_dir": None, "length": 200, "temperature": 1.0, "seed": 1, "data_dir": None}


def parse_args(argv: list[str]) -> dict:
    args = dict(DEFAULTS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in DEFAULTS:
            raise ConfigError(
                f"argument {arg!r} is not valid; use key=value with keys: {', '.join(DEFAULTS)}"
            )
        args[key] = value
    if args["run_dir"] is None:
        raise ConfigError("run_dir is missing; usage: python -m rnnbench.sample run_dir=<dir> [length=200]")
    try:
        args["length"], args["seed"] = int(args["length"]), int(args["seed"])
        args["temperature"] = float(args["temperature"])
    except ValueError as error:
        raise ConfigError(
            f"length, seed (integers) and temperature (a number) are not valid: {error}"
        ) from None
    check_positive("length", args["length"])
    temperature = args["temperature"]
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ConfigError(
            f"temperature={temperature!r} is not valid; it must be 0 (greedy) or a finite number > 0"
        )
    return args


def load_run(run_dir: str | Path, data_dir: str | None = None):
    """The task and the model (best weights, on the CPU, in eval mode) of a finished run; ``data_dir``
    (default: the run's own) is where a task that reads files finds them."""
    run_dir = Path(run_dir)
    config, weights = run_dir / "config.yaml", run_dir / "model.pt"
    for path in (config, weights):
        if not path.is_file():
            raise ConfigError(
                f"run_dir={str(run_dir)!r} is not valid; it has no {path.name} (a finished run has)"
            )
    cfg = OmegaConf.load(config)
    task = build_task(cfg.task, cfg.seed, data_dir or cfg.get("data_dir"))
    if task.input_kind != "tokens" or task.input_size != task.output_size or not hasattr(task, "decode"):
        raise ConfigError(f"task={task.name!r} is not a token language model; sampling needs one (e.g. xml)")
    model = build_model(cfg, task)
    try:
        model.load_state_dict(RunFiles(run_dir).load_model())
    except RuntimeError as error:  # weights of another config
        raise ConfigError(f"{weights} does not match {config} ({str(error).splitlines()[0][:160]})") from None
    return task, model.eval()


@torch.no_grad()
def sample(model, start_id: int, length: int, temperature: float, seed: int) -> list[int]:
    """``length`` token ids, each drawn from the model given all before it."""
    generator = torch.Generator().manual_seed(seed)
    token, state, out = torch.tensor([[start_id]]), None, []  # (T=1, B=1)
    for _ in range(length):
        logits, state = model(token, state)
        if temperature == 0:
            next_id = int(logits[0, 0].argmax())
        else:
            # float64 and shifted so the largest logit is 0: a tiny temperature gives 0 and -inf
            # (greedy), never inf - inf or 0 / 0 (NaN).
            row = logits[0, 0].double()
            scaled = (row - row.max()) / temperature
            probs = torch.softmax(scaled, dim=-1)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        out.append(next_id)
        token = torch.tensor([[next_id]])
    return out


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        task, model = load_run(args["run_dir"], args["data_dir"])
    except ConfigError as error:
        print(f"rnnbench.sample: error: {error}", file=sys.stderr)
        sys.exit(2)
    ids = sample(model, getattr(task, "start_id", 0), args["length"], args["temperature"], args["seed"])
    print(task.decode(ids))


if __name__ == "__main__":
    main()
