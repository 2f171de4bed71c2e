#!/usr/bin/env bash
# snoop effect (vSnoop Fig. 5 / Fig. 6) in the test bed, stage off vs on,
# interleaved block by block in one run (bench/testbed/harness.py).
#   bench/snoop/run.sh [--quick] [--out DIR] [--name BED] [--parts fig5,fig6,conc10]
# Full run (hours): 1000 transfers of 100 KB per configuration (Fig. 5 CDF),
# sizes 50K..100M for 1, 2, 3, 5 VMs per core at 60 % load (Fig. 6), and 10
# concurrent connections (Fig. 6g). --quick: the CI-sized version used for
# docs/snoop.md. Env: VSW_BUILD (build dir), RTT_MS (1), RATE_MBIT (1000),
# JITTER_MS (90: random start phase over the guest schedule), N5 / N6 / NC
# (transfers per configuration of each part, overriding the defaults), SIZES6
# (Fig. 6 sizes, e.g. 100M).
# Bed name "snb" unless --name (namespaces tb<name>-*), torn down on exit.
# --parts runs only the listed parts. Assumes 2 cores.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/env.sh"
export VSW_BUILD=${VSW_BUILD:-$ROOT/build}
QUICK=0 OUT=$ROOT/bench/results/snoop-$(date +%Y%m%d-%H%M%S) NAME=snb PARTS=fig5,fig6,conc10
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --out) OUT=$2; shift ;;
    --name) NAME=$2; shift ;;
    --parts) PARTS=$2; shift ;;
    *) echo "usage: run.sh [--quick] [--out DIR] [--name BED] [--parts fig5,fig6,conc10]" >&2; exit 2 ;;
  esac
  shift
done
RTT=${RTT_MS:-1} RATE=${RATE_MBIT:-1000} JIT=${JITTER_MS:-90}
if [ $QUICK = 1 ]; then
  D5=200 SIZES=50K,100K,1M,10M D6=30 DC=40
else
  D5=1000 SIZES=50K,100K,1M,10M,100M D6=200 DC=200
fi
N5=${N5:-$D5} N6=${N6:-$D6} NC=${NC:-$DC} SIZES=${SIZES6:-$SIZES}
part() { [[ ",$PARTS," == *",$1,"* ]]; }
PY=/usr/bin/python3
H="$PY $ROOT/bench/testbed/harness.py"
cleanup() { "$ROOT/bench/testbed/down.sh" --name $NAME >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
mkdir -p "$OUT"
# Guests 1..4 at 1, 2, 3, 5 VMs per core (60 % load of the co-located VMs).
"$ROOT/bench/testbed/up.sh" --name $NAME --guests 4 --vms-per-core 1,2,3,5 --load 60 --rtt-ms "$RTT" \
  --rate-mbit "$RATE" --stages snoop --switch-conf $'[stages.snoop]\ndisabled_ports = ["uplink"]' >/dev/null
CFG=(--config off= --config snoop=snoop --gap-jitter-ms "$JIT" --block 20)
# Fig. 5: 100 KB, 3 VMs per core.
part fig5 && $H run --name $NAME --guests 3 --sizes 100K --dir rx --count $N5 "${CFG[@]}" --out "$OUT/fig5" \
  --title "100 KB remote->guest, 3 VMs/core, 60 % load" --overwrite
# Fig. 6: sizes x VMs per core.
part fig6 && $H run --name $NAME --guests all --sizes $SIZES --dir rx --count $N6 "${CFG[@]}" --out "$OUT/fig6" \
  --title "remote->guest, 1/2/3/5 VMs/core, 60 % load" --overwrite --timeout-s 120
# Fig. 6g: 10 concurrent connections, 3 VMs per core.
part conc10 && $H run --name $NAME --guests 3 --sizes 100K,1M --dir rx --count $NC --flows 10 "${CFG[@]}" --out "$OUT/conc10" \
  --title "10 concurrent connections, 3 VMs/core" --overwrite
/tmp/tb-$NAME/bin/vswitchctl -s /tmp/tb-$NAME/ctl.sock --json stage-list >"$OUT/stage-list.json" 2>/dev/null || true
echo "results in $OUT (summary.md and PNGs per part)"
