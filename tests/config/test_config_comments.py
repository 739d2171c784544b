"""The experiment presets' comments: one comment per line, after the value it explains."""

from __future__ import annotations

import pytest

from helpers.paths import CONFIGS

EXPERIMENTS = sorted((CONFIGS / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_each_line_holds_at_most_one_comment(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        _, _, comment = line.partition("#")
        assert "#" not in comment, f"{path.name}:{number}: two comments on one line: {line!r}"
        assert not line.rstrip().endswith(("#", "(", ",")), f"{path.name}:{number}: cut-off comment"
