"""What the sync does when its stream buffers hold more than the budget (Tuning.buffer_budget).

Until the buffers are under half the budget, in this order:
1. Parquet's pending rows become row groups early (the object stays open, its file a little less
   compact).
2. The largest buffers move to local disk (spill.py) while the spill budget has room and spill
   files stay under half the open-file limit: each object stays open, so 500 interleaved streams
   still make one object each, not three small ones.
3. The objects opened earliest complete: that frees their buffers and releases the oldest held
   states. Only here when spilling is off, full, at its share of file descriptors, or refused by
   the disk or the process's descriptor limit (a warning says so once).

States are never held back longer by spilling than by flush_interval_seconds: the sync completes
the objects a state waits for on time, wherever their bytes are.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Sequence

from destination_s3.config import MIB
from destination_s3.spill import SpillFile
from destination_s3.tuning import Tuning
from destination_s3.writer import StreamWriter

logger = logging.getLogger("airbyte")


class MemoryRelief:
    def __init__(self, tuning: Tuning) -> None:
        self._budget = tuning.buffer_budget
        self._spill_budget = tuning.spill_budget
        self._open_spill = functools.partial(SpillFile, tuning.spill_directory)
        self._spill_directory = tuning.spill_directory or "the temporary directory"
        self._spilling = tuning.spill_budget > 0
        self._max_files = tuning.spill_files if tuning.spill_files is not None else _half_the_fds()
        self._short_of_files = False  # warned once that the open-file limit stopped a spill
        self.spilled_total = 0  # bytes moved to disk in the whole sync (a spill counts each time)

    def relieve(self, writers: Sequence[StreamWriter]) -> None:
        buffered = sum(writer.buffered for writer in writers)
        if buffered <= self._budget:
            return
        goal = self._budget // 2
        for writer in sorted(writers, key=lambda writer: -writer.buffered):
            if buffered <= goal:
                return
            before = writer.buffered
            writer.release_held()
            buffered -= before - writer.buffered
        if self._spilling:
            buffered = self._spill(writers, buffered, goal)
        # A stream that is merely quiet would otherwise hold its states back until the flush.
        open_writers = [writer for writer in writers if writer.open_since_record is not None]
        open_writers.sort(key=lambda writer: writer.open_since_record or 0)
        for writer in open_writers:
            if buffered <= goal:
                break
            buffered -= writer.buffered
            writer.complete()

    def _spill(self, writers: Sequence[StreamWriter], buffered: int, goal: int) -> int:
        """Spill the largest buffers until `goal` or the spill budget; returns what is left
        in memory."""
        on_disk = sum(writer.spilled for writer in writers)
        # A buffer holds its spill file open exactly while it has spilled bytes.
        open_files = sum(1 for writer in writers if writer.spilled)
        for writer in sorted(writers, key=lambda writer: -writer.buffered):
            if buffered <= goal:
                break
            size = writer.buffer.in_memory
            if not size or on_disk + size > self._spill_budget:
                continue
            opens_file = not writer.spilled
            if opens_file and open_files >= self._max_files:
                continue
            try:
                moved = writer.spill(self._open_spill)
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE):
                    # Short of file descriptors now, not for good: files close as they drain.
                    self._warn_short_of_files(error)
                    break
                self._spilling = False
                logger.warning(
                    "Could not spill stream buffers to %s (%s): completing the objects opened "
                    "earliest instead, which makes more, smaller objects. Point "
                    "DESTINATION_S3_SPILL_DIR at a writable disk with room, or set "
                    "DESTINATION_S3_SPILL_MB=0 to silence this.",
                    self._spill_directory,
                    error.strerror or error,
                )
                break
            if not self.spilled_total:
                logger.info(
                    "Stream buffers hold more than %.4g MiB: spilling the largest to %s (at most "
                    "%d MiB there) so that every stream keeps one object open",
                    self._budget / MIB,
                    self._spill_directory,
                    self._spill_budget // MIB,
                )
            self.spilled_total += moved
            on_disk += moved
            buffered -= moved
            open_files += opens_file
        return buffered

    def _warn_short_of_files(self, error: OSError) -> None:
        if self._short_of_files:
            return
        self._short_of_files = True
        logger.warning(
            "Could not open a spill file (%s): completing the objects opened earliest while "
            "the process is short of file descriptors, which makes more, smaller objects. "
            "Raise the open-file limit (ulimit -n, or the container's nofile limit).",
            error.strerror or error,
        )


def _half_the_fds() -> int:
    """Half the soft limit on open files: the other half stays for sockets and everything else."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 256
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 32_768 if soft == resource.RLIM_INFINITY else soft // 2
