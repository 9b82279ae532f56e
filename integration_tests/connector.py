"""Run the connector the way an orchestrator does, and build Airbyte protocol messages.

* :func:`run_connector` runs ``python main.py <command> --config F [--catalog F]`` to completion
  in a minimal environment (PATH and a fresh HOME; no ``AWS_*`` from the parent) and returns a
  :class:`ConnectorRun` with stdout parsed into messages.
* :func:`start_write` / :func:`start_connector` start it and let the test feed stdin line by line
  while reading stdout messages as they arrive (:class:`ConnectorProcess`).
* :func:`record`, :func:`stream_state`, :func:`global_state`, :func:`legacy_state`,
  :func:`configured_catalog`, ... build the JSON dicts.
* :func:`build_config` builds the connector's config (for the tests' ``make_config`` fixture, the
  benchmark and the demo alike).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from integration_tests.s3_server import MotoServer

REPO_ROOT = Path(__file__).resolve().parent.parent
MAIN_PY = REPO_ROOT / "main.py"

Message = dict[str, Any]
StdinLine = bytes | str | Mapping[str, Any]
StdinInput = Iterable[StdinLine] | bytes | None

DEFAULT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": True,
    "properties": {},
}

_DESTINATION_SYNC_MODES = ("append", "overwrite", "append_dedup", "overwrite_dedup")
_SOURCE_SYNC_MODES = ("full_refresh", "incremental")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def parse_stdout(stdout: str) -> tuple[list[Message], list[str]]:
    """Split stdout into JSON-object messages and every other non-blank line (in order)."""
    messages: list[Message] = []
    non_json: list[str] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            non_json.append(line)
            continue
        if isinstance(parsed, dict):
            messages.append(parsed)
        else:
            non_json.append(line)
    return messages, non_json


@dataclass
class ConnectorRun:
    """A finished connector process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    messages: list[Message] = field(default_factory=list)
    non_json_lines: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @classmethod
    def from_output(
        cls, args: list[str], returncode: int, stdout: str, stderr: str, duration_s: float = 0.0
    ) -> ConnectorRun:
        messages, non_json = parse_stdout(stdout)
        return cls(args, returncode, stdout, stderr, messages, non_json, duration_s)

    def of_type(self, message_type: str) -> list[Message]:
        """Whole messages of one ``type`` (``"STATE"``, ``"LOG"``, ``"TRACE"``, ...), in order."""
        return [m for m in self.messages if m.get("type") == message_type]

    def states(self) -> list[Message]:
        """The ``state`` payloads of the STATE messages, in order."""
        return [m["state"] for m in self.of_type("STATE")]

    def traces(self, trace_type: str | None = None) -> list[Message]:
        """The ``trace`` payloads, optionally only those of one trace ``type``."""
        traces = [m["trace"] for m in self.of_type("TRACE")]
        return [t for t in traces if trace_type is None or t.get("type") == trace_type]

    def trace_errors(self) -> list[Message]:
        """``trace.error`` payloads (``message``, ``internal_message``, ``failure_type``, ...)."""
        return [t.get("error", {}) for t in self.traces("ERROR")]

    def connection_status(self) -> Message | None:
        """The ``connectionStatus`` payload (``status``, ``message``) of the last such message."""
        statuses = self.of_type("CONNECTION_STATUS")
        return statuses[-1]["connectionStatus"] if statuses else None

    def spec(self) -> Message | None:
        specs = self.of_type("SPEC")
        return specs[-1]["spec"] if specs else None

    def logs(self, level: str | None = None) -> list[Message]:
        """``log`` payloads (``level``, ``message``), optionally of one level."""
        logs = [m["log"] for m in self.of_type("LOG")]
        return [entry for entry in logs if level is None or entry.get("level") == level]

    def log_text(self) -> str:
        """All LOG messages and stderr in one string (for ``in`` assertions)."""
        return "\n".join([*(str(entry.get("message", "")) for entry in self.logs()), self.stderr])

    def describe(self, tail: int = 4000) -> str:
        """A compact summary for assertion messages."""
        types = [m.get("type") for m in self.messages]
        return (
            f"command {self.args} exited {self.returncode} after {self.duration_s:.1f}s\n"
            f"message types: {types[:50]}{' ...' if len(types) > 50 else ''}\n"
            f"trace errors: {self.trace_errors()}\n"
            f"non-JSON stdout lines: {self.non_json_lines[:10]}\n"
            f"stderr (tail):\n{self.stderr[-tail:]}"
        )

    def assert_success(self) -> ConnectorRun:
        """Raise AssertionError (with a summary) unless the exit code is 0 and no TRACE ERROR."""
        if self.returncode != 0 or self.trace_errors():
            raise AssertionError(self.describe())
        return self


