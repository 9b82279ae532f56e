"""A stream buffer's bytes moved to local disk under memory pressure (see memory.py for when).

With hundreds of interleaved streams the buffer budget fills long before any stream has a part's
worth of output (S3's 5 MiB minimum): freeing memory by completing objects made three small
objects per stream, each with its own requests. Spilled bytes stay the open object's; they are
read back, in order, when the object ships a part or completes.

A spill file is anonymous (unlinked as it is created): a crash, even SIGKILL, leaves nothing on
disk, and its space is freed as soon as the buffer has read it all back.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence


class SpillFile:
    """Bytes appended at the end and read from the front, in order (positional I/O, no buffer
    of its own: a failed write leaves what was spilled before readable as it was)."""

    __slots__ = ("_end", "_file", "_start")

    def __init__(self, directory: str | None) -> None:
        # Open for the buffer's life, not one `with` block; close() ends it.
        self._file = tempfile.TemporaryFile(dir=directory, buffering=0)  # noqa: SIM115
        self._start = 0  # the next byte to read back
        self._end = 0  # the end of the bytes written

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Write `chunks` after the bytes already spilled; on OSError nothing counts as written."""
        data = memoryview(b"".join(chunks))
        fd, at = self._file.fileno(), self._end
        while data:
            written = os.pwrite(fd, data, at)
            data, at = data[written:], at + written
        self._end = at

    def read(self, size: int) -> bytes:
        """The first `size` bytes not read yet (all of them when fewer are left)."""
        size = min(size, len(self))
        pieces, fd = [], self._file.fileno()
        while size:
            piece = os.pread(fd, size, self._start)
            if not piece:
                raise OSError(f"spill file ended {size} bytes early")
            pieces.append(piece)
            self._start += len(piece)
            size -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self) -> None:
        self._file.close()
