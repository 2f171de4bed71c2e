#!/usr/bin/env bash
# Forwarding benchmark, vhost-user <-> vhost-user, closed loop (PVP-like):
# dpdk-testpmd io-fwd (net_vhost), OVS-DPDK (port-to-port flows and NORMAL)
# and vswitchd, each with one PMD on core 1, all driven by bench/fwd/loopgen
# on core 0. Interleaved round by round; medians of accepted runs (the switch
# thread had >= 95 % of its core). Writes bench/results/fwd-<timestamp>.csv,
# the generated section of docs/benchmarks.md and docs/img/fwd-64b.png.
#
#   bench/fwd/run.sh [--quick] [--runs N] [--window S] [--warmup S]
#                    [--switches testpmd,ovs,vswitch] [--no-docs] [--build] [--keep-tmp]
#                    [--min-switch-cpu 95] [--min-gen-cpu 90] [--proto udp|tcp]
#
# TCP stages: --proto tcp makes every frame a TCP data segment of N
# connections (loopgen's header); switches vswitch+STAGE[+STAGE] run vswitchd
# with those stages enabled (monitor: vm1 is the uplink; snoop: toward vm2),
# e.g. --proto tcp --switches vswitch,vswitch+monitor,vswitch+snoop gives the
# cost of each stage on the forwarding path (report: the "TCP stages" table).
#
# A run is accepted when the switch's PMD thread had >= 95 % of core 1 and the
# generator >= 90 % of core 0 over the window (/proc/.../schedstat): in a
# closed loop either side being descheduled stalls the whole loop.
# --quick: 1 run, 64 B, 1 and 1k flows, 5 s windows; does not touch docs/
# unless --docs is given. Cores: 2 (generator on 0, switch PMD on 1). Root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/scripts/env.sh"
BUILD=${VSW_BUILD:-$REPO/build}
VSWITCHD=$BUILD/vswitch/vswitchd
VSWITCHCTL=$BUILD/vswitch/vswitchctl
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
CMDLINE="bench/fwd/run.sh${*:+ $*}"

RUNS=3 WINDOW=10 WARMUP=3 SIZES="64 1518" FLOWS="1,1000,100000,1000000"
PROTO=udp
SWITCHES="testpmd,ovs,vswitch" DOCS=1 MIN_SW_CPU=95 MIN_GEN_CPU=90 FORCE_BUILD=0 KEEP_TMP=0 QUICK=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 RUNS=1 WINDOW=5 SIZES=64 FLOWS=1,1000 DOCS=0 ;;
    --runs) RUNS=$2; shift ;;
    --window) WINDOW=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --sizes) SIZES=${2//,/ }; shift ;;
    --flows) FLOWS=$2; shift ;;
    --switches) SWITCHES=$2; shift ;;
    --proto) PROTO=$2; shift ;;
    --min-switch-cpu) MIN_SW_CPU=$2; shift ;;
    --min-gen-cpu) MIN_GEN_CPU=$2; shift ;;
    --docs) DOCS=1 ;;
    --no-docs) DOCS=0 ;;
    --build) FORCE_BUILD=1 ;;
    --keep-tmp) KEEP_TMP=1 ;;
    -h|--help) sed -n "2,20p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (hugepages, vhost-user)"

TAG=$(head -c 64 /dev/urandom | tr -dc 'a-z0-9' | head -c 4)
PFX=bf$TAG                       # every DPDK --file-prefix, bridge and temp name starts with this
T=$(mktemp -d "/tmp/$PFX.XXXX")
SW_KIND="" SW_PID="" GEN_PID="" OVSDB_PID=""

