"""The examples in README.md and docs/*.md run as written, so the documents cannot drift from the code.

* Every ```python block runs.
* Every ``python -m rnnbench...`` command in a ```bash, ```sh or ```console block is checked, in a
  scratch folder that holds a tiny results folder made by the README's own set-up command:
  - ``python -m rnnbench ...``: the project's command-line check (``preflight``: Hydra composes the
    config, the schema checks it), without training; ``--help`` runs for real;
  - ``python -m rnnbench.search ...`` (``prepare``, ``worker`` too): the search's own reading of its
    command line (every cell's config composed and checked, the space against it), without training;
    ``status`` and ``--help`` run for real;
  - ``python -m rnnbench.evolve ...``: its command line composed and checked, and its settings read;
  - ``rnnbench.report``, ``rnnbench.data``, ``rnnbench.tasks.ceilings``: run for real;
  - ``rnnbench.sample``, ``rnnbench.bench``: their own argument parsers.
  A command that cannot be checked here (a download, a GPU, a server) ends with a comment that says
  ``not run: <why>``; so does a line with a placeholder (``...``, ``<name>``). Every other command must
  have a check: a new command, or a new ``python -m rnnbench.<module>``, cannot slip through.
  A ```console block gives a command after ``$ `` and what it prints; ``...`` ends a line early.
  A ```yaml block whose first comments name a ``.yaml`` path is written there before the commands run.
* The set-up commands: the run part of the install line runs with ``debug=fast``; the test command is
  the one ``.ci/run`` runs.
* Relative links point at files and headings that exist, and so do the source paths the documents
  name (``rnnbench/...``, ``src/rnnbench/...``) and the Python names (``rnnbench.x.y``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
SHELL = ("bash", "sh", "console")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN = re.compile(r"not run:\s*(\S.*)")
PLACEHOLDER = re.compile(r"\.\.\.|<[\w-]+>")
ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
INSTALL = re.compile(r"^(python3? -m venv |\. \S+/activate$|source \S+/activate$|pip install )")
COMMAND_START = re.compile(r"^\s*(\$ )?([A-Za-z_][A-Za-z0-9_]*=\S+ )*python -m rnnbench\b")


def text(document: str) -> str:
    return (ROOT / document).read_text()


def fences(document: str) -> list[tuple[str, int, str]]:
    """(language, line number of the block's first line, body) of every fenced block."""
    source = text(document)
    return [(m.group(1), source.count("\n", 0, m.start()) + 2, m.group(2)) for m in FENCE.finditer(source)]


# ---------------------------------------------------------------------------------------------------
# Python blocks


def python_blocks(document: str) -> list[str]:
    return [body for lang, _, body in fences(document) if lang == "python"]


EXAMPLES = [(d, k, code) for d in DOCUMENTS for k, code in enumerate(python_blocks(d))]


def test_the_api_and_cell_documents_have_examples():
    assert {"docs/api.md", "docs/cells.md"} <= {d for d, _, _ in EXAMPLES}


@pytest.mark.parametrize("document, index, code", EXAMPLES, ids=[f"{d}#{k}" for d, k, _ in EXAMPLES])
def test_example_runs(document, index, code):
    exec(compile(code, f"{document} python block {index}", "exec"), {"__name__": "__doc_example__"})


# ---------------------------------------------------------------------------------------------------
# Commands: reading them


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    source: str  # the command as written, without its trailing comment
    comment: str = ""
    expected: tuple[str, ...] = ()  # a console block's output lines
    console: bool = False

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def not_run(self) -> str | None:
        match = NOT_RUN.search(self.comment)
        return match.group(1).strip() if match else None

    def parts(self) -> list[list[str]]:
        """The command's tokens, split at ``&&``."""
        parts, current = [], []
        for token in shlex.split(self.source):
            if token == "&&":
                parts.append(current)
                current = []
            else:
                current.append(token)
        return [*parts, current]


@dataclass
class Part:
    env: dict[str, str] = field(default_factory=dict)
    module: str = ""
    args: list[str] = field(default_factory=list)


def rnnbench_part(tokens: list[str]) -> Part | None:
    env = {}
    while tokens and ENV.match(tokens[0]):
        key, _, value = tokens[0].partition("=")
        env[key] = value
        tokens = tokens[1:]
    if len(tokens) >= 3 and tokens[:2] == ["python", "-m"] and re.fullmatch(r"rnnbench(\.\w+)*", tokens[2]):
        return Part(env, tokens[2], tokens[3:])
    return None


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): a ``#`` outside quotes, at the start or after a blank, starts the comment."""
    quote = None
    for k, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k].rstrip(), line[k + 1 :].strip()
    return line.rstrip(), ""


