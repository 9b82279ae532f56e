"""A writer's output waiting to be shipped: chunks kept as they came, copied once, into the part.

The writer used to append its output to one bytearray and copy each part out of it. Every byte
was then copied three times on the main thread (the append, the bytearray's reallocation as it
grew to a part, the copy out), and each growth wrote to freshly mapped pages. On the benchmark
corpus (perf, 500k JSONL records) that was a quarter of the main thread's time, most of it page
faults. Here a chunk is kept by reference and its bytes are copied once, by the join that makes
the part; a part made of one whole chunk is that chunk, not a copy.
"""

from __future__ import annotations


class PartBuffer:
    """Bytes in order, as a list of chunks; `take` removes a part from the front."""

    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        # A chunk split by `take` stays as a memoryview of its rest (no copy of it).
        self._chunks: list[bytes | memoryview] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        return b"".join(self._chunks)

    def append(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._size += len(data)

    def take(self, size: int) -> bytes:
        """The first `size` bytes (all of them when fewer are held), removed from the buffer."""
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
        chunks = self._chunks
        self._chunks = []
        self._size = 0
        return b"".join(chunks)  # one whole bytes chunk comes back as itself, not a copy
