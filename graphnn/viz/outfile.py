"""Write output files whole or not at all, and name the file and the reason when one cannot be written.

`write_atomic` writes into a temporary file in the target's directory and renames it over the target, so an
interrupted or failed write never leaves a half-written file at the path. Errors are OSErrors whose
`filename` is the target path (not the temporary file); `describe` turns one into the CLI's one-line message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat


def _fail(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


@contextlib.contextmanager
def _naming(path: str):
    """Re-raise an OSError with `path` as its file name (not a temporary file's)."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), path) from None


def _nearest_existing(folder: str) -> str:
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder


def _temp_name(target: str) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _special(target: str, path: str) -> bool:
    """Raise for a directory or a read-only file at `target`; True for a device or pipe (written in place)."""
    if os.path.isdir(target):
        raise _fail(errno.EISDIR, path)
    if not os.path.exists(target):
        return False
    if not os.access(target, os.W_OK):
        raise _fail(errno.EACCES, path)
    return not os.path.isfile(target)


def check_writable(path: str, make_dirs: bool = False) -> None:
    """Raise an OSError naming `path` when it cannot be written (a directory, a missing, read-only or special
    folder), by creating and removing a temporary file beside it; a cheap check before long work.
    `make_dirs`: missing folders will be created, so only their nearest existing one is checked."""
    target = os.path.realpath(path)
    with _naming(path):
        if _special(target, path):
            return
        folder = os.path.dirname(target)
        existing = _nearest_existing(folder) if make_dirs else folder
        if not os.path.isdir(existing):
            raise _fail(errno.ENOTDIR if os.path.exists(existing) else errno.ENOENT, path)
        if existing != folder:
            if not os.access(existing, os.W_OK | os.X_OK):
                raise _fail(errno.EACCES, path)
            return
        tmp = _temp_name(target)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.remove(tmp)


def _replace(target: str, data: bytes) -> None:
    mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.exists(target) else None
    tmp = _temp_name(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # keep the replaced file's permissions
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_atomic(path: str, data: bytes | str, make_dirs: bool = False) -> None:
    """Write `data` (str as UTF-8) to `path` via a temporary file renamed over it; a device or pipe such as
    /dev/stdout is written directly. `make_dirs`: create missing folders. Raises OSError naming `path`."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    target = os.path.realpath(path)  # write through a symlink, as open() does
    with _naming(path):
        if _special(target, path):
            with open(target, "wb") as f:
                f.write(data)
            return
        if make_dirs:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        _replace(target, data)


def describe(e: OSError) -> str:
    """'cannot write PATH: REASON' for an error of `write_atomic` or `check_writable`."""
    reason = e.strerror or str(e)
    return f"cannot write {e.filename}: {reason}" if e.filename else f"cannot write output: {reason}"
