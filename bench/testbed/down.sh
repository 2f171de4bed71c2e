#!/usr/bin/env bash
# Removes a test bed made by up.sh: its processes (only those up.sh recorded,
# checked by command line, and whatever still runs inside the bed's own
# namespaces), namespaces, DPDK hugepage files and runtime dirs, sockets and
# the state dir. Safe to run twice and on a half-built bed.
# usage: down.sh [--name NAME] [--keep-logs] [--save-logs DIR]
#   --keep-logs (or KEEP_LOGS=1) keeps the state dir; --save-logs copies the
#   tools' logs (vmsim/wiresim/vswitchd reports) and schedule CSVs to DIR.
set -uo pipefail
NAME=0 KEEP=${KEEP_LOGS:-0} SAVE=""
while [ $# -gt 0 ]; do
  case $1 in
    --name) NAME=$2; shift ;;
    --keep-logs) KEEP=1 ;;
    --save-logs) SAVE=$2; shift ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "down.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $NAME =~ ^[a-z0-9]{1,8}$ ]] || { echo "down.sh: bad --name" >&2; exit 2; }
P=tb$NAME
DIR=${TB_RUN_DIR:-/tmp}/tb-$NAME

# Our namespaces: tbNAME-g<i>, tbNAME-r<j>, tbNAME-w (exact pattern, not other beds).
mapfile -t NSS < <(ip netns list | awk '{print $1}' | grep -E "^$P-(g[0-9]+|r[0-9]+|w)$")

# Processes up.sh started (pid file), only if the command line still is ours.
PIDS=()
if [ -f "$DIR/pids" ]; then
  while read -r pid _; do
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
    if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE -- "$DIR/|${P}_"; then PIDS+=("$pid"); fi
  done <"$DIR/pids"
fi
# Plus anything running inside our namespaces (harness agents, iperf3, ping).
for ns in "${NSS[@]}"; do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do PIDS+=("$pid"); done
done

if [ ${#PIDS[@]} -gt 0 ]; then
  # SIGTERM first so vmsim/wiresim/vswitchd print their reports and release hugepages.
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 50); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for _ in $(seq 20); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
fi

for ns in "${NSS[@]}"; do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done
# A net_tap uplink left in the host namespace (start failed before the move).
ip link show "${P}up" >/dev/null 2>&1 && ip link del "${P}up" 2>/dev/null

# DPDK files: exact prefixes tbNAME_sw, tbNAME_w, tbNAME_g<i>.
for f in /dev/hugepages/"${P}"_* /var/run/dpdk/"${P}"_*; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  [[ $b =~ ^${P}_(sw|w|g[0-9]+)(map_[0-9]+|-.*)?$ ]] && rm -rf "$f"
done

if [ -d "$DIR" ]; then
  if [ -n "$SAVE" ]; then
    mkdir -p "$SAVE" && cp "$DIR"/*.log "$DIR"/*.csv "$DIR"/*.toml "$SAVE"/ 2>/dev/null
  fi
  rm -f "$DIR"/*.sock "$DIR/env" "$DIR/up.pid"
  [ "$KEEP" = 1 ] || rm -rf "$DIR"
fi
left=$(ip netns list | awk '{print $1}' | grep -cE "^$P-(g[0-9]+|r[0-9]+|w)$")
[ "$left" = 0 ] || { echo "down.sh: $left namespaces of $P remain" >&2; exit 1; }
exit 0
