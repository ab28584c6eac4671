"""Write files atomically: a temporary file beside the target, then a rename.

An error or an interruption leaves either the old file or the new one, never a
half-written file. The new file keeps the old one's permissions (a temporary
file is created 0600; a table that was 0644 stays 0644).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from formtool.errors import OutputError, os_reason

DEFAULT_MODE = 0o644  # a new file as other programs would make it (less the umask)


def failed(path: Path, exc: OSError) -> OutputError:
    """The German error for writing ``path``."""
    if exc.errno == 28:
        return OutputError(f"{path}: der Datenträger ist voll; bitte Platz schaffen. Die Datei "
                           "bleibt, wie sie war.")
    return OutputError(f"{path}: kann nicht geschrieben werden ({os_reason(exc)}).")


class AtomicFile:
    """An open temporary file that takes the place of ``path`` on ``commit``."""

    def __init__(self, path: Path, *, mode: str = "wb", encoding: str | None = None,
                 newline: str | None = None, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise failed(path, exc) from None
        self.tmp = Path(tmp)
        try:
            self.fh: IO[Any] = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)
            self.tmp.unlink()
            raise

    def commit(self) -> None:
        try:
            self.fh.flush()
            if self.fsync:
                os.fsync(self.fh.fileno())
            self.fh.close()
            try:
                mode = stat.S_IMODE(self.path.stat().st_mode)
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = DEFAULT_MODE & ~umask
            os.chmod(self.tmp, mode)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise failed(self.path, exc) from None

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


@contextlib.contextmanager
def replacing(path: Path, *, mode: str = "wb", encoding: str | None = None,
              newline: str | None = None, fsync: bool = True
              ) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the block ends without error.

    ``fsync=False`` skips flushing to disk, for bulk files that can be made again.
    """
    file = AtomicFile(path, mode=mode, encoding=encoding, newline=newline, fsync=fsync)
    try:
        yield file.fh
    except BaseException as exc:
        file.abort()
        if isinstance(exc, OSError):
            raise failed(path, exc) from None
        raise
    file.commit()


def write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    with replacing(path, fsync=fsync) as fh:
        fh.write(data)
