"""The write path: Airbyte message lines in, S3 objects and released STATE messages out.

`Sync.run` is a plain function of (config, catalog, batches of stdin lines) to output lines; only
the entry point touches stdin and stdout. See README "How state and flushing work".
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterable, Iterator

from destination_s3.catalog import ConfiguredCatalog, StreamKey, stream_key
from destination_s3.config import ConnectorConfig
from destination_s3.errors import Cancelled, InputError
from destination_s3.intake import Intake
from destination_s3.keys import KeyAllocator
from destination_s3.layout import sync_id_value
from destination_s3.ledger import StateLedger, state_message, state_stream
from destination_s3.manifest import StreamEntry, SyncStates, build_manifest, manifest_key
from destination_s3.memory import MemoryRelief
from destination_s3.retention import remove_earlier_objects
from destination_s3.router import Router, StreamPlan, plan_streams
from destination_s3.storage import Bucket, StorageError, StoredObject
from destination_s3.tuning import Tuning
from destination_s3.upload import abort_uploads
from destination_s3.uploads import ByteBudget, UploadPool
from destination_s3.writer import (
    Completion,
    StreamStats,
    StreamTarget,
    StreamWriter,
    WriterSettings,
)

logger = logging.getLogger("airbyte")


class Sync:
    def __init__(
        self,
        config: ConnectorConfig,
        catalog: ConfiguredCatalog,
        bucket: Bucket,
        tuning: Tuning | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._bucket = bucket
        self._tuning = tuning or Tuning()
        self._clock = clock
        self._streams: dict[StreamKey, StreamPlan] = plan_streams(
            config, catalog, sync_id_value(catalog.sync_id)
        )
        self._ledger = StateLedger()
        self._completed: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._pool = UploadPool(
            self._tuning.upload_workers, ByteBudget(self._tuning.in_flight_budget)
        )
        self._settings = WriterSettings(
            part_size=config.part_size_bytes,
            file_size=config.file_size_bytes,
            extension=config.extension,
            content_type=config.output_format.content_type,
            compression=config.compression,
        )
        self._keys = KeyAllocator()
        self._router = Router(self._streams, self._make_writer)
        self._intake = Intake(self._router, self._ledger, clock)
        self._memory = MemoryRelief(self._tuning)
        self._states = SyncStates()
        # The manifest's name: the platform's sync id, else one of this process.
        self._catalog_sync_id = catalog.sync_id
        self._sync_id = sync_id_value(catalog.sync_id)
        self._records_committed = 0
        self._states_emitted = 0
        self._started = clock()
        self._last_progress = self._started
        self._input_ended = self._started

    def _make_writer(self, plan: StreamPlan) -> StreamWriter:
        return StreamWriter(
            plan.target,
            self._settings,
            self._bucket,
            self._pool,
            self._ledger,
            self._keys,
            lambda: int(self._clock() * 1000),
            self._completed,
            plan.new_body,
        )

    def run(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        """Write every record of `blocks` (whole lines of stdin; b"" for a quiet tick); yield
        each STATE message once its records are durable."""
        try:
            yield from self._consume(blocks)
            yield from self._finish()
        except Cancelled as cancelled:
            raise Cancelled(f"{cancelled}; {self._abort()}") from None
        except BaseException:
            logger.info("Sync failed: %s", self._abort())
            raise
        try:
            self._log_summary()
        except Cancelled:
            # Every object, state and the manifest are written: an orchestrator's SIGTERM now
            # must not turn the finished sync into a reported failure.
            logger.info("Cancelled after the sync had finished: nothing was lost")

    def _consume(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        intake = self._intake
        for block in blocks:
            if block:
                try:
                    intake.take(block)
                except InputError:
                    # The states before the bad line whose records are durable still go out,
                    # as they would have had the bad line come in a later block.
                    yield from self._released()
                    raise
            yield from self._housekeeping()

    def _housekeeping(self) -> Iterator[bytes]:
        """Between batches (and on quiet ticks): release states, flush on time and on memory."""
        yield from self._released()
        now = self._clock()
        oldest = self._ledger.oldest_held()
        if oldest is not None and now - oldest.received_at >= self._config.flush_interval_seconds:
            self._complete_objects_blocking(oldest.records_before)
        self._memory.relieve(list(self._router.writers()))
        if now - self._last_progress >= self._tuning.progress_seconds:
            self._last_progress = now
            self._log_progress(now)

    def _released(self) -> Iterator[bytes]:
        if self._pool.failure is not None:
            raise self._pool.failure
        while True:
            try:
                completion = self._completed.get_nowait()
            except queue.Empty:
                break
            self._ledger.commit(completion.ticket)
            self._records_committed += completion.records
            completion.stats.objects.append(completion)
            logger.info(
                "Committed s3://%s/%s (%d records, %d bytes%s)",
                self._bucket.name,
                completion.key,
                completion.records,
                completion.size,
                ""
                if completion.uncompressed_size == completion.size
                else f", {completion.uncompressed_size} uncompressed",
            )
        for state in self._ledger.release():
            self._states_emitted += 1
            self._states.add(state.body, state_stream(state.body))
            yield state_message(state)

    def _complete_objects_blocking(self, records_before: int) -> None:
        """Complete only the objects holding records from before the state: objects opened after
        it would become small files without releasing anything."""
        for writer in self._router.writers():
            since = writer.open_since_record
            if since is not None and since < records_before:
                writer.complete()

    def _finish(self) -> Iterator[bytes]:
        # Never before the start: a step back of the wall clock must not print "-0.3 s".
        self._input_ended = max(self._clock(), self._started)
        for writer in self._router.writers():
            writer.complete()
        self._pool.wait_idle()
        yield from self._released()
        if self._ledger.held_count:
            raise RuntimeError("states still held after every object completed")
        kept = self._remove_earlier_objects()
        self._pool.shutdown()
        if self._config.write_manifest:
            self._write_manifest(kept)

    def _remove_earlier_objects(self) -> dict[StreamKey, list[StoredObject]]:
        written = {key for writer in self._router.writers() for key in writer.stats.keys}
        return {
            key: remove_earlier_objects(self._bucket, plan.target, written)
            for key, plan in self._streams.items()
        }

    def _write_manifest(self, kept: dict[StreamKey, list[StoredObject]]) -> None:
        """Last, after every state is out: its presence says this sync completed."""
        written = {
            stream_key(writer.target.namespace, writer.target.name): writer.stats
            for writer in self._router.writers()
        }
        body = build_manifest(
            bucket=self._bucket.name,
            sync_id=self._sync_id,
            catalog_sync_id=self._catalog_sync_id,
            started_at=self._started,
            ended_at=self._clock(),
            streams=[
                StreamEntry(plan.target, written.get(key, StreamStats()), kept.get(key, []))
                for key, plan in self._streams.items()
            ],
            states=self._states,
        )
        key = manifest_key(self._config.location.path, int(self._started * 1000), self._sync_id)
        self._bucket.put_object(key, body, "application/json", if_absent=True)
        logger.info("Manifest: s3://%s/%s", self._bucket.name, key)

    def _abort(self) -> str:
        """Stop uploading and abort the open uploads, within the abort grace; say what was done.

        Upload threads stuck in retries are not waited for: an orchestrator kills a cancelled
        job after its grace period, so the TRACE must be out well before."""
        self._pool.shutdown(wait=False)
        uploads = [upload for writer in self._router.writers() for upload in writer.drop()]
        return abort_uploads(uploads, self._tuning.abort_seconds).describe()

    def _log_progress(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        logger.info(
            "Progress: %d records received (%.1f MB), %d committed, %d states emitted, "
            "%.0f records/s",
            self._intake.records,
            self._intake.bytes_read / 1e6,
            self._records_committed,
            self._states_emitted,
            self._intake.records / elapsed,
        )

    def _log_summary(self) -> None:
        misfits = {key: plan.columns.misfits for key, plan in self._streams.items() if plan.columns}
        for writer in self._router.writers():
            stats, target = writer.stats, writer.target
            logger.info(
                "Stream %s: %d records, %d files, %d bytes: %s",
                _display_name(target),
                stats.records,
                len(stats.keys),
                stats.bytes,
                ", ".join(f"s3://{self._bucket.name}/{key}" for key in stats.keys),
            )
            misfit = misfits.get(stream_key(target.namespace, target.name), 0)
            if misfit:
                logger.warning(
                    "Stream %s: %d values did not fit their Parquet column; those cells are null "
                    "and each value is kept, as sent, in the row's _tarsal_meta column.",
                    _display_name(target),
                    misfit,
                )
            repaired = self._intake.repairs.count(target.namespace, target.name)
            if repaired:
                logger.warning(
                    "Stream %s: %d records had invalid UTF-8 in `data`, replaced with U+FFFD.",
                    _display_name(target),
                    repaired,
                )
        if self._memory.spilled_total:
            logger.info(
                "Stream buffers spilled to local disk: %.1f MB in all, each read back once",
                self._memory.spilled_total / 1e6,
            )
        # The input (reading, encoding, waits for uploads behind: the in-flight budget), then
        # what S3 still had to do: the only part that tells a slow endpoint from a slow source.
        ended = max(self._clock(), self._input_ended)
        logger.info(
            "Sync finished in %.1f s: input read in %.1f s, then %.1f s completing the last "
            "objects, removing earlier ones and writing the manifest",
            ended - self._started,
            self._input_ended - self._started,
            ended - self._input_ended,
        )


def _display_name(target: StreamTarget) -> str:
    return f"{target.namespace}.{target.name}" if target.namespace else target.name


__all__ = ["StorageError", "Sync"]
