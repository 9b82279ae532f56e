"""The C block scanner and the pure-Python path land the same bytes, as an orchestrator runs them.

The same stdin goes to `main.py write` twice, once with the compiled parts and once with
DESTINATION_S3_PURE_PYTHON=1 (msgspec's block path, the Python loop and ids): lines the scanner
takes (compact, json.dumps' default spacing, CRLF ends, unknown fields, namespaces, unicode stream
names) and lines it leaves to msgspec (float and huge emitted_at, an escaped stream name, more
than a block's worth of them in a row, STATEs), over about 3 MB so that most 1 MiB blocks are
the scanner's alone. Every object must hold the same lines but for the record ids, and the states
must come back the same. (A scanner that dropped one byte of some records' data fails it.)
"""

from __future__ import annotations

import json
import re
from typing import Any

from integration_tests.connector import (
    MakeConfig,
    configured_catalog,
    configured_stream,
    run_write,
)
from integration_tests.readback import assert_clean_stdout
from integration_tests.s3_server import MotoServer
from unit_tests.speedups_support import require_speedups

_AB_ID = re.compile(rb'"_tarsal_ab_id":"[0-9a-f-]{36}"')


def _record(stream: str, emitted_at: str, data: dict[str, Any], **extra: Any) -> bytes:
    """A RECORD line in json.dumps' default spacing; `stream` is JSON text (it may escape)."""
    record = json.dumps(extra, ensure_ascii=False)[1:-1]
    fields = [f'"stream": {stream}', f'"emitted_at": {emitted_at}', *([record] if extra else [])]
    fields.append(f'"data": {json.dumps(data, ensure_ascii=False)}')
    return ('{"type": "RECORD", "record": {' + ", ".join(fields) + "}}").encode()


def _state(cursor: int) -> bytes:
    return json.dumps(
        {"type": "STATE", "state": {"type": "LEGACY", "data": {"cursor": cursor}}}
    ).encode()


RECORDS = 20_000  # about 3 MB: several 1 MiB blocks, most of them the scanner's alone
STATE_EVERY = 2_500


def _stdin() -> bytes:
    lines: list[bytes] = []
    for index in range(RECORDS):
        data = {"id": index, "name": "Zürich" if index % 3 else 'O"Brien, Jr.', "n": [index, 1.5]}
        if index % STATE_EVERY == 0:
            lines.append(_state(index))
        if 10_000 <= index < 10_030:  # more than a block's worth the scanner leaves
            emitted = "1700000000000.0" if index % 2 else str(2**70)
            lines.append(_record('"users"', emitted, data))
        elif index % 4_000 == 1_000:
            lines.append(_record('"us\\u0065rs"', "1700000000001", data))  # an escaped name
        elif index % 5 == 0:
            lines.append(_record('"orders"', "1700000000002", data, namespace="shop", meta={}))
        elif index % 4 == 0:
            compact = {
                "type": "RECORD",
                "record": {"stream": "städte", "emitted_at": 17, "data": data},
            }
            lines.append(json.dumps(compact, separators=(",", ":"), ensure_ascii=False).encode())
        else:
            lines.append(_record('"users"', "1700000000003", data))
    lines.append(_state(RECORDS))
    ends = [b"\r\n" if index % 3 == 0 else b"\n" for index in range(len(lines))]
    return b"".join(line + end for line, end in zip(lines, ends, strict=True))


def _landed(s3: MotoServer, bucket: str, prefix: str) -> dict[str, list[bytes]]:
    """Each stream directory's JSONL lines, ids blanked, in key order."""
    streams: dict[str, list[bytes]] = {}
    for key in sorted(s3.list_keys(bucket, prefix)):
        if key.endswith(".jsonl"):
            directory = key[len(prefix) :].rsplit("/", 1)[0]
            body = _AB_ID.sub(b'"_tarsal_ab_id":"-"', s3.read_object(bucket, key))
            streams.setdefault(directory, []).extend(body.splitlines())
    return streams


def test_compiled_and_pure_python_paths_land_the_same_lines(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    require_speedups()
    catalog = configured_catalog([])
    catalog["streams"] = [
        configured_stream("users"),
        configured_stream("orders", namespace="shop"),
        configured_stream("städte"),
    ]
    stdin = _stdin()
    runs = {}
    for name, env in [("c", {}), ("pure", {"DESTINATION_S3_PURE_PYTHON": "1"})]:
        run = run_write(make_config(bucket, path=name), catalog, stdin, env=env)
        run.assert_success()
        assert_clean_stdout(run)
        runs[name] = run
    compiled, pure = _landed(s3, bucket, "c/"), _landed(s3, bucket, "pure/")
    assert sorted(compiled) == sorted(pure) and len(compiled) == 3, (compiled.keys(), pure.keys())
    assert compiled == pure
    assert sum(map(len, compiled.values())) == RECORDS
    assert runs["c"].states() == runs["pure"].states()
    assert len(runs["c"].states()) == RECORDS // STATE_EVERY + 1
