"""Decoding stdin lines into Airbyte messages, and the errors for lines that are not usable."""

from __future__ import annotations

import json
import re

import pytest

from destination_s3.errors import InputError
from destination_s3.messages import decode, record_data


def _line(message: object) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


def test_decode_record() -> None:
    line = (
        b'{"type":"RECORD","record":{"namespace":"public","stream":"users",'
        b'"data":{"user_id":123,"name":{"first":"John","last":"Doe"}},'
        b'"emitted_at":1700000000123,"meta":{"changes":[]}}}'
    )
    envelope = decode(line, 1)
    assert envelope.type == "RECORD"
    record = envelope.record
    assert record is not None
    assert record.stream == "users"
    assert record.namespace == "public"
    assert record.emitted_at == 1700000000123
    assert record_data(record, 1, line) == (
        b'{"user_id":123,"name":{"first":"John","last":"Doe"}}',
        False,
    )


def test_decode_record_without_namespace() -> None:
    line = b'{"type":"RECORD","record":{"stream":"s","data":{},"emitted_at":5}}'
    record = decode(line, 1).record
    assert record is not None
    assert record.namespace is None
    assert record_data(record, 1, line) == (b"{}", False)


@pytest.mark.parametrize("emitted_at", [b"", b',"emitted_at":null', b',"emitted_at":"1"'])
def test_a_record_without_a_numeric_emitted_at_is_refused(emitted_at: bytes) -> None:
    # The protocol requires it; writing a made-up time would be wrong lineage.
    line = b'{"type":"RECORD","record":{"stream":"s","data":{}' + emitted_at + b"}}"
    with pytest.raises(InputError, match=r"^Input line 3: RECORD without a numeric `emitted_at`"):
        decode(line, 3)


def test_invalid_utf8_in_data_is_replaced_and_reported() -> None:
    data = b'{"name":"caf\xe9","ok":"\xc3\xa9","cut":"\xf0\x9f"}'
    line = b'{"type":"RECORD","record":{"stream":"s","data":' + data + b',"emitted_at":1}}'
    record = decode(line, 1).record
    assert record is not None
    repaired, was_repaired = record_data(record, 1, line)
    assert was_repaired
    assert repaired.decode() == '{"name":"caf\ufffd","ok":"\u00e9","cut":"\ufffd"}'
    assert json.loads(repaired) == {"name": "caf\ufffd", "ok": "\u00e9", "cut": "\ufffd"}


def test_valid_non_ascii_data_is_kept_byte_for_byte() -> None:
    data = '{"name":"café 東京 🎉"}'.encode()
    line = b'{"type":"RECORD","record":{"stream":"s","data":' + data + b',"emitted_at":1}}'
    record = decode(line, 1).record
    assert record is not None
    assert record_data(record, 1, line) == (data, False)


def test_a_state_with_invalid_utf8_is_refused() -> None:
    # A state is echoed byte for byte to the platform: it cannot be repaired.
    line = b'{"type":"STATE","state":{"type":"LEGACY","data":{"cursor":"\xff"}}}'
    with pytest.raises(InputError, match=r"^Input line 4: STATE `state` holds invalid UTF-8"):
        decode(line, 4)


@pytest.mark.parametrize("depth", [1_100, 5_000])
def test_deep_nesting_is_an_input_error_naming_the_line(depth: int) -> None:
    data = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    line = b'{"type":"RECORD","record":{"stream":"s","data":' + data + b',"emitted_at":1}}'
    with pytest.raises(InputError, match=r"^Input line 8: JSON nested deeper than"):
        decode(line, 8)


def test_record_data_keeps_the_source_bytes() -> None:
    data = b'{"big": 123456789012345678901234567890, "f": 1.0, "u": "caf\xc3\xa9 \\u00e9"}'
    line = b'{"type":"RECORD","record":{"stream":"s","data":' + data + b',"emitted_at":1.5e12}}'
    envelope = decode(line, 1)
    assert envelope.record is not None
    assert envelope.record.emitted_at == 1.5e12
    assert record_data(envelope.record, 1, line) == (data, False)


def test_record_data_with_whitespace_around_it() -> None:
    line = b'{"type":"RECORD","record":{"stream":"s","data":   {"a": 1}  ,"emitted_at":1}}'
    envelope = decode(line, 1)
    assert envelope.record is not None
    assert record_data(envelope.record, 1, line) == (b'{"a": 1}', False)


def test_record_data_with_a_carriage_return_is_rewritten_without_it() -> None:
    line = b'{"type":"RECORD","record":{"stream":"s","data":{"a":\r1,"b":"x\\r"},"emitted_at":1}}'
    envelope = decode(line, 1)
    assert envelope.record is not None
    data, _ = record_data(envelope.record, 1, line)
    assert data == b'{"a": 1,"b":"x\\r"}'  # the source's bytes, the bare CR now a space
    assert json.loads(data) == {"a": 1, "b": "x\r"}


def test_a_carriage_return_beside_numbers_msgspec_cannot_hold_keeps_them() -> None:
    big = b"9" * 5000
    line = (
        b'{"type":"RECORD","record":{"stream":"s","data":{"a":\r'
        + big
        + b',"f":1e400},"emitted_at":1}}'
    )
    envelope = decode(line, 1)
    assert envelope.record is not None
    assert record_data(envelope.record, 1, line) == (b'{"a": ' + big + b',"f":1e400}', False)


