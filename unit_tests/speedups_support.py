"""The C encoder under test, or why it is absent.

Where a C compiler exists, `make venv` builds destination_s3._speedups, and a missing module is a
broken build: the tests that need it fail. Only on a machine without a compiler (where setup.py
falls back to the pure-Python encoder by design) or with DESTINATION_S3_PURE_PYTHON=1 do they
skip, saying why.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sysconfig
from collections.abc import Sequence

import pytest

from destination_s3 import compiled
from destination_s3.encoders import LineEncoder, RootLevelCsvEncoder, root_level_csv_encoder


def c_compiler() -> str | None:
    command = shlex.split(sysconfig.get_config_var("CC") or "cc")
    return shutil.which(command[0]) if command else None


def require_speedups() -> None:
    if compiled.ACCELERATED:
        return
    if os.environ.get("DESTINATION_S3_PURE_PYTHON") == "1":
        pytest.skip("DESTINATION_S3_PURE_PYTHON=1 turned the C encoder off")
    if c_compiler() is not None:
        pytest.fail(
            "a C compiler exists but destination_s3._speedups is not importable: "
            "rebuild with `pip install -e .` (make venv) and read the build's warnings"
        )
    pytest.skip("no C compiler on this machine: the pure-Python encoder is in use (by design)")


class RootCsv:
    """One root-level CSV encoder, pure Python or C, with the pure one's header and columns."""

    def __init__(self, schema_properties: Sequence[str], accelerated: bool) -> None:
        self.columns = RootLevelCsvEncoder(schema_properties).columns
        self._header, self._encode = root_level_csv_encoder(schema_properties, accelerated)
        self.encode: LineEncoder = self._encode

    def header(self) -> bytes:
        return self._header

    def __call__(self, ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
        return self._encode(ab_id, emitted_at, data)
