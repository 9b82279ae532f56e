"""The state ledger: a STATE is released only when every record before it is in a completed object.

Records are numbered in stdin order. Each object remembers the number of its first record; a state
remembers how many records came before it. A state may go out once no object that is still open
or uploading began before it. Held states go out in arrival order, each exactly once, with
`destinationStats.recordCount` set as the platform checks it (see `StateRecordCounts`).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

import msgspec


@dataclass
class ObjectTicket:
    """Stands for one object until its upload completes."""

    first_record: int
    committed: bool = False


@dataclass(frozen=True)
class HeldState:
    records_before: int
    body: bytes  # the STATE's `state` object exactly as received
    record_count: int  # destinationStats.recordCount
    received_at: float


class StateLedger:
    def __init__(self) -> None:
        self._tickets: collections.deque[ObjectTicket] = collections.deque()
        self._held: collections.deque[HeldState] = collections.deque()

    def open_object(self, first_record: int) -> ObjectTicket:
        ticket = ObjectTicket(first_record)
        self._tickets.append(ticket)
        return ticket

    def commit(self, ticket: ObjectTicket) -> None:
        """The ticket's object is complete: its records are durable."""
        ticket.committed = True

    def hold(self, body: bytes, records_before: int, record_count: int, now: float) -> None:
        self._held.append(HeldState(records_before, body, record_count, now))

    def oldest_held(self) -> HeldState | None:
        return self._held[0] if self._held else None

    @property
    def held_count(self) -> int:
        return len(self._held)

    def release(self) -> list[HeldState]:
        """The states whose records are all durable now, oldest first, removed from the ledger."""
        tickets = self._tickets
        while tickets and tickets[0].committed:
            tickets.popleft()
        # Tickets are opened in record order, but may complete out of order: the oldest one that
        # is still uncommitted bounds what is durable.
        durable_before = tickets[0].first_record if tickets else None
        released = []
        while self._held and (
            durable_before is None or self._held[0].records_before <= durable_before
        ):
            released.append(self._held.popleft())
        return released


class _StreamDescriptor(msgspec.Struct):
    name: str
    namespace: str | None = None


class _StreamState(msgspec.Struct):
    stream_descriptor: _StreamDescriptor


class _StateShape(msgspec.Struct):
    type: str | None = None
    stream: _StreamState | None = None


_state_shape = msgspec.json.Decoder(_StateShape)


class StateRecordCounts:
    """destinationStats.recordCount, counted the way the platform compares it with sourceStats:
    for a STREAM state, the records of that stream since that stream's previous state; for a
    GLOBAL or LEGACY state, all records since the previous state."""

    def __init__(self) -> None:
        self._stream_records_at_last_state: dict[tuple[str | None, str], int] = {}
        self._records_at_last_state = 0

    def count(
        self,
        body: bytes,
        records_before: int,
        stream_records: Callable[[str | None, str], int],
    ) -> int:
        total = records_before - self._records_at_last_state
        self._records_at_last_state = records_before
        key = state_stream(body)
        if key is None:
            return total
        now = stream_records(*key)
        count = now - self._stream_records_at_last_state.get(key, 0)
        self._stream_records_at_last_state[key] = now
        return count


def state_stream(body: bytes) -> tuple[str | None, str] | None:
    """The (namespace, name) of a STREAM state; None for GLOBAL and LEGACY states."""
    try:
        shape = _state_shape.decode(body)
    except msgspec.DecodeError:
        return None
    if shape.type != "STREAM" or shape.stream is None:
        return None
    descriptor = shape.stream.stream_descriptor
    return (descriptor.namespace or None, descriptor.name)


_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])


def state_message(state: HeldState) -> bytes:
    """The STATE message to print: the received state unchanged but for destinationStats."""
    fields = _top_level.decode(state.body)
    fields["destinationStats"] = msgspec.Raw(
        msgspec.json.encode({"recordCount": float(state.record_count)})
    )
    body = b",".join(
        msgspec.json.encode(name) + b":" + bytes(value) for name, value in fields.items()
    )
    return b'{"type":"STATE","state":{' + body + b"}}"
