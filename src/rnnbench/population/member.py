"""One run of a population and its checkpoints, saved in rounds so that all members resume from one step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnbench.errors import ConfigError
from rnnbench.training import checkpoint
from rnnbench.training.trainer import Trainer


@dataclass
class Member:
    """One run of a population: its own ``Trainer`` (config, run files, progress, schedule, evaluation;
    its model holds the member's weights between steps) and what the population adds to its checkpoint,
    ``stacked_state`` (its optimiser state, unpadded).

    Members save in rounds: every member writes ``checkpoint.next.pt`` (marked with the round), and only
    when all have written are they renamed over ``checkpoint.pt``. A kill while writing leaves the last
    round in place (the new files are dropped); a kill while renaming finishes the round on resume. So
    the members always resume from the same step."""

    trainer: Trainer
    stacked_state: dict | None = None
    round: int = 0

    @property
    def next_checkpoint(self) -> Path:
        return self.trainer.files.dir / "checkpoint.next.pt"

    def save_next(self):
        payload = self.trainer.checkpoint_payload() | {"population": self.stacked_state, "round": self.round}
        checkpoint.save(self.next_checkpoint, payload)

    def commit(self):
        self.next_checkpoint.replace(self.trainer.files.checkpoint)

    def restore(self) -> bool:
        t = self.trainer
        saved = t.saved_checkpoint()
        if saved is None:
            return False
        if saved.get("population") is None:
            raise ConfigError(
                f"{t.files.dir} holds a single run, not a population member; {checkpoint.WAY_OUT}"
            )
        t.restore_from(saved)
        self.round, self.stacked_state = saved.get("round", 0), saved["population"]
        return True


def settle_rounds(members: list[Member]) -> None:
    """After a kill: finish a round whose new checkpoints were all written, else drop it."""
    pending = [m.next_checkpoint.exists() for m in members]
    if not any(pending):
        return
    rounds = [
        checkpoint.load(m.next_checkpoint).get("round")
        if p
        else checkpoint.load(m.trainer.files.checkpoint).get("round")
        if m.trainer.files.checkpoint.exists()
        else None
        for m, p in zip(members, pending)
    ]
    for m, p in zip(members, pending):
        if p and len(set(rounds)) == 1:
            m.commit()
        elif p:
            m.next_checkpoint.unlink()
