"""A writer's output waiting to be shipped: chunks kept as they came, copied once, into the part.

The writer used to append its output to one bytearray and copy each part out of it. Every byte
was then copied three times on the main thread (the append, the bytearray's reallocation as it
grew to a part, the copy out), and each growth wrote to freshly mapped pages. On the benchmark
corpus (perf, 500k JSONL records) that was a quarter of the main thread's time, most of it page
faults. Here a chunk is kept by reference and its bytes are copied once, by the join that makes
the part; a part made of one whole chunk is that chunk, not a copy.

Under memory pressure the chunks can be moved to a spill file (spill.py). Spilled bytes always
come before the chunks in memory (a spill moves every chunk), so parts read the file first.
"""

from __future__ import annotations

from collections.abc import Callable

from destination_s3.spill import SpillFile


class PartBuffer:
    """Bytes in order, as a list of chunks; `take` removes a part from the front."""

    __slots__ = ("_chunks", "_size", "_spill")

    def __init__(self) -> None:
        # A chunk split by `take` stays as a memoryview of its rest (no copy of it).
        self._chunks: list[bytes | memoryview] = []
        self._size = 0  # bytes held, in memory and spilled
        self._spill: SpillFile | None = None  # only while it holds bytes

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        """A look at every byte held, without taking them (a spill is not read back)."""
        assert self._spill is None, "a spilled buffer is only read by taking"
        return b"".join(self._chunks)

    @property
    def spilled(self) -> int:
        """Bytes held in the spill file."""
        return len(self._spill) if self._spill is not None else 0

    @property
    def in_memory(self) -> int:
        return self._size - self.spilled

    def spill(self, open_file: Callable[[], SpillFile]) -> int:
        """Move the chunks in memory to the spill file (`open_file` makes one when there is
        none); returns the bytes moved. On OSError every byte stays where it was."""
        if not self._chunks:
            return 0
        spill = self._spill if self._spill is not None else open_file()
        try:
            spill.append(self._chunks)
        except OSError:
            if spill is not self._spill:
                spill.close()
            raise
        self._spill = spill
        moved = sum(map(len, self._chunks))
        self._chunks = []
        return moved

    def close(self) -> None:
        """Drop every byte held, the spill file too."""
        self._chunks = []
        self._size = 0
        self._drop_spill()

    def _drop_spill(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def _take_spilled(self, size: int) -> bytes:
        assert self._spill is not None
        data = self._spill.read(size)
        self._size -= len(data)
        if not len(self._spill):
            self._drop_spill()  # frees its disk space now, and its file descriptor
        return data

    def append(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._size += len(data)

    def take(self, size: int) -> bytes:
        """The first `size` bytes (all of them when fewer are held), removed from the buffer."""
        if self._spill is not None:
            from_disk = self._take_spilled(size)
            if len(from_disk) == size:
                return from_disk
            return from_disk + self.take(size - len(from_disk))
        if size >= self._size:
            return self.take_all()
        chunks = self._chunks
        count = taken = 0
        while taken < size:
            taken += len(chunks[count])
            count += 1
        head, rest = chunks[:count], chunks[count:]
        over = taken - size  # bytes of the last chunk taken that belong to the next part
        if over:
            last = memoryview(head[-1])
            cut = len(last) - over
            head[-1] = last[:cut]
            rest.insert(0, last[cut:])
        self._chunks = rest
        self._size -= size
        return b"".join(head)

    def take_all(self) -> bytes:
        """Every byte held, removed from the buffer."""
        if self._spill is not None:
            return self.take(self._size)
        chunks = self._chunks
        self._chunks = []
        self._size = 0
        return b"".join(chunks)  # one whole bytes chunk comes back as itself, not a copy
