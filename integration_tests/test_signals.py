"""SIGTERM as orchestrators send it: PyAirbyte terminates `check` once it has read the status and
accepts only exit code 0 or -15; Kubernetes SIGKILLs a pod 30 s after SIGTERM."""

from __future__ import annotations

import signal
import time

from integration_tests.connector import MakeConfig, start_connector
from integration_tests.fault_proxy import FaultProxy


def test_sigterm_right_after_the_check_status_ends_quietly(
    bucket: str, make_config: MakeConfig
) -> None:
    # Before the fix, 8 runs exited [1, 1, -15, 1, 0, 0, -15, 1] with a FATAL log line.
    codes = []
    for _ in range(5):
        with start_connector(["check"], config=make_config(bucket)) as check:
            check.wait_for_type("CONNECTION_STATUS", timeout=60)
            check.terminate(signal.SIGTERM)
            run = check.finish(timeout=30)
        codes.append(run.returncode)
        status = run.connection_status()
        assert status is not None and status["status"] == "SUCCEEDED"
        assert run.trace_errors() == []
        assert run.logs("FATAL") == [] and run.logs("ERROR") == []
        assert "Traceback" not in run.stderr
    assert set(codes) <= {0, -signal.SIGTERM}, codes
    assert 0 in codes, codes


def test_sigterm_before_the_check_status_is_out_ends_with_the_signal(
    bucket: str, make_config: MakeConfig, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add_rule("delay", "GetBucketLocation", delay_s=60)
    config = make_config(bucket, endpoint=fault_proxy.endpoint)
    with start_connector(["check"], config=config) as check:
        deadline = time.monotonic() + 60
        while not fault_proxy.stats.seen("GetBucketLocation") and time.monotonic() < deadline:
            time.sleep(0.05)
        check.terminate(signal.SIGTERM)
        started = time.monotonic()
        run = check.finish(timeout=30)
    assert run.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 5
    assert run.connection_status() is None and run.trace_errors() == []
    assert "Traceback" not in run.stderr


def test_spec_ignores_nothing_and_exits_zero_after_sigterm_once_answered() -> None:
    with start_connector(["spec"]) as spec:
        spec.wait_for_type("SPEC", timeout=30)
        spec.terminate(signal.SIGTERM)
        run = spec.finish(timeout=30)
    assert run.returncode in (0, -signal.SIGTERM)
    assert run.spec() is not None and "Traceback" not in run.stderr
