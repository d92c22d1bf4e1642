#!/usr/bin/env bash
# Takes the screenshots in docs/screenshots/ from the built application under Xvfb (a real X
# server, the window manager-less desktop a fresh machine has). Usage: docs/take-screenshots.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
cmake --build build --target vitscope-screenshots
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
xvfb-run -a -s "-screen 0 1600x1000x24" build/bin/vitscope-screenshots docs/screenshots "$data"
ls -l docs/screenshots
