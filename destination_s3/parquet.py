"""Parquet objects: encoded record lines in, one Parquet file out, row group by row group.

A Parquet object is written like a compressed one (writer.py): `ParquetBody` takes the object's
record lines as they are buffered and returns the file's bytes as they are produced, so the writer,
its parts and its memory budget work unchanged. Each line is `["<ab_id>",<emitted_at ms>,<data>]`
(`encode_line`), so one msgspec call per chunk decodes a chunk's records straight into typed
column values (parquet_schema.row_struct), and pyarrow builds each column from a list in C: no
Python code runs per cell on the common path. A chunk msgspec refuses (an undeclared field, a value
of another type) is taken record by record, and only its records that do not fit go cell by cell.

Rows wait as raw lines until a chunk is worth converting (`_CHUNK_BYTES`), then as Arrow record
batches until they make a row group (`block_size_mb` of Arrow data) or until memory pressure asks
for the row group early (`release`). `held_bytes` is what waits, so the one memory budget of the
sync covers Parquet's pending rows too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from destination_s3.config import ParquetOptions
from destination_s3.encoders import RAW_NULL, raw_fields
from destination_s3.parquet_schema import (
    AB_ID,
    ADDITIONAL_PROPERTIES,
    CHECKED_IN_PYTHON,
    CHECKS,
    EMITTED_AT,
    META,
    Column,
    Kind,
    Misfit,
    error_entry,
    row_struct,
    salvage_value,
    struct_decodable,
)

# Raw lines of a stream wait until this many bytes, or this many cells (records x columns), are
# there to convert at once: small enough to bound the Python objects and Arrow arrays of one
# conversion (a few MB, even for a wide schema of mostly missing fields), large enough that the
# per-column calls into pyarrow are paid per thousands of records.
_CHUNK_BYTES = 1024 * 1024
_CHUNK_CELLS = 256 * 1024
_EMITTED_AT_TYPE = pa.timestamp("ms", tz="UTC")

_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.INTEGER: pa.int64(),
    Kind.BIG_INTEGER: pa.decimal128(38, 0),
    Kind.BIG_NUMBER: pa.decimal128(38, 9),
    Kind.NUMBER: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
    Kind.DATE: pa.date32(),
    Kind.TIMESTAMP_UTC: pa.timestamp("us", tz="UTC"),
    Kind.TIMESTAMP_LOCAL: pa.timestamp("us"),
    Kind.TIME: pa.time64("us"),
    # Parquet's JSON logical type: DuckDB reads it as JSON, pyarrow and polars as arrow.json.
    Kind.JSON: pa.json_(),
}

_encode_json = msgspec.json.Encoder().encode
_HEADROOM_FRAMES = 64
_MS_MIN, _MS_MAX = -(2**63), 2**63 - 1
_AB_ID, _EMITTED_AT, _DATA = attrgetter("ab_id"), attrgetter("emitted_at"), attrgetter("data")


def encode_line(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes:
    """A record as ParquetBody reads it back: no parsing here, `data` is copied as it came."""
    return b"".join((b'["', ab_id, b'",', emitted_at, b",", data, b"]\n"))


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema(
        [
            pa.field(AB_ID, pa.string()),
            pa.field(EMITTED_AT, pa.timestamp("ms", tz="UTC")),
            *(pa.field(column.name, _ARROW_TYPES[column.kind]) for column in columns),
            pa.field(ADDITIONAL_PROPERTIES, pa.json_()),
            pa.field(META, pa.json_()),
        ]
    )


class StreamColumns:
    """Everything a stream's Parquet objects share: columns, schema and decoders (built once)."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.schema = arrow_schema(self.columns)
        self.row = row_struct(self.columns)
        self.fast = struct_decodable(self.columns)
        line = msgspec.defstruct(
            "Line", [("ab_id", str), ("emitted_at", int), ("data", self.row)], array_like=True
        )
        # Typed as Any: the Structs are built at run time from the stream's schema.
        self.decode_lines: Callable[[bytes], list[Any]] = msgspec.json.Decoder(line).decode_lines
        self.decode_line: Callable[[bytes], Any] = msgspec.json.Decoder(line).decode
        self.getters = [attrgetter(f"c{index}") for index in range(len(self.columns))]
        self.declared = frozenset(column.name for column in self.columns)
        # `_tarsal_meta` lists a record's errors in column order, whichever step found them.
        self.position = {column.name: index for index, column in enumerate(self.columns)}
        # Values that did not fit their column, over the sync (the end-of-sync summary).
        self.misfits = 0


class _Sink:
    """The file object pyarrow writes the Parquet file into; the body drains it after each write."""

    closed = False

    def __init__(self) -> None:
        self.data = bytearray()
        self.position = 0

    def write(self, data: bytes) -> int:
        self.data += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        drained = bytes(self.data)
        self.data.clear()
        return drained


