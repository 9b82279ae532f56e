"""`python -m benchmarks`: the connector's `write` end to end against a local moto S3 server.

See benchmarks/README.md for the cases, the columns and how to read them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

from benchmarks.bound import BoundMeasure, measure_upload_bound
from benchmarks.generate import (
    JSON_SCHEMA,
    StreamShape,
    command_args,
    configured_catalog,
    stream_names,
    write_stream,
)
from benchmarks.output import Drain, OutputCount, count_bucket
from benchmarks.profile import summarise
from benchmarks.report import (
    HEADERS,
    MB,
    Row,
    Target,
    machine_lines,
    markdown_table,
)
from benchmarks.runner import (
    ProcessMeasure,
    StartupMeasure,
    compile_bytecode,
    measure_startup,
    run_measured,
)
from benchmarks.server_costs import ServerCosts
from benchmarks.server_costs import measure as measure_server_costs
from integration_tests.connector import build_config
from integration_tests.s3_server import MotoServer

REPO = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
BUCKET = "destination-s3-bench"
MIB = 1024 * 1024
# The connector's defaults: its file size, and the S3 rule it sizes parts by.
DEFAULT_FILE_SIZE_MB = 128
S3_MIN_PART = 5 * MIB
S3_MAX_PARTS = 10_000
ALL_CASES = (
    "jsonl",
    "jsonl_gzip",
    "jsonl_zstd",
    "csv",
    "csv_gzip",
    "csv_zstd",
    "csv_root",
    "csv_root_gzip",
    "csv_root_zstd",
    "parquet",
    "parquet_zstd",
    "parquet_gzip",
    "parquet_uncompressed",
    "many_streams",
    "many_parquet",
    "large",
)
DEFAULT_CASES = ALL_CASES

_TEXT_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    "jsonl": ("JSONL", {"format_type": "JSONL"}),
    "csv": ("CSV, no flattening", {"format_type": "CSV", "flattening": "No flattening"}),
    "csv_root": (
        "CSV, root-level flattening",
        {"format_type": "CSV", "flattening": "Root-level flattening"},
    ),
}
_TEXT_CODECS = {"": ("", ""), "_gzip": ("GZIP", ".gz"), "_zstd": ("ZSTD", ".zst")}
_PARQUET_CODECS = {"": "SNAPPY", "_zstd": "ZSTD", "_gzip": "GZIP", "_uncompressed": "UNCOMPRESSED"}
# Every format and codec: its config, the label of its row, and the extension of its objects.
FORMATS: dict[str, dict[str, Any]] = {}
LABELS: dict[str, str] = {}
EXTENSIONS: dict[str, str] = {}
for _name, (_label, _format) in _TEXT_FORMATS.items():
    for _suffix, (_codec, _extension) in _TEXT_CODECS.items():
        _compression = {"compression": {"compression_type": _codec}} if _codec else {}
        FORMATS[_name + _suffix] = {**_format, **_compression}
        LABELS[_name + _suffix] = f"{_label}, {_codec}" if _codec else _label
        EXTENSIONS[_name + _suffix] = f".{_name.partition('_')[0]}{_extension}"
for _suffix, _codec in _PARQUET_CODECS.items():
    FORMATS["parquet" + _suffix] = {"format_type": "Parquet", "compression_codec": _codec}
    LABELS["parquet" + _suffix] = f"Parquet, {_codec}"
    EXTENSIONS["parquet" + _suffix] = ".parquet"


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    output_format: str  # a key of FORMATS
    shape: StreamShape
    piped: bool = False  # generated on the fly by a subprocess instead of read from a file
    drain: bool = False  # count and delete objects while the connector runs


def build_cases(args: argparse.Namespace) -> list[Case]:
    base = StreamShape(
        records=args.records,
        streams=args.streams,
        record_size=args.record_size,
        state_every=args.state_every,
        seed=args.seed,
    )
    many = replace(base, streams=args.many_streams)
    large_records = math.ceil(args.large_gb * 1e9 / args.record_size)
    large = replace(base, records=large_records)
    every = {name: Case(name, LABELS[name], name, base) for name in FORMATS}
    every |= {
        "many_streams": Case(
            "many_streams", f"JSONL, {args.many_streams} streams interleaved", "jsonl", many
        ),
        "many_parquet": Case(
            "many_parquet",
            f"Parquet, {args.many_streams} streams interleaved",
            "parquet",
            many,
        ),
        "large": Case(
            "large",
            f"JSONL, {args.large_gb:g} GB piped",
            "jsonl",
            large,
            piped=True,
            drain=True,
        ),
    }
    return [every[name] for name in ALL_CASES if name in args.cases]


def csv_header_columns(output_format: str) -> frozenset[str] | None:
    """Column names each object's header line must contain (None: no header, JSONL, Parquet)."""
    if output_format.startswith("csv_root"):
        return frozenset(JSON_SCHEMA["properties"])
    if output_format.startswith("csv"):
        return frozenset({"data"})
    return None


