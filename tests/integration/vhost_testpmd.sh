#!/usr/bin/env bash
# Two vhost-user ports driven by a dpdk-testpmd with two virtio-user ports
# (as OVS's system-dpdk tests do): mac forwarding in a closed loop, traffic
# both ways, then a guest disconnect frees the port's resources.
# Cores: 2 (switch PMD on lcore 1, testpmd stacked on core 0).
. "$(dirname "$0")/lib.sh"
require_root
require_cmd dpdk-testpmd
require_hugepages 800

P=$(dpdk_prefix vh)
TP=$(dpdk_prefix tp)
{
  vsw_config_head "$P"
  for i in 1 2; do vsw_port "vm$i" vhost-user "path=$T/vm$i.sock"; done
} > "$T/vsw.toml"
vsw_start "$T/vsw.toml"
spawn_testpmd testpmd 8 "$TP" "$T/vm1.sock,mac=02:00:00:00:00:01" "$T/vm2.sock,mac=02:00:00:00:00:02" -- \
  --forward-mode=mac --eth-peer=0,02:00:00:00:00:02 --eth-peer=1,02:00:00:00:00:01 --tx-first
TPID=$SPAWNED_PID
wait_until 15 bash -c "$VSWITCHCTL -s $T/ctl.sock --json show | grep -q '\"connected\": true'" || fail "guests did not connect"
sleep 4
vsw_ctl show >&2
vsw_ctl port-stats >&2
for p in vm1 vm2; do
  rx=$(port_counter $p rx_packets); tx=$(port_counter $p tx_packets)
  log "$p rx=$rx tx=$tx"
  [ "$rx" -gt 100000 ] && [ "$tx" -gt 100000 ] || fail "$p did not carry traffic both ways"
done
wait "$TPID" || true
grep -q "RX-packets" "$T/testpmd.log" || fail "testpmd printed no stats"
# After the guest went away both ports are down and transmit nothing.
wait_until 10 bash -c "! $VSWITCHCTL -s $T/ctl.sock --json show | grep -q '\"connected\": true'" || fail "ports still connected"
tx1=$(port_counter vm1 tx_packets); sleep 1; tx2=$(port_counter vm1 tx_packets)
[ "$tx1" = "$tx2" ] || fail "tx moved on a disconnected port"
kill -0 "$VSW_PID" || fail "vswitchd died"
log "PASS"
