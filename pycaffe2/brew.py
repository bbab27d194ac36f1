"""Caffe2's `brew` module: helper functions that add a layer (its parameters in
`model.param_init_net`, its op in `model.net`) to a ModelHelper.

    from pycaffe2 import brew, model_helper
    model = model_helper.ModelHelper(name="cnn")
    conv1 = brew.conv(model, "data", "conv1", dim_in=1, dim_out=8, kernel=3)
    relu1 = brew.relu(model, conv1, conv1)
    with brew.arg_scope([brew.fc], weight_init=("GaussianFill", {"std": 0.01})):
        pred = brew.fc(model, relu1, "pred", dim_in=8 * 26 * 26, dim_out=10)

Every helper takes the model first. Its keyword args are, from weakest to strongest:
the model's `arg_scope` (e.g. order, use_cudnn), then the enclosing `brew.arg_scope`
blocks, then the call's own. Parameter names follow Caffe2 (`<blob_out>_w`,
`<blob_out>_b`, SpatialBN `_s _b _rm _riv`) under the current NameScope.
`brew.Register(fn)` adds a helper of your own, wrapped the same way.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import threading

from pycaffe2 import core, model_helper
from pycaffe2.control_ops_util import add_if_op, add_while_op
from pycaffe2.model_helper import ParameterTags, update_initializer
from pycaffe2.optimizer import refuse_sparse
from pycaffe2.proto import caffe2_pb2

_registry: dict = {}
_scope = threading.local()


def get_current_scope() -> dict:
    """{helper name: default kwargs} of the enclosing brew.arg_scope blocks."""
    if not hasattr(_scope, "current"):
        _scope.current = {}
    return _scope.current


@contextlib.contextmanager
def arg_scope(single_helper_or_list, **kwargs):
    """Inside the block, calls of the given helpers get `kwargs` as defaults."""
    helpers = single_helper_or_list if isinstance(single_helper_or_list, list) else [single_helper_or_list]
    if not all(callable(h) for h in helpers):
        raise TypeError("arg_scope takes a helper function or a list of them")
    saved = copy.deepcopy(get_current_scope())
    for helper in helpers:
        get_current_scope().setdefault(helper.__name__, {}).update(kwargs)
    try:
        yield
    finally:
        _scope.current = saved


def _wrap(name: str, func):
    """The public helper: merges model.arg_scope, brew.arg_scope and the call's kwargs."""
    params = inspect.signature(func).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())

    @functools.wraps(func)
    def helper(*args, **kwargs):
        model = args[0] if args else kwargs.get("model")
        if model is None or not hasattr(model, "arg_scope"):
            raise RuntimeError("The first input of helper function should be model. "
                               "Or you can provide it in kwargs as model=<your_model>.")
        merged = copy.deepcopy(model.arg_scope)
        if not takes_any:
            merged = {k: v for k, v in merged.items() if k in params}
        merged.update(get_current_scope().get(name, {}))
        merged.update(kwargs)
        return func(*args, **merged)

    helper.__name__ = name
    return helper


def Register(helper) -> None:
    """Add `helper` (a function taking the model first) as brew.<its name>."""
    name = helper.__name__
    if name in _registry:
        raise AttributeError(f"Helper {name} already exists. Please change your helper name.")
    _registry[name] = _wrap(name, helper)


def has_helper(helper_or_helper_name) -> bool:
    name = helper_or_helper_name if isinstance(helper_or_helper_name, str) else helper_or_helper_name.__name__
    return name in _registry


def __getattr__(name: str):
    """Helpers added with Register are found here."""
    try:
        return _registry[name]
    except KeyError:
        raise AttributeError(f"Helper function {name} not registered.") from None


def _helper(func):
    """Register a built-in helper under its own name and return the wrapped one."""
    Register(func)
    return _registry[func.__name__]


