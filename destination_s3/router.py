"""The router owns the stream → writer map: it builds writers lazily from the configured catalog
and rejects records of streams the catalog does not name."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from destination_s3.config import ConnectorConfig
from destination_s3.encoders import LineEncoder, encoder_for, root_level_properties
from destination_s3.keys import generation_markers_prefix, stream_directory
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
        header, encode = encoder_for(
            config.output_format, root_level_properties(stream.get("json_schema"))
        )
        directory = stream_directory(config.location.path, namespace, config.stream_prefix, name)
        target = StreamTarget(
            name=name,
            namespace=namespace,
            directory=directory,
            header=header,
            truncate=truncate,
            generation_id=generation_id,
            minimum_generation_id=(
                minimum_generation_id if minimum_generation_id is not None else generation_id
            ),
            markers_prefix=(
                generation_markers_prefix(config.location.path, directory)
                if truncate and generation_id is not None
                else None
            ),
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
