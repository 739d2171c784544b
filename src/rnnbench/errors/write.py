"""Failures to write a file (disk full, quota, read-only folder, permissions) as one line.

A full disk shows up as ``OSError`` (``ENOSPC``, ``EDQUOT``), a read-only folder as ``EROFS``, missing
permissions as ``EACCES``/``EPERM``; torch's zip writer turns them into a ``RuntimeError`` such as
``[enforce fail at inline_container.cc:672] . unexpected pos 36672 vs 36560`` (the ``OSError``, when
there is one, is its ``__context__``); SQLite says ``database or disk is full``. ``write_failure``
recognises all of them and returns a ``RunFileError`` whose message is one line naming the file, its
folder, the cause with the free space there, and the way out::

    could not write checkpoint.pt in /data/runs/x (disk full: 12.0 KiB free); the last checkpoint is
    kept: free space and run the same command again to continue from step 40

``writing(path, tmp)`` wraps a write; ``storage_write_error(error, url)`` is the line for a search's
study storage.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
from pathlib import Path

from rnnbench.errors import ConfigError

EXIT_CODE = 74  # sysexits.h EX_IOERR: "an error occurred while doing I/O on some file"

NO_SPACE = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large"}
NOT_WRITABLE = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
OTHER = {errno.EIO: "input/output error"}
# torch's zip writer (PytorchStreamWriter) when a write comes up short; it gives no errno
TORCH_WRITER = ("inline_container", "unexpected pos", "PytorchStreamWriter failed", "file write failed")
SQLITE_WRITE = {
    "database or disk is full": "disk full",
    "attempt to write a readonly database": "read-only database",
    "disk i/o error": "input/output error",
    "unable to open database file": "cannot open or create the file",
}
SERVER_FULL = "no space left on device"  # PostgreSQL's DiskFull, MySQL's errno 28
FREE_SPACE = "free space"
WRITABLE = "make the folder writable"
REPLACED = "the file was replaced while open: a git checkout or stash of it, or a copy over it"


class RunFileError(ConfigError):
    """A file could not be written; its message is one line saying which, where, why and what to do.

    ``path``: the file; ``cause``: e.g. "disk full: 12.0 KiB free"; ``fix``: what the user does before
    running the command again (free space, make the folder writable)."""

    def __init__(self, message: str, path: Path | None = None, cause: str = "", fix: str = FREE_SPACE):
        super().__init__(message)
        self.path, self.cause, self.fix = path, cause, fix

    def then(self, way_on: str) -> RunFileError:
        """The same failure with another way on, e.g. 'the last checkpoint is kept: ... from step 40'."""
        return RunFileError(written(self.path, self.cause, way_on), self.path, self.cause, self.fix)


def written(path: Path | None, cause: str, way_on: str) -> str:
    where = f"{path.name} in {path.parent}" if path is not None else "a file"
    return f"could not write {where} ({cause}); {way_on}"


def resume_hint(fix: str, step: int | None) -> str:
    """What to say about the run: rerunning the same command continues from its last checkpoint."""
    again = f"{fix} and run the same command again"
    if step is None:
        return f"the run's files are kept: {again} to continue from its last checkpoint"
    if step < 0:
        return f"no checkpoint was written yet: {again} to start the run"
    return f"the last checkpoint is kept: {again} to continue from step {step}"


def write_failure(error: BaseException, path: str | Path, step: int | None = None) -> RunFileError | None:
    """The one-line error for a failure to write ``path``, or None when ``error`` is not one (a bug, a
    value that cannot be saved...): the caller re-raises those as they are. ``step``: the step of the
    checkpoint a rerun continues from (-1: none yet; None: not known here)."""
    path = Path(path)
    found = diagnose(error, path)
    if found is None:
        return None
    cause, fix = found
    return RunFileError(written(path, cause, resume_hint(fix, step)), path, cause, fix)


def diagnose(error: BaseException, path: Path) -> tuple[str, str] | None:
    """(cause with the free space, what to do) when ``error`` is a failure to write at ``path``."""
    free = f"{size(free_bytes(path.parent))} free"
    for link in chain(error):
        number = getattr(link, "errno", None) if isinstance(link, OSError) else None
        if number in NO_SPACE:
            return f"{NO_SPACE[number]}: {free}", FREE_SPACE
        if number in NOT_WRITABLE:
            return f"{NOT_WRITABLE[number]}; {free}", WRITABLE
        if number in OTHER:
            return f"{OTHER[number]}; {free}", "check the disk"
    if any(isinstance(x, RuntimeError) and any(m in str(x) for m in TORCH_WRITER) for x in chain(error)):
        return from_folder(path.parent, free)  # torch gave no errno: ask the folder
    return None


def from_folder(folder: Path, free: str) -> tuple[str, str]:
    """The likely cause of a write cut short without an errno, from the folder's file system."""
    existing = nearest_existing(folder)
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return f"read-only file system; {free}", WRITABLE
    except OSError:
        pass
    if not os.access(existing, os.W_OK):
        return f"permission denied; {free}", WRITABLE
    if free_bytes(folder) < 1 << 20:
        return f"disk full: {free}", FREE_SPACE
    return f"write cut short, perhaps by a quota; {free}", FREE_SPACE


