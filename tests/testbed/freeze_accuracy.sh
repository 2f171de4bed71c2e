#!/usr/bin/env bash
# (a') The consolidation schedule applied to a real process tree:
# `vmsim --freeze-cgroup` (3 VMs/core, 60 % load, 5 s) freezes and thaws a
# cgroup v1 freezer group holding a probe process that ticks every ms. The
# probe, not vmsim, measures how long it was stopped: its stopped share and
# its number of stops must match the schedule vmsim applied, and the applied
# schedule the model. This is how bench/testbed/uml_baseline.sh consolidates
# User-Mode Linux guests. ~7 s, no DPDK, no hugepages.
# usage: freeze_accuracy.sh VMSIM
source "$(dirname "$0")/lib.sh"
VMSIM=${1:?usage: $0 VMSIM}
[ "$(id -u)" = 0 ] || tb_skip "needs root (cgroups)"
FZ=/sys/fs/cgroup/freezer
[ -w "$FZ/cgroup.procs" ] || tb_skip "no writable cgroup v1 freezer at $FZ"
PY=/usr/bin/python3
[ -x "$PY" ] || tb_skip "no $PY"
CG=$FZ/tbfz$$
mkdir "$CG"
fz_cleanup() {
  local rc=$?
  echo THAWED >"$CG/freezer.state" 2>/dev/null
  for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  for _ in $(seq 20); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
  (exit $rc)
  tb_cleanup
}
trap fz_cleanup EXIT

# The probe: ticks every 1 ms for DUR s and lists its tick gaps >= 8 ms.
DUR=6
sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" -c "
import time, json
end = time.monotonic() + $3
last = time.monotonic(); stops = []
while True:
    time.sleep(0.001)
    t = time.monotonic()
    if t - last >= 0.008: stops.append((t - last) * 1e3)
    last = t
    if t >= end: break
print(json.dumps({\"gaps_ms\": stops, \"total_ms\": $3 * 1e3}))
"' _ "$CG" "$PY" "$DUR" >"$TB_TMP/probe.json" 2>&1 &
PROBE=$!
TB_PIDS+=("$PROBE")
tb_wait 5 grep -q . "$CG/cgroup.procs" || tb_fail "probe did not join $CG"
sleep 0.3
"$VMSIM" -- --freeze-cgroup "$CG" --vms-per-core 3 --load 60 --seed 11 --duration 5 --csv "$TB_TMP/sched.csv" \
  >"$TB_TMP/vmsim.log" 2>&1 || { cat "$TB_TMP/vmsim.log"; tb_fail "vmsim --freeze-cgroup failed"; }
wait "$PROBE" || true
cat "$TB_TMP/vmsim.log" "$TB_TMP/probe.json"
[ "$(cat "$CG/freezer.state")" = THAWED ] || tb_fail "group left $(cat "$CG/freezer.state") after vmsim exited"

mfrac=$(tb_kv "$TB_TMP/vmsim.log" "vmsim schedule model" on_fraction)
afrac=$(tb_kv "$TB_TMP/vmsim.log" "vmsim schedule applied" on_fraction)
aoffs=$(tb_kv "$TB_TMP/vmsim.log" "vmsim schedule applied" off_count)
atotal=$(tb_kv "$TB_TMP/vmsim.log" "vmsim schedule applied" total_ms)
flat=$(tb_kv "$TB_TMP/vmsim.log" "vmsim freezer:" freeze_latency_mean_us)
# A stop is a gap of at least half the shortest applied off period (30 ms
# here): the host preempting the probe itself under load gives gaps of
# 8-20 ms that are no freeze (counted apart, as "short gaps").
read -r pstops pstopped pshort < <("$PY" -c "
import csv, json
offs = [(int(r['end_us']) - int(r['start_us'])) / 1e3 for r in csv.DictReader(open('$TB_TMP/sched.csv'))
        if r['source'] == 'applied' and r['state'] == 'off']
thr = max(8.0, min(offs) / 2) if offs else 8.0
g = json.load(open('$TB_TMP/probe.json'))['gaps_ms']
stops = [x for x in g if x >= thr]
print(len(stops), sum(stops), len(g) - len(stops))")
# Stopped time the probe saw, over the 5 s the schedule ran (the probe's
# extra second ran unfrozen).
pshare=$(awk -v s="$pstopped" -v t="$atotal" 'BEGIN { printf "%.4f", s / t }')
echo "model on $mfrac, applied on $afrac ($aoffs off periods); probe: $pstops stops ($pshort short gaps), stopped share $pshare;" \
  "mean freeze latency $flat us"
tb_check "applied on-fraction $afrac == model's $mfrac +-0.03" "$afrac - $mfrac < 0.03 && $mfrac - $afrac < 0.03"
tb_check "the probe was stopped as often as the schedule says ($pstops vs $aoffs, +-3)" \
  "$pstops - $aoffs <= 3 && $aoffs - $pstops <= 3 && $aoffs >= 10"
tb_check "the probe's stopped share $pshare == 1 - applied on-fraction $afrac, +-0.06" \
  "$pshare - (1 - $afrac) < 0.06 && (1 - $afrac) - $pshare < 0.06"
tb_check "mean freeze latency $flat us < 5000 us" "$flat < 5000"
echo PASS
