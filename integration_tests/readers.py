"""Reading compressed objects back as their users do: the gzip / zstandard modules (asserting one
gzip member or zstd frame per object), and pandas and DuckDB on a downloaded file whose codec they
infer from its extension."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import zstandard

from integration_tests.s3_server import MotoServer


def decompress(key: str, body: bytes) -> bytes:
    """The content of `body`, which must be ONE gzip member / zstd frame and nothing else."""
    if key.endswith(".gz"):
        inflate = zlib.decompressobj(wbits=31)  # stops at the end of the first member
        content = inflate.decompress(body)
        assert inflate.eof and inflate.unused_data == b"", f"{key}: not one gzip member"
        assert gzip.decompress(body) == content  # what `gzip -d` and most readers do
        return content
    assert key.endswith(".zst"), key
    decompressor = zstandard.ZstdDecompressor().decompressobj()  # first frame only
    content = decompressor.decompress(body)
    assert decompressor.eof and decompressor.unused_data == b"", f"{key}: not one zstd frame"
    assert zstandard.get_frame_parameters(body).has_checksum
    return content


def download(s3: MotoServer, bucket: str, key: str, directory: Path) -> tuple[Path, bytes]:
    """The object saved under its own name (readers infer the codec from the extension)."""
    body = s3.read_object(bucket, key)
    path = directory / key.rsplit("/", 1)[-1]
    path.write_bytes(body)
    return path, body


def read_jsonl_with_readers(path: Path) -> list[dict[str, Any]]:
    """The envelopes as pandas, DuckDB and pyarrow read them (they must agree); codec from the
    name."""
    import duckdb
    import pandas
    import pyarrow
    import pyarrow.json

    by_pandas = pandas.read_json(path, lines=True).to_dict("records")
    connection = duckdb.connect()
    try:
        result = connection.execute(
            "SELECT * FROM read_json_auto(?, maximum_depth = 1)", [str(path)]
        )
        columns = [column[0] for column in result.description]
        by_duckdb = [
            {column: json.loads(value) for column, value in zip(columns, row, strict=True)}
            for row in result.fetchall()
        ]
    finally:
        connection.close()
    assert by_duckdb == by_pandas
    # pyarrow infers one type per nested field and refuses `data` whose shapes vary from record
    # to record (a limit of its inference, not of the file): it reads the metadata columns with
    # an explicit schema, which still decompresses and parses every line.
    metadata = pyarrow.struct(
        [("_tarsal_ab_id", pyarrow.string()), ("_tarsal_emitted_at", pyarrow.string())]
    )
    options = pyarrow.json.ParseOptions(
        explicit_schema=pyarrow.schema([("_tarsal_metadata", metadata)]),
        unexpected_field_behavior="ignore",
    )
    with pyarrow.input_stream(str(path)) as stream:  # codec detected from the extension
        by_pyarrow = pyarrow.json.read_json(stream, parse_options=options).to_pylist()
    assert by_pyarrow == [{"_tarsal_metadata": row["_tarsal_metadata"]} for row in by_pandas]
    return by_duckdb


def read_csv_with_readers(path: Path) -> list[list[str]]:
    """Header and rows as pandas, DuckDB and pyarrow read them (they must agree); codec from the
    name."""
    import duckdb
    import pandas
    import pyarrow
    import pyarrow.csv

    frame = pandas.read_csv(path, dtype=str, keep_default_na=False)
    by_pandas = [list(frame.columns), *(list(row) for row in frame.itertuples(index=False))]
    connection = duckdb.connect()
    try:
        result = connection.execute(
            "SELECT * FROM read_csv_auto(?, header = true, all_varchar = true)", [str(path)]
        )
        by_duckdb = [
            [column[0] for column in result.description],
            *(["" if cell is None else cell for cell in row] for row in result.fetchall()),
        ]
    finally:
        connection.close()
    assert by_duckdb == by_pandas
    as_text = {name: pyarrow.string() for name in by_pandas[0]}
    with pyarrow.input_stream(str(path)) as stream:  # codec detected from the extension
        table = pyarrow.csv.read_csv(
            stream, convert_options=pyarrow.csv.ConvertOptions(column_types=as_text)
        )
    by_pyarrow = [table.column_names, *(list(row.values()) for row in table.to_pylist())]
    assert by_pyarrow == by_pandas
    return by_duckdb


def read_parquet_with_readers(path: Path) -> list[dict[str, Any]]:
    """Rows as pyarrow, DuckDB, polars and pandas read the Parquet file (they must agree): JSON
    columns as their text, time stamps as aware UTC datetimes, decimals as Decimal."""
    import duckdb
    import pandas
    import polars
    import pyarrow.parquet

    by_pyarrow: list[dict[str, Any]] = pyarrow.parquet.read_table(path).to_pylist()
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        result = connection.execute("SELECT * FROM read_parquet(?)", [str(path)])
        columns = [column[0] for column in result.description]
        by_duckdb = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    finally:
        connection.close()
    assert by_duckdb == by_pyarrow
    by_polars = polars.read_parquet(path).to_dicts()
    assert by_polars == by_pyarrow
    frame = pandas.read_parquet(path)
    assert list(frame.columns) == pyarrow.parquet.read_schema(path).names
    assert len(frame) == len(by_pyarrow)
    return by_pyarrow
