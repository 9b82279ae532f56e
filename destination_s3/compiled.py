"""The optional C extension (destination_s3/_speedups.c), or None.

setup.py builds it when a C compiler exists; without one the install goes on and every caller
uses its pure-Python twin, which gives the same results, only slower. DESTINATION_S3_PURE_PYTHON=1
turns it off (to compare, or to rule it out).
"""

from __future__ import annotations

import os
from types import ModuleType

speedups: ModuleType | None
try:
    from destination_s3 import _speedups as speedups
except ImportError:  # built without a C compiler
    speedups = None
if os.environ.get("DESTINATION_S3_PURE_PYTHON") == "1":
    speedups = None
ACCELERATED = speedups is not None
