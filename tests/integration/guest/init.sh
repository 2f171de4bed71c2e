#!/bin/sh
# /init of the QEMU test guest (busybox initramfs built by fetch-guest-images.sh).
# Parameters come from the kernel command line: Linux hands unknown key=value
# parameters to init as environment variables.
#   vsw_ip=A.B.C.D/NN   address of eth0 (required)
#   vsw_peer=A.B.C.D    the host namespace behind the switch
#   vsw_ping=N          at boot, ping the peer N times (default 0)
#   vsw_iperf=S         at boot, iperf3 -c peer -t S, guest -> peer (default 0)
#   vsw_iperf_p=P       parallel streams of that iperf3 (default 1)
#   vsw_cpuping=N       at boot, ping the peer N times from each vCPU in turn
#                       (taskset), so that every tx queue pair carries traffic
#   vsw_pingloop=1      afterwards, ping the peer five times a second, forever
# An iperf3 server (port 5201) always runs for the host side. Every result
# line starts with "VSW: " on the console (ttyS0).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
say() { echo "VSW: $*"; }
say "init $(uname -r) up $(cut -d' ' -f1 /proc/uptime) s"

while read -r m; do
  insmod "/lib/modules/$m" || say "insmod $m failed"
done </lib/modules/load.order

i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /sys/class/net/eth0 ] || { say "no eth0"; dmesg | tail -n 20; }
ip link set lo up
ip addr add "${vsw_ip:?vsw_ip= missing on the kernel command line}" dev eth0
ip link set eth0 up
i=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
say "eth0 carrier=$(cat /sys/class/net/eth0/carrier 2>/dev/null) mac=$(cat /sys/class/net/eth0/address) up $(cut -d' ' -f1 /proc/uptime) s"
say "features $(cat /sys/class/net/eth0/device/features 2>/dev/null)"

iperf3 -s -D -p 5201 >/dev/null 2>&1 || say "iperf3 server failed"

if [ "${vsw_ping:-0}" -gt 0 ] && [ -n "${vsw_peer:-}" ]; then
  out=$(ping -c "$vsw_ping" -i 0.2 -W 3 "$vsw_peer" 2>&1)
  echo "$out" | tail -n 2 | sed 's/^/VSW: ping-result /'
fi
if [ "${vsw_cpuping:-0}" -gt 0 ] && [ -n "${vsw_peer:-}" ]; then
  c=0
  while [ $c -lt "$(nproc)" ]; do
    out=$(taskset -c $c ping -c "$vsw_cpuping" -i 0.2 -W 3 "$vsw_peer" 2>&1)
    echo "$out" | grep "packet loss" | sed "s/^/VSW: cpuping-result cpu=$c /"
    c=$((c + 1))
  done
fi
if [ "${vsw_iperf:-0}" -gt 0 ] && [ -n "${vsw_peer:-}" ]; then
  iperf3 -c "$vsw_peer" -t "$vsw_iperf" -P "${vsw_iperf_p:-1}" -f m --connect-timeout 3000 >/tmp/iperf.out 2>&1
  rc=$?
  grep -E "sender|receiver|error" /tmp/iperf.out | tail -n 2 | sed 's/^/VSW: iperf-result /'
  say "iperf-done rc=$rc"
fi
say "ready"
if [ "${vsw_pingloop:-0}" = 1 ] && [ -n "${vsw_peer:-}" ]; then
  exec ping -i 0.2 -W 1 "$vsw_peer"
fi
while :; do sleep 3600; done
