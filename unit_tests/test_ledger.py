"""The state ledger: a STATE goes out only once every record before it is in a committed object."""

from __future__ import annotations

import json
from typing import Any

from destination_s3.ledger import HeldState, StateLedger, StateRecordCounts, state_message


def _state(name: str) -> bytes:
    return json.dumps(
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": {}}}
    ).encode()


def _bodies(released: list[HeldState]) -> list[bytes]:
    return [state.body for state in released]


def test_state_with_no_records_before_it_goes_out_at_once() -> None:
    ledger = StateLedger()
    ledger.hold(_state("s1"), 0, record_count=0, now=1.0)
    assert _bodies(ledger.release()) == [_state("s1")]
    assert ledger.held_count == 0
    assert ledger.release() == []


def test_state_is_held_until_its_object_commits() -> None:
    ledger = StateLedger()
    ticket = ledger.open_object(0)
    ledger.hold(_state("s1"), 3, record_count=3, now=1.0)
    assert ledger.release() == []
    assert ledger.release() == []  # asking again changes nothing
    assert ledger.held_count == 1
    ticket.committed = True
    released = ledger.release()
    assert _bodies(released) == [_state("s1")]
    assert released[0].records_before == 3
    assert released[0].record_count == 3
    assert released[0].received_at == 1.0
    assert ledger.release() == []
    assert ledger.held_count == 0


def test_an_object_opened_after_the_state_does_not_hold_it() -> None:
    ledger = StateLedger()
    first = ledger.open_object(0)
    ledger.hold(_state("s1"), 2, record_count=0, now=1.0)
    ledger.open_object(2)  # records 2.. go to a new object, still open
    assert ledger.release() == []
    first.committed = True
    assert _bodies(ledger.release()) == [_state("s1")]


def test_out_of_order_completion_releases_only_when_the_oldest_commits() -> None:
    ledger = StateLedger()
    a, b, c = ledger.open_object(0), ledger.open_object(1), ledger.open_object(2)
    ledger.hold(_state("s1"), 3, record_count=0, now=1.0)
    c.committed = True
    assert ledger.release() == []
    b.committed = True
    assert ledger.release() == []
    a.committed = True
    assert _bodies(ledger.release()) == [_state("s1")]


def test_several_states_go_out_together_in_arrival_order() -> None:
    ledger = StateLedger()
    x = ledger.open_object(0)  # stream x, record 0
    ledger.hold(_state("s1"), 1, record_count=0, now=1.0)
    y = ledger.open_object(1)  # stream y, record 1
    ledger.hold(_state("s2"), 2, record_count=0, now=2.0)
    ledger.hold(_state("s3"), 2, record_count=0, now=3.0)
    y.committed = True  # the later object completes first: nothing may go out yet
    assert ledger.release() == []
    assert ledger.held_count == 3
    x.committed = True
    released = ledger.release()
    assert _bodies(released) == [_state("s1"), _state("s2"), _state("s3")]
    assert [state.received_at for state in released] == [1.0, 2.0, 3.0]
    assert ledger.release() == []


def test_states_go_out_as_far_as_the_oldest_open_object_allows() -> None:
    ledger = StateLedger()
    x = ledger.open_object(0)
    ledger.hold(_state("s1"), 1, record_count=0, now=1.0)
    y = ledger.open_object(1)
    ledger.hold(_state("s2"), 2, record_count=0, now=2.0)
    x.committed = True
    assert _bodies(ledger.release()) == [_state("s1")]
    oldest = ledger.oldest_held()
    assert oldest is not None
    assert oldest.body == _state("s2")
    y.committed = True
    assert _bodies(ledger.release()) == [_state("s2")]
    assert ledger.oldest_held() is None


def test_a_rotating_writer_alone_releases_nothing_while_another_holds_earlier_records() -> None:
    ledger = StateLedger()
    slow = ledger.open_object(0)  # stream A, records 0..
    fast_1 = ledger.open_object(1)  # stream B rotates a lot
    ledger.hold(_state("s1"), 5, record_count=0, now=1.0)
    fast_1.committed = True
    fast_2 = ledger.open_object(5)
    fast_2.committed = True
    assert ledger.release() == []
    slow.committed = True
    assert _bodies(ledger.release()) == [_state("s1")]


def test_each_state_is_released_exactly_once_over_a_long_run() -> None:
    ledger = StateLedger()
    tickets = []
    released: list[bytes] = []
    for index in range(100):
        tickets.append(ledger.open_object(index))
        ledger.hold(_state(f"s{index}"), index + 1, record_count=0, now=float(index))
        if index % 7 == 6:  # complete the open objects in reverse order, in bursts
            for ticket in reversed(tickets):
                ticket.committed = True
                released += _bodies(ledger.release())
            tickets.clear()
    for ticket in tickets:
        ticket.committed = True
    released += _bodies(ledger.release())
    assert released == [_state(f"s{index}") for index in range(100)]
    assert ledger.held_count == 0


def test_record_count_of_global_and_legacy_states_counts_every_record_since_the_last_state() -> (
    None
):
    counts = StateRecordCounts()
    bodies = [b'{"type":"GLOBAL","global":{}}', b'{"data":{}}', b'{"type":"LEGACY","data":{}}']
    totals = [
        counts.count(bodies[i % 3], before, lambda ns, name: 0)
        for i, before in enumerate((0, 3, 3, 10, 1000))
    ]
    assert totals == [0, 3, 0, 7, 990]