def _add_op(model, op_type: str, inputs, outputs, **kwargs):
    """model.net.<op_type>; like Caffe2's helpers it writes `order` on every op (the
    schemas accept it everywhere)."""
    return getattr(model.net, op_type)(inputs, outputs, **kwargs)


def _cudnn(kwargs: dict, use_cudnn: bool) -> dict:
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return kwargs


def _out_name(model, blob_out):
    """blob_out, or a fresh name (without the NameScope, which the net adds)."""
    if blob_out:
        return blob_out
    name = model.net.NextName()
    return name[len(core.CurrentNameScope()):]


# ---- layers with parameters ---------------------------------------------------------

@_helper
def fc(model, blob_in, blob_out, dim_in, dim_out, weight_init=None, bias_init=None,
       WeightInitializer=None, BiasInitializer=None, enable_tensor_core=False,
       float16_compute=False, **kwargs):
    """FC: blob_out = blob_in * W^T + b, W [dim_out, dim_in] (XavierFill), b [dim_out] (0).
    freeze_bias=True (Caffe2's kwarg) keeps b out of the trained params (a computed param)."""
    blob_out = _out_name(model, blob_out)
    w_init = update_initializer(WeightInitializer, weight_init, ("XavierFill", {}))
    b_init = update_initializer(BiasInitializer, bias_init, ("ConstantFill", {}))
    bias_tags = [ParameterTags.BIAS] + ([ParameterTags.COMPUTED_PARAM] if kwargs.pop("freeze_bias", False) else [])
    weight = model.create_param(blob_out + "_w", [dim_out, dim_in], w_init, ParameterTags.WEIGHT)
    bias = model.create_param(blob_out + "_b", [dim_out], b_init, bias_tags)
    if float16_compute:
        kwargs["float16_compute"] = True
    return _add_op(model, "FC", [blob_in, weight, bias], blob_out, **kwargs)


def _conv_base(model, op_type, blob_in, blob_out, weight_shape, dim_out, kernel, weight_init,
               bias_init, WeightInitializer, BiasInitializer, use_cudnn, cudnn_exhaustive_search,
               ws_nbytes_limit, kwargs):
    blob_out = _out_name(model, blob_out)
    w_init = update_initializer(WeightInitializer, weight_init, ("XavierFill", {}))
    b_init = update_initializer(BiasInitializer, bias_init, ("ConstantFill", {}))
    inputs = [blob_in, model.create_param(blob_out + "_w", weight_shape, w_init, ParameterTags.WEIGHT)]
    if not kwargs.pop("no_bias", 0):  # the op tells a missing bias from its input count
        inputs.append(model.create_param(blob_out + "_b", [dim_out], b_init, ParameterTags.BIAS))
    if use_cudnn:
        kwargs.update(engine="CUDNN", exhaustive_search=cudnn_exhaustive_search)
        if ws_nbytes_limit:
            kwargs["ws_nbytes_limit"] = ws_nbytes_limit
    if kernel is None:  # conv_nd passes `kernels` in kwargs
        kernel_args = {}
    elif isinstance(kernel, (list, tuple)):
        kernel_args = ({"kernel_h": kernel[0], "kernel_w": kernel[1]} if len(kernel) == 2
                       else {"kernels": list(kernel)})
    else:
        kernel_args = {"kernel": kernel}
    return _add_op(model, op_type, inputs, blob_out, **kernel_args, **kwargs)


def _check_engine(use_cudnn: bool, kwargs: dict) -> None:
    """Caffe2's conv helpers refuse an engine that contradicts use_cudnn (which the
    model's arg_scope sets to True unless told otherwise)."""
    engine = kwargs.get("engine")
    if engine is not None and use_cudnn and engine != "CUDNN":
        raise ValueError('When use_cudnn=True, the only engine you can specify is "CUDNN"')
    if engine is not None and not use_cudnn and engine == "CUDNN":
        raise ValueError('When use_cudnn=False, the only engine you can specify is ""')


