"""A real sync: Airbyte's faker source (PyPI `airbyte-source-faker`) piped into this destination.

Run it from the repository root with the repository's virtualenv (`make demo` does the first)::

    .venv/bin/python -m demo.run_demo            # 1000 users/purchases + 100 products
    .venv/bin/python -m demo.run_demo --count 5000

What it does, the way the Airbyte platform wires a sync:

1. creates (or reuses) `.demo/source-venv`, a separate virtualenv holding `airbyte-source-faker`
   (the source's dependencies never mix with ours);
2. starts a moto server on a free loopback port and creates a bucket (the integration tests'
   launcher, `integration_tests/s3_server.py`; the destination's config comes from
   `integration_tests/connector.py:build_config`, as in the tests and the benchmark);
3. writes the faker config, runs `source-faker discover`, and configures every stream it offers
   (full_refresh → append);
4. runs `source-faker read` and `python main.py write` as two processes joined by OS pipes:
   source stdout → `tee` (keeps a copy of exactly what the destination received, for the checks)
   → destination stdin, i.e. the shell pipeline `source-faker read … | tee … | python main.py
   write …`;
5. lists the objects written, counts the records in them per stream next to what the source
   emitted, compares every record and every state, prints the first lines of one object per
   stream, and exits 1 if anything does not match.

Only the package registry is needed (for the first run's `pip install`); everything else is local.
The functions are importable: integration_tests/test_real_source.py runs the same pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integration_tests.connector import build_config
from integration_tests.s3_server import UNAUTHENTICATED_KEY_ID, MotoServer

REPO_ROOT = Path(__file__).resolve().parent.parent
MAIN_PY = REPO_ROOT / "main.py"
DEMO_DIR = REPO_ROOT / ".demo"
SOURCE_VENV = DEMO_DIR / "source-venv"
SOURCE_REQUIREMENT = "airbyte-source-faker==7.2.1"
SOURCE_SCRIPT = "source-faker"
INSTALLED_MARKER = ".installed-requirement"

BUCKET = "tarsal-demo"
BUCKET_PATH = "faker"

Message = dict[str, Any]


def say(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------
# 1. The source's own virtualenv
# ---------------------------------------------------------------------------------------------


def ensure_source_venv(
    venv: Path = SOURCE_VENV,
    requirement: str = SOURCE_REQUIREMENT,
    python: str = sys.executable,
    timeout: float = 1200,
) -> Path:
    """The `source-faker` script of a virtualenv holding `requirement` (created if needed).

    A venv is reused only if a previous install completed (a marker file records the requirement),
    so an interrupted install is redone from scratch rather than half-used.
    """
    script = venv / "bin" / SOURCE_SCRIPT
    marker = venv / INSTALLED_MARKER
    if script.exists() and marker.exists() and marker.read_text().strip() == requirement:
        say(f"reusing {_show(venv)} ({requirement})")
        return script
    say(f"creating {_show(venv)} and installing {requirement} from the package index ...")
    started = time.monotonic()
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {**_clean_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0 or not script.exists():
        raise RuntimeError(
            f"pip install {requirement} failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    marker.write_text(requirement + "\n")
    say(f"installed in {time.monotonic() - started:.0f} s")
    return script


# ---------------------------------------------------------------------------------------------
# 3. Source config and catalogs (step 2, the local S3, is MotoServer: see main())
# ---------------------------------------------------------------------------------------------


def faker_config(count: int, seed: int = 42, records_per_slice: int = 100) -> dict[str, Any]:
    """`count` users and purchases (products are always 100); a state every `records_per_slice`."""
    return {
        "count": count,
        "seed": seed,
        "records_per_slice": records_per_slice,
        "always_updated": True,
        "parallelism": 2,
    }


def parse_messages(output: bytes | str) -> list[Message]:
    """The JSON objects of a connector's stdout (other lines are ignored)."""
    text = output.decode() if isinstance(output, bytes) else output
    messages = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict) and "type" in parsed:
                messages.append(parsed)
    return messages


def discover(source: Path, config_path: Path, timeout: float = 120) -> dict[str, Any]:
    """`source-faker discover`: the source's catalog."""
    result = subprocess.run(
        [str(source), "discover", "--config", str(config_path)],
        capture_output=True,
        timeout=timeout,
        env=_clean_env(),
        cwd=config_path.parent,
    )
    catalogs = [m["catalog"] for m in parse_messages(result.stdout) if m["type"] == "CATALOG"]
    if result.returncode != 0 or not catalogs:
        raise RuntimeError(
            f"discover failed (exit {result.returncode}):\n{result.stdout.decode()[-3000:]}"
            f"{result.stderr.decode()[-3000:]}"
        )
    catalog: dict[str, Any] = catalogs[-1]
    return catalog


