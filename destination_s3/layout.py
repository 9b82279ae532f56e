"""Object keys from a user's path template (option `s3_path_format`): pure functions.

A template is an object's FOLDER under the bucket path; its name stays keys.object_key's
`<YYYY_MM_DD>_<epoch ms>_0.<ext>`. Variables: `${NAMESPACE}`, `${STREAM_NAME}` (stream prefix +
name, as today), `${YEAR}`, `${MONTH}`, `${DAY}`, `${HOUR}`, `${MINUTE}` (zero padded, UTC, of the
object's open time), `${EPOCH}` (that time in ms), `${SYNC_ID}` (from the caller: the catalog's
sync_id in decimal, else one `uuid4().hex` per process) and `${UUID}` (a fresh `str(uuid4())` per
object); the rest is literal text, e.g. `dt=${YEAR}-${MONTH}-${DAY}`. The default layout is the
template DEFAULT_TEMPLATE_TEXT, `${NAMESPACE}/${STREAM_NAME}`: byte-identical to
keys.stream_directory + keys.object_key.

parse_path_template strips ASCII blanks, then leading and trailing `/` (blank text gives None, the
default layout), and raises PathTemplateError, naming the problem and the fix, for: more than 512
characters; an unknown `${NAME}` or a `$` that starts none (`$FOO`, an unclosed `${`); `%`, `\\` or
a control character in literal text (keys.safe_segment would escape them); an empty folder
(`a//b`), a literal folder of dots only (`.`, `..`), or one starting with `_tarsal_` (the
connector's records, which readers skip); no `${STREAM_NAME}` (two streams would share objects);
a time or id variable in the stream root, the folders up to the first one holding
`${STREAM_NAME}`: the root must be fixed per stream, since overwrite lists a stream's objects
below it. The folders after the root are the tail.

Expansion escapes values as keys.safe_segment escapes characters (`%`, `/`, `\\`, C0, DEL, C1); a
folder that is just `${NAMESPACE}` is left out when the stream has no namespace (None or ""),
elsewhere `${NAMESPACE}` is then ""; a folder expanding to "" becomes keys.EMPTY_NAME_SEGMENT, one
made of dots only `%2E` repeated.

Overwrite deletes below a stream's root only keys is_own_key accepts: the tail's pattern (time
variables as fixed-width ASCII digits, `${EPOCH}` digits, `${SYNC_ID}` digits or 32 hex digits,
`${UUID}` canonical, the rest exactly) and then an own object name. A sibling (`users_x` for
`users`) has another root, and under one template a nested stream (whose namespace is this
stream's name) has deeper keys. Residual case: a nested stream's objects written under another
layout (an earlier config, e.g. the default one) at a path this tail also matches: with
`${NAMESPACE}/${STREAM_NAME}/dt=${YEAR}`, stream `public` claims `public/dt=2024/<name>` of a
default-layout stream `dt=2024` in namespace `public`; one template per bucket path avoids it
(README "Path templates"). Objects of the stream's own earlier layout are not claimed: they stay.
A template without `${NAMESPACE}` in its root, or joining it to `${STREAM_NAME}` in one folder,
can give two streams one root (`${NAMESPACE}_${STREAM_NAME}`: `a`+`b_c` and `a_b`+`c`); the
caller must refuse that.

A marker is named by its object's key below root with `%` as `%25` and `/` as `%2F` (one segment):
for the default layout, the object's name, as keys.py names markers.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid as uuid_module
from dataclasses import dataclass, field

from destination_s3.keys import (
    MARKER_SUFFIX,
    OWN_OBJECT_NAME_PATTERN,
    as_segment,
    escape_name,
    object_key,
)

DEFAULT_TEMPLATE_TEXT = "${NAMESPACE}/${STREAM_NAME}"
# ${SYNC_ID} when the catalog has no sync_id: one per process.
PROCESS_SYNC_ID = uuid_module.uuid4().hex
MAX_TEMPLATE_CHARS = 512
_RESERVED = "_tarsal_"  # keys.GENERATIONS_FOLDER's family, skipped by readers

_FIXED = ("NAMESPACE", "STREAM_NAME")  # the same for every object of a stream
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SYNC_ID = "[0-9]+|[0-9a-f]{32}"
# The others: their pattern, in ASCII digits only (`\d` would accept digits we never write, and a
# key we could not have written is never deleted), and their widest value's length (14 epoch
# digits last until the year 5138, as in keys.py).
_MOVING = {"YEAR": ("[0-9]{4}", 4), "MONTH": ("[0-9]{2}", 2), "DAY": ("[0-9]{2}", 2)}
_MOVING |= {"HOUR": ("[0-9]{2}", 2), "MINUTE": ("[0-9]{2}", 2), "EPOCH": ("[0-9]+", 14)}
_MOVING |= {"SYNC_ID": (f"(?:{_SYNC_ID})", 32), "UUID": (_UUID, 36)}
VARIABLES = (*_FIXED, *_MOVING)
_LONGEST_NAME = "9999_99_99_99999999999999_0.jsonl.zst"
_LONGEST_GENERATION = "9999999999999999999/"  # as keys.py: up to 19 digits

# A folder break, a variable, a stray `$` (or unclosed `${`), literal text: covers any text.
_TOKEN = re.compile(r"(/)|\$\{([^{}$/]*)\}|(\$\{?)|([^/$]+)")
_UNSAFE_LITERAL = re.compile(r"[%\\\x00-\x1f\x7f-\x9f]")
_MARKER_ESCAPE = re.compile("%(25|2F)")
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

# (variable name, "") for a variable, ("", text) for literal text or a value already expanded.
_Part = tuple[str, str]
_Segment = tuple[_Part, ...]


class PathTemplateError(ValueError):
    """An unusable `s3_path_format`; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class PathTemplate:
    text: str  # as given, stripped
    segments: tuple[_Segment, ...]
    root_length: int  # how many of `segments` form the stream root