def _kernel_dims(kernel) -> list:
    return list(kernel) if isinstance(kernel, (list, tuple)) else [kernel, kernel]


@_helper
def conv(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=None, bias_init=None,
         WeightInitializer=None, BiasInitializer=None, group=1, transform_inputs=None,
         use_cudnn=False, order="NCHW", cudnn_exhaustive_search=False, ws_nbytes_limit=None,
         float16_compute=False, **kwargs):
    """2-D Conv; the filter is [dim_out, dim_in/group, kh, kw] (NCHW) or [dim_out, kh, kw,
    dim_in/group] (NHWC). no_bias=1 leaves out the bias."""
    _check_engine(use_cudnn, kwargs)
    kernels = _kernel_dims(kernel)
    per_group = int(dim_in / group)
    shape = [dim_out, per_group, *kernels] if order == "NCHW" else [dim_out, *kernels, per_group]
    if group != 1:
        kwargs["group"] = group
    if float16_compute:
        kwargs["float16_compute"] = True
    if transform_inputs is not None:
        raise NotImplementedError("conv(transform_inputs=...) is not supported")
    return _conv_base(model, "Conv", blob_in, blob_out, shape, dim_out, kernel, weight_init,
                      bias_init, WeightInitializer, BiasInitializer, use_cudnn,
                      cudnn_exhaustive_search, ws_nbytes_limit, dict(kwargs, order=order))


@_helper
def conv_nd(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=None, bias_init=None,
            WeightInitializer=None, BiasInitializer=None, group=1, use_cudnn=False,
            order="NCHW", cudnn_exhaustive_search=False, ws_nbytes_limit=None, **kwargs):
    """N-D Conv: `kernel` is a list with one size per spatial axis (NCHW filter layout)."""
    _check_engine(use_cudnn, kwargs)
    kernels = list(kernel) if isinstance(kernel, (list, tuple)) else [kernel]
    shape = [dim_out, int(dim_in / group), *kernels]
    if group != 1:
        kwargs["group"] = group
    return _conv_base(model, "Conv", blob_in, blob_out, shape, dim_out, None, weight_init,
                      bias_init, WeightInitializer, BiasInitializer, use_cudnn,
                      cudnn_exhaustive_search, ws_nbytes_limit,
                      dict(kwargs, order=order, kernels=kernels))


@_helper
def group_conv(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=None,
               bias_init=None, group=1, **kwargs):
    """Grouped convolution (conv with `group`)."""
    return conv(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=weight_init,
                bias_init=bias_init, group=group, **kwargs)


@_helper
def conv_transpose(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=None,
                   bias_init=None, use_cudnn=False, order="NCHW",
                   cudnn_exhaustive_search=False, ws_nbytes_limit=None, **kwargs):
    """ConvTranspose; the filter is [dim_in, dim_out, k, k] (NCHW) or [dim_in, k, k, dim_out]."""
    kernels = _kernel_dims(kernel)
    shape = [dim_in, dim_out, *kernels] if order == "NCHW" else [dim_in, *kernels, dim_out]
    return _conv_base(model, "ConvTranspose", blob_in, blob_out, shape, dim_out, kernel,
                      weight_init, bias_init, None, None, use_cudnn, cudnn_exhaustive_search,
                      ws_nbytes_limit, dict(kwargs, order=order))


