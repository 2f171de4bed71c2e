#!/usr/bin/env bash
# Real QEMU guest: QEMU 7.2 under TCG, virtio-net-pci on a vhost-user port of
# vswitchd, booting Debian's cloud kernel with the test initramfs
# (guest/fetch-guest-images.sh). The host side is a namespace behind a
# net_tap uplink port. Both socket roles, one guest boot each:
#   (a) switch = vhost-user server, QEMU chardev reconnect=1
#   (b) switch = vhost-user client (client = true), QEMU chardev server=on
#   (mq) switch = server, 2 queue pairs (port queues = 2, QEMU queues=2 mq=on,
#        2 vCPUs): both queue pairs enabled, the guest pings from each vCPU
#        and the switch must receive on both of the guest's tx queues
# Per role: the guest pings the host (0 % loss) and sends an iperf3 transfer
# at boot; then the host pings the guest (0 % loss) and runs iperf3 both ways.
# Default virtio-net-pci features: checksum offload and TSO both ways, so
# the switch's offload handling is on the path. Loose throughput floors only.
# Every check runs; the test fails at the end with the list of failed checks.
# Cores: 2 (switch PMD on lcore 1 with idle sleep; QEMU floats). ~80 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/guest/guestlib.sh"
require_root
require_cmd ip ping iperf3 python3
require_hugepages 300
guest_prepare qemu

NET=10.203.2
HNS=vr${TAG}h UP=vr${TAG}up
MIN_MBPS=${MIN_MBPS:-20}
FAILS=()
check() {  # check DESCRIPTION CMD... — records a failure instead of exiting
  local what=$1; shift
  if "$@"; then log "ok: $what"; else log "NOT OK: $what"; FAILS+=("$what"); fi
}
ge() { [ "${1:-0}" -ge "$2" ] 2>/dev/null; }

P=$(dpdk_prefix qg)
{
  vsw_config_head "$P"
  cat <<EOC
[[port]]
name = "vms"
type = "vhost-user"
path = "$T/vms.sock"
[[port]]
name = "vmc"
type = "vhost-user"
path = "$T/vmc.sock"
client = true
[[port]]
name = "vmq"
type = "vhost-user"
path = "$T/vmq.sock"
queues = 2
[[port]]
name = "up"
type = "dpdk"
devargs = "net_tap0,iface=$UP"
EOC
} >"$T/vsw.toml"
vsw_start "$T/vsw.toml"
netns_add "$HNS"
uplink_attach "$UP" "$HNS" "$NET.1/24" 02:00:00:cb:02:01

