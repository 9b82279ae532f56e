"""Object keys: a table of cases at a frozen time, and the one-to-one name → segment mapping.

The default layout's directories, own names and markers are built by layout.py from keys.py's
pieces; the helpers below read them the way the connector does."""

from __future__ import annotations

import itertools
import random
import time
import urllib.parse

import pytest

from destination_s3.keys import (
    KeyAllocator,
    generation_marker_key,
    generation_markers_prefix,
    object_key,
    safe_segment,
    split_marker,
)
from destination_s3.layout import stream_layout

USERS = stream_layout(None, "", None, "", "users", "1")


def stream_directory(bucket_path: str, namespace: str | None, prefix: str, name: str) -> str:
    """A stream's directory in the default layout."""
    return stream_layout(None, bucket_path, namespace, prefix, name, "1").root


def is_own_object_name(name: str) -> bool:
    """Whether overwrite may take a direct child of a default-layout stream's directory."""
    return USERS.is_own_key(name)


def parse_marker(relative_key: str) -> tuple[int, str] | None:
    """(generation, object name) of a default-layout marker, as retention reads it."""
    parsed = split_marker(relative_key)
    key = USERS.object_key_of_marker(parsed[1]) if parsed is not None else None
    return None if parsed is None or key is None else (parsed[0], key.removeprefix(USERS.root))


# Frozen instants (UTC) and their epoch milliseconds.
LEAP_DAY_LAST_MS = 1709251199999  # 2024-02-29T23:59:59.999Z
MARCH_FIRST_MS = 1709251200000  # 2024-03-01T00:00:00.000Z
NOV_2023_MS = 1700000000123  # 2023-11-14T22:13:20.123Z
Y2K_EVE_MS = 946684799999  # 1999-12-31T23:59:59.999Z
Y2K_MS = 946684800000  # 2000-01-01T00:00:00.000Z


@pytest.mark.parametrize(
    ("bucket_path", "namespace", "prefix", "name", "expected"),
    [
        ("", None, "", "users", "users/"),
        ("data/raw", None, "", "users", "data/raw/users/"),
        ("data/raw", "public", "", "users", "data/raw/public/users/"),
        ("", "public", "", "users", "public/users/"),
        ("", None, "tarsal_", "users", "tarsal_users/"),
        ("data", "public", "tarsal_", "users", "data/public/tarsal_users/"),
        ("", "", "", "users", "users/"),  # an empty namespace is no namespace
        ("", None, "", "a/b", "a%2Fb/"),
        ("", "ns/evil", "", "t", "ns%2Fevil/t/"),
        ("", None, "pre/", "x", "pre%2Fx/"),
        ("p", "..", "", "..", "p/%2E%2E/%2E%2E/"),
        ("p", ".", "", ".", "p/%2E/%2E/"),
        ("", None, ".", ".", "%2E%2E/"),  # prefix + name is one segment
        ("", None, "", "..\\..\\etc", "..%5C..%5Cetc/"),
        ("", None, "", "100%", "100%25/"),
        ("", None, "", "line\nbreak", "line%0Abreak/"),
        ("", "espace é", "", "用户 🚀", "espace é/用户 🚀/"),
    ],
)
def test_stream_directory(
    bucket_path: str, namespace: str | None, prefix: str, name: str, expected: str
) -> None:
    assert stream_directory(bucket_path, namespace, prefix, name) == expected


