#!/usr/bin/env bash
# The headless configuration (packaging/build-headless.sh's settings) still configures, and the
# libpng + libjpeg side of image/codec.cpp still compiles, against this machine's libraries.
# The full headless build and its tests: bench/run-gpu-check.sh run cpu --quick.
# Usage: tests/check_headless_configure.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
rm -rf "$work"
cmake -S "$src" -B "$work" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVITSCOPE_BUILD_GUI=OFF -DVITSCOPE_IMAGE_CODECS=builtin > "$work.log" 2>&1 \
    || { cat "$work.log"; exit 1; }
grep -q 'vitscope image codecs: libpng + libjpeg' "$work.log" || { echo "the headless build did not choose libpng + libjpeg"; exit 1; }
if grep -q 'Qt6::Widgets\|vitscope_ui' "$work/build.ninja"; then echo "the headless build still builds the desktop application"; exit 1; fi
ninja -C "$work" core/CMakeFiles/vitscope_core.dir/image/codec.cpp.o core/CMakeFiles/vitscope_core.dir/image/codec_builtin.cpp.o
grep -q 'VITSCOPE_USE_OPENCV_IMGCODECS' "$work/build.ninja" && { echo "the headless build uses OpenCV imgcodecs"; exit 1; }
echo "headless configuration: ok"