@_helper
def spatial_bn(model, blob_in, blob_out, dim_in, init_scale=1.0, init_bias=0.0,
               ScaleInitializer=None, BiasInitializer=None, RunningMeanInitializer=None,
               RunningVarianceInitializer=None, order="NCHW", **kwargs):
    """SpatialBN with scale `_s` (init_scale), bias `_b` (init_bias) and running mean and
    variance `_rm` (0) and `_riv` (1), the last two computed params. Training writes the
    running stats in place and the saved mean `_sm` and inverse std `_siv`; with is_test=1
    the op has one output."""
    blob_out = _out_name(model, blob_out)

    def param(suffix, initializer, value, tags):
        init = update_initializer(initializer, None, ("ConstantFill", {"value": value}))
        return model.create_param(f"{blob_out}_{suffix}", [dim_in], init, tags)

    scale = param("s", ScaleInitializer, init_scale, ParameterTags.WEIGHT)
    bias = param("b", BiasInitializer, init_bias, ParameterTags.BIAS)
    running_mean = param("rm", RunningMeanInitializer, 0.0, ParameterTags.COMPUTED_PARAM)
    running_var = param("riv", RunningVarianceInitializer, 1.0, ParameterTags.COMPUTED_PARAM)
    inputs = [blob_in, scale, bias, running_mean, running_var]
    if kwargs.get("is_test"):
        return _add_op(model, "SpatialBN", inputs, [blob_out], order=order, **kwargs)
    outputs = [blob_out, running_mean, running_var, blob_out + "_sm", blob_out + "_siv"]
    return _add_op(model, "SpatialBN", inputs, outputs, order=order, **kwargs)[0]


@_helper
def instance_norm(model, blob_in, blob_out, dim_in, order="NCHW", **kwargs):
    """InstanceNorm with scale `_s` (1) and bias `_b` (0); saved `_sm`, `_siv` unless is_test."""
    blob_out = _out_name(model, blob_out)
    scale = model.create_param(blob_out + "_s", [dim_in], ("ConstantFill", {"value": 1.0}),
                               ParameterTags.WEIGHT)
    bias = model.create_param(blob_out + "_b", [dim_in], ("ConstantFill", {"value": 0.0}),
                              ParameterTags.BIAS)
    if kwargs.pop("is_test", False):
        return _add_op(model, "InstanceNorm", [blob_in, scale, bias], [blob_out], order=order, **kwargs)
    outputs = [blob_out, blob_out + "_sm", blob_out + "_siv"]
    return _add_op(model, "InstanceNorm", [blob_in, scale, bias], outputs, order=order, **kwargs)[0]


@_helper
def prelu(model, blob_in, blob_out, num_channels=1, slope_init=None, **kwargs):
    """PRelu with a learned slope `_slope` of num_channels values (0.25 by default)."""
    init = slope_init or ("ConstantFill", {"value": 0.25})
    slope = model.create_param(blob_out + "_slope", [num_channels], init)
    return _add_op(model, "PRelu", [blob_in, slope], [blob_out])


# ---- layers without parameters ------------------------------------------------------

