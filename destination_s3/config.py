"""The validated connector configuration as frozen, typed objects.

The raw JSON config is checked against spec.json by validation.py at the entry point; `parse_config`
turns it into these objects once, and nothing below the entry point reads the raw dict.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from destination_s3.encryption import Encryption, parse_encryption
from destination_s3.layout import PathTemplate, parse_path_template

MIB = 1024 * 1024

# S3's own multipart limits: every part but the last is at least 5 MiB, at most 10,000 parts.
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PARTS = 10_000

DEFAULT_FILE_SIZE_MB = 128
DEFAULT_FLUSH_INTERVAL_SECONDS = 300


class OutputFormat(enum.Enum):
    JSONL = "jsonl"
    CSV_NO_FLATTENING = "csv"
    CSV_ROOT_LEVEL = "csv_root_level"
    PARQUET = "parquet"

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self]

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self]


_EXTENSIONS = {
    OutputFormat.JSONL: "jsonl",
    OutputFormat.CSV_NO_FLATTENING: "csv",
    OutputFormat.CSV_ROOT_LEVEL: "csv",
    OutputFormat.PARQUET: "parquet",
}
_CONTENT_TYPES = {
    OutputFormat.JSONL: "application/jsonl",
    OutputFormat.CSV_NO_FLATTENING: "text/csv; charset=utf-8",
    OutputFormat.CSV_ROOT_LEVEL: "text/csv; charset=utf-8",
    OutputFormat.PARQUET: "application/vnd.apache.parquet",
}

PARQUET_CODECS = ("SNAPPY", "ZSTD", "GZIP", "UNCOMPRESSED")
DEFAULT_BLOCK_SIZE_MB = 64
DEFAULT_PAGE_SIZE_KB = 1024


@dataclass(frozen=True)
class ParquetOptions:
    """format_type Parquet's settings, in pyarrow's terms."""

    codec: str = "snappy"  # pyarrow's name: snappy, zstd, gzip or none
    # Arrow bytes of pending rows that make a row group (less under memory pressure).
    row_group_bytes: int = DEFAULT_BLOCK_SIZE_MB * MIB
    page_size_bytes: int = DEFAULT_PAGE_SIZE_KB * 1024
    dictionary_encoding: bool = True
    dictionary_page_size_bytes: int = DEFAULT_PAGE_SIZE_KB * 1024


class Compression(enum.Enum):
    """How each object's bytes are compressed; the values are the spec's (Airbyte's) spelling."""

    NONE = "No Compression"
    GZIP = "GZIP"
    ZSTD = "ZSTD"

    @property
    def suffix(self) -> str:
        """Appended to the format's extension. Readers (DuckDB, pandas, pyarrow, gzip, zstd) infer
        the codec from it, so no Content-Encoding is set: with one, S3 clients and browsers may
        decompress on download and hand over bytes that no longer match the name."""
        return _SUFFIXES[self]


_SUFFIXES = {Compression.NONE: "", Compression.GZIP: ".gz", Compression.ZSTD: ".zst"}

# Airbyte's S3 destination spells it without the hyphen; a config carried over from it works.
_ROOT_LEVEL_FLATTENING = ("Root-level flattening", "Root level flattening")


@dataclass(frozen=True)
class AccessKeyCredentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return "AccessKeyCredentials(access_key_id=<hidden>, secret_access_key=<hidden>)"


@dataclass(frozen=True)
class RoleCredentials:
    role_arn: str
    external_id: str | None

    def __repr__(self) -> str:
        external = "<hidden>" if self.external_id else None
        return f"RoleCredentials(role_arn={self.role_arn!r}, external_id={external})"


@dataclass(frozen=True)
class DefaultChainCredentials:
    pass


Credentials = AccessKeyCredentials | RoleCredentials | DefaultChainCredentials


@dataclass(frozen=True)
class S3Location:
    bucket: str
    region: str
    # Normalised: no leading or trailing slash, "" when the files go to the bucket root.
    path: str
    endpoint: str | None


@dataclass(frozen=True)
class ConnectorConfig:
    location: S3Location
    credentials: Credentials
    output_format: OutputFormat
    compression: Compression
    stream_prefix: str
    file_size_bytes: int
    flush_interval_seconds: float
    encryption: Encryption = field(default_factory=Encryption)
    write_manifest: bool = True
    parquet: ParquetOptions = field(default_factory=ParquetOptions)
    # s3_path_format: the folders of each object under the bucket path (None: the seed's layout).
    path_template: PathTemplate | None = None

    @property
    def extension(self) -> str:
        """Object name extension: `jsonl`, `csv`, `jsonl.gz`, `csv.zst`…"""
        return self.output_format.extension + self.compression.suffix

    @property
    def part_size_bytes(self) -> int:
        """Part size such that an object of the target size fits in S3's 10,000 parts."""
        return max(S3_MIN_PART_SIZE, math.ceil(self.file_size_bytes / (S3_MAX_PARTS - 1)))

    def summary(self) -> str:
        """One line for the start-of-sync log: everything a user may want to see, no secret."""
        location = self.location
        return (
            f"bucket={location.bucket} region={location.region} path={location.path or '/'} "
            f"path_format={self.path_template.text if self.path_template else 'default'} "
            f"endpoint={location.endpoint or 'AWS default'} auth={_auth_name(self.credentials)} "
            f"format={self.output_format.value} compression={self._codec_name()} "
            f"stream_prefix={self.stream_prefix!r} "
            f"file_size_mb={self.file_size_bytes // MIB} "
            f"flush_interval_seconds={self.flush_interval_seconds:g} "
            f"encryption={self.encryption.describe()}"
        )

    def _codec_name(self) -> str:
        if self.output_format is OutputFormat.PARQUET:
            return f"parquet:{self.parquet.codec}"
        return self.compression.name.lower()


def _auth_name(credentials: Credentials) -> str:
    if isinstance(credentials, AccessKeyCredentials):
        return "access_key"
    if isinstance(credentials, RoleCredentials):
        return f"iam_role({credentials.role_arn})"
    return "default_chain"


def normalise_bucket_path(path: str) -> str:
    return "/".join(part for part in path.strip().split("/") if part)


def parse_config(raw: Mapping[str, Any]) -> ConnectorConfig:
    """Build the typed config from a dict that already passed spec.json validation."""
    endpoint = (raw.get("s3_endpoint") or "").strip().rstrip("/") or None
    location = S3Location(
        bucket=raw["s3_bucket_name"],
        region=raw.get("s3_bucket_region") or "us-east-1",
        path=normalise_bucket_path(raw.get("s3_bucket_path") or ""),
        endpoint=endpoint,
    )
    return ConnectorConfig(
        location=location,
        credentials=_parse_credentials(raw["credentials"]),
        output_format=_parse_format(raw["format"]),
        compression=_parse_compression(raw["format"]),
        stream_prefix=raw.get("stream_prefix") or "",
        file_size_bytes=int(raw.get("file_size_mb") or DEFAULT_FILE_SIZE_MB) * MIB,
        flush_interval_seconds=float(
            raw.get("flush_interval_seconds") or DEFAULT_FLUSH_INTERVAL_SECONDS
        ),
        encryption=parse_encryption(raw.get("encryption")),
        write_manifest=raw.get("write_manifest", True) is not False,
        parquet=_parse_parquet(raw["format"]),
        path_template=parse_path_template(raw.get("s3_path_format")),
    )


def _parse_parquet(raw: Mapping[str, Any]) -> ParquetOptions:
    if raw.get("format_type") != "Parquet":
        return ParquetOptions()
    codec = raw.get("compression_codec") or "SNAPPY"
    if codec not in PARQUET_CODECS:
        raise ValueError(f"unknown format.compression_codec {codec!r}")
    page_kb = int(raw.get("page_size_kb") or DEFAULT_PAGE_SIZE_KB)
    return ParquetOptions(
        codec="none" if codec == "UNCOMPRESSED" else codec.lower(),
        row_group_bytes=int(raw.get("block_size_mb") or DEFAULT_BLOCK_SIZE_MB) * MIB,
        page_size_bytes=page_kb * 1024,
        dictionary_encoding=raw.get("dictionary_encoding", True) is not False,
        dictionary_page_size_bytes=int(raw.get("dictionary_page_size_kb") or page_kb) * 1024,
    )


def _parse_credentials(raw: Mapping[str, Any]) -> Credentials:
    auth_type = raw.get("auth_type")
    if auth_type == "access_key":
        return AccessKeyCredentials(raw["access_key_id"], raw["secret_access_key"])
    if auth_type == "iam_role":
        return RoleCredentials(raw["role_arn"], raw.get("external_id") or None)
    if auth_type == "default_chain":
        return DefaultChainCredentials()
    raise ValueError(f"unknown credentials.auth_type {auth_type!r}")


def _parse_format(raw: Mapping[str, Any]) -> OutputFormat:
    format_type = raw.get("format_type")
    if format_type == "JSONL":
        return OutputFormat.JSONL
    if format_type == "CSV":
        if raw.get("flattening", "No flattening") in _ROOT_LEVEL_FLATTENING:
            return OutputFormat.CSV_ROOT_LEVEL
        return OutputFormat.CSV_NO_FLATTENING
    if format_type == "Parquet":
        return OutputFormat.PARQUET
    raise ValueError(f"unknown format.format_type {format_type!r}")


def _parse_compression(raw_format: Mapping[str, Any]) -> Compression:
    raw = raw_format.get("compression") or {}
    compression_type = raw.get("compression_type") or Compression.NONE.value
    try:
        return Compression(compression_type)
    except ValueError:
        raise ValueError(
            f"unknown format.compression.compression_type {compression_type!r}"
        ) from None
