"""stdin blocks in: records encoded and added to their stream's writer, STATEs held in the ledger.

With the C extension, the block scanner (_scan_records.c) reads each block line by line and takes
every plain RECORD itself: it checks the line as JSON, finds its route, encodes it and appends
it, without building an envelope object. Each line it leaves (a STATE, a stream not seen yet, a
spelling it does not take, a line that is not valid) is decoded alone by msgspec and dealt with
below; then the scanner goes on after it, unless the block has left more than
LINES_LEFT_PER_BLOCK lines, in which case msgspec's block path takes the rest. Without the
extension, that block path takes every block: one msgspec call decodes it (`decode_lines`: every
envelope, `data` kept as raw JSON bytes) and the plain-records loop (plain_records.py) takes each
run of records between other messages.

Either way, each stream's records of the block are added with one join and one buffer append.
Anything unusual — a line msgspec refuses, a record whose `data` needs a look (not an object, a
bare CR, invalid UTF-8), a stream the catalog does not name, an unknown message type — sends the
rest of the block through `_take_line`, one line at a time, which knows each line's number and
raises the InputError that names it. Records are numbered in stdin order on every path, so the
ledger sees the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from destination_s3 import plain_records
from destination_s3.catalog import stream_key
from destination_s3.encoders import LineEncoder, RecordIds
from destination_s3.errors import InputError
from destination_s3.ledger import StateLedger, StateRecordCounts
from destination_s3.messages import (
    ENVELOPE_DECODER,
    KNOWN_TYPES,
    Envelope,
    Utf8Repairs,
    decode,
    is_utf8,
    record_data,
)
from destination_s3.router import Router, UnknownStream
from destination_s3.writer import StreamWriter

# Lines of one block the scanner may leave to msgspec one by one (STATEs, first records of new
# streams) before msgspec's block path takes the rest of the block in one call.
LINES_LEFT_PER_BLOCK = 8


@dataclass
class _Route:
    """One stream's writer and encoder, and its records of the current block not yet added."""

    writer: StreamWriter
    encode: LineEncoder
    lines: list[bytes] = field(default_factory=list)
    emitted_at: list[int | float] = field(default_factory=list)  # of each line (the manifest)
    first_record: int = 0

    @property
    def records_added(self) -> int:
        return self.writer.records_added + len(self.lines)

    def add_pending(self) -> None:
        if self.lines:
            self.writer.add_lines(self.lines, self.first_record, self.emitted_at)
            self.lines = []
            self.emitted_at = []


