#!/usr/bin/env bash
# Brings up a test bed topology (README.md, "Topologies: up.sh / down.sh"):
#
#   guest g_i (netns tbNAME-g<i>, kernel TCP) -- tap -- vmsim_i (schedule) --vhost-user--+
#                                                                                        vswitchd (1 PMD)
#   remote r_j (netns tbNAME-r<j>) -- veth -- bridge (netns tbNAME-w) -- tap -- wiresim --vhost-user (uplink)
#
# Everything lives in namespaces it creates (prefix "tb" + NAME) with addresses
# 10.240.0.0/16 only inside them; DPDK file prefixes tbNAME_*; state, logs and
# sockets in $TB_RUN_DIR/tb-NAME (default /tmp). Writes tb-NAME/env (sourced
# by harness.py, baseline.sh, tests). Undo with down.sh --name NAME; on a
# failed start up.sh undoes itself. Nothing busy-polls: vswitchd sleeps when
# idle (idle_sleep_max_us), vmsim and wiresim nanosleep after empty polls.
# Cores: 2 assumed; the switch PMD is pinned to lcore --pmd-lcore (1).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/env.sh"

usage() {
  cat <<'EOF'
usage: up.sh [options]
  --name NAME           bed name, [a-z0-9]{1,8} (default 0): netns tbNAME-*, DPDK prefixes tbNAME_*
  --guests N            guests (vmsim + namespace each), 1..16 (default 1)
  --vms-per-core L      VMs per core of each guest, 1..5; a comma list gives one value per guest,
                        its last value repeats (default 1)
  --load L              CPU load % of the co-located VMs; comma list per guest like above (default 60)
  --slice-ms MS         scheduler slice (default 30)
  --seed S              schedule seed of guest 1; guest i uses S+i-1 (default 1)
  --remote-hosts R      remote hosts behind the uplink, 1..8 (default 1)
  --rtt-ms X            round-trip delay added by wiresim (half each way; default 1)
  --rate-mbit M         wiresim rate limit, both directions, 0 = none (default 1000)
  --wiresim-args "..."  extra wiresim link options (e.g. "--loss 0.001 --ecn-k-pkts 20")
  --uplink vhost|tap    vhost: wiresim on a vhost-user uplink port (default);
                        tap: a net_tap uplink port, no link emulation
  --stages a,b          [stages] order of the switch (default: none)
  --enabled a,b         stages enabled at start (default: none; harness.py toggles them)
  --pmd-lcore N         lcore of the switch PMD (default 1)
  --idle-sleep-us N     switch PMD idle_sleep_max_us (default 100)
  --queue-size N        vmsim virtio ring size (default 256, QEMU's virtio-net default)
  --uplink-queue-size N wiresim's virtio ring on the uplink (default 1024: a NIC-sized ring, so the
                        link's own queue, not the ring, is what bursts meet)
  --guest-offloads      vmsim negotiates GUEST_CSUM/TSO like QEMU's virtio-net
  --vmsim-args "..."    extra vmsim options
  --tool-idle-us N      vmsim and wiresim sleep after an empty poll, µs (default 50)
  --nice N              nice level of vswitchd, vmsim, wiresim (default -10: the host side and the
                        emulated schedule keep their timing on a loaded 2-core machine)
  --switch-conf "..."   extra TOML appended to the switch config (e.g. a [stages.snoop] table)
  --no-prime            do not ping every guest from r1 (FDB learning, connectivity check)
Environment: VSW_BUILD (build dir, default ROOT/build), TB_RUN_DIR (default /tmp).
Prints the env file path on success.
EOF
}

NAME=0 GUESTS=1 VPC=1 LOAD=60 SLICE=30 SEED=1 REMOTES=1 RTT=1 RATE=1000 WIRE_ARGS="" UPLINK=vhost
STAGES="" ENABLED="" PMD_LCORE=1 IDLE_US=100 QSIZE=256 GOFF="" VMSIM_ARGS="" SWCONF="" PRIME=1 TOOL_IDLE=50 NICE=-10 UQSIZE=1024
while [ $# -gt 0 ]; do
  case $1 in
    --name) NAME=$2; shift ;;
    --guests) GUESTS=$2; shift ;;
    --vms-per-core) VPC=$2; shift ;;
    --load) LOAD=$2; shift ;;
    --slice-ms) SLICE=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --remote-hosts) REMOTES=$2; shift ;;
    --rtt-ms) RTT=$2; shift ;;
    --rate-mbit) RATE=$2; shift ;;
    --wiresim-args) WIRE_ARGS=$2; shift ;;
    --uplink) UPLINK=$2; shift ;;
    --stages) STAGES=$2; shift ;;
    --enabled) ENABLED=$2; shift ;;
    --pmd-lcore) PMD_LCORE=$2; shift ;;
    --idle-sleep-us) IDLE_US=$2; shift ;;
    --queue-size) QSIZE=$2; shift ;;
    --uplink-queue-size) UQSIZE=$2; shift ;;
    --guest-offloads) GOFF=--guest-offloads ;;
    --vmsim-args) VMSIM_ARGS=$2; shift ;;
    --switch-conf) SWCONF=$2; shift ;;
    --no-prime) PRIME=0 ;;
    --tool-idle-us) TOOL_IDLE=$2; shift ;;
    --nice) NICE=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "up.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

