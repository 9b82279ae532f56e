"""The per-sync manifest: one JSON object written after every state of a successful sync is out.

Its presence says the sync completed (a failed sync writes none); it lists what belongs to it.
For a stream the sync overwrote or truncated, `objects` is the stream's complete current file set:
this sync's objects and the kept objects of earlier attempts of the same generation, so a reader of
the latest manifest gets exactly the current generation. For an append stream it is this sync's
objects. States are counted per stream (STREAM states) and overall, with the last one released:
listing every state would grow without bound with sources that checkpoint every record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import msgspec

from destination_s3.storage import StoredObject
from destination_s3.writer import Completion, StreamStats, StreamTarget

MANIFESTS_FOLDER = "_tarsal_manifests"


def manifest_key(bucket_path: str, started_ms: int, sync_id: str) -> str:
    day = dt.datetime.fromtimestamp(started_ms / 1000, tz=dt.timezone.utc).strftime("%Y_%m_%d")
    root = f"{bucket_path}/" if bucket_path else ""
    return f"{root}{MANIFESTS_FOLDER}/{day}_{started_ms}_{sync_id}.json"


def connector_version() -> str:
    try:
        return metadata.version("destination-s3")
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


@dataclass
class StreamStates:
    """STREAM states released for one stream; GLOBAL and LEGACY ones count for every stream."""

    released: int = 0
    last: bytes | None = None


@dataclass
class SyncStates:
    released: int = 0
    last: bytes | None = None
    by_stream: dict[tuple[str | None, str], StreamStates] = field(default_factory=dict)

    def add(self, body: bytes, stream: tuple[str | None, str] | None) -> None:
        self.released += 1
        self.last = body
        if stream is not None:
            states = self.by_stream.setdefault(stream, StreamStates())
            states.released += 1
            states.last = body


def _iso(epoch_seconds: float) -> str:
    instant = dt.datetime.fromtimestamp(epoch_seconds, tz=dt.timezone.utc)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _raw(body: bytes | None) -> msgspec.Raw | None:
    return msgspec.Raw(body) if body is not None else None


def _written(completion: Completion) -> dict[str, Any]:
    return {
        "key": completion.key,
        "written_by_this_sync": True,
        "records": completion.records,
        "bytes": completion.uncompressed_size,
        "stored_bytes": completion.size,
        "etag": completion.etag,
        "first_emitted_at": completion.first_emitted_at,
        "last_emitted_at": completion.last_emitted_at,
    }


def _kept(stored: StoredObject) -> dict[str, Any]:
    # An earlier attempt's object: what the listing says (its records are not known here).
    return {
        "key": stored.key,
        "written_by_this_sync": False,
        "stored_bytes": stored.size,
        "etag": stored.etag,
    }


@dataclass(frozen=True)
class StreamEntry:
    target: StreamTarget
    written: StreamStats  # this sync's committed objects
    kept: Sequence[StoredObject]


def build_manifest(
    *,
    bucket: str,
    sync_id: str,
    catalog_sync_id: int | None,
    started_at: float,
    ended_at: float,
    streams: Sequence[StreamEntry],
    states: SyncStates,
) -> bytes:
    entries = []
    for entry in streams:
        target = entry.target
        stream_states = states.by_stream.get((target.namespace, target.name), StreamStates())
        entries.append(
            {
                "namespace": target.namespace,
                "name": target.name,
                "directory": f"s3://{bucket}/{target.directory}",
                "sync_mode": target.sync_mode,
                "generation_id": target.generation_id,
                "minimum_generation_id": target.minimum_generation_id,
                "complete_file_set": target.truncate,
                "records": entry.written.records,
                "objects": [*map(_kept, entry.kept), *map(_written, entry.written.objects)],
                "stream_states_released": stream_states.released,
                "last_stream_state": _raw(stream_states.last),
            }
        )
    document = {
        "connector": {"name": "destination-s3", "version": connector_version()},
        "bucket": bucket,
        "sync_id": sync_id,
        "catalog_sync_id": catalog_sync_id,
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "states_released": states.released,
        "last_state": _raw(states.last),
        "streams": entries,
    }
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
