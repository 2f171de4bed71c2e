# Shared helpers for the test bed accuracy tests (sourced, not run).
# Every resource a test makes is registered here and removed by the EXIT
# trap, also when the test fails half-way: processes (TERM, then KILL),
# network namespaces, DPDK hugepage files and runtime dirs, temp files.
# Exit code 77 tells meson the test was skipped (not root, tool missing...).
set -euo pipefail

TB_PIDS=()
TB_NETNS=()
TB_PREFIXES=()
TB_TMP=$(mktemp -d /tmp/tbtest.XXXXXX)

tb_log() { echo "[$(date +%T.%N | cut -c1-12)] $*"; }
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/skip.sh"
tb_skip() { vsw_skip echo "$@"; }
tb_fail() { echo "FAIL: $*"; exit 1; }

tb_cleanup() {
  local rc=$?
  set +e
  for pid in "${TB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 30); do
    local alive=0
    for pid in "${TB_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${TB_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "${TB_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  for p in "${TB_PREFIXES[@]}"; do
    rm -f /dev/hugepages/"$p"map_* /dev/hugepages/"$p"-* 2>/dev/null
    rm -rf /var/run/dpdk/"$p" 2>/dev/null
  done
  rm -rf "$TB_TMP"
  exit $rc
}
trap tb_cleanup EXIT

# tb_require_env HUGEPAGES_NEEDED CMD...: skips unless root, hugepages and tools are there.
tb_require_env() {
  local pages=$1; shift
  [ "$(id -u)" = 0 ] || tb_skip "needs root (namespaces, taps)"
  local free
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  [ "${free:-0}" -ge "$pages" ] || tb_skip "needs $pages free 2 MB hugepages, $free free"
  mountpoint -q /dev/hugepages || tb_skip "/dev/hugepages not mounted"
  for c in "$@"; do command -v "$c" >/dev/null || tb_skip "$c not installed"; done
}

# tb_netns NAME: a namespace with lo up, removed at exit.
tb_netns() {
  ip netns add "$1"
  TB_NETNS+=("$1")
  ip -n "$1" link set lo up
}

# tb_prefix NAME: registers a DPDK --file-prefix for cleanup (call it
# directly, not in $(...): a subshell would lose the registration).
tb_prefix() { TB_PREFIXES+=("$1"); }

# tb_bg LOG CMD...: runs CMD in the background with output to LOG; the PID is
# registered (ip netns exec execs the command, so the PID is the tool's).
tb_bg() {
  local log=$1; shift
  "$@" >"$log" 2>&1 </dev/null &
  TB_PIDS+=($!)
  TB_LAST_PID=$!
}

# tb_wait TIMEOUT_S CMD...: polls CMD every 0.1 s until it succeeds.
tb_wait() {
  local t=$1; shift
  for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# tb_stop PID [TIMEOUT_S]: SIGTERM and wait, so the tool prints its report.
tb_stop() {
  local pid=$1 t=${2:-5}
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# tb_waitpid PID TIMEOUT_S: waits for a tool that stops by itself (--duration).
tb_waitpid() {
  local pid=$1 t=$2
  for _ in $(seq $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && tb_fail "pid $pid did not stop within $t s"
  wait "$pid" 2>/dev/null || true
}

# tb_kv FILE LINE_PREFIX KEY: value of KEY=value on the first line starting with LINE_PREFIX.
tb_kv() {
  grep -m1 "^$2" "$1" | tr ' ' '\n' | awk -F= -v k="$3" '$1 == k {print $2}'
}

# tb_check DESCRIPTION AWK_CONDITION: fails the test unless the condition holds.
tb_check() {
  if awk "BEGIN { exit !($2) }"; then echo "ok:   $1"; else tb_fail "$1  [$2]"; fi
}

# tb_testpmd_vhost NS PREFIX SOCK TAP MAC LOG: dpdk-testpmd as a stand-in
# switch, io-forwarding between a vhost-user server port (port 0) and a tap in
# NS (port 1). It busy-polls one lcore: keep its runs short. Both lcores may
# float over all CPUs rather than pin onto one other tests use too.
tb_testpmd_vhost() {
  local ns=$1 prefix=$2 sock=$3 tap=$4 mac=$5 log=$6
  tb_bg "$log" ip netns exec "$ns" dpdk-testpmd --lcores '0@(0,1),1@(0,1)' --file-prefix "$prefix" -m 256 \
    --no-pci --vdev "net_vhost0,iface=$sock,queues=1" --vdev "net_tap0,iface=$tap,mac=$mac" \
    -- --forward-mode=io --nb-cores 1 --stats-period 1
  TB_TESTPMD_PID=$TB_LAST_PID
  tb_wait 15 test -S "$sock" || { cat "$log"; tb_fail "testpmd did not create $sock"; }
}

# tb_vmsim_start NS PREFIX LOG VMSIM_ARGS...: vmsim in NS (its tap is made there).
tb_vmsim_start() {
  local ns=$1 prefix=$2 log=$3; shift 3
  tb_bg "$log" nice -n "${TB_VMSIM_NICE:--10}" ip netns exec "$ns" "$VMSIM" --file-prefix "$prefix" -m 128 --single-file-segments -- "$@"
  TB_VMSIM_PID=$TB_LAST_PID
}

# tb_addr NS IFACE CIDR: address and link up once the tool has created IFACE.
tb_addr() {
  tb_wait 15 ip -n "$1" link show "$2" || tb_fail "interface $2 did not appear in $1"
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$1" link set "$2" up
}

# testpmd's "Forward statistics for port N" block: value of FIELD (e.g. TX-dropped).
tb_testpmd_fwd_stat() {
  awk -v port="$2" -v f="$3:" '
    /Forward statistics for port/ { for (i = 1; i < NF; i++) if ($i == "port") inblk = ($(i + 1) == port) }
    /Accumulated forward statistics/ { inblk = 0 }
    inblk { for (i = 1; i < NF; i++) if ($i == f) { v = $(i + 1) } }
    END { print (v == "" ? "NA" : v) }' "$1"
}
