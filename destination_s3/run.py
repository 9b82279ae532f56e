"""Console entry point (`destination-s3`, `python main.py`).

`spec` is answered straight from spec.json and `write` runs in destination_s3.cli, both without
importing the CDK (over a second of CPU in imports): orchestrators call `spec` often, and `write`
on every sync. Their output is the messages the CDK prints. `check` runs with the CDK.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import pkgutil
import sys
from collections.abc import Iterator


def spec_message() -> str:
    spec_bytes = pkgutil.get_data("destination_s3", "spec.json")
    assert spec_bytes is not None, "spec.json is missing from the destination_s3 package"
    return json.dumps({"type": "SPEC", "spec": json.loads(spec_bytes)}, separators=(",", ":"))


def raise_open_file_limit() -> None:
    """Let the soft limit on open files rise to the hard one (at most 65,536): with hundreds of
    streams, each spilled buffer holds a file open (spill.py) besides the upload sockets. The
    spill keeps to half of whatever the limit is (memory.py)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def limit_heap_growth() -> None:
    """Keep glibc from holding on to freed part buffers, without a page fault per buffer.

    Parts of 5 MiB are allocated on the main thread and freed on upload threads. glibc's sliding
    mmap threshold then serves them from per-thread arenas, which fragment and keep growing over
    a long sync. A fixed threshold above every part and stdin chunk (16 MiB) serves them all from
    at most two arenas (plenty for a main thread and a few upload threads), where freed buffers
    are reused: RSS stays flat over 3 GB of input. (A 1 MiB threshold, used before, mapped and
    unmapped every buffer: ≈1.3 µs of system time per record in page faults.)
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return
    m_mmap_threshold, m_arena_max = -3, -8  # from <malloc.h>
    libc.mallopt(m_mmap_threshold, 16 << 20)
    libc.mallopt(m_arena_max, 2)


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while the modules load; what they made is then left out of
    every later collection.

    Importing creates objects that all live on (modules, classes, botocore's and jsonschema's
    tables). Each time enough of them pile up, CPython runs a collection that walks all of them
    again, finding nothing to free: a quarter of the CPU of an empty `write` (0.58 -> 0.45 s
    measured, see README Performance). Frozen, they are never walked again; reference counting
    still frees everything as usual, and collection resumes (if it was on) for what the sync
    itself creates. The few cycles the imports leave as garbage stay frozen with the rest.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def run() -> None:
    if sys.argv[1:] == ["spec"]:
        print(spec_message())
        return
    limit_heap_growth()
    if sys.argv[1:2] == ["write"]:
        raise_open_file_limit()
        with collection_paused():
            from destination_s3.cli import main
        main(sys.argv[1:])  # exits the process
    with collection_paused():
        from destination_s3.destination import DestinationS3

    DestinationS3().run(sys.argv[1:])
    # Everything is said and every thread is done. Tearing down the interpreter (and the CDK's
    # thousands of objects) takes long enough that an orchestrator's SIGTERM after our answer
    # would land in it, after Python restored the default handler: exit at once instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
