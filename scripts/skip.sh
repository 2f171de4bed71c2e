# shellcheck shell=bash
# One skip policy for every test script (sourced by the test libraries).
# setup.sh installs every command and provides every machine feature a test
# needs (hugepages, cgroup v1 controllers, guest kernels), so in CI (CI=true)
# a test that would skip for one of them fails instead: a skip there means
# setup is broken, and nobody reads a skip. (No test needs hardware this
# machine lacks; one that does gets its own skip that CI allows.) Every skip
# prints "SKIP: reason"; scripts/test.sh lists them under its closing line.
#   vsw_skip LOGFN REASON...           (LOGFN prints a line: log, echo)
vsw_skip() {
  local logfn=$1; shift
  if [ "${CI:-}" = true ]; then
    "$logfn" "FAIL: would skip, but CI=true and setup.sh should have provided it: $*"
    exit 1
  fi
  "$logfn" "SKIP: $*"
  exit 77
}
