#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages only), reserves hugepages,
# mounts hugetlbfs and builds vswitch into ./build. Idempotent.
#   scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential meson ninja-build pkg-config
      dpdk dpdk-dev libdpdk-dev libboost-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
      libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
      iproute2 iputils-ping iperf3 python3 python3-matplotlib kmod procps psmisc)
HUGEPAGES=${VSW_HUGEPAGES:-2048}

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: needs root (apt-get, hugepages, network namespaces); run it with sudo" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt "$HUGEPAGES" ]; then
  echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages
fi
echo "setup.sh: $(awk '/HugePages_Free/ {print $2}' /proc/meminfo) free 2 MB hugepages"

if [ "${1:-}" != "--no-build" ]; then
  [ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
  ninja -C build -j"$(nproc)"
fi
