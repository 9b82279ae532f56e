"""`write` output read back with boto3: JSONL and both CSV modes record by record, the object-key
layout, hostile stream names, rotation by size and multipart uploads."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from integration_tests.connector import (
    MakeConfig,
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
    assert_same_records,
    assert_uuid4,
    csv_rows,
    datas,
    direct_keys,
    jsonl_lines,
    key_has_control_chars,
    numbered_records,
    parse_key,
    read_jsonl,
)
from integration_tests.s3_server import MotoServer

# Awkward but valid data: the seed's John Doe example, CSV/JSON metacharacters, unicode, big and
# small numbers, nulls and empty containers, deep nesting, an empty object.
AWKWARD_DATA: list[dict[str, Any]] = [
    {"user_id": 123, "name": {"first": "John", "last": "Doe"}},
    {"user_id": 456, "name": {"first": "Jane", "last": "Roe"}},
    {
        "text": 'quote " backslash \\ comma , newline \n crlf \r\n tab \t end',
        "unicode": "héllo ✓ 😀 \u2028 \u0000",
    },
    {"big": 12345678901234567890, "negative": -1, "float": 0.1, "exponent": 1e100, "zero": 0},
    {"null": None, "empty_object": {}, "empty_array": [], "bools": [True, False]},
    {"deep": [[1, [2, {"a": [3, {"b": None}]}]]]},
    {},
]


def awkward_records(stream: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        record(stream, data, emitted_at=FIXED_EMITTED_AT + i, namespace=namespace)
        for i, data in enumerate(AWKWARD_DATA)
    ]


def test_jsonl_objects_hold_the_seed_envelope_record_by_record(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, "/exports/raw/", stream_prefix="tarsal_")
    catalog = configured_catalog(["users", {"name": "orders", "namespace": "crm"}, "empty_stream"])
    users = awkward_records("users")
    orders = [
        record("orders", {"order_id": i, "amount": i * 1.5}, emitted_at=now_ms(), namespace="crm")
        for i in range(3)
    ]
    # A record line with raw carriage returns and tabs as JSON whitespace inside `data`.
    raw_line = (
        '{"type":"RECORD","record":{"stream":"users","emitted_at":1631948170999,'
        '"data":{ "a" :\t1 ,\r"b": [ 1 ,\r2 ] }}}'
    )
    raw_sent = record("users", {"a": 1, "b": [1, 2]}, emitted_at=1631948170999)
    lines: list[Any] = [users[0], orders[0], *users[1:4], orders[1], raw_line, *users[4:]]
    lines += [orders[2], stream_state("users", {"cursor": 1})]
    users_sent = [*users[:4], raw_sent, *users[4:]]

    started = now_ms()
    run = run_write(config, catalog, lines).assert_success()
    finished = now_ms()
    assert_clean_stdout(run)

    users_dir = "exports/raw/tarsal_users/"
    orders_dir = "exports/raw/crm/tarsal_orders/"
    users_keys = direct_keys(s3, bucket, users_dir)
    orders_keys = direct_keys(s3, bucket, orders_dir)
    assert_object_keys(users_keys, users_dir, "jsonl", (started, finished))
    assert_object_keys(orders_keys, orders_dir, "jsonl", (started, finished))
    # Nothing else: in particular no object (empty or not) for the stream without records.
    assert sorted(s3.data_keys(bucket)) == sorted(users_keys + orders_keys)

    ids = []
    for keys, sent in ((users_keys, users_sent), (orders_keys, orders)):
        envelopes = read_jsonl(s3, bucket, keys)
        assert len(envelopes) == len(sent)
        ids += [assert_jsonl_envelope(env, msg) for env, msg in zip(envelopes, sent, strict=True)]
        for key in keys:
            body = s3.read_object(bucket, key)
            # One record per line even for readers that also split on \r (universal newlines).
            assert len(body.decode().splitlines()) == len(jsonl_lines(body))
    assert len(set(ids)) == len(ids), "an _tarsal_ab_id is repeated"


def test_csv_without_flattening_has_two_json_columns_readable_by_csv_pandas_duckdb(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    config = make_config(
        bucket, "csv", format={"format_type": "CSV", "flattening": "No flattening"}
    )
    users = awkward_records("users")
    started = now_ms()
    run_write(config, configured_catalog(["users", "empty_stream"]), users).assert_success()
    finished = now_ms()

    keys = direct_keys(s3, bucket, "csv/users/")
    assert_object_keys(keys, "csv/users/", "csv", (started, finished))
    assert s3.data_keys(bucket) == keys
    bodies = [s3.read_object(bucket, key) for key in keys]

    rows: list[list[str]] = []
    for body in bodies:
        parsed = csv_rows(body)
        assert parsed[0] == [METADATA, "data"]
        rows += parsed[1:]
    assert len(rows) == len(users)
    ids = []
    for row, sent in zip(rows, users, strict=True):
        assert len(row) == 2, row
        ids.append(assert_metadata(json.loads(row[0]), sent["record"]["emitted_at"]))
        assert json.loads(row[1]) == sent["record"]["data"]
    assert len(set(ids)) == len(ids)

    assert_readable_by_pandas_and_duckdb(bodies, [METADATA, "data"], rows, tmp_path)


USERS_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "address": {"type": "object"},
        "tags": {"type": "array"},
        "active": {"type": "boolean"},
        "score": {"type": "number"},
    },
}
SCHEMA_COLUMNS = list(USERS_SCHEMA["properties"])

FLATTENING_DATA: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "John Doe",
        "address": {"city": "Paris", "zip": "75001", "lines": ["1 rue", "2e"]},
        "tags": ["a", "b,c"],
        "active": True,
        "score": 9.5,
    },
    {"id": 2, "name": 'Quote " comma , newline \n end', "active": False},
    {"id": 3, "name": "Zoë ✓", "nickname": "JJ", "meta": {"k": [1, 2]}, "score": 0},
    {"tags": [], "undeclared_only": "x"},
    {},
]


def test_csv_root_level_flattening_has_schema_columns_and_keeps_undeclared_fields(
    s3: MotoServer, bucket: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    config = make_config(
        bucket, format={"format_type": "CSV", "flattening": "Root-level flattening"}
    )
    catalog = configured_catalog([{"name": "users", "json_schema": USERS_SCHEMA}])
    users = [
        record("users", data, emitted_at=FIXED_EMITTED_AT + i)
        for i, data in enumerate(FLATTENING_DATA)
    ]
    started = now_ms()
    run_write(config, catalog, users).assert_success()
    finished = now_ms()

    keys = direct_keys(s3, bucket, "users/")
    assert_object_keys(keys, "users/", "csv", (started, finished))
    bodies = [s3.read_object(bucket, key) for key in keys]
    header = [AB_ID, EMITTED_AT, *SCHEMA_COLUMNS, ADDITIONAL_PROPERTIES]
    rows: list[list[str]] = []
    for body in bodies:
        parsed = csv_rows(body)
        assert parsed[0] == header
        rows += parsed[1:]
    assert len(rows) == len(users)

    for row, sent in zip(rows, users, strict=True):
        assert len(row) == len(header), row
        cells = dict(zip(header, row, strict=True))
        data = sent["record"]["data"]
        assert_uuid4(cells[AB_ID])
        assert cells[EMITTED_AT] == str(sent["record"]["emitted_at"])
        for column in SCHEMA_COLUMNS:
            cell = cells[column]
            if column not in data:
                assert cell == "", f"missing {column} should be empty, got {cell!r}"
            elif isinstance(data[column], str):
                assert cell == data[column]
            else:  # numbers, booleans, objects and arrays as JSON text
                assert json.loads(cell) == data[column], (column, cell)
        undeclared = {k: v for k, v in data.items() if k not in SCHEMA_COLUMNS}
        if undeclared:
            assert json.loads(cells[ADDITIONAL_PROPERTIES]) == undeclared
        else:
            assert cells[ADDITIONAL_PROPERTIES] in ("", "{}"), cells[ADDITIONAL_PROPERTIES]

    assert_readable_by_pandas_and_duckdb(bodies, header, rows, tmp_path)


def assert_readable_by_pandas_and_duckdb(
    bodies: list[bytes], header: list[str], rows: list[list[str]], tmp_path: Path
) -> None:
    """pandas and DuckDB read the same header and cells as Python's csv module."""
    import pandas

    frames = [
        pandas.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False) for body in bodies
    ]
    for frame in frames:
        assert list(frame.columns) == header
    assert [list(row) for frame in frames for row in frame.itertuples(index=False)] == rows

    import duckdb

    duck_rows: list[list[str]] = []
    for number, body in enumerate(bodies):
        path = tmp_path / f"object_{number}.csv"
        path.write_bytes(body)
        connection = duckdb.connect()
        try:
            result = connection.execute(
                "SELECT * FROM read_csv(?, header = true, all_varchar = true)", [str(path)]
            )
            assert [column[0] for column in result.description] == header
            duck_rows += [["" if v is None else v for v in row] for row in result.fetchall()]
        finally:
            connection.close()
    assert duck_rows == rows


