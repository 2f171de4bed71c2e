#!/usr/bin/env bash
# Smoke test of the bench/testbed tool chain on the real switch: up.sh (2
# guests, 2 VMs/core at 60 % load, one remote host behind wiresim, the noop
# stage in the pipeline), harness.py with 20 transfers of 50 KB each direction
# (2 guests x 2 configurations -- noop off / on, toggled by vswitchctl -- x 5),
# results.csv holds every row and no transfer failed, then down.sh leaves no
# namespace, process, hugepage file or DPDK runtime dir behind. ~30 s.
# Cores: 2 assumed (switch PMD on lcore 1; everything else sleeps when idle).
# usage: harness_smoke.sh [BUILD_DIR]
set -uo pipefail
TB=$(cd "$(dirname "$0")/../../bench/testbed" && pwd)
. "$TB/../../scripts/env.sh"
export VSW_BUILD=${1:-$(cd "$TB/../.." && pwd)/build}
NAME=s$(( $$ % 100000 ))
P=tb$NAME
OUT=$(mktemp -d /tmp/tbsmoke.XXXXXX)
DIR=/tmp/tb-$NAME
export TB_RUN_DIR=/tmp
. "$TB/../../scripts/skip.sh"
skip() { vsw_skip echo "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root"
[ -x /usr/bin/python3 ] || skip "needs /usr/bin/python3"
for b in vswitch/vswitchd vswitch/vswitchctl bench/testbed/vmsim bench/testbed/wiresim; do
  [ -x "$VSW_BUILD/$b" ] || skip "missing $VSW_BUILD/$b"
done
mountpoint -q /dev/hugepages || skip "/dev/hugepages not mounted"
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
[ "$free" -ge 320 ] || skip "needs 320 free 2 MB hugepages, $free free"

PIDS=""
cleanup() {
  local rc=$?
  "$TB/down.sh" --name "$NAME" >/dev/null 2>&1
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    for l in "$OUT"/*.log; do [ -f "$l" ] && { echo "---- $l"; tail -n 20 "$l"; }; done
  fi
  rm -rf "$OUT"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== up.sh --name $NAME"
t0=$SECONDS
"$TB/up.sh" --name "$NAME" --guests 2 --vms-per-core 2 --load 60 --remote-hosts 1 --rtt-ms 1 \
  --rate-mbit 1000 --stages noop >"$OUT/up.log" 2>&1 || { cat "$OUT/up.log"; fail "up.sh"; }
ENV=$(tail -n1 "$OUT/up.log")
# shellcheck disable=SC1090
. "$ENV"
[ "$TB_GUESTS" = 2 ] && [ -S "$TB_CTL" ] || fail "env file $ENV incomplete"
PIDS=$(awk '{print $1}' "$DIR/pids" | tr '\n' ' ')
echo "up in $((SECONDS - t0)) s; pids $PIDS"
for ns in $TB_NETNS; do ip netns list | grep -q "^$ns\b" || fail "namespace $ns missing"; done

echo "== harness.py: 50 KB, rx and tx, 2 guests, noop off/on, 5 each"
/usr/bin/python3 "$TB/harness.py" run --name "$NAME" --guests all --sizes 50K --dir rx,tx --count 5 --block 5 \
  --config off= --config noop=noop --settle-s 0.2 --out "$OUT/res" --timeout-s 20 >"$OUT/harness.log" 2>&1 \
  || { cat "$OUT/harness.log"; fail "harness.py run"; }
cat "$OUT/res/summary.md"
/usr/bin/python3 - "$OUT/res/results.csv" <<'PY' || fail "results.csv check"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = {}
for r in rows:
    n[r["dir"]] = n.get(r["dir"], 0) + 1
    assert r["ok"] == "1", "failed transfer: %s" % r["err"]
    assert float(r["tput_mbps"]) > 0 and float(r["fct_ms"]) > 0, r
    assert r["retrans"] != "" and r["rto"] != "", "no tcp_info in %s" % r
print("rows per direction:", n, "configs:", sorted({r["config"] for r in rows}),
      "guests:", sorted({r["guest"] for r in rows}))
assert n == {"rx": 20, "tx": 20}, n
assert {r["config"] for r in rows} == {"off", "noop"}
PY
for f in cdf-rx-50KB.png cdf-tx-50KB.png bars-rx-g1.png; do
  [ -s "$OUT/res/$f" ] || fail "plot $f missing"
done
seen=$("$TB_VSWITCHCTL" -s "$TB_CTL" --json stage-list | /usr/bin/python3 -c \
  "import json,sys; print([s for s in json.load(sys.stdin) if s['name']=='noop'][0]['counters']['tcp'])")
echo "noop stage saw $seen TCP packets while enabled"
[ "$seen" -gt 0 ] || fail "the noop configuration never reached the switch"

echo "== down.sh"
"$TB/down.sh" --name "$NAME" || fail "down.sh"
left=$(ip netns list | awk '{print $1}' | grep -c "^$P-")
[ "$left" = 0 ] || fail "$left namespaces left"
for p in $PIDS; do kill -0 "$p" 2>/dev/null && fail "process $p still runs"; done
for f in /dev/hugepages/"${P}"_* /var/run/dpdk/"${P}"_*; do
  [ -e "$f" ] && fail "DPDK file left: $f"
done
[ -e "$DIR" ] && fail "$DIR left"
echo "total $((SECONDS - t0)) s"
echo PASS
