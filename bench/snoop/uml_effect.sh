#!/usr/bin/env bash
# snoop effect on real guests (docs/snoop.md "On real guests (UML)"): the
# Fig. 5 experiment — 100 KB transfers remote -> guest, stage off vs on,
# interleaved block by block (harness.py) — on User-Mode Linux guests (Linux
# 6.1 TCP stacks) that the consolidation model really deschedules: each
# guest's processes are frozen during its off periods (cgroup v1 freezer,
# `vmsim --freeze-cgroup`), so, unlike a vmsim guest, its timers (delayed
# ACK, RTO) stop too. Bed: bench/testbed/uml_bed.sh, one guest per entry of
# --vpc (VMs per core, 60 % load). FCT by the sender's clock (connect -> the
# receiver's report of the last byte). Writes bench/results/snoop-uml-DATE
# (results.csv, summary.md, CDF/bar plots, stage counters, schedules) and,
# unless --no-doc, the part of docs/snoop.md between the "BEGIN/END uml
# effect" markers plus docs/img/snoop-uml-cdf.png. 2 cores assumed.
# usage: uml_effect.sh [--count 200] [--block 20] [--vpc 3] [--load 60] [--sizes 100K]
#                      [--jitter-ms 90] [--seed 1] [--out DIR] [--no-doc]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
COUNT=200 BLOCK=20 VPC=3 LOAD=60 SIZES=100K JITTER=90 SEED=1 OUT="" DOC=1
while [ $# -gt 0 ]; do
  case $1 in
    --count) COUNT=$2; shift ;;
    --block) BLOCK=$2; shift ;;
    --vpc) VPC=$2; shift ;;
    --load) LOAD=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --jitter-ms) JITTER=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-doc) DOC=0 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "uml_effect.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export VSW_BUILD=${VSW_BUILD:-$ROOT/build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/guest/guestlib.sh"
require_root
require_cmd ip python3
require_hugepages 700
[ -w /sys/fs/cgroup/freezer/cgroup.procs ] || skip "no writable cgroup v1 freezer"
guest_prepare uml
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/bench/results/snoop-uml-$STAMP}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
GUESTS=$(awk -F, '{print NF}' <<<"$VPC")
. "$ROOT/bench/testbed/uml_bed.sh"
# The stage is in the pipeline but off; harness.py switches it per block.
uml_bed_up "$GUESTS" "$VPC" "$LOAD" "$SEED" "$OUT" $'[stages]\norder = ["snoop"]\nenabled = []\n[stages.snoop]\ndisabled_ports = ["up"]'
CMD="bench/snoop/uml_effect.sh --count $COUNT --vpc $VPC --load $LOAD --sizes $SIZES --jitter-ms $JITTER"
log "$COUNT transfers per configuration, guest(s) at $VPC VMs/core; out $OUT"
/usr/bin/python3 "$ROOT/bench/testbed/harness.py" run --env "$UML_ENV" --guests all --sizes "$SIZES" --dir rx \
  --count "$COUNT" --block "$BLOCK" --config off= --config snoop=snoop --gap-jitter-ms "$JITTER" --fct sender \
  --seed "$SEED" --out "$OUT" --overwrite --max-failures 5 --timeout-s 120 \
  --title "UML guest(s) frozen by the schedule ($VPC VMs/core, $LOAD % load), remote->guest" >"$OUT/harness.log" 2>&1 ||
  fail "harness failed: $(tail -n 5 "$OUT/harness.log")"
vsw_ctl --json stage-list >"$OUT/stage-list.json" 2>&1 || true
uml_bed_schedules "$OUT"
for i in $(seq "$GUESTS"); do  # the guests' own view: retransmissions, delayed ACKs, drops
  uml_exec "g$i" 20 "nstat -az 2>/dev/null | grep -v ' 0 ' ; ip -s link show eth0" >"$OUT/uml-g$i-nstat.txt" 2>&1 || true
done
/usr/bin/python3 - "$OUT" "$CMD" "$DOC" "$ROOT" <<'PY'
import json, os, re, shutil, sys
out, cmd, doc, root = sys.argv[1:5]
summ = open(os.path.join(out, "summary.md")).read().strip()
try:
    c = [s for s in json.load(open(os.path.join(out, "stage-list.json"))) if s["name"] == "snoop"][0]["counters"]
    keys = ["early_ack", "early_ack_bytes", "tx_confirmed", "tx_refused", "offline_out_of_order", "resume_guest_ack",
            "guest_ack_drop_covered", "win_ring_bound"]
    ctrs = ", ".join("%s %s" % (k, c.get(k, 0)) for k in keys)
except Exception as e:  # noqa: BLE001
    ctrs = "(no counters: %s)" % e
sched = open(os.path.join(out, "schedules.txt")).read().strip() if os.path.exists(os.path.join(out, "schedules.txt")) else ""
block = ["<!-- BEGIN uml effect -->", "Run `%s` (raw data `bench/results/%s`):" % (cmd, os.path.basename(out)), "",
         summ, "", "Snoop counters over the run: " + ctrs + ".", ""]
if sched:
    block += ["Schedules applied (freezer):", "", "```", sched, "```", ""]
block += ["![UML CDF](img/snoop-uml-cdf.png)", "<!-- END uml effect -->"]
print("\n".join(block))
if doc == "1":
    pngs = sorted(f for f in os.listdir(out) if f.startswith("cdf") and f.endswith(".png"))
    if pngs:
        shutil.copy(os.path.join(out, pngs[0]), os.path.join(root, "docs/img/snoop-uml-cdf.png"))
    p = os.path.join(root, "docs/snoop.md")
    s = open(p).read()
    new = "\n".join(block)
    if "<!-- BEGIN uml effect -->" in s:
        s = re.sub(r"<!-- BEGIN uml effect -->.*?<!-- END uml effect -->", lambda m: new, s, flags=re.S)
    else:
        s = s.replace("### (4) Cost", "### On real guests (UML)\n\n" + new + "\n\n### (4) Cost", 1)
    open(p, "w").write(s)
PY
log "done: $OUT"
