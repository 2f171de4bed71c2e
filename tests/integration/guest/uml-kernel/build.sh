#!/usr/bin/env bash
# Builds the User-Mode Linux kernel of the test guests from Debian's
# linux-source package, patched (xstate-hz.patch) and configured
# (guest.config), and caches it outside git (docs/testbed.md, "Guest kernel").
#
#   build.sh CACHE_DIR      prints the path of the cached kernel on stdout
#
# The cache key is the source package's version + the patch + the config
# fragment + this script: any change to one of them builds a new kernel; an
# unchanged key costs nothing. Other keys are removed after a good build.
# A failing step stops with "step NAME failed", the log's path and its tail.
# Env: UML_SOURCE_PKG (default linux-source-6.12), UML_BUILD_JOBS (nproc).
set -euo pipefail

CACHE=${1:?usage: build.sh CACHE_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PKG=${UML_SOURCE_PKG:-linux-source-6.12}
JOBS=${UML_BUILD_JOBS:-$(nproc)}
NEED_MB=3500
say() { echo "[uml-kernel] $*" >&2; }
step_failed() {  # step_failed STEP LOG
  say "step $1 failed; log: $2"
  [ -f "$2" ] && tail -n 15 "$2" | sed 's/^/[uml-kernel]   /' >&2
  exit 1
}

mkdir -p "$CACHE/uml"
LOG=$CACHE/uml/build.log
: >"$LOG"

# Packages: the source and the tools a kernel build runs.
missing=()
for p in "$PKG" flex bison bc make gcc libc6-dev xz-utils patch; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } \
    >>"$LOG" 2>&1 || step_failed "install packages (${missing[*]})" "$LOG"
fi
TARBALL=$(dpkg -L "$PKG" | grep -m1 '\.tar\.xz$') || step_failed "find the source tarball of $PKG" "$LOG"
VERSION=$(dpkg-query -W -f='${Version}' "$PKG")

KEY=$( { echo "$PKG $VERSION"; cat "$HERE/xstate-hz.patch" "$HERE/guest.config" "$0"; } | sha256sum | cut -c1-16)
OUT=$CACHE/uml/$KEY
if [ -x "$OUT/linux" ]; then
  say "cached: $OUT/linux ($PKG $VERSION)"
  echo "$OUT/linux"
  exit 0
fi

free_mb=$(df -Pm "$CACHE" | awk 'NR == 2 {print $4}')
[ "$free_mb" -ge "$NEED_MB" ] || { echo "$free_mb MB free in $CACHE, the build needs $NEED_MB MB" >>"$LOG"; step_failed "check disk space" "$LOG"; }

say "building from $PKG $VERSION (key $KEY); log: $LOG"
SRC=$CACHE/uml/src
rm -rf "$SRC"
mkdir -p "$SRC"
trap 'rm -rf "$SRC"' EXIT
t0=$SECONDS
tar -xJf "$TARBALL" -C "$SRC" --strip-components=1 >>"$LOG" 2>&1 ||
  step_failed "extract $TARBALL" "$LOG"
patch -d "$SRC" -p1 <"$HERE/xstate-hz.patch" >>"$LOG" 2>&1 || step_failed "apply xstate-hz.patch" "$LOG"
say "source ready after $((SECONDS - t0)) s"

kmake() { make -C "$SRC" ARCH=um SUBARCH=x86_64 "$@" >>"$LOG" 2>&1; }
kmake defconfig || step_failed "make defconfig" "$LOG"
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$SRC" "$SRC/.config" "$HERE/guest.config" >>"$LOG" 2>&1 ||
  step_failed "merge guest.config" "$LOG"
kmake olddefconfig || step_failed "make olddefconfig" "$LOG"
# Every option of the fragment must have taken (Kconfig drops what it cannot satisfy).
while read -r line; do
  case $line in
    CONFIG_*) grep -qx "$line" "$SRC/.config" || { echo "not in .config: $line" >>"$LOG"; step_failed "check guest.config" "$LOG"; } ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
      ! grep -q "^$opt=" "$SRC/.config" || { echo "still set: $opt" >>"$LOG"; step_failed "check guest.config" "$LOG"; } ;;
  esac
done <"$HERE/guest.config"

t1=$SECONDS
kmake -j"$JOBS" linux || step_failed "make linux" "$LOG"
say "kernel built in $((SECONDS - t1)) s ($((SECONDS - t0)) s with extraction)"

mkdir -p "$OUT.new"
strip -o "$OUT.new/linux" "$SRC/linux" 2>>"$LOG" || cp "$SRC/linux" "$OUT.new/linux"
cp "$SRC/.config" "$OUT.new/config"
echo "$PKG $VERSION" >"$OUT.new/source"
echo "$((SECONDS - t0))" >"$OUT.new/build-seconds"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
for d in "$CACHE"/uml/*/; do
  d=${d%/}
  [ "$d" = "$OUT" ] || [ "$(basename "$d")" = src ] || rm -rf "$d"
done
say "ready: $OUT/linux"
echo "$OUT/linux"
