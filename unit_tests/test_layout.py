"""Path templates: tables of templates × streams × frozen instants, the default layout against
keys.py, every validation error, and which keys a layout claims as its own."""

from __future__ import annotations

import itertools
import random
import re
import time
import uuid

import pytest

from destination_s3.keys import (
    EMPTY_NAME_SEGMENT,
    MARKER_SUFFIX,
    OWN_OBJECT_NAME_PATTERN,
    S3_MAX_KEY_BYTES,
    generation_marker_key,
    generation_markers_prefix,
    object_key,
    safe_segment,
)
from destination_s3.layout import (
    DEFAULT_TEMPLATE_TEXT,
    MAX_TEMPLATE_CHARS,
    PathTemplate,
    PathTemplateError,
    StreamLayout,
    parse_path_template,
    stream_layout,
)
from unit_tests.test_keys import (  # the frozen instants of the key table
    LEAP_DAY_LAST_MS,
    MARCH_FIRST_MS,
    NOV_2023_MS,
    Y2K_EVE_MS,
    Y2K_MS,
)

INSTANTS = [0, LEAP_DAY_LAST_MS, MARCH_FIRST_MS, NOV_2023_MS, Y2K_EVE_MS, Y2K_MS]


def stream_directory(bucket_path: str, namespace: str | None, prefix: str, name: str) -> str:
    """The seed's directory rule, written out on its own as the oracle of the default layout."""
    segments = [bucket_path] if bucket_path else []
    if namespace:
        segments.append(safe_segment(namespace))
    segments.append(safe_segment(prefix + name))
    return "/".join(segments) + "/"


def is_own_object_name(name: str) -> bool:
    return re.fullmatch(OWN_OBJECT_NAME_PATTERN, name) is not None


UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
HEX_SYNC_ID = "9b2f6c1e0d8a4b7f8e3c2a1b0f9e8d7c"
HIVE = "${NAMESPACE}/${STREAM_NAME}/dt=${YEAR}-${MONTH}-${DAY}"
TIME_TREE = "${STREAM_NAME}/${YEAR}/${MONTH}/${DAY}/${HOUR}/${MINUTE}"

# Templates with a tail of time variables and literal text, and all the others.
TIME_TAIL_TEMPLATES = [
    HIVE,
    TIME_TREE,
    "${NAMESPACE}/${STREAM_NAME}/year=${YEAR}/month=${MONTH}",
    "${NAMESPACE}/${STREAM_NAME}/${YEAR}${MONTH}${DAY}",
    "exports/${NAMESPACE}/${STREAM_NAME}/${YEAR}/${MONTH}",
]
TEMPLATES = [
    None,
    DEFAULT_TEMPLATE_TEXT,
    *TIME_TAIL_TEMPLATES,
    "${NAMESPACE}/${STREAM_NAME}/${EPOCH}",
    "${NAMESPACE}/${STREAM_NAME}/sync=${SYNC_ID}",
    "${NAMESPACE}/${STREAM_NAME}/${SYNC_ID}/${UUID}",
    "${STREAM_NAME}/${NAMESPACE}/${YEAR}",
    "ns=${NAMESPACE}/tbl_${STREAM_NAME}/h=${HOUR}_${EPOCH}",
    "${NAMESPACE}/${STREAM_NAME}/${STREAM_NAME}-${YEAR}",
    "${NAMESPACE}_${STREAM_NAME}",
]


def layout(
    template: str | None,
    namespace: str | None = None,
    name: str = "users",
    bucket_path: str = "",
    prefix: str = "",
    sync_id: str = "42",
) -> StreamLayout:
    return stream_layout(
        parse_path_template(template), bucket_path, namespace, prefix, name, sync_id
    )


def claims(owner: StreamLayout, key: str) -> bool:
    """Whether an overwrite of `owner` would take `key` for one of its objects."""
    return key.startswith(owner.root) and owner.is_own_key(key[len(owner.root) :])


