"""The router owns the stream → writer map: it builds writers lazily from the configured catalog
and rejects records of streams the catalog does not name."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from destination_s3.config import ConnectorConfig
from destination_s3.encoders import LineEncoder, encoder_for, root_level_properties
from destination_s3.errors import CatalogError
from destination_s3.keys import (
    S3_MAX_KEY_BYTES,
    generation_markers_prefix,
    longest_key_bytes,
    stream_directory,
)
from destination_s3.writer import StreamTarget, StreamWriter

logger = logging.getLogger("airbyte")

StreamKey = tuple[str | None, str]  # (namespace, name)


@dataclass(frozen=True)
class ConfiguredStream:
    target: StreamTarget
    encode: LineEncoder


def configured_streams(
    config: ConnectorConfig, catalog: Mapping[str, Any]
) -> dict[StreamKey, ConfiguredStream]:
    """Read the configured catalog (a plain dict) into what each stream's writer needs."""
    streams: dict[StreamKey, ConfiguredStream] = {}
    for entry in catalog.get("streams", []):
        stream = entry["stream"]
        name = stream["name"]
        namespace = stream.get("namespace") or None
        sync_mode = entry.get("destination_sync_mode", "append")
        if sync_mode not in ("append", "overwrite"):
            # PyAirbyte asks for append_dedup by default; files cannot be deduplicated in place.
            logger.warning(
                "Stream %s: destination_sync_mode %r is not supported by a file destination; "
                "its records are appended without deduplication.",
                name,
                sync_mode,
            )
        generation_id = entry.get("generation_id")
        minimum_generation_id = entry.get("minimum_generation_id")
        truncate = sync_mode == "overwrite" or (
            bool(minimum_generation_id) and minimum_generation_id == generation_id
        )
        if minimum_generation_id is None:
            # Without a minimum, an overwrite keeps only its own generation; appends keep all.
            overwrite_with_id = sync_mode == "overwrite" and generation_id is not None
            minimum_generation_id = generation_id if overwrite_with_id else 0
        header, encode = encoder_for(
            config.output_format, root_level_properties(stream.get("json_schema"))
        )
        directory = stream_directory(config.location.path, namespace, config.stream_prefix, name)
        markers_prefix = generation_markers_prefix(config.location.path, directory)
        if longest_key_bytes(markers_prefix) > S3_MAX_KEY_BYTES:
            shown = f"{namespace}.{name}" if namespace else name
            raise CatalogError(
                f"Stream '{shown[:100]}{'…' if len(shown) > 100 else ''}': its object keys would "
                f"be up to {longest_key_bytes(markers_prefix)} bytes long, over S3's limit of "
                f"{S3_MAX_KEY_BYTES}. To fix: shorten the S3 Bucket Path, the stream prefix, or "
                "the stream's name or namespace (namespace mapping in the connection)."
            )
        target = StreamTarget(
            name=name,
            namespace=namespace,
            directory=directory,
            header=header,
            sync_mode=sync_mode,
            truncate=truncate,
            generation_id=generation_id,
            minimum_generation_id=minimum_generation_id,
            markers_prefix=markers_prefix,
        )
        streams[(namespace, name)] = ConfiguredStream(target, encode)
    return streams


class UnknownStream(Exception):
    pass


class Router:
    def __init__(
        self,
        streams: Mapping[StreamKey, ConfiguredStream],
        make_writer: Callable[[StreamTarget], StreamWriter],
    ) -> None:
        self._streams = streams
        self._make_writer = make_writer
        self._writers: dict[StreamKey, tuple[StreamWriter, LineEncoder]] = {}

    def route(self, namespace: str | None, name: str) -> tuple[StreamWriter, LineEncoder]:
        key = (namespace or None, name)
        found = self._writers.get(key)
        if found is None:
            configured = self._streams.get(key)
            if configured is None:
                shown = f"{namespace}.{name}" if namespace else name
                raise UnknownStream(f"stream '{shown}' is not in the configured catalog")
            found = (self._make_writer(configured.target), configured.encode)
            self._writers[key] = found
        return found

    def records_added(self, namespace: str | None, name: str) -> int:
        """Records routed so far to one stream (0 for a stream that has had none)."""
        found = self._writers.get((namespace or None, name))
        return found[0].records_added if found is not None else 0

    def writers(self) -> Iterator[StreamWriter]:
        for writer, _ in self._writers.values():
            yield writer
