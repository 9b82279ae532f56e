"""format_type Parquet, written by the connector (a subprocess) and read back with pyarrow, DuckDB,
polars and pandas: exact typed records for every codec, values that do not fit their column,
undeclared fields, a schema without properties, row groups and file rotation, overwrite of
Parquet objects, and many interleaved streams sharing one memory budget."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
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
    FIXED_EMITTED_AT,
    assert_clean_stdout,
    assert_object_keys,
    assert_uuid4,
    direct_keys,
)
from integration_tests.readers import download, read_parquet_with_readers
from integration_tests.s3_server import MotoServer

UTC = dt.timezone.utc
CODECS = ["SNAPPY", "ZSTD", "GZIP", "UNCOMPRESSED"]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": "integer"},
        "name": {"type": "object"},
        "score": {"type": ["null", "number"]},
        "active": {"type": "boolean"},
        "signed_up": {"type": "string", "format": "date"},
        "updated_at": {"type": "string", "format": "date-time"},
        "local_time": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
        "amount": {"type": "number", "airbyte_type": "big_number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "email": {"type": "string"},
    },
}
COLUMNS = list(SCHEMA["properties"])
META_COLUMNS = ["_tarsal_ab_id", "_tarsal_emitted_at"]
TAIL_COLUMNS = ["_tarsal_additional_properties", "_tarsal_meta"]

JOHN = {"user_id": 123, "name": {"first": "John", "last": "Doe"}}
FULL = {
    "user_id": 456,
    "name": {"first": "Jane", "last": "Roe"},
    "score": 9.5,
    "active": True,
    "signed_up": "2021-09-18",
    "updated_at": "2021-09-18T06:56:10+02:00",
    "local_time": "2021-09-18T06:56:10",
    "amount": 12345.678901234,
    "tags": ["a", "b,c"],
    "email": "jane@example.com",
}
MISFIT = {"user_id": "seven", "score": "high", "updated_at": "yesterday", "unknown": [1, 2]}
HUGE = {"user_id": 2**70, "note": "é ✓ 😀"}


def expected_row(data: dict[str, Any], emitted_at: int) -> dict[str, Any]:
    """The typed row of a record without misfits (ids are checked apart)."""
    cells: dict[str, Any] = dict.fromkeys(COLUMNS)
    cells["_tarsal_emitted_at"] = dt.datetime.fromtimestamp(emitted_at / 1000, UTC)
    for name, value in data.items():
        if name in ("name", "tags"):
            value = json.dumps(value, separators=(",", ":"))
        elif name == "signed_up":
            value = dt.date.fromisoformat(value)
        elif name == "updated_at":
            value = dt.datetime.fromisoformat(value).astimezone(UTC)
        elif name == "local_time":
            value = dt.datetime.fromisoformat(value)
        elif name == "amount":
            value = decimal.Decimal(str(value)).quantize(decimal.Decimal("1e-9"))
        cells[name] = value
    return cells


def sent(stream: str, datas: list[dict[str, Any]]) -> list[Message]:
    return [record(stream, data, emitted_at=FIXED_EMITTED_AT + i) for i, data in enumerate(datas)]


def parquet_config(make_config: MakeConfig, bucket: str, **fmt: Any) -> dict[str, Any]:
    return make_config(bucket, format={"format_type": "Parquet", **fmt})


def without_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        assert_uuid4(row["_tarsal_ab_id"])
    return [{k: v for k, v in row.items() if k != "_tarsal_ab_id"} for row in rows]


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_reads_back_exactly_with_every_reader(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path, codec: str
) -> None:
    config = parquet_config(make_config, bucket, compression_codec=codec)
    catalog = configured_catalog([{"name": "users", "json_schema": SCHEMA}])
    messages = sent("users", [JOHN, FULL, {}])
    started = now_ms()
    run = run_write(config, catalog, [*messages, stream_state("users", {"n": 1})])
    run.assert_success()
    assert_clean_stdout(run)
    assert len(run.states()) == 1

    (key,) = direct_keys(s3, bucket, "users/")
    assert_object_keys([key], "users/", "parquet", (started, now_ms()))
    head = s3.admin_client("s3").head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "application/vnd.apache.parquet"
    path, _ = download(s3, bucket, key, tmp_path)

    parquet = pq.ParquetFile(path)
    assert parquet.schema_arrow.names == [*META_COLUMNS, *COLUMNS, *TAIL_COLUMNS]
    chunk = parquet.metadata.row_group(0).column(0)
    assert chunk.compression == codec
    assert str(parquet.schema.column(COLUMNS.index("name") + 2).logical_type) == "JSON"

    rows = without_ids(read_parquet_with_readers(path))
    expected = [
        {
            **expected_row(m["record"]["data"], m["record"]["emitted_at"]),
            **dict.fromkeys(TAIL_COLUMNS),
        }
        for m in messages
    ]
    assert rows == expected


def test_a_value_that_does_not_fit_is_null_and_kept_in_tarsal_meta(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    config = parquet_config(make_config, bucket)
    catalog = configured_catalog([{"name": "users", "json_schema": SCHEMA}])
    messages = sent("users", [JOHN, MISFIT, HUGE, FULL])
    run = run_write(config, catalog, [*messages, stream_state("users", {"n": 1})])
    run.assert_success()
    assert len(run.states()) == 1
    assert "Stream users: 4 values did not fit their Parquet column" in run.log_text()

    (key,) = direct_keys(s3, bucket, "users/")
    path, _ = download(s3, bucket, key, tmp_path)
    john, misfit, huge, full = without_ids(read_parquet_with_readers(path))
    assert john == {**expected_row(JOHN, FIXED_EMITTED_AT), **dict.fromkeys(TAIL_COLUMNS)}
    assert full["user_id"] == 456 and full["_tarsal_meta"] is None  # after misfits, still typed
    assert {name: misfit[name] for name in ("user_id", "score", "updated_at")} == dict.fromkeys(
        ("user_id", "score", "updated_at")
    )
    assert json.loads(misfit["_tarsal_additional_properties"]) == {"unknown": [1, 2]}
    assert json.loads(misfit["_tarsal_meta"]) == {
        "errors": [
            {"field": "user_id", "value": "seven", "reason": "expected an integer, got a string"},
            {"field": "score", "value": "high", "reason": "expected a number, got a string"},
            {"field": "updated_at", "value": "yesterday", "reason": "not an ISO 8601 date-time"},
        ]
    }
    assert huge["user_id"] is None
    assert json.loads(huge["_tarsal_meta"]) == {
        "errors": [
            {"field": "user_id", "value": 2**70, "reason": "integer beyond the 64-bit range"}
        ]
    }
    assert json.loads(huge["_tarsal_additional_properties"]) == {"note": "é ✓ 😀"}


def test_a_schema_without_properties_keeps_every_field_as_json(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    config = parquet_config(make_config, bucket)
    catalog = configured_catalog([{"name": "raw", "json_schema": {"type": "object"}}])
    datas = [JOHN, {}, {"deep": [[1, [2, {"a": None}]]], "big": 12345678901234567890123}]
    run = run_write(config, catalog, sent("raw", datas)).assert_success()
    assert "did not fit" not in run.log_text()
    (key,) = direct_keys(s3, bucket, "raw/")
    path, _ = download(s3, bucket, key, tmp_path)
    rows = without_ids(read_parquet_with_readers(path))
    assert [list(row) for row in rows] == [["_tarsal_emitted_at", *TAIL_COLUMNS]] * 3
    extras = [row["_tarsal_additional_properties"] for row in rows]
    assert [json.loads(extra) if extra else {} for extra in extras] == datas
    assert extras[2] == '{"deep":[[1,[2,{"a":null}]]],"big":12345678901234567890123}'


def bulky(stream: str, count: int) -> list[Message]:
    return [
        record(stream, {"user_id": n, "email": f"u{n}@example.com", "tags": ["x" * 200, str(n)]})
        for n in range(count)
    ]


@pytest.mark.slow
def test_row_groups_and_file_rotation_keep_every_record_in_order(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    # 1 MB row groups (of Arrow data) and 2 MB files (of the records' JSON): several of each.
    config = make_config(
        bucket, format={"format_type": "Parquet", "block_size_mb": 1}, file_size_mb=2
    )
    catalog = configured_catalog([{"name": "users", "json_schema": SCHEMA}])
    messages = bulky("users", 20_000)  # ≈ 5.5 MB of JSON
    run = run_write(config, catalog, [*messages, stream_state("users", {"n": 1})], timeout=240)
    run.assert_success()
    assert len(run.states()) == 1

    keys = direct_keys(s3, bucket, "users/")
    assert len(keys) >= 3, keys  # ≈ 6.6 MB of lines (data and ids) in objects of 2 MB
    user_ids: list[int] = []
    schemas = set()
    for key in keys:
        path, _ = download(s3, bucket, key, tmp_path)
        parquet = pq.ParquetFile(path)
        schemas.add(parquet.schema_arrow.to_string())
        if key != keys[-1]:
            assert parquet.metadata.num_row_groups >= 2, (key, parquet.metadata.num_row_groups)
        user_ids.extend(parquet.read(columns=["user_id"]).column(0).to_pylist())
    assert len(schemas) == 1  # one schema for the stream's files
    assert user_ids == list(range(20_000))


def test_overwrite_replaces_earlier_parquet_objects_and_keeps_siblings(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = parquet_config(make_config, bucket)
    overwrite = configured_catalog(
        [{"name": "users", "json_schema": SCHEMA, "destination_sync_mode": "overwrite"}]
    )
    sibling = configured_catalog([{"name": "users_archive", "json_schema": SCHEMA}])
    run_write(config, sibling, sent("users_archive", [JOHN])).assert_success()
    run_write(config, overwrite, sent("users", [JOHN])).assert_success()
    (first,) = direct_keys(s3, bucket, "users/")
    run_write(config, overwrite, sent("users", [FULL])).assert_success()
    (second,) = direct_keys(s3, bucket, "users/")
    assert second != first
    assert len(direct_keys(s3, bucket, "users_archive/")) == 1


@pytest.mark.slow
def test_many_interleaved_streams_each_get_valid_parquet_files(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    names = [f"s{index:03d}" for index in range(500)]
    catalog = configured_catalog([{"name": name, "json_schema": SCHEMA} for name in names])
    messages = [
        record(name, {"user_id": n, "email": "x" * 300}) for n in range(8) for name in names
    ]
    # A 1 MB budget: row groups are written early, then buffers spill to disk, to stay inside it
    # (the objects stay open; unit_tests/test_sync_core.py covers completing them instead).
    env = {"DESTINATION_S3_BUFFER_MB": "1"}
    run = run_write(parquet_config(make_config, bucket), catalog, messages, env=env, timeout=240)
    run.assert_success()
    keys = s3.data_keys(bucket)
    assert {key.split("/")[0] for key in keys} == set(names)
    schemas = set()
    for name in names[::50]:
        ids: list[int] = []
        for key in direct_keys(s3, bucket, f"{name}/"):
            path, _ = download(s3, bucket, key, tmp_path)
            table = pq.read_table(path)
            schemas.add(table.schema.to_string())
            ids.extend(table.column("user_id").to_pylist())
        assert ids == list(range(8)), name
    assert len(schemas) == 1  # every stream of one schema: one Parquet schema
