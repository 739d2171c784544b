"""The Python examples in docs/api.md and README.md run as written, so they cannot drift from the code.

NOTES_FOR_README.md (README text waiting to be merged) is checked too while it exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [d for d in ("docs/api.md", "README.md", "NOTES_FOR_README.md") if (ROOT / d).is_file()]


def python_blocks(document: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / document).read_text(), re.S | re.M)


EXAMPLES = [(d, k, code) for d in DOCUMENTS for k, code in enumerate(python_blocks(d))]


def test_the_api_document_has_an_example():
    assert any(d == "docs/api.md" for d, _, _ in EXAMPLES)


@pytest.mark.parametrize("document, index, code", EXAMPLES, ids=[f"{d}#{k}" for d, k, _ in EXAMPLES])
def test_example_runs(document, index, code):
    exec(compile(code, f"{document} python block {index}", "exec"), {"__name__": "__doc_example__"})
