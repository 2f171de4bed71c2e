#!/usr/bin/env bash
# Monitor stage validated against Linux tcp_info (ss -tin) and the sender
# namespace's TCP MIB counters, with real Linux stacks on both ends.
#
#   ns L (10.213.0.1) --tap "host"-- vswitchd --vhost "up1"-- wiresim --tap-- ns R1 (10.213.0.2)
#                                             --vhost "up2"-- wiresim --tap-- ns R2 (10.213.0.3)
#   up1: 2 ms each way, 100 Mbit/s, 100-packet queue; up2: same + 1 % loss after the switch.
#
# Scenarios (sequential; sender in L): bulk, application-limited (iperf3 -b),
# receive-window-limited (small SO_RCVBUF at the receiver), lossy bulk, short
# transfers. During each, L's tcp_info (netlink: what `ss -tin` prints) and the
# monitor's tcp-flows (control socket) are read back to back every 0.5 s;
# monitor_validate.py compares them.
# Pass: retransmissions exact per scenario, RTT/flight/limited-by agreement
# above the CI floors below (the benchmark bench/monitor/validate.sh reports
# the real numbers), telemetry pages and closed-connection export work.
# Cores: 2 (switch PMD on lcore 1; wiresims sleep when idle). ~70 s.
export TAG=${TAG:-mo$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')}
. "$(dirname "$0")/lib.sh"
require_root
require_cmd iperf3 ss ip python3 dpdk-telemetry.py
require_hugepages 700
WIRESIM=${WIRESIM:-$VSW_BUILD/bench/testbed/wiresim}
[ -x "$WIRESIM" ] || skip "wiresim not built ($WIRESIM)"
HERE=$(cd "$(dirname "$0")" && pwd)
PY="python3 $HERE/monitor_validate.py"
SECS=${MON_SECS:-7}              # seconds per long scenario (the benchmark raises it)
RESULTS=${MON_RESULTS:-$T}       # where samples.jsonl / counts.jsonl / result.json go
: > "$RESULTS/samples.jsonl"; : > "$RESULTS/counts.jsonl"

P=$(dpdk_prefix sw); W1=$(dpdk_prefix w1); W2=$(dpdk_prefix w2)
L=${TAG}L R1=${TAG}R1 R2=${TAG}R2
LIP=10.213.0.1 R1IP=10.213.0.2 R2IP=10.213.0.3
{
  vsw_config_head "$P" 1 50
  cat <<EOC
[stages]
order = ["monitor"]
enabled = ["monitor"]
[stages.monitor]
uplink_ports = ["up1", "up2"]
export_path = "$T/closed.jsonl"
${MON_STAGE_CFG:-}
[[port]]
name = "host"
type = "dpdk"
devargs = "net_tap0,iface=${TAG}h"
[[port]]
name = "up1"
type = "vhost-user"
path = "$T/up1.sock"
[[port]]
name = "up2"
type = "vhost-user"
path = "$T/up2.sock"
EOC
} > "$T/vsw.toml"
vsw_start "$T/vsw.toml"
for n in "$L" "$R1" "$R2"; do netns_add "$n"; done
ip link set "${TAG}h" netns "$L"
ip -n "$L" addr add $LIP/24 dev "${TAG}h"
ip -n "$L" link set "${TAG}h" up
# The senders' congestion control: the namespace's default (the host's: bbr,
# a paced sender, on this machine) unless MON_CC names one (per socket: iperf3
# -C, monitor_validate.py send --cc; e.g. MON_CC=cubic).
# MON_PCAP=DIR: headers of everything the sender namespace puts on the wire
# (tcpdump on its tap), to check the monitor's counts against a capture.
if [ -n "${MON_PCAP:-}" ]; then
  require_cmd tcpdump
  spawn tcpdump ip netns exec "$L" tcpdump -i "${TAG}h" -s 128 -w "$MON_PCAP/sender.pcap" -U tcp
fi
CC=${MON_CC:-$(ip netns exec "$L" sysctl -n net.ipv4.tcp_congestion_control)}
log "sender congestion control: $CC"
WOPT="--delay-ms ${MON_DELAY_MS:-2} --rate-mbit ${MON_RATE:-100} --queue-pkts 100 --idle-sleep-us 20"
spawn w1 ip netns exec "$R1" nice -n -5 "$WIRESIM" --file-prefix "$W1" -m 128 --single-file-segments \
  --log-level=pmd.net.virtio.*:warning -- --port-a "virtio:path=$T/up1.sock" \
  --port-b "tap:iface=${TAG}w1,mac=02:6d:6f:00:01:02" $WOPT
spawn w2 ip netns exec "$R2" nice -n -5 "$WIRESIM" --file-prefix "$W2" -m 128 --single-file-segments \
  --log-level=pmd.net.virtio.*:warning -- --port-a "virtio:path=$T/up2.sock" \
  --port-b "tap:iface=${TAG}w2,mac=02:6d:6f:00:02:02" $WOPT --ab-loss ${MON_LOSS:-0.01} --seed 7
for i in 1 2; do
  ns=${TAG}R$i
  wait_until 20 ip -n "$ns" link show "${TAG}w$i" || fail "wiresim $i did not create its tap"
  ip -n "$ns" addr add 10.213.0.$((i + 1))/24 dev "${TAG}w$i"
  ip -n "$ns" link set "${TAG}w$i" up
done
for ip in $R1IP $R2IP; do
  wait_until 20 ip netns exec "$L" ping -c 1 -W 1 "$ip" || fail "no path to $ip"
done

snmp() {  # snmp NS TABLE FIELD: one counter of /proc/net/snmp or /proc/net/netstat in NS
  ip netns exec "$1" awk -v t="$2:" -v f="$3" '$1==t { if (!h) { for (i=1;i<=NF;i++) k[i]=$i; h=1 }
    else { for (i=1;i<=NF;i++) if (k[i]==f) print $i } }' /proc/net/snmp /proc/net/netstat
}
CTL="$VSWITCHCTL -s $T/ctl.sock"
# run_scenario LABEL DPORT REMOTE_NS REMOTE_IP SERVER_CMD -- CLIENT_CMD
run_scenario() {
  local label=$1 dport=$2 rns=$3 rip=$4; shift 4
  local server=() client=()
  while [ "$1" != "--" ]; do server+=("$1"); shift; done; shift
  client=("$@")
  log "scenario $label"
  local r0 t0
  r0=$(snmp "$L" Tcp RetransSegs); t0=$(snmp "$L" TcpExt TCPTimeouts)
  spawn "srv-$dport" ip netns exec "$rns" timeout 60 "${server[@]}"
  sleep 0.5
  ip netns exec "$L" timeout 60 "${client[@]}" > "$T/client-$dport.log" 2>&1 &
  local cpid=$!
  $PY sample --ns "$L" --ctl "$CTL" --local $LIP --remote "$rip" --seconds "$SECS" --interval "$IVL" \
    --label "$label" --out "$RESULTS/samples.jsonl" || fail "sampling failed"
  wait "$cpid" || fail "$label: client failed: $(tail -3 "$T/client-$dport.log")"
  # The kernel may still retransmit (a lost FIN) after the client exits: read
  # the counters once no connection of this scenario is left but TIME-WAIT.
  wait_until 15 bash -c "[ -z \"\$(ip netns exec $L ss -tnH state all exclude time-wait dst $rip dport = :$dport)\" ]" \
    || log "$label: connections still open after 15 s"
  echo "$label $dport $(( $(snmp "$L" Tcp RetransSegs) - r0 )) $(( $(snmp "$L" TcpExt TCPTimeouts) - t0 ))" >> "$T/linux_counts"
}
: > "$T/linux_counts"
IVL=0.5   # seconds between two samples
IP3="iperf3 -s -1 -p"
SCEN=" ${MON_SCENARIOS:-bulk app rwnd rwnd-paced lossy short} "   # a subset for experiments
want() { [[ "$SCEN" == *" $1 "* ]]; }
want bulk && run_scenario bulk:cwnd 5201 "$R1" $R1IP $IP3 5201 -- iperf3 -c $R1IP -p 5201 -t "$SECS" -i 0 -C "$CC"
want app && run_scenario app:iperf3-b5M 5202 "$R1" $R1IP $IP3 5202 -- iperf3 -c $R1IP -p 5202 -t "$SECS" -b 5M -l 8K -i 0 -C "$CC"
# Receive-window-limited: a sender that is not paced (cubic), so that Linux
# itself counts the transfer as rwnd-limited (~100 % of the busy time). A paced
# sender (bbr) with the same receiver counts only 45-80 % of each interval as
# rwnd-limited (the rest waits for its pacing timer) and straddles the
# reference's 50 % threshold: reported as rwnd-paced, not gated.
want rwnd && run_scenario rwnd:rcvbuf16K-cubic 5203 "$R1" $R1IP $PY recv --port 5203 --rcvbuf 16384 --timeout 40 -- \
  $PY send --host $R1IP --port 5203 --seconds "$SECS" --cc "${MON_CC:-cubic}"
