"""main.py in a process whose files may not grow past DESTINATION_S3_TEST_FILE_LIMIT bytes
(RLIMIT_FSIZE): a real disk refusing a spill midway, for integration_tests/test_spill.py.

CPython ignores SIGXFSZ, so a write past the limit is cut short and the next one fails with
EFBIG ("File too large") instead of killing the process. Pipes (stdin, stdout) are not files.
"""

from __future__ import annotations

import os
import resource
import runpy
import sys
from pathlib import Path

MAIN_PY = Path(__file__).resolve().parent.parent / "main.py"

if __name__ == "__main__":
    limit = int(os.environ["DESTINATION_S3_TEST_FILE_LIMIT"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.path.insert(0, str(MAIN_PY.parent))
    sys.argv[0] = str(MAIN_PY)
    runpy.run_path(str(MAIN_PY), run_name="__main__")
