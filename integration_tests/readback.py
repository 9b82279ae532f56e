"""Helpers shared by the connector's integration tests (not fixtures, not infrastructure).

Reading what the connector wrote back from S3 (with the admin client of :class:`MotoServer`),
checking the object-key layout and the exact JSONL/CSV envelopes, and checking the connector's
output for hygiene (only JSON on stdout, no secret anywhere).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from integration_tests.connector import ConnectorProcess, ConnectorRun, Message, record
from integration_tests.s3_server import MotoServer

MIB = 1024 * 1024

AB_ID = "_tarsal_ab_id"
EMITTED_AT = "_tarsal_emitted_at"
METADATA = "_tarsal_metadata"
ADDITIONAL_PROPERTIES = "_tarsal_additional_properties"

FIXED_EMITTED_AT = 1_631_948_170_000
"""The seed document's example ``_tarsal_emitted_at`` (ms)."""

_OBJECT_NAME = re.compile(
    r"(?P<day>\d{4}_\d{2}_\d{2})_(?P<ms>\d{13})_0\.(?P<ext>(?:jsonl|csv)(?:\.gz|\.zst)?|parquet)"
)

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectKey:
    key: str
    directory: str  # ends with "/"
    epoch_ms: int
    extension: str


def parse_key(key: str) -> ObjectKey:
    """Split ``<directory>/<YYYY_MM_DD>_<epoch ms>_0.<ext>``; the day must be the ms's UTC day."""
    directory, _, name = key.rpartition("/")
    match = _OBJECT_NAME.fullmatch(name)
    assert match, f"{key!r}: the object name is not <YYYY_MM_DD>_<epoch ms>_0.<ext>"
    epoch_ms = int(match["ms"])
    utc_day = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.timezone.utc).strftime("%Y_%m_%d")
    assert match["day"] == utc_day, f"{key!r}: day {match['day']} is not the UTC day of {epoch_ms}"
    return ObjectKey(key, f"{directory}/" if directory else "", epoch_ms, match["ext"])


def assert_object_keys(
    keys: Sequence[str], directory: str, extension: str, window_ms: tuple[int, int]
) -> list[ObjectKey]:
    """Every key is ``directory`` + a well-formed object name opened within ``window_ms``."""
    assert keys, f"no object under {directory!r}"
    assert len(set(keys)) == len(keys), f"duplicate keys: {keys}"
    parsed = [parse_key(key) for key in keys]
    for item in parsed:
        assert item.directory == directory, f"{item.key!r} is not directly under {directory!r}"
        assert item.extension == extension, item.key
        assert window_ms[0] <= item.epoch_ms <= window_ms[1], (item.key, window_ms)
    return parsed


def direct_keys(s3: MotoServer, bucket: str, directory: str) -> list[str]:
    """Keys directly under ``directory`` (not in its sub-directories), sorted."""
    return [key for key in s3.list_keys(bucket, directory) if "/" not in key[len(directory) :]]


def key_has_control_chars(key: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in key)


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


def numbered_records(
    stream: str,
    count: int,
    *,
    start: int = 0,
    pad: int = 0,
    namespace: str | None = None,
    emitted_at: int = FIXED_EMITTED_AT,
) -> list[Message]:
    """``count`` RECORD messages whose data is ``{"id": i, "stream": stream, ["pad": "x"*pad]}``."""
    messages = []
    for i in range(start, start + count):
        data: dict[str, Any] = {"id": i, "stream": stream}
        if pad:
            data["pad"] = "x" * pad
        messages.append(record(stream, data, emitted_at=emitted_at, namespace=namespace))
    return messages


