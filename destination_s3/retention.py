"""Which objects of earlier syncs a successful sync removes from a stream, and the removal.

The Airbyte protocol's rule: at the end of a successful sync, a stream holds no data of a
generation below `minimum_generation_id`. Every object this connector writes with a generation id
has a marker recording it (keys.py), so the rule is applied exactly:

- an object whose recorded generation is below the minimum is removed, in any sync mode;
- an object whose recorded generation is at or above the minimum is kept, in any sync mode (an
  earlier attempt of this generation, or an append sync of a later one);
- an object with no recorded generation (written before markers existed for every sync mode, or
  by a sync without generation ids) is removed only by a truncating sync: `overwrite`, or a
  truncate refresh (`minimum_generation_id == generation_id`);
- an `overwrite` sync without generation ids removes every earlier object, as before refreshes.

Only keys below the stream's root that its layout could have written are candidates (layout.py):
in the default layout the root's direct children named like our objects; with a path template,
the keys its folders after the root and our object names match. Never a neighbour's files, never
a file someone else put there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from destination_s3.keys import split_marker
from destination_s3.storage import Bucket, StoredObject
from destination_s3.writer import StreamTarget

logger = logging.getLogger("airbyte")


@dataclass(frozen=True)
class Removal:
    objects: list[str]  # data objects to delete
    markers: list[str]  # their markers, and markers of generations below the minimum
    unrecorded: int  # how many of `objects` had no recorded generation
    kept: list[str] = field(default_factory=list)  # our earlier objects that stay


def needs_removal(target: StreamTarget) -> bool:
    """Whether the stream can have anything to remove (else nothing is even listed)."""
    return target.truncate or target.minimum_generation_id > 0


def plan_removal(
    target: StreamTarget, object_keys: Iterable[str], marker_keys: Iterable[str], written: set[str]
) -> Removal:
    """Pure: what to delete, given the keys directly under the stream's directory and under its
    markers prefix, and the keys this sync wrote."""
    layout, markers_prefix = target.layout, target.markers_prefix
    directory = layout.root
    minimum = target.minimum_generation_id
    generations: dict[str, list[int]] = {}
    markers_of: dict[str, list[str]] = {}
    stale_markers = []
    for marker in marker_keys:
        parsed = split_marker(marker[len(markers_prefix) :])
        key = layout.object_key_of_marker(parsed[1]) if parsed is not None else None
        if parsed is None or key is None:
            continue
        generation = parsed[0]
        generations.setdefault(key, []).append(generation)
        markers_of.setdefault(key, []).append(marker)
        if generation < minimum:
            stale_markers.append(marker)
    objects, kept, unrecorded = [], [], 0
    for key in object_keys:
        if key in written or not layout.is_own_key(key[len(directory) :]):
            continue
        recorded = generations.get(key)
        if target.truncate and target.generation_id is None:
            remove = True
        elif recorded is None:
            remove = target.truncate
            unrecorded += remove
        else:
            remove = max(recorded) < minimum
        if remove:
            objects.append(key)
            stale_markers.extend(m for m in markers_of.get(key, []) if m not in stale_markers)
        else:
            kept.append(key)
    return Removal(objects, stale_markers, unrecorded, kept)


def remove_earlier_objects(
    bucket: Bucket, target: StreamTarget, written: set[str]
) -> list[StoredObject]:
    """Apply `plan_removal` to one stream, with a LOG line saying what went and why; returns our
    earlier objects that stay (for a truncating stream: earlier attempts of this generation)."""
    if not needs_removal(target):
        return []
    markers = bucket.list_keys(target.markers_prefix) if target.generation_id is not None else ()
    delimiter = None if target.layout.recursive else "/"
    listed = {o.key: o for o in bucket.list_objects(target.directory, delimiter=delimiter)}
    removal = plan_removal(target, listed, markers, written)
    where = bucket.url(target.directory)
    if removal.objects:
        if target.sync_mode != "overwrite":
            # A client may ask for a truncate refresh without meaning to (PyAirbyte sends
            # generation 1 / minimum 1 on every sync): say so before anything goes.
            minimum = target.minimum_generation_id
            why = (
                f"minimum_generation_id == generation_id == {minimum}, a truncate refresh"
                if target.truncate
                else f"minimum_generation_id is {minimum}"
            )
            logger.warning(
                "Stream %s (sync mode %s): removing %d objects (%d with no recorded generation) "
                "from %s because the catalog sets %s: data of earlier generations must go.",
                target.name,
                target.sync_mode,
                len(removal.objects),
                removal.unrecorded,
                where,
                why,
            )
        bucket.delete_keys(removal.objects)
        logger.info(
            "Removed %d objects of earlier generations from %s", len(removal.objects), where
        )
    if removal.markers:
        bucket.delete_keys(removal.markers)
    return [listed[key] for key in removal.kept]
