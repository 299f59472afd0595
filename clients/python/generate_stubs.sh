#!/usr/bin/env bash
# Generates the Python protobuf/gRPC stubs of proto/attnres/v1/attnres.proto into
# attnres_client/_proto/ (not checked in). Usage: generate_stubs.sh [PROTOC] [GRPC_PYTHON_PLUGIN]
# Uses the system protoc (3.21) with grpc_python_plugin: Debian's python3-grpc-tools bundles
# protoc 3.5, which predates proto3 `optional`. The runtime is python3-protobuf (4.21).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
protoc="${1:-protoc}"
plugin="${2:-$(command -v grpc_python_plugin)}"
proto_root="$(cd "${here}/../../proto" && pwd)"
out="${here}/attnres_client/_proto"
mkdir -p "${out}"
"${protoc}" \
  --proto_path="${proto_root}" \
  --python_out="${out}" \
  --grpc_python_out="${out}" \
  --plugin=protoc-gen-grpc_python="${plugin}" \
  "${proto_root}/attnres/v1/attnres.proto"
# Make the generated tree importable as packages (attnres.v1.attnres_pb2).
touch "${out}/__init__.py" "${out}/attnres/__init__.py" "${out}/attnres/v1/__init__.py"
