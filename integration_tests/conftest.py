"""Fixtures: one moto server per session, wiped before every test."""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterator

import pytest

from integration_tests.connector import MakeConfig, build_config
from integration_tests.fault_proxy import FaultProxy, start_proxy
from integration_tests.s3_server import MotoServer, unique_name


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto server shared by the whole session (started once, stopped at the end)."""
    server = MotoServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(moto_server: MotoServer) -> MotoServer:
    """The session's server, reset for this test: empty, IAM enforcement off."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def bucket(s3: MotoServer) -> str:
    """A fresh bucket in us-east-1 with a random name."""
    return s3.create_bucket(unique_name("it-bucket"), region="us-east-1")


@pytest.fixture
def make_config(s3: MotoServer) -> MakeConfig:
    """:func:`build_config` bound to the test server.

    Default credentials are the access keys of the server's admin user (``Allow *``), which stay
    valid if the test later turns IAM enforcement on.
    """
    return functools.partial(build_config, server=s3)


@pytest.fixture(scope="session")
def _session_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    with start_proxy(moto_server.endpoint) as proxy:
        yield proxy


@pytest.fixture
def fault_proxy(_session_proxy: FaultProxy, s3: MotoServer) -> Iterator[FaultProxy]:
    """A seeded fault-injecting proxy in front of the (reset) test server: no rules yet. What it
    injected is added to the session's tally, printed at the end of the run (README quotes it)."""
    _session_proxy.reset(seed=0)
    yield _session_proxy
    stats = _session_proxy.stats
    assert stats.errors() == [], f"the proxy itself failed: {stats.errors()}"
    RELIABILITY_TALLY["fault tests"] += 1
    RELIABILITY_TALLY["S3 requests through the fault proxy"] += stats.seen()
    RELIABILITY_TALLY["faults injected"] += stats.faults()


# Figures of the reliability tests, summed over the run (tests add to it; see README Reliability).
RELIABILITY_TALLY: collections.Counter[str] = collections.Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RELIABILITY_TALLY:
        figures = ", ".join(f"{name}: {count}" for name, count in RELIABILITY_TALLY.items())
        terminalreporter.write_line(f"reliability figures: {figures}")
