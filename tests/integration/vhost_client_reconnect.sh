#!/usr/bin/env bash
# vhost-user client mode (the frontend is the socket server, as QEMU with
# server=on): SIGKILL vswitchd under traffic, restart it, traffic resumes on
# both ports. Cores: 2 (switch PMD on lcore 1, testpmd stacked on core 0).
. "$(dirname "$0")/lib.sh"
require_root
require_cmd dpdk-testpmd
require_hugepages 800

P=$(dpdk_prefix vc)
TP=$(dpdk_prefix tc)
{
  vsw_config_head "$P"
  for i in 1 2; do vsw_port "vm$i" vhost-user "path=$T/vm$i.sock" client=true; done
} > "$T/vsw.toml"
# The frontend owns the sockets; it waits for the switch to connect.
spawn_testpmd testpmd 40 "$TP" "$T/vm1.sock,server=1,mac=02:00:00:00:00:01" \
  "$T/vm2.sock,server=1,mac=02:00:00:00:00:02" -- \
  --forward-mode=flowgen --eth-peer=0,02:00:00:00:00:02 --eth-peer=1,02:00:00:00:00:01
# virtio-user in server mode accepts its sockets one by one during probe; the
# switch's client ports keep retrying until each socket appears.
connected() { "$VSWITCHCTL" -s "$T/ctl.sock" --json show | python3 -c "
import json,sys; p=json.load(sys.stdin)['ports']; sys.exit(0 if all(x['connected'] for x in p) else 1)"; }
moving() {  # both ports carried traffic during the last second
  local a b
  a=$(vsw_ctl --json port-stats | python3 -c "import json,sys; print(' '.join(str(p['tx_packets']) for p in json.load(sys.stdin)))")
  sleep 1
  b=$(vsw_ctl --json port-stats | python3 -c "import json,sys; print(' '.join(str(p['tx_packets']) for p in json.load(sys.stdin)))")
  python3 -c "a='$a'.split(); b='$b'.split(); import sys; sys.exit(0 if all(int(y) > int(x) for x, y in zip(a, b)) else 1)"
}
vsw_start "$T/vsw.toml"
wait_until 15 connected || fail "switch did not connect to the frontend"
wait_until 10 moving || fail "no traffic before the restart"
log "traffic flows; killing vswitchd"
kill -KILL -- "-$VSW_PID"
sleep 2
t0=$(date +%s.%N)
vsw_start "$T/vsw.toml" vswitchd2
wait_until 20 connected || fail "switch did not reconnect after restart"
wait_until 10 moving || fail "traffic did not resume after restart"
t1=$(date +%s.%N)
log "reconnected and forwarding $(python3 -c "print(round($t1 - $t0, 2))") s after the restart"
vsw_ctl port-stats >&2
log "PASS"