want rwnd-paced && run_scenario rwnd-paced:rcvbuf16K-bbr 5206 "$R1" $R1IP $PY recv --port 5206 --rcvbuf 16384 --timeout 40 -- \
  $PY send --host $R1IP --port 5206 --seconds "$SECS" --cc bbr
want lossy && run_scenario lossy:1pct 5204 "$R2" $R2IP $IP3 5204 -- iperf3 -c $R2IP -p 5204 -t "$SECS" -i 0 -C "$CC"
# Short transfers last ~25 ms each: sampled every 10 ms, not every 0.5 s.
SHORT_SECS=$(( SECS < 4 ? SECS : 4 ))
SECS_SAVE=$SECS; SECS=$SHORT_SECS; IVL=0.01
want short && run_scenario short:300KB 5205 "$R2" $R2IP $PY recv --port 5205 --timeout 30 -- \
  $PY send --host $R2IP --port 5205 --conns 12 --bytes 300000 --cc "$CC"
SECS=$SECS_SAVE; IVL=0.5

# Telemetry: the same connections, paged, through DPDK telemetry.
printf '/vswitch/tcp_flows,0\n' | timeout 10 dpdk-telemetry.py -f "$P" > "$T/telemetry.log" 2>&1 || fail "dpdk-telemetry.py failed"
grep -q '"pages"' "$T/telemetry.log" || fail "telemetry page missing: $(tail -3 "$T/telemetry.log")"
vsw_ctl tcp-flows top=5 >&2

