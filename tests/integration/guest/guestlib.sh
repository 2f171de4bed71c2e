# shellcheck shell=bash
# Real-guest helpers for integration tests (bash). Source after lib.sh:
#   . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/guest/guestlib.sh"
# Guests (User-Mode Linux, QEMU under TCG) and cpu cgroups started here are
# stopped before lib.sh's cleanup removes the switch, namespaces and files.
GUEST_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VSW_GUEST_CACHE=${VSW_GUEST_CACHE:-/var/cache/vswitch-guest}
export VSW_GUEST_CACHE
_GUEST_HOOKS=()

# Registers a cleanup command; they run last-in first-out before vsw_cleanup.
guest_on_exit() { _GUEST_HOOKS+=("$*"); }
_guest_exit() {
  local rc=$? i
  set +e
  for ((i = ${#_GUEST_HOOKS[@]} - 1; i >= 0; i--)); do eval "${_GUEST_HOOKS[$i]}"; done
  (exit "$rc")
  vsw_cleanup
}
trap _guest_exit EXIT

# Installs packages and builds/caches guest images: guest_prepare uml|qemu.
guest_prepare() {
  local rc=0
  "$GUEST_LIB_DIR/fetch-guest-images.sh" "$1" 2>"$T/fetch-$1.log" || rc=$?
  cat "$T/fetch-$1.log" >&2
  [ $rc -eq 0 ] || { [ $rc -eq 77 ] && skip "guest $1 unavailable: $(tail -n 1 "$T/fetch-$1.log")"; fail "fetch-guest-images.sh $1 failed (rc $rc)"; }
}

# Prints the n-th percentile (nearest rank) of the numbers on stdin.
percentile() { sort -g | awk -v p="$1" '{v[NR] = $1} END {if (!NR) {print "nan"; exit} i = int((p * NR + 99) / 100); if (i < 1) i = 1; print v[i]}'; }

# Summarises "time=X ms" lines of a ping log: "n=.. loss=..% p50=.. p90=.. p99=.. max=.." (ms).
ping_summary() {
  local f=$1 tx rx
  tx=$(grep -o '^[0-9]* packets transmitted' "$f" | cut -d' ' -f1)
  rx=$(grep -c 'time=' "$f" || true)
  grep -o 'time=[0-9.]*' "$f" | cut -d= -f2 >"$f.rtt" || true
  echo "n=$rx/$tx p50=$(percentile 50 <"$f.rtt") p90=$(percentile 90 <"$f.rtt") p99=$(percentile 99 <"$f.rtt") max=$(percentile 100 <"$f.rtt")"
}
ping_loss_zero() { grep -q ' 0% packet loss' "$1"; }

# iperf3 JSON (-J) -> received Mbit/s (integer).
iperf_mbps() {
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(int(d['end']['sum_received']['bits_per_second'] / 1e6))" "$1"
}

# ---------------------------------------------------------------- cgroup v1 cpu
# Creates a cpu cgroup (v1) removed at exit and sets CG to its path (not in a
# subshell: the cleanup hook must be registered here). CG is empty if the cpu
# controller is not available as cgroup v1.
cpu_cgroup_create() {
  local root=/sys/fs/cgroup/cpu
  CG=
  [ -w "$root/cgroup.procs" ] || return 0
  mkdir "$root/$1" 2>/dev/null || return 0
  CG=$root/$1
  guest_on_exit "cpu_cgroup_remove $CG"
}
cpu_cgroup_remove() {
  local cg=$1 i p
  for i in $(seq 1 25); do
    [ -d "$cg" ] || return 0
    for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do echo "$p" >/sys/fs/cgroup/cpu/cgroup.procs 2>/dev/null; done
    rmdir "$cg" 2>/dev/null && return 0
    sleep 0.2
  done
  log "could not remove cgroup $cg"
}

# ---------------------------------------------------------------- User-Mode Linux
# uml_start NAME SOCKET IP/NN MAC [CGROUP] — boots a UML guest attached to a
# vhost-user server socket. Console: $T/NAME.log. Shared folder: $T/NAME/.
# UML_FEATURES_OFF (overridable) is the virtio feature mask the switch port must disable for
# UML (see docs/testbed.md).
UML_FEATURES_OFF=${UML_FEATURES_OFF:-0x400ee7f8b}
# The guest kernel that guest_prepare uml built (tests/integration/guest/uml-kernel).
UML_KERNEL=${UML_KERNEL:-$VSW_GUEST_CACHE/uml/linux}  # overridable for diagnosis
uml_start() {
  local name=$1 sock=$2 ip=$3 mac=$4 cg=${5:-}
  local umid=vr${TAG}$name
  mkdir -p "$T/$name"
  install -m 0755 "$GUEST_LIB_DIR/uml-init.sh" "$T/uml-init.sh"
  # The shell puts itself in the cgroup, then becomes the UML kernel: every
  # helper and guest process UML forks inherits the group.
  spawn "$name" sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs" || exit 1; shift; exec "$@"' _ "$cg" \
    "$UML_KERNEL" "umid=$umid" mem=128M root=/dev/root rootfstype=hostfs rootflags=/ ro "init=$T/uml-init.sh" \
    "virtio_uml.device=$sock:1" con=null con0=null,fd:1 "vsw_ip=$ip" "vsw_mac=$mac" "vsw_dir=$T/$name"
  eval "UML_PID_$name=$SPAWNED_PID"
  guest_on_exit "uml_stop $name $SPAWNED_PID $umid"
}
uml_wait_ready() {
  local name=$1 t=${2:-60} pid
  pid=$(eval echo "\$UML_PID_$name")
  # Ready, or dead: a guest that panics at boot is reported at once, by the panic's first line.
  wait_until "$t" bash -c "grep -q 'VSW: ready' '$T/$name.log' || ! kill -0 $pid" || true
  grep -q "VSW: ready" "$T/$name.log" && { grep "VSW: " "$T/$name.log" | sed "s/^/[$name] /" >&2; return 0; }
  local panic
  panic=$(grep -m1 -i -B1 "kernel panic\|panic:" "$T/$name.log" | tr '\n' ' ' || true)
  [ -z "$panic" ] || fail "UML guest $name panicked at boot: $panic (console: $T/$name.log)"
  fail "UML guest $name did not come up: $(tail -n 5 "$T/$name.log")"
}
# Stops a UML guest from the inside (halt file), then mconsole, then SIGKILL to its process group.
uml_stop() {
  local name=$1 pid=$2 umid=$3
  kill -0 "$pid" 2>/dev/null && {
    touch "$T/$name/halt"
    wait_until 5 bash -c "! kill -0 $pid" ||
      { timeout 3 uml_mconsole "$umid" halt >/dev/null 2>&1; wait_until 3 bash -c "! kill -0 $pid"; }
  }
  kill -KILL -- "-$pid" 2>/dev/null
  rm -rf "$HOME/.uml/$umid"
}
_UML_SEQ=0
# uml_exec NAME TIMEOUT SCRIPT — runs shell text in the guest; prints its output; returns its exit code.
uml_exec() {
  local name=$1 t=$2 n
  _UML_SEQ=$((_UML_SEQ + 1))
  n=$_UML_SEQ
  printf '%s\n' "$3" >"$T/$name/.cmd.$n"
  mv "$T/$name/.cmd.$n" "$T/$name/cmd.$n"
  wait_until "$t" test -e "$T/$name/done.$n" || { log "guest $name: command $n timed out after $t s"; cat "$T/$name/out.$n" 2>/dev/null; return 124; }
  cat "$T/$name/out.$n"
  return "$(cat "$T/$name/done.$n")"
}

# ---------------------------------------------------------------- QEMU (TCG)
QEMU_KERNEL=$VSW_GUEST_CACHE/qemu/vmlinuz
QEMU_INITRD=$VSW_GUEST_CACHE/qemu/initramfs.gz
# qemu_start NAME CHARDEV_OPTS MAC APPEND — QEMU 7.2 under TCG, virtio-net-pci
# on vhost-user with vectors=0 (msix under TCG crashes this QEMU) and shared
# guest memory (memfd share=on + numa memdev: without it no packet flows).
# CHARDEV_OPTS e.g. "path=S,reconnect=1" (switch = server) or "path=S,server=on"
# (switch = client; QEMU waits for the switch before it boots).
# QEMU_NET_OPTS adds virtio-net-pci properties, for diagnosis only, e.g.
# QEMU_NET_OPTS=host_tso4=off,host_tso6=off (the guest then sends no TSO).
# QUEUES=N (default 1) gives the guest N vCPUs and N queue pairs (mq=on).
qemu_start() {
  local name=$1 chr=$2 mac=$3 append=$4 q=${QUEUES:-1} mq=""
  [ "$q" -gt 1 ] && mq=",mq=on"
  spawn "$name" timeout -s KILL 600 qemu-system-x86_64 -accel tcg -m 256 -smp "$q" -no-reboot -nodefaults \
    -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
    -chardev "socket,id=c0,$chr" -netdev "type=vhost-user,id=n0,chardev=c0,queues=$q" \
    -device "virtio-net-pci,netdev=n0,mac=$mac,vectors=0$mq${QEMU_NET_OPTS:+,$QEMU_NET_OPTS}" \
    -kernel "$QEMU_KERNEL" -initrd "$QEMU_INITRD" -append "console=ttyS0 quiet panic=-1 $append" \
    -display none -serial "file:$T/$name.console" -monitor none
  eval "QEMU_PID_$name=$SPAWNED_PID"
  guest_on_exit "kill -TERM -- -$SPAWNED_PID 2>/dev/null; sleep 0.3; kill -KILL -- -$SPAWNED_PID 2>/dev/null"
}
qemu_wait_ready() {
  local name=$1 t=${2:-90}
  wait_until "$t" grep -q "VSW: ready" "$T/$name.console" ||
    fail "QEMU guest $name did not come up: $(tail -n 5 "$T/$name.console" 2>/dev/null) $(tail -n 5 "$T/$name.log")"
  grep "VSW: " "$T/$name.console" | sed "s/^/[$name] /" >&2
}

# Uplink: a net_tap port of the switch whose interface is moved into namespace
# NS with address IP/NN and a fixed MAC (so guests' ARP entries survive a
# switch restart, which recreates the tap). uplink_attach IFACE NS IP/NN MAC
uplink_attach() {
  local ifc=$1 ns=$2 ip=$3 mac=$4
  wait_until 10 ip link show "$ifc" || fail "tap $ifc did not appear"
  ip link set "$ifc" netns "$ns"
  ip -n "$ns" link set "$ifc" address "$mac"
  ip -n "$ns" addr add "$ip" dev "$ifc"
  ip -n "$ns" link set "$ifc" up
}
# Prints a port's field from `vswitchctl --json show`: vsw_port_field PORT KEY
vsw_port_field() {
  vsw_ctl --json show | python3 -c "import json,sys; print([p for p in json.load(sys.stdin)['ports'] if p['name']=='$1'][0]['$2'])"
}
