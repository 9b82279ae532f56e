"""Streaming compressors: whatever the chunking, one object is exactly one gzip member or one zstd
frame holding exactly the bytes fed, and the output is deterministic."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import zlib

import pytest
import zstandard

from destination_s3.compression import ZSTD_WINDOW_LOG, new_compressor
from destination_s3.config import Compression

CODECS = [Compression.GZIP, Compression.ZSTD]

TEXT = b"".join(
    b'{"id":%d,"name":"user %d","tags":["a","b"],"note":"%s"}\n' % (n, n % 97, b"x" * (n % 50))
    for n in range(20_000)
)
RANDOM = random.Random(7).randbytes(300_000)  # incompressible: output larger than input


def compress(compression: Compression, chunks: list[bytes]) -> bytes:
    compressor = new_compressor(compression)
    return b"".join(compressor.compress(chunk) for chunk in chunks) + compressor.finish()


def one_member_or_frame(compression: Compression, body: bytes) -> bytes:
    """The bytes of `body`, asserting it is ONE gzip member / zstd frame and nothing after it."""
    if compression is Compression.GZIP:
        inflate = zlib.decompressobj(wbits=31)  # one member only: stops at its end
        data = inflate.decompress(body)
        assert inflate.eof and inflate.unused_data == b"" and inflate.unconsumed_tail == b""
        assert gzip.decompress(body) == data  # and gzip (which reads every member) agrees
        return data
    decompressor = zstandard.ZstdDecompressor().decompressobj()  # one frame only
    data = decompressor.decompress(body)
    assert decompressor.eof and decompressor.unused_data == b""
    assert zstandard.ZstdDecompressor().decompress(body, max_output_size=len(data) + 1) == data
    return data


def chunkings(data: bytes) -> list[list[bytes]]:
    rng = random.Random(len(data))
    uneven, start = [], 0
    while start < len(data):
        size = rng.choice([0, 1, 7, 4096, 65_536, 300_000])
        uneven.append(data[start : start + size])
        start += size
    return [[data], [data[i : i + 1000] for i in range(0, len(data), 1000)], uneven, [b"", data]]


@pytest.mark.parametrize("compression", CODECS)
@pytest.mark.parametrize("data", [TEXT, RANDOM, b"a,b\r\n", b""], ids=["text", "random", "1", "0"])
def test_one_member_or_frame_with_exactly_the_bytes_fed(
    compression: Compression, data: bytes
) -> None:
    for chunks in chunkings(data):
        assert one_member_or_frame(compression, compress(compression, chunks)) == data


@pytest.mark.parametrize("compression", CODECS)
def test_output_is_deterministic(compression: Compression) -> None:
    # The same bytes fed the same way give the same object (no time stamp, no random seed). How
    # the bytes are cut may move gzip's block boundaries; the content is the same (above).
    for chunks in chunkings(TEXT):
        assert compress(compression, chunks) == compress(compression, chunks)


@pytest.mark.parametrize(("compression", "ratio"), [(Compression.GZIP, 4), (Compression.ZSTD, 4)])
def test_text_is_compressed(compression: Compression, ratio: int) -> None:
    assert len(compress(compression, [TEXT])) * ratio < len(TEXT)


def test_gzip_header_has_no_time_and_no_name() -> None:
    body = compress(Compression.GZIP, [TEXT])
    assert body[:4] == b"\x1f\x8b\x08\x00"  # magic, deflate, no FNAME/FCOMMENT/FEXTRA flags
    assert body[4:8] == b"\x00\x00\x00\x00"  # MTIME 0: the same records give the same bytes


def test_zstd_frame_has_a_checksum_and_a_bounded_window() -> None:
    body = compress(Compression.ZSTD, [TEXT])
    parameters = zstandard.get_frame_parameters(body)
    assert parameters.has_checksum
    assert parameters.window_size <= 1 << ZSTD_WINDOW_LOG
    corrupted = bytearray(body)
    corrupted[len(body) // 2] ^= 0xFF
    with pytest.raises(zstandard.ZstdError):
        zstandard.ZstdDecompressor().decompress(bytes(corrupted), max_output_size=len(TEXT) * 2)


def test_no_compression_passes_bytes_through() -> None:
    compressor = new_compressor(Compression.NONE)
    assert compressor.compress(b"a\n") == b"a\n"
    assert compressor.finish() == b""


@pytest.mark.parametrize(
    ("compression", "tool"), [(Compression.GZIP, "gzip"), (Compression.ZSTD, "zstd")]
)
def test_the_command_line_tool_reads_it(compression: Compression, tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    body = compress(compression, [TEXT[:100_000], TEXT[100_000:]])
    result = subprocess.run([tool, "-d", "-c"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == TEXT


def test_compressors_of_interleaved_objects_are_independent() -> None:
    data = [os.urandom(1000) + TEXT[:50_000], TEXT[50_000:150_000]]
    for compression in CODECS:
        compressors = [new_compressor(compression) for _ in data]
        outputs = [b"", b""]
        for start in range(0, 150_000, 10_000):
            for index, compressor in enumerate(compressors):
                outputs[index] += compressor.compress(data[index][start : start + 10_000])
        outputs = [
            out + compressor.finish() for out, compressor in zip(outputs, compressors, strict=True)
        ]
        assert [one_member_or_frame(compression, out) for out in outputs] == data