declare -A R
# host_iperf OUT.json ARGS... — iperf3 from the host namespace; retried while
# the slow TCG guest's server is not listening again yet after the last test.
host_iperf() {
  local out=$1 i; shift
  for i in 1 2 3; do
    ip netns exec "$HNS" timeout 25 iperf3 "$@" -J >"$out" 2>&1 || true
    grep -q '"unable to connect\|Connection refused' "$out" || return 0
    sleep 1
  done
}
# role LABEL PORT CHARDEV-OPTS GUEST-IP [QUEUES]
role() {
  local label=$1 port=$2 chr=$3 gip=$4 q=${5:-1} t0 spid
  log "==== role $label: port $port, QEMU chardev $chr, $q queue pair(s)"
  ip netns exec "$HNS" timeout 60 iperf3 -s -1 -p 5201 >"$T/iperf-s-$label.txt" 2>&1 &
  spid=$!
  t0=$SECONDS
  QUEUES=$q qemu_start "q$label" "$chr" 52:54:00:cb:02:$((${gip##*.})) \
    "vsw_ip=$gip/24 vsw_peer=$NET.1 vsw_ping=20 vsw_iperf=3 vsw_iperf_p=$q vsw_cpuping=$([ "$q" -gt 1 ] && echo 5 || echo 0)"
  qemu_wait_ready "q$label" 120
  R[$label-boot]=$((SECONDS - t0))
  log "guest $label up, boot tests done after ${R[$label-boot]} s"
  wait "$spid" || true
  check "$label: port $port connected" [ "$(vsw_port_field "$port" connected)" = True ]
  log "port $port: mode $(vsw_port_field "$port" mode), negotiated features $(vsw_port_field "$port" negotiated_features)," \
    "tx_offloads $(vsw_port_field "$port" tx_offloads)"
  local c=$T/q$label.console
  check "$label: guest->host ping 0% loss" grep -q "VSW: ping-result .* 0% packet loss" "$c"
  R[$label-g2h-boot]=$(tr -d '\r' <"$c" | sed -n 's/.*VSW: iperf-result .* \([0-9.]*\) Mbits\/sec .*receiver/\1/p' | cut -d. -f1)
  log "guest->host iperf3 (guest is the client): ${R[$label-g2h-boot]:-none} Mbit/s"
  check "$label: guest->host iperf3 from the guest completed" grep -q "VSW: iperf-done rc=0" "$c"
  check "$label: guest->host iperf3 from the guest >= $MIN_MBPS Mbit/s" ge "${R[$label-g2h-boot]}" "$MIN_MBPS"

  ip netns exec "$HNS" ping -c 20 -i 0.1 -W 2 "$gip" >"$T/ping-$label.txt" || true
  R[$label-ping]=$(ping_summary "$T/ping-$label.txt")
  log "host->guest ping: ${R[$label-ping]} ms"
  check "$label: host->guest ping 0% loss" ping_loss_zero "$T/ping-$label.txt"
  local dir
  for dir in h2g g2h; do
    local rev=""
    [ $dir = g2h ] && rev=-R
    host_iperf "$T/iperf-$label-$dir.json" -c "$gip" -t 3 -P "$q" $rev
    R[$label-$dir]=$(iperf_mbps "$T/iperf-$label-$dir.json" 2>/dev/null || echo 0)
    log "iperf3 $dir (host is the client$([ -n "$rev" ] && echo ", -R")): ${R[$label-$dir]} Mbit/s"
    check "$label: iperf3 $dir >= $MIN_MBPS Mbit/s" ge "${R[$label-$dir]}" "$MIN_MBPS"
  done
  if [ "$q" -gt 1 ]; then
    check "$label: $q queue pairs enabled on $port" [ "$(vsw_port_field "$port" queues_enabled)" = "$q" ]
    check "$label: guest->host ping from every vCPU, 0% loss" \
      [ "$(tr -d '\r' <"$c" | grep -c "VSW: cpuping-result .* 0% packet loss")" = "$q" ]
    local rxq
    vsw_ctl --json pmd-rxq-show >"$T/rxq-$label.json"
    for rxq in $(seq 0 $((q - 1))); do
      local n
      n=$(python3 -c "import json,sys; print(sum(r['packets'] for p in json.load(open(sys.argv[1])) for r in p.get('rxqs', []) if r['port']==sys.argv[2] and r['queue']==int(sys.argv[3])))" \
        "$T/rxq-$label.json" "$port" "$rxq" 2>/dev/null || echo 0)
      log "$label: switch rx queue $rxq of $port: $n packets"
      check "$label: switch received on guest tx queue $rxq" ge "$n" 5
    done
  fi
  vsw_ctl port-stats >&2
  log "$label: uplink tx drops so far: link_down $(port_counter up tx_drop_link_down) ring_full $(port_counter up tx_drop_ring_full)" \
    "(net_tap rejects guest TSO segments whose size + headers exceed its MTU; see docs/testbed.md)"
  check "$label: no tx_drop_other on the uplink" [ "$(port_counter up tx_drop_other)" = 0 ]
  check "$label: no rx_bad_offload on $port" [ "$(port_counter "$port" rx_bad_offload)" = 0 ]
  local pid_var=QEMU_PID_q$label
  kill -TERM -- "-${!pid_var}" 2>/dev/null || true
  check "$label: port $port disconnects when QEMU exits" wait_until 10 port_is_down "$port"
}
port_is_down() { [ "$(vsw_port_field "$1" connected)" = False ]; }
role server vms "path=$T/vms.sock,reconnect=1" "$NET.21"
role client vmc "path=$T/vmc.sock,server=on" "$NET.22"
role mq vmq "path=$T/vmq.sock,reconnect=1" "$NET.23" 2
kill -0 "$VSW_PID" || FAILS+=("vswitchd died")
log "RESULT qemu: boot+boot-tests server ${R[server-boot]} s client ${R[client-boot]} s;" \
  "Mbit/s guest->host (guest client) server ${R[server-g2h-boot]:-0} client ${R[client-g2h-boot]:-0};" \
  "host->guest server ${R[server-h2g]} client ${R[client-h2g]}; guest->host (-R) server ${R[server-g2h]} client ${R[client-g2h]};" \
  "ping host->guest server ${R[server-ping]} / client ${R[client-ping]} ms;" \
  "2 queue pairs (2 vCPUs, -P 2): guest->host ${R[mq-g2h-boot]:-0} host->guest ${R[mq-h2g]} guest->host (-R) ${R[mq-g2h]}"
[ ${#FAILS[@]} -eq 0 ] || fail "${#FAILS[@]} check(s) failed: $(printf '[%s] ' "${FAILS[@]}")"
log "PASS"
