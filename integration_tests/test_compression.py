"""`format.compression`: every format with GZIP and ZSTD, written by the connector (a subprocess)
and read back with the gzip / zstandard modules, pandas and DuckDB — exact records, one gzip
member or zstd frame per object, multipart objects, overwrite of compressed objects, and an
Airbyte-style config."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from integration_tests.connector import (
    MakeConfig,
    Message,
    configured_catalog,
    now_ms,
    record,
    run_write,
    stream_state,
)
from integration_tests.readback import (
    AB_ID,
    ADDITIONAL_PROPERTIES,
    EMITTED_AT,
    FIXED_EMITTED_AT,
    METADATA,
    MIB,
    assert_clean_stdout,
    assert_jsonl_envelope,
    assert_metadata,
    assert_object_keys,
    assert_uuid4,
    csv_rows,
    direct_keys,
    jsonl_lines,
)
from integration_tests.readers import (
    decompress,
    download,
    read_csv_with_readers,
    read_jsonl_with_readers,
)
from integration_tests.s3_server import MotoServer

CODECS = {"GZIP": "gz", "ZSTD": "zst"}
FORMATS: dict[str, dict[str, str]] = {
    "jsonl": {"format_type": "JSONL"},
    "csv": {"format_type": "CSV", "flattening": "No flattening"},
    "csv_root": {"format_type": "CSV", "flattening": "Root-level flattening"},
}
CONTENT_TYPES = {"jsonl": "application/jsonl", "csv": "text/csv; charset=utf-8"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"user_id": {"type": "integer"}, "name": {"type": "object"}, "text": {}},
}
COLUMNS = list(SCHEMA["properties"])
DATA: list[dict[str, Any]] = [
    {"user_id": 123, "name": {"first": "John", "last": "Doe"}},
    {"user_id": 456, "name": {"first": "Jane", "last": "Roe"}, "tags": ["a", "b,c"]},
    {"text": 'quote " comma , newline \n crlf \r\n tab \t end', "unicode": "héllo ✓ 😀"},
    {"big": 12345678901234567890, "float": 0.1, "exponent": 1e100, "negative": -1},
    {"null": None, "empty_object": {}, "empty_array": [], "bools": [True, False]},
    {"deep": [[1, [2, {"a": [3, {"b": None}]}]]]},
    {},
]


def sent_records(stream: str, data: list[dict[str, Any]] = DATA) -> list[Message]:
    return [record(stream, item, emitted_at=FIXED_EMITTED_AT + i) for i, item in enumerate(data)]


def compressed_config(
    make_config: MakeConfig, bucket: str, fmt: str, codec: str, **extra: Any
) -> dict[str, Any]:
    output_format = {**FORMATS[fmt], "compression": {"compression_type": codec}}
    return make_config(bucket, format=output_format, **extra)


def assert_stored_as_the_format(s3: MotoServer, bucket: str, key: str, fmt: str) -> None:
    head = s3.admin_client("s3").head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == CONTENT_TYPES[fmt.split("_")[0]], head["ContentType"]
    # No Content-Encoding: clients would decompress on download and the bytes would no longer
    # match the .gz / .zst name.
    assert "ContentEncoding" not in head, head.get("ContentEncoding")


def assert_csv_row(fmt: str, header: list[str], row: list[str], sent: Message) -> None:
    """One CSV row holds exactly the record `sent`."""
    data, emitted_at = sent["record"]["data"], sent["record"]["emitted_at"]
    if fmt == "csv":
        assert header == [METADATA, "data"]
        assert_metadata(json.loads(row[0]), emitted_at)
        assert json.loads(row[1]) == data
        return
    assert header == [AB_ID, EMITTED_AT, *COLUMNS, ADDITIONAL_PROPERTIES]
    cells = dict(zip(header, row, strict=True))
    assert_uuid4(cells[AB_ID])
    assert cells[EMITTED_AT] == str(emitted_at)
    for column in COLUMNS:
        if column not in data or data[column] is None:
            assert cells[column] == ""
        elif isinstance(data[column], str):
            assert cells[column] == data[column]
        else:
            assert json.loads(cells[column]) == data[column]
    undeclared = {name: value for name, value in data.items() if name not in COLUMNS}
    extra = cells[ADDITIONAL_PROPERTIES]
    assert (json.loads(extra) if extra else {}) == undeclared


@pytest.mark.parametrize("codec", sorted(CODECS))
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_and_codec_reads_back_exactly(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path, fmt: str, codec: str
) -> None:
    config = compressed_config(make_config, bucket, fmt, codec, s3_bucket_path="out")
    catalog = configured_catalog(
        [{"name": "users", "json_schema": SCHEMA}, {"name": "empty", "json_schema": SCHEMA}]
    )
    users = sent_records("users")
    started = now_ms()
    run = run_write(config, catalog, [*users, stream_state("users", {"n": 1})]).assert_success()
    finished = now_ms()
    assert_clean_stdout(run)
    assert len(run.states()) == 1

    extension = f"{fmt.split('_')[0]}.{CODECS[codec]}"
    (key,) = direct_keys(s3, bucket, "out/users/")
    assert_object_keys([key], "out/users/", extension, (started, finished))
    assert [k for k in s3.list_keys(bucket) if "_tarsal_" not in k] == [key]  # none for "empty"
    assert_stored_as_the_format(s3, bucket, key, fmt)
    path, body = download(s3, bucket, key, tmp_path)
    content = decompress(key, body)

    if fmt == "jsonl":
        envelopes = jsonl_lines(content)
        for envelope, sent in zip(envelopes, users, strict=True):
            assert_jsonl_envelope(envelope, sent)
        assert read_jsonl_with_readers(path) == envelopes
    else:
        rows = csv_rows(content)
        for row, sent in zip(rows[1:], users, strict=True):
            assert_csv_row(fmt, rows[0], row, sent)
        assert read_csv_with_readers(path) == rows


def incompressible_records(stream: str, count: int, seed: int) -> list[Message]:
    """Records with 1,000 random characters of the base64 alphabet (6 bits of information per
    byte): they shrink by about a quarter at most, so a few MiB of them still fill 5 MiB parts."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
    return [
        record(
            stream,
            {"id": n, "pad": "".join(rng.choices(alphabet, k=1000))},
            emitted_at=FIXED_EMITTED_AT,
        )
        for n in range(count)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "codec"), [("jsonl", "GZIP"), ("csv_root", "ZSTD")])
