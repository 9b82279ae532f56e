"""The state ledger: a STATE is released only when every record before it is in a completed object.

Records are numbered in stdin order. Each object remembers the number of its first record; a state
remembers how many records came before it. A state may go out once no object that is still open
or uploading began before it. Held states go out in arrival order, each exactly once, with
`destinationStats.recordCount` set to the records between it and the previous state.
"""

from __future__ import annotations

import collections
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
    record_count: int  # records between the previous state and this one
    received_at: float


class StateLedger:
    def __init__(self) -> None:
        self._tickets: collections.deque[ObjectTicket] = collections.deque()
        self._held: collections.deque[HeldState] = collections.deque()
        self._records_at_last_state = 0

    def open_object(self, first_record: int) -> ObjectTicket:
        ticket = ObjectTicket(first_record)
        self._tickets.append(ticket)
        return ticket

    def hold(self, body: bytes, records_before: int, now: float) -> None:
        count = records_before - self._records_at_last_state
        self._records_at_last_state = records_before
        self._held.append(HeldState(records_before, body, count, now))

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
