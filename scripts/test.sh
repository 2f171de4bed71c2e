#!/usr/bin/env bash
# Runs every test (unit, packet-level, integration) from a clean checkout:
# sets up what is missing (guest kernels included), builds, runs, and ends with
# the line "N passed, N failed[, N skipped]", every skip listed with its reason
# above it. In CI (CI=true) a skip for anything setup provides is a failure
# (scripts/skip.sh).
#   scripts/test.sh [meson test args, e.g. --suite unit]
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh --guests || { echo "0 passed, 1 failed"; exit 1; }
meson test -C build --print-errorlogs "$@"
rc=$?
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = 0
skips = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t.get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        why = [l.split("SKIP: ", 1)[1] for l in out.splitlines() if "SKIP: " in l]
        skips.append((t.get("name", "?"), why[-1] if why else "no reason printed"))
    else:
        failed += 1
for name, why in skips:
    print(f"skipped: {name}: {why}")
print(f"{passed} passed, {failed} failed" + (f", {len(skips)} skipped" if skips else ""))
PY
exit $rc
