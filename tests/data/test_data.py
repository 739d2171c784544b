"""Data location, download (from local file:// URLs and fake openers, never the network), checksums,
and the command line of the data-backed tasks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from helpers.realdata import DATA_DIR, DATA_TASKS, needs_data
from rnnbench import data
from rnnbench.data import DATASETS, FILES, DataError, DataFile, fetch, locate


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_registry_covers_every_data_task_with_distinct_paths():
    assert set(DATASETS) == set(DATA_TASKS)
    paths = [f.path for files in DATASETS.values() for f in files]
    assert len(paths) == len(set(paths)) == 10
    for f in FILES.values():
        assert len(f.sha256) == 64 and (f.urls or f.source.urls)


def test_data_root_prefers_the_argument_then_the_environment_then_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNBENCH_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root(tmp_path / "given") == tmp_path / "given"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv("RNNBENCH_DATA")
    assert data.data_root() == tmp_path / "cache" / "rnnbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_root() == tmp_path / "home" / ".cache" / "rnnbench"


def test_fetch_from_a_file_url_verifies_and_stores(tmp_path):
    content = b"a b c\n d e\n"
    source = tmp_path / "mirror.txt"
    source.write_bytes(content)
    file = DataFile("ptb/x.txt", sha(content), (source.as_uri(),))
    stored = fetch(file, tmp_path / "root")
    assert stored == tmp_path / "root" / "ptb" / "x.txt" and stored.read_bytes() == content
    assert sorted(p.name for p in stored.parent.iterdir()) == ["x.txt"]  # no partial file left
    assert fetch(file, tmp_path / "root") == stored  # present and verified: nothing to do


def test_fetch_rejects_a_wrong_checksum_naming_the_file_and_both_hashes(tmp_path):
    source = tmp_path / "mirror.txt"
    source.write_bytes(b"not the file")
    expected = sha(b"the file")
    file = DataFile("ptb/x.txt", expected, (source.as_uri(),))
    with pytest.raises(DataError) as error:
        fetch(file, tmp_path / "root")
    message = str(error.value)
    assert "ptb/x.txt" in message and expected in message and sha(b"not the file") in message
    assert "\n" not in message
    assert not (tmp_path / "root" / "ptb").exists() or not any((tmp_path / "root" / "ptb").iterdir())


def test_fetch_tries_the_next_url_after_a_failure(tmp_path):
    content = b"payload"
    source = tmp_path / "mirror.bin"
    source.write_bytes(content)
    tried = []

    def opener(url):
        tried.append(url)
        if url.startswith("http://down"):
            raise urllib.error.URLError("Name or service not known")
        return urllib.request.urlopen(url)

    file = DataFile("music/x.pickle", sha(content), ("http://down.example/x", source.as_uri()))
    assert fetch(file, tmp_path, opener).read_bytes() == content
    assert tried == ["http://down.example/x", source.as_uri()]


def test_offline_download_is_one_line_saying_where_to_put_the_file(tmp_path):
    def offline(url):
        raise urllib.error.URLError("no network")

    file = FILES["ptb/ptb.valid.txt"]
    with pytest.raises(DataError) as error:
        fetch(file, tmp_path, offline)
    message = str(error.value)
    assert "\n" not in message and "no network" in message
    assert str(tmp_path / "ptb" / "ptb.valid.txt") in message and file.sha256 in message


def test_locate_missing_file_names_the_path_and_the_download_command(tmp_path):
    with pytest.raises(DataError) as error:
        locate("music/musedata.pickle", tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "music" / "musedata.pickle") in message
    assert "python -m rnnbench.data download musedata" in message


def test_locate_refuses_a_file_with_other_bytes_and_says_how_to_fix_it(tmp_path):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.test.txt").write_text(" a b \n")
    with pytest.raises(DataError, match=FILES["ptb/ptb.test.txt"].sha256) as error:
        locate("ptb/ptb.test.txt", tmp_path)
    message = str(error.value)
    assert "\n" not in message and sha(b" a b \n") in message
    assert f"python -m rnnbench.data download ptb --force --data-dir {tmp_path}" in message
    assert "data_dir=" in message  # or use another folder


def test_locate_a_directory_says_so(tmp_path):
    (tmp_path / "music" / "jsb_chorales.pickle").mkdir(parents=True)
    with pytest.raises(DataError) as error:
        locate("music/jsb_chorales.pickle", tmp_path)
    message = str(error.value)
    assert "\n" not in message and "not found" not in message
    assert f"{tmp_path / 'music' / 'jsb_chorales.pickle'} is a directory" in message


def test_locate_a_broken_link_says_so(tmp_path):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.train.txt").symlink_to(tmp_path / "gone" / "ptb.train.txt")
    with pytest.raises(DataError) as error:
        locate("ptb/ptb.train.txt", tmp_path)
    message = str(error.value)
    assert "\n" not in message and "not found" not in message
    assert "is a broken link" in message and str(tmp_path / "gone" / "ptb.train.txt") in message
    assert "python -m rnnbench.data download ptb --force" in message


@pytest.fixture
def one_file_registry(monkeypatch, tmp_path):
    """The registry reduced to one dataset of two files served from file:// URLs."""
    files = []
    for name, content in [("a.txt", b"first\n"), ("b.txt", b"second\n")]:
        (tmp_path / "mirror").mkdir(exist_ok=True)
        (tmp_path / "mirror" / name).write_bytes(content)
        files.append(DataFile(f"ptb/{name}", sha(content), ((tmp_path / "mirror" / name).as_uri(),)))
    monkeypatch.setattr(data, "DATASETS", {"tiny": tuple(files)})
    monkeypatch.setattr(data, "FILES", {f.path: f for f in files})
    return tmp_path / "root"


