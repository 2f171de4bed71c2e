#!/bin/sh
# init of a User-Mode Linux test guest. The root file system is the host's /
# through hostfs, read-only, so the guest runs the host's binaries (iperf3,
# ping, ip). Parameters arrive as environment variables from the kernel
# command line (Linux hands unknown key=value parameters to init):
#   vsw_ip=A.B.C.D/NN  address of eth0
#   vsw_mac=MAC        fixed MAC of eth0
#   vsw_dir=/host/dir  host folder mounted read-write on /mnt (hostfs):
#                      the host drops command scripts cmd.N there; the guest
#                      runs each once (output out.N, exit code done.N) and
#                      powers off when the file "halt" appears.
# Console lines starting with "VSW: " are for the test.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mountpoint -q /dev || mount -t devtmpfs dev /dev
mount -t hostfs none /mnt -o "$vsw_dir" || { echo "VSW: hostfs mount of $vsw_dir failed"; poweroff -f; }
say() { echo "VSW: $*"; }
say "init $(uname -r) up $(cut -d' ' -f1 /proc/uptime) s"

# virtio_net is built into the guest kernel (uml-kernel/guest.config).
say "kernel HZ $(zcat /proc/config.gz 2>/dev/null | sed -n 's/^CONFIG_HZ=//p'), congestion control: $(cat /proc/sys/net/ipv4/tcp_available_congestion_control)"
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /sys/class/net/eth0 ] || { say "no eth0"; dmesg | tail -n 20; poweroff -f; }
ip link set lo up
[ -n "${vsw_mac:-}" ] && ip link set eth0 address "$vsw_mac"
ip addr add "$vsw_ip" dev eth0
ip link set eth0 up
i=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
say "eth0 carrier=$(cat /sys/class/net/eth0/carrier) up $(cut -d' ' -f1 /proc/uptime) s"
say "features $(cat /sys/class/net/eth0/device/features 2>/dev/null)"
iperf3 -s -D -p 5201 >/dev/null 2>&1 || say "iperf3 server failed"
say "ready"

# Command loop (bounded by the host: it halts or kills the guest).
while [ ! -e /mnt/halt ]; do
  for c in /mnt/cmd.*; do
    [ -e "$c" ] || continue
    n=${c#/mnt/cmd.}
    [ -e "/mnt/done.$n" ] && continue
    sh "$c" >"/mnt/out.$n" 2>&1
    echo $? >"/mnt/rc.$n"
    mv "/mnt/rc.$n" "/mnt/done.$n"
  done
  sleep 0.2
done
say "halting"
umount /mnt
poweroff -f