@pytest.mark.parametrize(
    ("template", "bucket_path", "namespace", "prefix", "name", "opened_at_ms", "expected"),
    [
        (None, "", None, "", "users", NOV_2023_MS, "users/2023_11_14_1700000000123_0.jsonl"),
        (
            HIVE,
            "data",
            "public",
            "",
            "users",
            LEAP_DAY_LAST_MS,
            "data/public/users/dt=2024-02-29/2024_02_29_1709251199999_0.jsonl",
        ),
        (
            HIVE,
            "data",
            "public",
            "",
            "users",
            MARCH_FIRST_MS,
            "data/public/users/dt=2024-03-01/2024_03_01_1709251200000_0.jsonl",
        ),
        (HIVE, "", None, "", "users", 0, "users/dt=1970-01-01/1970_01_01_0_0.jsonl"),
        (
            TIME_TREE,
            "",
            "public",
            "",
            "users",
            Y2K_EVE_MS,
            "users/1999/12/31/23/59/1999_12_31_946684799999_0.jsonl",
        ),
        (
            TIME_TREE,
            "",
            None,
            "",
            "users",
            Y2K_MS,
            "users/2000/01/01/00/00/2000_01_01_946684800000_0.jsonl",
        ),
        (
            TIME_TREE,
            "",
            None,
            "",
            "users",
            NOV_2023_MS,
            "users/2023/11/14/22/13/2023_11_14_1700000000123_0.jsonl",
        ),
        (
            "${NAMESPACE}/${STREAM_NAME}/${EPOCH}",
            "",
            None,
            "",
            "users",
            NOV_2023_MS,
            "users/1700000000123/2023_11_14_1700000000123_0.jsonl",
        ),
        (
            "${STREAM_NAME}/sync=${SYNC_ID}/${UUID}",
            "",
            None,
            "",
            "users",
            Y2K_MS,
            f"users/sync=42/{UUID}/2000_01_01_946684800000_0.jsonl",
        ),
        # The stream prefix is part of ${STREAM_NAME}.
        ("${STREAM_NAME}", "b", "ns", "tarsal_", "users", 0, "b/tarsal_users/1970_01_01_0_0.jsonl"),
        # Literal folders, slashes and whitespace around the template stripped.
        (
            "exports/${NAMESPACE}/${STREAM_NAME}",
            "",
            "",
            "",
            "t",
            0,
            "exports/t/1970_01_01_0_0.jsonl",
        ),
        (" /${STREAM_NAME}/ ", "", None, "", "t", 0, "t/1970_01_01_0_0.jsonl"),
        # ${NAMESPACE} in a folder with other text is "" without a namespace.
        ("ns=${NAMESPACE}/${STREAM_NAME}", "", None, "", "t", 0, "ns=/t/1970_01_01_0_0.jsonl"),
        ("ns=${NAMESPACE}/${STREAM_NAME}", "", "p", "", "t", 0, "ns=p/t/1970_01_01_0_0.jsonl"),
        ("${NAMESPACE}_${STREAM_NAME}", "", None, "", "t", 0, "_t/1970_01_01_0_0.jsonl"),
        ("${NAMESPACE}_${STREAM_NAME}", "", "p", "", "t", 0, "p_t/1970_01_01_0_0.jsonl"),
        # A folder expanding to "" or to dots only, as keys.safe_segment.
        ("${NAMESPACE}${STREAM_NAME}", "", None, "", "", 0, "%EMPTY/1970_01_01_0_0.jsonl"),
        ("${STREAM_NAME}.${NAMESPACE}", "", None, "", ".", 0, "%2E%2E/1970_01_01_0_0.jsonl"),
        ("${STREAM_NAME}.${NAMESPACE}", "", "x", "", ".", 0, "..x/1970_01_01_0_0.jsonl"),
        # Values escaped character by character; the whole folder is not safe_segment'ed.
        ("${STREAM_NAME}.bak", "", None, "", "..", 0, "...bak/1970_01_01_0_0.jsonl"),
        ("${STREAM_NAME}", "", None, "", "a/b%", 0, "a%2Fb%25/1970_01_01_0_0.jsonl"),
        ("x_${STREAM_NAME}", "", None, "", "..\\e\n", 0, "x_..%5Ce%0A/1970_01_01_0_0.jsonl"),
        ("${STREAM_NAME}", "", None, "", "c1\x85", 0, "c1%C2%85/1970_01_01_0_0.jsonl"),
        # ${NAMESPACE} and ${STREAM_NAME} in the tail: exactly their values.
        (
            "${STREAM_NAME}/${NAMESPACE}/${YEAR}",
            "",
            None,
            "",
            "u",
            Y2K_MS,
            "u/2000/2000_01_01_946684800000_0.jsonl",
        ),
        (
            "${STREAM_NAME}/${NAMESPACE}/${YEAR}",
            "",
            "a/b",
            "",
            "u",
            Y2K_MS,
            "u/a%2Fb/2000/2000_01_01_946684800000_0.jsonl",
        ),
        (
            "${NAMESPACE}/${STREAM_NAME}/${STREAM_NAME}-${YEAR}",
            "",
            "espace é",
            "",
            "用户 🚀",
            Y2K_EVE_MS,
            "espace é/用户 🚀/用户 🚀-1999/1999_12_31_946684799999_0.jsonl",
        ),
    ],
)
def test_expanded_keys(
    template: str | None,
    bucket_path: str,
    namespace: str | None,
    prefix: str,
    name: str,
    opened_at_ms: int,
    expected: str,
) -> None:
    stream = layout(template, namespace, name, bucket_path, prefix)
    key = stream.object_key(opened_at_ms, "jsonl", uuid=UUID)
    assert key == expected
    assert key.startswith(stream.root)
    assert stream.is_own_key(key[len(stream.root) :])


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Los_Angeles", "UTC"])
def test_time_variables_are_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        stream = layout(TIME_TREE)
        assert stream.directory(LEAP_DAY_LAST_MS) == "users/2024/02/29/23/59/"
        assert stream.directory(MARCH_FIRST_MS) == "users/2024/03/01/00/00/"
    finally:
        monkeypatch.undo()
        time.tzset()