def configure_catalog(
    catalog: Mapping[str, Any],
    sync_mode: str = "full_refresh",
    destination_sync_mode: str = "append",
) -> dict[str, Any]:
    """Every stream of `catalog`, with the source's primary key and (if incremental) cursor."""
    streams = []
    for stream in catalog["streams"]:
        if sync_mode not in stream.get("supported_sync_modes", ["full_refresh"]):
            raise ValueError(f"stream {stream['name']} does not support {sync_mode}")
        configured: dict[str, Any] = {
            "stream": stream,
            "sync_mode": sync_mode,
            "destination_sync_mode": destination_sync_mode,
        }
        if stream.get("source_defined_primary_key"):
            configured["primary_key"] = stream["source_defined_primary_key"]
        if sync_mode == "incremental" and stream.get("default_cursor_field"):
            configured["cursor_field"] = stream["default_cursor_field"]
        streams.append(configured)
    return {"streams": streams}


# ---------------------------------------------------------------------------------------------
# 4. The pipeline: source read | tee | destination write
# ---------------------------------------------------------------------------------------------


@dataclass
class PipelineRun:
    source_exit: int
    destination_exit: int
    received: list[Message]  # what the destination read on stdin (the source's stdout)
    emitted: list[Message]  # what the destination wrote on stdout
    source_stderr: str
    destination_stderr: str
    seconds: float