@pytest.mark.parametrize(
    ("directory", "opened_at_ms", "extension", "expected"),
    [
        ("users/", 0, "jsonl", "users/1970_01_01_0_0.jsonl"),
        ("users/", NOV_2023_MS, "jsonl", "users/2023_11_14_1700000000123_0.jsonl"),
        ("a/b/", LEAP_DAY_LAST_MS, "csv", "a/b/2024_02_29_1709251199999_0.csv"),
        ("a/b/", MARCH_FIRST_MS, "csv", "a/b/2024_03_01_1709251200000_0.csv"),
        ("x/", Y2K_EVE_MS, "jsonl", "x/1999_12_31_946684799999_0.jsonl"),
        ("x/", Y2K_MS, "jsonl", "x/2000_01_01_946684800000_0.jsonl"),
    ],
)
def test_object_key(directory: str, opened_at_ms: int, extension: str, expected: str) -> None:
    assert object_key(directory, opened_at_ms, extension) == expected


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Los_Angeles", "UTC"])
def test_object_key_date_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        # 23:59:59.999 UTC is already the next day in Kiritimati and still the day in LA.
        assert object_key("s/", LEAP_DAY_LAST_MS, "jsonl") == "s/2024_02_29_1709251199999_0.jsonl"
        assert object_key("s/", MARCH_FIRST_MS, "jsonl") == "s/2024_03_01_1709251200000_0.jsonl"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_full_key_from_directory_and_allocator() -> None:
    directory = stream_directory("data/raw", "public", "tarsal_", "users")
    key = object_key(directory, KeyAllocator().next_ms(directory, NOV_2023_MS), "jsonl")
    assert key == "data/raw/public/tarsal_users/2023_11_14_1700000000123_0.jsonl"


@pytest.mark.parametrize(
    ("bucket_path", "namespace", "name", "expected"),
    [
        ("", None, "users", "_tarsal_generations/users/"),
        ("data/raw", None, "users", "data/raw/_tarsal_generations/users/"),
        ("data/raw", "public", "users", "data/raw/_tarsal_generations/public/users/"),
        ("data", "..", "a/b", "data/_tarsal_generations/%2E%2E/a%2Fb/"),
    ],
)
def test_generation_markers_prefix(
    bucket_path: str, namespace: str | None, name: str, expected: str
) -> None:
    directory = stream_directory(bucket_path, namespace, "", name)
    assert generation_markers_prefix(bucket_path, directory) == expected


def test_generation_marker_key_names_the_generation_and_the_object() -> None:
    directory = stream_directory("data/raw", "public", "", "users")
    key = object_key(directory, NOV_2023_MS, "jsonl")
    name = key.rsplit("/", 1)[-1]
    marker = generation_marker_key(generation_markers_prefix("data/raw", directory), 12, name)
    assert marker == (
        "data/raw/_tarsal_generations/public/users/12/2023_11_14_1700000000123_0.jsonl.marker"
    )


@pytest.mark.parametrize(
    "extension", ["jsonl", "csv", "jsonl.gz", "csv.gz", "jsonl.zst", "csv.zst", "parquet"]
)
def test_a_marker_never_carries_a_data_file_extension(extension: str) -> None:
    # Readers glob `**/*.csv` / `**/*.jsonl.gz`…: an empty marker must not match.
    marker = generation_marker_key("_tarsal_generations/users/", 3, f"x_0.{extension}")
    assert not marker.endswith((".jsonl", ".csv", ".gz", ".zst"))


@pytest.mark.parametrize(
    "extension", ["jsonl", "csv", "jsonl.gz", "csv.gz", "jsonl.zst", "csv.zst", "parquet"]
)
def test_every_extension_written_is_an_own_name_and_fits_the_longest_marker(
    extension: str,
) -> None:
    key = object_key("users/", 99_999_999_999_999, extension)
    name = key.removeprefix("users/")
    assert is_own_object_name(name)
    marker = generation_marker_key("", 9_999_999_999_999_999_999, name)
    assert parse_marker(marker) == (9_999_999_999_999_999_999, name)
    assert len(marker.encode()) <= USERS.longest_key_bytes("")


