#!/usr/bin/env bash
# Runs the C code's differential tests (unit_tests/test_speedups.py, test_plain_records.py,
# test_scan_records.py, the record-id tests of test_encoders.py) built under AddressSanitizer,
# in a copy of the tree (build/asan), so that any read outside an input buffer stops the run
# with a report. PYTHONMALLOC=malloc gives every Python buffer its own allocation, which ASan
# guards. Usage: unit_tests/asan.sh PYTHON
set -euo pipefail
python="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # absolute, not resolved: keep the venv
cd "$(dirname "$0")/.."
libasan=$(gcc -print-file-name=libasan.so 2>/dev/null || true)
if [ -z "$libasan" ] || [ ! -e "$libasan" ]; then
    echo "asan: no gcc with libasan on this machine; the sanitizer run is not possible here" >&2
    exit 0
fi
work=build/asan
rm -rf "$work" && mkdir -p "$work"
cp -r destination_s3 unit_tests setup.py "$work"/
rm -f "$work"/destination_s3/*.so
cd "$work"
CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1" LDFLAGS="-fsanitize=address" \
    "$python" setup.py -q build_ext --inplace
export LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc
# The module under test must be the sanitized one built here, not the project's own build.
"$python" - <<'PY'
import os, sys
import destination_s3._speedups as speedups
if not speedups.__file__.startswith(os.getcwd()):
    sys.exit(f"asan: imported {speedups.__file__}, not the sanitized build")
PY
# -s: ASan writes its report to stderr, which pytest would otherwise capture and lose.
"$python" -m pytest -q -s -p no:cacheprovider -p no:logging unit_tests/test_speedups.py unit_tests/test_plain_records.py \
    unit_tests/test_scan_records.py
"$python" -m pytest -q -s -p no:cacheprovider -p no:logging unit_tests/test_encoders.py -k record_ids
echo "asan: the differential corpus ran clean under AddressSanitizer"
