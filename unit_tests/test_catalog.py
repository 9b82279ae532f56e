"""The configured catalog at the edge: typed entries, the protocol's required fields checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from destination_s3.catalog import (
    CatalogStream,
    ConfiguredCatalog,
    ConfiguredStream,
    parse_catalog,
    read_catalog,
    stream_key,
)
from destination_s3.errors import CatalogError

PYAIRBYTE_ENTRY = {
    "stream": {
        "name": "users",
        "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
        "supported_sync_modes": ["full_refresh", "incremental"],
        "source_defined_cursor": True,
        "default_cursor_field": ["updated_at"],
        "source_defined_primary_key": [["id"]],
    },
    "sync_mode": "incremental",
    "destination_sync_mode": "append_dedup",
    "cursor_field": ["updated_at"],
    "primary_key": [["id"]],
    "generation_id": 1,
    "minimum_generation_id": 1,
    "sync_id": 1,
}


def test_a_pyairbyte_catalog_becomes_typed_entries() -> None:
    other = {"stream": {"name": "orders", "json_schema": {}, "namespace": "shop"},
             "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}  # fmt: skip
    catalog = parse_catalog(json.dumps({"streams": [PYAIRBYTE_ENTRY, other]}))
    assert catalog == ConfiguredCatalog(
        [
            ConfiguredStream(
                CatalogStream("users", PYAIRBYTE_ENTRY["stream"]["json_schema"]),  # type: ignore[index]
                "incremental",
                "append_dedup",
                generation_id=1,
                minimum_generation_id=1,
                sync_id=1,
            ),
            ConfiguredStream(CatalogStream("orders", {}, "shop"), "full_refresh", "overwrite"),
        ]
    )
    assert [s.key for s in catalog.streams] == [(None, "users"), ("shop", "orders")]
    assert catalog.sync_id == 1


@pytest.mark.parametrize(
    ("catalog", "problem"),
    [
        ({"streams": [{"stream": {"name": "u", "json_schema": {}}, "sync_mode": "incremental"}]},
         "missing required field `destination_sync_mode` - at `$.streams[0]`"),
        ({"streams": [{"stream": {"name": "u"}, "sync_mode": "x",
                       "destination_sync_mode": "append"}]},
         "missing required field `json_schema` - at `$.streams[0].stream`"),
        ({"streams": [{"stream": {"name": 5, "json_schema": {}}, "sync_mode": "x",
                       "destination_sync_mode": "append"}]},
         "Expected `str`, got `int` - at `$.streams[0].stream.name`"),
        ({"streams": {}}, "Expected `array`, got `object` - at `$.streams`"),
        ([], "Expected `object`, got `array`"),
    ],
)  # fmt: skip
def test_a_malformed_catalog_is_refused_naming_where(catalog: object, problem: str) -> None:
    with pytest.raises(CatalogError) as raised:
        parse_catalog(json.dumps(catalog))
    assert str(raised.value).startswith("the configured catalog is not a valid configured catalog")
    assert problem in str(raised.value)
    assert not raised.value.user_can_fix  # the platform wrote it: a system error


def test_read_catalog_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("{not json")
    with pytest.raises(CatalogError, match=f"^The configured catalog {path} is not a valid"):
        read_catalog(str(path))
    with pytest.raises(CatalogError, match="cannot be read"):
        read_catalog(str(tmp_path / "missing.json"))


@pytest.mark.parametrize(
    ("namespace", "expected"), [(None, (None, "s")), ("", (None, "s")), ("ns", ("ns", "s"))]
)
def test_stream_key_treats_an_empty_namespace_as_none(
    namespace: str | None, expected: tuple[str | None, str]
) -> None:
    assert stream_key(namespace, "s") == expected


def test_the_example_catalog_in_the_readme_is_valid() -> None:
    catalog = read_catalog(
        str(Path(__file__).parent.parent / "integration_tests/configured_catalog.json")
    )
    [users] = catalog.streams
    assert users.key == ("public", "users")
    assert list(users.stream.json_schema["properties"]) == ["user_id", "name"]
