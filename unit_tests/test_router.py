"""The router: configured streams from the catalog, lazy writers, unknown streams rejected."""

from __future__ import annotations

from typing import Any

import pytest

from destination_s3.catalog import catalog_of
from destination_s3.config import ConnectorConfig, parse_config
from destination_s3.errors import CatalogError
from destination_s3.router import Router, StreamPlan, UnknownStream, plan_streams
from destination_s3.writer import StreamTarget


def _config(**overrides: Any) -> ConnectorConfig:
    raw: dict[str, Any] = {
        "s3_bucket_name": "bucket",
        "s3_bucket_region": "us-east-1",
        "s3_bucket_path": "/data/raw/",
        "stream_prefix": "tarsal_",
        "credentials": {"auth_type": "default_chain"},
        "format": {"format_type": "CSV", "flattening": "Root-level flattening"},
    }
    raw.update(overrides)
    return parse_config(raw)


def _entry(name: str, namespace: str | None = None, **fields: Any) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "name": name,
        "json_schema": {"type": "object", "properties": {"id": {}, "name": {}}},
        "supported_sync_modes": ["full_refresh", "incremental"],
    }
    if namespace is not None:
        stream["namespace"] = namespace
    return {
        "stream": stream,
        "sync_mode": "full_refresh",
        "destination_sync_mode": "append",
        **fields,
    }


def configured_streams(config: ConnectorConfig, catalog: dict[str, Any]) -> dict[Any, StreamPlan]:
    return plan_streams(config, catalog_of(catalog))


@pytest.mark.parametrize(
    ("fields", "truncate"),
    [
        ({"destination_sync_mode": "overwrite"}, True),
        ({"destination_sync_mode": "append"}, False),
        ({"destination_sync_mode": "append_dedup"}, False),
        ({}, False),
        (
            {"destination_sync_mode": "append", "generation_id": 3, "minimum_generation_id": 3},
            True,
        ),
        (
            {"destination_sync_mode": "append", "generation_id": 3, "minimum_generation_id": 0},
            False,
        ),
        (
            {"destination_sync_mode": "append", "generation_id": 3, "minimum_generation_id": 2},
            False,
        ),
        (
            {"destination_sync_mode": "append", "generation_id": 0, "minimum_generation_id": 0},
            False,
        ),
        (
            {"destination_sync_mode": "overwrite", "generation_id": 2, "minimum_generation_id": 0},
            True,
        ),
    ],
)
def test_truncate(fields: dict[str, Any], truncate: bool) -> None:
    streams = configured_streams(_config(), {"streams": [_entry("users", **fields)]})
    target = streams[(None, "users")].target
    assert target.truncate is truncate
    generation_id = fields.get("generation_id")
    assert target.generation_id == generation_id
    # Every stream records its objects' generations in the same place, whatever its mode.
    assert target.markers_prefix == "data/raw/_tarsal_generations/tarsal_users/"


@pytest.mark.parametrize(
    ("fields", "minimum"),
    [
        ({"destination_sync_mode": "append"}, 0),
        ({"destination_sync_mode": "append", "generation_id": 4}, 0),
        ({"destination_sync_mode": "append", "generation_id": 4, "minimum_generation_id": 2}, 2),
        ({"destination_sync_mode": "overwrite"}, 0),
        ({"destination_sync_mode": "overwrite", "generation_id": 4}, 4),
        ({"destination_sync_mode": "overwrite", "generation_id": 4, "minimum_generation_id": 0}, 0),
    ],
)
def test_minimum_generation(fields: dict[str, Any], minimum: int) -> None:
    streams = configured_streams(_config(), {"streams": [_entry("users", **fields)]})
    assert streams[(None, "users")].target.minimum_generation_id == minimum


def test_configured_streams_targets() -> None:
    catalog = {
        "streams": [
            _entry("users", "public", destination_sync_mode="append", generation_id=7),
            _entry("users", None, destination_sync_mode="append"),
            _entry("orders", "", destination_sync_mode="overwrite"),
            _entry("a/b", "..", destination_sync_mode="append"),
        ]
    }
    streams = configured_streams(_config(), catalog)
    assert set(streams) == {("public", "users"), (None, "users"), (None, "orders"), ("..", "a/b")}
    users = streams[("public", "users")].target
    assert (users.name, users.namespace, users.directory) == (
        "users",
        "public",
        "data/raw/public/tarsal_users/",
    )
    assert users.header == (
        b"_tarsal_ab_id,_tarsal_emitted_at,id,name,_tarsal_additional_properties\r\n"
    )
    assert (users.truncate, users.generation_id) == (False, 7)
    assert streams[(None, "users")].target.directory == "data/raw/tarsal_users/"
    assert streams[(None, "orders")].target.namespace is None
    assert streams[(None, "orders")].target.directory == "data/raw/tarsal_orders/"
    assert streams[("..", "a/b")].target.directory == "data/raw/%2E%2E/tarsal_a%2Fb/"


def test_configured_streams_encoder_follows_the_format() -> None:
    catalog = {"streams": [_entry("users", destination_sync_mode="append")]}
    jsonl = configured_streams(_config(format={"format_type": "JSONL"}), catalog)[(None, "users")]
    assert jsonl.target.header == b""
    line = jsonl.encode(b"id-1", b"5", b'{"id":1}')
    assert line == (
        b'{"_tarsal_metadata":{"_tarsal_ab_id":"id-1","_tarsal_emitted_at":"5"},"data":{"id":1}}\n'
    )
    root = configured_streams(_config(), catalog)[(None, "users")]
    assert root.encode(b"id-1", b"5", b'{"id":1,"x":2}') == b'id-1,5,1,,"{""x"":2}"\r\n'


