"""The benchmark's reading of the connector's stdout: states, errors, and the end-of-sync timing."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import orjson
import pytest

from benchmarks.report import HEADERS, Row
from benchmarks.runner import StdoutSummary, compile_bytecode


def _log(message: str) -> bytes:
    return orjson.dumps({"type": "LOG", "log": {"level": "INFO", "message": message}}) + b"\n"


def test_the_time_after_the_input_comes_from_the_connectors_last_log() -> None:
    summary = StdoutSummary()
    lines = _log("Progress: 10 records") + _log(
        "Sync finished in 41.3 s: input read in 38.0 s, then 3.3 s completing the last objects, "
        "removing earlier ones and writing the manifest"
    )
    summary.read(io.BytesIO(lines), None)
    assert summary.finishing_seconds == 3.3
    assert summary.problems == [] and summary.other_lines == 2


def test_without_that_log_the_column_shows_a_dash() -> None:
    summary = StdoutSummary()
    summary.read(io.BytesIO(_log("Progress: 10 records")), None)
    assert summary.finishing_seconds is None
    row = Row(case="c", records=10, bytes_in=1000, wall_seconds=2.0)
    cells = dict(zip(HEADERS, row.cells(), strict=True))
    assert cells["s after input"] == "–"
    row.finishing_seconds = 1.34
    assert dict(zip(HEADERS, row.cells(), strict=True))["s after input"] == "1.3"


def test_the_package_bytecode_is_written_even_where_python_would_not_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the image's `pip install .`: the connector processes then load bytecode, not source."""
    package = tmp_path / "package"
    package.mkdir()
    (package / "module.py").write_text("VALUE = 1\n")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    compile_bytecode(sys.executable, package)
    written = list((package / "__pycache__").glob("module.*.pyc"))
    assert [path.name for path in written] == [f"module.{sys.implementation.cache_tag}.pyc"]
