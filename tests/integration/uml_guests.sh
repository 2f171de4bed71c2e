#!/usr/bin/env bash
# Real Linux guests: two User-Mode Linux guests (kernel 6.1, real TCP stack)
# on two vhost-user server ports of vswitchd, plus a host namespace behind a
# net_tap uplink. Checks ping guest<->guest and guest<->host with 0 % loss and
# iperf3 in both directions; then real VM consolidation: the guests run in a
# cgroup v1 cpu group (period 30 ms, quota 10 ms) with a CPU loop inside one
# guest, and the ping RTT to it from the host namespace must show the
# tens-of-ms spikes the switch's TCP stages exist to hide (also measured, not
# asserted: quota 3 ms). Figures go to the log (RESULT line).
# Cores: 2 (switch PMD on lcore 1 with idle sleep; guests float). ~50 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/guest/guestlib.sh"
require_root
require_cmd ip ping iperf3 python3
require_hugepages 300
guest_prepare uml

NET=10.203.1
HNS=vr${TAG}h UP=vr${TAG}up
MIN_MBPS=${MIN_MBPS:-50}
P=$(dpdk_prefix uml)
{
  vsw_config_head "$P"
  for i in 1 2; do vsw_port "vm$i" vhost-user "path=$T/vm$i.sock" "disable_features=$UML_FEATURES_OFF"; done
  vsw_port up dpdk "devargs=net_tap0,iface=$UP"
} >"$T/vsw.toml"
vsw_start "$T/vsw.toml"
netns_add "$HNS"
uplink_attach "$UP" "$HNS" "$NET.1/24" 02:00:00:cb:01:01

cpu_cgroup_create "vr${TAG}uml"
[ -n "$CG" ] || log "no writable cgroup v1 cpu controller: the consolidation part will be skipped"
t0=$SECONDS
uml_start g1 "$T/vm1.sock" "$NET.11/24" 02:00:00:cb:01:11 "$CG"
uml_start g2 "$T/vm2.sock" "$NET.12/24" 02:00:00:cb:01:12 "$CG"
uml_wait_ready g1
uml_wait_ready g2
log "both UML guests up after $((SECONDS - t0)) s"
for p in vm1 vm2; do
  [ "$(vsw_port_field $p connected)" = True ] || fail "port $p not connected"
  log "port $p negotiated features $(vsw_port_field $p negotiated_features) (disabled $UML_FEATURES_OFF)"
done

# ---- ping: host <-> guests, guest <-> guest
ip netns exec "$HNS" ping -c 20 -i 0.1 -W 2 "$NET.11" >"$T/ping-h-g1.txt" || true
ip netns exec "$HNS" ping -c 20 -i 0.1 -W 2 "$NET.12" >"$T/ping-h-g2.txt" || true
uml_exec g1 30 "ping -c 20 -i 0.1 -W 2 $NET.12" >"$T/ping-g1-g2.txt" || true
uml_exec g2 30 "ping -c 20 -i 0.1 -W 2 $NET.1" >"$T/ping-g2-h.txt" || true
for f in ping-h-g1 ping-h-g2 ping-g1-g2 ping-g2-h; do
  log "$f: $(ping_summary "$T/$f.txt") ms"
  ping_loss_zero "$T/$f.txt" || fail "$f lost packets: $(tail -n 2 "$T/$f.txt")"
done

# ---- iperf3, 3 s each way: guest<->guest and guest<->host
declare -A MBPS
run_iperf() {  # run_iperf LABEL WHERE(g1|host) SERVER [-R]
  local label=$1 where=$2 srv=$3 rev=${4:-} out=$T/iperf-$1.json
  if [ "$where" = host ]; then
    ip netns exec "$HNS" timeout 20 iperf3 -c "$srv" -t 3 -J $rev >"$out" 2>&1 || true
  else
    uml_exec "$where" 30 "timeout 20 iperf3 -c $srv -t 3 -J $rev" >"$out" || true
  fi
  MBPS[$label]=$(iperf_mbps "$out" 2>/dev/null) || fail "iperf3 $label did not complete: $(grep -m1 error "$out")"
  log "iperf3 $label: ${MBPS[$label]} Mbit/s"
  [ "${MBPS[$label]}" -ge "$MIN_MBPS" ] || fail "iperf3 $label below $MIN_MBPS Mbit/s"
}
run_iperf g1-to-g2 g1 "$NET.12"
run_iperf g2-to-g1 g1 "$NET.12" -R
run_iperf host-to-g1 host "$NET.11"
run_iperf g1-to-host host "$NET.11" -R
vsw_ctl port-stats >&2
for p in vm1 vm2 up; do
  [ "$(port_counter $p tx_drop_other)" = 0 ] || fail "port $p: tx_drop_other > 0"
  [ "$(port_counter $p rx_bad_offload)" = 0 ] || fail "port $p: rx_bad_offload > 0"
done

