#!/usr/bin/env bash
# Runs every test (unit, packet-level, integration) from a clean checkout:
# sets up what is missing, builds, runs, and ends with the line "N passed, N failed"
# (skipped tests are counted on the line before).
#   scripts/test.sh [meson test args, e.g. --suite unit]
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
meson test -C build --print-errorlogs "$@"
rc=$?
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
if skipped:
    print(f"({skipped} skipped: a skipped test says why in its log)")
print(f"{passed} passed, {failed} failed")
PY
exit $rc
