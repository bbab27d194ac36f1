"""Caffe2's protobuf messages (caffe2.proto and its generated caffe2_pb2).

Caffe2's Python package also exposed the DeviceType values without their
PROTO_ prefix (caffe2_pb2.CPU, caffe2_pb2.CUDA), and ported scripts use them.
"""
from pycaffe2.proto import caffe2_pb2

caffe2_pb2.CPU = caffe2_pb2.PROTO_CPU
caffe2_pb2.CUDA = caffe2_pb2.PROTO_CUDA
caffe2_pb2.MKLDNN = caffe2_pb2.PROTO_MKLDNN
caffe2_pb2.OPENGL = caffe2_pb2.PROTO_OPENGL
caffe2_pb2.OPENCL = caffe2_pb2.PROTO_OPENCL
caffe2_pb2.IDEEP = caffe2_pb2.PROTO_IDEEP
caffe2_pb2.HIP = caffe2_pb2.PROTO_HIP
