"""One stream's writer: encoded lines in, completed S3 objects out.

It fills a buffer (part_buffer.py), hands full parts to its object's upload lane, and completes
the object when it reaches the target size or when asked to (flush, memory pressure with no room
to spill, end of input). Under memory pressure the buffer may move to local disk (spill.py) and
the object stays open. A completed object is reported on the `completed` queue; the sync loop
then commits its ledger ticket.

With compression, bytes go through the object's compressor as they are added (on the calling
thread, so parts stay in order and no thread is needed) and the buffer holds COMPRESSED bytes: a
part is shipped when 5 MiB or more of compressed output is waiting (S3's minimum part size), while
the target size counts the UNCOMPRESSED bytes taken into the object. A Parquet object's body
(parquet.py) takes the same place as a compressor: record lines in, the file's bytes out row group
by row group; what it holds back (pending rows) counts in `buffered`, and `release_held` writes
them as a row group early under memory pressure.
"""

from __future__ import annotations

import functools
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from destination_s3.compression import Compressor, new_compressor
from destination_s3.config import Compression
from destination_s3.keys import KeyAllocator, generation_marker_key
from destination_s3.layout import StreamLayout
from destination_s3.ledger import ObjectTicket, StateLedger
from destination_s3.part_buffer import PartBuffer
from destination_s3.spill import SpillFile
from destination_s3.storage import Bucket
from destination_s3.upload import ObjectUpload
from destination_s3.uploads import Lane, UploadPool


@dataclass(frozen=True)
class StreamTarget:
    """Where and how one configured stream is written."""

    name: str
    namespace: str | None
    layout: StreamLayout  # where its objects go (the default layout, or s3_path_format's)
    header: bytes
    sync_mode: str  # as the catalog asked: append, overwrite, append_dedup…
    truncate: bool  # overwrite / truncate refresh: earlier objects go after a successful sync
    generation_id: int | None
    # Objects of recorded generations below this are removed after a successful sync.
    minimum_generation_id: int
    # Where generation markers go: every object of a sync that has a generation id gets one.
    markers_prefix: str

    @property
    def directory(self) -> str:
        """The stream's root (ends with "/"): every object of the stream is below it."""
        return self.layout.root


@dataclass
class StreamStats:
    objects: list[Completion] = field(default_factory=list)  # committed, in completion order

    @property
    def records(self) -> int:
        return sum(completion.records for completion in self.objects)

    @property
    def bytes(self) -> int:
        return sum(completion.size for completion in self.objects)

    @property
    def keys(self) -> list[str]:
        return [completion.key for completion in self.objects]


@dataclass(frozen=True)
class WriterSettings:
    part_size: int  # bytes of (compressed) output per part
    file_size: int  # uncompressed bytes per object
    extension: str
    content_type: str
    compression: Compression = Compression.NONE