def chain(error: BaseException):
    """The error and those it wraps: ``__cause__``, ``__context__``, SQLAlchemy's ``orig``."""
    seen, todo = set(), [error]
    while todo:
        link = todo.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo += [link.__cause__, link.__context__, getattr(link, "orig", None)]


def nearest_existing(folder: Path) -> Path:
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged user may still write in ``folder``'s file system (0 when unknown)."""
    try:
        stat = os.statvfs(nearest_existing(folder))
    except OSError:
        return 0
    return stat.f_bavail * stat.f_frsize


def size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"
    raise AssertionError("unreachable")


def discard(path: Path) -> None:
    """Removes a temporary file if it is there; never raises (a read-only folder refuses even that)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def hydra_write_failure(error: BaseException) -> RunFileError | None:
    """A write failure of Hydra's own files before the run starts (``.hydra/*.yaml``, the job log, the
    run directory itself): unambiguous write errors only, so a failure to read is never reported as one."""
    for link in chain(error):
        if not isinstance(link, OSError):
            continue
        path = Path(link.filename) if link.filename else written_by_hydra(link)
        if path is None:
            continue
        run_dir = path.parent.parent if path.parent.name == ".hydra" else path.parent
        step = None if (run_dir / "checkpoint.pt").exists() else -1  # -1: no checkpoint yet
        if link.errno in NO_SPACE or link.errno == errno.EROFS:
            return write_failure(link, path, step)
        refused = link.errno in (errno.EACCES, errno.EPERM)
        folder_closed = not os.access(nearest_existing(path.parent), os.W_OK)
        readable = not path.exists() or os.access(path, os.R_OK)  # so it was the write that failed
        if refused and folder_closed and readable:
            return write_failure(link, path, step)
    return None


def written_by_hydra(error: OSError) -> Path | None:
    """The file Hydra's ``_save_config(cfg, filename, output_dir)`` was writing when ``error`` (without a
    file name: the disk filled during the write, not at the open) was raised."""
    tb = error.__traceback__
    while tb is not None:
        names = tb.tb_frame.f_locals
        if tb.tb_frame.f_code.co_name == "_save_config" and {"filename", "output_dir"} <= names.keys():
            return Path(names["output_dir"]) / str(names["filename"])
        tb = tb.tb_next
    return None


# ---- a search's study storage -------------------------------------------------------------------------
def storage_file(url: str) -> Path | None:
    """The file of a storage URL (``sqlite:///path``, a journal file), None for a database server."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?")[0]
        return Path(path) if path and path != ":memory:" else None
    if "://" not in url:
        return Path(url)
    return None


def writable(path: Path) -> bool:
    """Whether the file and its folder can be written (so "read-only" means something else)."""
    return path.is_file() and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def storage_write_error(error: BaseException, url: str, search: str = "the search") -> str | None:
    """One line for a study storage that could not be written (SQLite on a full disk or in a read-only
    folder, a journal file that cannot grow), or None when ``error`` is something else; ``search`` names
    what the same command continues.

    Recognises ``sqlite3.OperationalError`` ("database or disk is full", "attempt to write a readonly
    database", ...) as it is, wrapped by SQLAlchemy (``.orig``) or by Optuna (``__cause__``), and a
    failing ``OSError`` of a journal file. The trials already stored are kept (SQLite rolls the failed
    transaction back; a journal line is appended whole or ignored)."""
    path = storage_file(url)
    cause = fix = None
    for link in chain(error):
        if isinstance(link, sqlite3.Error):
            text = str(link).lower()
            kind = next((v for k, v in SQLITE_WRITE.items() if k in text), None)
            if kind is None:
                continue
            free = f"{size(free_bytes(path.parent))} free" if path is not None else ""
            if kind == "disk full":
                cause, fix = f"disk full: {free}" if free else "disk full", FREE_SPACE
            elif kind == "read-only database" and path is not None and writable(path):
                # SQLite's answer when the file it has open was replaced (SQLITE_READONLY_DBMOVED)
                cause, fix = REPLACED, "leave the file alone while a search writes it"
            else:
                cause = f"{kind}; {free}" if free else kind
                fix = WRITABLE if kind != "input/output error" else "check the disk"
            break
    if cause is None and path is not None:
        cause, fix = diagnose(error, path) or (None, None)
    if cause is None and any(SERVER_FULL in str(link).lower() for link in chain(error)):
        cause, fix = "disk full on the database server", "free space there"
    if cause is None:
        return None
    where = (
        f"{path.name} in {path.parent}"
        if path is not None
        else re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)
    )
    return (
        f"could not write the study storage {where} ({cause}); the trials already stored are kept: "
        f"{fix} and run the same command again to continue {search}"
    )


@contextlib.contextmanager
def writing(path: str | Path, tmp: Path | None = None, step: int | None = None):
    """Writes to ``path`` (through ``tmp``, renamed over it) inside the block: a failure to write
    becomes a ``RunFileError``, and ``tmp`` is removed however the block fails (a second Ctrl-C too)."""
    try:
        yield
    except BaseException as error:
        if tmp is not None:
            discard(tmp)
        failure = write_failure(error, path, step) if isinstance(error, OSError | RuntimeError) else None
        if failure is None:
            raise
        raise failure from error