def _simple(name: str, op_type: str, doc: str):
    """A helper for a one-input op without params: (model, blob_in, blob_out, use_cudnn, order)."""
    def helper(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
        return _add_op(model, op_type, blob_in, blob_out, order=order, **_cudnn(kwargs, use_cudnn))
    helper.__name__, helper.__qualname__, helper.__doc__ = name, name, doc
    return _helper(helper)


relu = _simple("relu", "Relu", "Relu: max(x, 0).")
tanh = _simple("tanh", "Tanh", "Tanh.")
sigmoid = _simple("sigmoid", "Sigmoid", "Sigmoid.")
max_pool = _simple("max_pool", "MaxPool", "Max pooling (kernel, stride, pad... as for MaxPool).")
average_pool = _simple("average_pool", "AveragePool", "Average pooling (args as for AveragePool).")


@_helper
def leaky_relu(model, blob_in, blob_out, **kwargs):
    """LeakyRelu (alpha defaults to the op's 0.01)."""
    return _add_op(model, "LeakyRelu", blob_in, blob_out, **kwargs)


@_helper
def softmax(model, blob_in, blob_out=None, use_cudnn=False, **kwargs):
    """Softmax (along `axis`, default 1)."""
    return _add_op(model, "Softmax", blob_in, blob_out, **_cudnn(kwargs, use_cudnn))


@_helper
def dropout(model, blob_in, blob_out, use_cudnn=False, **kwargs):
    """Dropout (ratio, is_test); the mask goes to `_<blob_out>_mask`."""
    outputs = [blob_out, "_" + blob_out + "_mask"]
    return _add_op(model, "Dropout", blob_in, outputs, **_cudnn(kwargs, use_cudnn))[0]


@_helper
def lrn(model, blob_in, blob_out, order="NCHW", use_cudnn=False, **kwargs):
    """LRN (size, alpha, beta, bias); the scale goes to `_<blob_out>_scale`."""
    device = kwargs.get("device_option", core.CurrentDeviceScope())
    on_gpu = device is not None and device.device_type != caffe2_pb2.PROTO_CPU
    if use_cudnn and on_gpu:  # cuDNN's LRN has no scale output
        return _add_op(model, "LRN", blob_in, blob_out, order=order, engine="CUDNN", **kwargs)
    outputs = [blob_out, "_" + blob_out + "_scale"]
    return _add_op(model, "LRN", blob_in, outputs, order=order, **kwargs)[0]


@_helper
def concat(model, blobs_in, blob_out, **kwargs):
    """Concat along `axis` (or the channel axis of `order`); sizes go to `_<blob_out>_concat_dims`."""
    if "axis" in kwargs:
        kwargs.pop("order", None)  # the op refuses both
    outputs = [blob_out, "_" + blob_out + "_concat_dims"]
    return _add_op(model, "Concat", blobs_in, outputs, **kwargs)[0]


@_helper
def depth_concat(model, blobs_in, blob_out, **kwargs):
    """Old name of concat."""
    return concat(model, blobs_in, blob_out, **kwargs)


@_helper
def sum(model, blob_in, blob_out, **kwargs):  # Caffe2's name, shadowing the builtin
    """Sum of the input blobs."""
    return _add_op(model, "Sum", blob_in, blob_out, **kwargs)


@_helper
def transpose(model, blob_in, blob_out, use_cudnn=False, **kwargs):
    """Transpose (axes)."""
    return _add_op(model, "Transpose", blob_in, blob_out, **_cudnn(kwargs, use_cudnn))


# ---- input ---------------------------------------------------------------------------

@_helper
def db_input(model, blobs_out, batch_size, db, db_type):
    """Batches of the records of the DB `db` (TensorProtos, one tensor per blob of
    blobs_out), from a reader blob `dbreader_<db>` that param_init_net opens."""
    return model_helper.db_input(model, blobs_out, batch_size, db, db_type)


# ---- training -----------------------------------------------------------------------

@_helper
def iter(model, blob_out, **kwargs):  # Caffe2's name, shadowing the builtin
    """An int64 iteration counter: 0 in param_init_net, +1 per run of net."""
    kwargs.pop("device_option", None)
    kwargs.pop("order", None)
    model.param_init_net.ConstantFill([], blob_out, shape=[1], value=0, dtype=caffe2_pb2.TensorProto.INT64,
                                      device_option=core.DeviceOption(caffe2_pb2.PROTO_CPU, 0))
    return _add_op(model, "Iter", blob_out, blob_out)


@_helper
def accuracy(model, blob_in, blob_out, **kwargs):
    """Accuracy of predictions blob_in[0] against labels blob_in[1] (top_k)."""
    args = {k: v for k, v in kwargs.items() if k in ("top_k", "device_option")}
    return _add_op(model, "Accuracy", blob_in, blob_out, **args)


# ---- image input (beside db_input) --------------------------------------------------

@_helper
def image_input(model, blob_in, blob_out, order="NCHW", use_gpu_transform=False, **kwargs):
    """ImageInput (data, label) from the reader blob_in; with order NCHW the NHWC data goes
    to `<data>_nhwc` and NHWC2NCHW makes `data` (use_gpu_transform: the op's own, refused
    on the CPU)."""
    if order == "NCHW" and not use_gpu_transform:
        data, label = model.net.ImageInput(blob_in, [blob_out[0] + "_nhwc", blob_out[1]], **kwargs)
        return model.net.NHWC2NCHW(data, blob_out[0]), label
    if use_gpu_transform:
        kwargs["use_gpu_transform"] = 1
    return tuple(model.net.ImageInput(blob_in, blob_out, **kwargs))


def _weights(model, namescope=None) -> list:
    namescope = core.CurrentNameScope() if namescope is None else namescope
    return [w for w in model.weights if str(w).startswith(namescope)]


@_helper
def add_weight_decay(model, weight_decay):
    """L2 regularisation: grad += weight_decay * param for every weight (call it after
    AddGradientOperators)."""
    if weight_decay <= 0.0:
        return
    wd = model.param_init_net.ConstantFill([], "wd", shape=[1], value=weight_decay)
    one = model.param_init_net.ConstantFill([], "ONE", shape=[1], value=1.0)
    for param in _weights(model):
        grad = model.param_to_grad[param]
        refuse_sparse("brew.add_weight_decay", param, grad)
        model.net.WeightedSum([grad, one, param, wd], grad)


@_helper
def batch_mat_mul(model, blob_in, blob_out, enable_tensor_core=False, **kwargs):
    if enable_tensor_core:
        kwargs["engine"] = "TENSORCORE"
    return _add_op(model, "BatchMatMul", blob_in, blob_out, **kwargs)


@_helper
def layer_norm(model, blob_in, blob_out, dim_in, axis=1, epsilon=1e-4, initial_scale=1.0, initial_bias=0.0):
    """LayerNorm's z-shift, then a learned scale (weight) and bias, both [dim_in], applied
    from `axis` on. Returns (the output, the mean, the std)."""
    normalized, mean, std = model.net.LayerNorm(
        [blob_in], [blob_out, blob_out + "_mean", blob_out + "_stdev"], axis=axis, epsilon=epsilon)
    scale = model.create_param(f"{blob_out}_scale", [dim_in], ("ConstantFill", {"value": initial_scale}),
                               ParameterTags.WEIGHT)
    bias = model.create_param(f"{blob_out}_bias", [dim_in], ("ConstantFill", {"value": initial_bias}),
                              ParameterTags.BIAS)
    scaled = model.net.Mul([normalized, scale], [f"{blob_out}_scaled"], broadcast=1, axis=axis)
    return model.net.Add([scaled, bias], [f"{blob_out}_biased"], broadcast=1, axis=axis), mean, std


@_helper
def elementwise_linear(model, blob_in, blob_out, dim, weight_init=None, bias_init=None, **kwargs):
    """ElementwiseLinear with learned scales `<blob_out>_w` (ones) and shifts `<blob_out>_b`
    (zeros), both [dim]; weight_init / bias_init are ("Op", {kwargs}) fillers."""
    blob_out = _out_name(model, blob_out)
    weight = model.create_param(f"{blob_out}_w", [dim], weight_init or ("ConstantFill", {"value": 1.0}),
                                ParameterTags.WEIGHT)
    bias = model.create_param(f"{blob_out}_b", [dim], bias_init or ("ConstantFill", {"value": 0.0}),
                              ParameterTags.BIAS)
    return model.net.ElementwiseLinear([blob_in, weight, bias], blob_out, **kwargs)


@_helper
def cond(model, cond_blob, external_blobs, then_model, else_model=None):
    """An If op in model.net running then_model's net (or else_model's) in a Do scope;
    `external_blobs` are the outer blobs the branches may read and write."""
    add_if_op(model.net, cond_blob, external_blobs, then_model.net, else_model.net if else_model else None)


@_helper
def loop(model, cond_blob, external_blobs, loop_model, cond_model=None):
    """A While op in model.net running loop_model's net while cond_blob holds
    (cond_model's net recomputes it before every pass)."""
    add_while_op(model.net, cond_blob, external_blobs, loop_model.net, cond_model.net if cond_model else None)