@pytest.mark.parametrize(
    ("relative_key", "expected"),
    [
        ("12/2023_11_14_1700000000123_0.jsonl.marker", (12, "2023_11_14_1700000000123_0.jsonl")),
        ("0/2023_11_14_1700000000123_0.csv.marker", (0, "2023_11_14_1700000000123_0.csv")),
        # Markers written before the suffix existed.
        ("7/2023_11_14_1700000000123_0.csv", (7, "2023_11_14_1700000000123_0.csv")),
        # Not ours: a deeper key (the markers of namespace `users`' streams), other names.
        ("users/12/2023_11_14_1700000000123_0.jsonl.marker", None),
        ("12/sub/2023_11_14_1700000000123_0.jsonl.marker", None),
        ("12/notes.txt.marker", None),
        (
            "12/2023_11_14_1700000000123_0.parquet.marker",
            (12, "2023_11_14_1700000000123_0.parquet"),
        ),
        ("12/2023_11_14_1700000000123_0.parquet.gz.marker", None),
        ("12/2023_11_14_1700000000123_0.avro.marker", None),
        # Compressed objects' markers.
        (
            "12/2023_11_14_1700000000123_0.jsonl.gz.marker",
            (12, "2023_11_14_1700000000123_0.jsonl.gz"),
        ),
        ("3/2023_11_14_1700000000123_0.csv.zst.marker", (3, "2023_11_14_1700000000123_0.csv.zst")),
        ("3/2023_11_14_1700000000123_0.csv.gz", (3, "2023_11_14_1700000000123_0.csv.gz")),
        ("12/2023_11_14_1700000000123_0.jsonl.zstd.marker", None),
        ("12/2023_11_14_1700000000123_0.jsonl.bz2.marker", None),
        ("12/2023_11_14_1700000000123_0.gz.marker", None),
        ("12/2023_11_14_1700000000123_0.jsonl.gz.marker.marker", None),
        ("-1/2023_11_14_1700000000123_0.jsonl.marker", None),
        ("\u00b2/2023_11_14_1700000000123_0.jsonl.marker", None),  # a digit, but not 0-9
        ("/2023_11_14_1700000000123_0.jsonl.marker", None),
        ("12/", None),
    ],
)
def test_parse_marker(relative_key: str, expected: tuple[int, str] | None) -> None:
    assert parse_marker(relative_key) == expected


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("2023_11_14_1700000000123_0.jsonl", True),
        ("2023_11_14_1700000000123_0.csv", True),
        ("2023_11_14_1700000000123_0.csv.marker", False),
        ("2023_11_14_1700000000123_0.jsonl.gz", True),
        ("2023_11_14_1700000000123_0.jsonl.zst", True),
        ("2023_11_14_1700000000123_0.csv.gz", True),
        ("2023_11_14_1700000000123_0.csv.zst", True),
        ("2023_11_14_1700000000123_0.jsonl.gz.marker", False),
        ("2023_11_14_1700000000123_0.jsonl.gzip", False),
        ("2023_11_14_1700000000123_0.jsonl.zstd", False),
        ("2023_11_14_1700000000123_0.jsonl.GZ", False),
        ("2023_11_14_1700000000123_0.jsonl.bz2", False),
        ("2023_11_14_1700000000123_0.jsonl.gz.zst", False),
        ("2023_11_14_1700000000123_0.csv.gz.tmp", False),
        ("2023_11_14_1700000000123_0.gz", False),
        ("2023_11_14_1700000000123_0.zst", False),
        ("2023_11_14_1700000000123_0.parquet", True),
        ("2023_11_14_1700000000123_0.parquet.gz", False),
        ("2023_11_14_1700000000123_0.parquet.zst", False),
        ("2023_11_14_1700000000123_0.parquet.marker", False),
        ("2023_11_14_1700000000123_0.avro", False),
        ("2023_11_14_1700000000123_0.jsonl.gz/", False),
        ("notes_2023_11_14_1_0.csv", False),
        ("2023_11_14_1_0.csv/", False),
        ("sub/2023_11_14_1_0.csv", False),
    ],
)
def test_is_own_object_name(name: str, own: bool) -> None:
    assert is_own_object_name(name) is own


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("users", "users"),
        ("a/b", "a%2Fb"),
        ("/", "%2F"),
        ("a\\b", "a%5Cb"),
        ("100%", "100%25"),
        ("%2F", "%252F"),  # a name that looks escaped stays distinct from the escaped one
        ("a\nb", "a%0Ab"),
        ("a\rb", "a%0Db"),
        ("a\x00b", "a%00b"),
        ("tab\t", "tab%09"),
        ("del\x7f", "del%7F"),
        ("\x1f", "%1F"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "%2E%2E%2E"),
        (".hidden", ".hidden"),
        ("a..b", "a..b"),
        ("../etc", "..%2Fetc"),
        ("with space", "with space"),
        (" ", " "),
        ("café 用户 🚀", "café 用户 🚀"),
        ("Ünïcödé", "Ünïcödé"),
    ],
)
def test_safe_segment_table(name: str, expected: str) -> None:
    assert safe_segment(name) == expected


