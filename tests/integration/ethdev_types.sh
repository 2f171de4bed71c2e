#!/usr/bin/env bash
# Ports of several DPDK drivers, added at run time by devargs next to a
# net_tap port: net_af_packet on a veth (ping through it), net_pcap (frames
# replayed from a capture are switched, flooded frames are captured),
# net_ring and net_null (added, counted, removed), net_af_xdp where the
# kernel and driver allow it (skipped part otherwise, logged).
# Cores: 2 (switch PMD on lcore 1).
. "$(dirname "$0")/lib.sh"
require_root
require_cmd ping ip python3
require_hugepages 300

P=$(dpdk_prefix et)
{
  vsw_config_head "$P"
  vsw_port tap0 dpdk "devargs=net_tap0,iface=ve${TAG}t"
} > "$T/vsw.toml"
vsw_start "$T/vsw.toml"
NA=ve${TAG}a NB=ve${TAG}b
netns_add "$NA"
netns_add "$NB"
ip link set "ve${TAG}t" netns "$NA"
ip -n "$NA" addr add 10.204.0.1/24 dev "ve${TAG}t"
ip -n "$NA" link set "ve${TAG}t" up
# af_packet: the switch side of a veth pair stays in the root namespace.
ip link add "ve${TAG}p" type veth peer name "ve${TAG}q"
ip link set "ve${TAG}q" netns "$NB"
ip link set "ve${TAG}p" up
ip -n "$NB" addr add 10.204.0.2/24 dev "ve${TAG}q"
ip -n "$NB" link set "ve${TAG}q" up
vsw_ctl add-port afp type=dpdk "devargs=net_af_packet0,iface=ve${TAG}p" >&2 || fail "add af_packet port"
ip netns exec "$NA" ping -c 4 -i 0.2 -W 2 10.204.0.2 > "$T/ping.log" || fail "no ping through tap <-> af_packet"
log "af_packet: $(grep -o '[0-9]* received' "$T/ping.log")"

# pcap: replay 20 broadcast UDP frames; they are flooded out of tap0 and afp.
python3 - "$T/in.pcap" <<'PY'
import struct, sys
frames = []
for i in range(20):
    eth = b"\xff" * 6 + bytes([2, 0, 0, 0, 0x77, 1]) + b"\x08\x00"
    payload = bytes(16)
    udp = struct.pack("!HHHH", 4000, 4001, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, bytes([10, 204, 0, 9]), bytes([10, 204, 0, 255]))
    s = sum(struct.unpack("!10H", ip)); s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
    ip = ip[:10] + struct.pack("!H", ~s & 0xffff) + ip[12:]
    frames.append(eth + ip + udp)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for fr in frames:
        f.write(struct.pack("<IIII", 0, 0, len(fr), len(fr)) + fr)
PY
tapb=$(port_counter tap0 tx_packets)
vsw_ctl add-port pcap type=dpdk "devargs=net_pcap0,rx_pcap=$T/in.pcap,tx_pcap=$T/out.pcap" >&2 || fail "add pcap port"
wait_until 10 bash -c "[ \$($VSWITCHCTL -s $T/ctl.sock --json port-stats pcap | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"rx_packets\"])') -ge 20 ]" \
  || fail "pcap frames not received"
wait_until 5 bash -c "[ \$($VSWITCHCTL -s $T/ctl.sock --json port-stats tap0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"tx_packets\"])') -ge $((tapb + 20)) ]" \
  || fail "replayed broadcasts were not flooded to tap0"
ip netns exec "$NA" ping -c 2 -i 0.2 -b -W 1 10.204.0.255 >/dev/null 2>&1 || true   # broadcasts toward the capture
vsw_ctl del-port pcap >&2
cap=$(python3 -c "
import os, sys
b = open('$T/out.pcap', 'rb').read(); n = 0; off = 24
while off + 16 <= len(b):
    l = int.from_bytes(b[off + 8:off + 12], 'little'); off += 16 + l; n += 1
print(n)")
log "pcap: 20 frames replayed and switched; $cap frames captured on its tx side"
[ "$cap" -ge 1 ] || fail "nothing flooded into the pcap capture"

for spec in "ring net_ring0" "null net_null0"; do
  set -- $spec
  vsw_ctl add-port "$1" type=dpdk "devargs=$2" >&2 || fail "add $2"
  vsw_ctl --json show | grep -q "\"$1\"" || fail "$1 not listed"
  vsw_ctl del-port "$1" >&2 || fail "del $1"
done
log "net_ring, net_null: added and removed under a running switch"

ip link add "ve${TAG}x" type veth peer name "ve${TAG}y"
ip link set "ve${TAG}x" up; ip link set "ve${TAG}y" up
if vsw_ctl add-port xdp type=dpdk "devargs=net_af_xdp0,iface=ve${TAG}x,start_queue=0,queue_count=1" >&2 2>"$T/xdp.err"; then
  log "net_af_xdp: port added"; vsw_ctl del-port xdp >&2
else
  log "net_af_xdp: not usable here ($(tail -1 "$T/xdp.err")); part skipped"
fi
ip link del "ve${TAG}x" 2>/dev/null || true
ip link del "ve${TAG}p" 2>/dev/null || true
ip netns exec "$NA" ping -c 2 -i 0.2 -W 2 10.204.0.2 >/dev/null 2>&1 && fail "af_packet port still forwarding after its veth is gone?"
kill -0 "$VSW_PID" || fail "vswitchd died"
log "PASS"
