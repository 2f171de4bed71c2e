#!/usr/bin/env bash
# The demo: vswitchd with two emulated consolidated guests (vmsim: a real
# Linux TCP stack behind a vhost-user ring, descheduled like a VM sharing a
# core with 2 others at 60 % load) and an uplink to a remote host through an
# emulated 1 ms / 1 Gbit/s link. It runs real TCP transfers remote -> guest
# with the acceleration stages off and on (interleaved), a guest <-> guest
# transfer, and prints what the switch, the snoop stage and the monitor saw.
# Cores: 2 (switch PMD on lcore 1). Takes about 2 minutes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/env.sh"
export VSW_BUILD=${VSW_BUILD:-$ROOT/build}
NAME=demo
OUT=$(mktemp -d /tmp/vswitch-demo.XXXXXX)
COUNT=${DEMO_COUNT:-40}
TB=$ROOT/bench/testbed
cleanup() { "$TB/down.sh" --name "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

have_stage() { "$VSW_BUILD/vswitch/vswitchctl" -s "$TB_CTL" --json stage-list | python3 -c \
  "import json,sys; sys.exit(0 if any(s['name']=='$1' for s in json.load(sys.stdin)) else 1)"; }
section() { printf '\n==== %s\n' "$*"; }

STAGES=monitor,snoop
section "test bed: 2 guests (3 VMs per core, 60 % load, 30 ms slices), 1 remote host, 1 ms RTT, 1 Gbit/s"
"$TB/up.sh" --name "$NAME" --guests 2 --vms-per-core 3 --load 60 --remote-hosts 1 --rtt-ms 1 --rate-mbit 1000 \
  --stages "$STAGES" --enabled monitor --switch-conf $'[stages.snoop]\ndisabled_ports = ["uplink"]' \
  >"$OUT/up.log" 2>&1 || { tail -20 "$OUT/up.log"; exit 1; }
. "/tmp/tb-$NAME/env"
CTL="$TB_VSWITCHCTL -s $TB_CTL"
$CTL show

section "remote -> guest: $COUNT transfers of 100 KB per configuration, random start within the guest's schedule"
python3 "$TB/harness.py" run --name "$NAME" --sizes 100K --dir rx --count "$COUNT" --block 10 --gap-jitter-ms 60 \
  --config off=monitor --config snoop=monitor,snoop --norm off --out "$OUT/rx" --title "demo: remote -> guest 100 KB" \
  >"$OUT/harness.log" 2>&1 || { tail -20 "$OUT/harness.log"; exit 1; }
sed -n '1,40p' "$OUT/rx/summary.md"
# A promised plot that was not made is an error, not a log line.
compgen -G "$OUT/rx/*.png" >/dev/null || { echo "demo: harness.py wrote no plot in $OUT/rx" >&2; tail -5 "$OUT/harness.log" >&2; exit 1; }
if have_stage snoop; then
  # Snapshot right after the transfers (snoop ran only in the "snoop" blocks;
  # harness.py leaves the last configuration applied).
  section "snoop: what it did for the $COUNT remote -> guest transfers of the snoop blocks"
  $CTL --json stage-list >"$OUT/stage-list-rx.json"
  python3 - "$OUT/stage-list-rx.json" "$COUNT" <<'PY'
import json, sys
c = [s for s in json.load(open(sys.argv[1])) if s["name"] == "snoop"][0]["counters"]
n = int(sys.argv[2])
print("data segments marked %d (confirmed into the ring %d, refused %d); early ACKs %d covering %d bytes "
      "(%.0f %% of %d x 100 KB)" % (c["data_marked"], c["tx_confirmed"], c["tx_refused"], c["early_ack"],
                                   c["early_ack_bytes"], 100.0 * c["early_ack_bytes"] / (n * 100000), n))
print("guest side re-learned from the data direction: %d; guest ACKs dropped %d, passed %d; windows bounded by "
      "the ring %d" % (c.get("role_swap", 0), c["guest_ack_drop_covered"] + c["guest_ack_drop_dup"],
                       c["guest_ack_pass"], c.get("win_ring_bound", 0)))
off = {k: v for k, v in c.items() if v and (k.startswith("offline_") or k.startswith("resume_") or k.startswith("no_ack"))}
print("offline / resume / not acked:", off or "none")
PY
fi

section "guest 1 <-> guest 2: 3 s of TCP through the switch"
read -r G1 G2 <<<"$TB_GUEST_NS"
read -r IP1 IP2 <<<"$TB_GUEST_IP"
ip netns exec "$G2" timeout 15 iperf3 -s -1 -p 5999 >/dev/null 2>&1 &
sleep 0.5
ip netns exec "$G1" timeout 15 iperf3 -c "$IP2" -p 5999 -t 3 | tail -4 || true
wait || true

section "switch: ports"
$CTL port-stats
section "switch: PMD"
$CTL pmd-stats-show
section "stages: what the acceleration did (counters)"
$CTL stage-list
if have_stage monitor; then
  section "monitor: TCP connections seen by the switch (top 10 by bytes)"
  $CTL tcp-flows sort=bytes top=10 || true
fi
section "results and plots in $OUT (rx/summary.md, rx/*.png)"
