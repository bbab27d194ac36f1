"""Caffe2's `modeling.initializers`: how a parameter is filled in the init net.

An initializer's create_param(param_name, init_net, shape) adds what makes the
parameter and returns its ParameterInfo; ModelHelper.create_param keeps the blob.
brew helpers take an initializer class (WeightInitializer=...) or an
("Op", {kwargs}) tuple (weight_init=...), combined by update_initializer.
"""
from __future__ import annotations

from pycaffe2 import core
from pycaffe2.modeling.parameter_info import ParameterInfo

__all__ = ["ExternalInitializer", "Initializer", "PseudoFP16Initializer", "ReversePseudoFP16Initializer",
           "pFP16Initializer", "update_initializer"]


class Initializer:
    """A parameter filler: one op of `operator_name` with `kwargs`, added to the init net."""

    def __init__(self, operator_name: str | None = None, **kwargs):
        self.operator_name = operator_name
        self.operator_kwargs = kwargs

    def update(self, operator_name: str, kwargs: dict) -> None:
        if self.operator_name is not None:
            raise ValueError("this Initializer already has an operator")
        self.operator_name = operator_name
        self.operator_kwargs = kwargs

    def create_param(self, param_name, init_net: core.Net, shape) -> ParameterInfo:
        if self.operator_name is None:
            raise ValueError(f"the Initializer of {param_name} has no operator to fill it with")
        fill = getattr(init_net, self.operator_name)
        blob = fill([], param_name, shape=list(shape), **self.operator_kwargs)
        return ParameterInfo(param_id=None, param=blob, shape=shape)


class ExternalInitializer:
    """For parameters fed into the workspace by the user: adds no op."""

    def __init__(self, *unused_operator_name_and_kwargs, **unused_kwargs):
        """Takes (and ignores) an operator, so that brew's WeightInitializer=ExternalInitializer
        works through update_initializer."""

    def create_param(self, param_name, init_net: core.Net, shape) -> ParameterInfo:
        return ParameterInfo(param_id=None, param=core.BlobReference(param_name, init_net), shape=shape)


class PseudoFP16Initializer(Initializer):
    """A float16 parameter with a float32 master copy: the op fills `<name>_fp32`, and
    FloatToHalf makes the parameter from it (blob_copy {FLOAT: the master})."""

    def create_param(self, param_name, init_net: core.Net, shape) -> ParameterInfo:
        master = super().create_param(f"{param_name}_fp32", init_net, shape).blob
        param = init_net.FloatToHalf(master, str(param_name))
        return ParameterInfo(param_id=None, param=param, shape=shape,
                             blob_copy={core.DataType.FLOAT: master})


class ReversePseudoFP16Initializer(Initializer):
    """The parameter in float32, with a float16 copy `<name>_fp16` made by FloatToHalf
    (blob_copy {FLOAT16: the copy})."""

    def create_param(self, param_name, init_net: core.Net, shape) -> ParameterInfo:
        info = super().create_param(param_name, init_net, shape)
        info.blob_copy = {core.DataType.FLOAT16: init_net.FloatToHalf(info.blob, f"{param_name}_fp16")}
        return info


pFP16Initializer = PseudoFP16Initializer  # its name in older Caffe2 releases


def update_initializer(initializer_class, operator_name_and_kwargs, default_operator_name_and_kwargs):
    """An initializer of `initializer_class` (default Initializer) built with the
    ("Op", {kwargs}) tuple given, else the default tuple: so a custom class keeps the
    helper's default operator unless a tuple names another (Caffe2's rule)."""
    name, kwargs = operator_name_and_kwargs or default_operator_name_and_kwargs
    return (initializer_class or Initializer)(name, **kwargs)