def commands_of(document: str) -> list[Command]:
    found = []
    for lang, first, body in fences(document):
        if lang not in SHELL:
            continue
        lines = body.splitlines()
        k = 0
        while k < len(lines):
            number, line = first + k, lines[k]
            k += 1
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            while line.endswith("\\") and k < len(lines):  # a continued line
                line = line[:-1] + " " + lines[k].strip()
                k += 1
            source, comment = split_comment(line)
            if not source:
                continue
            expected = []
            if lang == "console":
                while k < len(lines) and not lines[k].startswith("$ "):
                    expected.append(lines[k])
                    k += 1
            expected = tuple(e for e in expected if e)
            found.append(Command(document, number, source, comment, expected, lang == "console"))
    return found


COMMANDS = [c for d in DOCUMENTS for c in commands_of(d)]
RNNBENCH_COMMANDS = [c for c in COMMANDS if any(rnnbench_part(p) for p in c.parts())]


# ---------------------------------------------------------------------------------------------------
# Commands: checking them


@dataclass
class Result:
    code: int
    output: str


def module(*names: str):
    """The first of ``names`` that imports (modules are moving into subpackages)."""
    for name in names[:-1]:
        with contextlib.suppress(ModuleNotFoundError):
            return importlib.import_module(name)
    return importlib.import_module(names[-1])


