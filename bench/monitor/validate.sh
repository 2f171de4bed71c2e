#!/usr/bin/env bash
# Monitor agreement benchmark: runs tests/integration/monitor_validation.sh
# with longer scenarios (MON_SECS, default 20 s each) ROUNDS times (default 3),
# merges the paired samples, and writes the agreement table into
# docs/monitor.md between the AGREEMENT markers. Then the guest-scheduling
# scenario (tests/integration/monitor_guest.sh, longer: a test bed with a
# consolidated and an unconsolidated vmsim guest; GUEST_SECS per bulk
# transfer, default 20, GUEST_SHORT short transfers per guest and direction,
# default 50) between the GUEST markers, unless NO_GUEST=1. Then the cost
# micro-benchmark (bench_monitor) unless NO_COST=1, between the COST markers.
# NO_AGREEMENT=1 skips the agreement rounds. MON_BED names the bed (default mv). Raw data:
# bench/results/monitor-<stamp>/.
#   bench/monitor/validate.sh [BUILD_DIR]
# Root, hugepages, iperf3; 2 cores assumed; ~(ROUNDS x 2 min) + 3 min + 4 min.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/env.sh"
BUILD=${1:-$ROOT/build}
ROUNDS=${ROUNDS:-3}
SECS=${MON_SECS:-20}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/results/monitor-$STAMP
mkdir -p "$OUT"
BUILD_REL=$(realpath --relative-to="$ROOT" "$BUILD")   # the docs name the build dir relative to the checkout
CMD="bench/monitor/validate.sh $BUILD_REL  (ROUNDS=$ROUNDS MON_SECS=$SECS)"
: > "$OUT/samples.jsonl"; : > "$OUT/counts.jsonl"
[ "${NO_AGREEMENT:-0}" != 1 ] || ROUNDS=0
for r in $(seq "$ROUNDS"); do
  mkdir -p "$OUT/round$r"
  echo "[validate] round $r / $ROUNDS" >&2
  if ! VSW_BUILD=$BUILD MON_SECS=$SECS MON_RESULTS="$OUT/round$r" \
      "$ROOT/tests/integration/monitor_validation.sh" > "$OUT/round$r/log.txt" 2>&1; then
    echo "[validate] round $r: the CI floors failed or the run broke (kept, see $OUT/round$r/log.txt)" >&2
  fi
  cat "$OUT/round$r/samples.jsonl" >> "$OUT/samples.jsonl" 2>/dev/null || true
  cat "$OUT/round$r/counts.jsonl" >> "$OUT/counts.jsonl" 2>/dev/null || true
done
# Retransmission counts: sum the rounds per scenario.
if [ "$ROUNDS" -gt 0 ]; then
python3 - "$OUT/counts.jsonl" > "$OUT/counts_sum.jsonl" <<'PY'
import json, sys
acc = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    a = acc.setdefault(r["label"], {k: 0 for k in r if k != "label"})
    for k, v in r.items():
        if k != "label":
            a[k] += v
for label, a in acc.items():
    print(json.dumps(dict(label=label, **a)))
PY
python3 "$ROOT/tests/integration/monitor_validate.py" compare --samples "$OUT/samples.jsonl" \
  --counts "$OUT/counts_sum.jsonl" --out-json "$OUT/result.json" --out-md "$OUT/agreement.md" --cmd "$CMD" > /dev/null
fi

if [ "${NO_GUEST:-0}" != 1 ]; then
  GSECS=${GUEST_SECS:-20} GSHORT=${GUEST_SHORT:-50}
  GCMD="NO_AGREEMENT=1 NO_COST=1 GUEST_SECS=$GSECS GUEST_SHORT=$GSHORT bench/monitor/validate.sh $BUILD_REL"
  echo "[validate] guest scenario (bed ${MON_BED:-mv})" >&2
  # The CI test's run (bed up, transfers, bed down with its logs), longer;
  # its CI floors may fail here: the table is judged again below either way.
  if ! VSW_BUILD=$BUILD MON_GUEST_SECS=$GSECS MON_GUEST_SHORT=$GSHORT MON_RESULTS="$OUT/guest" \
      "$ROOT/tests/integration/monitor_guest.sh" > "$OUT/guest-run.log" 2>&1; then
    echo "[validate] guest run: the CI floors failed or the run broke (kept, see $OUT/guest-run.log)" >&2
  fi
  if [ -f "$OUT/guest/cases.json" ]; then
    python3 "$ROOT/tests/integration/monitor_guest.py" judge --out "$OUT/guest" --logs "$OUT/guest/logs" \
      --cmd-line "$GCMD" > /dev/null || true
    cp "$OUT/guest/guest.md" "$OUT/guest.md" 2>/dev/null || true
  fi
