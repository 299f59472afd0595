#!/usr/bin/env bash
# Installs the Debian packages attnres needs to build and test (Debian 12 / bookworm).
# The CUDA toolkit is not a Debian package: when /usr/local/cuda exists it is used, else the
# build is CPU-only.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libpcre2-dev libicu-dev
  prometheus-cpp-dev libcpp-httplib-dev libgtest-dev libgmock-dev
  python3 python3-grpcio python3-grpc-tools python3-protobuf python3-numpy python3-jinja2
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
