"""The Python examples in docs/api.md and README.md run as written, so they cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["docs/api.md", "README.md"]


def python_blocks(document: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / document).read_text(), re.S | re.M)


EXAMPLES = [(d, k, code) for d in DOCUMENTS for k, code in enumerate(python_blocks(d))]


def test_both_documents_have_an_example():
    assert {d for d, _, _ in EXAMPLES} == set(DOCUMENTS)


@pytest.mark.parametrize("document, index, code", EXAMPLES, ids=[f"{d}#{k}" for d, k, _ in EXAMPLES])
def test_example_runs(document, index, code):
    exec(compile(code, f"{document} python block {index}", "exec"), {"__name__": "__doc_example__"})
