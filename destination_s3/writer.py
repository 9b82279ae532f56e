"""One stream's writer: encoded lines in, completed S3 objects out.

It fills a buffer, hands full parts to its object's upload lane, and completes the object when it
reaches the target size or when asked to (flush, memory pressure, end of input). A completed
object is reported on the `completed` queue; the sync loop then commits its ledger ticket.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from destination_s3.keys import KeyAllocator, generation_marker_key
from destination_s3.ledger import ObjectTicket, StateLedger
from destination_s3.storage import Bucket
from destination_s3.upload import ObjectUpload
from destination_s3.uploads import Lane, UploadPool


@dataclass(frozen=True)
class StreamTarget:
    """Where and how one configured stream is written."""

    name: str
    namespace: str | None
    directory: str  # ends with "/"
    header: bytes
    sync_mode: str  # as the catalog asked: append, overwrite, append_dedup…
    truncate: bool  # overwrite / truncate refresh: earlier objects go after a successful sync
    generation_id: int | None
    # Objects of recorded generations below this are removed after a successful sync.
    minimum_generation_id: int
    # Where generation markers go: every object of a sync that has a generation id gets one.
    markers_prefix: str


@dataclass
class StreamStats:
    records: int = 0
    bytes: int = 0
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WriterSettings:
    part_size: int
    file_size: int
    extension: str
    content_type: str


@dataclass
class Completion:
    ticket: ObjectTicket
    stats: StreamStats
    key: str
    size: int
    records: int


class StreamWriter:
    def __init__(
        self,
        target: StreamTarget,
        settings: WriterSettings,
        bucket: Bucket,
        pool: UploadPool,
        ledger: StateLedger,
        keys: KeyAllocator,
        now_ms: Callable[[], int],
        completed: queue.SimpleQueue[Completion],
    ) -> None:
        self.target = target
        self.stats = StreamStats()
        self.buffer = bytearray()
        self._settings = settings
        self._bucket = bucket
        self._pool = pool
        self._ledger = ledger
        self._keys = keys
        self._now_ms = now_ms
        self._completed = completed
        # The buffer size at which the next part goes, or the object completes if that comes
        # first; an object smaller than a part is sent in one piece.
        self._threshold = min(settings.part_size, settings.file_size)
        self._upload: ObjectUpload | None = None
        self._lane: Lane | None = None
        self._ticket: ObjectTicket | None = None
        self._handed_over = 0
        # Records this writer received in the whole sync, and before its open object started.
        self.records_added = 0
        self._records_before_object = 0
        self._unfinished: list[ObjectUpload] = []

    @property
    def open_since_record(self) -> int | None:
        """The number of the first record in the open object, or None when none is open."""
        return self._ticket.first_record if self._ticket is not None else None

    def add_lines(self, lines: list[bytes], first_record: int) -> None:
        """Append encoded records, numbered from `first_record` in stdin's record order.

        An object completes with the record that brings it to the target size, as if records
        came one by one; the records after it open the next object."""
        while lines:
            if self._upload is None:
                self._open(first_record)
            room = self._settings.file_size - self._handed_over - len(self.buffer)
            taken = len(lines)
            if sum(map(len, lines)) >= room:
                size = 0
                for taken, line in enumerate(lines, start=1):  # noqa: B007 (read below)
                    size += len(line)
                    if size >= room:
                        break
            self.buffer += b"".join(lines[:taken]) if taken < len(lines) else b"".join(lines)
            self.records_added += taken
            if len(self.buffer) >= self._threshold:
                self._ship_full_parts()
            lines, first_record = lines[taken:], first_record + taken

    def complete(self) -> None:
        """Finish the open object, if any; its completion is reported on the `completed` queue."""
        upload, lane, ticket = self._upload, self._lane, self._ticket
        if upload is None or lane is None or ticket is None:
            return
        tail = bytes(self.buffer)
        self.buffer = bytearray()
        completion = Completion(
            ticket,
            self.stats,
            upload.key,
            self._handed_over + len(tail),
            self.records_added - self._records_before_object,
        )
        self._upload = self._lane = self._ticket = None
        self._handed_over = 0
        self._threshold = min(self._settings.part_size, self._settings.file_size)

        target = self.target
        bucket = self._bucket

        def finish() -> None:
            if target.generation_id is not None:
                # Before the object exists, so no object of ours is ever without its generation:
                # a later sync keeps it or removes it by what the protocol says of that
                # generation (a marker whose object never completed is harmless).
                marker = generation_marker_key(
                    target.markers_prefix, target.generation_id, upload.key
                )
                bucket.put_object(marker, b"", "application/octet-stream")
            upload.complete(tail)
            self._completed.put(completion)

        lane.submit(finish, len(tail))
        self._unfinished = [upload for upload in self._unfinished if not upload.finished]

    def drop(self) -> list[ObjectUpload]:
        """Forget the open object and hand back every upload of this writer that did not
        complete, for the caller to abort."""
        unfinished = [upload for upload in self._unfinished if not upload.finished]
        self._unfinished.clear()
        self._upload = self._lane = self._ticket = None
        self.buffer = bytearray()
        return unfinished

    def _open(self, record_number: int) -> None:
        settings = self._settings
        key = self._keys.next_key(self.target.directory, self._now_ms(), settings.extension)
        metadata = {}
        if self.target.generation_id is not None:
            metadata["ab-generation-id"] = str(self.target.generation_id)
        self._upload = ObjectUpload(self._bucket, key, settings.content_type, metadata)
        self._unfinished.append(self._upload)
        self._lane = self._pool.lane()
        self._ticket = self._ledger.open_object(record_number)
        self._records_before_object = self.records_added
        self.buffer += self.target.header

    def _ship_full_parts(self) -> None:
        """Complete the object if it reached the target size, else hand over every full part."""
        if self._handed_over + len(self.buffer) >= self._settings.file_size:
            self.complete()
            return
        upload, lane = self._upload, self._lane
        assert upload is not None and lane is not None
        part_size = self._settings.part_size
        while len(self.buffer) >= part_size:
            with memoryview(self.buffer) as view:
                part = bytes(view[:part_size])
            del self.buffer[:part_size]
            self._handed_over += part_size
            lane.submit(lambda part=part: upload.write(part), part_size)  # type: ignore[misc]
        self._threshold = min(part_size, self._settings.file_size - self._handed_over)
