"""Writing files so that nothing a learner saved is ever half-written: ``atomic_write``.

The new content goes to a temporary name beside the target (a file's bytes are flushed to disk) and
is then renamed over the target with ``os.replace``, which is atomic: a reader sees the old file or
the new one, never a mix. Checkpoints, ``results.json``, figures, the README table and the data
finder's unpacking all use it.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

TMP_SUFFIX = ".tmp"
MIN_AGE_S = 60              # younger temporaries are never removed (their writer may be on another machine)
STALE_AFTER_S = 3600        # where a writer's process cannot be checked (Windows): an hour-old temporary is stale


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")


def _writer_alive(tmp: Path, now: float) -> bool:
    """Return True if the process that made temporary `tmp` may still be writing it."""
    age = now - tmp.lstat().st_mtime
    if age < MIN_AGE_S:
        return True
    pid_text = tmp.name.rsplit(".", 2)[-2].split("-")[0]
    if sys.platform == "win32" or not pid_text.isdigit():
        return age < STALE_AFTER_S
    try:
        os.kill(int(pid_text), 0)          # signal 0 only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:                # it exists, under another user
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporaries that earlier, killed writes of `path` left beside it; return what was deleted."""
    path = Path(path)
    now, removed = time.time(), []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TMP_SUFFIX}"):
        try:
            if not _writer_alive(tmp, now):
                _remove(tmp)
                removed.append(tmp)
        except OSError:                    # gone already, or not ours to delete
            continue
    return removed


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to create the new file (or folder) at a temporary path, then move it to `path`.

    `path` keeps its old content until the new one is complete; if `write` raises, the temporary is
    deleted and the error propagates. Temporaries left by a write that was killed are cleaned up by
    a later write of the same path (once they are a minute old). The new file gets the permissions
    any new file gets (0644 under the common umask). Returns `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _temporary_name(path)
    try:
        write(tmp)
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_write: the writer did not create {tmp.name}")
        _fsync(tmp)                        # a file's bytes on disk before the rename
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            _remove(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` with ``atomic_write``; return the path."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