class ConnectorTimeout(AssertionError):
    """The connector did not finish in time; carries what it printed so far."""

    def __init__(self, message: str, run: ConnectorRun) -> None:
        super().__init__(f"{message}\n{run.describe()}")
        self.run = run


# ---------------------------------------------------------------------------------------------
# Process plumbing
# ---------------------------------------------------------------------------------------------


def minimal_env(
    env: Mapping[str, str] | None = None, home: str | Path | None = None
) -> dict[str, str]:
    """PATH, HOME (a fresh directory by default, so no ~/.aws leaks in) and ``env``.

    Nothing else of the parent environment is inherited: in particular no ``AWS_*`` variables.
    """
    result = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home) if home is not None else os.environ.get("HOME", "/tmp"),
    }
    if env:
        result.update(env)
    return result


def encode_line(line: StdinLine) -> bytes:
    """A dict becomes one JSON line; str/bytes get a trailing newline if they lack one."""
    if isinstance(line, Mapping):
        data = json.dumps(line, separators=(",", ":")).encode()
    elif isinstance(line, str):
        data = line.encode()
    else:
        data = bytes(line)
    return data if data.endswith(b"\n") else data + b"\n"


def iter_stdin_chunks(stdin: StdinInput) -> Iterable[bytes]:
    if stdin is None:
        return
    if isinstance(stdin, bytes | bytearray):
        yield bytes(stdin)
        return
    batch: list[bytes] = []
    size = 0
    for line in stdin:
        encoded = encode_line(line)
        batch.append(encoded)
        size += len(encoded)
        if size >= 1 << 16:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


class _Workspace:
    """A temp dir holding config.json, catalog.json and the child's HOME."""

    def __init__(self, config: Mapping[str, Any] | None, catalog: Mapping[str, Any] | None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="connector-run-"))
        self.home = self.path / "home"
        self.home.mkdir()
        self.config_path: Path | None = None
        self.catalog_path: Path | None = None
        if config is not None:
            self.config_path = self.path / "config.json"
            self.config_path.write_text(json.dumps(config))
        if catalog is not None:
            self.catalog_path = self.path / "catalog.json"
            self.catalog_path.write_text(json.dumps(catalog))

    def command(self, args: Sequence[str], entrypoint: str | Path = MAIN_PY) -> list[str]:
        cmd = [sys.executable, str(entrypoint), *args]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        if self.catalog_path is not None:
            cmd += ["--catalog", str(self.catalog_path)]
        return cmd

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _drain(stream: IO[bytes], sink: Callable[[bytes], None]) -> None:
    try:
        for line in iter(stream.readline, b""):
            sink(line)
    except (OSError, ValueError):
        pass


def _feed(stream: IO[bytes], stdin: StdinInput) -> None:
    try:
        for chunk in iter_stdin_chunks(stdin):
            stream.write(chunk)
        stream.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the connector exited (or closed stdin) early: its exit code tells the story
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()


