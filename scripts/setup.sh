#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages only), reserves hugepages,
# mounts hugetlbfs and builds vswitch into ./build. Idempotent.
#   scripts/setup.sh [--no-build] [--guests]
# --guests also prepares the real-guest rung (the UML kernel built from
# linux-source, the QEMU guest image; cached in /var/cache/vswitch-guest):
# scripts/test.sh uses it so that no test spends its timeout on a build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

BUILD=1 GUESTS=0
for a in "$@"; do
  case $a in
    --no-build) BUILD=0 ;;
    --guests) GUESTS=1 ;;
    *) echo "usage: $0 [--no-build] [--guests]" >&2; exit 2 ;;
  esac
done

# Every command a test or the demo needs comes from here (tests fail in CI
# rather than skip when one is missing: scripts/skip.sh).
PKGS=(build-essential meson ninja-build pkg-config
      dpdk dpdk-dev libdpdk-dev libboost-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
      libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
      iproute2 iputils-ping iperf3 tcpdump python3 python3-matplotlib kmod procps psmisc
      uml-utilities qemu-system-x86 busybox-static cpio)
# Commands the tests require_cmd, checked after the install.
CMDS=(ip ss ping iperf3 tcpdump python3 dpdk-testpmd dpdk-telemetry.py uml_mconsole qemu-system-x86_64 busybox cpio)
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

for c in "${CMDS[@]}"; do
  command -v "$c" >/dev/null || { echo "setup.sh: command $c still missing after the install" >&2; exit 1; }
done
"$VSW_PYTHON" -c "import matplotlib" ||
  { echo "setup.sh: $VSW_PYTHON cannot import matplotlib (python3-matplotlib)" >&2; exit 1; }

mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt "$HUGEPAGES" ]; then
  echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages
fi
echo "setup.sh: $(awk '/HugePages_Free/ {print $2}' /proc/meminfo) free 2 MB hugepages"

if [ "$BUILD" = 1 ]; then
  [ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
  ninja -C build -j"$(nproc)"
fi

if [ "$GUESTS" = 1 ]; then
  t0=$SECONDS
  tests/integration/guest/fetch-guest-images.sh all
  echo "setup.sh: guests ready after $((SECONDS - t0)) s"
fi