# Closed connections reach the export file after the flow table's linger (2 s).
NREC=0  # connections per scenario: iperf3 2 (control + data), python 1 each
for k in bulk app lossy; do want $k && NREC=$((NREC + 2)); done
want rwnd && NREC=$((NREC + 1)); want rwnd-paced && NREC=$((NREC + 1)); want short && NREC=$((NREC + 12))
NREC=$(( NREC > 3 ? NREC - 3 : 1 ))
wait_until 20 bash -c "[ \$(grep -c '\"closed_reason\"' '$T/closed.jsonl' 2>/dev/null || echo 0) -ge $NREC ]" \
  || fail "export file has $(grep -c closed_reason "$T/closed.jsonl" 2>/dev/null) records"
sleep 1
[ "$RESULTS" = "$T" ] || cp "$T/closed.jsonl" "$RESULTS/closed.jsonl"   # raw records beside the samples
while read -r label dport lr lt; do
  $PY counts --export "$T/closed.jsonl" --local $LIP --dport "$dport" --label "$label" \
    --linux-retrans "$lr" --linux-timeouts "$lt" --out "$RESULTS/counts.jsonl" >&2
done < "$T/linux_counts"
$PY compare --samples "$RESULTS/samples.jsonl" --counts "$RESULTS/counts.jsonl" --out-json "$RESULTS/result.json" \
  ${MON_MD:+--out-md "$MON_MD"} ${MON_CMD:+--cmd "$MON_CMD"} > "$T/compare.log" || fail "compare failed"
cat "$T/compare.log" >&2

# CI floors (the machine is shared: the targets of docs/monitor.md are checked by the benchmark).
python3 - "$RESULTS/result.json" <<'PY' || fail "agreement below the CI floors"
import json, sys
r = json.load(open(sys.argv[1]))["scenarios"]
bad = []
for label, s in r.items():
    if s.get("retrans_linux") is not None and s["retrans_linux"] != s["retrans_monitor"]:
        bad.append(f"{label}: retransmissions linux {s['retrans_linux']} monitor {s['retrans_monitor']}")
    if s["kind"] != "short":
        if not s["samples"]:
            bad.append(f"{label}: no samples")
            continue
        # Median relative RTT error against the sender's srtt (lossy flows: fewer Karn samples).
        lim = 0.40 if s["kind"] == "lossy" else 0.25
        if s["rtt_median_rel_err"] == s["rtt_median_rel_err"] and s["rtt_median_rel_err"] > lim:
            bad.append(f"{label}: median RTT error {s['rtt_median_rel_err']:.0%} > {lim:.0%}")
        # Limited-by: the issue's 90 % for the receive-window scenario, a 70 % floor elsewhere.
        vmin = 0.9 if s["kind"] == "rwnd" else 0.7
        if s["verdict_agree"] is not None and s["verdict_agree"] < vmin:
            msg = f"{label}: limited-by agreement {s['verdict_agree']:.0%}"
            # A paced sender's rwnd-limited share straddles the reference's
            # 50 % threshold (docs/monitor.md): reported, not gated.
            if s["kind"] == "rwnd-paced":
                print("  not gated (paced sender): " + msg, file=sys.stderr)
            else:
                bad.append(msg)
    if s["kind"] == "bulk" and s["flight_ratio_median"] == s["flight_ratio_median"] and not 0.75 <= s["flight_ratio_median"] <= 1.25:
        bad.append(f"{label}: median flight ratio {s['flight_ratio_median']:.2f}")
for b in bad:
    print("  " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
kill -0 "$VSW_PID" || fail "vswitchd died"
log "PASS"