HOSTILE_STREAMS: list[tuple[str, str | None]] = [
    ("../x", None),
    ("..", None),
    (".", None),
    ("a/b", None),
    ("a", None),
    ("a%2Fb", None),
    ("/leading", None),
    ("back\\slash", None),
    ("ctl\nname\tx\x00\x1f\x7f", None),
    ("s", "../ns"),
    ("s", "n/s"),
]


def test_hostile_stream_names_and_namespaces_stay_in_their_own_directory(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, "exports")
    catalog = configured_catalog(
        [{"name": name, "namespace": namespace} for name, namespace in HOSTILE_STREAMS]
    )
    lines = [
        record(name, {"tag": tag}, emitted_at=FIXED_EMITTED_AT, namespace=namespace)
        for tag, (name, namespace) in enumerate(HOSTILE_STREAMS)
    ]
    run_write(config, catalog, lines).assert_success()

    keys = s3.data_keys(bucket)
    directories: dict[str, set[int]] = {}
    for key in keys:
        assert key.startswith("exports/"), f"{key!r} escaped the bucket path"
        assert not key_has_control_chars(key), repr(key)
        segments = key.split("/")
        assert not {"", ".", ".."} & set(segments), f"{key!r} has an empty or dot segment"
        parsed = parse_key(key)
        tags = {envelope["data"]["tag"] for envelope in read_jsonl(s3, bucket, [key])}
        directories.setdefault(parsed.directory, set()).update(tags)
        expected_depth = 4 if HOSTILE_STREAMS[min(tags)][1] is not None else 3
        assert len(segments) == expected_depth, f"{key!r} is not <path>/[ns/]<stream>/<file>"

    # One directory per stream, each holding only its own stream's record.
    assert sorted(t for tags in directories.values() for t in tags) == list(
        range(len(HOSTILE_STREAMS))
    )
    assert all(len(tags) == 1 for tags in directories.values()), directories
    for one in directories:
        for other in directories:
            assert one == other or not other.startswith(one), (one, other)