def run_connector(
    args: Sequence[str],
    *,
    config: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
    stdin_lines: StdinInput = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    entrypoint: str | Path = MAIN_PY,
) -> ConnectorRun:
    """Run ``python main.py *args --config F [--catalog F]`` to completion.

    ``stdin_lines`` may be a list (or any iterable, even a generator) of dicts (one JSON line
    each), str or bytes lines, or one bytes blob written as is; None means an empty stdin. The
    child runs with cwd = repo root and :func:`minimal_env` plus ``env``. On timeout the process
    group is killed and :class:`ConnectorTimeout` is raised with the output so far.
    ``entrypoint`` replaces main.py (only the infrastructure's own tests need that).
    """
    workspace = _Workspace(config, catalog)
    cmd = workspace.command(args, entrypoint)
    stdout_chunks: list[bytes] = []
    stderr_chunks: list[bytes] = []
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=minimal_env(env, home=workspace.home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        threads = [
            threading.Thread(target=_feed, args=(process.stdin, stdin_lines), daemon=True),
            threading.Thread(
                target=_drain, args=(process.stdout, stdout_chunks.append), daemon=True
            ),
            threading.Thread(
                target=_drain, args=(process.stderr, stderr_chunks.append), daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
        for thread in threads:
            thread.join(timeout=10)
        run = ConnectorRun.from_output(
            list(args),
            process.returncode if process.returncode is not None else -9,
            b"".join(stdout_chunks).decode("utf-8", "replace"),
            b"".join(stderr_chunks).decode("utf-8", "replace"),
            time.monotonic() - started,
        )
        if timed_out:
            raise ConnectorTimeout(f"connector did not finish within {timeout} s", run)
        return run
    finally:
        workspace.cleanup()


def run_spec(env: Mapping[str, str] | None = None, timeout: float = 60) -> ConnectorRun:
    return run_connector(["spec"], env=env, timeout=timeout)


def run_check(
    config: Mapping[str, Any], env: Mapping[str, str] | None = None, timeout: float = 120
) -> ConnectorRun:
    return run_connector(["check"], config=config, env=env, timeout=timeout)


def run_write(
    config: Mapping[str, Any],
    catalog: Mapping[str, Any],
    stdin_lines: StdinInput,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> ConnectorRun:
    return run_connector(
        ["write"], config=config, catalog=catalog, stdin_lines=stdin_lines, env=env, timeout=timeout
    )


# ---------------------------------------------------------------------------------------------
# Streaming variant
# ---------------------------------------------------------------------------------------------

_EOF = object()


class ConnectorProcess:
    """A running connector: write stdin lines one at a time, read stdout messages as they come.

    A reader thread puts each stdout line on a queue; :meth:`next_message` / :meth:`wait_for`
    pop from it with a timeout. Everything read is also kept (``stdout_lines``) so :meth:`finish`
    returns a complete :class:`ConnectorRun`. Use as a context manager to be sure it is killed.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        config: Mapping[str, Any] | None = None,
        catalog: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        entrypoint: str | Path = MAIN_PY,
    ) -> None:
        self.args = list(args)
        self._workspace = _Workspace(config, catalog)
        self._started = time.monotonic()
        self.process = subprocess.Popen(
            self._workspace.command(args, entrypoint),
            cwd=REPO_ROOT,
            env=minimal_env(env, home=self._workspace.home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._lines: queue.Queue[object] = queue.Queue()
        self._stderr_chunks: list[bytes] = []
        self.stdout_lines: list[str] = []
        """Every stdout line consumed so far via next_line/next_message/wait_for (in order)."""
        self.messages: list[Message] = []
        """Every JSON-object message consumed so far."""
        self.non_json_lines: list[str] = []
        self._eof = False
        self._stdout_thread = threading.Thread(
            target=self._read_stdout, args=(self.process.stdout,), daemon=True
        )
        self._stderr_thread = threading.Thread(
            target=_drain, args=(self.process.stderr, self._stderr_chunks.append), daemon=True
        )
        self._stdout_thread.start()
        self._stderr_thread.start()

    def _read_stdout(self, stream: IO[bytes]) -> None:
        try:
            _drain(stream, lambda line: self._lines.put(line.decode("utf-8", "replace")))
        finally:
            self._lines.put(_EOF)

    # -- stdin ---------------------------------------------------------------------------------

    def send(self, line: StdinLine) -> None:
        """Write one line (dict -> JSON) and flush it to the connector."""
        self._stdin.write(encode_line(line))
        self._stdin.flush()

    def send_many(self, lines: Iterable[StdinLine]) -> None:
        for chunk in iter_stdin_chunks(lines):
            self._stdin.write(chunk)
        self._stdin.flush()

    def close_stdin(self) -> None:
        """Signal end of input (EOF), as the orchestrator does when the source is done."""
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()

    # -- stdout --------------------------------------------------------------------------------

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr_chunks).decode("utf-8", "replace")

    def next_line(self, timeout: float = 30) -> str | None:
        """The next stdout line (without newline), or None at EOF; TimeoutError if none in time."""
        if self._eof:
            return None
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no stdout line within {timeout} s; stderr so far:\n{self.stderr[-4000:]}"
            ) from None
        if item is _EOF:
            self._eof = True
            return None
        line = str(item).rstrip("\r\n")
        self.stdout_lines.append(line)
        if line.strip():
            messages, non_json = parse_stdout(line)
            self.messages.extend(messages)
            self.non_json_lines.extend(non_json)
        return line

    def next_message(self, timeout: float = 30) -> Message | None:
        """The next stdout JSON object (skipping other lines), or None at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            messages, _ = parse_stdout(line)
            if messages:
                return messages[0]

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 30) -> Message:
        """Read messages until one satisfies ``predicate``; TimeoutError / EOFError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no matching message within {timeout} s; stderr:\n{self.stderr[-4000:]}"
                )
            message = self.next_message(timeout=remaining)
            if message is None:
                raise EOFError(
                    f"stdout closed before a matching message (exit code {self.process.poll()});"
                    f"\nstderr:\n{self.stderr[-4000:]}"
                )
            if predicate(message):
                return message

    def wait_for_type(self, message_type: str, timeout: float = 30) -> Message:
        """Read until a message of ``type`` (e.g. ``"STATE"``) arrives and return it."""
        return self.wait_for(lambda m: m.get("type") == message_type, timeout=timeout)

    def assert_no_message(self, within: float = 0.5) -> None:
        """Assert nothing arrives on stdout within ``within`` seconds (e.g. no early STATE)."""
        try:
            line = self.next_line(timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected stdout line: {line!r}")

    # -- lifecycle -----------------------------------------------------------------------------

    def finish(self, timeout: float = 120) -> ConnectorRun:
        """Close stdin, wait for exit, read the rest of stdout; returns the whole run.

        On timeout the process group is killed and :class:`ConnectorTimeout` raised.
        """
        self.close_stdin()
        deadline = time.monotonic() + timeout
        timed_out = False
        while not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            try:
                self.next_line(timeout=remaining)
            except TimeoutError:
                timed_out = True
                break
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        if timed_out:
            self.kill()
        self._stderr_thread.join(timeout=10)
        run = ConnectorRun(
            args=self.args,
            returncode=self.process.returncode if self.process.returncode is not None else -9,
            stdout="".join(f"{line}\n" for line in self.stdout_lines),
            stderr=self.stderr,
            messages=list(self.messages),
            non_json_lines=list(self.non_json_lines),
            duration_s=time.monotonic() - self._started,
        )
        self._workspace.cleanup()
        if timed_out:
            raise ConnectorTimeout(f"connector did not finish within {timeout} s", run)
        return run

    def kill(self) -> None:
        """SIGKILL the whole process group (idempotent)."""
        if self.process.poll() is None:
            _kill_group(self.process)
        self.close_stdin()

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Send a signal to the connector's process group (e.g. to test graceful shutdown)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def __enter__(self) -> ConnectorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
        self._workspace.cleanup()


def start_connector(
    args: Sequence[str],
    *,
    config: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    entrypoint: str | Path = MAIN_PY,
) -> ConnectorProcess:
    return ConnectorProcess(args, config=config, catalog=catalog, env=env, entrypoint=entrypoint)


def start_write(
    config: Mapping[str, Any],
    catalog: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
) -> ConnectorProcess:
    """Start ``main.py write``; feed it with ``send`` and read with ``wait_for_type``."""
    return ConnectorProcess(["write"], config=config, catalog=catalog, env=env)


# ---------------------------------------------------------------------------------------------
# Message builders
# ---------------------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def stream_descriptor(name: str, namespace: str | None = None) -> dict[str, str]:
    descriptor = {"name": name}
    if namespace is not None:
        descriptor["namespace"] = namespace
    return descriptor


def record(
    stream: str,
    data: Mapping[str, Any],
    emitted_at: int | None = None,
    namespace: str | None = None,
    *,
    meta: Mapping[str, Any] | None = None,
) -> Message:
    """A RECORD message (``emitted_at`` defaults to now, in ms)."""
    body: dict[str, Any] = {
        "stream": stream,
        "data": dict(data),
        "emitted_at": now_ms() if emitted_at is None else emitted_at,
    }
    if namespace is not None:
        body["namespace"] = namespace
    if meta is not None:
        body["meta"] = dict(meta)
    return {"type": "RECORD", "record": body}


def _with_source_stats(state: dict[str, Any], record_count: float | None) -> dict[str, Any]:
    if record_count is not None:
        state["sourceStats"] = {"recordCount": float(record_count)}
    return state


def stream_state(
    stream: str,
    state: Any,
    namespace: str | None = None,
    *,
    record_count: float | None = None,
) -> Message:
    """A STREAM STATE message (``record_count`` sets ``sourceStats.recordCount``)."""
    return {
        "type": "STATE",
        "state": _with_source_stats(
            {
                "type": "STREAM",
                "stream": {
                    "stream_descriptor": stream_descriptor(stream, namespace),
                    "stream_state": state,
                },
            },
            record_count,
        ),
    }


StreamKey = str | tuple[str, str | None]
"""A stream name, or ``(name, namespace)``."""


def global_state(
    shared_state: Any,
    stream_states: Mapping[StreamKey, Any] | None = None,
    *,
    record_count: float | None = None,
) -> Message:
    """A GLOBAL STATE message; ``stream_states`` maps name or (name, namespace) to the state."""
    per_stream = []
    for key, value in (stream_states or {}).items():
        name, namespace = (key, None) if isinstance(key, str) else key
        per_stream.append(
            {"stream_descriptor": stream_descriptor(name, namespace), "stream_state": value}
        )
    return {
        "type": "STATE",
        "state": _with_source_stats(
            {
                "type": "GLOBAL",
                "global": {"shared_state": shared_state, "stream_states": per_stream},
            },
            record_count,
        ),
    }


def legacy_state(data: Any, *, explicit_type: bool = False) -> Message:
    """A LEGACY STATE message (no ``type`` unless ``explicit_type``: absent means LEGACY)."""
    state: dict[str, Any] = {"data": data}
    if explicit_type:
        state["type"] = "LEGACY"
    return {"type": "STATE", "state": state}


def stream_status(
    stream: str,
    status: str = "COMPLETE",
    namespace: str | None = None,
    emitted_at: int | None = None,
) -> Message:
    """A TRACE STREAM_STATUS message (STARTED, RUNNING, COMPLETE, INCOMPLETE)."""
    return {
        "type": "TRACE",
        "trace": {
            "type": "STREAM_STATUS",
            "emitted_at": float(now_ms() if emitted_at is None else emitted_at),
            "stream_status": {
                "stream_descriptor": stream_descriptor(stream, namespace),
                "status": status,
            },
        },
    }


def log_message(message: str, level: str = "INFO") -> Message:
    return {"type": "LOG", "log": {"level": level, "message": message}}


def configured_stream(
    name: str,
    *,
    namespace: str | None = None,
    json_schema: Mapping[str, Any] | None = None,
    destination_sync_mode: str = "append",
    sync_mode: str | None = None,
    generation_id: int | None = None,
    minimum_generation_id: int | None = None,
    sync_id: int | None = None,
    primary_key: list[list[str]] | None = None,
    cursor_field: list[str] | None = None,
) -> Message:
    """One ConfiguredAirbyteStream.

    ``sync_mode`` (the source side) defaults to ``full_refresh`` for overwrite and
    ``incremental`` otherwise. The generation fields are omitted when None.
    """
    if destination_sync_mode not in _DESTINATION_SYNC_MODES:
        raise ValueError(f"unknown destination_sync_mode {destination_sync_mode!r}")
    if sync_mode is None:
        sync_mode = (
            "full_refresh" if destination_sync_mode.startswith("overwrite") else "incremental"
        )
    if sync_mode not in _SOURCE_SYNC_MODES:
        raise ValueError(f"unknown sync_mode {sync_mode!r}")
    stream: dict[str, Any] = {
        "name": name,
        "json_schema": dict(json_schema) if json_schema is not None else dict(DEFAULT_JSON_SCHEMA),
        "supported_sync_modes": list(_SOURCE_SYNC_MODES),
    }
    if namespace is not None:
        stream["namespace"] = namespace
    configured: dict[str, Any] = {
        "stream": stream,
        "sync_mode": sync_mode,
        "destination_sync_mode": destination_sync_mode,
    }
    if primary_key is not None:
        configured["primary_key"] = primary_key
    if cursor_field is not None:
        configured["cursor_field"] = cursor_field
    for key, value in (
        ("generation_id", generation_id),
        ("minimum_generation_id", minimum_generation_id),
        ("sync_id", sync_id),
    ):
        if value is not None:
            configured[key] = value
    return configured


def configured_catalog(
    streams: Sequence[str | Mapping[str, Any]],
    sync_mode: str | None = None,
    json_schema: Mapping[str, Any] | None = None,
    *,
    destination_sync_mode: str | None = None,
    namespace: str | None = None,
    generation_id: int | None = None,
    minimum_generation_id: int | None = None,
    sync_id: int | None = None,
) -> Message:
    """A ConfiguredAirbyteCatalog.

    ``streams`` items are stream names, or dicts that are either complete configured streams
    (they have a ``"stream"`` key; used as is) or keyword overrides for :func:`configured_stream`
    (``{"name": "users", "namespace": "crm", "destination_sync_mode": "overwrite", ...}``).
    The other arguments are defaults for every stream. ``destination_sync_mode`` is
    append|overwrite (default append); ``sync_mode`` is full_refresh|incremental (derived when
    omitted). For convenience ``sync_mode="append"``/``"overwrite"`` is read as the destination
    sync mode.
    """
    if sync_mode in _DESTINATION_SYNC_MODES:
        if destination_sync_mode is not None and destination_sync_mode != sync_mode:
            raise ValueError("sync_mode and destination_sync_mode disagree")
        destination_sync_mode, sync_mode = sync_mode, None
    defaults: dict[str, Any] = {
        "namespace": namespace,
        "json_schema": json_schema,
        "destination_sync_mode": destination_sync_mode or "append",
        "sync_mode": sync_mode,
        "generation_id": generation_id,
        "minimum_generation_id": minimum_generation_id,
        "sync_id": sync_id,
    }
    configured: list[Message] = []
    for item in streams:
        if isinstance(item, str):
            configured.append(configured_stream(item, **defaults))
        elif "stream" in item:
            configured.append(dict(item))
        else:
            overrides = dict(item)
            name = overrides.pop("name")
            configured.append(configured_stream(name, **{**defaults, **overrides}))
    return {"streams": configured}


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def access_key_credentials(access_key_id: str, secret_access_key: str) -> dict[str, str]:
    return {
        "auth_type": "access_key",
        "access_key_id": access_key_id,
        "secret_access_key": secret_access_key,
    }


def iam_role_credentials(role_arn: str, external_id: str | None = None) -> dict[str, str]:
    """Base credentials for AssumeRole come from the env: pass them with :func:`aws_env`."""
    credentials = {"auth_type": "iam_role", "role_arn": role_arn}
    if external_id is not None:
        credentials["external_id"] = external_id
    return credentials


def aws_env(
    access_key_id: str, secret_access_key: str, session_token: str | None = None
) -> dict[str, str]:
    """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (+ token) for the connector's env."""
    env = {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key}
    if session_token is not None:
        env["AWS_SESSION_TOKEN"] = session_token
    return env


def build_config(
    bucket: str,
    path: str = "",
    format: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
    *,
    server: MotoServer | None = None,
    endpoint: str | None = None,
    region: str = "us-east-1",
    **extra: Any,
) -> dict[str, Any]:
    """A connector config dict; ``extra`` keys (stream_prefix, file_size_mb, ...) are added.

    ``format`` defaults to JSONL. With ``server``, ``endpoint`` defaults to the server's and
    ``credentials`` to the access keys of its admin user (``Allow *``, created if needed), which
    stay valid if IAM enforcement is turned on later. Without a server, ``credentials`` are
    required and ``endpoint`` None means AWS itself (no ``s3_endpoint`` key).
    """
    if server is not None:
        if endpoint is None:
            endpoint = server.endpoint
        if credentials is None:
            admin = server.ensure_admin()
            credentials = access_key_credentials(admin.access_key_id, admin.secret_access_key)
    if credentials is None:
        raise TypeError("build_config() needs credentials when no server is given")
    config: dict[str, Any] = {
        "s3_bucket_name": bucket,
        "s3_bucket_path": path,
        "s3_bucket_region": region,
        "credentials": dict(credentials),
        "format": dict(format) if format is not None else {"format_type": "JSONL"},
    }
    if endpoint is not None:
        config["s3_endpoint"] = endpoint
    config.update(extra)
    return config


class MakeConfig(Protocol):
    """Type of the ``make_config`` fixture: :func:`build_config` bound to the test server."""

    def __call__(
        self,
        bucket: str,
        path: str = "",
        format: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]: ...
