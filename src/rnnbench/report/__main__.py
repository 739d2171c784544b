"""``python -m rnnbench.report INPUT... --out FOLDER``: a search's report, from its run files and studies.

INPUT is a results folder, a study storage (``sqlite:///...``, a ``.db`` file, a journal ``.log`` file,
any SQLAlchemy URL), or several. A bad input is one line on stderr and exit code 2.

``python -m rnnbench.report --fidelity FOLDER [--out DIR]``: the fidelity table of the reproduction
folders in FOLDER (``rnnbench.report.fidelity.table``), written to DIR/README.md (DIR defaults to FOLDER);
prints its path.
"""

from __future__ import annotations

import argparse
import sys

from rnnbench.report.build import DEFAULT_BASELINE, DEFAULT_MIN_TRIALS, make_report
from rnnbench.report.load import ReportError

PROG = "rnnbench.report"


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage block becomes the project's one-line error
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)


def wants_fidelity(argv) -> bool:
    return any(arg == "--fidelity" or arg.startswith("--fidelity=") for arg in argv)


def fidelity_main(argv) -> int:
    parser = Parser(
        prog=f"python -m {PROG} --fidelity",
        description="The fidelity table (every claim of the papers against our reproductions) of the "
        "reproduction folders in FOLDER, written to README.md.",
    )
    parser.add_argument("--fidelity", required=True, metavar="FOLDER", help="folder of reproduction folders")
    parser.add_argument("--out", help="folder for README.md (default: FOLDER itself)")
    args = parser.parse_args(argv)
    from rnnbench.report.fidelity.table import write_fidelity

    try:
        path = write_fidelity(args.fidelity, args.out)
    except ReportError as problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    print(path)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if wants_fidelity(argv):
        return fidelity_main(argv)
    parser = Parser(
        prog=f"python -m {PROG}",
        description="A search's report (Markdown, self-contained HTML, CSV tables, PNG and SVG figures) "
        "from its run files and Optuna studies.",
        epilog=f"Also: python -m {PROG} --fidelity FOLDER [--out DIR], the fidelity table of the "
        "reproduction folders in FOLDER.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="results folders and/or study storages")
    parser.add_argument("--out", required=True, help="folder for report.md, report.html, CSV and figures")
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help=f"cell the t-tests compare with (default {DEFAULT_BASELINE})",
    )
    parser.add_argument(
        "--min-trials",
        type=int,
        default=DEFAULT_MIN_TRIALS,
        help=f"cells with fewer complete trials are flagged (default {DEFAULT_MIN_TRIALS})",
    )
    args = parser.parse_args(argv)
    if args.min_trials < 1:
        parser.error(f"--min-trials={args.min_trials} is not valid; it must be an integer >= 1")
    try:
        paths = make_report(args.inputs, args.out, args.baseline, args.min_trials)
    except ReportError as problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    print(f"{paths[1]} ({len(paths)} files in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
