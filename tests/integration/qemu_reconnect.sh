#!/usr/bin/env bash
# Switch restart under a live QEMU guest (QEMU 7.2 under TCG, virtio-net-pci
# on vhost-user, see qemu_guest.sh). The guest pings the host namespace five
# times a second from boot on; vswitchd is SIGKILLed, restarted ~2 s later
# with the same config, and the guest's traffic must come back:
#   client role: switch = vhost-user client (client = true), QEMU server=on
#                (the mode operators prefer: the switch reconnects by itself)
#   server role: switch = vhost-user server, QEMU reconnect=1
# Resumed = host->guest ping answers again within 15 s of the restart, then
# 20 pings with 0 % loss, and the guest's own ping gets replies again.
# Reported: outage from the kill, and time from "vswitchd ready" to the
# first answer. The net_tap uplink dies with the switch: the test moves the
# new tap into the namespace again (same MAC and address) after the restart.
# Cores: 2 (switch PMD on lcore 1 with idle sleep; QEMU floats). ~60 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/guest/guestlib.sh"
require_root
require_cmd ip ping python3
require_hugepages 300
guest_prepare qemu

NET=10.203.3
HNS=vr${TAG}h UP=vr${TAG}up HMAC=02:00:00:cb:03:01
netns_add "$HNS"
FAILS=()
check() {
  local what=$1; shift
  if "$@"; then log "ok: $what"; else log "NOT OK: $what"; FAILS+=("$what"); fi
}
now() { date +%s.%N; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
guest_replies() { tr -d '\r' <"$1" | grep -c 'bytes from' || true; }
pong() { ip netns exec "$HNS" ping -c 1 -W 0.3 "$1" >/dev/null 2>&1; }

declare -A R
# role LABEL CLIENT(true|false) GUEST-IP
role() {
  local label=$1 client=$2 gip=$3 sock=$T/$1.sock cfg=$T/vsw-$1.toml
  log "==== role $label (switch vhost-user client = $client)"
  {
    vsw_config_head "$(dpdk_prefix "r$label")"
    cat <<EOC
[[port]]
name = "vm"
type = "vhost-user"
path = "$sock"
client = $client
[[port]]
name = "up"
type = "dpdk"
devargs = "net_tap0,iface=$UP"
EOC
  } >"$cfg"
  _VSW_PREFIXES+=("vsw${TAG}r$label")
  local append="vsw_ip=$gip/24 vsw_peer=$NET.1 vsw_ping=5 vsw_pingloop=1"
  local mac=52:54:00:cb:03:${gip##*.}
  if [ "$client" = true ]; then
    qemu_start "q$label" "path=$sock,server=on" "$mac" "$append"
    wait_until 20 test -S "$sock" || fail "QEMU did not create $sock"
    vsw_start "$cfg" "vswitchd-$label"
  else
    vsw_start "$cfg" "vswitchd-$label"
    qemu_start "q$label" "path=$sock,reconnect=1" "$mac" "$append"
  fi
  uplink_attach "$UP" "$HNS" "$NET.1/24" "$HMAC"
  qemu_wait_ready "q$label" 120
  local c=$T/q$label.console
  ip netns exec "$HNS" ping -c 10 -i 0.1 -W 2 "$gip" >"$T/ping-$label-before.txt" || true
  ping_loss_zero "$T/ping-$label-before.txt" || fail "$label: no clean ping before the restart: $(tail -n 2 "$T/ping-$label-before.txt")"
  log "$label before: connects $(vsw_port_field vm connects), guest replies so far $(guest_replies "$c")"

  local t_kill t_up t_ready t_back n_restart
  t_kill=$(now)
  kill -KILL -- "-$VSW_PID"
  wait_until 5 bash -c "! kill -0 $VSW_PID" || fail "vswitchd survived SIGKILL"
  sleep 2
  t_up=$(now)
  vsw_start "$cfg" "vswitchd-$label-2"
  t_ready=$(now)
  n_restart=$(guest_replies "$c")
  uplink_attach "$UP" "$HNS" "$NET.1/24" "$HMAC"
  if wait_until 15 pong "$gip"; then
    t_back=$(now)
    R[$label]="outage $(dt "$t_kill" "$t_back") s from SIGKILL (switch down $(dt "$t_kill" "$t_up") s);" 
    R[$label]+=" first answer $(dt "$t_ready" "$t_back") s after vswitchd ready ($(dt "$t_up" "$t_ready") s start-up)"
    log "$label: ${R[$label]}"
  else
    R[$label]="traffic did not resume within 15 s"
    FAILS+=("$label: host->guest ping did not resume within 15 s of the restart")
    vsw_ctl --json show >&2 || true
    vsw_ctl port-stats >&2 || true
  fi
  check "$label: port reconnected" [ "$(vsw_port_field vm connected)" = True ]
  ip netns exec "$HNS" ping -c 20 -i 0.1 -W 2 "$gip" >"$T/ping-$label-after.txt" || true
  log "$label after: $(ping_summary "$T/ping-$label-after.txt") ms"
  check "$label: 20 pings after the restart, 0% loss" ping_loss_zero "$T/ping-$label-after.txt"
  check "$label: the guest's own ping gets replies again" \
    wait_until 5 bash -c "[ \$(tr -d '\r' <'$c' | grep -c 'bytes from') -gt $n_restart ]"
  vsw_ctl port-stats >&2 || true
  local pid_var=QEMU_PID_q$label
  kill -TERM -- "-${!pid_var}" 2>/dev/null || true
  kill -TERM -- "-$VSW_PID" 2>/dev/null || true
  wait_until 10 bash -c "! kill -0 $VSW_PID" || kill -KILL -- "-$VSW_PID" 2>/dev/null || true
}
role client true "$NET.31"
role server false "$NET.32"
log "RESULT qemu reconnect: client role: ${R[client]}; server role: ${R[server]}"
[ ${#FAILS[@]} -eq 0 ] || fail "${#FAILS[@]} check(s) failed: $(printf '[%s] ' "${FAILS[@]}")"
log "PASS"
