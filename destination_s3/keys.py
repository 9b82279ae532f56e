"""Object keys, computed by pure functions: the clock and the names are passed in.

Default layout (layout.py builds every layout, this one included, from these pieces):
`<bucket path>/<namespace>/<stream prefix><stream name>/<YYYY_MM_DD>_<epoch ms>_0.<ext>`, where
`<ext>` is `jsonl` or `csv`, followed by `.gz` or `.zst` when compressed, or `parquet`. The
namespace segment exists only when the stream has a namespace; the date and the epoch
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


# Never produced by escaping (an escaped `%` is always followed by two hex digits).
EMPTY_NAME_SEGMENT = "%EMPTY"


_UNSAFE_CHARACTER = re.compile(r"[%/\\\x00-\x1f\x7f-\x9f]")


def escape_name(text: str) -> str:
    """Text with every character that could leave a segment or confuse a reader (`%`, `/`, `\\`,
    C0, DEL, C1) percent-encoded as its UTF-8 bytes."""
    return _UNSAFE_CHARACTER.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), text)


def as_segment(escaped: str) -> str:
    """Escaped text made a usable segment: "" and dots-only (`.`, `..`) cannot stand alone."""
    if not escaped:
        return EMPTY_NAME_SEGMENT
    return escaped if escaped.strip(".") else "%2E" * len(escaped)


def safe_segment(name: str) -> str:
    """A name made safe to stand as one key segment (see the module docstring)."""
    return as_segment(escape_name(name))


def generation_markers_prefix(bucket_path: str, directory: str) -> str:
    """Where the generation markers of the stream stored in `directory` live (ends with `/`)."""
    root = f"{bucket_path}/" if bucket_path else ""
    return f"{root}{GENERATIONS_FOLDER}/{directory[len(root) :]}"


def generation_marker_key(markers_prefix: str, generation_id: int, marker_name: str) -> str:
    """An empty object whose key says: the object `marker_name` stands for (layout.py: its key
    below the stream's root, as one segment; the object's name in the default layout) was
    written by generation `generation_id`."""
    return f"{markers_prefix}{generation_id}/{marker_name}{MARKER_SUFFIX}"


def split_marker(relative_key: str) -> tuple[int, str] | None:
    """(generation, marker name) of a marker key relative to its stream's markers prefix, or None
    for anything else: a deeper key belongs to a namespaced stream whose namespace is this
    stream's name. Which object a marker name stands for (its MARKER_SUFFIX taken off once;
    markers written before the suffix existed have the object's name alone) is the stream
    layout's to say (layout.py)."""
    generation, _, name = relative_key.partition("/")
    if not (generation.isascii() and generation.isdigit()) or not name or "/" in name:
        return None
    return int(generation), name


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
