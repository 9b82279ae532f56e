"""`plan_removal`: which earlier objects (and markers) a successful sync removes from a stream.

One stream, `data/users/`, holding objects of generations 0, 1 and 3 (the gen 1 marker in the
legacy form without `.marker`), one object with no recorded generation, the object this sync
wrote, and keys that are never ours to remove: a foreign file, a sub-folder, a neighbour stream.
"""

from __future__ import annotations

import pytest

from destination_s3.layout import stream_layout
from destination_s3.retention import Removal, needs_removal, plan_removal
from destination_s3.writer import StreamTarget

LAYOUT = stream_layout(None, "data", None, "", "users", "1")
DIRECTORY = LAYOUT.root  # data/users/
MARKERS = "data/_tarsal_generations/users/"

GEN0 = DIRECTORY + "2023_01_01_1672531200000_0.jsonl"
GEN1 = DIRECTORY + "2023_02_01_1675209600000_0.jsonl"
GEN3 = DIRECTORY + "2023_03_01_1677628800000_0.csv"
UNRECORDED = DIRECTORY + "2022_12_01_1669852800000_0.jsonl"
WRITTEN = DIRECTORY + "2023_11_14_1700000000000_0.jsonl"  # this sync's, recorded as gen 3
FOREIGN = DIRECTORY + "README.txt"
SUB_FOLDER = DIRECTORY + "sub/2023_01_01_1672531200000_0.jsonl"
NEIGHBOUR = "data/users_archive/2023_01_01_1672531200000_0.jsonl"

MARKER0 = MARKERS + "0/2023_01_01_1672531200000_0.jsonl.marker"
MARKER1 = MARKERS + "1/2023_02_01_1675209600000_0.jsonl"  # legacy: no suffix
MARKER3 = MARKERS + "3/2023_03_01_1677628800000_0.csv.marker"
MARKER_WRITTEN = MARKERS + "3/2023_11_14_1700000000000_0.jsonl.marker"
# Gen 0 marker of an object that is gone already, and a marker of the namespaced stream
# `users.x` (whose markers live under this stream's markers prefix): never this stream's.
MARKER_GONE = MARKERS + "0/2022_06_01_1654041600000_0.jsonl.marker"
MARKER_OTHER = MARKERS + "x/0/2023_01_01_1672531200000_0.jsonl.marker"

OBJECTS = [UNRECORDED, GEN0, GEN1, GEN3, WRITTEN, FOREIGN, SUB_FOLDER, NEIGHBOUR]
MARKER_KEYS = [MARKER0, MARKER_GONE, MARKER1, MARKER3, MARKER_WRITTEN, MARKER_OTHER]


def _target(
    sync_mode: str, generation_id: int | None, minimum: int, truncate: bool
) -> StreamTarget:
    return StreamTarget(
        name="users",
        namespace=None,
        layout=LAYOUT,
        header=b"",
        sync_mode=sync_mode,
        truncate=truncate,
        generation_id=generation_id,
        minimum_generation_id=minimum,
        markers_prefix=MARKERS,
    )


CASES = [
    # An append of generation 5 with minimum 0 keeps everything (nothing is even listed).
    pytest.param(
        _target("append", 5, 0, truncate=False),
        False,
        Removal([], [], 0, kept=[UNRECORDED, GEN0, GEN1, GEN3]),
        id="append-min-0",
    ),
    # An append with a minimum (not a truncate): recorded generations below it go, the object
    # with no recorded generation stays.
    pytest.param(
        _target("append", 5, 3, truncate=False),
        True,
        Removal([GEN0, GEN1], [MARKER0, MARKER_GONE, MARKER1], 0, kept=[UNRECORDED, GEN3]),
        id="append-min-3",
    ),
    # PyAirbyte's append: generation 1, minimum 1, a truncate refresh. Gen >= 1 stays; gen 0 and
    # the unrecorded object go.
    pytest.param(
        _target("append", 1, 1, truncate=True),
        True,
        Removal([UNRECORDED, GEN0], [MARKER0, MARKER_GONE], 1, kept=[GEN1, GEN3]),
        id="pyairbyte-append-1-1",
    ),
    # Overwrite of generation 3: gens below 3 and the unrecorded object go; gen 3 (an earlier
    # attempt of this generation) stays.
    pytest.param(
        _target("overwrite", 3, 3, truncate=True),
        True,
        Removal([UNRECORDED, GEN0, GEN1], [MARKER0, MARKER_GONE, MARKER1], 1, kept=[GEN3]),
        id="overwrite-gen-3",
    ),
    # Overwrite without generation ids: every earlier object of ours goes, with its markers.
    pytest.param(
        _target("overwrite", None, 0, truncate=True),
        True,
        Removal([UNRECORDED, GEN0, GEN1, GEN3], [MARKER0, MARKER1, MARKER3], 0),
        id="overwrite-no-ids",
    ),
]


@pytest.mark.parametrize(("target", "lists", "expected"), CASES)
def test_plan_removal(target: StreamTarget, lists: bool, expected: Removal) -> None:
    assert needs_removal(target) is lists
    assert plan_removal(target, OBJECTS, MARKER_KEYS, {WRITTEN}) == expected


def test_the_highest_recorded_generation_decides() -> None:
    # An object recorded by two generations (a marker written again by a later attempt) is as
    # recent as its latest one.
    twice = [MARKERS + "1/2023_01_01_1672531200000_0.jsonl.marker", MARKER0]
    target = _target("overwrite", 1, 1, truncate=True)
    assert plan_removal(target, [GEN0], twice, set()) == Removal([], [MARKER0], 0, kept=[GEN0])


def test_an_empty_stream_removes_nothing() -> None:
    target = _target("overwrite", 3, 3, truncate=True)
    assert plan_removal(target, [], [], set()) == Removal([], [], 0)


def test_a_marker_with_its_suffix_twice_records_nothing() -> None:
    # The suffix is taken off once: `<name>.marker.marker` stands for an object named
    # `<name>.marker`, which is not ours, so UNRECORDED stays unrecorded and a truncating sync
    # removes it (counted as such).
    doubled = MARKERS + "5/2022_12_01_1669852800000_0.jsonl.marker.marker"
    removal = plan_removal(
        _target("overwrite", 5, 5, truncate=True), [UNRECORDED], [doubled], set()
    )
    assert removal == Removal([UNRECORDED], [], 1, [])
