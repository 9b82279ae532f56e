"""Summarises a py-spy `--format raw --threads` profile: where the samples went, by thread group
and by function (self time, and inclusive time counting each stack once)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")
_THREAD_SUFFIX = re.compile(r"_\d+$")


def _function(frame: str) -> str:
    """`name (path/file.py:123)` without the line number."""
    return _LINE_NUMBER.sub(")", frame.strip())


# Phases of a `write` run, by the first of these functions found on a main-thread stack.
PHASES: tuple[tuple[str, str], ...] = (
    ("start-up: imports", "_find_and_load ("),
    ("record loop (Sync._consume)", "Sync._consume ("),
    ("end of input (Sync._finish)", "Sync._finish ("),
)


def _phase(thread: str, functions: list[str]) -> str:
    if thread != "MainThread":
        return f"thread {thread}"
    for label, marker in PHASES:
        if any(function.startswith(marker) for function in functions):
            return f"MainThread: {label}"
    return "MainThread: other"


@dataclass
class ProfileSummary:
    samples: int
    by_thread: Counter[str]
    self_time: Counter[str]
    inclusive: Counter[str]
    self_by_thread: dict[str, Counter[str]]
    by_phase: Counter[str]

    def render(self, top: int = 15) -> str:
        total = max(self.samples, 1)
        out = [f"{self.samples} samples of threads that were running (not idle)", ""]
        out.append("| thread / phase | % of samples |")
        out.append("|---|---:|")
        for phase, count in self.by_phase.most_common():
            out.append(f"| {phase} | {100 * count / total:.1f} |")
        for title, counter in (("self", self.self_time), ("inclusive", self.inclusive)):
            out += ["", f"| function ({title}) | % of samples |", "|---|---:|"]
            for function, count in counter.most_common(top):
                out.append(f"| `{function}` | {100 * count / total:.1f} |")
        for thread, count in self.by_thread.most_common():
            if count < total / 10:
                continue
            out += ["", f"| {thread}: function (self) | % of all samples |", "|---|---:|"]
            for function, own in self.self_by_thread[thread].most_common(top):
                out.append(f"| `{function}` | {100 * own / total:.1f} |")
        return "\n".join(out)


def summarise(path: Path) -> ProfileSummary:
    by_thread: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_by_thread: dict[str, Counter[str]] = {}
    by_phase: Counter[str] = Counter()
    samples = 0
    for raw in path.read_text(errors="replace").splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[0].startswith("process "):
            frames = frames[1:]
        # With --threads the first frame is `thread (<tid>): <thread name>`.
        if not frames or not frames[0].startswith("thread ("):
            continue
        thread = _THREAD_SUFFIX.sub("", frames[0].partition(": ")[2]) or "?"
        functions = [_function(frame) for frame in frames[1:]] or [thread]
        samples += count
        by_thread[thread] += count
        self_time[functions[-1]] += count
        self_by_thread.setdefault(thread, Counter())[functions[-1]] += count
        by_phase[_phase(thread, functions)] += count
        for function in set(functions):
            inclusive[function] += count
    return ProfileSummary(samples, by_thread, self_time, inclusive, self_by_thread, by_phase)