@dataclass
class Completion:
    ticket: ObjectTicket
    stats: StreamStats
    key: str
    size: int  # bytes stored in S3
    records: int
    uncompressed_size: int
    first_emitted_at: int | float
    last_emitted_at: int | float
    etag: str = ""  # as S3 returned it, set once the object is complete


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
        new_body: Callable[[], Compressor] | None = None,
    ) -> None:
        self.target = target
        self.stats = StreamStats()
        self.buffer = PartBuffer()
        self._settings = settings
        self._bucket = bucket
        self._pool = pool
        self._ledger = ledger
        self._keys = keys
        self._now_ms = now_ms
        self._completed = completed
        self._upload: ObjectUpload | None = None
        self._lane: Lane | None = None
        self._ticket: ObjectTicket | None = None
        self._compressor: Compressor | None = None
        # A new object's body: the format's compressor, or Parquet's file writer.
        self._new_body = new_body or functools.partial(new_compressor, settings.compression)
        # Of the open object: bytes taken in (uncompressed, the header included), and bytes of
        # output handed to the upload lane as parts.
        self._taken = 0
        self._handed_over = 0
        # emitted_at of the open object's first and last records (the manifest lists them).
        self._first_emitted_at: int | float = 0
        self._last_emitted_at: int | float = 0
        # Records this writer received in the whole sync, and before its open object started.
        self.records_added = 0
        self._records_before_object = 0
        self._unfinished: list[ObjectUpload] = []

    @property
    def open_since_record(self) -> int | None:
        """The number of the first record in the open object, or None when none is open."""
        return self._ticket.first_record if self._ticket is not None else None

    @property
    def buffered(self) -> int:
        """Bytes this writer holds in memory: its buffer and what its open body holds back."""
        held = self._compressor.held_bytes if self._compressor is not None else 0
        return self.buffer.in_memory + held

    @property
    def spilled(self) -> int:
        """Bytes of the open object's output waiting in a spill file on local disk."""
        return self.buffer.spilled

    def spill(self, open_file: Callable[[], SpillFile]) -> int:
        """Under memory pressure: move the buffer's bytes to local disk (the object stays open);
        returns the bytes moved. Raises OSError when the disk refuses them (nothing moved)."""
        return self.buffer.spill(open_file)

    def release_held(self) -> None:
        """Under memory pressure: turn what the open body holds (Parquet's pending rows) into
        output now, and ship its full parts."""
        if self._compressor is not None and self._compressor.held_bytes:
            self.buffer.append(self._compressor.release())
            self._ship_full_parts()

    def add_lines(
        self, lines: list[bytes], first_record: int, emitted_at: list[int | float]
    ) -> None:
        """Append encoded records, numbered from `first_record` in stdin's record order, with
        each record's `emitted_at`.

        An object completes with the record that brings it to the target size, as if records
        came one by one; the records after it open the next object."""
        while lines:
            if self._upload is None:
                self._open(first_record)
                self._first_emitted_at = emitted_at[0]
            room = self._settings.file_size - self._taken
            taken = len(lines)
            if sum(map(len, lines)) >= room:
                size = 0
                for taken, line in enumerate(lines, start=1):  # noqa: B007 (read below)
                    size += len(line)
                    if size >= room:
                        break
            self._take(b"".join(lines[:taken]) if taken < len(lines) else b"".join(lines))
            self.records_added += taken
            self._last_emitted_at = emitted_at[taken - 1]
            if self._taken >= self._settings.file_size:
                self.complete()
            elif len(self.buffer) >= self._settings.part_size:
                self._ship_full_parts()
            lines, first_record = lines[taken:], first_record + taken
            emitted_at = emitted_at[taken:]

    def complete(self) -> None:
        """Finish the open object, if any; its completion is reported on the `completed` queue."""
        upload, lane, ticket, compressor = self._upload, self._lane, self._ticket, self._compressor
        if upload is None or lane is None or ticket is None or compressor is None:
            return
        self.buffer.append(compressor.finish())
        tail = self.buffer.take_all()
        completion = Completion(
            ticket,
            self.stats,
            upload.key,
            self._handed_over + len(tail),
            self.records_added - self._records_before_object,
            self._taken,
            self._first_emitted_at,
            self._last_emitted_at,
        )
        self._upload = self._lane = self._ticket = self._compressor = None
        self._taken = self._handed_over = 0

        def finish() -> None:
            completion.etag = upload.complete(tail)
            self._completed.put(completion)

        lane.submit(finish, len(tail))
        self._unfinished = [upload for upload in self._unfinished if not upload.finished]

    def drop(self) -> list[ObjectUpload]:
        """Forget the open object and hand back every upload of this writer that did not
        complete, for the caller to abort."""
        unfinished = [upload for upload in self._unfinished if not upload.finished]
        self._unfinished.clear()
        self._upload = self._lane = self._ticket = self._compressor = None
        self._taken = self._handed_over = 0
        self.buffer.close()
        return unfinished

    def _open(self, record_number: int) -> None:
        settings = self._settings
        layout = self.target.layout
        key = layout.object_key(self._keys.next_ms(layout.root, self._now_ms()), settings.extension)
        metadata = {}
        if self.target.generation_id is not None:
            metadata["ab-generation-id"] = str(self.target.generation_id)
        self._upload = ObjectUpload(self._bucket, key, settings.content_type, metadata)
        self._unfinished.append(self._upload)
        self._lane = self._pool.lane()
        if self.target.generation_id is not None:
            self._lane.submit(functools.partial(self._put_marker, key), 0)
        self._ticket = self._ledger.open_object(record_number)
        self._records_before_object = self.records_added
        self._compressor = self._new_body()
        self._take(self.target.header)

    def _put_marker(self, key: str) -> None:
        """The object's generation marker: its lane's first task, so it exists before any of the
        object's bytes (a later sync keeps or removes the object by what the protocol says of
        that generation; a marker whose object never completed is harmless). Sent while the
        object fills rather than when it completes, it is off the path to releasing states."""
        target = self.target
        assert target.generation_id is not None
        marker = generation_marker_key(
            target.markers_prefix, target.generation_id, target.layout.marker_name(key)
        )
        self._bucket.put_object(marker, b"", "application/octet-stream")

    def _take(self, data: bytes) -> None:
        """Add bytes to the open object: through its compressor into the buffer."""
        assert self._compressor is not None
        self.buffer.append(self._compressor.compress(data))
        self._taken += len(data)

    def _ship_full_parts(self) -> None:
        """Hand every full part of the buffer over to the upload lane."""
        upload, lane = self._upload, self._lane
        assert upload is not None and lane is not None
        part_size = self._settings.part_size
        while len(self.buffer) >= part_size:
            part = self.buffer.take(part_size)
            self._handed_over += part_size
            lane.submit(lambda part=part: upload.write(part), part_size)  # type: ignore[misc]