def test_decode_state_keeps_the_body_exactly() -> None:
    body = (
        b'{"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},'
        b'"stream_state":{"n":1.0}}}'
    )
    envelope = decode(b'{"type":"STATE","state":' + body + b"}", 4)
    assert envelope.type == "STATE"
    assert envelope.record is None
    assert bytes(envelope.state) == body


@pytest.mark.parametrize(
    "message",
    [
        {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 1, "error": {"message": "x"}}},
        {"type": "LOG", "log": {"level": "INFO", "message": "hello"}},
        {"type": "CONTROL", "control": {"type": "CONNECTOR_CONFIG", "emitted_at": 1}},
    ],
)
def test_decode_other_known_types(message: dict[str, object]) -> None:
    envelope = decode(_line(message), 1)
    assert envelope.type == message["type"]
    assert envelope.record is None


def test_decode_line_with_trailing_carriage_return() -> None:
    assert decode(b'{"type":"LOG","log":{"message":"x"}}\r', 1).type == "LOG"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"not json", "JSON is malformed"),
        (b'{"type":"RECORD"', "truncated"),
        (b"[1, 2]", "not an Airbyte message"),
        (b'"RECORD"', "not an Airbyte message"),
        (b"42", "not an Airbyte message"),
        (b"{}", "missing required field `type`"),
        (b'{"type": 5}', "not an Airbyte message"),
        (b'{"type":"SPEC","spec":{}}', "unexpected message type 'SPEC'"),
        (
            b'{"type":"record","record":{"stream":"s","data":{},"emitted_at":1}}',
            "unexpected message type",
        ),
        (b'{"type":"RECORD"}', "RECORD message without a `record` field"),
        (b'{"type":"RECORD","record":null}', "RECORD message without a `record` field"),
        (b'{"type":"RECORD","record":{"stream":"s"}}', "missing required field `data`"),
        (b'{"type":"RECORD","record":{"data":{}}}', "missing required field `stream`"),
        (b'{"type":"STATE"}', "STATE message without a `state` field"),
        (b'{"type":"STATE","state":null}', "STATE message without a `state` field"),
    ],
)
def test_decode_errors_name_the_line(line: bytes, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        decode(line, 42)
    message = str(caught.value)
    assert message.startswith("Input line 42: ")
    assert problem in message
    assert caught.value.line_number == 42


@pytest.mark.parametrize("data", [b"[1]", b'"text"', b"1", b"null", b"true"])
def test_record_data_must_be_an_object(data: bytes) -> None:
    line = b'{"type":"RECORD","record":{"stream":"s","data":' + data + b',"emitted_at":1}}'
    envelope = decode(line, 9)
    assert envelope.record is not None
    with pytest.raises(InputError, match=r"^Input line 9: RECORD `data` is not a JSON object"):
        record_data(envelope.record, 9, line)


def test_decode_rejects_a_state_that_is_not_an_object() -> None:
    """A STATE whose `state` is not an object cannot be passed on (its destinationStats cannot be
    set): it must fail as an InputError at its own line, not later when it is released."""
    accepted = []
    for state in ([1], "cursor", 5, True):
        try:
            decode(_line({"type": "STATE", "state": state}), 3)
        except InputError as error:
            assert str(error).startswith("Input line 3: ")
        else:
            accepted.append(state)
    assert accepted == []


_EXCERPT = re.compile(r"\(starts with: (?P<shown>'.*')(?P<more>…?)\)$", re.DOTALL)


def _excerpt(message: str) -> tuple[str, bool]:
    found = _EXCERPT.search(message)
    assert found is not None, message
    return found["shown"][1:-1], bool(found["more"])


def test_error_excerpt_is_short_for_a_huge_bad_record() -> None:
    secret_ish = "x" * 100_000
    line = _line(
        {"type": "RECORD", "record": {"stream": "s", "data": [secret_ish], "emitted_at": 1}}
    )
    envelope = decode(line, 7)
    assert envelope.record is not None
    with pytest.raises(InputError) as caught:
        record_data(envelope.record, 7, line)
    message = str(caught.value)
    assert len(message) < 200
    shown, truncated = _excerpt(message)
    assert truncated
    assert len(shown) <= 80
    assert line.decode().startswith(shown)


def test_error_excerpt_is_short_for_an_undecodable_huge_line() -> None:
    line = b'{"type":"RECORD","record":{"stream":"s","data":{"v":"' + b"y" * 200_000 + b'"}'
    with pytest.raises(InputError) as caught:
        decode(line, 1)
    message = str(caught.value)
    assert len(message) < 250
    shown, truncated = _excerpt(message)
    assert truncated
    assert len(shown) <= 80
    assert b"y" * 100 not in message.encode()


def test_error_excerpt_of_a_short_line_is_the_whole_line_without_ellipsis() -> None:
    with pytest.raises(InputError) as caught:
        decode(b"oops", 2)
    shown, truncated = _excerpt(str(caught.value))
    assert shown == "oops"
    assert not truncated


def test_error_excerpt_cuts_inside_a_multibyte_character_safely() -> None:
    line = b"[" + "é".encode() * 100 + b"]"
    with pytest.raises(InputError) as caught:
        decode(line, 1)
    shown, truncated = _excerpt(str(caught.value))
    assert truncated
    assert len(shown) <= 80
