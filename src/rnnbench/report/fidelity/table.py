"""The fidelity table: every claim of reference-results.md (numbers and findings) against our reproductions.

``python -m rnnbench.report --fidelity results/reproductions`` reads the reproduction folders below
``results/reproductions`` and writes its ``README.md``: one row per claim with the paper's value and
evidence tag, ours, the difference, a status and a note. From Python: ``write_fidelity(root, out)``.

Claims are declared once, as data (``claims.CLAIMS``): an id, the paper, the claim, the
folder that can hold ours, how ours is measured from that folder (a function of ``searches``
or ``runs``, on the helpers of ``measure``), the published value (from
``paper_results``; a finding's published result in words), and what a run would cost here when no
folder has the data. A folder is ``<root>/<name>/`` with its run files under ``data/``: an Optuna
search (``data/studies.db`` and ``data/studies/<study>/trial-*/``) or plain runs
(``data/runs/<task>/<cell>/<name>/``), read by ``rnnbench.report.load`` (``folder``). This
module holds the status rules and writes the table.

Status rules (the README repeats them as its legend):

* ``reproduced``: compared under the paper's protocol, ours is within 3% (relative) of the paper's
  number or inside the paper's range (a range of ours, the spread of all trials, has both ends within
  3% of the paper's ends); a finding: the same sign with p < 0.05 (a "not significantly different"
  finding: p >= 0.05), or the same ordering of fANOVA shares (medians over the variants; "almost
  none": the smallest share or one below 5%).
* ``not reproduced``: compared under the paper's protocol and outside those bounds.
* ``not comparable``: ours ran under a protocol that differs from the paper's in what the comparison
  needs (a shorter training, fewer draws, other budgets, another data layout or corpus); the note
  says what differs. A finding that the paper shows significant and ours does not is not comparable
  when ours has fewer draws than the paper (too little power to tell), not reproduced otherwise.
* ``not run``: no folder has the data; the note says what it would cost here.

Human findings (a measured cause, a protocol difference the run files cannot show) come from
``<folder>/fidelity.yaml``, a mapping of claim id to ``{status: ..., note: ...}``; the note is quoted
in the row. ``status`` may only be ``not comparable`` (with a note saying what differs), which moves a
row the numbers call ``reproduced`` or ``not reproduced`` to ``not comparable``, or ``not reproduced``,
which stands only where the numbers already say so (the note then carries the measured cause). An
override never makes a row ``reproduced``: that status comes from the numbers alone; a ``not run`` or
computed ``not comparable`` row keeps its status. An unknown claim id, another status, or an override
without a note is a one-line error.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rnnbench.report import paper_results
from rnnbench.report.fidelity.claims import CLAIMS, FOLDERS, Claim
from rnnbench.report.fidelity.folder import HUMAN_FILE, Folder
from rnnbench.report.fidelity.measure import DIGITS, Measured, ceilings_note, fmt, number, plural, progress
from rnnbench.report.fidelity.searches import NEGLIGIBLE
from rnnbench.report.load import ReportError, valid_lines
from rnnbench.report.stats import SIGNIFICANCE

TOLERANCE = 0.03  # relative distance to a published number that still counts as reproduced
STATUSES = ("reproduced", "not reproduced", "not comparable", "not run")

SHORT = {
    paper_results.JOZEFOWICZ: "Jozefowicz 2015",
    paper_results.GREFF: "Greff 2017",
    paper_results.ZAREMBA: "Zaremba 2014",
    paper_results.CHUNG: "Chung 2015",
}


@dataclass
class Row:
    claim: Claim
    status: str
    ours: str
    difference: str
    note: str


# --------------------------------------------------------------------------------------- status


def compare(claim: Claim, found: Measured) -> tuple[str, str]:
    """(status, difference) from the numbers, before any fidelity.yaml override."""
    if found.missing is not None:
        return "not run", "–"
    if claim.paper is None:  # a finding
        status = (
            "not comparable"
            if found.differs or found.agrees is None
            else ("reproduced" if found.agrees else "not reproduced")
        )
        return status, "–"
    paper = claim.paper
    if found.span is not None:
        ends = [
            (ours - theirs, (ours - theirs) / theirs)
            for ours, theirs in zip(found.span, (paper.low, paper.high))
        ]
        difference = ", ".join(f"{d:+.{DIGITS.get(claim.metric, 4)}f} ({r:+.1%})" for d, r in ends)
        inside = all(abs(r) <= TOLERANCE for _, r in ends)
    else:
        if found.value is None or not math.isfinite(found.value):
            return ("not comparable" if found.differs else "not run"), "–"
        if paper.low == paper.high:
            d = found.value - paper.low
            difference = f"{d:+.{DIGITS.get(claim.metric, 4)}f} ({d / paper.low:+.1%})"
            inside = abs(d) <= TOLERANCE * abs(paper.low)
        else:
            d = paper.difference(found.value)
            difference = "inside the range" if d == 0 else f"{d:+.{DIGITS.get(claim.metric, 4)}f} outside"
            inside = d == 0
    if found.differs:
        return "not comparable", difference
    return ("reproduced" if inside else "not reproduced"), difference


def judge(claim: Claim, folder: Folder) -> Row:
    found = claim.measure(folder)
    status, difference = compare(claim, found)
    notes = []
    if status == "not run":
        missing = found.missing or "no test value in the run files"
        notes.append(f"{missing}; would cost: {claim.cost or 'unknown'}")
    elif status == "not comparable" and found.differs:
        notes.append("differs: " + "; ".join(found.differs))
    if found.notes and status != "not run":
        notes += found.notes
    human = folder.human.get(claim.id) if folder.exists else None
    if human:
        wanted, text = human.get("status"), str(human.get("note") or "").strip()
        if wanted == "not comparable" and status in ("reproduced", "not reproduced"):
            notes.insert(0, f"numbers alone: {status}")
            status = wanted
        elif wanted == "not reproduced" and status != "not reproduced":
            notes.append(f"{HUMAN_FILE} asks for {wanted}; not applied (the numbers say {status})")
        if text:
            notes.append(f"{HUMAN_FILE}: “{' '.join(text.split())}”")
    return Row(claim, status, found.shown or "–", difference, "; ".join(notes))


def fidelity_rows(root: str | Path) -> tuple[list[Row], dict[str, Folder]]:
    root = Path(root)
    folders = {name: Folder(root, name, (c.id for c in CLAIMS if c.folder == name)) for name in FOLDERS}
    return [judge(claim, folders[claim.folder]) for claim in CLAIMS], folders


# --------------------------------------------------------------------------------------- writing

LEGEND = [
    (
        "reproduced",
        f"compared under the paper's protocol, ours is within {TOLERANCE:.0%} (relative) of the "
        "paper's number or inside its range (a range of ours: both ends within that of the paper's "
        f'ends); a finding: the same sign with p < {SIGNIFICANCE} ("not significantly different": '
        f"p ≥ {SIGNIFICANCE}), or the same ordering of fANOVA shares (medians over the variants; "
        f'"almost none": the smallest share or below {NEGLIGIBLE:.0%}).',
    ),
    (
        "not reproduced",
        "compared under the paper's protocol and outside those bounds; the note carries the "
        "measured cause where one is known.",
    ),
    (
        "not comparable",
        "ours ran with a protocol that differs in what the comparison needs (shorter training, "
        "fewer draws, other budgets, another data layout or corpus); the note says what differs. A "
        "significant finding that ours does not show with fewer draws than the paper is not comparable "
        "(too little power).",
    ),
    ("not run", "no folder has the data; the note says what it would cost here."),
]


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(rows: list[Row], folders: dict[str, Folder], out: Path, root: Path) -> str:
    counts = {status: sum(row.status == status for row in rows) for status in STATUSES}
    lines = [
        "# Fidelity: the papers' claims against our reproductions",
        "",
        "Generated by `python -m rnnbench.report --fidelity results/reproductions` from the folders below; "
        "do not edit by hand. One row per claim of the project's reference list (the papers' numbers and "
        "findings, with their evidence tags); human findings come from each folder's `fidelity.yaml` and "
        "are quoted in the notes.",
        "",
        ", ".join(f"{status}: {n}" for status, n in counts.items()) + f" (of {len(rows)} claims).",
        "",
        "| id | paper | claim | paper's value | ours | difference | status | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        c = row.claim
        lines.append(
            "| "
            + " | ".join(
                cell(x)
                for x in (
                    f"`{c.id}`",
                    SHORT.get(c.source, c.source),
                    c.claim,
                    c.paper_text,
                    row.ours,
                    row.difference,
                    f"**{row.status}**",
                    row.note,
                )
            )
            + " |"
        )
    lines += ["", "## Status rules", ""]
    lines += [f"- **{status}**: {text}" for status, text in LEGEND]
    lines += ["", "## Folders", ""]
    for _, folder in sorted(folders.items()):
        lines.append("- " + folder_line(folder, out))
    unknown = (
        sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in folders)
        if root.is_dir()
        else []
    )
    for name in unknown:
        lines.append(f"- [{name}]({link(root / name / 'README.md', out)}): no claims declared for it")
    for _, folder in sorted(folders.items()):
        lines += curves(folder)
    return "\n".join(lines) + "\n"


def link(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path, out)).as_posix()


def folder_line(folder: Folder, out: Path) -> str:
    claims = sum(c.folder == folder.name for c in CLAIMS)
    if not folder.exists:
        return f"{folder.name}: not present ({plural(claims, 'claim')} not run)"
    readme = folder.path / "README.md"
    head = f"[{folder.name}]({link(readme, out)})" if readme.is_file() else f"{folder.name} (no README.md)"
    frame = folder.trials
    if frame is None:
        return f"{head}: no run files in data/"
    kind = "search" if frame["study"].notna().any() else "runs"
    tasks = ", ".join(sorted(frame["task"].unique()))
    return f"{head}: {kind}, task {tasks}, {plural(frame['cell'].nunique(), 'cell')}, {progress(frame)}"


def curves(folder: Folder) -> list[str]:
    """Per plain run (not a search's trial), its validation metrics at each evaluation."""
    frame = folder.trials if folder.exists else None
    if frame is None:
        return []
    lines = []
    for _, run in frame[frame["study"].isna()].sort_values("trial").iterrows():
        records = valid_lines(run["run_dir"]) if run["run_dir"] else []
        if not records:
            continue
        keys = sorted({k for r in records for k in r if k.startswith("valid/") and k != "valid/loss"})
        lines += [
            "",
            f"## {folder.name}: {run['task']} {run['cell']}, validation per evaluation",
            "",
            f"Run `{run['trial']}`, {run['state']} ({len(records)} evaluations).",
            "",
            "| epoch | step | " + " | ".join(keys) + " | lr | wall (min) |",
            "|---|---|" + "---|" * len(keys) + "---|---|",
        ]
        for r in records:
            values = [fmt(number(r.get(k)), k.split("/", 1)[1]) for k in keys]
            lines.append(
                f"| {r.get('epoch', '–')} | {r.get('step', '–')} | " + " | ".join(values) + " | "
                f"{fmt(number(r.get('lr')))} | {fmt(number(r.get('wall_s')) / 60, 'ppl')} |"
            )
    return lines


def write_fidelity(root: str | Path, out: str | Path | None = None) -> Path:
    """Write ``<out>/README.md`` (``out`` defaults to ``root``) and return its path."""
    root = Path(root)
    if not root.exists():
        raise ReportError(f"{root} does not exist; give the folder that holds the reproduction folders")
    if not root.is_dir():
        raise ReportError(f"{root} is not a folder; give the folder that holds the reproduction folders")
    out = Path(out) if out is not None else root
    rows, folders = fidelity_rows(root)
    text = markdown(rows, folders, out, root)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(text)
    except OSError as error:
        raise ReportError(f"{out / 'README.md'} cannot be written ({error.strerror})") from None
    return out / "README.md"


def as_frame(rows: list[Row]) -> pd.DataFrame:
    """The rows as a table (tests, notebooks)."""
    return pd.DataFrame(
        [
            {"id": r.claim.id, "status": r.status, "ours": r.ours, "difference": r.difference, "note": r.note}
            for r in rows
        ]
    ).set_index("id")


__all__ = ["CLAIMS", "Claim", "Measured", "ceilings_note", "fidelity_rows", "write_fidelity"]
