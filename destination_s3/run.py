"""Console entry point (`destination-s3`, `python main.py`)."""

from __future__ import annotations

import sys


def run() -> None:
    from destination_s3.destination import DestinationS3

    DestinationS3().run(sys.argv[1:])
