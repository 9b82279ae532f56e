"""Console entry point (`destination-s3`, `python main.py`).

`spec` is answered straight from spec.json without importing the CDK (about a second of imports):
orchestrators call it often, and its output is the same message the CDK prints.
"""

from __future__ import annotations

import json
import pkgutil
import sys


def spec_message() -> str:
    spec_bytes = pkgutil.get_data("destination_s3", "spec.json")
    assert spec_bytes is not None, "spec.json is missing from the destination_s3 package"
    return json.dumps({"type": "SPEC", "spec": json.loads(spec_bytes)}, separators=(",", ":"))


def run() -> None:
    if sys.argv[1:] == ["spec"]:
        print(spec_message())
        return
    from destination_s3.destination import DestinationS3

    DestinationS3().run(sys.argv[1:])
