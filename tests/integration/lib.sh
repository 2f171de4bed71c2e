# Shared harness for integration tests (bash). Source it first thing:
#   . "$(dirname "$0")/lib.sh"
# It creates a private temp dir, records every namespace, process and DPDK
# file prefix it starts, and removes them all on exit (also on failure).
# Exit code 77 = skipped (meson convention).
set -euo pipefail

VSW_BUILD=${VSW_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
VSWITCHD=${VSWITCHD:-$VSW_BUILD/vswitch/vswitchd}
VSWITCHCTL=${VSWITCHCTL:-$VSW_BUILD/vswitch/vswitchctl}
T=$(mktemp -d /tmp/vswit.XXXXXX)
TAG=${TAG:-$(basename "$T" | tr -dc 'a-z0-9' | tail -c 6)}
_VSW_NS=() _VSW_PIDS=() _VSW_PREFIXES=()

. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/skip.sh"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
skip() { vsw_skip log "$@"; }

vsw_cleanup() {
  local rc=$?
  set +e
  for p in "${_VSW_PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${_VSW_PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
  for n in "${_VSW_NS[@]}"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  for f in "${_VSW_PREFIXES[@]}"; do rm -rf /dev/hugepages/"$f"* /var/run/dpdk/"$f" 2>/dev/null; done
  # dpdk_prefix is usually called as P=$(dpdk_prefix x), in a subshell that
  # cannot record the prefix: remove every prefix of this run by its tag.
  [ -z "${TAG}" ] || rm -rf /dev/hugepages/vsw"${TAG}"* /var/run/dpdk/vsw"${TAG}"* 2>/dev/null
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for l in "$T"/*.log; do [ -f "$l" ] && { echo "---- $l (tail)"; tail -n 30 "$l"; }; done >&2
  fi
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
  exit "$rc"
}
trap vsw_cleanup EXIT
trap 'exit 130' INT TERM

require_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
require_cmd() { for c in "$@"; do command -v "$c" >/dev/null || skip "missing command $c"; done; }

# Ensures at least N free 2 MB hugepages and a mounted hugetlbfs.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/hugepages.sh"
require_hugepages() {
  hugepages_ensure_free "${1:-512}" || skip "cannot reserve ${1:-512} hugepages (free $HUGEPAGES_FREE)"
}

# Registers a DPDK --file-prefix for cleanup and prints it.
dpdk_prefix() { local p="vsw${TAG}$1"; _VSW_PREFIXES+=("$p"); echo "$p"; }

# Starts a command in its own process group in the background; logs to $T/NAME.log.
# Usage: spawn NAME cmd args...   (sets SPAWNED_PID)
spawn() {
  local name=$1; shift
  setsid "$@" >"$T/$name.log" 2>&1 </dev/null &
  SPAWNED_PID=$!
  _VSW_PIDS+=("$SPAWNED_PID")
}

netns_add() { ip netns add "$1"; _VSW_NS+=("$1"); ip -n "$1" link set lo up; }

# Waits until a command succeeds (up to $1 seconds).
wait_until() {
  local t=$1; shift
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

# Starts vswitchd with config file $1 (control socket must be $T/ctl.sock).
# Sets VSW_PID. Waits until the control socket answers.
vsw_start() {
  local cfg=$1 name=${2:-vswitchd}
  spawn "$name" "$VSWITCHD" -c "$cfg"
  VSW_PID=$SPAWNED_PID
  wait_until 30 "$VSWITCHCTL" -s "$T/ctl.sock" show || fail "vswitchd did not come up"
}
vsw_ctl() { "$VSWITCHCTL" -s "$T/ctl.sock" "$@"; }
# Prints one counter of one port: port_counter PORT KEY
port_counter() { vsw_ctl --json port-stats "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['$2'])"; }

# Writes the common head of a vswitchd config to stdout.
# Usage: vsw_config_head PREFIX [pmd-lcores] [idle-sleep-us]
vsw_config_head() {
  cat <<EOC
[dpdk]
file_prefix = "$1"
memory_mb = 512
eal_args = ["--no-pci", "--log-level=lib.vhost.config:warning"]
[pmd]
lcores = [${2:-1}]
idle_sleep_max_us = ${3:-100}
[control]
socket = "$T/ctl.sock"
EOC
}

# Prints a [[port]] table: vsw_port NAME TYPE [key=value ...]. Values that are
# booleans or numbers (incl. 0x... hex) are written bare, others quoted.
vsw_port() {
  local name=$1 type=$2 kv k v
  shift 2
  printf '[[port]]\nname = "%s"\ntype = "%s"\n' "$name" "$type"
  for kv in "$@"; do
    k=${kv%%=*} v=${kv#*=}
    if [[ $v =~ ^(true|false|[0-9]+|0x[0-9a-fA-F]+)$ ]]; then printf '%s = %s\n' "$k" "$v"
    else printf '%s = "%s"\n' "$k" "$v"; fi
  done
}

# Starts dpdk-testpmd as guest(s) on virtio-user ports, stacked on core 0:
#   spawn_testpmd NAME SECONDS PREFIX "VDEV..." -- TESTPMD-ARGS...
# Each VDEV is "SOCKET,mac=...[,server=1]".
spawn_testpmd() {
  local name=$1 secs=$2 prefix=$3 vdevs=() i=0
  shift 3
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do vdevs+=(--vdev "net_virtio_user$i,path=$1"); i=$((i + 1)); shift; done
  shift
  spawn "$name" timeout -s INT "$secs" dpdk-testpmd --lcores '0@0,1@0' --file-prefix="$prefix" -m 256 \
    --single-file-segments --no-pci "${vdevs[@]}" -- --nb-cores=1 --stats-period 5 "$@"
}
