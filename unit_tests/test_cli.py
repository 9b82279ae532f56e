"""The `write` command's edges: its arguments are the CDK's, and an unusable config or catalog file
is reported as what it is."""

from __future__ import annotations

import contextlib
import gc
import json
import resource
from pathlib import Path

import pytest

from destination_s3 import protocol
from destination_s3.cli import failure_of, parse_args, read_config
from destination_s3.destination import DestinationS3
from destination_s3.errors import CatalogError, Failed, FailureType
from destination_s3.run import collection_paused, raise_open_file_limit


@pytest.mark.parametrize(
    "argv",
    [
        ["write", "--config", "c.json"],
        ["write", "--catalog", "k.json"],
        ["write", "--config", "c.json", "--catalog", "k.json", "extra"],
        ["write", "--config", "c.json", "--catalog", "k.json", "--debug"],
    ],
)
def test_wrong_arguments_are_refused_as_the_cdk_refuses_them(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ours:
        parse_args(argv)
    ours_err = capsys.readouterr().err
    with pytest.raises(SystemExit) as theirs:
        DestinationS3().parse_args(argv)
    assert (ours.value.code, ours_err) == (theirs.value.code, capsys.readouterr().err)
    assert ours.value.code == 2 and "usage:" in ours_err


def test_the_cdks_write_arguments_are_accepted() -> None:
    parsed = parse_args(["write", "--config", "c.json", "--catalog", "k.json"])
    assert (parsed.command, parsed.config, parsed.catalog) == ("write", "c.json", "k.json")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot be read: No such file or directory."), (b"{bad", "is not valid JSON")],
)
def test_an_unusable_config_file_is_a_config_error_naming_it(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(Failed) as failed:
        read_config(str(path))
    failure = failed.value.failure
    assert failure.failure_type is FailureType.CONFIG_ERROR
    assert failure.message is not None
    assert failure.message.startswith(f"The config file {path} {problem}")


def test_a_catalog_error_before_the_sync_is_reported_as_itself() -> None:
    error = CatalogError("The configured catalog k.json cannot be read: gone", user_can_fix=False)
    failure = failure_of(error)
    assert (failure.message, failure.failure_type) == (str(error), FailureType.SYSTEM_ERROR)
    assert json.loads(protocol.trace_message(failure))["trace"]["error"]["message"] == str(error)


@pytest.mark.parametrize("soft", [64, 1024])
def test_write_raises_the_open_file_limit_to_the_hard_one(soft: int) -> None:
    # Each spilled stream buffer holds a file open (spill.py); the spill keeps to half the limit.
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, wanted), hard))
    try:
        raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (before, hard))


@pytest.mark.parametrize("import_fails", [False, True])
def test_collection_pauses_only_while_modules_load(import_fails: bool) -> None:
    # A sync left without cyclic collection would keep every cycle it makes until it ends.
    assert gc.isenabled()
    try:
        expected = pytest.raises(ImportError) if import_fails else contextlib.nullcontext()
        with expected, collection_paused():
            assert not gc.isenabled()
            if import_fails:
                import destination_s3.no_such_module  # noqa: F401
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        gc.disable()
        with collection_paused():
            pass
        assert not gc.isenabled()  # left as it was found
        gc.enable()
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # what comes after is collected again
    finally:
        gc.unfreeze()