def call(function, *args) -> Result:
    """``function(*args)`` with its output captured and its exit status as a number."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = function(*args)
        except SystemExit as stop:
            code = stop.code
    if isinstance(code, str):
        out.write(code + "\n")
        code = 1
    return Result(code or 0, out.getvalue())


def one_line_error(prog: str, function, *args) -> Result:
    config_error = module("rnnbench.errors").ConfigError

    def checked():
        try:
            function(*args)
        except config_error as problem:
            print(f"{prog}: error: {problem}", file=sys.stderr)
            return 2
        return 0

    return call(checked)


def subprocess_run(part: Part) -> Result:
    env = {**os.environ, **part.env}
    if "PYTHONPATH" in part.env:
        paths = [part.env["PYTHONPATH"], os.environ.get("PYTHONPATH")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    done = subprocess.run(
        [sys.executable, "-m", part.module, *part.args], env=env, capture_output=True, text=True, timeout=300
    )
    return Result(done.returncode, done.stdout + done.stderr)


def wants_help(args: list[str]) -> bool:
    return any(a in ("-h", "--help") for a in args)


def check_train(part: Part) -> Result:
    if wants_help(part.args):
        return subprocess_run(part)
    preflight = module("rnnbench.config.cli_checks", "rnnbench.cli_checks").preflight
    return one_line_error("rnnbench", preflight, part.args)


def check_search(part: Part, monkeypatch) -> Result:
    main = module("rnnbench.search.__main__").main
    args = part.args
    if wants_help(args) or args[:1] == ["status"]:
        return call(main, args)
    if args[:1] in (["prepare"], ["worker"]):
        args = args[1:]  # the same overrides as a search
    command = module("rnnbench.search.command")
    monkeypatch.setattr(command, "check_data", lambda cfg: None)  # the data folder is this machine's matter
    return one_line_error("rnnbench.search", command.read_command_line, args)


def check_evolve(part: Part) -> Result:
    """The command line as ``rnnbench.evolve`` reads it before its first evaluation."""
    if wants_help(part.args):
        return call(module("rnnbench.evolve.__main__").main, part.args)

    def read(argv):
        cli = module("rnnbench.config.cli_checks")
        extra_dirs, overrides, _ = cli.split_argv(argv)
        cli.check_group_choices(overrides, extra_dirs)
        cfg = cli.compose(overrides, extra_dirs)
        module("rnnbench.config.schema").validate(cfg)
        module("rnnbench.evolve.settings").read_settings(cfg)

    return one_line_error("rnnbench.evolve", read, part.args)


def check_sample(part: Part) -> Result:
    if wants_help(part.args):
        return subprocess_run(part)
    return one_line_error("rnnbench.sample", module("rnnbench.sample").parse_args, part.args)


def check_bench(part: Part) -> Result:
    parse_args = module("rnnbench.bench").parse_args
    return call(lambda: parse_args(part.args) and None)


def run_main(name: str):
    return lambda part: call(module(name).main, part.args)


CHECKS = {
    "rnnbench": check_train,
    "rnnbench.search": check_search,
    "rnnbench.evolve": check_evolve,
    "rnnbench.report": run_main("rnnbench.report.__main__"),
    "rnnbench.data": run_main("rnnbench.data"),
    "rnnbench.tasks.ceilings": run_main("rnnbench.tasks.ceilings"),
    "rnnbench.sample": check_sample,
    "rnnbench.bench": check_bench,
}
ALLOWED_CODES = {("rnnbench.data", "verify"): (0, 1)}  # 1: a data file is missing here


def problems_of(command: Command) -> list[str]:
    """Why ``command`` would go unchecked (nothing when it is checked or marked ``not run``)."""
    if command.not_run is not None:
        return []
    problems = []
    if PLACEHOLDER.search(command.source):
        problems.append("has a placeholder: mark it `# not run: placeholder`")
    for tokens in command.parts():
        part = rnnbench_part(tokens)
        if part is not None and part.module not in CHECKS:
            problems.append(f"no check for `python -m {part.module}`: add one, or mark `# not run: <why>`")
        elif part is None and len(command.parts()) > 1 and not INSTALL.match(" ".join(tokens)):
            problems.append(f"`{' '.join(tokens)}` is neither an install step nor an rnnbench command")
    return problems


def run_check(part: Part, monkeypatch) -> Result:
    for key, value in part.env.items():
        if key == "PYTHONPATH":
            for folder in value.split(os.pathsep):
                monkeypatch.syspath_prepend(str(Path(folder).absolute()))
        else:
            monkeypatch.setenv(key, value)
    check = CHECKS[part.module]
    return check(part, monkeypatch) if check is check_search else check(part)


def expected_lines_match(expected: tuple[str, ...], output: str) -> bool:
    lines = [line.rstrip() for line in output.splitlines()]
    for want in expected:
        head = want.split("...")[0].rstrip()
        if not any(line == want.rstrip() or ("..." in want and line.startswith(head)) for line in lines):
            return False
    return True


# ---------------------------------------------------------------------------------------------------
# The scratch folder


def yaml_files() -> dict[str, str]:
    """Files the documents show in ```yaml blocks whose first comments name their path."""
    files = {}
    for document in DOCUMENTS:
        for lang, _, body in fences(document):
            if lang != "yaml":
                continue
            for line in body.splitlines():
                if not line.startswith("#"):
                    break
                match = re.fullmatch(r"#\s*([\w./-]+\.yaml)\b.*", line)
                if match:
                    files[match.group(1)] = body
    return files


def setup_line() -> Command:
    install = [c for c in COMMANDS if c.document == "README.md" and "pip install" in c.source]
    assert len(install) == 1, "README.md has one install command"
    return install[0]


@dataclass
class Scratch:
    path: Path
    setup: Result


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Scratch:
    """A folder the documented commands run in: ``examples/``, the YAML files the documents show, the
    run of the README's set-up command (``debug=fast``), a study with queued trials, and an empty
    ``results/reproductions``."""
    path = tmp_path_factory.mktemp("docs")
    (path / "examples").symlink_to(ROOT / "examples")
    for name, body in yaml_files().items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(body)
    run = [rnnbench_part(p) for p in setup_line().parts() if rnnbench_part(p)]
    assert len(run) == 1, "the install command ends with one run"
    run[0].args.append("debug=fast")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        setup = subprocess_run(run[0])
        prepared = call(
            module("rnnbench.search.__main__").main,
            [
                "prepare",
                "search=jozefowicz",
                "task=arithmetic",
                "cell=lstm,gru",
                "debug=fast",
                "search.n_trials=2",
            ],
        )
    assert prepared.code == 0, prepared.output
    (path / "results" / "reproductions").mkdir()
    return Scratch(path, setup)


# ---------------------------------------------------------------------------------------------------
# Commands: the tests


def test_documents_have_commands():
    assert len(RNNBENCH_COMMANDS) >= 20
    assert {c.document for c in RNNBENCH_COMMANDS} >= {"README.md", "docs/runs.md", "docs/search.md"}


def test_every_command_is_checked_or_marked():
    problems = [f"{c.id}: `{c.source}` {p}" for c in RNNBENCH_COMMANDS for p in problems_of(c)]
    assert not problems, "\n".join(problems)


def test_commands_are_in_shell_blocks():
    """A command in an indented block, or in a fence of another language, would not be checked."""
    stray = []
    for document in DOCUMENTS:
        lines = text(document).splitlines()
        in_shell = set()
        for lang, first, body in fences(document):
            if lang in SHELL:
                in_shell |= set(range(first, first + body.count("\n")))
        for number, line in enumerate(lines, 1):
            if COMMAND_START.match(line) and number not in in_shell:
                stray.append(f"{document}:{number}: {line.strip()}")
    assert not stray, "put these in a ```bash block:\n" + "\n".join(stray)