def test_safe_segment_of_empty_name_is_a_usable_segment() -> None:
    segment = safe_segment("")
    assert segment not in ("", ".", "..")
    assert "/" not in segment


_ALPHABET = ["a", "F", "E", "2", "0", ".", "/", "\\", "%", "\x00", "\n", "\x7f", " ", "é", "用"]


def _generated_names() -> list[str]:
    names = [
        "".join(chars)
        for length in range(1, 4)
        for chars in itertools.product(_ALPHABET, repeat=length)
    ]
    rng = random.Random(20240229)
    wide = [*_ALPHABET, "\t", "\r", "-", "_", "Z", "🚀", "\u2028", "\x1b"]
    names += ["".join(rng.choices(wide, k=rng.randint(4, 24))) for _ in range(20_000)]
    return names


def _assert_safe(segment: str) -> None:
    assert segment
    assert segment not in (".", "..")
    assert "/" not in segment
    assert "\\" not in segment
    assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in segment)


def test_safe_segment_is_one_to_one_and_safe_over_generated_names() -> None:
    names = set(_generated_names())
    segments: dict[str, str] = {}
    for name in names:
        segment = safe_segment(name)
        _assert_safe(segment)
        assert segment not in segments, f"{name!r} and {segments[segment]!r} share {segment!r}"
        segments[segment] = name
        # Stronger than distinctness: percent-decoding gives the name back.
        assert urllib.parse.unquote(segment) == name


def test_safe_segment_empty_name_is_distinct_from_every_other_name() -> None:
    """One-to-one includes the empty name: it must not share a directory with any other name."""
    empty = safe_segment("")
    for name in ["\x00", ".", "%", "%00", "0", *_ALPHABET]:
        assert safe_segment(name) != empty, f"'' and {name!r} both map to {empty!r}"


def test_directories_of_distinct_streams_are_distinct() -> None:
    streams = [
        (None, "a/b"),
        ("a", "b"),
        (None, "a%2Fb"),
        (None, "a_b"),
        ("a/b", "c"),
        ("a", "b/c"),
        (None, ".."),
        (None, "%2E%2E"),
        ("..", "x"),
        (None, "x"),
    ]
    directories = [stream_directory("root", ns, "", name) for ns, name in streams]
    assert len(set(directories)) == len(directories)
    for directory in directories:
        assert directory.startswith("root/")
        segments = directory[len("root/") : -1].split("/")
        assert all(segment not in ("", ".", "..") for segment in segments)


def test_key_allocator_never_repeats_within_one_millisecond() -> None:
    allocator = KeyAllocator()
    keys = [object_key("s/", allocator.next_ms("s/", NOV_2023_MS), "jsonl") for _ in range(1000)]
    assert len(set(keys)) == 1000
    assert keys[0] == object_key("s/", NOV_2023_MS, "jsonl")
    assert keys[1] == object_key("s/", NOV_2023_MS + 1, "jsonl")
    assert keys[-1] == object_key("s/", NOV_2023_MS + 999, "jsonl")


def test_key_allocator_keeps_one_clock_per_stream() -> None:
    allocator = KeyAllocator()
    assert [allocator.next_ms("a/", 1000), allocator.next_ms("a/", 1000)] == [1000, 1001]
    # Another stream at the same millisecond is not pushed by the first stream's clock.
    assert allocator.next_ms("b/", 1000) == 1000
    assert [allocator.next_ms("a/", 1000), allocator.next_ms("b/", 1000)] == [1002, 1001]


def test_key_allocator_follows_the_clock_and_survives_it_going_back() -> None:
    allocator = KeyAllocator()
    assert [allocator.next_ms("s/", 5000), allocator.next_ms("s/", 9000)] == [5000, 9000]
    # The clock steps back: the time handed out still moves forward.
    assert [allocator.next_ms("s/", 100), allocator.next_ms("s/", 9500)] == [9001, 9500]