die() { echo "up.sh: $*" >&2; exit 1; }
[[ $NAME =~ ^[a-z0-9]{1,8}$ ]] || die "--name must be 1-8 of [a-z0-9]"
[[ $GUESTS =~ ^[0-9]+$ ]] && [ "$GUESTS" -ge 1 ] && [ "$GUESTS" -le 16 ] || die "--guests 1..16"
[[ $REMOTES =~ ^[0-9]+$ ]] && [ "$REMOTES" -ge 1 ] && [ "$REMOTES" -le 8 ] || die "--remote-hosts 1..8"
[[ $UPLINK == vhost || $UPLINK == tap ]] || die "--uplink vhost|tap"
[ "$(id -u)" = 0 ] || die "needs root"

BUILD=${VSW_BUILD:-$ROOT/build}
VSWITCHD=$BUILD/vswitch/vswitchd VSWITCHCTL=$BUILD/vswitch/vswitchctl
VMSIM=$BUILD/bench/testbed/vmsim WIRESIM=$BUILD/bench/testbed/wiresim
for b in "$VSWITCHD" "$VSWITCHCTL" "$VMSIM" "$WIRESIM"; do
  [ -x "$b" ] || die "missing $b (ninja -C $BUILD)"
done

P=tb$NAME                       # namespace / interface / prefix stem
DIR=${TB_RUN_DIR:-/tmp}/tb-$NAME
if [ -e "$DIR/env" ] || ip netns list | grep -q "^$P-"; then
  die "bed '$NAME' exists ($DIR/env or namespaces $P-*): bench/testbed/down.sh --name $NAME"
fi
mkdir -p "$DIR/bin"
# Private copies of the binaries: a concurrent rebuild of the shared build dir
# (others relink while a bed runs) must not break vswitchctl calls mid-run.
cp "$VSWITCHD" "$VSWITCHCTL" "$VMSIM" "$WIRESIM" "$DIR/bin/"
VSWITCHD=$DIR/bin/vswitchd VSWITCHCTL=$DIR/bin/vswitchctl VMSIM=$DIR/bin/vmsim WIRESIM=$DIR/bin/wiresim
: >"$DIR/pids"                  # pid prefix, one line per started process (down.sh reads it)
echo "$$" >"$DIR/up.pid"        # harness agents etc. may check the bed is not being torn down

# Hugepages: switch 256 MB, each vmsim / wiresim 128 MB.
need=$(( (256 + 128 * (GUESTS + 1)) / 2 ))
mountpoint -q /dev/hugepages || die "/dev/hugepages not mounted"
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
[ "$free" -ge "$need" ] || die "needs $need free 2 MB hugepages, $free free"