class ParquetBody:
    """One Parquet object being written (writer.py's `Compressor` protocol)."""

    def __init__(self, stream: StreamColumns, options: ParquetOptions) -> None:
        self._stream = stream
        self._options = options
        self._lines: list[bytes] = []
        self._line_bytes = 0
        self._line_cells = 0
        self._cells_per_line = len(stream.columns) + 4
        self._batches: list[pa.RecordBatch] = []
        self._batch_bytes = 0
        self._sink = _Sink()
        self._writer = pq.ParquetWriter(
            self._sink,
            stream.schema,
            compression=options.codec,
            data_page_size=options.page_size_bytes,
            use_dictionary=options.dictionary_encoding,
            dictionary_pagesize_limit=options.dictionary_page_size_bytes,
        )

    @property
    def held_bytes(self) -> int:
        """Rows taken and not yet written to a row group: raw lines and Arrow batches."""
        return self._line_bytes + self._batch_bytes

    def compress(self, data: bytes) -> bytes:
        if data:
            self._lines.append(data)
            self._line_bytes += len(data)
            self._line_cells += data.count(b"\n") * self._cells_per_line
            if self._line_bytes >= _CHUNK_BYTES or self._line_cells >= _CHUNK_CELLS:
                self._convert()
                if self._batch_bytes >= self._options.row_group_bytes:
                    return self.release()
        return b""

    def release(self) -> bytes:
        """Write every row taken so far as one row group; its bytes."""
        self._convert()
        if self._batches:
            table = pa.Table.from_batches(self._batches, self._stream.schema)
            self._batches, self._batch_bytes = [], 0
            self._writer.write_table(table, row_group_size=table.num_rows)
        return self._sink.drain()

    def finish(self) -> bytes:
        tail = self.release()
        self._writer.close()
        return tail + self._sink.drain()

    def _convert(self) -> None:
        if not self._lines:
            return
        chunk = b"".join(self._lines)
        self._lines, self._line_bytes, self._line_cells = [], 0, 0
        batch = _ChunkConverter(self._stream).convert(chunk)
        self._batches.append(batch)
        self._batch_bytes += batch.nbytes


