"""helpers.files.atomic_write: the one way the course writes a file or folder that must never be half-written."""
import os
import stat
import subprocess
import sys
import time

import pytest

from helpers import files


def test_writes_the_file_with_the_usual_permissions_and_no_leftovers(tmp_path):
    path = files.atomic_write_text(tmp_path / "deeper" / "results.json", "{}\n")
    assert path.read_text() == "{}\n"
    assert os.listdir(path.parent) == ["results.json"]
    if sys.platform != "win32":
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & stat.S_IRGRP and mode & stat.S_IROTH, f"others cannot read the file (mode {oct(mode)})"


def test_a_failing_writer_leaves_the_old_content_and_no_temporary(tmp_path):
    path = files.atomic_write_text(tmp_path / "results.json", "old")

    def half_then_crash(tmp):
        tmp.write_text("ne")
        raise KeyboardInterrupt("stopped while writing")

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(path, half_then_crash)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["results.json"]


def test_a_folder_is_moved_into_place_whole(tmp_path):
    def unpack(tmp):
        (tmp / "train").mkdir(parents=True)
        (tmp / "train" / "a.txt").write_text("a")

    target = files.atomic_write(tmp_path / "fer2013", unpack)
    assert (target / "train" / "a.txt").read_text() == "a"
    assert sorted(os.listdir(tmp_path)) == ["fer2013"]


def test_a_writer_that_creates_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="did not create"):
        files.atomic_write(tmp_path / "x.txt", lambda tmp: None)


@pytest.mark.skipif(sys.platform == "win32", reason="uses a finished process id")
def test_the_next_write_removes_temporaries_left_by_a_killed_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()            # a process that has ended
    stale = tmp_path / f".last.pt.{dead}-0badc0de.tmp"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    mine = tmp_path / f".last.pt.{os.getpid()}-12345678.tmp"                # a live writer's: kept
    mine.write_bytes(b"in progress")
    other = tmp_path / f".best.pt.{dead}-0badc0de.tmp"                      # another file's: not touched
    other.write_bytes(b"x")
    young = tmp_path / f".last.pt.{dead}-1ee7c0de.tmp"                      # seconds old: maybe another host's
    young.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    for old in (stale, mine, other):
        os.utime(old, (an_hour_ago, an_hour_ago))
    files.atomic_write_text(tmp_path / "last.pt", "new")
    assert not stale.exists() and mine.exists() and other.exists() and young.exists()
    assert (tmp_path / "last.pt").read_text() == "new"
