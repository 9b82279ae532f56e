"""Object keys, computed by pure functions: the clock and the names are passed in.

Layout: `<bucket path>/<namespace>/<stream prefix><stream name>/<YYYY_MM_DD>_<epoch ms>_0.<ext>`,
where `<ext>` is `jsonl` or `csv`, followed by `.gz` or `.zst` when compressed, or `parquet`.
The namespace segment exists only when the stream has a namespace; the date and the epoch
milliseconds are the UTC time the object was opened; `0` is the partition id.

Names become key segments by percent-encoding only what could move a key out of its directory or
confuse a reader: `%`, `/`, `\\`, control characters (C0, DEL and C1), and segments made only of
dots (`.`, `..`); an empty name becomes `%EMPTY`.
Everything else stays as it is (spaces, unicode). The mapping is one-to-one: two different stream
names never share a directory, so overwriting `a/b` can never delete the files of `a%2Fb`'s
neighbour `a_b`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

PARTITION_ID = 0

# Which generation wrote each object is recorded here, outside every stream's directory: the
# least-privilege policy cannot read object metadata, but it can list keys. Readers skip every
# `_tarsal_*` prefix (Spark and Hive skip `_`-prefixed folders by themselves).
GENERATIONS_FOLDER = "_tarsal_generations"
# A marker must not look like a data file to a reader globbing `**/*.csv` or `**/*.jsonl`.
MARKER_SUFFIX = ".marker"

# S3 refuses longer keys (KeyTooLongError); some S3-compatible stores silently accept them.
S3_MAX_KEY_BYTES = 1024

# The names this connector gives its objects: only these are ever deleted by an overwrite. The
# compressed extensions are exactly those of config.Compression (`.gz`, `.zst`); Parquet
# compresses inside the file.
# ASCII digits only: a key we could not have written is never deleted.
OWN_OBJECT_NAME_PATTERN = (
    r"[0-9]{4}_[0-9]{2}_[0-9]{2}_[0-9]+_[0-9]+\.(?:(?:jsonl|csv)(?:\.gz|\.zst)?|parquet)"
)
_OWN_OBJECT_NAME = re.compile(OWN_OBJECT_NAME_PATTERN)


# Never produced by escaping (an escaped `%` is always followed by two hex digits).
EMPTY_NAME_SEGMENT = "%EMPTY"


def _escape_char(char: str) -> str:
    if char in "%/\\" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
        return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return char


def safe_segment(name: str) -> str:
    """A name made safe to stand as one key segment (see the module docstring)."""
    if not name:
        return EMPTY_NAME_SEGMENT
    if set(name) == {"."}:
        return "%2E" * len(name)
    return "".join(_escape_char(char) for char in name)


def stream_directory(
    bucket_path: str, namespace: str | None, stream_prefix: str, stream_name: str
) -> str:
    """The directory (ending in `/`) that holds every object of one stream."""
    segments = [bucket_path] if bucket_path else []
    if namespace:
        segments.append(safe_segment(namespace))
    segments.append(safe_segment(stream_prefix + stream_name))
    return "/".join(segments) + "/"


def generation_markers_prefix(bucket_path: str, directory: str) -> str:
    """Where the generation markers of the stream stored in `directory` live (ends with `/`)."""
    root = f"{bucket_path}/" if bucket_path else ""
    return f"{root}{GENERATIONS_FOLDER}/{directory[len(root) :]}"


def generation_marker_key(markers_prefix: str, generation_id: int, marker_name: str) -> str:
    """An empty object whose key says: the object `marker_name` stands for (layout.py: its key
    below the stream's root, as one segment; the object's name in the default layout) was
    written by generation `generation_id`."""
    return f"{markers_prefix}{generation_id}/{marker_name}{MARKER_SUFFIX}"


def is_own_object_name(name: str) -> bool:
    """Whether a name (the part of a key after the stream's directory) is one this connector
    gives its data objects."""
    return _OWN_OBJECT_NAME.fullmatch(name) is not None


def split_marker(relative_key: str) -> tuple[int, str] | None:
    """(generation, marker name) of a marker key relative to its stream's markers prefix, or None
    for anything else: a deeper key belongs to a namespaced stream whose namespace is this
    stream's name. Markers written before MARKER_SUFFIX existed have the object's name alone."""
    generation, _, name = relative_key.partition("/")
    if not (generation.isascii() and generation.isdigit()) or not name or "/" in name:
        return None
    return int(generation), name.removesuffix(MARKER_SUFFIX)


def parse_marker(relative_key: str) -> tuple[int, str] | None:
    """(generation, object name) of a marker of the default layout, or None."""
    parsed = split_marker(relative_key)
    return parsed if parsed is not None and is_own_object_name(parsed[1]) else None


def object_key(directory: str, opened_at_ms: int, extension: str) -> str:
    day = dt.datetime.fromtimestamp(opened_at_ms / 1000, tz=dt.timezone.utc).strftime("%Y_%m_%d")
    return f"{directory}{day}_{opened_at_ms}_{PARTITION_ID}.{extension}"


@dataclass
class KeyAllocator:
    """Hands out objects' open times (epoch ms) that never repeat for a stream in this process.

    Two objects of one stream opened in the same millisecond would get the same key, so the second
    takes the next free millisecond. Per stream root, not per folder: with a path template the
    folder is computed from the time handed out, so an object never lands in the folder of
    another time than its name's. (Across processes, the conditional completion of every upload
    refuses to replace an existing object.)
    """

    _last_ms: dict[str, int] = field(default_factory=dict)

    def next_ms(self, stream_root: str, now_ms: int) -> int:
        opened_at_ms = max(now_ms, self._last_ms.get(stream_root, -1) + 1)
        self._last_ms[stream_root] = opened_at_ms
        return opened_at_ms