class _ChunkConverter:
    """One chunk of lines to one record batch."""

    def __init__(self, stream: StreamColumns) -> None:
        self._stream = stream
        self._extras: list[str | None] | None = None
        self._errors: list[list[dict[str, Any]] | None] | None = None

    def convert(self, chunk: bytes) -> pa.RecordBatch:
        stream = self._stream
        # On CPython 3.11 msgspec's nesting limit is the interpreter's recursion limit, counted
        # from the current stack depth: a record the intake decoded a few frames up must still
        # decode here, so this conversion gets the frames it runs below the intake back.
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + _HEADROOM_FRAMES)
        try:
            lines = _decoded(stream.decode_lines, chunk) if stream.fast else None
            if lines is None:
                lines = self._by_record(chunk)
        finally:
            sys.setrecursionlimit(limit)
        count = len(lines)
        rows = list(map(_DATA, lines))
        arrays = [
            pa.array(list(map(_AB_ID, lines)), pa.string()),
            self._emitted_at(list(map(_EMITTED_AT, lines))),
        ]
        for column, getter in zip(stream.columns, stream.getters, strict=True):
            arrays.append(self._column(column, list(map(getter, rows))))
        arrays.append(_json_array(self._extras, count))
        errors = self._errors
        meta = None
        if errors is not None and any(errors):
            errors.extend([None] * (count - len(errors)))
            stream.misfits += sum(len(row) for row in errors if row)
            meta = [None if not row else self._meta(row) for row in errors]
        arrays.append(_json_array(meta, count))
        return pa.RecordBatch.from_arrays(arrays, schema=stream.schema)

    def _emitted_at(self, values: list[int]) -> pa.Array:
        try:
            return pa.array(values, _EMITTED_AT_TYPE)
        except (OverflowError, pa.ArrowInvalid):
            pass  # an emitted_at beyond the 64-bit range of milliseconds (JSONL keeps its text)
        cells: list[int | None] = []
        for index, value in enumerate(values):
            if _MS_MIN <= value <= _MS_MAX:
                cells.append(value)
            else:
                cells.append(None)
                self._record(index, error_entry(EMITTED_AT, value, "beyond the time stamp range"))
        return pa.array(cells, _EMITTED_AT_TYPE)

    def _by_record(self, chunk: bytes) -> list[Any]:
        stream = self._stream
        lines: list[Any] = []
        self._extras, self._errors = [], []
        for text in chunk.split(b"\n"):
            if not text:
                continue
            line = _decoded(stream.decode_line, text) if stream.fast else None
            if line is None:
                lines.append(self._salvage(text))
            else:
                lines.append(line)
                self._extras.append(None)
                self._errors.append(None)
        return lines

    def _salvage(self, text: bytes) -> Any:
        """A record msgspec's typed decode refused: every value that fits goes to its column,
        every other one is recorded; undeclared fields go to `_tarsal_additional_properties`.
        JSON text (object columns, undeclared fields) is kept exactly as the source wrote it."""
        stream = self._stream
        ab_id, emitted_at, data = _split_line(text)
        values: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        try:
            fields = raw_fields(data)
        except (msgspec.DecodeError, RecursionError):
            # Nested deeper than msgspec follows (the envelope decoder took it as a whole):
            # the record is kept whole, as JSON text.
            fields = {}
            reason = "record nested too deeply to split into columns; kept whole"
            errors.append(error_entry(ADDITIONAL_PROPERTIES, None, reason))
            additional: str | None = data.decode()
        for index, column in enumerate(stream.columns):
            raw = fields.get(column.name)
            if raw is None:
                continue
            try:
                values[f"c{index}"] = salvage_value(column.kind, raw)
            except Misfit as misfit:
                errors.append(error_entry(column.name, raw, str(misfit)))
        if fields:
            extra = {name: raw for name, raw in fields.items() if name not in stream.declared}
            additional = _encode_json(extra).decode() if extra else None
        elif not errors:
            additional = None
        assert self._extras is not None and self._errors is not None
        self._extras.append(additional)
        self._errors.append(errors or None)
        return _Salvaged(ab_id, emitted_at, stream.row(**values))

    def _column(self, column: Column, values: list[Any]) -> pa.Array:
        kind = column.kind
        if kind is Kind.JSON:
            return _raw_json_array(values)
        arrow_type = _ARROW_TYPES[kind]
        if kind not in CHECKED_IN_PYTHON:
            try:
                return pa.array(values, arrow_type)
            except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
                pass  # an integer beyond 64 bits (msgspec's int takes it): cell by cell
        checked = [self._checked(column, index, value) for index, value in enumerate(values)]
        return pa.array(checked, arrow_type)

    def _checked(self, column: Column, index: int, value: Any) -> Any:
        """One cell made Arrow-ready, or None with the value recorded in `_tarsal_meta`."""
        if value is None or value == RAW_NULL:
            return None
        check = CHECKS.get(column.kind)
        try:
            if check is not None:
                return check(value)
            pa.scalar(value, _ARROW_TYPES[column.kind])
            return value
        except (Misfit, OverflowError, pa.ArrowInvalid, pa.ArrowTypeError) as misfit:
            self._record(index, error_entry(column.name, value, str(misfit)))
            return None

    def _meta(self, errors: list[dict[str, Any]]) -> str:
        position = self._stream.position
        errors.sort(key=lambda error: position.get(error["field"], -1))
        return _encode_json({"errors": errors}).decode()

    def _record(self, index: int, error: dict[str, Any]) -> None:
        if self._errors is None:
            self._errors = []
        errors = self._errors
        errors.extend([None] * (index + 1 - len(errors)))
        row = errors[index]
        if row is None:
            errors[index] = [error]
        else:
            row.append(error)


def _decoded(decode: Callable[[bytes], Any], text: bytes) -> Any:
    """What a typed msgspec decoder makes of `text`, or None when it refuses it."""
    try:
        return decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None


class _Salvaged(msgspec.Struct, array_like=True):
    ab_id: str
    emitted_at: int
    data: Any


def _split_line(line: bytes) -> tuple[str, int, bytes]:
    """(ab_id, emitted_at, data) of an `encode_line` line, without parsing `data`."""
    end = line.index(b'",', 2)
    rest = line[end + 2 : -1]
    comma = rest.index(b",")
    return line[2:end].decode(), int(rest[:comma]), rest[comma + 1 :]


def _raw_json_array(values: list[msgspec.Raw]) -> pa.Array:
    """JSON text of raw values; a JSON null becomes a null cell. Both lists are made by `map` in
    C: no Python code runs per cell (and no pyarrow.compute, whose import costs 9 MB)."""
    nulls = pa.array(list(map(RAW_NULL.__eq__, values)), pa.bool_())
    binary = pa.array(list(map(bytes, values)), pa.binary(), mask=nulls)
    return pa.ExtensionArray.from_storage(pa.json_(), binary.cast(pa.string()))


def _json_array(texts: list[str | None] | None, count: int) -> pa.Array:
    if texts is None:
        return pa.nulls(count, pa.json_())
    return pa.ExtensionArray.from_storage(pa.json_(), pa.array(texts, pa.string()))


__all__ = ["ParquetBody", "StreamColumns", "encode_line"]
