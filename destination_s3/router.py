"""The router owns the stream → writer map: it builds writers lazily from the configured catalog
and rejects records of streams the catalog does not name."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from destination_s3.catalog import ConfiguredCatalog, ConfiguredStream, StreamKey, stream_key
from destination_s3.compression import Compressor
from destination_s3.config import ConnectorConfig, OutputFormat
from destination_s3.encoders import LineEncoder, encoder_for, root_level_properties
from destination_s3.errors import CatalogError
from destination_s3.keys import S3_MAX_KEY_BYTES, generation_markers_prefix
from destination_s3.layout import PROCESS_SYNC_ID, stream_layout
from destination_s3.writer import StreamTarget, StreamWriter

if TYPE_CHECKING:
    from destination_s3.parquet import StreamColumns

logger = logging.getLogger("airbyte")


@dataclass(frozen=True)
class StreamPlan:
    """How one configured stream is written: where, and with which encoder."""

    target: StreamTarget
    encode: LineEncoder
    # Parquet: the stream's columns, and a new object's body (None: the format's compressor).
    columns: StreamColumns | None = None
    new_body: Callable[[], Compressor] | None = None


def plan_streams(
    config: ConnectorConfig, catalog: ConfiguredCatalog, sync_id: str = PROCESS_SYNC_ID
) -> dict[StreamKey, StreamPlan]:
    """What each configured stream's writer needs, checked before any record is read. `sync_id`
    is the value of a path template's ${SYNC_ID}."""
    plans: dict[StreamKey, StreamPlan] = {}
    roots: dict[str, tuple[StreamKey, str]] = {}
    for configured in catalog.streams:
        stream = configured.stream
        name, namespace = stream.name, stream.namespace or None
        sync_mode = configured.destination_sync_mode
        if sync_mode not in ("append", "overwrite"):
            # PyAirbyte asks for append_dedup by default; files cannot be deduplicated in place.
            logger.warning(
                "Stream %s: destination_sync_mode %r is not supported by a file destination; "
                "its records are appended without deduplication.",
                name,
                sync_mode,
            )
        generation_id = configured.generation_id
        minimum_generation_id = _minimum_generation(configured)
        truncate = sync_mode == "overwrite" or (
            minimum_generation_id > 0 and minimum_generation_id == generation_id
        )
        columns, new_body = None, None
        encode: LineEncoder
        if config.output_format is OutputFormat.PARQUET:
            # Imported here: pyarrow costs ≈ 50 MB and 0.3 s, for Parquet syncs only.
            from destination_s3.parquet import ParquetBody, StreamColumns, encode_line
            from destination_s3.parquet_schema import declared_columns

            columns = StreamColumns(declared_columns(stream.json_schema))
            header, encode = b"", encode_line
            new_body = functools.partial(ParquetBody, columns, config.parquet)
        else:
            header, encode = encoder_for(
                config.output_format, root_level_properties(stream.json_schema)
            )
        layout = stream_layout(
            config.path_template,
            config.location.path,
            namespace,
            config.stream_prefix,
            name,
            sync_id,
        )
        markers_prefix = generation_markers_prefix(config.location.path, layout.root)
        shown = f"{namespace}.{name}" if namespace else name
        shown = f"{shown[:100]}{'…' if len(shown) > 100 else ''}"
        longest = layout.longest_key_bytes(markers_prefix)
        if longest > S3_MAX_KEY_BYTES:
            raise CatalogError(
                f"Stream '{shown}': its object keys would be up to {longest} bytes long, over "
                f"S3's limit of {S3_MAX_KEY_BYTES}. To fix: shorten the S3 Bucket Path, the "
                "path format, the stream prefix, or the stream's name or namespace (namespace "
                "mapping in the connection).",
                user_can_fix=True,
            )
        other_key, other = roots.setdefault(layout.root, (configured.key, shown))
        if other_key != configured.key:
            # One stream's overwrite would remove the other's objects.
            raise CatalogError(
                f"Streams '{other}' and '{shown}' would both be written below "
                f"{layout.root}. To fix: put ${{NAMESPACE}} and ${{STREAM_NAME}} in separate "
                "folders of s3_path_format, or rename one stream.",
                user_can_fix=True,
            )
        bookkeeping = f"{config.location.path}/" if config.location.path else ""
        if layout.root[len(bookkeeping) :].startswith("_tarsal_"):
            raise CatalogError(
                f"Stream '{shown}' would be written below {layout.root}: folders starting with "
                "_tarsal_ hold the connector's bookkeeping, and readers skip them. To fix: set a "
                "stream prefix, map the stream's namespace or name, or change s3_path_format.",
                user_can_fix=True,
            )
        target = StreamTarget(
            name=name,
            namespace=namespace,
            layout=layout,
            header=header,
            sync_mode=sync_mode,
            truncate=truncate,
            generation_id=generation_id,
            minimum_generation_id=minimum_generation_id,
            markers_prefix=markers_prefix,
        )
        plans[configured.key] = StreamPlan(target, encode, columns, new_body)
    return plans


def _minimum_generation(configured: ConfiguredStream) -> int:
    if configured.minimum_generation_id is not None:
        return configured.minimum_generation_id
    # Without a minimum, an overwrite keeps only its own generation; appends keep all.
    if configured.destination_sync_mode == "overwrite" and configured.generation_id is not None:
        return configured.generation_id
    return 0


class UnknownStream(Exception):
    pass


class Router:
    def __init__(
        self,
        streams: Mapping[StreamKey, StreamPlan],
        make_writer: Callable[[StreamPlan], StreamWriter],
    ) -> None:
        self._streams = streams
        self._make_writer = make_writer
        self._writers: dict[StreamKey, tuple[StreamWriter, LineEncoder]] = {}

    def route(self, namespace: str | None, name: str) -> tuple[StreamWriter, LineEncoder]:
        key = stream_key(namespace, name)
        found = self._writers.get(key)
        if found is None:
            configured = self._streams.get(key)
            if configured is None:
                shown = f"{namespace}.{name}" if namespace else name
                raise UnknownStream(f"stream '{shown}' is not in the configured catalog")
            found = (self._make_writer(configured), configured.encode)
            self._writers[key] = found
        return found

    def knows(self, namespace: str | None, name: str) -> bool:
        return stream_key(namespace, name) in self._streams

    def writers(self) -> Iterator[StreamWriter]:
        for writer, _ in self._writers.values():
            yield writer