def test_large_objects_go_multipart_and_rotate_at_the_uncompressed_size(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path, fmt: str, codec: str
) -> None:
    config = compressed_config(make_config, bucket, fmt, codec, file_size_mb=12)
    catalog = configured_catalog([{"name": "users", "json_schema": SCHEMA}])
    users = incompressible_records("users", 26_000, seed=len(fmt))  # ~27 MiB uncompressed
    run = run_write(config, catalog, [*users, stream_state("users", {"n": 1})], timeout=240)
    run.assert_success()
    assert len(run.states()) == 1

    keys = direct_keys(s3, bucket, "users/")  # sorted by key: by opening time
    assert len(keys) == 3, keys  # 12 + 12 + 3 MiB of uncompressed bytes
    client = s3.admin_client("s3")
    contents = []
    for number, key in enumerate(keys):
        head = client.head_object(Bucket=bucket, Key=key)
        _, body = download(s3, bucket, key, tmp_path)
        content = decompress(key, body)
        contents.append(content)
        if number < 2:
            # Completed at 12 MiB of UNCOMPRESSED bytes (at most one record more), and more than
            # 5 MiB once compressed: a multipart upload of parts >= 5 MiB (S3 refuses less).
            assert 12 * MIB <= len(content) < 12 * MIB + 2048, len(content)
            assert len(body) > 5 * MIB
            assert head["ETag"].strip('"').endswith("-2"), head["ETag"]
        else:  # the last is smaller than a part: one conditional PutObject
            assert len(body) < 5 * MIB and "-" not in head["ETag"], head["ETag"]
    assert s3.list_multipart_uploads(bucket) == []

    sent = iter(users)
    if fmt == "jsonl":
        for content in contents:
            for envelope in jsonl_lines(content):
                assert_jsonl_envelope(envelope, next(sent))
    else:
        for content in contents:
            rows = csv_rows(content)
            for row in rows[1:]:
                assert_csv_row(fmt, rows[0], row, next(sent))
    assert next(sent, None) is None
    # A multipart object through pandas and DuckDB too.
    path, _ = download(s3, bucket, keys[0], tmp_path)
    if fmt == "jsonl":
        assert read_jsonl_with_readers(path) == jsonl_lines(contents[0])
    else:
        assert read_csv_with_readers(path) == csv_rows(contents[0])


def test_overwrite_deletes_our_earlier_compressed_objects_and_keeps_others(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    ours = [
        "users/2024_01_01_1704067200000_0.jsonl.gz",
        "users/2024_01_01_1704067200001_0.jsonl.zst",
        "users/2024_01_01_1704067200002_0.csv.gz",
        "users/2024_01_01_1704067200003_0.jsonl",
    ]
    others = [
        "users/notes.jsonl.gz",
        "users/2024_01_01_1704067200004_0.jsonl.gzip",
        "users/2024_01_01_1704067200005_0.jsonl.gz.bak",
        "users/2024_01_01_1704067200006_0.jsonl.bz2",
        "users/sub/2024_01_01_1704067200007_0.jsonl.gz",
        "users_archive/2024_01_01_1704067200008_0.jsonl.gz",
    ]
    for key in ours + others:
        s3.put_object(bucket, key, gzip.compress(key.encode()))
    config = compressed_config(make_config, bucket, "jsonl", "GZIP")
    catalog = configured_catalog(["users"], destination_sync_mode="overwrite")
    users = sent_records("users")
    run_write(config, catalog, users).assert_success()

    remaining = s3.list_keys(bucket)
    assert not set(ours) & set(remaining)
    assert set(others) <= set(remaining)
    (new_key,) = [key for key in direct_keys(s3, bucket, "users/") if key not in others]
    assert new_key.endswith(".jsonl.gz")
    envelopes = jsonl_lines(decompress(new_key, s3.read_object(bucket, new_key)))
    for envelope, sent in zip(envelopes, users, strict=True):
        assert_jsonl_envelope(envelope, sent)


def test_airbyte_style_csv_config_works_end_to_end(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    config = make_config(
        bucket,
        format={
            "format_type": "CSV",
            "flattening": "Root level flattening",
            "compression": {"compression_type": "GZIP"},
        },
    )
    catalog = configured_catalog([{"name": "users", "json_schema": SCHEMA}])
    users = sent_records("users")
    run = run_write(config, catalog, users).assert_success()
    assert not run.logs("WARN"), run.logs("WARN")  # nothing ignored: every field was understood

    (key,) = direct_keys(s3, bucket, "users/")
    assert key.endswith(".csv.gz")
    path, body = download(s3, bucket, key, tmp_path)
    rows = csv_rows(decompress(key, body))
    assert rows[0] == [AB_ID, EMITTED_AT, *COLUMNS, ADDITIONAL_PROPERTIES]
    for row, sent in zip(rows[1:], users, strict=True):
        assert_csv_row("csv_root", rows[0], row, sent)
    assert read_csv_with_readers(path) == rows
