#!/usr/bin/env bash
# Builds vitscope without the desktop application (VITSCOPE_BUILD_GUI=OFF: core, CLI, tests,
# benchmarks; images through libpng + libjpeg) against any LibTorch: TORCH_PREFIX if set, else the
# one python3's torch carries (pip or conda; CUDA or not; torch.utils.cmake_prefix_path), else the
# system's (Debian's libtorch-dev). The other libraries come from PREFIX, a folder made by
# packaging/headless-prefix.sh and unpacked (for machines without them), or from the system.
# Binaries find PREFIX's libraries through their RPATH; moc needs them at build time too.
#
# Usage: packaging/build-headless.sh [--prefix PREFIX] [--build DIR] [-- extra cmake arguments]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix="" build="$here/build-headless"
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$(cd "$2" && pwd); shift 2 ;;
        --build) build=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "build-headless.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

torch_prefix=${TORCH_PREFIX:-}
if [ -z "$torch_prefix" ] && command -v python3 >/dev/null; then
    torch_prefix=$(python3 -c 'import os, torch; p = torch.utils.cmake_prefix_path; print(p if os.path.isdir(os.path.join(p, "Torch")) else "")' 2>/dev/null || true)
fi
echo "build-headless.sh: LibTorch from ${torch_prefix:-the system}; libraries from ${prefix:-the system}"

paths=()
[ -n "$prefix" ] && paths+=("$prefix/usr")
[ -n "$torch_prefix" ] && paths+=("$torch_prefix")
prefix_path=$(IFS=';'; echo "${paths[*]:-}")
args=(-DCMAKE_BUILD_TYPE=Release -DVITSCOPE_BUILD_GUI=OFF -DVITSCOPE_IMAGE_CODECS=builtin)
[ -n "$prefix_path" ] && args+=("-DCMAKE_PREFIX_PATH=$prefix_path")
if [ -n "$prefix" ]; then
    arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
    libdir="$prefix/usr/lib/$arch"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export PKG_CONFIG_SYSROOT_DIR="$prefix" PKG_CONFIG_LIBDIR="$libdir/pkgconfig:$prefix/usr/share/pkgconfig"
    args+=("-DCMAKE_BUILD_RPATH=$libdir" "-DCMAKE_INSTALL_RPATH=$libdir")
fi
command -v ninja >/dev/null && args+=(-G Ninja)
cmake -S "$here" -B "$build" "${args[@]}" "$@"
cmake --build "$build" -j "$(nproc)"
echo "build-headless.sh: built into $build"