cleanup() {
  local rc=$?
  set +e
  [ -n "$GEN_PID" ] && kill -TERM "$GEN_PID" 2>/dev/null
  stop_switch
  [ -n "$GEN_PID" ] && { sleep 0.5; kill -KILL "$GEN_PID" 2>/dev/null; }
  rm -rf /dev/hugepages/"$PFX"* /var/run/dpdk/"$PFX"* 2>/dev/null
  if [ "$KEEP_TMP" = 1 ] || [ "$rc" -ne 0 ]; then log "temp dir kept: $T"; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
ensure_packages() {
  local missing=()
  command -v dpdk-testpmd >/dev/null || missing+=(dpdk-dev)
  [ -x "$OVS_VSWITCHD" ] || missing+=(openvswitch-switch-dpdk)
  command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 || log "apt-get failed; continuing without"
  fi
  # The package must not run its own ovs-vswitchd next to ours.
  if [ -x "$OVS_VSWITCHD" ] && pgrep -x ovs-vswitchd >/dev/null; then
    log "warning: a system ovs-vswitchd is running (it competes for the cores)"
  fi
}

LOOPGEN=""
build_tools() {
  if [ ! -x "$VSWITCHD" ] || [ ! -x "$VSWITCHCTL" ] || [ "$FORCE_BUILD" = 1 ]; then
    ninja -C "$BUILD" vswitch/vswitchd vswitch/vswitchctl >&2 || die "cannot build vswitchd in $BUILD"
  fi
  if ninja -C "$BUILD" -t query bench/fwd/loopgen >/dev/null 2>&1; then
    ninja -C "$BUILD" bench/fwd/loopgen >&2 || die "cannot build loopgen"
    LOOPGEN=$BUILD/bench/fwd/loopgen
  else
    # bench/fwd not (yet) part of the main build: a private meson project.
    local d=/tmp/bf-loopgen-build
    if [ ! -f "$d/build.ninja" ]; then
      mkdir -p "$d/src/fwd"
      ln -sf "$HERE/loopgen.cc" "$d/src/fwd/loopgen.cc"
      ln -sf "$HERE/meson.build" "$d/src/fwd/meson.build"
      cat > "$d/src/meson.build" <<EOF
project('bf_loopgen', 'cpp', default_options: ['cpp_std=c++20', 'warning_level=2', 'buildtype=release'])
add_project_arguments('-march=native', language: 'cpp')
dpdk = dependency('libdpdk', include_type: 'system')
threads = dependency('threads')
cli11 = dependency('CLI11')
inc = include_directories('$REPO')
subdir('fwd')
EOF
      meson setup "$d" "$d/src" >&2 || die "meson setup for loopgen failed"
    fi
    ninja -C "$d" >&2 || die "cannot build loopgen"
    LOOPGEN=$d/fwd/loopgen
  fi
}

. "$REPO/scripts/hugepages.sh"
reserve_hugepages() {
  hugepages_ensure_free "$1" || die "cannot reserve $1 free 2 MB hugepages (free: $HUGEPAGES_FREE)"
}

wait_until() {
  local t=$1; shift
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

# -------------------------------------------------------------------- switches
# Each start_* sets SW_PID, SOCK0, SOCK1 and HOOK (run by loopgen around each
# window as: HOOK start|end PHASE FLOWS, with RUN_ID in its environment).
start_testpmd() {
  local d=$T/testpmd
  mkdir -p "$d"; rm -f "$d"/*.sock "$d/in"; mkfifo "$d/in"
  exec 7<>"$d/in"  # keeps testpmd's stdin open
  SOCK0=$d/vm1.sock SOCK1=$d/vm2.sock
  setsid stdbuf -oL dpdk-testpmd -l 0,1 --file-prefix "${PFX}tp" -m 512 --no-pci \
    --vdev "net_vhost0,iface=$SOCK0,queues=1" --vdev "net_vhost1,iface=$SOCK1,queues=1" -- \
    -i -a --forward-mode=io --nb-cores=1 --record-core-cycles --total-num-mbufs=32768 \
    < "$d/in" > "$d/testpmd.log" 2>&1 &
  SW_PID=$!
  wait_until 30 test -S "$SOCK1" || die "testpmd did not create its sockets"
  cat > "$d/hook" <<EOF
#!/bin/sh
# testpmd's own cycles/packet (--record-core-cycles) for the window.
L=$d/testpmd.log
case \$1 in
  start) echo "clear fwd stats all" > $d/in ;;
  end) n=\$(grep -c "CPU cycles/packet" \$L); echo "show fwd stats all" > $d/in; i=0
       while [ \$(grep -c "CPU cycles/packet" \$L) -le \$n ] && [ \$i -lt 40 ]; do sleep 0.05; i=\$((i+1)); done
       grep "CPU cycles/packet" \$L | tail -n 1 | sed 's/.*packet=\([0-9.]*\).*/\1/' > $T/stats/\$RUN_ID-\$2 ;;
esac
EOF
  chmod +x "$d/hook"; HOOK=$d/hook
}

OVS_DB="" OVS_CTL="" OVS_BR=${PFX}br
start_ovs() {
  local d=$T/ovs
  mkdir -p "$d"; rm -f "$d"/conf.db
  export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d
  OVS_DB=unix:$d/db.sock OVS_CTL=$d/vswitchd.ctl
  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  setsid ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/ovsdb.pid" \
    --unixctl="$d/ovsdb.ctl" --log-file="$d/ovsdb.log" --no-chdir </dev/null >"$d/ovsdb.out" 2>&1 &
  OVSDB_PID=$!
  wait_until 10 test -S "$d/db.sock" || die "ovsdb-server did not start"
  local v="ovs-vsctl --db=$OVS_DB --timeout=30"
  $v --no-wait init
  $v --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:dpdk-socket-mem=1024 \
    other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
    "other_config:dpdk-extra=--file-prefix=${PFX}ovs --no-pci"
  # Non-PMD threads (handlers, revalidators) stay on core 0 with the generator.
  setsid taskset -c 0 "$OVS_VSWITCHD" "$OVS_DB" --pidfile="$d/vswitchd.pid" --unixctl="$OVS_CTL" \
    --log-file="$d/vswitchd.log" --no-chdir </dev/null >"$d/vswitchd.out" 2>&1 &
  SW_PID=$!
  wait_until 60 test -S "$OVS_CTL" || die "ovs-vswitchd did not start (see $d/vswitchd.log)"
  $v add-br "$OVS_BR" -- set bridge "$OVS_BR" datapath_type=netdev
  $v add-port "$OVS_BR" vm1 -- set Interface vm1 type=dpdkvhostuser ofport_request=1 \
    -- add-port "$OVS_BR" vm2 -- set Interface vm2 type=dpdkvhostuser ofport_request=2
  SOCK0=$d/vm1 SOCK1=$d/vm2
  wait_until 30 test -S "$SOCK1" || die "OVS did not create its vhost-user sockets"
  cat > "$d/hook" <<EOF
#!/bin/sh
case \$1 in
  start) ovs-appctl -t $OVS_CTL dpif-netdev/pmd-stats-clear >/dev/null ;;
  end) ovs-appctl -t $OVS_CTL dpif-netdev/pmd-stats-show > $T/stats/\$RUN_ID-\$2.raw
       awk '/core_id 1:/ {p=1} p && /avg processing cycles per packet/ {print \$6; exit}' \
         $T/stats/\$RUN_ID-\$2.raw > $T/stats/\$RUN_ID-\$2 ;;
esac
EOF
  chmod +x "$d/hook"; HOOK=$d/hook
}