def test_download_refuses_a_bad_file_and_force_replaces_it(one_file_registry, capsys):
    root = one_file_registry
    (root / "ptb").mkdir(parents=True)
    (root / "ptb" / "a.txt").write_bytes(b"stale\n")
    with pytest.raises(SystemExit) as exit_:
        data.main(["download", "tiny", "--data-dir", str(root)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    assert "has sha256" in err[0] and "python -m rnnbench.data download tiny --force" in err[0]
    assert (root / "ptb" / "a.txt").read_bytes() == b"stale\n"  # nothing replaced without --force

    data.main(["download", "tiny", "--force", "--data-dir", str(root)])
    assert (root / "ptb" / "a.txt").read_bytes() == b"first\n"
    assert (root / "ptb" / "b.txt").read_bytes() == b"second\n"
    assert sorted(p.name for p in (root / "ptb").iterdir()) == ["a.txt", "b.txt"]


@needs_data
def test_download_force_replaces_a_corrupt_ptb_file_from_its_registered_url(monkeypatch, tmp_path):
    """The real registry: each registered URL is served from the data folder's copy of its file."""
    served = {f.urls[0]: (DATA_DIR / f.path).as_uri() for f in DATASETS["ptb"]}
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url: urllib.request.build_opener().open(served[url])
    )
    for f in DATASETS["ptb"]:
        (tmp_path / f.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f.path).write_bytes((DATA_DIR / f.path).read_bytes())
    corrupt = tmp_path / "ptb" / "ptb.valid.txt"
    corrupt.write_bytes(corrupt.read_bytes()[:-100])  # cut short
    with pytest.raises(DataError, match="download ptb --force"):
        locate("ptb/ptb.valid.txt", tmp_path)
    data.main(["download", "ptb", "--force", "--data-dir", str(tmp_path)])
    assert (
        locate("ptb/ptb.valid.txt", tmp_path).read_bytes()
        == (DATA_DIR / "ptb" / "ptb.valid.txt").read_bytes()
    )


def test_force_replaces_a_broken_link_but_never_a_directory(one_file_registry):
    root = one_file_registry
    (root / "ptb").mkdir(parents=True)
    (root / "ptb" / "a.txt").symlink_to(root / "nowhere")
    (root / "ptb" / "b.txt").mkdir()
    a, b = data.DATASETS["tiny"]
    assert fetch(a, root, force=True).read_bytes() == b"first\n"
    assert not (root / "ptb" / "a.txt").is_symlink()
    with pytest.raises(DataError, match="is a directory"):
        fetch(b, root, force=True)
    assert (root / "ptb" / "b.txt").is_dir()


def test_verify_reports_every_file_and_fails_if_any_is_bad(one_file_registry, capsys):
    root = one_file_registry
    (root / "ptb").mkdir(parents=True)
    (root / "ptb" / "a.txt").write_bytes(b"stale\n")
    with pytest.raises(SystemExit) as exit_:
        data.main(["verify", "--data-dir", str(root)])
    out, err = capsys.readouterr()
    assert exit_.value.code == 1
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["bad", "sha256"],
        ["missing", str(root / "ptb" / "b.txt")],
    ]
    assert "download tiny --force" in err

    (root / "ptb" / "b.txt").write_bytes(b"second\n")
    (root / "ptb" / "a.txt").unlink()
    (root / "ptb" / "a.txt").symlink_to(root / "ptb" / "b.txt")  # a link to other bytes is read through
    with pytest.raises(SystemExit):
        data.main(["verify", "--data-dir", str(root)])
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["bad", "ok"]

    (root / "ptb" / "a.txt").unlink()
    (root / "ptb" / "a.txt").write_bytes(b"first\n")
    data.main(["verify", "--data-dir", str(root)])  # all well: no exit
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["ok", "ok"]