def _error(problem: str, fix: str) -> PathTemplateError:
    return PathTemplateError(f"s3_path_format: {problem}; {fix}")


def parse_path_template(text: str | None) -> PathTemplate | None:
    """The template of `text`, or None (the default layout) for blank text."""
    # Only ASCII blanks: other control characters are refused, wherever they are.
    return _parse(text.strip(" \t\r\n").strip("/")) if text and text.strip(" \t\r\n") else None


def _parse(text: str) -> PathTemplate:
    if len(text) > MAX_TEMPLATE_CHARS:
        raise _error(f"it has {len(text)} characters", f"shorten it to {MAX_TEMPLATE_CHARS}")
    segments: list[list[_Part]] = [[]]
    for token in _TOKEN.finditer(text):
        kind, value = token.lastindex, token[token.lastindex or 0]
        if kind == 1:
            segments.append([])
            continue
        if kind == 3:
            problem = "`${` is not closed by `}`" if value == "${" else "`$` starts no variable"
            raise _error(
                f"{problem} at character {token.start() + 1}",
                "use ${NAME} with NAME one of " + ", ".join(VARIABLES) + " (`$` is not literal)",
            )
        elif kind == 2 and value not in VARIABLES:
            raise _error(f"unknown variable ${{{value}}}", "use one of " + ", ".join(VARIABLES))
        elif kind == 4 and (bad := _UNSAFE_LITERAL.search(value)):
            raise _error(
                f"the character {bad[0]!r} is not allowed in literal text (keys would escape it)",
                "remove it (`%`, `\\` and control characters are refused)",
            )
        segments[-1].append((value, "") if kind == 2 else ("", value))
    with_name = [i for i, segment in enumerate(segments) if ("STREAM_NAME", "") in segment]
    if not with_name:
        raise _error(
            "it has no ${STREAM_NAME}: two streams would share objects",
            "add it, e.g. " + DEFAULT_TEMPLATE_TEXT,
        )
    for segment in segments:
        if not segment:
            raise _error("it has an empty folder name (`//`)", "remove the extra `/`")
        if segment[0][0] == "" and len(segment) == 1 and not segment[0][1].strip("."):
            raise _error(f"a folder named `{segment[0][1]}` is not allowed", "rename it")
        if segment[0][1].startswith(_RESERVED):
            raise _error(f"folders starting with `{_RESERVED}` are reserved", "rename it")
    root_length = with_name[0] + 1
    moving = [name for s in segments[:root_length] for name, _ in s if name and name not in _FIXED]
    if moving:
        raise _error(
            f"${{{moving[0]}}} is in or before the folder holding ${{STREAM_NAME}}: the folders "
            "up to it must be the same for every object of a stream, so that an overwrite knows "
            "where the stream's objects are",
            "move time and id variables into later folders, e.g. "
            "${NAMESPACE}/${STREAM_NAME}/dt=${YEAR}-${MONTH}-${DAY}",
        )
    return PathTemplate(text, tuple(tuple(s) for s in segments), root_length)


DEFAULT_TEMPLATE = _parse(DEFAULT_TEMPLATE_TEXT)


def _marker_escape(relative: str) -> str:
    return relative.replace("%", "%25").replace("/", "%2F")


def _bind(segments: tuple[_Segment, ...], namespace: str, name: str) -> tuple[_Segment, ...]:
    """Segments with the stream's values in; a segment with nothing left to expand becomes one
    literal part, escaped as keys.safe_segment would."""
    fixed = {"NAMESPACE": escape_name(namespace), "STREAM_NAME": escape_name(name)}
    bound = []
    for segment in segments:
        if segment == (("NAMESPACE", ""),) and not namespace:
            continue
        parts = tuple(("", fixed[v]) if v in fixed else (v, t) for v, t in segment)
        if all(not v for v, _ in parts):
            parts = (("", as_segment("".join(t for _, t in parts))),)
        bound.append(parts)
    return tuple(bound)