# ovs_mode flows|normal
ovs_mode() {
  ovs-ofctl del-flows "$OVS_BR"
  if [ "$1" = flows ]; then
    ovs-ofctl add-flow "$OVS_BR" in_port=1,actions=output:2
    ovs-ofctl add-flow "$OVS_BR" in_port=2,actions=output:1
  else
    ovs-ofctl add-flow "$OVS_BR" actions=NORMAL
  fi
}

# TOML for vswitchd's stages, from "monitor+snoop" (empty: none).
vswitch_stage_toml() {
  [ -n "$1" ] || return 0
  local list; list=$(echo "$1" | tr '+' '\n' | sed 's/.*/"&"/' | paste -sd, -)
  printf '[stages]\norder = [%s]\nenabled = [%s]\n' "$list" "$list"
  printf '[stages.monitor]\nuplink_ports = ["vm1"]\n[stages.snoop]\nports = ["vm2"]\n'
}

start_vswitch() {
  local d=$T/vswitch
  mkdir -p "$d"; rm -f "$d"/*.sock
  SOCK0=$d/vm1.sock SOCK1=$d/vm2.sock
  cat > "$d/vsw.toml" <<EOF
[dpdk]
file_prefix = "${PFX}vs"
memory_mb = 512
eal_args = ["--no-pci", "--log-level=lib.vhost.config:warning"]
[pmd]
lcores = [1]
idle_sleep_max_us = 0
[control]
socket = "$d/ctl.sock"
$(vswitch_stage_toml "$STAGES")
[[port]]
name = "vm1"
type = "vhost-user"
path = "$SOCK0"
[[port]]
name = "vm2"
type = "vhost-user"
path = "$SOCK1"
EOF
  setsid "$VSWITCHD" -c "$d/vsw.toml" </dev/null >"$d/vswitchd.log" 2>&1 &
  SW_PID=$!
  wait_until 30 "$VSWITCHCTL" -s "$d/ctl.sock" show || die "vswitchd did not come up (see $d/vswitchd.log)"
  cat > "$d/hook" <<EOF
#!/bin/sh
case \$1 in
  start) $VSWITCHCTL -s $d/ctl.sock pmd-stats-clear >/dev/null ;;
  end) $VSWITCHCTL -s $d/ctl.sock --json pmd-stats-show > $T/stats/\$RUN_ID-\$2.raw
       python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[0]['cycles_per_packet'])" \
         $T/stats/\$RUN_ID-\$2.raw > $T/stats/\$RUN_ID-\$2 ;;
esac
EOF
  chmod +x "$d/hook"; HOOK=$d/hook
}

start_switch() {
  SW_KIND=$1
  log "starting $1"
  case $1 in
    vswitch+*) STAGES=${1#vswitch+}; start_vswitch ;;
    *) STAGES=""; "start_$1" ;;
  esac
}

# Stops the running switch completely and removes its hugepage files.
stop_switch() {
  [ -n "$SW_KIND" ] || return 0
  local -; set +e   # best effort: every step runs
  case $SW_KIND in
    testpmd) echo quit >&7 2>/dev/null; wait_until 10 bash -c "! kill -0 $SW_PID" || true; exec 7>&- ;;
    ovs) ovs-vsctl --db="$OVS_DB" --timeout=10 del-br "$OVS_BR" 2>/dev/null
         ovs-appctl -t "$OVS_CTL" exit --cleanup 2>/dev/null
         wait_until 15 bash -c "! kill -0 $SW_PID" || true
         ip link del "$OVS_BR" 2>/dev/null
         kill -TERM "$OVSDB_PID" 2>/dev/null; wait "$OVSDB_PID" 2>/dev/null; OVSDB_PID=""
         rm -f "$T"/ovs/conf.db "$T"/ovs/*.pid ;;
    *) kill -TERM "$SW_PID" 2>/dev/null; wait_until 15 bash -c "! kill -0 $SW_PID" || true ;;
  esac
  if kill -0 "$SW_PID" 2>/dev/null; then
    log "$SW_KIND did not exit; SIGKILL"
    kill -KILL -- "-$SW_PID" 2>/dev/null || kill -KILL "$SW_PID" 2>/dev/null
  fi
  wait "$SW_PID" 2>/dev/null || true
  rm -rf /dev/hugepages/"$PFX"* /var/run/dpdk/"$PFX"* 2>/dev/null
  SW_KIND="" SW_PID=""
}

# ------------------------------------------------------------------ one run
# measure CONFIG ROUND FRAME: one loopgen process, one phase per flow count.
measure() {
  local config=$1 round=$2 frame=$3
  local nph; nph=$(echo "$FLOWS" | tr ',' '\n' | wc -l)
  export RUN_ID="$config-$round-$frame"
  local out=$T/gen-$RUN_ID.log
  local limit; limit=$(awk -v n="$nph" -v w="$WINDOW" -v u="$WARMUP" 'BEGIN {print int(n*(w+u)+60)}')
  log "  $config frame=$frame flows=$FLOWS"
  timeout -s INT "$limit" "$LOOPGEN" -l 0 --file-prefix "${PFX}gen" -m 256 --no-pci \
    --log-level=pmd.net.virtio.*:warning -- --vhost0 "$SOCK0" --vhost1 "$SOCK1" --frame "$frame" \
    --flows "$FLOWS" --proto "$PROTO" --warmup "$WARMUP" --window "$WINDOW" --watch-pid "$SW_PID" --hook "$HOOK" \
    >"$out" 2>&1 &
  GEN_PID=$!
  wait "$GEN_PID" || log "  loopgen exited with $? (see $out)"
  GEN_PID=""
  rm -rf /dev/hugepages/"${PFX}gen"* /var/run/dpdk/"${PFX}gen" 2>/dev/null
  local phase=0
  grep '^RESULT ' "$out" | while read -r _ kv; do
    local sw_cyc=""
    [ -f "$T/stats/$RUN_ID-$phase" ] && sw_cyc=$(cat "$T/stats/$RUN_ID-$phase")
    python3 - "$CSV" "$config" "$round" "$sw_cyc" "$kv" "$MIN_SW_CPU" "$MIN_GEN_CPU" <<'EOF'
import csv, sys
path, config, rnd, sw_cyc, kv, min_sw, min_gen = sys.argv[1:8]
d = dict(x.split('=', 1) for x in kv.split())
cpu, gen = float(d.get('sw_cpu_pct', 0)), float(d['gen_cpu_pct'])
ok = cpu >= float(min_sw) and gen >= float(min_gen)
row = [config, rnd, d['frame'], d['flows'], d['mpps'], d['rx0_pps'], d['rx1_pps'], d['window_s'],
       d.get('sw_comm', ''), cpu, d.get('sw_wait_pct', ''), 1 if ok else 0, sw_cyc,
       d.get('sw_core_cycles_per_pkt', ''), d['gen_cycles_per_pkt'], d['gen_busy_pct'], d['gen_cpu_pct'],
       d['foreign'], d['slice_p50_mpps'], d['slice_p90_mpps']]
with open(path, 'a', newline='') as f:
    csv.writer(f).writerow(row)
print(f"    flows={d['flows']:>7} {float(d['mpps']):6.2f} Mpps (p90 10 ms: {float(d['slice_p90_mpps']):5.2f})  CPU share: switch {cpu:5.1f}%, generator "
      f"{gen:5.1f}%{'' if ok else '  (rejected)'}  switch cyc/pkt {float(sw_cyc or 0):.0f}", file=sys.stderr)
EOF
    phase=$((phase + 1))
  done
}

# ------------------------------------------------------------------- main
ensure_packages
build_tools
mkdir -p "$REPO/bench/results" "$T/stats"
STAMP=$(date +%Y%m%d-%H%M%S)
CSV=$REPO/bench/results/fwd-$STAMP.csv
echo "switch,round,frame,flows,mpps,rx0_pps,rx1_pps,window_s,sw_thread,sw_cpu_pct,sw_wait_pct,accepted,sw_cycles_per_pkt,sw_core_cycles_per_pkt,gen_cycles_per_pkt,gen_busy_pct,gen_cpu_pct,foreign,slice_p50_mpps,slice_p90_mpps" > "$CSV"
reserve_hugepages 700   # OVS takes 512 pages (1 GB), the generator 128

IFS=, read -r -a SW_LIST <<< "$SWITCHES"
log "fwd benchmark: proto=$PROTO runs=$RUNS sizes=[$SIZES] flows=[$FLOWS] window=${WINDOW}s warm-up=${WARMUP}s switches=[${SW_LIST[*]}]"
log "csv: $CSV"
START=$SECONDS
for ((r = 0; r < RUNS; r++)); do
  n=${#SW_LIST[@]}
  for ((i = 0; i < n; i++)); do
    sw=${SW_LIST[$(((i + r) % n))]}   # rotate the order each round
    [ "$sw" = ovs ] && [ ! -x "$OVS_VSWITCHD" ] && { log "OVS-DPDK not installed: skipped"; continue; }
    start_switch "$sw"
    if [ "$sw" = ovs ]; then
      modes="flows normal"; [ $((r % 2)) = 1 ] && modes="normal flows"
      for m in $modes; do
        ovs_mode "$m"
        for f in $SIZES; do measure "ovs-$m" "$r" "$f"; done
      done
    else
      for f in $SIZES; do measure "$sw" "$r" "$f"; done
    fi
    stop_switch
  done
  log "round $((r + 1))/$RUNS done after $((SECONDS - START)) s"
done

REPORT_ARGS=(--csv "$CSV" --command "$CMDLINE" --quick "$QUICK" --window "$WINDOW" --warmup "$WARMUP"
             --min-switch-cpu "$MIN_SW_CPU" --min-gen-cpu "$MIN_GEN_CPU"
             --runs "$RUNS" --elapsed "$((SECONDS - START))")
if [ "$DOCS" = 1 ]; then
  mkdir -p "$REPO/docs/img"
  REPORT_ARGS+=(--doc "$REPO/docs/benchmarks.md" --png "$REPO/docs/img/fwd-64b.png")
else
  REPORT_ARGS+=(--doc "${CSV%.csv}.md" --png "${CSV%.csv}-64b.png")
fi
python3 "$HERE/report.py" "${REPORT_ARGS[@]}"
log "done in $((SECONDS - START)) s; csv: $CSV"