def datas(messages: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The ``data`` of the RECORD messages among ``messages``, in order."""
    return [m["record"]["data"] for m in messages if m.get("type") == "RECORD"]


def canonical(value: Any) -> str:
    """A hashable, order-independent rendering of a JSON value (to compare multisets)."""
    return json.dumps(value, sort_keys=True)


def assert_same_records(actual: Iterable[Any], expected: Iterable[Any]) -> None:
    """Same records, each exactly once (order ignored)."""
    actual_sorted = sorted(canonical(v) for v in actual)
    expected_sorted = sorted(canonical(v) for v in expected)
    missing = set(expected_sorted) - set(actual_sorted)
    extra = set(actual_sorted) - set(expected_sorted)
    assert not missing, f"{len(missing)} records missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected records, e.g. {sorted(extra)[:3]}"
    assert actual_sorted == expected_sorted, "some records are duplicated"


# ---------------------------------------------------------------------------------------------
# Reading objects back
# ---------------------------------------------------------------------------------------------


def jsonl_lines(body: bytes) -> list[dict[str, Any]]:
    """Parse a JSONL object strictly: UTF-8, every line ends with ``\\n``, no blank line."""
    assert body, "empty object"
    assert body.endswith(b"\n"), "the last line has no newline"
    lines = body[:-1].split(b"\n")
    parsed = []
    for number, line in enumerate(lines, 1):
        assert line.strip(), f"blank line {number}"
        value = json.loads(line.decode("utf-8"))
        assert isinstance(value, dict), f"line {number} is not a JSON object"
        parsed.append(value)
    return parsed


def read_jsonl(s3: MotoServer, bucket: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    """The envelopes of every object in ``keys``, in key order then line order."""
    envelopes: list[dict[str, Any]] = []
    for key in keys:
        envelopes.extend(jsonl_lines(s3.read_object(bucket, key)))
    return envelopes


def jsonl_data_under(s3: MotoServer, bucket: str, prefix: str) -> list[Any]:
    """``data`` of every JSONL envelope under ``prefix`` (probe objects ignored)."""
    keys = [k for k in s3.list_keys(bucket, prefix) if k.endswith(".jsonl")]
    return [envelope["data"] for envelope in read_jsonl(s3, bucket, keys)]


def csv_rows(body: bytes) -> list[list[str]]:
    """RFC 4180 rows (header included) as Python's csv module reads them."""
    text = body.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_uuid4(text: Any) -> None:
    assert isinstance(text, str), text
    parsed = uuid.UUID(text)
    assert parsed.version == 4, f"{text} is not a version-4 UUID"
    assert parsed.variant == uuid.RFC_4122, f"{text} is not an RFC 4122 UUID"
    assert str(parsed) == text, f"{text} is not in canonical lower-case form"


def assert_metadata(metadata: Any, emitted_at: int) -> str:
    """``{"_tarsal_ab_id": <uuid4>, "_tarsal_emitted_at": "<ms>"}`` exactly; returns the id."""
    assert isinstance(metadata, dict), metadata
    assert list(metadata) == [AB_ID, EMITTED_AT], metadata
    assert_uuid4(metadata[AB_ID])
    assert metadata[EMITTED_AT] == str(emitted_at), metadata
    return str(metadata[AB_ID])


def assert_jsonl_envelope(envelope: Mapping[str, Any], sent: Mapping[str, Any]) -> str:
    """The seed's exact JSONL line for the RECORD message ``sent``; returns the ab id."""
    assert list(envelope) == [METADATA, "data"], envelope
    ab_id = assert_metadata(envelope[METADATA], sent["record"]["emitted_at"])
    assert envelope["data"] == sent["record"]["data"]
    return ab_id


# ---------------------------------------------------------------------------------------------
# Connector output
# ---------------------------------------------------------------------------------------------

OUTPUT_TYPES = {"LOG", "STATE", "TRACE", "CONNECTION_STATUS"}


def assert_clean_stdout(run: ConnectorRun) -> None:
    """stdout is nothing but Airbyte messages the destination may print (no RECORD echo)."""
    assert not run.non_json_lines, f"non-JSON stdout lines: {run.non_json_lines[:5]}"
    types = {m.get("type") for m in run.messages}
    assert types <= OUTPUT_TYPES, f"unexpected message types on stdout: {types - OUTPUT_TYPES}"


def with_destination_count(state_message: Mapping[str, Any], count: int) -> dict[str, Any]:
    """The ``state`` payload the connector must print for ``state_message`` (input)."""
    return {**state_message["state"], "destinationStats": {"recordCount": float(count)}}


def assert_states(run: ConnectorRun, expected: Sequence[dict[str, Any]]) -> None:
    """The printed states, in order, are exactly ``expected``; recordCount compared as numbers."""
    printed = run.states()
    assert printed == expected, f"states printed:\n{printed}\nexpected:\n{expected}"
    for state in printed:
        assert isinstance(state["destinationStats"]["recordCount"], int | float)


def assert_failed_with(run: ConnectorRun, failure_type: str, *fragments: str) -> dict[str, Any]:
    """Exit code non-zero and exactly one TRACE error of ``failure_type`` naming ``fragments``."""
    assert run.returncode != 0, run.describe()
    errors = run.trace_errors()
    assert len(errors) == 1, run.describe()
    error = errors[0]
    assert error.get("failure_type") == failure_type, error
    message = str(error.get("message", ""))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in error message {message!r}"
    return error


def assert_secret_free(run: ConnectorRun | ConnectorProcess, secrets: Iterable[str]) -> None:
    """None of ``secrets`` appears in stdout or stderr."""
    if isinstance(run, ConnectorProcess):
        stdout = "\n".join(run.stdout_lines)
        stderr = run.stderr
    else:
        stdout, stderr = run.stdout, run.stderr
    for secret in secrets:
        assert secret, "empty secret in the list"
        assert secret not in stdout, f"a secret ({secret[:4]}...) appears on stdout"
        assert secret not in stderr, f"a secret ({secret[:4]}...) appears on stderr"


def messages_within(process: ConnectorProcess, seconds: float) -> list[Message]:
    """Every stdout message that arrives within ``seconds`` (stops early at EOF)."""
    deadline = time.monotonic() + seconds
    received: list[Message] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return received
        try:
            message = process.next_message(timeout=remaining)
        except TimeoutError:
            return received
        if message is None:
            return received
        received.append(message)


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``condition`` every 50 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def run_concurrently(*calls: Callable[[], T]) -> list[T]:
    """Run independent connector invocations side by side (each is mostly start-up time)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]