def test_configured_streams_of_an_empty_catalog() -> None:
    assert configured_streams(_config(), {"streams": []}) == {}
    assert configured_streams(_config(), {}) == {}


class FakeWriters:
    """Stands in for StreamWriter construction: one distinct object per call, remembered."""

    def __init__(self) -> None:
        self.made: list[StreamTarget] = []
        self.built: list[Any] = []

    def __call__(self, plan: StreamPlan) -> Any:
        self.made.append(plan.target)
        writer = object()
        self.built.append(writer)
        return writer


def _router() -> tuple[Router, FakeWriters]:
    catalog = {
        "streams": [
            _entry("users", "public", destination_sync_mode="append"),
            _entry("orders", None, destination_sync_mode="append"),
        ]
    }
    make = FakeWriters()
    return Router(configured_streams(_config(), catalog), make), make


def test_router_builds_each_writer_once_and_lazily() -> None:
    router, make = _router()
    assert make.made == []
    assert list(router.writers()) == []
    writer, encode = router.route("public", "users")
    assert make.built == [writer]
    assert [(target.namespace, target.name) for target in make.made] == [("public", "users")]
    assert encode(b"id", b"1", b'{"id":7,"name":"n"}') == b"id,1,7,n,\r\n"
    assert router.route("public", "users")[0] is writer
    orders = router.route(None, "orders")[0]
    assert router.route("", "orders")[0] is orders  # "" is no namespace
    assert make.built == [writer, orders]
    assert [(target.namespace, target.name) for target in make.made] == [
        ("public", "users"),
        (None, "orders"),
    ]
    assert list(router.writers()) == [writer, orders]


@pytest.mark.parametrize(
    ("namespace", "name", "shown"),
    [
        (None, "missing", "'missing'"),
        ("public", "missing", "'public.missing'"),
        (None, "users", "'users'"),  # users exists only in namespace public
        ("other", "users", "'other.users'"),
        ("public", "orders", "'public.orders'"),
    ],
)
def test_router_rejects_an_unknown_stream(namespace: str | None, name: str, shown: str) -> None:
    router, make = _router()
    with pytest.raises(UnknownStream, match=f"stream {shown} is not in the configured catalog"):
        router.route(namespace, name)
    assert make.made == []
    assert list(router.writers()) == []


def test_a_stream_whose_keys_would_exceed_s3s_limit_is_refused_up_front() -> None:
    # moto (and some S3-compatible stores) accept longer keys; AWS answers KeyTooLongError
    # mid-sync. Refusing at the start names the stream and what to shorten.
    fits, too_long = "u" * 900, "u" * 1000
    streams = configured_streams(_config(), {"streams": [_entry(fits)]})
    assert len(streams[(None, fits)].target.markers_prefix.encode()) < 1024
    with pytest.raises(CatalogError) as raised:
        configured_streams(_config(), {"streams": [_entry(fits), _entry(too_long)]})
    message = str(raised.value)
    assert message.startswith(f"Stream '{'u' * 100}…': its object keys would be up to ")
    assert "over S3's limit of 1024. To fix: shorten the S3 Bucket Path" in message


def test_multibyte_names_count_in_bytes_as_s3_does() -> None:
    name = "用" * 320  # 320 characters, 960 bytes
    with pytest.raises(CatalogError):
        configured_streams(_config(), {"streams": [_entry(name)]})


@pytest.mark.parametrize(
    ("template", "first", "second"),
    [
        # Different streams, same root: caught by stream, not by the names shown.
        ("${NAMESPACE}.${STREAM_NAME}/${YEAR}", ("c", "a.b"), ("b.c", "a")),
        ("${STREAM_NAME}/${YEAR}", ("users", "n" * 120 + "1"), ("users", "n" * 120 + "2")),
    ],
)
def test_two_streams_with_one_root_are_refused(
    template: str, first: tuple[str, str | None], second: tuple[str, str | None]
) -> None:
    config = _config(s3_path_format=template, stream_prefix="")
    catalog = {"streams": [_entry(first[0], first[1]), _entry(second[0], second[1])]}
    with pytest.raises(CatalogError, match="would both be written below"):
        configured_streams(config, catalog)


@pytest.mark.parametrize(
    ("overrides", "name", "namespace"),
    [
        ({}, "_tarsal_generations", None),  # the default layout
        ({"stream_prefix": "_tarsal_"}, "users", None),
        ({"s3_path_format": "${NAMESPACE}_tarsal_x/${STREAM_NAME}"}, "u", None),
    ],
)
def test_a_stream_below_a_bookkeeping_folder_is_refused(
    overrides: dict[str, Any], name: str, namespace: str | None
) -> None:
    config = _config(**({"stream_prefix": ""} | overrides))
    with pytest.raises(CatalogError, match="folders starting with _tarsal_ hold the connector's"):
        configured_streams(config, {"streams": [_entry(name, namespace)]})
    # The same stream under a namespace, or another prefix, is fine.
    configured_streams(_config(), {"streams": [_entry(name, "public")]})
