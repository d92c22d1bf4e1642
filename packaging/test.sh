#!/usr/bin/env bash
# Sets up (Debian packages), builds and runs every test with ctest.
# Usage: packaging/test.sh [extra ctest arguments, e.g. -L core]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
packaging/setup.sh
ctest --preset release "$@"
