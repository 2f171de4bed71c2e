#!/usr/bin/env bash
# Baseline on real guests (issue 3, item 6a; docs/testbed.md "Baseline on real
# guests: UML vs vmsim"). One run, two beds side by side, stages off:
#  - UML bed: vswitchd + GUESTS User-Mode Linux guests (real Linux 6.1 kernels
#    and TCP stacks) on vhost-user ports; guest i has i VMs per core: its
#    whole process tree is frozen and thawed by `vmsim --freeze-cgroup` (cgroup
#    v1 freezer) with the same consolidation model vmsim applies (30 ms slices,
#    co-located VMs busy with probability LOAD) — a frozen guest runs nothing,
#    its timers stop too. One remote namespace behind a net_tap uplink.
#  - vmsim bed: bench/testbed/up.sh --uplink tap with the same guests/model.
# COUNT 100 KB transfers remote -> guest per guest and bed (tbperf via
# harness.py, random start: 0-JITTER ms pause before each), the beds
# alternating block by block; throughput from the sender's clock (connect ->
# receiver's report: a UML guest has its own clock) for both beds. Then ping
# RTT remote -> every guest of each bed. Writes bench/results/uml-baseline-DATE
# (CSV, summaries, plots, schedules) and, unless --no-doc, the part of
# docs/testbed.md between the "BEGIN/END uml baseline" markers and
# docs/img/testbed-uml-vs-vmsim.png. ~(COUNT/20 x 50 s) + 2 min; 2 cores.
# usage: uml_baseline.sh [--count 100] [--block 20] [--guests 5] [--load 60] [--seed 1]
#                        [--ping-count 300] [--jitter-ms 200] [--out DIR] [--no-doc]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
COUNT=100 BLOCK=20 GUESTS=5 LOAD=60 SEED=1 PING=300 JITTER=200 OUT="" DOC=1 SIZE=100K
while [ $# -gt 0 ]; do
  case $1 in
    --count) COUNT=$2; shift ;;
    --block) BLOCK=$2; shift ;;
    --guests) GUESTS=$2; shift ;;
    --load) LOAD=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --ping-count) PING=$2; shift ;;
    --jitter-ms) JITTER=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-doc) DOC=0 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "uml_baseline.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$GUESTS" -ge 1 ] && [ "$GUESTS" -le 5 ] || { echo "uml_baseline.sh: --guests 1..5" >&2; exit 2; }
export VSW_BUILD=${VSW_BUILD:-$ROOT/build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/guest/guestlib.sh"
require_root
require_cmd ip ping python3
require_hugepages 700
[ -w /sys/fs/cgroup/freezer/cgroup.procs ] || skip "no writable cgroup v1 freezer"
guest_prepare uml
HARNESS=$HERE/harness.py
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/bench/results/uml-baseline-$STAMP}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN=$STAMP
VNAME=ubvm

# ---- UML bed: guest i at i VMs/core (bench/testbed/uml_bed.sh)
. "$HERE/uml_bed.sh"
uml_bed_up "$GUESTS" "$(seq -s, 1 "$GUESTS")" "$LOAD" "$SEED" "$OUT"

# ---- vmsim bed, same guests and model
guest_on_exit "$HERE/down.sh --name $VNAME --save-logs $OUT/vmsim-bed-logs >/dev/null 2>&1 || true"
VSW_BUILD=$VSW_BUILD "$HERE/up.sh" --name "$VNAME" --guests "$GUESTS" --vms-per-core "$(seq -s, 1 "$GUESTS")" \
  --load "$LOAD" --seed "$SEED" --uplink tap >"$T/up.log" 2>&1 || { cat "$T/up.log" >&2; fail "up.sh failed"; }
VENV=$(tail -n 1 "$T/up.log")
[ -f "$VENV" ] || fail "up.sh printed no env file: $(tail -n 3 "$T/up.log")"

# ---- transfers, beds alternating block by block
BLOCKS=$(((COUNT + BLOCK - 1) / BLOCK))
log "$BLOCKS blocks of $BLOCK x $SIZE per guest per bed, random start 0-$JITTER ms; out $OUT"
for b in $(seq "$BLOCKS"); do
  n=$((COUNT - (b - 1) * BLOCK)); [ $n -le "$BLOCK" ] || n=$BLOCK
  beds=("uml $UML_ENV" "vmsim $VENV")
  [ $((b % 2)) = 1 ] || beds=("${beds[1]}" "${beds[0]}")
  for be in "${beds[@]}"; do
    read -r cfg env <<<"$be"
    /usr/bin/python3 "$HARNESS" run --env "$env" --guests all --sizes "$SIZE" --dir rx --count "$n" --block "$n" \
      --config "$cfg=" --gap-jitter-ms "$JITTER" --fct sender --seed "$((SEED * 100 + b))" --run-id "$RUN" \
      --out "$OUT" --no-report --max-failures 3 --label "$cfg" >>"$OUT/harness.log" 2>&1 ||
      fail "harness run ($cfg, block $b) failed: $(tail -n 3 "$OUT/harness.log")"
  done
  log "block $b/$BLOCKS done"
done
/usr/bin/python3 "$HARNESS" report "$OUT/results.csv" --out "$OUT" --norm vmsim \
  --title "100 KB remote→guest, UML (frozen by the schedule) vs vmsim, sender clock" >"$OUT/report.txt" 2>>"$OUT/harness.log"
/usr/bin/python3 "$HARNESS" ping --env "$UML_ENV" --guests all --count "$PING" --interval-ms 10 --out "$OUT/ping-uml" \
  --title "ping RTT remote→UML guest" >/dev/null 2>>"$OUT/harness.log"
/usr/bin/python3 "$HARNESS" ping --env "$VENV" --guests all --count "$PING" --interval-ms 10 --out "$OUT/ping-vmsim" \
  --title "ping RTT remote→vmsim guest" >/dev/null 2>>"$OUT/harness.log"

# ---- schedules actually applied (the tools print them at exit)
uml_bed_schedules "$OUT"
"$HERE/down.sh" --name "$VNAME" --save-logs "$OUT/vmsim-bed-logs" >/dev/null 2>&1 || true
for i in $(seq "$GUESTS"); do grep -h "vmsim schedule applied" "$OUT/vmsim-bed-logs/vmsim-g$i.log" 2>/dev/null |
  sed "s/^/vmsim g$i: /"; done >>"$OUT/schedules.txt" || true
vsw_ctl port-stats >"$OUT/uml-port-stats.txt" 2>&1 || true
for i in $(seq "$GUESTS"); do  # the guests' own view: drops, retransmissions, delayed ACKs
  uml_exec "g$i" 20 "nstat -az 2>/dev/null | grep -v ' 0 ' ; ip -s link show eth0" >"$OUT/uml-g$i-nstat.txt" 2>&1 || true
done

/usr/bin/python3 "$HERE/uml_compare.py" --out "$OUT" --cmd "bench/testbed/uml_baseline.sh --count $COUNT --guests $GUESTS --load $LOAD" \
  $([ "$DOC" = 1 ] && echo "--doc $ROOT/docs/testbed.md --img $ROOT/docs/img/testbed-uml-vs-vmsim.png")
log "done: $OUT"
