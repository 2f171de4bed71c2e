#!/usr/bin/env bash
# Prepares what the real-guest integration tests need, and caches it.
#
#   fetch-guest-images.sh [uml|qemu|all]      (default: all)
#
# uml : builds (once, cached) the guest's User-Mode Linux kernel from Debian's
#       linux-source package (uml-kernel/build.sh) and installs uml-utilities
#       (uml_mconsole). A UML guest boots on the host's root file system
#       (hostfs, read-only), so it needs no image. Kernel: $CACHE/uml/linux.
# qemu: installs qemu-system-x86, busybox-static, cpio; downloads Debian's
#       linux-image-*-cloud-amd64 .deb (apt-get download, unpacked with
#       dpkg-deb -x: never installed on the host) and builds an initramfs:
#       busybox + the virtio-net modules of that kernel + iperf3 with its
#       shared libraries + guest/init.sh as /init.
#
# Cache: $VSW_GUEST_CACHE (default /var/cache/vswitch-guest). The QEMU guest is
# $VSW_GUEST_CACHE/qemu/vmlinuz and $VSW_GUEST_CACHE/qemu/initramfs.gz; it is
# rebuilt only when the kernel package, iperf3, busybox or init.sh change, so
# repeated test runs cost nothing. Nothing here belongs in git.
#
# Exit 0 = ready, 77 = the machine cannot provide it (package not installable,
# no network and no cache), anything else = a bug in this script.
set -euo pipefail

MODE=${1:-all}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${VSW_GUEST_CACHE:-/var/cache/vswitch-guest}
say() { echo "[fetch-guest] $*" >&2; }
cannot() { say "cannot prepare guests: $*"; exit 77; }
WORK=
trap '[ -z "$WORK" ] || rm -rf "$WORK"' EXIT

[ "$(id -u)" = 0 ] || cannot "needs root (apt-get)"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 600 9 || cannot "cache lock $CACHE/.lock busy for 10 minutes"

