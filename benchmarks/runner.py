"""Runs one connector command as a child process and measures it.

Wall time runs from spawning the child to reaping it. CPU time (user + system) comes from
`os.wait4`: the child's exact rusage at exit (or from the psutil samples of the process tree
when they say more, as when the connector runs under py-spy). Peak RSS comes from a sampler
thread that, every `sample_seconds`, reads the RSS of the child and all its descendants (psutil)
and their kernel high-water marks (`VmHWM` in /proc/PID/status). VmHWM is monotonic, so any
sample taken after the peak sees it exactly, however short the peak was.

The rusage `ru_maxrss` is NOT used: Linux carries the high-water mark across fork and exec, so a
child spawned by this (large) benchmark process would report the benchmark's own RSS.
stdout is read on a thread: STATE messages are counted and checked, TRACE errors collected.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import psutil

TIMELINE_POINTS = 100


# destination_s3/sync.py's last LOG line.
_FINISHING = re.compile(r"then (\d+(?:\.\d+)?) s completing the last objects")


@dataclass
class StdoutSummary:
    """What the connector printed: its STATE messages, any errors, and how long it took after
    the end of its input."""

    states: int = 0
    # Sum of destinationStats.recordCount over the printed states: must equal the records sent.
    committed_records: float = 0.0
    last_cursor: int = -1
    problems: list[str] = field(default_factory=list)
    other_lines: int = 0
    # From the connector's last LOG: seconds from the end of its input to its end.
    finishing_seconds: float | None = None

    def read(self, stream: IO[bytes], log: IO[bytes] | None) -> None:
        for line in stream:
            if log is not None:
                log.write(line)
            if line.startswith(b'{"type":"STATE"'):
                self._state(orjson.loads(line))
            elif line.startswith(b'{"type":"TRACE"') and b'"ERROR"' in line:
                error = orjson.loads(line)["trace"]["error"]
                self.problems.append(f"TRACE error: {error.get('message')}")
            else:
                self.other_lines += 1
                if line.startswith(b'{"type":"LOG"') and b"Sync finished in " in line:
                    self._finished(orjson.loads(line)["log"]["message"])

    def _finished(self, message: str) -> None:
        found = _FINISHING.search(message)
        if found is not None:
            self.finishing_seconds = float(found[1])

    def _state(self, message: dict[str, Any]) -> None:
        state = message["state"]
        self.states += 1
        stats = state.get("destinationStats") or {}
        self.committed_records += float(stats.get("recordCount", 0))
        source_count = (state.get("sourceStats") or {}).get("recordCount")
        if source_count is not None and source_count != stats.get("recordCount"):
            self.problems.append(
                f"destinationStats {stats.get('recordCount')} != sourceStats {source_count}"
            )
        cursor = int(state.get("global", {}).get("shared_state", {}).get("cursor", -1))
        if cursor <= self.last_cursor:
            self.problems.append(f"STATE out of order: cursor {cursor} after {self.last_cursor}")
        self.last_cursor = cursor


@dataclass
class ProcessMeasure:
    exit_code: int
    wall_seconds: float
    user_seconds: float
    system_seconds: float
    peak_rss_bytes: int  # max of the sampled tree RSS and the tree's summed VmHWM
    sampled_peak_rss_bytes: int
    high_water_rss_bytes: int
    samples: int
    output: StdoutSummary
    # RSS over the run, at most TIMELINE_POINTS evenly spaced samples (results.json only).
    rss_timeline: list[tuple[float, int]] = field(default_factory=list)

    # CPU of the process tree from the psutil samples (misses the last interval; counts
    # grandchildren that the child did not reap, e.g. the connector under py-spy).
    sampled_cpu_seconds: float = 0.0

    @property
    def cpu_seconds(self) -> float:
        return max(self.user_seconds + self.system_seconds, self.sampled_cpu_seconds)


def _high_water_mark(pid: int) -> int:
    """The process's peak RSS so far (VmHWM), in bytes; 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class RssSampler:
    """Samples the RSS and the RSS high-water mark of a process tree until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self.high_water: dict[int, int] = {}
        self.samples = 0
        self.timeline: list[tuple[float, int]] = []  # (seconds since start, tree RSS)
        self.cpu: dict[int, float] = {}  # last user + system seconds seen, per process
        self._started = time.perf_counter()
        try:
            self._process: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            self._process = None
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        process = self._process
        if process is None:
            return
        try:
            tree = [process, *process.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for member in tree:
            try:
                total += member.memory_info().rss
            except psutil.Error:
                continue
            try:
                times = member.cpu_times()
                self.cpu[member.pid] = times.user + times.system
            except psutil.Error:
                pass
            mark = _high_water_mark(member.pid)
            self.high_water[member.pid] = max(self.high_water.get(member.pid, 0), mark)
        self.samples += 1
        self.peak = max(self.peak, total)
        self.timeline.append((time.perf_counter() - self._started, total))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(
    command: Sequence[str],
    stdin: IO[bytes] | int | None,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    sample_seconds: float = 0.05,
) -> ProcessMeasure:
    """Run `command` to its end with `stdin`; stdout goes to `log_path` (and is summarised),
    stderr to the same path with the suffix `.stderr`."""
    output = StdoutSummary()
    with log_path.open("wb") as log, log_path.with_suffix(".stderr").open("wb") as errors:
        started = time.perf_counter()
        child = subprocess.Popen(
            list(command), stdin=stdin, stdout=subprocess.PIPE, stderr=errors, cwd=cwd, env=env
        )
        sampler = RssSampler(child.pid, sample_seconds)
        assert child.stdout is not None
        reader = threading.Thread(
            target=output.read, args=(child.stdout, log), name="stdout-reader", daemon=True
        )
        reader.start()
        # Reap the child ourselves: wait4 gives its exact CPU time.
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        reader.join()
        child.stdout.close()
    high_water = sum(sampler.high_water.values())
    return ProcessMeasure(
        exit_code=child.returncode,
        wall_seconds=wall,
        user_seconds=usage.ru_utime,
        system_seconds=usage.ru_stime,
        peak_rss_bytes=max(sampler.peak, high_water),
        sampled_peak_rss_bytes=sampler.peak,
        high_water_rss_bytes=high_water,
        samples=sampler.samples,
        output=output,
        rss_timeline=_thin(sampler.timeline, TIMELINE_POINTS),
        sampled_cpu_seconds=sum(sampler.cpu.values()),
    )


def _thin(points: list[tuple[float, int]], limit: int) -> list[tuple[float, int]]:
    if len(points) <= limit:
        return points
    step = len(points) / limit
    return [points[int(index * step)] for index in range(limit)] + [points[-1]]


@dataclass
class StartupMeasure:
    runs: int
    median_seconds: float
    min_seconds: float
    max_seconds: float
    median_cpu_seconds: float
    median_peak_rss_bytes: int


def compile_bytecode(python: str, package: Path) -> None:
    """Write `package`'s bytecode, as the image's `pip install .` does.

    The development venv installs the package editable, and with PYTHONDONTWRITEBYTECODE set (as
    in the image, and on the machine of README's figures) nothing else writes its bytecode: every
    process of the benchmark would compile the connector's modules again, ≈0.05 s of CPU per sync
    that the image never pays.
    Python checks each file's modification time, so a stale file is never used.
    """
    subprocess.run([python, "-m", "compileall", "-q", str(package)], check=True)


def measure_startup(
    command: Sequence[str], cwd: Path, env: dict[str, str], log_path: Path, runs: int
) -> StartupMeasure:
    """Run a short command (`spec`) `runs` times; its wall time is the connector's start-up."""
    walls: list[float] = []
    cpus: list[float] = []
    peaks: list[int] = []
    for _ in range(runs):
        measure = run_measured(command, subprocess.DEVNULL, cwd, env, log_path)
        if measure.exit_code != 0:
            details = "; ".join(measure.output.problems) or f"see {log_path}"
            raise RuntimeError(f"{' '.join(command)} exited with {measure.exit_code}: {details}")
        walls.append(measure.wall_seconds)
        cpus.append(measure.cpu_seconds)
        peaks.append(measure.peak_rss_bytes)
    return StartupMeasure(
        runs=runs,
        median_seconds=statistics.median(walls),
        min_seconds=min(walls),
        max_seconds=max(walls),
        median_cpu_seconds=statistics.median(cpus),
        median_peak_rss_bytes=int(statistics.median(peaks)),
    )