# test_keys.py's tricky streams: (bucket path, namespace, stream prefix, name).
TRICKY_STREAMS = [
    ("", None, "", "users"),
    ("data/raw", None, "", "users"),
    ("data/raw", "public", "", "users"),
    ("", None, "tarsal_", "users"),
    ("data", "public", "tarsal_", "users"),
    ("", "", "", "users"),
    ("", None, "", "a/b"),
    ("", "ns/evil", "", "t"),
    ("", None, "pre/", "x"),
    ("p", "..", "", ".."),
    ("p", ".", "", "."),
    ("", None, ".", "."),
    ("", None, "", "..\\..\\etc"),
    ("", None, "", "100%"),
    ("", None, "", "line\nbreak"),
    ("", "espace é", "", "用户 🚀"),
    ("", None, "", ""),
    ("", "", "", ""),
    ("", "\x00", "", "\x7f\x9f"),
    ("", "%2F", "", "%EMPTY"),
]


@pytest.mark.parametrize("template", [None, DEFAULT_TEMPLATE_TEXT, "/${NAMESPACE}/${STREAM_NAME}/"])
@pytest.mark.parametrize(("bucket_path", "namespace", "prefix", "name"), TRICKY_STREAMS)
def test_default_layout_is_byte_identical_to_keys(
    template: str | None, bucket_path: str, namespace: str | None, prefix: str, name: str
) -> None:
    stream = layout(template, namespace, name, bucket_path, prefix)
    directory = stream_directory(bucket_path, namespace, prefix, name)
    assert stream.root == directory
    assert not stream.recursive
    for opened_at_ms in INSTANTS:
        assert stream.directory(opened_at_ms) == directory
        for extension in ["jsonl", "csv.gz", "jsonl.zst"]:
            key = stream.object_key(opened_at_ms, extension)
            assert key == object_key(directory, opened_at_ms, extension)
            # Today's marker of the object: named by the object's name.
            marker = generation_marker_key("m/", 7, key.rsplit("/", 1)[-1])
            assert marker == f"m/7/{stream.marker_name(key)}{MARKER_SUFFIX}"


def test_default_layout_is_byte_identical_to_keys_over_generated_names() -> None:
    rng = random.Random(20240229)
    alphabet = ["a", "F", "2", ".", "/", "\\", "%", "\x00", "\n", "\x7f", "\x85", " ", "é", "🚀"]
    for _ in range(5_000):
        namespace = rng.choice([None, "", *alphabet, "".join(rng.choices(alphabet, k=3))])
        name = "".join(rng.choices(alphabet, k=rng.randint(0, 6)))
        prefix = rng.choice(["", ".", "p_", "%"])
        expected = stream_directory("b", namespace, prefix, name)
        assert layout(None, namespace, name, "b", prefix).root == expected