def test_files_rotate_by_size_with_distinct_keys_and_every_record_once(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, "rot", file_size_mb=1)
    users = numbered_records("users", 2600, pad=1000)  # about 2.8 MiB of JSONL
    orders = numbered_records("orders", 5)
    lines = [*users[:100], *orders, *users[100:], stream_state("users", {"done": True})]
    started = now_ms()
    run = run_write(config, configured_catalog(["users", "orders"]), lines).assert_success()
    finished = now_ms()
    assert len(run.states()) == 1

    users_keys = direct_keys(s3, bucket, "rot/users/")
    parsed = sorted(
        assert_object_keys(users_keys, "rot/users/", "jsonl", (started, finished)),
        key=lambda item: item.epoch_ms,
    )
    assert len(parsed) >= 3, users_keys
    assert len({item.epoch_ms for item in parsed}) == len(parsed), "two objects share a time"
    sizes = {o["Key"]: o["Size"] for o in s3.list_objects(bucket, "rot/users/")}
    for item in parsed[:-1]:
        # Completed once it reached the target: at least 1 MiB, at most one record more.
        assert MIB <= sizes[item.key] < MIB + 2048, (item.key, sizes[item.key])
    assert_same_records([env["data"] for env in read_jsonl(s3, bucket, users_keys)], datas(users))
    assert_same_records(
        [env["data"] for env in read_jsonl(s3, bucket, direct_keys(s3, bucket, "rot/orders/"))],
        datas(orders),
    )
    assert s3.list_multipart_uploads(bucket) == []


@pytest.mark.slow
def test_large_objects_go_through_multipart_upload_and_rotate_at_the_target_size(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, file_size_mb=12)
    users = numbered_records("users", 13_500, pad=1000)  # about 15 MiB of JSONL
    run = run_write(
        config, configured_catalog(["users"]), [*users, stream_state("users", {"n": 1})]
    ).assert_success()
    assert len(run.states()) == 1

    objects = s3.list_objects(bucket, "users/")
    keys = [o["Key"] for o in objects]
    parsed = sorted((parse_key(key) for key in keys), key=lambda item: item.epoch_ms)
    sizes = {o["Key"]: o["Size"] for o in objects}
    first = parsed[0].key
    # The multipart path: parts of >= 5 MiB, completed into one object, nothing left open.
    assert sizes[first] >= 12 * MIB
    etag = s3.admin_client("s3").head_object(Bucket=bucket, Key=first)["ETag"]
    assert "-" in etag, f"{first} was not written by a multipart upload (ETag {etag})"
    assert_same_records([env["data"] for env in read_jsonl(s3, bucket, keys)], datas(users))
    assert s3.list_multipart_uploads(bucket) == []
    # Rotation at the 12 MiB target (not at the next 5 MiB part boundary): two objects.
    assert len(parsed) == 2, {key: round(size / MIB, 2) for key, size in sizes.items()}
    assert sizes[first] < 12 * MIB + 2048, sizes[first]
