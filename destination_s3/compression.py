"""Per-object streaming compressors: every object is exactly one gzip member or one zstd frame.

A writer feeds its object's bytes through `compress` as they are buffered and ends the object with
`finish`, so no object is ever held whole, compressed or not. One compressor lives per OPEN object
(500 streams: 500 of them, outside the stream-buffer budget), so each codec is set for memory as
much as for speed. Figures from the benchmark corpus (README "Compression"):

- gzip through ISA-L (`isal`) level 1: the size of zlib's level 3 (JSONL 4.08x) for a fifth of zlib
  level 1's CPU (0.6 µs per record instead of 2.5). memLevel 3 keeps the ratio of the default
  (8) with 165 KiB per open object instead of 360 KiB (zlib: 260 KiB).
- zstd level 1, 32 KiB window (2^15, gzip's): level 1 compresses this corpus as well as level 3
  at half its CPU, and level 3's match tables alone take 768 KiB per object. The 32 KiB window
  costs 4-5 % of size against the default 512 KiB and keeps an open object at ≈ 230 KiB instead of
  ≈ 900: 500 streams peak at 247 MB RSS (2^16: 286-299 MB, too close to the 300 MB bound).

The output is deterministic (no time stamp or file name in the gzip header) and needs no
Content-Encoding: readers infer the codec from the `.gz` / `.zst` extension.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from destination_s3.config import Compression

# The codecs are imported by the first compressor that needs one: a sync without compression
# (and every `write` start-up) does not load them (≈6 MB of RSS).
if TYPE_CHECKING:
    import zstandard

GZIP_LEVEL = 1
GZIP_MEM_LEVEL = 3
_GZIP_WBITS = 16 + 15  # a gzip wrapper around deflate with the usual 32 KiB window

ZSTD_LEVEL = 1
ZSTD_WINDOW_LOG = 15


@functools.cache
def _zstd_parameters() -> zstandard.ZstdCompressionParameters:
    import zstandard

    # A content checksum (XXH64, 4 bytes per object) lets every zstd reader detect corruption,
    # as the CRC32 of gzip does.
    return zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, window_log=ZSTD_WINDOW_LOG, write_checksum=1
    )


# The chunker's output buffer: small, since one exists per open object (the library's default is
# 128 KiB); output is handed over in chunks of this size.
_ZSTD_CHUNK = 16 * 1024


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes:
        """Compressed bytes of `data` that are ready (the codec may hold some back)."""
        ...

    def finish(self) -> bytes:
        """The rest of the object's compressed bytes; the compressor cannot be used after."""
        ...

    @property
    def held_bytes(self) -> int:
        """Input taken and not yet turned into output, counted in the sync's memory budget
        (a codec's window is not: it is bounded per object)."""
        ...

    def release(self) -> bytes:
        """Under memory pressure: output as much of the held input as can be, now."""
        ...


class _Unbuffered:
    """A codec that holds no input beyond its bounded window."""

    held_bytes = 0

    def release(self) -> bytes:
        return b""


class _Identity(_Unbuffered):
    def compress(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Gzip(_Unbuffered):
    def __init__(self) -> None:
        from isal import isal_zlib

        self._deflate: Any = isal_zlib.compressobj(
            GZIP_LEVEL, isal_zlib.DEFLATED, _GZIP_WBITS, GZIP_MEM_LEVEL
        )

    def compress(self, data: bytes) -> bytes:
        return bytes(self._deflate.compress(data))

    def finish(self) -> bytes:
        return bytes(self._deflate.flush())


class _Zstd(_Unbuffered):
    def __init__(self) -> None:
        # One ZstdCompressor per object: it owns the compression context, which cannot be shared
        # by two frames in progress.
        import zstandard

        context = zstandard.ZstdCompressor(compression_params=_zstd_parameters())
        chunker = context.chunker(chunk_size=_ZSTD_CHUNK)
        # zstandard's stubs leave the chunker's methods unannotated: both yield bytes chunks.
        self._compress = cast(Callable[[bytes], Iterable[bytes]], chunker.compress)
        self._finish = cast(Callable[[], Iterable[bytes]], chunker.finish)

    def compress(self, data: bytes) -> bytes:
        return b"".join(self._compress(data)) if data else b""

    def finish(self) -> bytes:
        return b"".join(self._finish())


def new_compressor(compression: Compression) -> Compressor:
    """A compressor for one new object (`Compression.NONE`: bytes pass through unchanged)."""
    if compression is Compression.GZIP:
        return _Gzip()
    if compression is Compression.ZSTD:
        return _Zstd()
    return _Identity()