# test_keys.py's own-name table.
NAMES = [
    "2023_11_14_1700000000123_0.jsonl",
    "2023_11_14_1700000000123_0.csv",
    "2023_11_14_1700000000123_0.csv.marker",
    "2023_11_14_1700000000123_0.jsonl.gz",
    "2023_11_14_1700000000123_0.jsonl.zst",
    "2023_11_14_1700000000123_0.csv.gz",
    "2023_11_14_1700000000123_0.csv.zst",
    "2023_11_14_1700000000123_0.jsonl.gz.marker",
    "2023_11_14_1700000000123_0.jsonl.gzip",
    "2023_11_14_1700000000123_0.jsonl.zstd",
    "2023_11_14_1700000000123_0.jsonl.GZ",
    "2023_11_14_1700000000123_0.jsonl.bz2",
    "2023_11_14_1700000000123_0.jsonl.gz.zst",
    "2023_11_14_1700000000123_0.csv.gz.tmp",
    "2023_11_14_1700000000123_0.gz",
    "2023_11_14_1700000000123_0.zst",
    "2023_11_14_1700000000123_0.jsonl.gz/",
    "2023_11_14_1700000000123_0.parquet",
    "2023_11_14_1700000000123_0.parquet.gz",
    "2023_11_14_1700000000123_0.parquet.zst",
    "2023_11_14_1700000000123_0.parquet.marker",
    "notes_2023_11_14_1_0.csv",
    "2023_11_14_1_0.csv/",
    "sub/2023_11_14_1_0.csv",
    "",
]


@pytest.mark.parametrize("name", NAMES)
def test_default_is_own_key_is_keys_is_own_object_name(name: str) -> None:
    assert layout(None).is_own_key(name) is is_own_object_name(name)


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("2023_11_14_1700000000123_0.parquet", True),
        ("2023_11_14_1700000000123_0.parquet.gz", False),  # Parquet compresses inside
        ("2023_11_14_1700000000123_0.parquet.zst", False),
        ("2023_11_14_1700000000123_0.parquet.marker", False),
        ("2023_11_14_1700000000123_0.pq", False),
        ("２０２３_11_14_1700000000123_0.jsonl", False),  # digits, but not ones we write
        ("2023_11_14_17000000001٢3_0.jsonl", False),
    ],
)
def test_own_names_include_parquet_and_only_ascii_digits(name: str, own: bool) -> None:
    assert layout(None).is_own_key(name) is own
    assert layout(HIVE).is_own_key(f"dt=2023-11-14/{name}") is own


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("${FOO}/${STREAM_NAME}", "unknown variable ${FOO}"),
        ("${STREAM_NAME}/${year}", "unknown variable ${year}"),
        ("${STREAM_NAME}/${}", "unknown variable ${}"),
        ("$STREAM_NAME", "use ${NAME}"),
        ("${STREAM_NAME}/$", "`$` starts no variable at character 16"),
        ("price$/${STREAM_NAME}", "`$` starts no variable"),
        ("${STREAM_NAME", "`${` is not closed by `}`"),
        ("${STREAM_NAME}/${YEAR", "use ${NAME}"),
        ("${STREAM_NAME}/${A/B}", "`${` is not closed"),
        ("${STREAM_NAME}/../x", "a folder named `..`"),
        ("./${STREAM_NAME}", "a folder named `.`"),
        ("${STREAM_NAME}/...", "a folder named `...`"),
        ("a//${STREAM_NAME}", "empty folder name"),
        ("${STREAM_NAME}//${YEAR}", "remove the extra `/`"),
        ("_tarsal_generations/${STREAM_NAME}", "reserved"),
        ("${STREAM_NAME}/_tarsal_x${YEAR}", "reserved"),
        ("${NAMESPACE}", "two streams would share objects"),
        ("data/${YEAR}", "has no ${STREAM_NAME}"),
        ("/", "has no ${STREAM_NAME}"),
        ("${YEAR}/${STREAM_NAME}", "${YEAR} is in or before the folder holding ${STREAM_NAME}"),
        ("${STREAM_NAME}_${MONTH}", "${MONTH} is in or before"),
        ("${DAY}_${STREAM_NAME}/x", "${DAY} is in or before"),
        ("${HOUR}/${NAMESPACE}/${STREAM_NAME}/${HOUR}", "${HOUR} is in or before"),
        ("${MINUTE}/${STREAM_NAME}", "overwrite knows where the stream's objects are"),
        ("${EPOCH}/${STREAM_NAME}", "${EPOCH} is in or before"),
        ("${NAMESPACE}/${STREAM_NAME}${SYNC_ID}", "${SYNC_ID} is in or before"),
        ("${UUID}/${STREAM_NAME}/${STREAM_NAME}", "${UUID} is in or before"),
        ("100%/${STREAM_NAME}", "the character '%' is not allowed"),
        ("${STREAM_NAME}/a\\b", "the character '\\\\' is not allowed"),
        ("${STREAM_NAME}/a\nb", "the character '\\n' is not allowed"),
        ("${STREAM_NAME}/\x7f", "the character '\\x7f' is not allowed"),
        ("${STREAM_NAME}/\x85", "the character '\\x85' is not allowed"),
        ("${STREAM_NAME}/" + "x" * MAX_TEMPLATE_CHARS, "characters; shorten it to 512"),
    ],
)
def test_parse_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(PathTemplateError) as error:
        parse_path_template(text)
    assert problem in str(error.value)
    assert str(error.value).startswith("s3_path_format: ")
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("text", [None, "", " ", "\t\n "])
def test_blank_text_is_no_template(text: str | None) -> None:
    assert parse_path_template(text) is None


