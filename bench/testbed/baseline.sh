#!/usr/bin/env bash
# Baseline reproduction (docs/testbed.md, "Baseline"): the problem the papers
# start from, with every switch stage off (empty pipeline).
#  - One bed, 5 guests that differ only in consolidation: guest i has i VMs
#    per core (1..5, guest included), co-located VMs at 60 % load, 30 ms
#    slices, each its own seed. One remote host behind wiresim (LAN: 0.2 ms
#    RTT, 1000 Mbit/s).
#  - ping RTT from the remote host to every guest (all at once).
#  - COUNT 100 KB transfers remote -> guest per guest, guests interleaved in
#    blocks of 20 in shuffled order (machine noise hits all alike):
#    (a) successive (the papers' method), (b) RCOUNT with a random 0-200 ms
#    pause before each (start phases spread over the guest's schedule).
# Writes bench/results/baseline-DATE/ (CSV, summaries, plots, tool logs),
# copies the figures to docs/img/testbed-baseline-*.png and rewrites the part
# of docs/testbed.md between the "BEGIN/END baseline numbers" markers (the
# rest of the file is left alone). Cores: 2 assumed, switch PMD on lcore 1.
# usage: baseline.sh [--count 300] [--random-count 200] [--ping-count 1000] [--name bl] [--out DIR] [--no-doc]
#        [--sizes 100K] [--dir rx] [--rtt-ms 0.2] [--load 60]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/env.sh"
COUNT=300 RCOUNT=200 PING=1000 NAME=bl OUT="" DOC=1 SIZES=100K DIRS=rx RTT=0.2 LOAD=60
while [ $# -gt 0 ]; do
  case $1 in
    --count) COUNT=$2; shift ;;
    --ping-count) PING=$2; shift ;;
    --random-count) RCOUNT=$2; shift ;;
    --name) NAME=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-doc) DOC=0 ;;
    --sizes) SIZES=$2; shift ;;
    --dir) DIRS=$2; shift ;;
    --rtt-ms) RTT=$2; shift ;;
    --load) LOAD=$2; shift ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "baseline.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/bench/results/baseline-$STAMP}