# Installs the packages that provide the given commands (pairs cmd:package).
need_pkgs() {
  local missing=()
  for cp in "$@"; do command -v "${cp%%:*}" >/dev/null || missing+=("${cp#*:}"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >"$CACHE/apt.log" 2>&1 ||
    { apt-get update >>"$CACHE/apt.log" 2>&1 &&
      apt-get install -y --no-install-recommends "${missing[@]}" >>"$CACHE/apt.log" 2>&1; } ||
    cannot "apt-get install ${missing[*]} failed (see $CACHE/apt.log)"
  for cp in "$@"; do command -v "${cp%%:*}" >/dev/null || cannot "${cp%%:*} still missing after install"; done
}

prepare_uml() {
  need_pkgs uml_mconsole:uml-utilities iperf3:iperf3
  # Our own kernel on every host: Debian's user-mode-linux cannot run user
  # processes where the host's XSAVE area exceeds 2,696 bytes (AMX hosts), and
  # it lacks DCTCP; see docs/testbed.md, "Guest kernel".
  local k
  k=$("$HERE/uml-kernel/build.sh" "$CACHE") || { say "UML kernel build failed (log: $CACHE/uml/build.log)"; exit 1; }
  ln -sfn "$k" "$CACHE/uml/linux"
  say "uml ready: $k ($(cat "$(dirname "$k")/source"))"
}

# Prints the modules (relative paths under kernel/) needed for $2.. in load
# order, resolving dependencies with modinfo. $1 = the unpacked modules dir.
module_order() {
  local dir=$1; shift
  local -A seen=()
  local out=()
  visit() {
    local name=$1 f dep
    [ -n "${seen[$name]:-}" ] && return 0
    seen[$name]=1
    f=$(find "$dir/kernel" -name "$name.ko" -o -name "$name.ko.xz" | head -n 1)
    [ -n "$f" ] || { say "module $name not found (built in?)"; return 0; }
    for dep in $(modinfo -F depends "$f" | tr ',' ' '); do visit "$dep"; done
    out+=("${f#"$dir"/kernel/}")
  }
  for m in "$@"; do visit "$m"; done
  printf '%s\n' "${out[@]}"
}

prepare_qemu() {
  need_pkgs qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio modinfo:kmod \
    iperf3:iperf3 dpkg-deb:dpkg
  local q=$CACHE/qemu pkg deb
  mkdir -p "$q"
  # The concrete kernel package behind the meta package, e.g. linux-image-6.1.0-56-cloud-amd64.
  cloud_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
  pkg=$(cloud_pkg)
  if [ -z "$pkg" ] && ! [ -f "$q/initramfs.gz" ]; then
    apt-get update >"$CACHE/update.log" 2>&1 || true
    pkg=$(cloud_pkg)
  fi
  if [ -z "$pkg" ]; then
    [ -f "$q/vmlinuz" ] && [ -f "$q/initramfs.gz" ] && { say "apt metadata unavailable; using cached guest"; return 0; }
    cannot "no linux-image-*-cloud-amd64 package known to apt"
  fi
  deb=$(ls "$q/$pkg"_*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then
    say "downloading $pkg"
    rm -f "$q"/linux-image-*.deb
    (cd "$q" && apt-get download "$pkg" >"$CACHE/download.log" 2>&1) ||
      (apt-get update >>"$CACHE/download.log" 2>&1 && cd "$q" && apt-get download "$pkg" >>"$CACHE/download.log" 2>&1) ||
      cannot "apt-get download $pkg failed (see $CACHE/download.log)"
    deb=$(ls "$q/$pkg"_*.deb | head -n 1)
  fi
  local stamp
  stamp=$( { basename "$deb"; sha256sum "$HERE/init.sh" "$0" /usr/bin/iperf3 "$(command -v busybox)"; } | sha256sum | cut -c1-16)
  if [ "$(cat "$q/stamp" 2>/dev/null)" = "$stamp" ] && [ -f "$q/vmlinuz" ] && [ -f "$q/initramfs.gz" ]; then
    say "qemu guest cached in $q"
    return 0
  fi
  say "building the guest initramfs"
  local w
  w=$(mktemp -d /tmp/vrguest.XXXXXX)
  WORK=$w
  dpkg-deb -x "$deb" "$w/deb"
  local kver moddir
  moddir=$(ls -d "$w"/deb/lib/modules/* | head -n 1)
  kver=$(basename "$moddir")
  local r=$w/root
  mkdir -p "$r"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules}
  cp "$(command -v busybox)" "$r/bin/busybox"
  for a in $("$r/bin/busybox" --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  cp /usr/bin/iperf3 "$r/bin/iperf3"
  # iperf3's shared libraries and the dynamic loader, at the paths ldd names.
  for lib in $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
    mkdir -p "$r$(dirname "$lib")"
    cp -L "$lib" "$r$lib"
  done
  # Network modules of the guest kernel, dependencies first.
  : >"$r/lib/modules/load.order"
  while read -r m; do
    local b
    b=$(basename "$m")
    case $b in
      *.xz) xz -dc "$moddir/kernel/$m" >"$r/lib/modules/${b%.xz}"; b=${b%.xz} ;;
      *) cp "$moddir/kernel/$m" "$r/lib/modules/$b" ;;
    esac
    echo "$b" >>"$r/lib/modules/load.order"
  done < <(module_order "$moddir" virtio_pci virtio_net)
  grep -q virtio_net.ko "$r/lib/modules/load.order" || { say "virtio_net.ko not found in $pkg"; exit 1; }
  echo "root:x:0:0:root:/:/bin/sh" >"$r/etc/passwd"
  echo "$kver" >"$r/etc/kernel-release"
  install -m 0755 "$HERE/init.sh" "$r/init"
  (cd "$r" && find . | cpio -o -H newc --quiet | gzip -6) >"$q/initramfs.gz.new"
  cp "$w/deb/boot/vmlinuz-$kver" "$q/vmlinuz.new"
  mv "$q/initramfs.gz.new" "$q/initramfs.gz"
  mv "$q/vmlinuz.new" "$q/vmlinuz"
  echo "$kver" >"$q/kernel-release"
  echo "$stamp" >"$q/stamp"
  say "qemu guest ready: kernel $kver, initramfs $(du -h "$q/initramfs.gz" | cut -f1), modules: $(tr '\n' ' ' <"$r/lib/modules/load.order")"
  rm -rf "$w"
}

case $MODE in
  uml) prepare_uml ;;
  qemu) prepare_qemu ;;
  all) prepare_uml; prepare_qemu ;;
  *) echo "usage: $0 [uml|qemu|all]" >&2; exit 2 ;;
esac
