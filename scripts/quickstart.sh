#!/usr/bin/env bash
# First README command: installs what is missing, builds, runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh
exec scripts/demo.sh
