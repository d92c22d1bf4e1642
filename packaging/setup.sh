#!/usr/bin/env bash
# Installs vitscope's Debian 12 dependencies (skipping what is present), then configures and
# builds. Usage: packaging/setup.sh [--no-build] [--preset NAME]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=1
preset=release
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --preset) preset="$2"; shift ;;
    *) echo "setup.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

packages=(
  cmake ninja-build ccache g++ pkg-config
  libtorch-dev libopenblas0-pthread
  qt6-base-dev qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6
  libopencv-dev libspdlog-dev libeigen3-dev libhnswlib-dev nlohmann-json3-dev libcli11-dev
  libbenchmark-dev libicu-dev zlib1g-dev libsentencepiece-dev libpng-dev libjpeg62-turbo-dev libhdf5-dev
  slurm-wlm munge parallel
  xvfb xauth
  python3 python3-h5py python3-scipy
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ "$build" -eq 1 ]; then
  cd "$here"
  cmake --preset "$preset"
  cmake --build --preset "$preset"
fi
