#!/usr/bin/env bash
# A/B of the cost benchmark between two builds on a shared, noisy machine:
# runs BENCH_A then BENCH_B (bench_monitor binaries), ROUNDS times
# alternated, and prints per connection count the median over rounds of
# each binary's parse + lookup / monitor / total cycles per packet added to
# the generator (each round's figures are already the benchmark's medians
# over batches). Raw JSON in OUT (default bench/results/cost-ab-<stamp>).
#   bench/monitor/ab.sh BENCH_A BENCH_B [ROUNDS=7] [FILTER=BM_Cost]
#   (against a build older than BM_Cost/N/G, FILTER='BM_Cost/[0-9]+(/0)?/min'
#   runs only the cases both have)
# e.g. bench/monitor/ab.sh /work/main/build/bench/monitor/bench_monitor build/bench/monitor/bench_monitor
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-7} FILTER=${4:-BM_Cost}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/env.sh"
OUT=${OUT:-$ROOT/bench/results/cost-ab-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
for r in $(seq "$ROUNDS"); do
  echo "[ab] round $r / $ROUNDS" >&2
  "$A" --benchmark_filter="$FILTER" --benchmark_format=json > "$OUT/r${r}_a.json"
  "$B" --benchmark_filter="$FILTER" --benchmark_format=json > "$OUT/r${r}_b.json"
done
python3 - "$OUT" "$A" "$B" <<'PY'
import collections, glob, json, statistics, sys
out, a, b = sys.argv[1:4]
d = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(out + "/r*_[ab].json")):
    which = f[-6]
    for x in json.load(open(f))["benchmarks"]:
        if "total_adds_cyc" in x:
            for k in ("table_adds_cyc", "adds_cyc", "total_adds_cyc", "table_bytes_per_conn", "monitor_bytes_per_conn"):
                parts = x["name"].split("/")  # BM_Cost/N[/G]/...: G = 1, the server a guest
                n = parts[1] + (" (guest)" if len(parts) > 2 and parts[2] == "1" else "")
                d[(n, which)][k].append(x[k])
print("A = %s\nB = %s\n" % (a, b))
print("| connections | A: parse + lookup / monitor / **total** | B: parse + lookup / monitor / **total** | bytes/conn table, monitor (A; B) |")
print("|---|---|---|---|")
for n in sorted({k[0] for k in d}, key=lambda n: (n.endswith("(guest)"), int(n.split()[0]))):
    if (n, "a") not in d or (n, "b") not in d:  # e.g. guest rows of a newer B against an older A
        print("| %s | only in %s |  |  |" % (n, "A" if (n, "a") in d else "B"))
        continue
    m = {w: {k: statistics.median(v) for k, v in d[(n, w)].items()} for w in "ab"}
    print("| %s | %.0f / %.0f / **%.0f** | %.0f / %.0f / **%.0f** | %.0f, %.0f; %.0f, %.0f |" % (
        n, m["a"]["table_adds_cyc"], m["a"]["adds_cyc"], m["a"]["total_adds_cyc"],
        m["b"]["table_adds_cyc"], m["b"]["adds_cyc"], m["b"]["total_adds_cyc"],
        m["a"]["table_bytes_per_conn"], m["a"]["monitor_bytes_per_conn"],
        m["b"]["table_bytes_per_conn"], m["b"]["monitor_bytes_per_conn"]))
print("\nmedians of %d rounds (A then B per round); raw: %s" % (len(glob.glob(out + "/r*_a.json")), out))
PY
