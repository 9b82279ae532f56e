"""Operators' knobs for the write path, read from the environment: not part of the spec, so a
connection's config never depends on them (README, "Configuration")."""

from __future__ import annotations

import os
from dataclasses import dataclass

from destination_s3.config import MIB
from destination_s3.s3_client import DEFAULT_MAX_ATTEMPTS, RetryPolicy


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Tuning:
    """Knobs for operators, not for the spec: environment variables override the defaults."""

    upload_workers: int = 4
    # Encoded bytes waiting in stream buffers (compressed ones with format.compression); above it
    # the earliest opened objects complete. A compressor's own state (≈165 KiB gzip, ≈230 KiB
    # zstd per open object) is outside it: 500 streams peak at ≈250 MB RSS (README Compression).
    # 64 MiB: with hundreds of streams, a smaller budget completes many small objects, each
    # costing a few ms of CPU (500 streams on 2026-11-29's machine: 28k records/s at 32 MiB, 41k
    # at 64, peak RSS 208 MB; today's figures are in README Performance);
    # with few streams the buffers stay under a part each and the budget does not matter.
    buffer_budget: int = 64 * MIB
    # Bytes of stream buffers that may wait on local disk instead (spill.py, memory.py), so
    # each of many streams keeps one object open instead of completing small ones; 0: never.
    # At most a part size per stream can wait there (a full part is sent). None: the system's
    # temporary directory (TMPDIR).
    spill_budget: int = 1024 * MIB
    spill_directory: str | None = None
    # Spill files open at once (one per spilled stream); None: half the soft limit on open files.
    spill_files: int | None = None
    # Bytes handed to uploads and not yet sent; above it reading stdin waits for S3.
    in_flight_budget: int = 32 * MIB
    progress_seconds: float = 30.0
    tick_seconds: float = 1.0
    # Every S3 call's attempts (botocore's standard retry mode), and the time a failing or
    # cancelled sync spends aborting its open uploads.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    abort_seconds: float = 10.0

    @classmethod
    def from_environment(cls) -> Tuning:
        return cls(
            upload_workers=int(_env_number("DESTINATION_S3_UPLOAD_WORKERS", cls.upload_workers)),
            buffer_budget=int(_env_number("DESTINATION_S3_BUFFER_MB", 64) * MIB),
            in_flight_budget=int(_env_number("DESTINATION_S3_IN_FLIGHT_MB", 32) * MIB),
            spill_budget=int(_env_number("DESTINATION_S3_SPILL_MB", 1024) * MIB),
            spill_directory=os.environ.get("DESTINATION_S3_SPILL_DIR") or None,
            progress_seconds=_env_number("DESTINATION_S3_PROGRESS_SECONDS", cls.progress_seconds),
            tick_seconds=_env_number("DESTINATION_S3_TICK_SECONDS", cls.tick_seconds),
            max_attempts=int(_env_number("DESTINATION_S3_MAX_ATTEMPTS", cls.max_attempts)),
            abort_seconds=_env_number("DESTINATION_S3_ABORT_SECONDS", cls.abort_seconds),
        )

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts)