@dataclass(frozen=True)
class StreamLayout:
    """Where one stream's objects go; built by stream_layout."""

    root: str  # bucket path and stream root, ending in "/"
    recursive: bool  # whether own keys can be below sub-folders of root (a template with a tail)
    sync_id: str
    _tail: tuple[_Segment, ...] = field(repr=False)
    _pattern: re.Pattern[str] = field(repr=False, compare=False)

    def directory(self, opened_at_ms: int, uuid: str | None = None) -> str:
        """The folder (ending in "/") of an object opened at `opened_at_ms`; `uuid` is the value
        of ${UUID} (by default a fresh one)."""
        if opened_at_ms < 0:
            raise ValueError(f"negative open time {opened_at_ms}")
        if uuid is None:
            uuid = str(uuid_module.uuid4()) if any(("UUID", "") in s for s in self._tail) else ""
        elif not re.fullmatch(_UUID, uuid):
            raise ValueError(f"{uuid!r} is not a lower-case dashed UUID")
        at = _UNIX_EPOCH + dt.timedelta(milliseconds=opened_at_ms)
        values = {"YEAR": f"{at.year:04d}", "MONTH": f"{at.month:02d}", "DAY": f"{at.day:02d}"}
        values |= {"HOUR": f"{at.hour:02d}", "MINUTE": f"{at.minute:02d}"}
        values |= {"EPOCH": str(opened_at_ms), "SYNC_ID": self.sync_id, "UUID": uuid}
        return self.root + "".join(
            "".join(values[v] if v else t for v, t in segment) + "/" for segment in self._tail
        )

    def object_key(self, opened_at_ms: int, extension: str, uuid: str | None = None) -> str:
        return object_key(self.directory(opened_at_ms, uuid), opened_at_ms, extension)

    def is_own_key(self, relative: str) -> bool:
        """Whether `relative` (a key minus root) is one this layout could have written."""
        return self._pattern.fullmatch(relative) is not None

    def marker_name(self, key: str) -> str:
        """The marker name of an object (without keys.MARKER_SUFFIX): one segment."""
        if not key.startswith(self.root):
            raise ValueError(f"{key!r} is not below {self.root!r}")
        return _marker_escape(key[len(self.root) :])

    def object_key_of_marker(self, name: str) -> str | None:
        """The object key a marker name (with or without keys.MARKER_SUFFIX) stands for, or None
        if it does not name an own key of this layout."""
        name = name.removesuffix(MARKER_SUFFIX)
        relative = _MARKER_ESCAPE.sub(lambda m: "%" if m[1] == "25" else "/", name)
        if _marker_escape(relative) != name or not self.is_own_key(relative):
            return None
        return self.root + relative

    def _widest_relative(self) -> str:
        return (
            "".join(
                "".join("9" * _MOVING[v][1] if v else t for v, t in segment) + "/"
                for segment in self._tail
            )
            + _LONGEST_NAME
        )

    def longest_relative_bytes(self) -> int:
        """The longest key below root (UTF-8 bytes, as S3 counts) of this stream's objects."""
        return len(self._widest_relative().encode())

    def longest_key_bytes(self, markers_prefix: str) -> int:
        """The longest key this stream can write: an object, or its marker below
        `markers_prefix` (keys.generation_markers_prefix(bucket_path, root))."""
        marker = _LONGEST_GENERATION + _marker_escape(self._widest_relative()) + MARKER_SUFFIX
        objects = len(self.root.encode()) + self.longest_relative_bytes()
        return max(objects, len(markers_prefix.encode()) + len(marker.encode()))


def sync_id_value(catalog_sync_id: int | None) -> str:
    """${SYNC_ID}: the catalog's sync_id in decimal, else this process's id."""
    if catalog_sync_id is not None and 0 <= catalog_sync_id < 10**32:
        return str(catalog_sync_id)
    return PROCESS_SYNC_ID


def stream_layout(
    template: PathTemplate | None,
    bucket_path: str,
    namespace: str | None,
    stream_prefix: str,
    stream_name: str,
    sync_id: str,
) -> StreamLayout:
    """The layout of one stream; `template` None is the default layout."""
    if not re.fullmatch(_SYNC_ID, sync_id) or len(sync_id) > 32:
        raise ValueError(f"sync id {sync_id!r} is neither up to 32 digits nor 32 hex digits")
    template = template or DEFAULT_TEMPLATE
    segments, length = template.segments, template.root_length
    name = stream_prefix + stream_name
    root = [bucket_path] if bucket_path else []
    root += [segment[0][1] for segment in _bind(segments[:length], namespace or "", name)]
    tail = _bind(segments[length:], namespace or "", name)
    pattern = "".join(
        "".join(_MOVING[v][0] if v else re.escape(t) for v, t in segment) + "/" for segment in tail
    )
    return StreamLayout(
        "/".join(root) + "/",
        bool(tail),
        sync_id,
        tail,
        re.compile(pattern + OWN_OBJECT_NAME_PATTERN),
    )
