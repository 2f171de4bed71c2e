#!/usr/bin/env bash
# Two namespaces behind net_tap ports of the switch: ping and an iperf3
# transfer through the real data path. Cores: 2 (switch PMD on lcore 1).
. "$(dirname "$0")/lib.sh"
require_root
require_cmd iperf3 ping ip
require_hugepages 300

P=$(dpdk_prefix tap)
{
  vsw_config_head "$P"
  for i in 0 1; do vsw_port "tap$i" dpdk "devargs=net_tap$i,iface=vt${TAG}$i"; done
} > "$T/vsw.toml"
vsw_start "$T/vsw.toml"
for i in 0 1; do
  ns=vt${TAG}n$i
  netns_add "$ns"
  ip link set "vt${TAG}$i" netns "$ns"
  ip -n "$ns" addr add 10.201.0.$((i + 1))/24 dev "vt${TAG}$i"
  ip -n "$ns" link set "vt${TAG}$i" up
done
ip netns exec "vt${TAG}n0" ping -c 5 -i 0.2 -W 2 10.201.0.2 > "$T/ping.log" || fail "ping failed"
grep -q " 0% packet loss" "$T/ping.log" || fail "ping loss: $(tail -2 "$T/ping.log")"
ip netns exec "vt${TAG}n1" timeout 20 iperf3 -s -1 -p 5301 > "$T/iperf-s.log" 2>&1 &
sleep 0.5
ip netns exec "vt${TAG}n0" timeout 20 iperf3 -c 10.201.0.2 -p 5301 -t 3 -J > "$T/iperf.json" || fail "iperf3 failed"
bps=$(python3 -c "import json; print(int(json.load(open('$T/iperf.json'))['end']['sum_received']['bits_per_second']))")
log "iperf3 through the switch: $((bps / 1000000)) Mbit/s"
[ "$bps" -gt 50000000 ] || fail "throughput below 50 Mbit/s"
vsw_ctl port-stats >&2
rx0=$(port_counter tap0 rx_packets)
[ "$rx0" -gt 1000 ] || fail "port counters did not move"
# The same counters through DPDK telemetry (dpdk-telemetry.py, as operators read OVS-DPDK).
require_cmd dpdk-telemetry.py
printf '/vswitch/port_stats,tap0\n/vswitch/pmd_stats_show\n' | timeout 10 dpdk-telemetry.py -f "$P" > "$T/telemetry.log" 2>&1 \
  || fail "dpdk-telemetry.py failed"
python3 - "$T/telemetry.log" "$rx0" <<'PY' || fail "telemetry disagrees with vswitchctl"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ps = lines[0]["/vswitch/port_stats"]["tap0"]["rx_packets"]
pmd = lines[1]["/vswitch/pmd_stats_show"]["0"]["rx_packets"]
print(f"telemetry: tap0 rx_packets={ps}, pmd0 rx_packets={pmd}", file=sys.stderr)
sys.exit(0 if ps >= int(sys.argv[2]) and pmd >= ps else 1)
PY
log "PASS"
