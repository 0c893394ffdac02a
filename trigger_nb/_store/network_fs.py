"""The warning for a diskcache store on a network filesystem (NFS, CIFS/SMB, sshfs, Lustre...).

diskcache is SQLite, and SQLite's file locking is unreliable on network filesystems ("buggy or
even unimplemented", SQLite's docs; "SQLite and NFS don't play nice", diskcache's maintainer):
two kernels may both believe they hold a run, or the database may be damaged. JupyterHub home
directories are often NFS, so the store says so once per process and points to the PostgreSQL
store. Linux only (``/proc/mounts``); elsewhere nothing is checked.
"""

from __future__ import annotations

import os
import sys

MOUNTS_FILE = "/proc/mounts"
# Filesystem types (the third field of /proc/mounts) whose locking SQLite cannot rely on.
NETWORK_TYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "sshfs", "lustre",
        "gpfs", "ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs", "9p", "afs", "ncpfs",
        "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs", "beegfs", "orangefs",
    }
)  # fmt: skip

_warned = False


def network_filesystem(path: str, mounts: str) -> tuple[str, str] | None:
    """``(mount point, filesystem type)`` if ``path`` (absolute) lies on a network filesystem
    according to ``mounts`` (the text of /proc/mounts), else None. The deepest mount point
    containing the path decides, as it does for the kernel."""
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[0])):
            best = (point, fields[2])
    if best is not None and best[1].lower() in NETWORK_TYPES:
        return best
    return None


def network_warning(path: str, mounts: str) -> str | None:
    """The warning for a store directory at ``path`` (None when it is on a local disk)."""
    found = network_filesystem(path, mounts)
    if found is None:
        return None
    point, kind = found
    return (
        f"trigger_nb: warning: the store at {path} is on a network filesystem ({kind} at {point}). "
        "diskcache keeps it in SQLite, whose locks are unreliable there: two kernels may run "
        "the same task at once and the store can be damaged. Use the PostgreSQL store "
        "(TRIGGER_NB_STORE=postgresql://user@host/db, or store='postgresql://...'; pip install "
        "'trigger_nb[postgres]'), or a store directory on a local disk (TRIGGER_NB_DIR)."
    )


def warn_if_network(path: str, mounts: str | None = None) -> None:
    """Warn on stderr, once per process, if the store at ``path`` is on a network filesystem;
    ``mounts``: the mount table to judge by (default: this machine's /proc/mounts).

    Printed, not ``warnings.warn``: under a "turn warnings into errors" filter (pytest's, say)
    a warning would stop the store from opening at all, which is worse than the risk."""
    global _warned
    if _warned:
        return
    if mounts is None:
        try:
            with open(MOUNTS_FILE, encoding="utf-8", errors="replace") as file:
                mounts = file.read()
        except OSError:
            return  # not Linux: nothing to judge by
    message = network_warning(os.path.abspath(path), mounts)
    if message is not None:
        _warned = True
        print(message, file=sys.stderr)


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
