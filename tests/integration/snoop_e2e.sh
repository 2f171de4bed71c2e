#!/usr/bin/env bash
# snoop end to end (issue 5, proof 2): md5-checked transfers remote -> guest
# through the test bed (bench/testbed/up.sh: vswitchd + vmsim guest at 3 VMs
# per core / 60 % load + wiresim uplink with loss and reordering), snoop on.
# Pass: 0 corrupt, 0 stuck transfers, early ACKs really sent, and the
# per-port disable / re-enable (`snoop-port`) works mid-run.
# Assumes 2 cores; ~60-120 s. Bed name "sne2e" (namespaces tbsne2e-*,
# DPDK prefixes tbsne2e_*), removed on exit even on failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export VSW_BUILD=${VSW_BUILD:-$ROOT/build}
NAME=sne2e
ENV=/tmp/tb-$NAME/env
. "$ROOT/scripts/env.sh"
. "$ROOT/scripts/skip.sh"
log() { echo "[snoop_e2e $(date +%H:%M:%S)] $*" >&2; }
[ "$(id -u)" = 0 ] || vsw_skip log "needs root"
for c in python3 ip; do command -v $c >/dev/null || vsw_skip log "missing $c"; done
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
[ "$free" -ge 400 ] || vsw_skip log "needs 400 free hugepages ($free)"

SRV_PID=""
cleanup() {
  local rc=$?
  set +e
  [ -z "$SRV_PID" ] || kill "$SRV_PID" 2>/dev/null
  [ "$rc" = 0 ] || { log "vswitchd log tail:"; tail -n 20 /tmp/tb-$NAME/vswitchd.log >&2 2>/dev/null; }
  [ -e "$ENV" ] && "$ROOT/bench/testbed/down.sh" --name "$NAME" >/dev/null 2>&1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ ! -e "$ENV" ] || "$ROOT/bench/testbed/down.sh" --name "$NAME" >/dev/null 2>&1 || true

"$ROOT/bench/testbed/up.sh" --name "$NAME" --guests 1 --vms-per-core 3 --load 60 --rtt-ms 2 --rate-mbit 500 \
  --wiresim-args "--loss 0.01 --reorder 0.02 --seed 7" --stages snoop --enabled snoop \
  --switch-conf $'[stages.snoop]\ndisabled_ports = ["uplink"]' >/dev/null
# shellcheck disable=SC1090
. "$ENV"
CTL() { "$TB_VSWITCHCTL" -s "$TB_CTL" "$@"; }
GNS=${TB_GUEST_NS%% *} GIP=${TB_GUEST_IP%% *} RNS=${TB_REMOTE_NS%% *}
ip netns exec "$GNS" python3 "$ROOT/bench/snoop/md5xfer.py" serve --port 5601 >/tmp/tb-$NAME/md5srv.log 2>&1 &
SRV_PID=$!
sleep 1

xfer() { # xfer COUNT SIZES SEED
  ip netns exec "$RNS" timeout 600 python3 "$ROOT/bench/snoop/md5xfer.py" send --dst "$GIP" --port 5601 \
    --count "$1" --sizes "$2" --seed "$3" --timeout-s 60 | tee -a /tmp/tb-$NAME/md5.log | grep SUMMARY
}
counter() { CTL --json stage-list | python3 -c "import json,sys; print([s for s in json.load(sys.stdin) if s['name']=='snoop'][0]['counters']['$1'])"; }

fails=0
log "phase 1: 24 transfers 10 KB .. 4 MB, loss 1 %, reordering 2 %, guest descheduled"
xfer 24 10000,100000,1000000,4000000,50000,2000000 1 || fails=$((fails + 1))
e1=$(counter early_ack)
log "early ACKs so far: $e1"
[ "$e1" -gt 100 ] || { log "FAIL: too few early ACKs ($e1)"; fails=$((fails + 1)); }

log "phase 2: snoop-port g1 off and on again, repeatedly, while 24 transfers of 4-8 MB run"
xfer 24 4000000,8000000 2 >/dev/null &
XP=$!
toggles=0 leaks=0
sleep 0.5
while kill -0 $XP 2>/dev/null && [ $toggles -lt 40 ]; do
  CTL snoop-port g1 off >/dev/null   # returns when no PMD can send another early ACK for g1
  e_off=$(counter early_ack)
  sleep 0.2
  e_off2=$(counter early_ack)
  [ "$e_off2" = "$e_off" ] || { leaks=$((leaks + 1)); log "early ACKs while the port was off ($e_off -> $e_off2)"; }
  CTL snoop-port g1 on >/dev/null
  toggles=$((toggles + 1))
  sleep 0.3
done
wait $XP || fails=$((fails + 1))
[ "$leaks" = 0 ] || { log "FAIL: early ACKs while the port was off ($leaks of $toggles toggles)"; fails=$((fails + 1)); }
# Connections the toggles caught mid-transfer re-initialise mid-stream and
# must get back to early ACKs (sync completes) although their senders never pause.
mid=$(counter init_midstream) syncd=$(counter sync_done)
log "$toggles toggles during the transfers: init_midstream $mid, sync_done $syncd"
[ "$toggles" -ge 3 ] || { log "FAIL: the transfers ended before 3 toggles ($toggles)"; fails=$((fails + 1)); }
[ "$syncd" -ge 1 ] || { log "FAIL: no mid-stream connection got back to early ACKs"; fails=$((fails + 1)); }

log "phase 3: 12 more transfers after re-enable"
xfer 12 100000,3000000 3 || fails=$((fails + 1))
CTL snoop-show max=5 >/dev/null
bad=$(grep -c '"ok": false' /tmp/tb-$NAME/md5.log || true)
log "counters: $(CTL --json stage-list | python3 -c "import json,sys; c=[s for s in json.load(sys.stdin) if s['name']=='snoop'][0]['counters']; print({k: v for k, v in c.items() if v})")"
[ "$bad" = 0 ] || { log "FAIL: $bad transfers corrupt or stuck"; fails=$((fails + 1)); }
[ "$fails" = 0 ] || exit 1
log "PASS: 60 md5-checked transfers, 0 corrupt, 0 stuck"
