"""Caffe2's `mkl_test_util` names for its op tests: pycaffe2 has no MKL-DNN device,
so `gcs` are hypothesis_test_util's device options and `mkl_do` is never drawn."""
from pycaffe2.hypothesis_test_util import gcs
from pycaffe2.proto import caffe2_pb2

mkl_do = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_MKLDNN)
__all__ = ["gcs", "mkl_do"]
