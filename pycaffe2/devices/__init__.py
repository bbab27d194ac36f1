"""Devices a blob can live on: blob placement (put, fetch) and, for CUDA, the
lazy PyCUDA state and streams. Each is one module with one class; DEVICES maps
a DeviceOption's device_type to it. Kernels live in operators/, not here."""
from pycaffe2.devices.cpu import CPUDevice
from pycaffe2.devices.cuda import CUDADevice
from pycaffe2.proto import caffe2_pb2

DEVICES = {caffe2_pb2.PROTO_CPU: CPUDevice, caffe2_pb2.PROTO_CUDA: CUDADevice}

__all__ = ["DEVICES", "CPUDevice", "CUDADevice"]
