"""Caffe2's `hip_test_util` for its op tests: pycaffe2 has no HIP device, so a test
runs in HIP only if its device options say so (never with pycaffe2's own lists)."""
from pycaffe2.proto import caffe2_pb2


def run_in_hip(gc, dc) -> bool:
    return gc.device_type == caffe2_pb2.PROTO_HIP or any(d.device_type == caffe2_pb2.PROTO_HIP for d in dc)
