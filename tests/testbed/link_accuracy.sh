#!/usr/bin/env bash
# (b) wiresim delay and rate accuracy, tap <-> tap between two namespaces (no
# switch). --delay-ms 5 --rate-mbit 100 each way: ping RTT ~ 2 x 5 ms within
# 10 %, iperf3 (3 s) TCP goodput within 15 % of the rate. Then loss and ECN
# marking sanity on the same link. Assumes 2 cores, runs ~12 s.
# usage: link_accuracy.sh WIRESIM
source "$(dirname "$0")/lib.sh"
WIRESIM=${1:?usage: $0 WIRESIM}
tb_require_env 100 ping iperf3
id=$$
A=tblaa$id B=tblab$id

# start_link LOG WIRESIM_ARGS...: wiresim in A; its second tap moves to B.
start_link() {
  local log=$1; shift
  tb_bg "$log" ip netns exec "$A" nice -n -10 "$WIRESIM" --file-prefix tblaw$id -m 128 -- \
    --port-a "tap:iface=tblaa$id,mac=02:77:02:00:00:01" --port-b "tap:iface=tblab$id,mac=02:77:02:00:00:02" "$@"
  WPID=$TB_LAST_PID
  tb_wait 15 ip -n "$A" link show "tblab$id" || { cat "$log"; tb_fail "wiresim taps did not appear"; }
  ip -n "$A" link set "tblab$id" netns "$B"
  tb_addr "$A" "tblaa$id" 10.77.2.1/24
  tb_addr "$B" "tblab$id" 10.77.2.2/24
  ip -n "$A" neigh replace 10.77.2.2 lladdr 02:77:02:00:00:02 dev "tblaa$id"
  ip -n "$B" neigh replace 10.77.2.1 lladdr 02:77:02:00:00:01 dev "tblab$id"
}

tb_netns "$A"
tb_netns "$B"
tb_prefix tblaw$id
echo "== delay 5 ms, rate 100 Mbit/s"
start_link "$TB_TMP/w1.log" --delay-ms 5 --rate-mbit 100
# The machine is shared: a measurement disturbed by other load (CPU taken
# from wiresim for milliseconds) is repeated once before it counts as failed.
# wiresim and ping run at nice -10: what is measured is the link's delay, not
# how long a build on the other core keeps them from waking up (median
# 12.7 ms for 10 without it, under two compilers).
measure_rtt() {
  ip netns exec "$A" nice -n -10 ping -n -i 0.05 -c 30 -W 1 10.77.2.2 >"$TB_TMP/ping.out" || { cat "$TB_TMP/ping.out"; tb_fail "ping"; }
  sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "$TB_TMP/ping.out" | sort -g >"$TB_TMP/rtt"
  p50=$(awk 'NR == 16' "$TB_TMP/rtt")
  min=$(head -1 "$TB_TMP/rtt")
  echo "ping RTT min $min ms, median $p50 ms, max $(tail -1 "$TB_TMP/rtt") ms"
  awk "BEGIN { exit !($p50 >= 9 && $p50 <= 11 && $min >= 9.9) }"
}
measure_rtt || measure_rtt || true
tb_check "RTT median $p50 ms = 10 ms +-10 %, min $min >= 9.9" "$p50 >= 9 && $p50 <= 11 && $min >= 9.9"
# iperf3 goodput, Mbit/s, from the receiver's side.
# A run whose report has no received sum (the connection never got going:
# seen once in CI) is run again once on another port, then fails the test.
measure_tput() {  # PORT SECONDS
  local port
  for port in "$1" "$(($1 + 100))"; do
    ip netns exec "$B" iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    TB_PIDS+=($!)
    tb_wait 5 ip netns exec "$B" ss -ltn sport = :"$port"
    ip netns exec "$A" timeout 20 iperf3 -c 10.77.2.2 -p "$port" -t "$2" -J >"$TB_TMP/iperf.json" || tb_fail "iperf3"
    gput=$(awk '/"sum_received"/ {f=1} f && /"bits_per_second"/ {gsub(/[^0-9.e+]/, "", $2); printf "%.2f", $2/1e6; exit}' \
      FS=: "$TB_TMP/iperf.json")
    [ -n "$gput" ] && break
    echo "iperf3 on port $port reported no received bytes: $(grep -m1 '"error"' "$TB_TMP/iperf.json")"
  done
  [ -n "$gput" ] || tb_fail "iperf3 reported no goodput twice"
  echo "iperf3 goodput $gput Mbit/s"
}
measure_tput 5201 3
awk "BEGIN { exit !($gput >= 85 && $gput <= 101) }" || measure_tput 5203 3
echo "(the rate counts Ethernet frames without FCS: TCP/IP/Ethernet headers cap goodput at ~95.6)"
tb_check "goodput $gput Mbit/s within 15 % of 100" "$gput >= 85 && $gput <= 101"
tb_stop "$WPID"
grep '^wiresim' "$TB_TMP/w1.log"

echo "== loss 0.2 each way, ECN step K=5 packets at 20 Mbit/s"
start_link "$TB_TMP/w2.log" --loss 0.2 --seed 3
ip netns exec "$A" ping -n -i 0.01 -c 200 -W 1 10.77.2.2 >"$TB_TMP/ping2.out" 2>&1 || true
tb_stop "$WPID"
grep '^wiresim' "$TB_TMP/w2.log"
rx=$(tb_kv "$TB_TMP/w2.log" "wiresim a->b:" rx)
lost=$(tb_kv "$TB_TMP/w2.log" "wiresim a->b:" drop_loss)
tb_check "a->b loss $lost/$rx ~ 0.2 (0.12..0.28)" "$rx > 150 && $lost / $rx > 0.12 && $lost / $rx < 0.28"

start_link "$TB_TMP/w3.log" --rate-mbit 20 --ecn-k-pkts 5
ip netns exec "$A" sysctl -qw net.ipv4.tcp_ecn=1
ip netns exec "$B" sysctl -qw net.ipv4.tcp_ecn=1
measure_tput 5202 2
tb_stop "$WPID"
grep '^wiresim' "$TB_TMP/w3.log"
ce=$(tb_kv "$TB_TMP/w3.log" "wiresim a->b:" ce_marked)
qmax=$(tb_kv "$TB_TMP/w3.log" "wiresim a->b:" queue_max_pkts)
qdrop=$(tb_kv "$TB_TMP/w3.log" "wiresim a->b:" drop_queue)
# Marked packets carry a rewritten IPv4 checksum: a wrong one would make the
# receiver drop them all and the transfer stall.
tb_check "ECN: $ce CE marks, queue max $qmax, tail drops $qdrop, goodput $gput of 20 Mbit/s" \
  "$ce > 10 && $qdrop == 0 && $gput > 15"
echo PASS