mkdir -p "$OUT"
UP=0
cleanup() {
  local rc=$?
  [ $UP = 0 ] || "$HERE/down.sh" --name "$NAME" --save-logs "$OUT/bed" || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/host.txt"
UP=1
"$HERE/up.sh" --name "$NAME" --guests 5 --vms-per-core 1,2,3,4,5 --load "$LOAD" --slice-ms 30 --seed 1 \
  --remote-hosts 1 --rtt-ms "$RTT" --rate-mbit 1000 | tee "$OUT/env.path"
cp "$(cat "$OUT/env.path")" "$OUT/bed.env"
"$HERE/harness.py" ping --name "$NAME" --guests all --count "$PING" --interval-ms 10 --out "$OUT" \
  --label baseline --title "ping RTT remote→guest, $LOAD % load, stages off"
# (a) successive transfers, as in the papers: each starts when the previous one ended.
"$HERE/harness.py" run --name "$NAME" --guests all --sizes "$SIZES" --dir "$DIRS" --count "$COUNT" --block 20 \
  --config off= --out "$OUT/successive" --label successive --title "successive, stages off, $LOAD % load" \
  --overwrite --max-failures 5
# (b) a random pause of 0-200 ms before each transfer: start phases spread over the guest's schedule.
"$HERE/harness.py" run --name "$NAME" --guests all --sizes "$SIZES" --dir "$DIRS" --count "$RCOUNT" --block 20 \
  --gap-jitter-ms 200 --config off= --out "$OUT/random" --label random-start \
  --title "random start, stages off, $LOAD % load" --overwrite --max-failures 5
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/host.txt"
"$HERE/down.sh" --name "$NAME" --save-logs "$OUT/bed"
UP=0
grep -h '^vmsim schedule applied' "$OUT"/bed/vmsim-g*.log >"$OUT/schedule.txt" 2>/dev/null || true

[ $DOC = 1 ] || { echo "results in $OUT"; exit 0; }
IMG=$ROOT/docs/img
mkdir -p "$IMG"
for part in successive random; do
  for f in "$OUT/$part"/vpc-*.png "$OUT/$part"/cdf-*.png; do
    [ -f "$f" ] && cp "$f" "$IMG/testbed-baseline-$part-$(basename "$f")"
  done
done
cp "$OUT/ping-cdf.png" "$IMG/testbed-baseline-ping-cdf.png"
/usr/bin/python3 - "$ROOT/docs/testbed.md" "$OUT" "$ROOT" "$COUNT" "$RCOUNT" "$PING" "$LOAD" "$RTT" <<'PY'
import json, os, sys
doc, out, root, count, rcount, ping, load, rtt = sys.argv[1:]
begin, end = "<!-- BEGIN baseline numbers (bench/testbed/baseline.sh rewrites this part) -->", "<!-- END baseline numbers -->"
pj = json.load(open(os.path.join(out, "ping.json")))
host = open(os.path.join(out, "host.txt")).read().strip().replace("\n", "; ")
sched = {}
for line in open(os.path.join(out, "schedule.txt")) if os.path.exists(os.path.join(out, "schedule.txt")) else []:
    kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
    sched.setdefault("lines", []).append(kv)
rel = os.path.relpath(out, root)
L = [begin, "", "Run `%s`: %s successive and %s random-start 100 KB transfers remote→guest per guest, "
     "%s pings per guest at 10 ms, 60 %% load, %s ms wire RTT, 1000 Mbit/s; %s." % (
         rel, count, rcount, ping, rtt, host), ""]
for part, title in (("successive", "Successive transfers (the papers' method)"),
                    ("random", "Random start (0-200 ms pause before each transfer)")):
    summ = json.load(open(os.path.join(out, part, "summary.json")))
    L += ["**%s**" % title, "",
          "| VMs/core | guest share (model) | median Mbit/s | p10 | p90 | median FCT ms | p90 FCT ms | p99 FCT ms | retrans/xfer | xfers with RTO | median / 1 VM/core |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {(x["dir"], x["size"]): x["median_mbps"] for x in summ if str(x["vpc"]) == "1"}
    for x in sorted(summ, key=lambda x: (x["dir"], x["size"], int(x["vpc"]))):
        v = int(x["vpc"])
        share = 1 / (1 + (v - 1) * float(load) / 100)
        L.append("| %d%s | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.1f %% | %.2f |" % (
            v, "" if x["dir"] == "rx" and x["size"] == 100000 else " (%s %d B)" % (x["dir"], x["size"]), share,
            x["median_mbps"], x["p10_mbps"], x["p90_mbps"], x["median_fct_ms"], x.get("p90_fct_ms", float("nan")),
            x["p99_fct_ms"], x["retrans_per_xfer"], 100 * x["frac_with_rto"],
            x["median_mbps"] / base[(x["dir"], x["size"])]))
    L.append("")
L += ["| VMs/core | ping p50 ms | p90 | p99 | max | received |", "|---|---|---|---|---|---|"]
for x in sorted(pj, key=lambda x: int(x["vpc"])):
    L.append("| %s | %.2f | %.2f | %.2f | %.2f | %d/%d |" % (x["vpc"], x["p50"], x["p90"], x["p99"], x["max"],
                                                           x["received"], x["sent"]))
if sched.get("lines"):
    L += ["", "Applied schedules (vmsim report, guests 1..5): " + "; ".join(
        "on %s, off median %s ms, max %s ms" % (k.get("on_fraction", "?"), k.get("off_median_ms", "?"),
                                                k.get("off_max_ms", "?")) for k in sched["lines"])]
L += ["", "![median throughput vs VMs per core, successive](img/testbed-baseline-successive-vpc-rx-100KB.png)",
      "![median throughput vs VMs per core, random start](img/testbed-baseline-random-vpc-rx-100KB.png)",
      "![throughput CDF per VMs per core, successive](img/testbed-baseline-successive-cdf-rx-100KB.png)",
      "![throughput CDF per VMs per core, random start](img/testbed-baseline-random-cdf-rx-100KB.png)",
      "![ping RTT CDF per VMs per core](img/testbed-baseline-ping-cdf.png)", "", end]
block = "\n".join(L)
text = open(doc).read() if os.path.exists(doc) else "# Test bed\n\n## Baseline: the problem, all stages off\n\n"
if begin in text and end in text:
    a = text.index(begin)
    b = text.index(end) + len(end)
    text = text[:a] + block + text[b:]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(doc, "w").write(text)
print("updated", doc)
PY
echo "results in $OUT"