def part_size(file_size_mb: int) -> int:
    """The connector's part size: at least 5 MiB, and a full object fits in 10,000 parts."""
    return max(S3_MIN_PART, math.ceil(file_size_mb * MIB / (S3_MAX_PARTS - 1)))


class Benchmark:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.python = sys.executable
        self.env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        self.file_size_mb: int = args.file_size_mb
        self.rows: list[Row] = []
        self.bound: BoundMeasure | None = None
        self.server_costs: ServerCosts | None = None
        self.bound_records = 0
        self.startup: StartupMeasure | None = None
        self.write_startup: StartupMeasure | None = None
        self.inputs: dict[StreamShape, tuple[Path, int]] = {}
        self.profiles: dict[str, str] = {}
        self.measures: dict[str, ProcessMeasure] = {}
        self.moto: MotoServer | None = None
        self.load_before = os.getloadavg()

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # ---- the run ----------------------------------------------------------------------------

    def run(self, cases: Sequence[Case]) -> None:
        compile_bytecode(self.python, REPO / "destination_s3")
        self.log(f"spec start-up: {self.args.spec_runs} runs")
        self.startup = measure_startup(
            [self.python, "main.py", "spec"],
            REPO,
            self.env,
            OUT / "spec.log",
            self.args.spec_runs,
        )
        self.log(f"spec start-up median {self.startup.median_seconds:.2f} s")
        self.moto = MotoServer.start(log_path=OUT / "moto.log", tls=self.args.tls)
        self.env.update(self.moto.client_env())
        self.log(f"moto server on {self.moto.endpoint}")
        try:
            self.measure_write_startup()
            # What the server itself costs per request: the ratios depend on it (README).
            self.server_costs = measure_server_costs(self.moto)
            self.log("the S3 server: " + "; ".join(line[2:] for line in self.server_costs.lines()))
            for case in cases:
                self.run_case(case)
        finally:
            self.moto.stop()

    def measure_write_startup(self) -> None:
        """The fixed cost of a sync: `write` of an empty input (imports, config, S3 client)."""
        assert self.moto is not None
        self.moto.reset_bucket(BUCKET)
        config_path, catalog_path = self.write_config("empty", "jsonl", self.args.streams)
        self.write_startup = measure_startup(
            self.write_command(config_path, catalog_path),
            REPO,
            self.env,
            OUT / "empty-write.log",
            self.args.spec_runs,
        )
        self.log(
            f"empty write median {self.write_startup.median_seconds:.2f} s, "
            f"CPU {self.write_startup.median_cpu_seconds:.2f} s"
        )

    def write_config(self, name: str, output_format: str, streams: int) -> tuple[Path, Path]:
        assert self.moto is not None
        config_path = self.work / f"config-{name}.json"
        catalog_path = self.work / f"catalog-{name}.json"
        config = build_config(
            BUCKET,
            "bench",
            FORMATS[output_format],
            server=self.moto,
            file_size_mb=self.file_size_mb,
            flush_interval_seconds=300,
        )
        config_path.write_text(json.dumps(config))
        catalog_path.write_text(json.dumps(configured_catalog(stream_names(streams))))
        return config_path, catalog_path

    def write_command(self, config_path: Path, catalog_path: Path) -> list[str]:
        return [
            self.python,
            "main.py",
            "write",
            "--config",
            str(config_path),
            "--catalog",
            str(catalog_path),
        ]

    def input_file(self, shape: StreamShape) -> tuple[Path, int]:
        """The generated message stream of `shape`, written once (not timed)."""
        if shape not in self.inputs:
            path = self.work / f"input-{len(self.inputs)}.jsonl"
            started = time.perf_counter()
            with path.open("wb") as file:
                size = write_stream(shape, file)
            self.log(
                f"generated {shape.records:,} records × {shape.streams} streams, "
                f"{size / MB:.1f} MB in {time.perf_counter() - started:.1f} s"
            )
            self.inputs[shape] = (path, size)
        return self.inputs[shape]

    def run_case(self, case: Case) -> None:
        """Run a case `--repeat` times; the run with the median wall time is reported (with the
        highest peak RSS of all runs), every run's checks count. After the first JSONL run,
        measure the upload bound on its output."""
        repeats = 1 if self.args.profile or case.piped else self.args.repeat
        runs: list[tuple[ProcessMeasure, int, OutputCount]] = []
        problems: list[str] = []
        for attempt in range(repeats):
            save_dir = None
            if case.name == "jsonl" and attempt == 0:
                save_dir = self.work / "jsonl-objects"
                shutil.rmtree(save_dir, ignore_errors=True)
                save_dir.mkdir()
            measure, bytes_in, count, saved, run_problems = self._run_once(case, save_dir)
            runs.append((measure, bytes_in, count))
            problems += [p for p in run_problems if p not in problems]
            if save_dir is not None and measure.exit_code == 0:
                self._measure_bound(saved, count)
        runs.sort(key=lambda run: run[0].wall_seconds)
        measure, bytes_in, count = runs[len(runs) // 2]
        self.measures[case.name] = measure
        row = self._row(case, measure, bytes_in, count)
        # Memory is a bound "at any input": the highest peak of all the runs.
        row.peak_rss_bytes = max(run[0].peak_rss_bytes for run in runs)
        row.problems = problems
        self.rows.append(row)
        if self.args.profile:
            summary = summarise(OUT / f"profile-{case.name}.txt").render()
            self.profiles[case.name] = summary
            (OUT / f"profile-{case.name}.md").write_text(summary + "\n")
            print(f"\n### Profile: {case.label}\n\n{summary}\n", flush=True)

    def _run_once(
        self, case: Case, save_dir: Path | None
    ) -> tuple[ProcessMeasure, int, OutputCount, list[tuple[str, Path]], list[str]]:
        assert self.moto is not None
        moto = self.moto
        moto.reset_bucket(BUCKET)
        config_path, catalog_path = self.write_config(
            case.name, case.output_format, case.shape.streams
        )
        command = self.write_command(config_path, catalog_path)
        if self.args.profile:
            command = [
                str(Path(self.python).with_name("py-spy")),
                "record",
                "--format",
                "raw",
                "--threads",
                "--rate",
                str(self.args.profile_rate),
                "-o",
                str(OUT / f"profile-{case.name}.txt"),
                "--",
                *command,
            ]
        columns = csv_header_columns(case.output_format)
        self.log(f"case {case.name}: {case.label}, {case.shape.records:,} records")
        problems: list[str] = []
        if case.piped:
            measure, bytes_in, problems = self._run_piped(case, command, columns)
        else:
            path, bytes_in = self.input_file(case.shape)
            with path.open("rb") as stdin:
                measure = run_measured(
                    command, stdin, REPO, self.env, OUT / f"{case.name}.log", self.sample_seconds
                )
        self.log(
            f"case {case.name}: exit {measure.exit_code}, {measure.wall_seconds:.2f} s, "
            f"CPU {measure.cpu_seconds:.2f} s, peak RSS {measure.peak_rss_bytes / MB:.0f} MB"
        )
        saved: list[tuple[str, Path]] = []
        if case.drain:
            count = self._drain.finish()
        else:
            count, saved = count_bucket(moto, BUCKET, columns, save_dir)
        problems += self._check(case, measure, count)
        return measure, bytes_in, count, saved, problems

    @property
    def sample_seconds(self) -> float:
        return float(self.args.sample_ms) / 1000

    def _run_piped(
        self, case: Case, command: list[str], columns: frozenset[str] | None
    ) -> tuple[ProcessMeasure, int, list[str]]:
        """The connector reads from a generator subprocess; objects are drained as they land."""
        assert self.moto is not None
        self._drain = Drain(self.moto, BUCKET, columns)
        generator_errors = OUT / f"{case.name}-generator.stderr"
        with generator_errors.open("wb") as errors:
            generator = subprocess.Popen(
                [self.python, "-m", "benchmarks.generate", *command_args(case.shape)],
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=REPO,
            )
            pipe: IO[bytes] | None = generator.stdout
            assert pipe is not None
            try:
                measure = run_measured(
                    command, pipe, REPO, self.env, OUT / f"{case.name}.log", self.sample_seconds
                )
            finally:
                pipe.close()
                generator.wait()
        problems: list[str] = []
        bytes_in = 0
        try:
            summary = json.loads(generator_errors.read_text().strip().splitlines()[-1])
            bytes_in = int(summary["bytes"])
        except (IndexError, ValueError, KeyError):
            problems.append(f"generator exited with {generator.returncode} without a summary")
        return measure, bytes_in, problems

    def _measure_bound(self, saved: list[tuple[str, Path]], count: OutputCount) -> None:
        assert self.moto is not None
        self.moto.reset_bucket(BUCKET)
        self.log(f"upload bound: {count.objects} objects, {count.bytes / MB:.1f} MB")
        attempts = []
        for attempt in range(self.args.bound_runs):
            if attempt:
                self.moto.reset_bucket(BUCKET)
            attempts.append(
                measure_upload_bound(
                    self.moto,
                    BUCKET,
                    saved,
                    part_size(self.file_size_mb),
                    self.args.upload_workers,
                )
            )
        # An upper bound: the fastest of the attempts.
        self.bound = min(attempts, key=lambda bound: bound.wall_seconds)
        self.bound_records = count.records
        shutil.rmtree(saved[0][1].parent, ignore_errors=True)
        self.log(
            f"upload bound: {self.bound.wall_seconds:.2f} s, of which "
            f"{self.bound.complete_seconds:.2f} s waiting for CompleteMultipartUpload"
        )

    def _check(self, case: Case, measure: ProcessMeasure, count: OutputCount) -> list[str]:
        """The cheap correctness checks of one run."""
        shape = case.shape
        problems: list[str] = []
        if measure.exit_code != 0:
            problems.append(f"exit code {measure.exit_code} (see out/{case.name}.log)")
        problems += measure.output.problems
        if measure.output.states != shape.states:
            problems.append(f"{measure.output.states} STATE printed, {shape.states} sent")
        if round(measure.output.committed_records) != shape.records:
            problems.append(
                f"destinationStats count {measure.output.committed_records:.0f} "
                f"!= {shape.records} records sent"
            )
        if count.records != shape.records:
            problems.append(f"{count.records} records in S3, {shape.records} sent")
        expected = EXTENSIONS[case.output_format]
        unexpected = sorted(set(count.extensions) - {expected})
        if unexpected:
            problems.append(f"objects named {', '.join(unexpected)}, not {expected}")
        problems += count.problems[:3]
        return problems

    def _row(self, case: Case, measure: ProcessMeasure, bytes_in: int, count: OutputCount) -> Row:
        shape = case.shape
        return Row(
            case=case.label + (" (under py-spy)" if self.args.profile else ""),
            records=shape.records,
            bytes_in=bytes_in,
            wall_seconds=measure.wall_seconds,
            cpu_seconds=measure.cpu_seconds,
            startup_cpu_seconds=(
                self.write_startup.median_cpu_seconds if self.write_startup else None
            ),
            startup_wall_seconds=(
                self.write_startup.median_seconds if self.write_startup else None
            ),
            peak_rss_bytes=measure.peak_rss_bytes,
            bound_records_per_second=self.bound_rate,
            objects=count.objects,
            stored_bytes=count.bytes,
            content_bytes=count.content_bytes,
            finishing_seconds=measure.output.finishing_seconds,
        )

    @property
    def bound_rate(self) -> float | None:
        if self.bound is None or not self.bound.wall_seconds:
            return None
        return self.bound_records / self.bound.wall_seconds

    # ---- the report -------------------------------------------------------------------------

    def csv_encoder(self) -> str:
        """Which root-level CSV encoder the connector's Python uses (as the runs did)."""
        probe = "from destination_s3 import compiled; print(compiled.ACCELERATED)"
        found = subprocess.run(
            [self.python, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False
        )
        if found.stdout.strip() == "True":
            return "the C encoder (destination_s3/_speedups.c)"
        return "the pure-Python encoder (C encoder not built, or DESTINATION_S3_PURE_PYTHON=1)"

    def report(self, command: str) -> str:
        rows = [row.cells() for row in self.rows]
        if self.bound is not None:
            bound_row = Row(
                case=(
                    f"upload bound (S3 client alone, {self.bound.objects} objects of the JSONL"
                    " output)"
                ),
                records=self.bound_records,
                bytes_in=self.bound.bytes,
                wall_seconds=self.bound.wall_seconds,
                bound_records_per_second=self.bound_rate,
                objects=self.bound.objects,
                stored_bytes=self.bound.bytes,
                content_bytes=self.bound.bytes,
            )
            rows.append(bound_row.cells())
        startup = self.startup
        lines = [
            "# destination-s3 benchmark",
            "",
            f"- command: `{command}`",
            *machine_lines(REPO),
            f"- load average (1 min) at start {self.load_before[0]:.2f}, at end "
            f"{os.getloadavg()[0]:.2f}: other work on the machine makes every number noisier",
            f"- input: {self.args.records:,} records of ≈{self.args.record_size} B, "
            f"{self.args.streams} streams round robin, a STATE every {self.args.state_every:,} "
            f"records; connector file_size_mb {self.file_size_mb} "
            f"(part size {part_size(self.file_size_mb) / MIB:.0f} MiB); moto server on loopback, "
            + (
                "https (as S3 itself: botocore sends no payload SHA-256)"
                if self.args.tls
                else "plain http (botocore SHA-256-signs every payload)"
            ),
        ]
        lines.append(f"- root-level CSV rows: {self.csv_encoder()}")
        lines.append(
            "- the package's bytecode is written before the runs, as the image's "
            "`pip install .` writes it (runner.compile_bytecode)"
        )
        if startup is not None:
            lines.append(
                f"- `python main.py spec` start-up: median {startup.median_seconds:.2f} s of "
                f"{startup.runs} runs (min {startup.min_seconds:.2f}, max "
                f"{startup.max_seconds:.2f}; CPU {startup.median_cpu_seconds:.2f} s)"
            )
        empty = self.write_startup
        if empty is not None:
            lines.append(
                f"- fixed cost of a sync (`write` of an empty input, subtracted in the "
                f'"excl. start-up" columns): median {empty.median_seconds:.2f} s wall, '
                f"{empty.median_cpu_seconds:.2f} s CPU, peak RSS "
                f"{empty.median_peak_rss_bytes / MB:.0f} MB, of {empty.runs} runs"
            )
        if self.server_costs is not None:
            lines.append("- the S3 server itself (`python -m benchmarks.server_costs`):")
            lines += [f"  {line}" for line in self.server_costs.lines()]
        lines += ["", markdown_table(HEADERS, rows)]
        if self.bound is not None:
            lines += [
                "",
                f"The upload bound spent {self.bound.complete_seconds:.2f} s of its "
                f"{self.bound.wall_seconds:.2f} s waiting for CompleteMultipartUpload answers; "
                '"s after input" is what a case took after the end of its input (its last LOG): '
                "its last parts and completions, the removal of earlier objects, the manifest.",
            ]
        lines += ["", "## Targets", ""]
        lines.append(
            markdown_table(
                ["target", "measured", "verdict"], [t.cells() for t in self.targets()]
            ).replace("|---:|---|", "|---|---|")
        )
        if self.profiles:
            lines += ["", "## Profiles (py-spy, all running threads)"]
            for name, summary in self.profiles.items():
                lines += ["", f"### {name}", "", summary]
        return "\n".join(lines) + "\n"

    def targets(self) -> list[Target]:
        by_name = {row.case.split(" (under")[0]: row for row in self.rows}
        labels = {case.name: case.label for case in build_cases(self.args)}

        def row(name: str) -> Row | None:
            return by_name.get(labels.get(name, ""))

        def ratio(name: str) -> float | None:
            found = row(name)
            return found.ratio if found else None

        def speed_to_jsonl(name: str) -> float | None:
            """records/s of a case ÷ records/s of uncompressed JSONL, in the same run."""
            found, jsonl = row(name), row("jsonl")
            if not found or not jsonl or not jsonl.records_per_second:
                return None
            return found.records_per_second / jsonl.records_per_second

        def cpu(name: str) -> float | None:
            found = row(name)
            return found.cpu_us_per_record() if found else None

        def rss(names: Sequence[str]) -> float | None:
            peaks = [r.peak_rss_bytes for n in names if (r := row(n)) and r.peak_rss_bytes]
            return max(peaks) / MB if peaks else None

        startup = self.startup.median_seconds if self.startup else None
        empty = self.write_startup
        # The targets of the "lean write path" and compression issues; ratios and CPU include
        # start-up. Compressed output is judged against uncompressed JSONL, not the bound.
        return [
            Target("JSONL ratio to bound", ratio("jsonl"), 0.6, True),
            Target(
                "GZIP JSONL records/s ÷ JSONL records/s (same run)",
                speed_to_jsonl("jsonl_gzip"),
                0.6,
                True,
            ),
            Target(
                "ZSTD JSONL records/s ÷ JSONL records/s (same run)",
                speed_to_jsonl("jsonl_zstd"),
                0.6,
                True,
            ),
            Target(
                "Parquet SNAPPY records/s ÷ JSONL records/s (same run)",
                speed_to_jsonl("parquet"),
                0.5,
                True,
            ),
            Target("JSONL 3 GB piped ratio to bound", ratio("large"), 0.7, True),
            Target("CSV no flattening ratio to bound", ratio("csv"), 0.55, True),
            Target("CSV root-level ratio to bound", ratio("csv_root"), 0.45, True),
            Target("500 streams ratio to bound", ratio("many_streams"), 0.3, True),
            Target("CPU µs per JSONL record (incl. start-up)", cpu("jsonl"), 3, False),
            Target("CPU µs per CSV root-level record (incl. start-up)", cpu("csv_root"), 4, False),
            Target(
                "peak RSS MB, 3-stream and large cases",
                rss(["jsonl", "jsonl_gzip", "jsonl_zstd", "csv", "csv_root", "large"]),
                200,
                False,
            ),
            Target("peak RSS MB, many streams", rss(["many_streams"]), 300, False),
            Target("peak RSS MB, many Parquet streams", rss(["many_parquet"]), 400, False),
            Target("empty write CPU s", empty.median_cpu_seconds if empty else None, 0.5, False),
            Target(
                "empty write peak RSS MB",
                empty.median_peak_rss_bytes / MB if empty else None,
                60,
                False,
            ),
            Target("spec start-up s (median)", startup, 0.1, False),
        ]

    def results_json(self) -> dict[str, Any]:
        return {
            "rows": [
                {
                    **asdict(row),
                    "records_per_second": row.records_per_second,
                    "cpu_us_per_record": row.cpu_us_per_record(),
                    "ratio": row.ratio,
                    "stored_bytes_per_record": row.stored_bytes_per_record,
                    "compression_ratio": row.compression_ratio,
                }
                for row in self.rows
            ],
            "measures": {name: asdict(measure) for name, measure in self.measures.items()},
            "bound": None if self.bound is None else asdict(self.bound),
            "server_costs": None if self.server_costs is None else asdict(self.server_costs),
            "bound_records": self.bound_records,
            "startup": None if self.startup is None else asdict(self.startup),
            "write_startup": None if self.write_startup is None else asdict(self.write_startup),
        }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    defaults = StreamShape()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark `main.py write` end to end against a local moto S3 server.",
    )
    parser.add_argument("--records", type=int, default=defaults.records)
    parser.add_argument("--streams", type=int, default=defaults.streams)
    parser.add_argument(
        "--record-size", type=int, default=defaults.record_size, help="bytes per RECORD line"
    )
    parser.add_argument(
        "--state-every", type=int, default=defaults.state_every, help="records per STATE"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--cases",
        default=",".join(DEFAULT_CASES),
        help=f"comma-separated, of {','.join(ALL_CASES)} (default: all)",
    )
    parser.add_argument("--many-streams", type=int, default=500, help="streams of many_streams")
    parser.add_argument("--large-gb", type=float, default=3.0, help="input GB of the large case")
    parser.add_argument("--file-size-mb", type=int, default=DEFAULT_FILE_SIZE_MB)
    parser.add_argument("--upload-workers", type=int, default=4, help="threads of the upload bound")
    parser.add_argument("--spec-runs", type=int, default=5)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per case; the median wall time is reported"
    )
    parser.add_argument(
        "--bound-runs", type=int, default=3, help="upload bound attempts; the fastest counts"
    )
    parser.add_argument("--sample-ms", type=float, default=50, help="RSS sampling interval")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve S3 over https, as AWS does (over http botocore SHA-256-signs every payload)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run each case under py-spy (numbers then include py-spy's cost)",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s")
    parser.add_argument("--output", type=Path, default=OUT / "results.md")
    args = parser.parse_args(argv)
    args.cases = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(args.cases) - set(ALL_CASES))
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    if args.profile and not Path(sys.executable).with_name("py-spy").exists():
        parser.error("--profile needs py-spy in the venv: pip install py-spy")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    command = shlex.join(["python", "-m", "benchmarks", *arguments])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="destination-s3-bench-") as work:
        bench = Benchmark(args, Path(work))
        bench.run(build_cases(args))
    report = bench.report(command)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    args.output.with_suffix(".json").write_text(
        json.dumps(bench.results_json(), indent=2, default=str) + "\n"
    )
    print(report)
    bench.log(f"written to {args.output}")
    return 1 if any(row.problems for row in bench.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