OK=0
on_exit() {
  local rc=$?
  if [ $OK = 0 ]; then
    echo "up.sh: start failed (rc $rc); logs in $DIR; tearing down" >&2
    for l in "$DIR"/*.log; do [ -f "$l" ] && { echo "---- $l" >&2; tail -n 15 "$l" >&2; }; done
    KEEP_LOGS=1 "$HERE/down.sh" --name "$NAME" >&2 || true
  fi
  exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

nth() { # nth LIST I: I-th (1-based) element of a comma list, the last one repeating
  local IFS=, i=$2
  # shellcheck disable=SC2206 # split on commas on purpose
  local a=($1)
  [ "$i" -le "${#a[@]}" ] && echo "${a[$((i - 1))]}" || echo "${a[-1]}"
}
mac() { printf '02:74:62:%02x:00:%02x' "$1" "$2"; }   # mac KIND INDEX (1 guest, 2 remote)
# start LOG CMD...: own process group, output to LOG, pid recorded.
start() {
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  LAST_PID=$!
  echo "$LAST_PID $(basename "$log" .log)" >>"$DIR/pids"
}
wait_for() { # wait_for SECONDS CMD...
  local i
  for i in $(seq $(( $1 * 10 ))); do "${@:2}" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
alive() { kill -0 "$1" 2>/dev/null || die "$2 exited: $(tail -n 5 "$DIR/$2.log" 2>/dev/null)"; }
netns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}
# shellcheck disable=SC2206 # split on commas on purpose
toml_list() { local IFS=, ; local a=($1) s="" x; for x in "${a[@]}"; do s+="${s:+, }\"$x\""; done; echo "[$s]"; }

# ---- namespaces
GNS=() RNS=() GIP=() RIP=() GMAC=() RMAC=() GIF=() GVPC=() GLOAD=() GSEED=()
for i in $(seq "$GUESTS"); do
  GNS+=("$P-g$i"); GIP+=("10.240.1.$i"); GMAC+=("$(mac 1 "$i")"); GIF+=("${P}g$i")
  GVPC+=("$(nth "$VPC" "$i")"); GLOAD+=("$(nth "$LOAD" "$i")"); GSEED+=("$((SEED + i - 1))")
  netns "$P-g$i"
done
WNS=$P-w
netns "$WNS"
ip -n "$WNS" link add "${P}br" type bridge
ip -n "$WNS" link set "${P}br" up
for j in $(seq "$REMOTES"); do
  RNS+=("$P-r$j"); RIP+=("10.240.2.$j"); RMAC+=("$(mac 2 "$j")")
  netns "$P-r$j"
  ip -n "$WNS" link add "${P}p$j" type veth peer name "${P}r$j" netns "$P-r$j"
  ip -n "$WNS" link set "${P}p$j" master "${P}br" up
  ip -n "$P-r$j" link set "${P}r$j" address "$(mac 2 "$j")"
  ip -n "$P-r$j" addr add "10.240.2.$j/16" dev "${P}r$j"
  ip -n "$P-r$j" link set "${P}r$j" up
done

# ---- switch
CTL=$DIR/ctl.sock
{
  cat <<EOC
[dpdk]
file_prefix = "${P}_sw"
memory_mb = 256
mbufs = 16384
eal_args = ["--no-pci", "--log-level=lib.vhost.config:warning"]
[pmd]
lcores = [$PMD_LCORE]
idle_sleep_max_us = $IDLE_US
[control]
socket = "$CTL"
[stages]
order = $(toml_list "$STAGES")
enabled = $(toml_list "$ENABLED")
EOC
  for i in $(seq "$GUESTS"); do cat <<EOC
[[port]]
name = "g$i"
type = "vhost-user"
path = "$DIR/g$i.sock"
EOC
  done
  if [ "$UPLINK" = vhost ]; then cat <<EOC
[[port]]
name = "uplink"
type = "vhost-user"
path = "$DIR/uplink.sock"
EOC
  else cat <<EOC
[[port]]
name = "uplink"
type = "dpdk"
devargs = "net_tap_${P}up,iface=${P}up"
EOC
  fi
  [ -z "$SWCONF" ] || printf '%s\n' "$SWCONF"
} >"$DIR/vswitch.toml"
rm -f "$CTL" "$DIR"/*.sock
start "$DIR/vswitchd.log" nice -n "$NICE" "$VSWITCHD" -c "$DIR/vswitch.toml"
VSW_PID=$LAST_PID
wait_for 30 "$VSWITCHCTL" -s "$CTL" show || { alive "$VSW_PID" vswitchd; die "vswitchd control socket does not answer"; }

# ---- guests: vmsim in each guest namespace (it makes the tap there)
VMSIM_PIDS=()
for i in $(seq "$GUESTS"); do
  k=$((i - 1))
  # shellcheck disable=SC2086
  start "$DIR/vmsim-g$i.log" nice -n "$NICE" ip netns exec "${GNS[$k]}" "$VMSIM" --file-prefix "${P}_g$i" -m 128 \
    --single-file-segments --log-level=pmd.net.virtio.*:warning -- --vhost "$DIR/g$i.sock" --iface "${GIF[$k]}" \
    --mac "${GMAC[$k]}" --queue-size "$QSIZE" --vms-per-core "${GVPC[$k]}" --load "${GLOAD[$k]}" \
    --slice-ms "$SLICE" --seed "${GSEED[$k]}" --csv "$DIR/sched-g$i.csv" --stall-csv "$DIR/stalls-g$i.csv" --idle-sleep-us "$TOOL_IDLE" \
    $GOFF $VMSIM_ARGS
  VMSIM_PIDS+=("$LAST_PID")
done

# ---- uplink
WIRESIM_PID=0
if [ "$UPLINK" = vhost ]; then
  half=$(awk -v r="$RTT" 'BEGIN { printf "%.4f", r / 2 }')
  # shellcheck disable=SC2086
  start "$DIR/wiresim.log" nice -n "$NICE" ip netns exec "$WNS" "$WIRESIM" --file-prefix "${P}_w" -m 128 \
    --single-file-segments --log-level=pmd.net.virtio.*:warning -- \
    --port-a "virtio:path=$DIR/uplink.sock,queue_size=$UQSIZE" --port-b "tap:iface=${P}wb,mac=02:74:62:03:00:01" \
    --delay-ms "$half" --rate-mbit "$RATE" --idle-sleep-us "$TOOL_IDLE" $WIRE_ARGS
  WIRESIM_PID=$LAST_PID
  wait_for 20 ip -n "$WNS" link show "${P}wb" || { alive "$WIRESIM_PID" wiresim; die "wiresim tap did not appear"; }
  ip -n "$WNS" link set "${P}wb" master "${P}br" up
else
  wait_for 10 ip link show "${P}up" || die "uplink tap ${P}up did not appear"
  ip link set "${P}up" netns "$WNS"
  ip -n "$WNS" link set "${P}up" master "${P}br" up
fi

for i in $(seq "$GUESTS"); do
  k=$((i - 1))
  wait_for 20 ip -n "${GNS[$k]}" link show "${GIF[$k]}" || { alive "${VMSIM_PIDS[$k]}" "vmsim-g$i"; die "guest tap ${GIF[$k]} did not appear"; }
  ip -n "${GNS[$k]}" addr add "${GIP[$k]}/16" dev "${GIF[$k]}"
  ip -n "${GNS[$k]}" link set "${GIF[$k]}" up
done

# Static neighbours everywhere: an ARP exchange with a descheduled guest would
# itself wait for the guest's slice and blur the first transfer.
for a in $(seq "$GUESTS"); do
  for b in $(seq "$GUESTS"); do
    [ "$a" = "$b" ] || ip -n "${GNS[$((a - 1))]}" neigh replace "${GIP[$((b - 1))]}" lladdr "${GMAC[$((b - 1))]}" dev "${GIF[$((a - 1))]}" nud permanent
  done
  for j in $(seq "$REMOTES"); do
    ip -n "${GNS[$((a - 1))]}" neigh replace "${RIP[$((j - 1))]}" lladdr "${RMAC[$((j - 1))]}" dev "${GIF[$((a - 1))]}" nud permanent
    ip -n "${RNS[$((j - 1))]}" neigh replace "${GIP[$((a - 1))]}" lladdr "${GMAC[$((a - 1))]}" dev "${P}r$j" nud permanent
  done
done
for a in $(seq "$REMOTES"); do
  for b in $(seq "$REMOTES"); do
    [ "$a" = "$b" ] || ip -n "${RNS[$((a - 1))]}" neigh replace "${RIP[$((b - 1))]}" lladdr "${RMAC[$((b - 1))]}" dev "${P}r$a" nud permanent
  done
done

# Connectivity + FDB learning: every remote pings guest 1, remote 1 pings every guest.
if [ $PRIME = 1 ]; then
  ping_ok() { ip netns exec "$1" ping -n -q -c 1 -W 1 "$2" >/dev/null 2>&1; }
  prime() {
    for _ in $(seq 20); do ping_ok "$1" "$2" && return 0; done
    die "no ping reply $1 -> $2 within 20 tries"
  }
  for i in $(seq "$GUESTS"); do prime "${RNS[0]}" "${GIP[$((i - 1))]}"; done
  for j in $(seq 2 "$REMOTES"); do prime "${RNS[$((j - 1))]}" "${GIP[0]}"; done
fi
alive "$VSW_PID" vswitchd
for i in $(seq "$GUESTS"); do alive "${VMSIM_PIDS[$((i - 1))]}" "vmsim-g$i"; done
[ "$WIRESIM_PID" = 0 ] || alive "$WIRESIM_PID" wiresim

PREFIXES="${P}_sw ${P}_w"
for i in $(seq "$GUESTS"); do PREFIXES+=" ${P}_g$i"; done
cat >"$DIR/env.tmp" <<EOF
# test bed '$NAME' written by bench/testbed/up.sh $(date -Is); remove with down.sh --name $NAME
TB_NAME=$NAME
TB_DIR=$DIR
TB_ROOT=$ROOT
TB_VSWITCHCTL=$VSWITCHCTL
TB_CTL=$CTL
TB_VSW_PID=$VSW_PID
TB_STAGES="${STAGES//,/ }"
TB_ENABLED="${ENABLED//,/ }"
TB_GUESTS=$GUESTS
TB_GUEST_NS="${GNS[*]}"
TB_GUEST_IP="${GIP[*]}"
TB_GUEST_MAC="${GMAC[*]}"
TB_GUEST_IFACE="${GIF[*]}"
TB_GUEST_PORT="$(for i in $(seq "$GUESTS"); do printf 'g%s ' "$i"; done | sed 's/ $//')"
TB_GUEST_SOCK="$(for i in $(seq "$GUESTS"); do printf '%s ' "$DIR/g$i.sock"; done | sed 's/ $//')"
TB_GUEST_VPC="${GVPC[*]}"
TB_GUEST_LOAD="${GLOAD[*]}"
TB_GUEST_SEED="${GSEED[*]}"
TB_SLICE_MS=$SLICE
TB_VMSIM_PIDS="${VMSIM_PIDS[*]}"
TB_REMOTES=$REMOTES
TB_REMOTE_NS="${RNS[*]}"
TB_REMOTE_IP="${RIP[*]}"
TB_REMOTE_MAC="${RMAC[*]}"
TB_REMOTE_IFACE="$(for j in $(seq "$REMOTES"); do printf '%s ' "${P}r$j"; done | sed 's/ $//')"
TB_WIRE_NS=$WNS
TB_UPLINK=$UPLINK
TB_UPLINK_SOCK=$([ "$UPLINK" = vhost ] && echo "$DIR/uplink.sock" || echo "")
TB_WIRESIM_PID=$WIRESIM_PID
TB_RTT_MS=$RTT
TB_RATE_MBIT=$RATE
TB_WIRESIM_ARGS="$WIRE_ARGS"
TB_NETNS="${GNS[*]} ${RNS[*]} $WNS"
TB_PREFIXES="$PREFIXES"
EOF
mv "$DIR/env.tmp" "$DIR/env"
OK=1
echo "$DIR/env"