def test_template_parsing_edges() -> None:
    longest = "${STREAM_NAME}/" + "x" * (MAX_TEMPLATE_CHARS - len("${STREAM_NAME}/"))
    assert isinstance(parse_path_template(longest), PathTemplate)
    assert parse_path_template("//a/${STREAM_NAME}//") == parse_path_template("a/${STREAM_NAME}")
    hive = parse_path_template(HIVE)
    assert hive is not None
    assert hive.root_length == 2
    assert hive.segments[2] == (
        ("", "dt="),
        ("YEAR", ""),
        ("", "-"),
        ("MONTH", ""),
        ("", "-"),
        ("DAY", ""),
    )
    # Characters safe_segment leaves alone are fine as literal text.
    assert parse_path_template("a b é{}=/.x/${STREAM_NAME}/x.") is not None


def test_stream_layout_refuses_sync_ids_it_could_not_recognise() -> None:
    for sync_id in ["42", "0", HEX_SYNC_ID, "1" * 32]:
        layout(HIVE, sync_id=sync_id)
    for sync_id in ["", "-1", "4 2", HEX_SYNC_ID.upper(), HEX_SYNC_ID[:-1], "1" * 33, "٤٢"]:
        with pytest.raises(ValueError, match="sync id"):
            layout(HIVE, sync_id=sync_id)


def test_uuid_is_fresh_per_object_unless_given() -> None:
    stream = layout("${STREAM_NAME}/${UUID}")
    first, second = stream.directory(0), stream.directory(0)
    assert first != second
    for directory in (first, second):
        value = directory.split("/")[1]
        assert str(uuid.UUID(value)) == value
    assert stream.directory(0, UUID) == f"users/{UUID}/"
    for bad in [UUID.upper(), UUID.replace("-", ""), "x"]:
        with pytest.raises(ValueError, match="UUID"):
            stream.directory(0, bad)
    with pytest.raises(ValueError, match="negative"):
        stream.directory(-1)


