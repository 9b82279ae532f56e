"""The configured catalog, read once at the edge into frozen, typed objects.

msgspec checks the protocol's required fields (a stream's `name` and `json_schema`, each entry's
`sync_mode` and `destination_sync_mode`) and their types, and ignores fields this destination does
not use; nothing past the entry point reads the catalog's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from destination_s3.errors import CatalogError

StreamKey = tuple[str | None, str]  # (namespace, name)


def stream_key(namespace: str | None, name: str) -> StreamKey:
    """The one way streams are identified: an empty namespace is no namespace."""
    return (namespace or None, name)


@dataclass(frozen=True)
class CatalogStream:
    name: str
    json_schema: dict[str, Any]
    namespace: str | None = None


@dataclass(frozen=True)
class ConfiguredStream:
    stream: CatalogStream
    sync_mode: str  # the source side: full_refresh / incremental
    destination_sync_mode: str  # append, overwrite, append_dedup…
    generation_id: int | None = None
    minimum_generation_id: int | None = None
    sync_id: int | None = None

    @property
    def key(self) -> StreamKey:
        return stream_key(self.stream.namespace, self.stream.name)


@dataclass(frozen=True)
class ConfiguredCatalog:
    streams: list[ConfiguredStream] = field(default_factory=list)

    @property
    def sync_id(self) -> int | None:
        """The platform's id of this sync (the same on every stream), if it sent one."""
        return next((s.sync_id for s in self.streams if s.sync_id is not None), None)


_decoder = msgspec.json.Decoder(ConfiguredCatalog)


def parse_catalog(raw: bytes | str, source: str = "the configured catalog") -> ConfiguredCatalog:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CatalogError(f"{source} is not a valid configured catalog: {exc}") from None


def catalog_of(entries: dict[str, Any]) -> ConfiguredCatalog:
    """A catalog from its JSON as a dict (the in-process interface and tests)."""
    return parse_catalog(msgspec.json.encode(entries))


def read_catalog(path: str) -> ConfiguredCatalog:
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise CatalogError(f"The configured catalog {path} cannot be read: {exc}") from None
    return parse_catalog(raw, f"The configured catalog {path}")
