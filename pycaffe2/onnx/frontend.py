"""Caffe2's `caffe2.python.onnx.frontend` names over pycaffe2's exporter (export.py).

    from pycaffe2.onnx import frontend
    model = frontend.caffe2_net_to_onnx_model(predict_net, init_net,
                                              {"data": (TensorProto.FLOAT, (1, 3, 224, 224))})

`value_info` maps each input the init net does not make to (ONNX elem type, shape), as
Caffe2's frontend took it. The opset is `Caffe2Frontend.target_opset_version` (17)
unless `opset=` says otherwise.
"""
from __future__ import annotations

from pycaffe2.onnx.export import DEFAULT_OPSET, export_model, import_onnx


def _input_shapes(value_info) -> dict:
    if not value_info:
        return {}
    from onnx import helper
    shapes = {}
    for name, (elem_type, shape) in dict(value_info).items():
        dtype = helper.tensor_dtype_to_np_dtype(elem_type) if isinstance(elem_type, int) else elem_type
        shapes[name] = (tuple(shape), str(dtype))
    return shapes


class Caffe2Frontend:
    target_opset_version = DEFAULT_OPSET

    @classmethod
    def caffe2_net_to_onnx_model(cls, predict_net, init_net=None, value_info=None, opset=None):
        """An onnx.ModelProto of the predict net (and the init net's blobs as initializers)."""
        import_onnx()
        return export_model(predict_net, init_net, _input_shapes(value_info),
                            opset=opset or cls.target_opset_version)

    @classmethod
    def caffe2_net_to_onnx_graph(cls, predict_net, init_net=None, value_info=None, opset=None):
        """The onnx.GraphProto of caffe2_net_to_onnx_model."""
        return cls.caffe2_net_to_onnx_model(predict_net, init_net, value_info, opset).graph


caffe2_net_to_onnx_model = Caffe2Frontend.caffe2_net_to_onnx_model
caffe2_net_to_onnx_graph = Caffe2Frontend.caffe2_net_to_onnx_graph
