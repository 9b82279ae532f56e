"""destination-s3, unmodified, under PyAirbyte (the `airbyte` package on PyPI), fully offline.

Run it from the repository root with the repository's virtualenv::

    .venv/bin/python -m demo.pyairbyte_example             # 500 users/purchases + 100 products
    .venv/bin/python -m demo.pyairbyte_example --count 2000

The part to copy into your own code is :func:`sync_with_pyairbyte` (``s3_config`` is the
connector's config, as in the README). In short::

    import os
    os.environ["AIRBYTE_OFFLINE_MODE"] = "1"   # before importing airbyte: no registry, no telemetry
    import airbyte as ab
    from airbyte.strategies import WriteStrategy

    source = ab.get_source("source-faker", config={"count": 500},
                           local_executable=".demo/source-venv/bin/source-faker")
    source.select_all_streams()
    destination = ab.get_destination("destination-s3", config=s3_config,
                                      local_executable=".venv/bin/destination-s3")
    destination.check()
    destination.write(source, cache=False, state_cache=False,
                      write_strategy=WriteStrategy.APPEND)

Notes on running this connector under PyAirbyte:

* `local_executable=` points at our console script (`pip install .` puts `destination-s3` in the
  venv's bin/). PyAirbyte then runs `destination-s3 write --config … --catalog …` with the records
  on stdin, exactly as the platform does; nothing is downloaded.
* `AIRBYTE_OFFLINE_MODE=1` must be set before `import airbyte`: it stops PyAirbyte from fetching
  the connector registry (it would fail without internet) and turns its telemetry off. Neither
  connector is in the registry under these names anyway; `local_executable` is what finds them.
* Pass `write_strategy=WriteStrategy.APPEND` (or `REPLACE`). PyAirbyte's default, AUTO, picks
  MERGE for streams with a primary key and sends `destination_sync_mode: append_dedup`, a mode this
  file destination does not declare (its spec lists append and overwrite).
* PyAirbyte sends `generation_id = minimum_generation_id = sync_id = 1` on every sync. The
  connector reads that as a truncate refresh of generation 1, so files of earlier PyAirbyte syncs
  (also generation 1) are kept, even with REPLACE: write each run to its own `s3_bucket_path` if
  you need a clean copy.
* `cache=False` streams the source straight into the destination (no DuckDB copy);
  `state_cache=False` keeps no state between runs, which suits a demo; keep PyAirbyte's default
  cache if you want incremental state across runs.

PyAirbyte lives in its own virtualenv, `.demo/pyairbyte-venv` (created on first run: `pip install
airbyte`, a few minutes), because it pins its own airbyte-cdk, duckdb, SQLAlchemy, ... that must not
mix with the connector's dependencies. The launcher (this file under the repo venv) creates it,
reuses `.demo/source-venv` from demo/run_demo.py for the faker source, starts a moto server
(`integration_tests/s3_server.py`) and builds the connector config
(`integration_tests/connector.py:build_config`), runs :func:`sync_with_pyairbyte` in the PyAirbyte
venv, then counts what landed in the bucket. Only the launcher imports repository code; the part
that runs in the PyAirbyte venv needs nothing but `airbyte`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / ".demo"
PYAIRBYTE_VENV = DEMO_DIR / "pyairbyte-venv"
PYAIRBYTE_REQUIREMENT = "airbyte==0.71.3"
BUCKET = "tarsal-pyairbyte-demo"
BUCKET_PATH = "pyairbyte"
RESULT_PREFIX = "PYAIRBYTE_RESULT "


# ---------------------------------------------------------------------------------------------
# The PyAirbyte part: runs inside .demo/pyairbyte-venv (needs only `airbyte`)
# ---------------------------------------------------------------------------------------------


def sync_with_pyairbyte(
    s3_config: dict[str, Any],
    count: int,
    source_executable: str,
    destination_executable: str,
) -> int:
    """Read faker with PyAirbyte and write it through destination-s3; returns records written."""
    os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # before `import airbyte`
    import airbyte as ab
    from airbyte.strategies import WriteStrategy

    source = ab.get_source(
        "source-faker",
        config={"count": count, "seed": 42, "records_per_slice": 100, "parallelism": 2},
        local_executable=source_executable,
    )
    source.select_all_streams()

    destination = ab.get_destination(
        "destination-s3", config=s3_config, local_executable=destination_executable
    )
    destination.check()  # raises if the bucket is unreachable or not writable
    result = destination.write(
        source,
        cache=False,
        state_cache=False,
        write_strategy=WriteStrategy.APPEND,
    )
    written: int = result.processed_records
    return written


# ---------------------------------------------------------------------------------------------
# The launcher: runs under the repository's venv
# ---------------------------------------------------------------------------------------------


def ensure_pyairbyte_venv(venv: Path = PYAIRBYTE_VENV, python: str = sys.executable) -> Path:
    """The python of a virtualenv holding PyAirbyte (created on first use)."""
    marker = venv / ".installed-requirement"
    venv_python = venv / "bin" / "python"
    installed = marker.read_text().strip() if marker.exists() else ""
    if venv_python.exists() and installed == PYAIRBYTE_REQUIREMENT:
        print(f"reusing {venv.relative_to(REPO_ROOT)} ({PYAIRBYTE_REQUIREMENT})", flush=True)
        return venv_python
    print(f"creating {venv} and installing {PYAIRBYTE_REQUIREMENT} (a few minutes)", flush=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--quiet", PYAIRBYTE_REQUIREMENT],
        check=True,
        timeout=1800,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    marker.write_text(PYAIRBYTE_REQUIREMENT + "\n")
    return venv_python


def launch(count: int) -> int:
    # Imported here, not at the top: the same file runs `--inside` the PyAirbyte venv, which has
    # neither the repository on its path nor moto.
    from demo import run_demo  # the faker venv and key layout of the pipe demo
    from integration_tests.connector import build_config
    from integration_tests.s3_server import MotoServer

    pyairbyte_python = ensure_pyairbyte_venv()
    source_executable = run_demo.ensure_source_venv()
    destination_executable = Path(sys.executable).parent / "destination-s3"
    if not destination_executable.exists():
        print(f"{destination_executable} not found: `pip install -e .` into this venv first")
        return 2
    workdir = DEMO_DIR / "pyairbyte-run"
    server = MotoServer.start(log_path=workdir / "moto_server.log")
    try:
        server.create_bucket(BUCKET)
        print(f"moto server at {server.endpoint}; bucket {BUCKET}", flush=True)
        env = {
            **os.environ,
            "AIRBYTE_OFFLINE_MODE": "1",
            "DO_NOT_TRACK": "1",
            "AIRBYTE_LOGGING_ROOT": str(workdir / "logs"),
            "AIRBYTE_PROJECT_DIR": str(workdir),
            "PYTHONWARNINGS": "ignore::FutureWarning",
        }
        env.pop("VIRTUAL_ENV", None)
        inner = subprocess.run(
            [
                str(pyairbyte_python),
                str(Path(__file__).resolve()),
                "--inside",
                json.dumps(
                    {
                        "s3_config": build_config(BUCKET, BUCKET_PATH, server=server),
                        "count": count,
                        "source_executable": str(source_executable),
                        "destination_executable": str(destination_executable),
                    }
                ),
            ],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            timeout=900,
        )
        print(inner.stdout, end="", flush=True)
        results = [
            json.loads(line[len(RESULT_PREFIX) :])
            for line in inner.stdout.splitlines()
            if line.startswith(RESULT_PREFIX)
        ]
        objects = server.read_objects(BUCKET, f"{BUCKET_PATH}/")
    finally:
        server.stop()
    if inner.returncode != 0 or not results:
        print(f"PyAirbyte run failed (exit {inner.returncode}); logs in {workdir / 'logs'}")
        return 1

    data_objects = {
        key: body
        for key, body in objects.items()
        if not key.split("/")[-1].startswith("_tarsal") and "/_tarsal_" not in key
    }
    per_stream: dict[str, int] = {}
    for key, body in data_objects.items():
        stream = run_demo.stream_of_key(key, BUCKET_PATH)
        per_stream[stream] = per_stream.get(stream, 0) + len(body.splitlines())
    print(f"\nobjects under s3://{BUCKET}/{BUCKET_PATH}/:")
    for key, body in objects.items():
        print(f"  {key}  ({len(body):,} bytes)")
    print(f"\nrecords per stream in S3: {per_stream}")
    print(f"records PyAirbyte reports delivered: {results[-1]['written']}")
    expected_ok = (
        per_stream.get("users") == count
        and per_stream.get("products") == 100
        and per_stream.get("purchases", 0) > 0
        and sum(per_stream.values()) == results[-1]["written"]
    )
    print("OK" if expected_ok else "MISMATCH")
    return 0 if expected_ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--inside", help=argparse.SUPPRESS)  # JSON arguments, in the PyAirbyte venv
    args = parser.parse_args(argv)
    if args.inside:
        written = sync_with_pyairbyte(**json.loads(args.inside))
        print(RESULT_PREFIX + json.dumps({"written": written}), flush=True)
        return 0
    return launch(args.count)


if __name__ == "__main__":
    sys.exit(main())
