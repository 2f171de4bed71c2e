#!/usr/bin/env bash
# Monitor guest-scheduling scenario (docs/monitor.md, "Guest scheduling"): a
# test bed (bench/testbed/up.sh, bed "mv", MON_BED) with a consolidated vmsim guest
# (3 VMs/core, 60 % load) and an unconsolidated one, the monitor stage on.
# Bulk iperf3 transfers to and from each guest (MON_GUEST_SECS, default 8 s)
# and short 100 KB transfers (MON_GUEST_SHORT per guest and direction,
# default 20), the consolidated guest sending with a 5 ms RTO floor while
# the remote is captured (spurious retransmissions, MON_GUEST_SPUR s,
# default 5), then tests/integration/monitor_guest.py judges the
# closed-connection records against the off fraction vmsim applied plus the
# host's stalls of vmsim (its --stall-csv: on a loaded host the guest really
# is descheduled). Fails on the floors of monitor_guest.py --gate (CI floors,
# not the targets).
# ~70-90 s. The bed is always brought down (trap), also on failure.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd iperf3 python3 tcpdump
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${MON_GUEST_SECS:-8}
SHORT=${MON_GUEST_SHORT:-20}
SPUR=${MON_GUEST_SPUR:-5}
OUT=${MON_RESULTS:-$T/guest}
BED=${MON_BED:-mv}                       # bed name: concurrent runs need different ones
BED_DIR=${TB_RUN_DIR:-/tmp}/tb-$BED
for b in vswitch/vswitchd vswitch/vswitchctl bench/testbed/vmsim bench/testbed/wiresim; do
  [ -x "$VSW_BUILD/$b" ] || skip "missing $VSW_BUILD/$b"
done
need=$(( (256 + 128 * 3) / 2 ))
require_hugepages "$need"

bed_down() { "$ROOT/bench/testbed/down.sh" --name "$BED" "$@" >/dev/null 2>&1 || true; }
trap '_rc=$?; set +e; bed_down; (exit $_rc); vsw_cleanup' EXIT
bed_down   # a bed left over by an interrupted run

log "bed up: guest 1 3 VMs/core, guest 2 alone"
VSW_BUILD=$VSW_BUILD "$ROOT/bench/testbed/up.sh" --name "$BED" --guests 2 --vms-per-core 3,1 --stages monitor \
  --enabled monitor --switch-conf "$(printf '[stages.monitor]\nuplink_ports = ["uplink"]\nexport_path = "%s/closed.jsonl"' "$BED_DIR")" \
  >"$T/up.log" 2>&1 || fail "up.sh failed: $(tail -5 "$T/up.log")"
log "transfers: bulk ${SECS} s x 4, short 100 KB x ${SHORT} per guest and direction"
python3 "$HERE/monitor_guest.py" run --env "$BED_DIR/env" --out "$OUT" --secs "$SECS" --short "$SHORT" \
  --spurious-secs "$SPUR" \
  2>"$T/run.log" || fail "transfers failed: $(tail -5 "$T/run.log")"
mkdir -p "$OUT/logs"
bed_down --save-logs "$OUT/logs"
python3 "$HERE/monitor_guest.py" judge --out "$OUT" --logs "$OUT/logs" --gate --floors ci \
  --cmd-line "tests/integration/monitor_guest.sh" >&2 || fail "monitor guest checks (above)"
log "PASS"