STREAMS = [
    ("", None, "", "users"),
    ("data/raw", "public", "", "users"),
    ("b", "", "tarsal_", "users"),
    ("", "..", "", "a/b%"),
    ("", "espace é", "", "用户 🚀"),
    ("", None, "", ""),
    ("x", "\n", "", "."),
    ("", "public", "", "1700000000123"),
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_own_keys_markers_and_lengths_over_many_objects(template: str | None) -> None:
    rng = random.Random(f"{template}")
    for bucket_path, namespace, prefix, name in STREAMS:
        sync_id = rng.choice(
            ["0", "42", "9" * 19, HEX_SYNC_ID, uuid.UUID(int=rng.getrandbits(128)).hex]
        )
        stream = layout(template, namespace, name, bucket_path, prefix, sync_id)
        markers_prefix = generation_markers_prefix(bucket_path, stream.root)
        assert stream.root.startswith(f"{bucket_path}/" if bucket_path else "")
        for opened_at_ms in [*INSTANTS, *(rng.randrange(0, 4_102_444_800_000) for _ in range(60))]:
            given = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            extension = rng.choice(["jsonl", "csv", "parquet", "jsonl.gz", "csv.zst", "jsonl.zst"])
            key = stream.object_key(opened_at_ms, extension, given)
            assert key.startswith(stream.root)
            relative = key[len(stream.root) :]
            assert stream.is_own_key(relative)
            assert ("/" in relative) is stream.recursive
            assert len(relative.encode()) <= stream.longest_relative_bytes()
            marker_name = stream.marker_name(key)
            assert "/" not in marker_name
            assert stream.object_key_of_marker(marker_name) == key
            assert stream.object_key_of_marker(marker_name + MARKER_SUFFIX) == key
            marker = f"{markers_prefix}{9_999_999_999_999_999_999}/{marker_name}{MARKER_SUFFIX}"
            assert len(marker.encode()) <= stream.longest_key_bytes(markers_prefix)
            assert len(key.encode()) <= stream.longest_key_bytes(markers_prefix)


def test_longest_key_bytes_tells_when_a_stream_would_pass_the_s3_limit() -> None:
    short = layout(HIVE, "public", "users", "data")
    assert short.longest_key_bytes(generation_markers_prefix("data", short.root)) < 200
    long = layout(HIVE, "public", "é" * 480, "data")
    assert long.longest_key_bytes(generation_markers_prefix("data", long.root)) > S3_MAX_KEY_BYTES
    # Escaping counts: a `%` takes 3 bytes in a key, and 5 in a marker name of the tail.
    escaped = layout("${STREAM_NAME}/${STREAM_NAME}-${YEAR}", name="%" * 10)
    assert escaped.longest_relative_bytes() == len(
        f"{'%25' * 10}-9999/9999_99_99_99999999999999_0.jsonl.zst"
    )


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize(
    ("name", "sibling"),
    [("users", "users_archive"), ("users", "users_x"), ("users", "user"), ("a", "a.b")],
)
def test_a_sibling_streams_keys_are_not_claimed(
    template: str | None, name: str, sibling: str
) -> None:
    for namespace in [None, "public"]:
        ours = layout(template, namespace, name)
        theirs = layout(template, namespace, sibling)
        for opened_at_ms in INSTANTS:
            for a, b in [(ours, theirs), (theirs, ours)]:
                assert not claims(a, b.object_key(opened_at_ms, "jsonl", UUID))


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_nested_stream_under_the_same_template_is_not_claimed(template: str | None) -> None:
    """Stream `public` without a namespace, and the streams of namespace `public`: whatever
    their names, under one template their keys are deeper than ours."""
    ours = layout(template, None, "public")
    rng = random.Random(7)
    names = ["users", "2024", "11", "1700000000123", HEX_SYNC_ID, UUID, "sync=42", "dt=2024-02-29"]
    for name in names:
        nested = layout(template, "public", name)
        for opened_at_ms in [*INSTANTS, *(rng.randrange(0, 4_102_444_800_000) for _ in range(20))]:
            key = nested.object_key(opened_at_ms, "jsonl", UUID)
            assert not claims(ours, key), key


@pytest.mark.parametrize("template", TIME_TAIL_TEMPLATES)
def test_a_nested_stream_under_the_default_layout_is_not_claimed(template: str) -> None:
    ours = layout(template, None, "public")
    for name in ["users", "users_archive", "1700000000123", "2023", HEX_SYNC_ID]:
        nested = layout(None, "public", name)
        for opened_at_ms in INSTANTS:
            assert not claims(ours, nested.object_key(opened_at_ms, "jsonl"))
    assert not claims(ours, "public/users/2023_11_14_1700000000123_0.jsonl")
    assert not claims(ours, "public/users/dt=2023-11-14/2023_11_14_1700000000123_0.jsonl")


def test_the_documented_residual_case() -> None:
    """A nested stream named like the value of a one-variable tail folder, written under the
    default layout: the module docstring says it is claimed."""
    key = "public/1700000000123/2023_11_14_1700000000123_0.jsonl"
    assert claims(layout("${NAMESPACE}/${STREAM_NAME}/${EPOCH}", None, "public"), key)
    assert claims(layout("${NAMESPACE}/${STREAM_NAME}/${SYNC_ID}", None, "public"), key)
    assert not claims(layout("${NAMESPACE}/${STREAM_NAME}/sync=${SYNC_ID}", None, "public"), key)
    assert not claims(layout(HIVE, None, "public"), key)


NAME = "2024_02_29_1709251199999_0.jsonl"


@pytest.mark.parametrize(
    ("template", "namespace", "relative", "own"),
    [
        (HIVE, "public", f"dt=2024-02-29/{NAME}", True),
        (HIVE, "public", f"dt=1999-12-31/{NAME}", True),  # the folder need not match the name
        (HIVE, "public", NAME, False),  # shallower: the default layout's objects
        (HIVE, "public", f"dt=2024-02-29/x/{NAME}", False),  # deeper
        (HIVE, "public", f"x/dt=2024-02-29/{NAME}", False),
        (HIVE, "public", f"dt=2024-02-29/{NAME}/", False),
        (HIVE, "public", "dt=2024-02-29/notes.txt", False),
        (HIVE, "public", f"dt=2024-02-29/{NAME}.tmp", False),
        (HIVE, "public", f"dt=2024-02-29/{NAME}{MARKER_SUFFIX}", False),
        (HIVE, "public", f"dt=24-02-29/{NAME}", False),
        (HIVE, "public", f"dt=2024-2-29/{NAME}", False),
        (HIVE, "public", f"dt=2024-02-290/{NAME}", False),
        (HIVE, "public", f"DT=2024-02-29/{NAME}", False),
        (HIVE, "public", f"dt=2024_02_29/{NAME}", False),
        (HIVE, "public", f"dt=２０２４-02-29/{NAME}", False),
        (TIME_TREE, None, f"2024/02/29/23/59/{NAME}", True),
        (TIME_TREE, None, f"2024/02/29/23/{NAME}", False),
        (TIME_TREE, None, f"2024/02/29/23/59/00/{NAME}", False),
        ("${STREAM_NAME}/${EPOCH}", None, f"1709251199999/{NAME}", True),
        ("${STREAM_NAME}/${EPOCH}", None, f"-1/{NAME}", False),
        ("${STREAM_NAME}/${EPOCH}", None, f"/{NAME}", False),
        ("${STREAM_NAME}/${SYNC_ID}", None, f"7/{NAME}", True),
        ("${STREAM_NAME}/${SYNC_ID}", None, f"{HEX_SYNC_ID}/{NAME}", True),
        ("${STREAM_NAME}/${SYNC_ID}", None, f"{HEX_SYNC_ID[:-1]}/{NAME}", False),
        ("${STREAM_NAME}/${SYNC_ID}", None, f"{HEX_SYNC_ID.upper()}/{NAME}", False),
        ("${STREAM_NAME}/${SYNC_ID}", None, f"{UUID}/{NAME}", False),
        ("${STREAM_NAME}/${UUID}", None, f"{UUID}/{NAME}", True),
        ("${STREAM_NAME}/${UUID}", None, f"{UUID.upper()}/{NAME}", False),
        ("${STREAM_NAME}/${UUID}", None, f"{UUID.replace('-', '')}/{NAME}", False),
        # ${NAMESPACE} and ${STREAM_NAME} in the tail are this stream's values only.
        ("${STREAM_NAME}/${NAMESPACE}/${YEAR}", "a.b", f"a.b/2024/{NAME}", True),
        ("${STREAM_NAME}/${NAMESPACE}/${YEAR}", "a.b", f"aXb/2024/{NAME}", False),
        ("${STREAM_NAME}/${NAMESPACE}/${YEAR}", "a.b", f"2024/{NAME}", False),
        ("${STREAM_NAME}/${NAMESPACE}/${YEAR}", None, f"2024/{NAME}", True),
        ("${STREAM_NAME}/${NAMESPACE}/${YEAR}", None, f"public/2024/{NAME}", False),
        ("${STREAM_NAME}/${STREAM_NAME}-${YEAR}", None, f"users-2024/{NAME}", True),
        ("${STREAM_NAME}/${STREAM_NAME}-${YEAR}", None, f"users_x-2024/{NAME}", False),
    ],
)
def test_is_own_key_table(template: str, namespace: str | None, relative: str, own: bool) -> None:
    assert layout(template, namespace).is_own_key(relative) is own


@pytest.mark.parametrize(
    ("template", "name", "opened_at_ms", "marker_name"),
    [
        (None, "users", NOV_2023_MS, "2023_11_14_1700000000123_0.jsonl"),
        (HIVE, "users", LEAP_DAY_LAST_MS, f"dt=2024-02-29%2F{NAME}"),
        (TIME_TREE, "users", Y2K_MS, "2000%2F01%2F01%2F00%2F00%2F2000_01_01_946684800000_0.jsonl"),
        (
            "${STREAM_NAME}/${STREAM_NAME}-${YEAR}",
            "a%b/c",
            0,
            "a%2525b%252Fc-1970%2F1970_01_01_0_0.jsonl",
        ),
    ],
)
def test_marker_name_is_one_segment_that_decodes_to_the_key(
    template: str | None, name: str, opened_at_ms: int, marker_name: str
) -> None:
    stream = layout(template, "public", name, "data")
    key = stream.object_key(opened_at_ms, "jsonl")
    assert stream.marker_name(key) == marker_name
    assert stream.object_key_of_marker(marker_name) == key


@pytest.mark.parametrize(
    "marker_name",
    [
        f"dt=2024-02-29/{NAME}",  # a raw `/`: a deeper key of the markers' tree
        f"dt=2024-02-29%2f{NAME}",  # not our encoding
        f"dt=2024-02-29%252F{NAME}",  # decodes to a `%2F` in one folder name
        f"dt=2024-02-29%2F{NAME}%",
        f"dt=2024-02-29%41{NAME}",
        "dt=2024-02-29%2Fnotes.txt",
        NAME,  # the default layout's object
        f"x%2Fdt=2024-02-29%2F{NAME}",
        f"dt=2024-02-29%2F{NAME}{MARKER_SUFFIX}{MARKER_SUFFIX}",
        "",
    ],
)
def test_object_key_of_marker_refuses_what_is_not_our_marker(marker_name: str) -> None:
    assert layout(HIVE).object_key_of_marker(marker_name) is None


def test_marker_name_refuses_a_key_outside_the_root() -> None:
    stream = layout(HIVE, "public")
    with pytest.raises(ValueError, match="not below"):
        stream.marker_name(f"other/dt=2024-02-29/{NAME}")


def test_distinct_streams_get_distinct_roots_when_namespace_and_name_have_their_folders() -> None:
    names = ["a/b", "a%2Fb", "a_b", "..", "%2E%2E", "", "%EMPTY", "x", "a"]
    streams = list(itertools.product([None, "a", "a/b", "..", "x"], names))
    for template in [None, HIVE, "exports/${NAMESPACE}/${STREAM_NAME}/${EPOCH}"]:
        roots = {layout(template, namespace, name, "root").root for namespace, name in streams}
        assert len(roots) == len(streams)
        for root in roots:
            assert all(s not in ("", ".", "..") for s in root[:-1].split("/"))
    assert layout(None, None, "").root == f"{EMPTY_NAME_SEGMENT}/"
    assert re.fullmatch(r"[^/]+/", layout(HIVE, None, "..").root)


@pytest.mark.parametrize(
    ("template", "one", "other"),
    [
        ("${STREAM_NAME}/${YEAR}", ("a", "users"), ("b", "users")),
        ("${NAMESPACE}_${STREAM_NAME}", ("a", "b_c"), ("a_b", "c")),
    ],
)
def test_the_documented_shared_roots(
    template: str, one: tuple[str, str], other: tuple[str, str]
) -> None:
    """The module docstring leaves these to the caller to refuse."""
    assert layout(template, *one).root == layout(template, *other).root