class Intake:
    def __init__(
        self,
        router: Router,
        ledger: StateLedger,
        clock: Callable[[], float],
        take_plain: plain_records.TakePlain = plain_records.TAKE_PLAIN_RECORDS,
        scan_plain: plain_records.ScanPlain | None = plain_records.SCAN_PLAIN_RECORDS,
        record_ids: Callable[[], bytes] | None = None,
    ) -> None:
        self._router = router
        self._take_plain = take_plain
        self._scan_plain = scan_plain
        self._ledger = ledger
        self._clock = clock
        # As records spell them, for the hot loop (a stream without namespace by its name alone:
        # no tuple per record); by stream_key() for STREAM states. `""` and None namespaces
        # are one stream: they share one _Route.
        self._routes: dict[str | tuple[str, str], _Route] = {}
        self._by_stream: dict[tuple[str | None, str], _Route] = {}
        # Routes with records of this block not yet added, in the order of their first record:
        # objects must be opened in record order (the ledger relies on it).
        self._pending: list[_Route] = []
        self._record_counts = StateRecordCounts()
        self._next_id = record_ids or RecordIds().next
        self._last_emitted_at: int | float | None = None
        self._emitted_at_text = b""
        self.repairs = Utf8Repairs()
        self.lines_read = 0
        self.records = 0  # records taken so far: the next record's number
        self.bytes_read = 0

    def take(self, block: bytes) -> None:
        """Take one block of whole lines; raises InputError for a line that cannot be taken."""
        first_line = self.lines_read + 1
        self.lines_read += plain_records.COUNT_NEWLINES(block) + (not block.endswith(b"\n"))
        self.bytes_read += len(block)
        offset: int | None = 0
        if self._scan_plain is not None:
            offset = self._scan(block, first_line, self._scan_plain)
        if offset is not None:
            self._decode_from(block, first_line, offset)

    def _decode_from(self, block: bytes, first_line: int, offset: int) -> None:
        """msgspec's block path: the block from byte `offset` (a line's start) in one call."""
        try:
            envelopes = ENVELOPE_DECODER.decode_lines(block[offset:] if offset else block)
        except (msgspec.DecodeError, RecursionError):
            self._take_by_line(block, first_line, offset=offset)
            return
        stopped_at = self._take_envelopes(envelopes)
        if stopped_at is None:
            self._add_pending()
        else:
            self._take_by_line(block, first_line, skip=stopped_at, offset=offset)

    def _scan(
        self, block: bytes, first_line: int, scan_plain: plain_records.ScanPlain
    ) -> int | None:
        """The C scanner takes the plain records; each line it leaves is decoded alone. Returns
        None when the block is taken, or the offset from which msgspec's block path takes the
        rest: once a block has left LINES_LEFT_PER_BLOCK lines (a source whose every record the
        scanner leaves, with a float emitted_at, say), one call for the rest costs less."""
        offset, size, left = 0, len(block), 0
        while True:
            offset, self.records, self._last_emitted_at, self._emitted_at_text = scan_plain(
                block, offset, self._routes, self._pending, self._next_id, self.records,
                self._last_emitted_at, self._emitted_at_text,
            )  # fmt: skip
            if offset >= size:
                self._add_pending()
                return None
            left += 1
            if left > LINES_LEFT_PER_BLOCK:
                return offset
            line_end = block.find(b"\n", offset)
            line_end = size if line_end < 0 else line_end
            try:
                envelope: Envelope | None = ENVELOPE_DECODER.decode(block[offset:line_end])
            except (msgspec.DecodeError, RecursionError):
                envelope = None  # the line-by-line step names what is wrong with it
            if envelope is None or self._take_envelopes([envelope]) is not None:
                self._take_by_line(block, first_line, offset=offset)
                return None
            offset = min(line_end + 1, size)

    def _take_envelopes(self, envelopes: list[Envelope]) -> int | None:
        """Take decoded envelopes; returns the index of the first one the line-by-line step must
        take (and which it will name if it is bad), or None when all were taken."""
        routes, pending, next_id = self._routes, self._pending, self._next_id
        record_number = self.records
        last_emitted_at, emitted_at_text = self._last_emitted_at, self._emitted_at_text
        index = 0
        stopped_at: int | None = None
        while stopped_at is None:
            index, why, record_number, last_emitted_at, emitted_at_text = self._take_plain(
                envelopes, index, routes, pending, next_id, record_number, last_emitted_at,
                emitted_at_text,
            )  # fmt: skip
            if why == plain_records.END:
                break
            envelope = envelopes[index]
            if why == plain_records.NEW_STREAM:
                record = envelope.record
                assert record is not None
                if not self._router.knows(record.namespace, record.stream):
                    stopped_at = index
                else:
                    self._route(record.namespace, record.stream)  # and take it on the next turn
            elif why == plain_records.OTHER:
                kind = envelope.type
                if kind == "STATE":
                    body = bytes(envelope.state)
                    if body[:1] != b"{" or not (body.isascii() or is_utf8(body)):
                        stopped_at = index
                        continue
                    self.records = record_number
                    self._hold(body)
                elif kind not in KNOWN_TYPES:
                    stopped_at = index
                    continue
                index += 1
            else:
                stopped_at = index
        self.records = record_number
        self._last_emitted_at, self._emitted_at_text = last_emitted_at, emitted_at_text
        return stopped_at

    def _take_by_line(self, block: bytes, first_line: int, skip: int = 0, offset: int = 0) -> None:
        """Take the block from byte `offset` (the start of a line), from its `skip`-th message
        on, one line at a time."""
        self._add_pending()
        first_line += block.count(b"\n", 0, offset)
        for index, line in enumerate(block[offset:].split(b"\n")):
            if not line.strip():
                continue  # blank lines are not messages (decode_lines skips them too)
            if skip:
                skip -= 1
                continue
            self._take_line(line, first_line + index)
        self._add_pending()

    def _take_line(self, line: bytes, line_number: int) -> None:
        envelope: Envelope = decode(line, line_number)  # raises the InputError that explains it
        if envelope.type == "STATE":
            self._hold(bytes(envelope.state))
        elif envelope.type == "RECORD" and envelope.record is not None:
            record = envelope.record
            try:
                route = self._route(record.namespace, record.stream)
            except UnknownStream as unknown:
                raise InputError(line_number, str(unknown)) from None
            data, repaired = record_data(record, line_number, line)
            if repaired:
                self.repairs.note(stream_key(record.namespace, record.stream), line_number)
            emitted_at = str(int(record.emitted_at)).encode()
            try:
                encoded = route.encode(self._next_id(), emitted_at, data)
            except (ValueError, msgspec.DecodeError, RecursionError) as invalid:
                problem = f"RECORD `data` cannot be encoded: {invalid}"
                raise InputError(line_number, problem) from None
            route.lines.append(encoded)
            route.emitted_at.append(record.emitted_at)
            route.first_record = self.records
            route.add_pending()  # at once: lines taken one by one are added in order
            self.records += 1

    def _route(self, namespace: str | None, name: str) -> _Route:
        key = stream_key(namespace, name)
        route = self._by_stream.get(key)
        if route is None:
            writer, encode = self._router.route(namespace, name)
            route = self._by_stream[key] = _Route(writer, encode)
        self._routes[name if namespace is None else (namespace, name)] = route
        return route

    def _hold(self, body: bytes) -> None:
        count = self._record_counts.count(body, self.records, self._stream_records)
        self._ledger.hold(body, self.records, count, self._clock())

    def _stream_records(self, namespace: str | None, name: str) -> int:
        """Records routed so far to one stream, including those of this block not yet added."""
        route = self._by_stream.get((namespace, name))
        return route.records_added if route is not None else 0

    def _add_pending(self) -> None:
        for route in self._pending:
            route.add_pending()
        self._pending.clear()
