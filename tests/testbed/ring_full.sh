#!/usr/bin/env bash
# (c) The switch sees a full guest ring while vmsim is descheduled. Stand-in
# switch: dpdk-testpmd io-forwarding tap (host namespace) <-> net_vhost (to
# vmsim). The host sends UDP to the guest at 5000 packets/s (iperf3 -u: open
# loop; ping would throttle itself on missing replies). Gated run: 3 VMs/core, 100 %
# load, 50 ms slice (on 50 ms, off 100 ms: 500 packets arrive per off period,
# the ring holds 256): testpmd's vhost enqueue must fail (TX-dropped on port
# 0). Control run, same traffic, vmsim never descheduled: (almost) no drops.
# Assumes 2 cores; testpmd busy-polls one lcore for ~2 x 4 s.
# usage: ring_full.sh VMSIM
source "$(dirname "$0")/lib.sh"
VMSIM=${1:?usage: $0 VMSIM}
tb_require_env 300 dpdk-testpmd iperf3
id=$$
H=tbrfh$id G=tbrfg$id
tb_netns "$H"
tb_netns "$G"

# run_case NAME PORT VMSIM_SCHEDULE_ARGS...: sets DROP (testpmd TX-dropped on
# the vhost port) and GRX (packets vmsim took from the switch). Not run in a
# subshell: the cleanup lists must see what it registers. One iperf3 port per
# case: the previous case's one-shot server may still be winding down, and a
# client that reaches it gets "the server is busy".
run_case() {
  local name=$1 port=$2; shift 2
  local sock=$TB_TMP/$name.sock
  tb_prefix tbrfp$name$id
  tb_prefix tbrfv$name$id
  tb_testpmd_vhost "$H" tbrfp$name$id "$sock" "tbrfh$id" 02:77:03:00:00:01 "$TB_TMP/$name.testpmd.log"
  tb_vmsim_start "$G" tbrfv$name$id "$TB_TMP/$name.vmsim.log" --vhost "$sock" --iface "tbrfg$id" \
    --mac 02:77:03:00:00:02 --queue-size 256 "$@"
  tb_addr "$G" "tbrfg$id" 10.77.3.2/24
  tb_addr "$H" "tbrfh$id" 10.77.3.1/24
  ip -n "$H" neigh replace 10.77.3.2 lladdr 02:77:03:00:00:02 dev "tbrfh$id"
  ip -n "$G" neigh replace 10.77.3.1 lladdr 02:77:03:00:00:01 dev "tbrfg$id"
  tb_bg "$TB_TMP/$name.iperf_s" ip netns exec "$G" iperf3 -s -1 -p "$port"
  tb_wait 5 bash -c "ip netns exec $G ss -ltnH sport = :$port | grep -q ." \
    || tb_fail "iperf3 server ($name) not listening"
  ip netns exec "$H" timeout 20 iperf3 -u -c 10.77.3.2 -p "$port" -b 8M -l 200 -t 2 >"$TB_TMP/$name.iperf" 2>&1 \
    || { cat "$TB_TMP/$name.iperf"; tb_fail "iperf3 -u ($name)"; }
  tb_stop "$TB_VMSIM_PID"
  tb_stop "$TB_TESTPMD_PID"
  grep '^vmsim' "$TB_TMP/$name.vmsim.log"
  grep -E 'receiver' "$TB_TMP/$name.iperf" || true
  DROP=$(tb_testpmd_fwd_stat "$TB_TMP/$name.testpmd.log" 0 TX-dropped)
  GRX=$(tb_kv "$TB_TMP/$name.vmsim.log" "vmsim counters" switch_to_guest_rx)
}

echo "== gated: on 50 ms / off 100 ms"
run_case gated 5301 --vms-per-core 3 --load 100 --slice-ms 50 --seed 1
gdrop=$DROP grx=$GRX
echo "testpmd vhost TX-dropped $gdrop, vmsim received $grx"
echo "== control: never descheduled"
run_case ctl 5302 --vms-per-core 1
cdrop=$DROP crx=$GRX
echo "testpmd vhost TX-dropped $cdrop, vmsim received $crx"
[ "$gdrop" != NA ] && [ "$cdrop" != NA ] || tb_fail "no testpmd forward statistics"
tb_check "gated: enqueue failures seen by the backend ($gdrop > 1000)" "$gdrop > 1000"
tb_check "gated: the guest still drained its ring when on ($grx > 1000)" "$grx > 1000"
tb_check "control: no ring-full drops ($cdrop < 50)" "$cdrop < 50"
echo PASS
