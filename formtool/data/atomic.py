"""Write files atomically: a temporary file beside the target, then a rename.

An error or an interruption leaves either the old file or the new one, never a
half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from formtool.errors import OutputError


@contextlib.contextmanager
def replacing(path: Path, *, mode: str = "wb", encoding: str | None = None,
              newline: str | None = None, fsync: bool = True
              ) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file that replaces ``path`` when the block ends without error.

    ``fsync=False`` skips flushing to disk, for bulk files that can be made again.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: kann nicht geschrieben werden ({exc.strerror}).") from None
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: kann nicht geschrieben werden ({exc.strerror}).") from None
        raise


def write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    with replacing(path, fsync=fsync) as fh:
        fh.write(data)
