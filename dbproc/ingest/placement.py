"""Crash-safe file placement (reliability.md B2-B3).

Files enter the archive by ``os.link`` (never ``rename``, which silently overwrites) after
their bytes are fsynced, and the directory entry is fsynced after; a copy across
filesystems goes through a staging file on the archive's filesystem first. Nothing here
ever overwrites a file that exists.
"""

from __future__ import annotations

import errno
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

BLOCK = 1 << 20


@dataclass(frozen=True)
class Digest:
    """sha256 and size of some bytes."""

    sha256: str
    size: int


def hash_file(path: Path) -> Digest:
    """sha256 and size of the file at ``path`` (read once, in blocks)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
            size += len(block)
    return Digest(digest.hexdigest(), size)


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries to disk (makes a link or unlink durable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """Create ``path`` and its parents, fsyncing each new entry."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            pass
        fsync_dir(folder.parent)


class Occupied(Exception):
    """The destination holds a different file (never overwritten)."""

    def __init__(self, dst: Path, sha256: str) -> None:
        super().__init__(f"{dst} already holds a different file (sha256 {sha256[:12]}…)")
        self.dst = dst
        self.sha256 = sha256


def copy_hashed(src: Path, dst: Path) -> Digest:
    """Copy ``src`` to the new file ``dst`` (O_EXCL), hashing while copying, then fsync."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with src.open("rb") as fh:
            while block := fh.read(BLOCK):
                digest.update(block)
                size += len(block)
                view = memoryview(block)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(dst)
        except OSError:
            pass
        raise
    os.close(fd)
    return Digest(digest.hexdigest(), size)


def place(
    src: Path,
    dst: Path,
    expected: Digest,
    staging: Path,
    *,
    sync_folder: bool = True,
    sync_source: bool = True,
) -> bool:
    """Put the bytes of ``src`` at ``dst`` without ever overwriting; return True if placed now.

    ``expected`` is the digest of ``src``. When ``dst`` already holds the same bytes (a
    leftover of a crashed pass) nothing is done and False is returned; when it holds other
    bytes :class:`Occupied` is raised. Across filesystems the bytes are copied into
    ``staging`` (on ``dst``'s filesystem) first and linked from there. With
    ``sync_folder=False`` the caller fsyncs ``dst``'s folder (once for many files) and
    removes the new link if that fails; ``sync_source=False`` says ``src``'s bytes are
    already durable.
    """
    make_dirs(dst.parent)
    try:
        if sync_source:
            fsync_file(src)
        os.link(src, dst)
    except FileExistsError:
        return _check_existing(src, dst, expected)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        return _place_by_copy(src, dst, expected, staging, sync_folder)
    if sync_folder:
        _fsync_new_entry(dst)
    return True


def _fsync_new_entry(dst: Path) -> None:
    """fsync the folder of a link just made; on failure remove the link (nothing records
    it yet) so that a write error never leaves an unregistered file behind."""
    try:
        fsync_dir(dst.parent)
    except OSError:
        try:
            os.unlink(dst)
        except OSError:
            pass
        raise


def _check_existing(src: Path, dst: Path, expected: Digest) -> bool:
    if dst.is_symlink() or not dst.is_file():
        raise Occupied(dst, "(not a regular file)")
    try:
        if os.path.samefile(src, dst):
            return False
    except OSError:
        pass
    found = hash_file(dst)
    if found != expected:
        raise Occupied(dst, found.sha256)
    return False


def _place_by_copy(
    src: Path, dst: Path, expected: Digest, staging: Path, sync_folder: bool
) -> bool:
    make_dirs(staging)
    tmp = staging / f"{uuid.uuid4().hex}.part"
    try:
        copied = copy_hashed(src, tmp)
        if copied != expected:
            raise OSError(errno.EIO, f"{src} changed while it was copied")
        fsync_dir(staging)
        try:
            os.link(tmp, dst)
        except FileExistsError:
            return _check_existing(tmp, dst, expected)
        if sync_folder:
            _fsync_new_entry(dst)
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def unlink_durably(path: Path) -> None:
    """Remove a file (already gone is fine) and fsync its directory."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


NAME_MAX = 255
#: What a rejected file's sidecar adds to its name.
REASON_SUFFIX = ".reason"


def fit_name(name: str, suffix: str = "", limit: int = NAME_MAX) -> str:
    """``name + suffix`` with ``name`` cut (at a character boundary) to fit ``limit`` bytes."""
    encoded = name.encode("utf-8", "surrogateescape")
    room = limit - len(suffix.encode("utf-8"))
    if len(encoded) <= room:
        return name + suffix
    return encoded[:room].decode("utf-8", "ignore") + suffix


def _link_no_clobber(src: Path, dst: Path) -> bool:
    """Give ``src`` the new name ``dst`` (hard link, or copy across filesystems).

    Returns False, changing nothing, when ``dst`` exists. ``src`` may be a symlink (the
    link itself is linked or copied). The caller removes ``src``.
    """
    if os.path.lexists(dst):
        return False
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        if src.is_symlink():
            try:
                os.symlink(os.readlink(src), dst)
            except FileExistsError:
                return False
        else:
            try:
                copy_hashed(src, dst)
            except FileExistsError:
                return False
            st = src.stat()
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    fsync_dir(dst.parent)
    return True


def move_file(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst`` without ever overwriting (FileExistsError when ``dst`` exists)."""
    make_dirs(dst.parent)
    if not _link_no_clobber(src, dst):
        raise FileExistsError(errno.EEXIST, f"{dst} already exists")
    unlink_durably(src)


def move_aside(src: Path, folder: Path, name: str, *, reserve: int = 0) -> Path:
    """Move ``src`` into ``folder`` as ``name`` (``name.1``, ``name.2``… if taken); no clobber.

    Names are cut to leave ``reserve`` bytes of the file-name limit free (room for a
    sidecar's suffix). Works for symlinks (the link itself moves). Returns the new path.
    """
    make_dirs(folder)
    limit = NAME_MAX - reserve
    for n in range(0, 100_000):
        candidate = folder / fit_name(name, "" if n == 0 else f".{n}", limit)
        if src.is_dir() and not src.is_symlink():  # a folder cannot be linked: rename it
            if os.path.lexists(candidate):
                continue
            os.rename(src, candidate)
            fsync_dir(folder)
            fsync_dir(src.parent)
            return candidate
        if _link_no_clobber(src, candidate):
            unlink_durably(src)
            return candidate
    raise OSError(errno.EEXIST, f"no free name for {name} in {folder}")
