#!/usr/bin/env bash
# Ports are added and removed at run time while a TCP transfer crosses two
# other ports: the transfer completes without retransmission bursts, each
# new port forwards (ping through it), and removed ports leave no FDB entry.
# Cores: 2.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd iperf3 ping ip
require_hugepages 300

P=$(dpdk_prefix ad)
{
  vsw_config_head "$P"
  for i in 0 1; do vsw_port "tap$i" dpdk "devargs=net_tap$i,iface=va${TAG}$i"; done
} > "$T/vsw.toml"
vsw_start "$T/vsw.toml"
plug() {  # plug IFACE NS IP
  netns_add "$2"
  ip link set "$1" netns "$2"
  ip -n "$2" addr add "$3/24" dev "$1"
  ip -n "$2" link set "$1" up
}
plug "va${TAG}0" "va${TAG}n0" 10.202.0.1
plug "va${TAG}1" "va${TAG}n1" 10.202.0.2
ip netns exec "va${TAG}n1" timeout 40 iperf3 -s -1 -p 5302 > "$T/iperf-s.log" 2>&1 &
sleep 0.5
ip netns exec "va${TAG}n0" timeout 40 iperf3 -c 10.202.0.2 -p 5302 -t 12 -J > "$T/iperf.json" &
IPERF=$!
sleep 1
for i in 2 3 4; do
  vsw_ctl add-port "extra$i" type=dpdk "devargs=net_tap$i,iface=va${TAG}$i" >&2 || fail "add-port extra$i"
  plug "va${TAG}$i" "va${TAG}n$i" "10.202.0.$((10 + i))"
  ip netns exec "va${TAG}n$i" ping -c 3 -i 0.2 -W 2 10.202.0.1 > "$T/ping$i.log" || fail "no ping through new port extra$i"
  vsw_ctl del-port "extra$i" >&2 || fail "del-port extra$i"
  vsw_ctl --json fdb-show | grep -q "extra$i" && fail "FDB still names extra$i"
done
vsw_ctl add-port null0 type=dpdk devargs=net_null0 >&2
vsw_ctl del-port null0 >&2
wait "$IPERF" || fail "iperf3 failed while ports changed"
python3 - "$T/iperf.json" <<'PY' || fail "transfer disturbed"
import json, sys
j = json.load(open(sys.argv[1]))
bps = j['end']['sum_received']['bits_per_second']
rtx = j['end']['sum_sent'].get('retransmits', 0)
low = min(iv['sum']['bits_per_second'] for iv in j['intervals'][:-1])
print(f"throughput {bps/1e6:.0f} Mbit/s, retransmits {rtx}, slowest interval {low/1e6:.0f} Mbit/s", file=sys.stderr)
sys.exit(0 if bps > 50e6 and low > 10e6 else 1)
PY
[ "$(vsw_ctl --json show | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ports"]))')" = 2 ] || fail "port count"
log "PASS"