@pytest.mark.parametrize("command", RNNBENCH_COMMANDS, ids=[c.id for c in RNNBENCH_COMMANDS])
def test_command(command: Command, scratch: Scratch, monkeypatch):
    if command.not_run is not None:
        pytest.skip(f"not run: {command.not_run}")
    monkeypatch.chdir(scratch.path)
    for tokens in command.parts():
        part = rnnbench_part(tokens)
        if part is None:
            continue  # an install step (test_every_command_is_checked_or_marked)
        # the set-up command's run: the fixture ran it with debug=fast
        result = scratch.setup if command == setup_line() else run_check(part, monkeypatch)
        where = f"{command.id}: `{command.source}` gave exit status {result.code}:\n{result.output}"
        if command.expected:
            assert expected_lines_match(command.expected, result.output), where
            if any("error:" in line for line in command.expected):
                assert result.code != 0, where
        else:
            assert result.code in ALLOWED_CODES.get((part.module, (part.args or [""])[0]), (0,)), where


def test_setup_run_made_a_finished_run(scratch: Scratch):
    assert scratch.setup.code == 0, scratch.setup.output
    summaries = list((scratch.path / "results" / "runs").rglob("summary.json"))
    assert summaries, scratch.setup.output
    assert all(json.loads(s.read_text())["status"] == "completed" for s in summaries)


def test_readme_test_command_is_the_one_ci_runs():
    setup = text("README.md").split("## Set-up", 1)[1].split("\n## ", 1)[0]
    shell = [body.strip() for lang, _, body in fences("README.md") if lang in SHELL and body.strip() in setup]
    assert len(shell) == 2, "Set-up has two commands: install and run, then the tests"
    ci = [line.split("#")[0].strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert [line for line in ci if line][-1] == shell[1]
    for marker in re.findall(r'-m "not (\w+)"', setup):  # the markers the README names are declared
        assert f'"{marker}:' in text("pyproject.toml"), f"marker {marker!r} is not declared in pyproject.toml"


# The checks can fail: each of these is a mistake a document could make.
MISTAKES = [
    "python -m rnnbench trainer.lrr=0.1",
    "python -m rnnbench cell=lstmm",
    "python -m rnnbench -m cell=lstm,gruu seed=1,2",
    "python -m rnnbench experiment=zaremba_smal",
    "python -m rnnbench.search search=greff task=jsb cell=greff_v search.space.cell.hiden_size.high=100",
    "python -m rnnbench.search search=greff task=jsb cell=greff_v,nfgg",
    "python -m rnnbench.evolve evolve=jozefowicz evolve.candidats=3",
    "python -m rnnbench.bench --cells lstmm",
    "python -m rnnbench.sample run_dir=results/runs/x lenght=3",
    "python -m rnnbench.data verify nosuchset",
    "python -m rnnbench.report results --out report --min-trials 0",
]


@pytest.mark.parametrize("source", MISTAKES)
def test_a_mistake_fails(source: str, scratch: Scratch, monkeypatch):
    monkeypatch.chdir(scratch.path)
    part = rnnbench_part(shlex.split(source))
    assert run_check(part, monkeypatch).code != 0


@pytest.mark.parametrize(
    "line",
    [
        "python -m rnnbench.nosuch --all",  # a module without a check
        "python -m rnnbench.sample run_dir=... length=5",  # a placeholder
        "python -m rnnbench.sample run_dir=<dir>",
        "rm -rf x && python -m rnnbench",  # a chain with more than an install
    ],
)
def test_an_unchecked_command_is_found(line: str):
    source, comment = split_comment(line)
    assert problems_of(Command("x.md", 1, source, comment))
    assert not problems_of(Command("x.md", 1, source, "not run: a reason"))


# ---------------------------------------------------------------------------------------------------
# Links


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    body = FENCE.sub("", path.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", body, re.M)}


def test_links_point_at_files_and_headings():
    broken = []
    for document in DOCUMENTS:
        path = ROOT / document
        for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", text(document))):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{document}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{document}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_source_paths_exist():
    """A module that moves takes its documents along."""
    missing = []
    for document in DOCUMENTS:
        for path in re.findall(r"`((?:src/)?rnnbench/[\w./]*)`", text(document)):
            if not (ROOT / "src" / path.removeprefix("src/")).exists():
                missing.append(f"{document}: {path}")
    assert not missing, "\n".join(missing)


def test_python_names_exist():
    missing = []
    for document in DOCUMENTS:
        for name in re.findall(r"`(rnnbench(?:\.\w+)+)(?:\([^`]*\))?`", text(document)):
            parts = name.split(".")
            for k in range(len(parts), 0, -1):  # the longest prefix that imports, then attributes
                try:
                    found = importlib.import_module(".".join(parts[:k]))
                except ModuleNotFoundError:
                    continue
                try:
                    for attribute in parts[k:]:
                        found = getattr(found, attribute)
                except AttributeError:
                    missing.append(f"{document}: {name}")
                break
    assert not missing, "\n".join(missing)
