#!/usr/bin/env bash
# Packs the Debian packages the headless build needs into one relocatable prefix, for a machine
# that lacks them (a GPU machine with CUDA, CMake, a compiler and a pip / official LibTorch, but
# no Qt, OpenCV, spdlog, ICU headers...): `apt-get download` here, `dpkg -x` into one folder,
# trimmed (no static libraries, docs, or Qt modules besides Core and Test), as one .tar.xz.
# There: `tar xf` it and pass the folder to packaging/build-headless.sh.
#
# What goes in: the -dev packages for headers and CMake files, and the runtime packages of every
# shared library those link to (found with ldd on this machine's copies and dpkg -S), except the
# C and C++ runtimes the target has. OpenCV's imgcodecs is left out (its chain - GDAL, codecs,
# X11 - is ~200 MB): the headless build reads PNG / JPEG through libpng / libjpeg.
#
# Usage: packaging/headless-prefix.sh OUT.tar.xz        (Debian 12, amd64)
set -euo pipefail
out=${1:?usage: packaging/headless-prefix.sh OUT.tar.xz}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

dev=(libopencv-core-dev libopencv-imgproc-dev libspdlog-dev libfmt-dev libicu-dev nlohmann-json3-dev libcli11-dev
     libpng-dev libjpeg62-turbo-dev zlib1g-dev libsentencepiece-dev qt6-base-dev qt6-base-dev-tools qmake6 qmake6-bin)
# The shared libraries the build links (directly or through the -dev packages' CMake files).
roots=(libopencv_core.so.406 libopencv_imgproc.so.406 libspdlog.so.1.10 libfmt.so.9 libicuuc.so.72 libpng16.so.16
       libjpeg.so.62 libz.so.1 libsentencepiece.so.0 libQt6Core.so.6 libQt6Test.so.6)
# Present on any target with a C++ compiler: never carried (a carried copy would shadow the newer
# system one).
base='^(libc6|libgcc-s1|libstdc\+\+6|libcrypt1)$'

runtime=()
for lib in "${roots[@]}"; do
    path=/usr/lib/$arch/$lib
    [ -e "$path" ] || { echo "headless-prefix.sh: $path is missing: run packaging/setup.sh first" >&2; exit 2; }
    while read -r dep; do
        real=$(readlink -f "$dep")
        pkg=$(dpkg -S "$real" 2>/dev/null | head -1 | cut -d: -f1) || true
        [ -n "$pkg" ] || pkg=$(dpkg -S "$dep" 2>/dev/null | head -1 | cut -d: -f1) || true
        [ -n "$pkg" ] && runtime+=("$pkg")
    done < <( (echo "$path"; ldd "$path" | awk '$3 ~ /^\// {print $3}') )
done
# libblas.so.3 / liblapack.so.3 resolve through Debian's alternatives to OpenBLAS here; OpenCV
# core only needs them to load, so the small reference BLAS / LAPACK go instead.
mapfile -t runtime < <(printf '%s\n' "${runtime[@]}" | sort -u | grep -Ev "$base" | grep -v '^libopenblas')
runtime+=(libblas3 liblapack3)

echo "headless-prefix.sh: ${#dev[@]} -dev and ${#runtime[@]} runtime packages"
(cd "$work" && mkdir debs && cd debs && apt-get download "${dev[@]}" "${runtime[@]}" >/dev/null)
prefix="$work/vitscope-headless-prefix"
mkdir -p "$prefix"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
(cd "$work/debs" && ls *.deb) > "$prefix/PACKAGES"

# Debian's alternatives, which dpkg -x does not set up.
libdir="$prefix/usr/lib/$arch"
ln -sf blas/libblas.so.3 "$libdir/libblas.so.3"
ln -sf lapack/liblapack.so.3 "$libdir/liblapack.so.3"

# Trim: static libraries, documentation, and the Qt modules the headless build does not use.
find "$prefix" -name '*.a' -delete
rm -rf "$prefix"/usr/share/doc "$prefix"/usr/share/man "$prefix"/usr/share/lintian
for d in "$prefix"/usr/include/"$arch"/qt6/*; do
    case "$(basename "$d")" in QtCore|QtTest) ;; *) rm -rf "$d" ;; esac
done

tar -C "$work" -cJf "$out" vitscope-headless-prefix
echo "headless-prefix.sh: wrote $out ($(du -h "$out" | cut -f1)); unpacked $(du -sh "$prefix" | cut -f1)"
