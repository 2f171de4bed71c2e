#!/usr/bin/env bash
# A guest that stops draining its receive ring must not stall other ports:
# the switch gives up after bounded retries and counts "ring full" drops,
# while traffic between two healthy guests keeps flowing. When the stalled
# guest disconnects mid-traffic, its resources are freed (mbufs return).
# Cores: 2 (switch PMD on lcore 1; both testpmds stacked on core 0).
. "$(dirname "$0")/lib.sh"
require_root
require_cmd dpdk-testpmd
require_hugepages 1000

P=$(dpdk_prefix sg)
TA=$(dpdk_prefix ta)
TB=$(dpdk_prefix tb)
{
  vsw_config_head "$P"
  for i in 1 2 3; do vsw_port "vm$i" vhost-user "path=$T/vm$i.sock"; done
} > "$T/vsw.toml"
vsw_start "$T/vsw.toml"
mbufs_in_use() { vsw_ctl --json show | python3 -c "import json,sys; print(json.load(sys.stdin)['mbufs']['in_use'])"; }
base=$(mbufs_in_use)
# Healthy pair: vm1 sends to the stalled guest's MAC, vm2 sends to vm1.
spawn_testpmd tpa 30 "$TA" "$T/vm1.sock,mac=02:00:00:00:00:01" "$T/vm2.sock,mac=02:00:00:00:00:02" -- \
  --forward-mode=flowgen --eth-peer=0,02:00:00:00:00:03 --eth-peer=1,02:00:00:00:00:01
# The stalled guest: transmits (so the switch learns its MAC) but never polls its rx ring.
spawn_testpmd tpb 30 "$TB" "$T/vm3.sock,mac=02:00:00:00:00:03" -- \
  --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --txpkts=64
TPB=$SPAWNED_PID
stat() { port_counter "$1" "$2"; }
wait_until 20 bash -c "[ \$($VSWITCHCTL -s $T/ctl.sock --json port-stats vm3 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"tx_drop_ring_full\"])') -gt 1000 ]" \
  || fail "no ring-full drops counted for the stalled guest"
a1=$(stat vm1 tx_packets); d1=$(stat vm3 tx_drop_ring_full); sleep 2
a2=$(stat vm1 tx_packets); d2=$(stat vm3 tx_drop_ring_full)
log "healthy vm2->vm1: $(( (a2 - a1) / 2 )) pkt/s; stalled vm3 ring-full drops: $(( (d2 - d1) / 2 )) pkt/s"
[ $((a2 - a1)) -gt 20000 ] || fail "healthy traffic stalled behind the full guest ring"
[ "$d2" -gt "$d1" ] || fail "drops to the stalled guest not counted"
vsw_ctl port-stats >&2
# The stalled guest vanishes mid-traffic.
kill -KILL -- "-$TPB"
wait_until 10 bash -c "$VSWITCHCTL -s $T/ctl.sock --json show | python3 -c 'import json,sys; sys.exit(0 if [p for p in json.load(sys.stdin)[\"ports\"] if p[\"name\"]==\"vm3\" and not p[\"connected\"]] else 1)'" \
  || fail "switch did not notice the vanished guest"
l1=$(stat vm3 tx_drop_link_down); sleep 1; l2=$(stat vm3 tx_drop_link_down)
log "after disconnect: traffic to vm3 counted as link-down drops ($((l2 - l1)) in 1 s)"
a1=$(stat vm1 tx_packets); sleep 1; a2=$(stat vm1 tx_packets)
[ $((a2 - a1)) -gt 20000 ] || fail "healthy traffic stopped after the other guest vanished"
kill -INT -- "-$(pgrep -f "file-prefix=$TA" | head -1)" 2>/dev/null || true
wait_until 15 bash -c "! $VSWITCHCTL -s $T/ctl.sock --json show | grep -q '\"connected\": true'" || fail "guests still connected"
sleep 1
now=$(mbufs_in_use)
log "mbufs in use: before guests $base, after all guests left $now"
[ "$now" -le $((base + 512)) ] || fail "mbufs leaked: $base -> $now"
kill -0 "$VSW_PID" || fail "vswitchd died"
log "PASS"