def _clean_env() -> dict[str, str]:
    """The parent environment without AWS credentials or another virtualenv's settings."""
    drop = ("AWS_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    return {key: value for key, value in os.environ.items() if not key.startswith(drop)}


def run_pipeline(
    source: Path,
    source_config: Path,
    catalog: Path,
    destination_config_path: Path,
    workdir: Path,
    python: str = sys.executable,
    timeout: float = 600,
) -> PipelineRun:
    """`source read | tee <copy> | python main.py write`, three processes joined by OS pipes."""
    workdir.mkdir(parents=True, exist_ok=True)
    tee = shutil.which("tee")
    if tee is None:
        raise RuntimeError("`tee` (coreutils) is needed to keep a copy of the source's output")
    copy_path = workdir / "source_stdout.jsonl"
    out_path = workdir / "destination_stdout.jsonl"
    source_err_path = workdir / "source_stderr.log"
    destination_err_path = workdir / "destination_stderr.log"
    env = _clean_env()
    started = time.monotonic()
    with (
        open(source_err_path, "wb") as source_err,
        open(out_path, "wb") as destination_out,
        open(destination_err_path, "wb") as destination_err,
    ):
        source_proc = subprocess.Popen(
            [str(source), "read", "--config", str(source_config), "--catalog", str(catalog)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=source_err,
            cwd=workdir,
            env=env,
        )
        tee_proc = subprocess.Popen(
            [tee, str(copy_path)], stdin=source_proc.stdout, stdout=subprocess.PIPE, env=env
        )
        assert source_proc.stdout is not None and tee_proc.stdout is not None
        source_proc.stdout.close()  # only tee holds the read end now: EOF reaches it
        destination_proc = subprocess.Popen(
            [
                python,
                str(MAIN_PY),
                "write",
                "--config",
                str(destination_config_path),
                "--catalog",
                str(catalog),
            ],
            stdin=tee_proc.stdout,
            stdout=destination_out,
            stderr=destination_err,
            cwd=REPO_ROOT,
            env=env,
        )
        tee_proc.stdout.close()
        processes = (source_proc, tee_proc, destination_proc)
        try:
            deadline = time.monotonic() + timeout
            for process in processes:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for process in processes:
                process.kill()
            raise
    return PipelineRun(
        source_exit=source_proc.returncode,
        destination_exit=destination_proc.returncode,
        received=parse_messages(copy_path.read_bytes()),
        emitted=parse_messages(out_path.read_bytes()),
        source_stderr=source_err_path.read_text(errors="replace"),
        destination_stderr=destination_err_path.read_text(errors="replace"),
        seconds=time.monotonic() - started,
    )


# ---------------------------------------------------------------------------------------------
# 5. What landed in S3, compared with what the source sent
# ---------------------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def stream_of_key(key: str, bucket_path: str = BUCKET_PATH) -> str:
    """`<bucket path>/<stream>/<file>` → stream (the demo's streams have no namespace)."""
    relative = key[len(bucket_path) + 1 :] if bucket_path else key
    return relative.rsplit("/", 1)[0]


def without_destination_stats(state: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key != "destinationStats"}


@dataclass
class SyncReport:
    """The comparison of one pipeline run with the objects in the bucket."""

    run: PipelineRun
    objects: dict[str, bytes]
    source_records: dict[str, list[Message]] = field(default_factory=dict)  # stream → records
    s3_lines: dict[str, list[Message]] = field(default_factory=dict)  # stream → parsed lines
    source_states: list[Message] = field(default_factory=list)
    destination_states: list[Message] = field(default_factory=list)
    records_before_state: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def compare(run: PipelineRun, objects: Mapping[str, bytes]) -> SyncReport:
    report = SyncReport(run=run, objects=dict(objects))
    problems = report.problems
    if run.source_exit != 0:
        problems.append(f"source exited {run.source_exit}: {run.source_stderr[-1000:]}")
    if run.destination_exit != 0:
        problems.append(f"destination exited {run.destination_exit}: {_error_of(run)}")

    since_state = 0
    for message in run.received:
        if message["type"] == "RECORD":
            record = message["record"]
            report.source_records.setdefault(record["stream"], []).append(record)
            since_state += 1
        elif message["type"] == "STATE":
            report.source_states.append(message["state"])
            report.records_before_state.append(since_state)
            since_state = 0
    report.destination_states = [m["state"] for m in run.emitted if m["type"] == "STATE"]

    for key, body in objects.items():
        lines = report.s3_lines.setdefault(stream_of_key(key), [])
        for number, line in enumerate(body.decode().splitlines(), 1):
            try:
                lines.append(json.loads(line))
            except ValueError:
                problems.append(f"{key} line {number} is not JSON: {line[:200]!r}")

    for stream in sorted(set(report.source_records) | set(report.s3_lines)):
        sent = report.source_records.get(stream, [])
        stored = report.s3_lines.get(stream, [])
        if len(sent) != len(stored):
            problems.append(f"{stream}: source emitted {len(sent)} records, S3 holds {len(stored)}")
        sent_data = Counter(_canonical(record["data"]) for record in sent)
        stored_data = Counter(_canonical(line.get("data")) for line in stored)
        if sent_data != stored_data:
            missing = sum((sent_data - stored_data).values())
            extra = sum((stored_data - sent_data).values())
            problems.append(f"{stream}: {missing} records missing from S3, {extra} unexpected")
        for stored_line in stored:
            metadata = stored_line.get("_tarsal_metadata", {})
            if not metadata.get("_tarsal_ab_id") or not metadata.get("_tarsal_emitted_at"):
                problems.append(f"{stream}: a line without _tarsal_metadata: {stored_line}")
                break

    if len(report.source_states) != len(report.destination_states):
        problems.append(
            f"source emitted {len(report.source_states)} states, "
            f"destination {len(report.destination_states)}"
        )
    stripped = [without_destination_stats(state) for state in report.destination_states]
    if stripped != report.source_states:
        problems.append("the states the destination emitted differ from the source's")
    counted = [
        state.get("destinationStats", {}).get("recordCount") for state in report.destination_states
    ]
    if len(counted) == len(report.records_before_state) and counted != [
        float(n) for n in report.records_before_state
    ]:
        problems.append(
            f"destinationStats.recordCount {counted} != records before each state "
            f"{report.records_before_state}"
        )
    return report


def _error_of(run: PipelineRun) -> str:
    traces = [
        m["trace"].get("error", {}).get("message")
        for m in run.emitted
        if m["type"] == "TRACE" and m["trace"].get("type") == "ERROR"
    ]
    return "; ".join(str(t) for t in traces) or run.destination_stderr[-1000:]


def print_report(report: SyncReport, bucket: str, line_width: int = 400) -> None:
    run = report.run
    total = sum(len(records) for records in report.source_records.values())
    say()
    say(
        f"sync finished in {run.seconds:.1f} s: source exit {run.source_exit}, "
        f"destination exit {run.destination_exit}, {total} records"
    )
    say()
    say(f"objects written to s3://{bucket}/ ({len(report.objects)}):")
    for key, body in report.objects.items():
        lines = body.count(b"\n")
        say(f"  {key}  ({len(body):,} bytes, {lines} lines)")
    say()
    say(f"  {'stream':<12} {'source records':>15} {'records in S3':>14} {'objects':>8}")
    for stream in sorted(set(report.source_records) | set(report.s3_lines)):
        objects = sum(1 for key in report.objects if stream_of_key(key) == stream)
        say(
            f"  {stream:<12} {len(report.source_records.get(stream, [])):>15} "
            f"{len(report.s3_lines.get(stream, [])):>14} {objects:>8}"
        )
    say()
    same = [without_destination_stats(s) for s in report.destination_states] == report.source_states
    say(
        f"states: source emitted {len(report.source_states)}, "
        f"destination emitted {len(report.destination_states)} "
        f"(identical but for destinationStats: {same})"
    )
    say(
        "destinationStats.recordCount per state: "
        f"{[s.get('destinationStats', {}).get('recordCount') for s in report.destination_states]}"
    )
    say()
    first_key: dict[str, str] = {}
    for key in report.objects:
        first_key.setdefault(stream_of_key(key), key)
    for _stream, key in sorted(first_key.items()):
        say(f"first lines of s3://{bucket}/{key}:")
        for line in report.objects[key].decode().splitlines()[:2]:
            say("  " + (line if len(line) <= line_width else line[:line_width] + " …"))
    say()
    if report.ok:
        say("OK: every record and every state the source emitted came through.")
    else:
        say("MISMATCH:")
        for problem in report.problems:
            say(f"  - {problem}")


# ---------------------------------------------------------------------------------------------
# Everything together
# ---------------------------------------------------------------------------------------------


def run_faker_pipeline(
    server: MotoServer,
    bucket: str,
    count: int,
    workdir: Path,
    *,
    seed: int = 42,
    records_per_slice: int = 100,
    bucket_path: str = BUCKET_PATH,
    python: str = sys.executable,
    source: Path | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> tuple[PipelineRun, dict[str, bytes]]:
    """Steps 1 and 3-4 against an existing bucket of `server`: the faker source piped into the
    destination (config: the demo's, with `config_overrides`); the run and the data objects in
    the bucket (bookkeeping under `_tarsal_*` left out), for `compare` (step 5) or a test."""
    source = source or ensure_source_venv(python=python)
    workdir.mkdir(parents=True, exist_ok=True)
    source_config = _write_json(
        workdir / "source_config.json", faker_config(count, seed, records_per_slice)
    )
    catalog = discover(source, source_config)
    configured = configure_catalog(catalog)
    say(
        "streams: "
        + ", ".join(
            f"{c['stream']['name']} ({c['sync_mode']} → {c['destination_sync_mode']})"
            for c in configured["streams"]
        )
    )
    catalog_path = _write_json(workdir / "configured_catalog.json", configured)
    config = {**build_config(bucket, bucket_path, server=server), **(config_overrides or {})}
    destination_path = _write_json(workdir / "destination_config.json", config)
    say(f"running: {source.name} read | tee | {Path(python).name} main.py write ...")
    run = run_pipeline(source, source_config, catalog_path, destination_path, workdir, python)
    objects = server.read_objects(bucket, f"{bucket_path}/" if bucket_path else "")
    # Data objects only: the sync's manifest (under `_tarsal_manifests/`) is bookkeeping.
    return run, {key: body for key, body in objects.items() if "_tarsal_" not in key}


def _write_json(path: Path, content: Any) -> Path:
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def _show(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(REPO_ROOT))
    return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="users and purchases to generate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--records-per-slice", type=int, default=100, help="records per state")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that runs main.py and moto (the repo venv)",
    )
    parser.add_argument("--workdir", type=Path, default=DEMO_DIR / "run")
    parser.add_argument(
        "--keep", action="store_true", help="leave the S3 server running to look inside (KEEP=1)"
    )
    args = parser.parse_args(argv)

    source = ensure_source_venv(python=args.python)
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    server = MotoServer.start(log_path=args.workdir / "moto_server.log", python=args.python)
    try:
        say(f"moto server at {server.endpoint}; bucket {BUCKET}")
        server.create_bucket(BUCKET)
        report = compare(
            *run_faker_pipeline(
                server,
                BUCKET,
                args.count,
                args.workdir,
                seed=args.seed,
                records_per_slice=args.records_per_slice,
                python=args.python,
                source=source,
            )
        )
    finally:
        if not args.keep:
            server.stop()
    print_report(report, BUCKET)
    say(f"(inputs, outputs and logs of this run: {_show(args.workdir)}/)")
    if args.keep:
        _leave_running(server)
    return 0 if report.ok else 1


def _leave_running(server: MotoServer) -> None:
    """Detach the server from this process and say how to look inside and how to stop it."""
    pid = server.detach()
    # The demo server does not enforce IAM: any keys will do, so no real-looking key is printed.
    keys = f"aws_access_key_id='{UNAUTHENTICATED_KEY_ID}', aws_secret_access_key='x'"
    say()
    say(f"The local S3 server keeps running at {server.endpoint} (pid {pid}). Look inside with:")
    say(
        f"  AWS_ACCESS_KEY_ID={UNAUTHENTICATED_KEY_ID} AWS_SECRET_ACCESS_KEY=x "
        f"AWS_REGION=us-east-1 aws --endpoint-url {server.endpoint} s3 ls --recursive "
        f"s3://{BUCKET}/"
    )
    say(
        f"  .venv/bin/python -c \"import boto3; s3 = boto3.client('s3', region_name='us-east-1', "
        f"endpoint_url='{server.endpoint}', {keys}); "
        f"print([o['Key'] for o in s3.list_objects_v2(Bucket='{BUCKET}')['Contents']])\""
    )
    say(f"Stop it with: kill {pid}")


if __name__ == "__main__":
    sys.exit(main())