def _stream_state_body(name: str, namespace: str | None = None) -> bytes:
    descriptor: dict[str, str] = {"name": name}
    if namespace is not None:
        descriptor["namespace"] = namespace
    return json.dumps(
        {"type": "STREAM", "stream": {"stream_descriptor": descriptor, "stream_state": {}}}
    ).encode()


def test_record_count_of_a_stream_state_counts_only_its_stream_since_its_previous_state() -> None:
    # Records A, B, B, then STATE(A), STATE(B), then A, STATE(A), then STATE(B) with no new B.
    per_stream = {(None, "a"): 1, ("ns", "b"): 2}
    counts = StateRecordCounts()
    assert counts.count(_stream_state_body("a"), 3, lambda ns, n: per_stream[(ns, n)]) == 1
    assert counts.count(_stream_state_body("b", "ns"), 3, lambda ns, n: per_stream[(ns, n)]) == 2
    per_stream[(None, "a")] = 2
    assert counts.count(_stream_state_body("a"), 4, lambda ns, n: per_stream[(ns, n)]) == 1
    assert counts.count(_stream_state_body("b", "ns"), 4, lambda ns, n: per_stream[(ns, n)]) == 0


def _parse_exact(raw: bytes) -> Any:
    """Parse keeping every number's own text and every key's order."""
    return json.loads(
        raw,
        parse_int=lambda text: ("int", text),
        parse_float=lambda text: ("float", text),
        object_pairs_hook=list,
    )


def test_state_message_golden() -> None:
    body = (
        b'{"type":"STREAM","stream":{"stream_descriptor":{"name":"users","namespace":"public"},'
        b'"stream_state":{"cursor":"2024-01-01"}}}'
    )
    message = state_message(HeldState(3, body, 3, 0.0))
    assert message == (
        b'{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":'
        b'{"name":"users","namespace":"public"},"stream_state":{"cursor":"2024-01-01"}},'
        b'"destinationStats":{"recordCount":3.0}}}'
    )


def test_state_message_keeps_every_field_and_value_exactly() -> None:
    body = (
        '{"type": "STREAM",\n "stream": {"stream_descriptor": {"name": "café 用户"},'
        ' "stream_state": {"big": 123456789012345678901234567890,'
        ' "neg_big": -1180591620717411303424,'
        ' "one": 1.0, "exp": 1E+300, "tiny": 5e-324, "zero": -0.0, "int": 7,'
        ' "s": "quote \\" backslash \\\\ nl \\n tab \\t \\u00e9 🚀", "t": true, "f": false,'
        ' "n": null, "arr": [1, [2.50, {}], []], "obj": {}}},'
        ' "sourceStats": {"recordCount": 12.0}, "id": 99, "ünïcode_key": "é"}'
    ).encode()
    message = state_message(HeldState(12, body, 12, 0.0))
    parsed = _parse_exact(message)
    assert parsed[0] == ("type", "STATE")
    assert parsed[1][0] == "state"
    expected = [*_parse_exact(body), ("destinationStats", [("recordCount", ("float", "12.0"))])]
    assert parsed[1][1] == expected
    # Values are copied byte for byte, not re-encoded.
    for raw in (b"123456789012345678901234567890", b"1.0", b"1E+300", b"[2.50, {}]", b"-0.0"):
        assert raw in message


def test_state_message_record_count_is_a_number() -> None:
    message = json.loads(state_message(HeldState(0, b'{"type":"GLOBAL"}', 0, 0.0)))
    assert message["state"]["destinationStats"] == {"recordCount": 0}
    message = json.loads(state_message(HeldState(5, b"{}", 5, 0.0)))
    assert message == {"type": "STATE", "state": {"destinationStats": {"recordCount": 5}}}


def test_state_message_replaces_destination_stats_from_the_source() -> None:
    body = b'{"type":"STREAM","destinationStats":{"recordCount":999.0},"stream":{}}'
    message = state_message(HeldState(2, body, 2, 0.0))
    assert message.count(b"destinationStats") == 1
    assert json.loads(message)["state"] == {
        "type": "STREAM",
        "destinationStats": {"recordCount": 2.0},
        "stream": {},
    }


def test_state_message_global_state() -> None:
    body = json.dumps(
        {
            "type": "GLOBAL",
            "global": {
                "shared_state": {"lsn": 123456789012345678901234567890},
                "stream_states": [
                    {"stream_descriptor": {"name": "a"}, "stream_state": {"c": 1.0}},
                    {"stream_descriptor": {"name": "b", "namespace": "n"}, "stream_state": None},
                ],
            },
        }
    ).encode()
    message = state_message(HeldState(4, body, 4, 0.0))
    assert _parse_exact(message)[1][1] == [
        *_parse_exact(body),
        ("destinationStats", [("recordCount", ("float", "4.0"))]),
    ]


def test_state_message_legacy_state() -> None:
    for body in (
        b'{"type":"LEGACY","data":{"users":{"cursor":"2024-01-01"},"n":1.0}}',
        b'{"data":{"users":{"cursor":"2024-01-01"}}}',
    ):
        message = state_message(HeldState(1, body, 1, 0.0))
        assert _parse_exact(message)[1][1] == [
            *_parse_exact(body),
            ("destinationStats", [("recordCount", ("float", "1.0"))]),
        ]