fi

if [ "${NO_COST:-0}" != 1 ] && [ -x "$BUILD/bench/monitor/bench_monitor" ]; then
  echo "[validate] cost benchmark" >&2
  "$BUILD/bench/monitor/bench_monitor" --benchmark_filter='BM_Cost|BM_Variants' --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_format=json > "$OUT/cost.json"
  python3 - "$OUT/cost.json" "$BUILD_REL" > "$OUT/cost.md" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["benchmarks"]
med = [x for x in b if x.get("aggregate_name") == "median"]
print("| connections | generator alone cycles/pkt | + parse + lookup | + monitor | parse + lookup add | monitor adds (median batch) | monitor adds (mean) | **parse + lookup + monitor add** | monitor adds, server a guest | ns/pkt with monitor | monitor bytes/conn | flow table bytes/conn |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
def is_guest(name):  # BM_Cost/N/G/...: G = 1, the server a guest (older builds: BM_Cost/N/...)
    p = name.split("/")
    return len(p) > 2 and p[2].isdigit() and p[2] != "0"
guest = {int(x["run_name"].split("/")[1]): x["adds_cyc"] for x in med
         if x["run_name"].startswith("BM_Cost/") and is_guest(x["run_name"])}
for x in med:
    if not x["run_name"].startswith("BM_Cost/") or is_guest(x["run_name"]):
        continue
    n = int(x["run_name"].split("/")[1])
    print("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | **%.0f** | %.0f | %.1f | %d | %.0f |" % (
        n, x["gen_cyc"], x["base_cyc"], x["mon_cyc"], x["table_adds_cyc"], x["adds_cyc"],
        x["mon_cyc_mean"] - x["base_cyc_mean"], x["total_adds_cyc"], guest.get(n, float("nan")),
        x["mon_cyc"] / x["tsc_ghz"], x["monitor_bytes_per_conn"], x["table_bytes_per_conn"]))
v = [x for x in med if x["run_name"].startswith("BM_Variants")]
if v:
    v = v[0]
    print()
    print("Where the 1M cost goes (`BM_Variants`, cycles/packet, median batch; parse+lookup alone: %.0f):" % v["base_cyc"])
    print()
    print("| pages of the monitor state | no prefetch | prefetch pass after track_bulk (old) | prefetch from the table's lookup (now) |")
    print("|---|---|---|---|")
    for i, pg in enumerate(["4 KB (MADV_NOHUGEPAGE)", "THP hint (the stage)", "hugetlbfs 2 MB"]):
        print("| %s | %.0f | %.0f | %.0f |" % (pg, v["v%d_cyc" % (3 * i)], v["v%d_cyc" % (3 * i + 1)], v["v%d_cyc" % (3 * i + 2)]))
print()
print("Median of 3 repetitions, `%s/bench/monitor/bench_monitor --benchmark_filter='BM_Cost|BM_Variants' --benchmark_repetitions=3` (configurations "
      "interleaved every 64 batches within one run; per-packet figures are medians over batches)." % sys.argv[2])
PY
fi

DOC=$ROOT/docs/monitor.md
python3 - "$DOC" "$OUT/agreement.md" "$OUT/cost.md" "$OUT/guest.md" <<'PY'
import os, sys
doc, agr, cost = sys.argv[1:4]
text = open(doc).read()
def put(text, tag, path):
    if not os.path.exists(path):
        return text
    a, b = "<!-- %s:BEGIN -->" % tag, "<!-- %s:END -->" % tag
    i, j = text.index(a) + len(a), text.index(b)
    return text[:i] + "\n" + open(path).read() + text[j:]
text = put(text, "AGREEMENT", agr)
text = put(text, "COST", cost)
text = put(text, "GUEST", sys.argv[4])
open(doc, "w").write(text)
PY
echo "[validate] results in $OUT; docs/monitor.md updated" >&2