# ---- the guest kernel (guest/uml-kernel): HZ 1000 and DCTCP built in, used
# through the switch: g1 sends to g2 with DCTCP at both ends (Linux takes ECN
# from an ECT SYN only into a DCTCP listener) and a 5 ms RTO floor, which
# HZ 1000 keeps at 5 ms instead of rounding it up to 10.
grep -q "VSW: kernel HZ 1000," "$T/g1.log" || fail "guest kernel is not HZ 1000: $(grep 'VSW: kernel' "$T/g1.log")"
uml_exec g2 20 "sysctl -qw net.ipv4.tcp_congestion_control=dctcp && iperf3 -s -D -p 5202" >/dev/null ||
  fail "could not start a DCTCP iperf3 server in g2"
uml_exec g1 40 "ip route replace $NET.0/24 dev eth0 rto_min 5ms && sysctl -qw net.ipv4.tcp_congestion_control=dctcp &&
  { timeout 15 iperf3 -c $NET.12 -p 5202 -t 3 >/dev/null 2>&1 & sleep 1.5; ss -tin dst $NET.12; wait; }" >"$T/ss-g1.txt" ||
  fail "DCTCP transfer g1->g2 failed: $(tail -n 3 "$T/ss-g1.txt")"
sed 's/^/[g1 ss] /' "$T/ss-g1.txt" >&2
# DCTCP reports its state (ce_state, alpha) only with ECN negotiated; without
# it, it runs as "dctcp-reno" and ss says dctcp:fallback_mode.
grep -q "dctcp:(ce_state" "$T/ss-g1.txt" || fail "g1's connection does not run DCTCP with ECN (fallback or another CC)"
RTO_G1=$(grep -o 'rto:[0-9.]*' "$T/ss-g1.txt" | cut -d: -f2 | sort -g | head -n 1)
log "guest kernel: HZ 1000, DCTCP with ECN through the switch, smallest rto with rto_min 5ms: $RTO_G1 ms"

# ---- consolidation: RTT to a guest that shares a throttled CPU group with load
[ -n "$CG" ] || skip "connectivity and iperf3 passed; consolidation needs a cgroup v1 cpu controller"
rtt() {  # rtt LABEL: 150 pings, 20 ms apart, host namespace -> g1
  ip netns exec "$HNS" ping -c 150 -i 0.02 -W 1 "$NET.11" >"$T/rtt-$1.txt" || true
  RTT[$1]=$(ping_summary "$T/rtt-$1.txt")
  log "RTT host->g1 $1: ${RTT[$1]} ms"
}
declare -A RTT
echo 30000 >"$CG/cpu.cfs_period_us"
rtt idle-unthrottled
uml_exec g1 20 "nohup sh -c 'while :; do :; done' >/dev/null 2>&1 & echo \$! >/tmp/loop.pid" >/dev/null ||
  fail "could not start the CPU loop in g1"
sleep 0.5
rtt loaded-unthrottled
echo 10000 >"$CG/cpu.cfs_quota_us"
sleep 0.5
rtt loaded-quota10ms
read -r nr_periods nr_throttled < <(awk '/nr_periods/ {p=$2} /nr_throttled/ {t=$2} END {print p, t}' "$CG/cpu.stat")
log "cgroup: $nr_throttled of $nr_periods periods throttled"
echo 3000 >"$CG/cpu.cfs_quota_us"
sleep 0.5
rtt loaded-quota3ms
echo -1 >"$CG/cpu.cfs_quota_us"
uml_exec g1 20 'kill $(cat /tmp/loop.pid)' >/dev/null || log "could not stop the CPU loop (guest is halted anyway)"

p50() { sed -n 's/.*p50=\([0-9.]*\).*/\1/p' <<<"${RTT[$1]}"; }
p90() { sed -n 's/.*p90=\([0-9.]*\).*/\1/p' <<<"${RTT[$1]}"; }
awk -v a="$(p50 idle-unthrottled)" 'BEGIN {exit !(a < 2)}' || fail "unthrottled RTT p50 $(p50 idle-unthrottled) ms is not < 2 ms"
awk -v a="$(p90 loaded-quota10ms)" 'BEGIN {exit !(a > 5)}' ||
  fail "throttled guest shows no scheduling spikes (p90 $(p90 loaded-quota10ms) ms, expected > 5 ms)"
log "RESULT uml: ping 0% loss; iperf3 Mbit/s g1->g2 ${MBPS[g1-to-g2]} g2->g1 ${MBPS[g2-to-g1]}" \
  "host->g1 ${MBPS[host-to-g1]} g1->host ${MBPS[g1-to-host]}; RTT idle ${RTT[idle-unthrottled]};" \
  "loaded ${RTT[loaded-unthrottled]}; loaded+quota 10/30 ms ${RTT[loaded-quota10ms]}; loaded+quota 3/30 ms ${RTT[loaded-quota3ms]}"
kill -0 "$VSW_PID" || fail "vswitchd died"
log "PASS"