def test_verify_of_an_empty_folder_lists_all_ten_files_as_missing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        data.main(["verify", "--data-dir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert exit_.value.code == 1
    assert [line.split()[1] for line in lines] == [str(tmp_path / path) for path in FILES]
    assert all(line.startswith("missing") for line in lines)


def test_download_command_offline_exits_with_one_line(monkeypatch, tmp_path, capsys):
    def offline(url):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(SystemExit) as exit_:
        data.main(["download", "jsb", "--data-dir", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "music/jsb_chorales.pickle" in err[0]


@needs_data
def test_tcn_mat_download_converts_to_the_registered_pickle(tmp_path):
    """The registered source of Piano-midi.de is the TCN .mat; converting it must give the registered
    pickle's sha256 (fetch checks it), byte for byte the pickle in the data folder."""
    registered = FILES["music/piano_midi.pickle"]
    mat = registered.source
    local_mat = DataFile(mat.path, mat.sha256, ((DATA_DIR / mat.path).as_uri(),))
    stored = fetch(DataFile(registered.path, registered.sha256, source=local_mat), tmp_path)
    assert stored.read_bytes() == (DATA_DIR / registered.path).read_bytes()
    assert (tmp_path / mat.path).is_file()


@needs_data
def test_verify_command_checks_every_file(capsys):
    data.main(["verify", "--data-dir", str(DATA_DIR)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10 and all(line.startswith("ok") for line in lines)


def rnnbench(*args, cwd, data_dir):
    # One thread per run: the test machines are small and shared.
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "RNNBENCH_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "rnnbench", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@needs_data
def test_debug_run_of_every_data_task(tmp_path):
    """``python -m rnnbench task=<name> debug=fast`` for the six tasks, as one sweep (one start-up)."""
    result = rnnbench("-m", f"task={','.join(DATA_TASKS)}", "debug=fast", cwd=tmp_path, data_dir=DATA_DIR)
    assert result.returncode == 0, result.stderr
    runs = tmp_path / "results" / "runs"
    summaries = [
        json.loads((runs / t / "lstm" / "debug=fast" / "summary.json").read_text()) for t in DATA_TASKS
    ]
    assert [s["task"] for s in summaries] == list(DATA_TASKS)
    for s in summaries:
        assert s["status"] == "completed" and s["steps"] == 12 and s["test"], s


def test_run_without_the_data_is_one_line(tmp_path):
    result = rnnbench("task=ptb", "debug=fast", cwd=tmp_path, data_dir=tmp_path / "empty")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ptb/ptb.train.txt" in lines[0] and "python -m rnnbench.data download ptb" in lines[0]
