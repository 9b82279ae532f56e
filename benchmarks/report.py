"""The machine description and the Markdown tables of a benchmark run."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MB = 1_000_000


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 0.0


def _git_revision(repo: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def machine_lines(repo: Path) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- machine: nproc {usable} (cpu_count {os.cpu_count()}), CPU {_cpu_model()}, "
        f"RAM {_ram_gib():.1f} GiB, {platform.system()} {platform.release()}",
        f"- python: {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        f"- connector revision: {_git_revision(repo)}",
    ]


@dataclass
class Row:
    """One line of the results table; None prints as a dash."""

    case: str
    records: int
    bytes_in: int
    wall_seconds: float
    cpu_seconds: float | None = None
    startup_cpu_seconds: float | None = None
    startup_wall_seconds: float | None = None
    peak_rss_bytes: int | None = None
    bound_records_per_second: float | None = None
    objects: int | None = None
    stored_bytes: int | None = None  # bytes of the objects in S3 (compressed, if they are)
    content_bytes: int | None = None  # the same objects' bytes uncompressed
    # From the end of the input to the connector's end (its last LOG): the uploads still to do.
    finishing_seconds: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def records_per_second(self) -> float:
        return self.records / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def ratio(self) -> float | None:
        if not self.bound_records_per_second:
            return None
        return self.records_per_second / self.bound_records_per_second

    @property
    def ratio_excluding_startup(self) -> float | None:
        """The ratio with the fixed cost of a sync (an empty `write`) taken out of the wall time."""
        if not self.bound_records_per_second or self.startup_wall_seconds is None:
            return None
        steady = self.wall_seconds - self.startup_wall_seconds
        if steady <= 0:
            return None
        return self.records / steady / self.bound_records_per_second

    @property
    def stored_bytes_per_record(self) -> float | None:
        if self.stored_bytes is None or not self.records:
            return None
        return self.stored_bytes / self.records

    @property
    def compression_ratio(self) -> float | None:
        """Uncompressed ÷ stored bytes: 1 for uncompressed output."""
        if not self.stored_bytes or self.content_bytes is None:
            return None
        return self.content_bytes / self.stored_bytes

    def cpu_us_per_record(self, exclude_startup: bool = False) -> float | None:
        if self.cpu_seconds is None or not self.records:
            return None
        cpu = self.cpu_seconds
        if exclude_startup:
            if self.startup_cpu_seconds is None:
                return None
            cpu = max(0.0, cpu - self.startup_cpu_seconds)
        return cpu * 1e6 / self.records

    def cells(self) -> list[str]:
        return [
            self.case,
            f"{self.records:,}",
            f"{self.bytes_in / MB:,.1f}",
            f"{self.wall_seconds:.2f}",
            _number(self.finishing_seconds, ".1f"),
            f"{self.records_per_second:,.0f}",
            f"{self.bytes_in / MB / self.wall_seconds:.1f}" if self.wall_seconds else "–",
            _number(self.cpu_us_per_record(), ".2f"),
            _number(self.cpu_us_per_record(exclude_startup=True), ".2f"),
            _number(None if self.peak_rss_bytes is None else self.peak_rss_bytes / MB, ".0f"),
            _number(self.stored_bytes_per_record, ".1f"),
            _number(self.compression_ratio, ".2f"),
            _number(self.ratio, ".2f"),
            _number(self.ratio_excluding_startup, ".2f"),
            _number(self.objects, "d"),
            "ok" if not self.problems else "FAIL: " + "; ".join(self.problems[:3]),
        ]


HEADERS = [
    "case",
    "records",
    "MB in",
    "wall s",
    "s after input",
    "records/s",
    "MB/s",
    "CPU µs/record",
    "CPU µs/record excl. start-up",
    "peak RSS MB",
    "stored B/record",
    "compression ratio",
    "ratio to bound",
    "ratio excl. start-up",
    "objects",
    "checks",
]


def _number(value: float | int | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---"] + ["---:"] * (len(headers) - 2) + ["---"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    description: str
    measured: float | None
    limit: float
    at_least: bool  # True: measured must be >= limit; False: <= limit

    def cells(self) -> list[str]:
        if self.measured is None:
            return [self.description, "–", "not measured"]
        met = self.measured >= self.limit if self.at_least else self.measured <= self.limit
        sign = "≥" if self.at_least else "≤"
        return [
            self.description,
            f"{self.measured:.2f} ({sign} {self.limit:g})",
            "met" if met else "MISSED",
        ]
