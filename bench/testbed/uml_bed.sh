# shellcheck shell=bash
# The UML bed, sourced by bench/testbed/uml_baseline.sh and
# bench/snoop/uml_effect.sh (after tests/integration/lib.sh and
# tests/integration/guest/guestlib.sh, and `guest_prepare uml`):
#   uml_bed_up GUESTS VPC_LIST LOAD SEED OUT [EXTRA_TOML]
# vswitchd with GUESTS User-Mode Linux guests g1..gN (real Linux 6.1 kernels
# and TCP stacks) on vhost-user ports and one remote namespace behind a
# net_tap uplink "up"; EXTRA_TOML is appended to the switch config (e.g. a
# [stages] table). Guest i runs a tbperf receiver agent and is frozen and
# thawed by `vmsim --freeze-cgroup` (cgroup v1 freezer) with VPC_LIST's i-th
# entry of VMs per core, co-located VMs busy with probability LOAD, seed
# SEED+i-1 (as up.sh seeds vmsim guest i) — a frozen guest runs nothing, its
# timers stop too; schedules go to OUT/schedule-uml-gI.csv. Sets
# UML_ENV (a harness.py env file: the guests are "external") and SCHED_PIDS;
# everything is stopped by the guest_on_exit hooks.
#   uml_bed_schedules OUT    stops the schedulers and writes OUT/schedules.txt
uml_bed_up() {
  local guests=$1 vpcs=$2 load=$3 seed=$4 out=$5 extra=${6:-} i vpc cg
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  local net=10.241.0 hns=ub${TAG}r up=ub${TAG}up p
  p=$(dpdk_prefix ub)
  IFS=, read -r -a UML_VPC <<<"$vpcs"
  [ "${#UML_VPC[@]}" = "$guests" ] || fail "uml_bed_up: $guests guests but VMs/core list '$vpcs'"
  {
    vsw_config_head "$p"
    for i in $(seq "$guests"); do vsw_port "g$i" vhost-user "path=$T/g$i.sock" "disable_features=$UML_FEATURES_OFF"; done
    vsw_port up dpdk "devargs=net_tap0,iface=$up"
    [ -z "$extra" ] || printf '%s\n' "$extra"
  } >"$T/vsw.toml"
  vsw_start "$T/vsw.toml"
  netns_add "$hns"
  uplink_attach "$up" "$hns" "$net.1/24" 02:00:00:f1:00:01
  local gips="" gnss="" gvpc="" gload=""
  for i in $(seq "$guests"); do
    cg=/sys/fs/cgroup/freezer/ub${TAG}g$i
    mkdir "$cg"
    guest_on_exit "echo THAWED >$cg/freezer.state 2>/dev/null; rmdir $cg 2>/dev/null || true"
    uml_start "g$i" "$T/g$i.sock" "$net.$((10 + i))/24" "02:00:00:f1:00:$((10 + i))" "$cg"
    gips+="$net.$((10 + i)) " gnss+="uml-g$i " gvpc+="${UML_VPC[$((i - 1))]} " gload+="$load "
  done
  for i in $(seq "$guests"); do uml_wait_ready "g$i" 90; done
  for i in $(seq "$guests"); do
    # tbperf dies with its parent (PR_SET_PDEATHSIG): keep a parent shell alive.
    uml_exec "g$i" 30 "nohup sh -c 'python3 $here/tbperf.py --ctl /tmp/tbperf.sock --listen 5599; echo tbperf exited' \
      >/tmp/tbperf.log 2>&1 &
      for k in \$(seq 50); do [ -S /tmp/tbperf.sock ] && break; sleep 0.2; done; [ -S /tmp/tbperf.sock ]" >/dev/null ||
      fail "receiver agent did not start in UML guest g$i"
    ip netns exec "$hns" ping -n -q -c 3 -i 0.2 -W 2 "$net.$((10 + i))" >/dev/null || fail "no ping to UML guest g$i"
  done
  UML_ENV=$T/uml-env
  cat >"$UML_ENV" <<EOC
TB_NAME=uml
TB_DIR=$T
TB_VSWITCHCTL=$VSWITCHCTL
TB_CTL=$T/ctl.sock
TB_GUEST_NS="${gnss% }"
TB_GUEST_IP="${gips% }"
TB_GUEST_VPC="${gvpc% }"
TB_GUEST_LOAD="${gload% }"
TB_REMOTE_NS=$hns
TB_REMOTE_IP=$net.1
TB_GUEST_EXTERNAL=1
EOC
  SCHED_PIDS=()
  for i in $(seq "$guests"); do
    vpc=${UML_VPC[$((i - 1))]}
    spawn "sched-g$i" "$VSW_BUILD/bench/testbed/vmsim" -- --freeze-cgroup "/sys/fs/cgroup/freezer/ub${TAG}g$i" \
      --vms-per-core "$vpc" --load "$load" --seed "$((seed + i - 1))" --csv "$out/schedule-uml-g$i.csv"
    SCHED_PIDS+=("$SPAWNED_PID")
    # Runs before uml_stop (hooks are LIFO): a frozen guest cannot be stopped.
    guest_on_exit "kill -INT $SPAWNED_PID 2>/dev/null; wait_until 5 bash -c '! kill -0 $SPAWNED_PID' || true"
  done
}

uml_bed_schedules() {
  local out=$1 pid i
  for pid in "${SCHED_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${SCHED_PIDS[@]}"; do wait_until 5 bash -c "! kill -0 $pid" || true; done
  for i in $(seq "${#SCHED_PIDS[@]}"); do
    grep -h "vmsim schedule applied\|vmsim freezer" "$T/sched-g$i.log" | sed "s/^/uml g$i: /"
  done >"$out/schedules.txt" || true
}
