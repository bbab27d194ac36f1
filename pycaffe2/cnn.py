"""Caffe2's `cnn.CNNModelHelper`: the old model helper, kept for scripts written
before brew. A thin ModelHelper whose layer methods call brew's helpers:

    model = cnn.CNNModelHelper(order="NCHW", name="lenet")
    conv1 = model.Conv("data", "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = model.MaxPool(conv1, "pool1", kernel=2, stride=2)
    fc = model.FC(pool1, "fc", dim_in=20 * 12 * 12, dim_out=10)
    softmax = model.Softmax(fc, "softmax")
    xent = model.LabelCrossEntropy([softmax, "label"], "xent")   # ops without params: model.net's

`order`, `use_cudnn`, `cudnn_exhaustive_search` and `ws_nbytes_limit` go into the
model's arg_scope, so every brew helper receives them (on the CPU an engine is
only recorded on the op). Parameters are made in `param_init_net` (or, with
init_params=False, expected from outside) and listed in `params`, `weights`
and `biases`.
"""
from __future__ import annotations

from pycaffe2 import brew, core
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.model_helper import ModelHelper
from pycaffe2.proto import caffe2_pb2

# CNNModelHelper method -> the brew helper it calls (with the model first).
_LAYERS = {
    "Conv": "conv", "ConvNd": "conv_nd", "ConvTranspose": "conv_transpose", "GroupConv": "group_conv",
    "FC": "fc", "Dropout": "dropout", "LRN": "lrn", "Softmax": "softmax", "SpatialBN": "spatial_bn",
    "InstanceNorm": "instance_norm", "Relu": "relu", "PRelu": "prelu", "LeakyRelu": "leaky_relu",
    "Tanh": "tanh", "Sigmoid": "sigmoid", "Concat": "concat", "DepthConcat": "depth_concat",
    "MaxPool": "max_pool", "AveragePool": "average_pool", "Transpose": "transpose", "Sum": "sum",
    "Iter": "iter", "Accuracy": "accuracy", "ImageInput": "image_input",
}


def _layer(method: str, helper: str):
    def call(self, *args, **kwargs):
        return getattr(brew, helper)(self, *args, **kwargs)
    call.__name__ = method
    call.__doc__ = f"brew.{helper} on this model."
    return call


class CNNModelHelper(ModelHelper):
    """A ModelHelper with Caffe2's CNN layer methods (Conv, FC, Relu, MaxPool, ...)."""

    def __init__(self, order="NCHW", name=None, use_cudnn=True, cudnn_exhaustive_search=False,
                 ws_nbytes_limit=None, init_params=True, skip_sparse_optim=False, param_model=None):
        if order not in ("NCHW", "NHWC"):
            raise PyCaffe2Error(f"CNNModelHelper: cannot understand the storage order {order!r} "
                                "(expected NCHW or NHWC)")
        scope = {"order": order, "use_cudnn": use_cudnn, "cudnn_exhaustive_search": cudnn_exhaustive_search}
        if ws_nbytes_limit:
            scope["ws_nbytes_limit"] = ws_nbytes_limit
        super().__init__(name="CNN" if name is None else name, init_params=init_params,
                         skip_sparse_optim=skip_sparse_optim, param_model=param_model, arg_scope=scope)
        self.order, self.use_cudnn = order, use_cudnn
        self.cudnn_exhaustive_search, self.ws_nbytes_limit = cudnn_exhaustive_search, ws_nbytes_limit

    def GetWeights(self, namescope=None) -> list:
        return self._in_scope(self.weights, namescope)

    def GetBiases(self, namescope=None) -> list:
        return self._in_scope(self.biases, namescope)

    @staticmethod
    def _in_scope(blobs, namescope) -> list:
        namescope = core.CurrentNameScope() if namescope is None else namescope
        if namescope and not namescope.endswith("/"):
            namescope += "/"
        return [b for b in blobs if not namescope or str(b)[:str(b).rfind("/") + 1] == namescope]

    def AddWeightDecay(self, weight_decay) -> None:
        """grad += weight_decay * weight for every weight (after AddGradientOperators)."""
        brew.add_weight_decay(self, weight_decay)

    # Initializers as (fill op, args) pairs, for weight_init= / bias_init=.
    XavierInit = property(lambda self: ("XavierFill", {}))
    MSRAInit = property(lambda self: ("MSRAFill", {}))
    ZeroInit = property(lambda self: ("ConstantFill", {}))

    def ConstantInit(self, value):
        return ("ConstantFill", {"value": value})

    def PadImage(self, blob_in, blob_out, **kwargs):
        """PadImage on this model's net (pad args as Conv's; mode, value)."""
        return self.net.PadImage(blob_in, blob_out, **kwargs)

    @property
    def CPU(self):
        return core.DeviceOption(caffe2_pb2.PROTO_CPU)

    @property
    def GPU(self):
        return core.DeviceOption(caffe2_pb2.PROTO_CUDA, 0)


for _method, _helper in _LAYERS.items():
    setattr(CNNModelHelper, _method, _layer(_method, _helper))
