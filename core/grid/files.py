"""Files of a raster being written: the hidden partial name beside its destination, the rename
that commits it, and removal of a raster with its side files (what a failed run leaves)."""
from __future__ import annotations

import glob
import os
import socket
import uuid

PARTIAL_TAG = ".partial-"


def partial_path(path: str) -> str:
    """A temporary name for `path` in the same folder (so the final rename is atomic), hidden,
    and unique to this host and process: two runs never write the same temporary file."""
    folder, name = os.path.split(os.path.abspath(path))
    token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return os.path.join(folder, f".{name}{PARTIAL_TAG}{token}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(path: str) -> list[str]:
    """Delete temporaries of `path` left by killed runs on this host (their process is gone).

    Temporaries of live processes and of other hosts (a shared folder) are left alone; nobody
    reads them, so at worst they cost disk until the next run on their own host."""
    folder, name = os.path.split(os.path.abspath(path))
    prefix = f".{name}{PARTIAL_TAG}{socket.gethostname()}-"
    removed = []
    for candidate in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*")):
        pid_text = candidate[len(os.path.join(folder, prefix)):].split("-", 1)[0]
        if candidate.endswith(".aux.xml") or not pid_text.isdigit():
            continue
        if not _pid_alive(int(pid_text)):
            remove_raster(candidate)
            removed.append(candidate)
    return removed


def commit_partial(partial: str, path: str) -> None:
    """Move a finished temporary raster (and its .aux.xml) into place under `path`.

    The raster itself is renamed last and in one step, so `path` is either the old file, absent,
    or the complete new one. An old side-car of `path` is removed first: it describes the old
    raster (class names, statistics) and would otherwise be read as the new one's."""
    for suffix in (".aux.xml", ".ovr"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    if os.path.exists(partial + ".aux.xml"):
        os.replace(partial + ".aux.xml", path + ".aux.xml")
    os.replace(partial, path)


def remove_raster(path: str) -> None:
    """Delete a raster and its side-car files, ignoring ones that do not exist."""
    for candidate in (path, path + ".aux.xml", path + ".ovr"):
        if os.path.exists(candidate):
            os.remove(candidate)
