"""main.py in a process with lower resource limits, for integration_tests/test_spill.py:

* DESTINATION_S3_TEST_FILE_LIMIT: files may not grow past this many bytes (RLIMIT_FSIZE), a real
  disk refusing a spill midway. CPython ignores SIGXFSZ, so a write past the limit is cut short
  and the next one fails with EFBIG ("File too large") instead of killing the process. Pipes
  (stdin, stdout) are not files.
* DESTINATION_S3_TEST_OPEN_FILES: at most this many open descriptors (RLIMIT_NOFILE, soft and
  hard, so the connector cannot raise it).
"""

from __future__ import annotations

import os
import resource
import runpy
import sys
from pathlib import Path

MAIN_PY = Path(__file__).resolve().parent.parent / "main.py"

LIMITS = {
    "DESTINATION_S3_TEST_FILE_LIMIT": resource.RLIMIT_FSIZE,
    "DESTINATION_S3_TEST_OPEN_FILES": resource.RLIMIT_NOFILE,
}

if __name__ == "__main__":
    for variable, limit in LIMITS.items():
        if variable in os.environ:
            value = int(os.environ[variable])
            resource.setrlimit(limit, (value, value))
    sys.path.insert(0, str(MAIN_PY.parent))
    sys.argv[0] = str(MAIN_PY)
    runpy.run_path(str(MAIN_PY), run_name="__main__")
