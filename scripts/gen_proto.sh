#!/usr/bin/env bash
# Regenerates pycaffe2/proto/caffe2_pb2.py from caffe2.proto.
# Needs protoc 3.21 (Debian's protobuf-compiler); its output runs on current protobuf.
set -euo pipefail
cd "$(dirname "$0")/../pycaffe2/proto"
protoc --python_out=. caffe2.proto
