#!/usr/bin/env bash
# Monitor agreement benchmark: runs tests/integration/monitor_validation.sh
# with longer scenarios (MON_SECS, default 20 s each) ROUNDS times (default 3),
# merges the paired samples, and writes the agreement table into
# docs/monitor.md between the AGREEMENT markers. Also runs the cost
# micro-benchmark (bench_monitor) unless NO_COST=1 and writes its table
# between the COST markers. Raw data: bench/results/monitor-<stamp>/.
#   bench/monitor/validate.sh [BUILD_DIR]
# Root, hugepages, iperf3; 2 cores assumed; ~(ROUNDS x 2 min) + 2 min.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build}
ROUNDS=${ROUNDS:-3}
SECS=${MON_SECS:-20}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/results/monitor-$STAMP
mkdir -p "$OUT"
CMD="bench/monitor/validate.sh $BUILD  (ROUNDS=$ROUNDS MON_SECS=$SECS)"
: > "$OUT/samples.jsonl"; : > "$OUT/counts.jsonl"
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

if [ "${NO_COST:-0}" != 1 ] && [ -x "$BUILD/bench/monitor/bench_monitor" ]; then
  "$BUILD/bench/monitor/bench_monitor" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_format=json > "$OUT/cost.json"
  python3 - "$OUT/cost.json" > "$OUT/cost.md" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["benchmarks"]
rows = {}
for x in b:
    if x.get("aggregate_name") != "median":
        continue
    name = x["run_name"]  # BM_Engine<false>/1000000
    mon = "<true>" in name
    n = int(name.rsplit("/", 1)[1])
    rows.setdefault(n, {})[mon] = x
print("| connections | parse+lookup cycles/pkt | + monitor cycles/pkt | monitor adds | ns/pkt with monitor | monitor bytes/conn | flow table bytes/conn |")
print("|---|---|---|---|---|---|---|")
for n in sorted(rows):
    a, m = rows[n].get(False), rows[n].get(True)
    if not a or not m:
        continue
    print("| %d | %.0f | %.0f | %.0f | %.1f | %d | %.0f |" % (
        n, a["cyc_per_pkt"], m["cyc_per_pkt"], m["cyc_per_pkt"] - a["cyc_per_pkt"], m["per_pkt"] * 1e9,
        m["monitor_bytes_per_conn"], m["table_bytes_per_conn"]))
print()
print("Median of 3 repetitions, `%s --benchmark_repetitions=3`." % "build/bench/monitor/bench_monitor")
PY
fi

DOC=$ROOT/docs/monitor.md
python3 - "$DOC" "$OUT/agreement.md" "$OUT/cost.md" <<'PY'
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
open(doc, "w").write(text)
PY
echo "[validate] results in $OUT; docs/monitor.md updated" >&2
