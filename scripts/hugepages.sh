# shellcheck shell=bash
# Sourced helper: hugepages_ensure_free N mounts hugetlbfs at /dev/hugepages if
# needed and grows the 2 MB pool until N pages are free. Returns 1 (and sets
# HUGEPAGES_FREE) when the kernel cannot give that many. Root.
hugepages_ensure_free() {
  local need=$1 total
  mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
  HUGEPAGES_FREE=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  [ "$HUGEPAGES_FREE" -ge "$need" ] && return 0
  total=$(cat /proc/sys/vm/nr_hugepages)
  echo $((total + need - HUGEPAGES_FREE)) > /proc/sys/vm/nr_hugepages
  HUGEPAGES_FREE=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  [ "$HUGEPAGES_FREE" -ge "$need" ]
}
