"""Caffe2's `model_helper` module: ModelHelper, a pair of nets plus the parameters
that brew helpers create.

    from pycaffe2 import brew, model_helper, workspace
    model = model_helper.ModelHelper(name="mlp")
    fc1 = brew.fc(model, "data", "fc1", dim_in=4, dim_out=8)
    model.AddGradientOperators([brew.softmax(model, fc1, "prob")])
    workspace.RunNetOnce(model.param_init_net)

`param_init_net` fills the parameters, `net` is the model; ops without params are
forwarded to `net` (`model.Relu(...)`). Parameters are kept in creation order in
`params` (with `weights` and `biases` as views by tag); running statistics such as
SpatialBN's are "computed params", kept apart because no optimizer updates them.
"""
from __future__ import annotations

from pycaffe2 import core
from pycaffe2.schema import get_schema

__all__ = ["ExternalInitializer", "ExtractPredictorNet", "Initializer", "ModelHelper", "ParameterTags",
           "update_initializer"]


class ParameterTags:
    """Caffe2's tags for a parameter's role."""
    BIAS = "BIAS"
    WEIGHT = "WEIGHT"
    COMPUTED_PARAM = "COMPUTED_PARAM"


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

    def create_param(self, param_name, init_net: core.Net, shape) -> core.BlobReference:
        fill = getattr(init_net, self.operator_name)
        return fill([], param_name, shape=list(shape), **self.operator_kwargs)


class ExternalInitializer:
    """For parameters fed into the workspace by the user: adds no op."""

    def create_param(self, param_name, init_net: core.Net, shape) -> core.BlobReference:
        return core.BlobReference(param_name, init_net)


def update_initializer(initializer_class, operator_name_and_kwargs, default_operator_name_and_kwargs):
    """Caffe2's rule: an initializer class and a ("Op", {kwargs}) tuple exclude each other;
    with neither, the default tuple is used."""
    if initializer_class is not None and operator_name_and_kwargs is not None:
        raise ValueError("give either an initializer class or an (operator, kwargs) tuple, not both")
    if initializer_class is not None:
        return initializer_class(default_operator_name_and_kwargs[0], **default_operator_name_and_kwargs[1])
    name, kwargs = operator_name_and_kwargs or default_operator_name_and_kwargs
    return Initializer(name, **kwargs)


def db_input(model, blobs_out, batch_size, db, db_type, **kwargs):
    """Caffe2's db_input helper (here so that model_helper need not import brew): a CreateDB
    reader blob `dbreader_<db>` in param_init_net, and TensorProtosDBInput in net."""
    reader = model.param_init_net.CreateDB([], f"dbreader_{db}", db=db, db_type=db_type)
    return model.net.TensorProtosDBInput(reader, blobs_out, batch_size=batch_size, **kwargs)


def _namescope(blob) -> str:
    """The NameScope part of a blob name: everything up to and including the last '/'."""
    head, sep, _ = str(blob).rpartition("/")
    return head + sep


class ModelHelper:
    """Caffe2's ModelHelper: `net`, `param_init_net`, `params` and the gradient map."""

    def __init__(self, name: str | None = None, init_params: bool = True,
                 allow_not_known_ops: bool = True, skip_sparse_optim: bool = False,
                 param_model: ModelHelper | None = None, arg_scope: dict | None = None):
        self.name = name or "model"
        self.net = core.Net(self.name)
        if param_model is not None:  # share the parameters (and their init net) of another model
            self.param_init_net = param_model.param_init_net
            self.param_to_grad = param_model.param_to_grad
            self.params = param_model.params
            self._computed_params = param_model._computed_params
            self._param_tags = param_model._param_tags
        else:
            self.param_init_net = core.Net(self.name + "_init")
            self.param_to_grad: dict = {}
            self.params: list = []
            self._computed_params: list = []
            self._param_tags: dict = {}
        self.init_params = init_params
        self.allow_not_known_ops = allow_not_known_ops
        self.skip_sparse_optim = skip_sparse_optim
        self.gradient_ops_added = False
        self.grad_map: dict = {}
        self._arg_scope = {"order": "NCHW", "use_cudnn": True, "cudnn_exhaustive_search": False}
        if arg_scope is not None:
            self._arg_scope.update(arg_scope)

    @property
    def arg_scope(self) -> dict:
        """Default keyword args given to every brew helper called on this model."""
        return self._arg_scope

    @property
    def weights(self) -> list:
        return [p for p in self.params if ParameterTags.WEIGHT in self._param_tags.get(str(p), ())]

    @property
    def biases(self) -> list:
        return [p for p in self.params if ParameterTags.BIAS in self._param_tags.get(str(p), ())]

    @property
    def computed_params(self) -> list:
        return self._computed_params

    def AddParameter(self, param, tags=None) -> None:
        """Record `param` (a BlobReference) under `tags`; COMPUTED_PARAM keeps it out of params."""
        tags = {tags} if isinstance(tags, str) else set(tags or ())
        self._param_tags[str(param)] = tags
        if ParameterTags.COMPUTED_PARAM in tags:
            self._computed_params.append(param)
        else:
            self.params.append(param)

    def create_param(self, param_name, shape, initializer, tags=None) -> core.BlobReference:
        """Create (once) the parameter `param_name` in param_init_net. A plain string is put
        under the current NameScope; `initializer` is an Initializer or an ("Op", {kwargs})
        tuple. Asking again for an existing name returns the existing blob."""
        if not isinstance(param_name, core.BlobReference):
            param_name = core.ScopedName(param_name)
        for existing in self.params + self._computed_params:
            if str(existing) == str(param_name):
                return existing
        if isinstance(initializer, tuple):
            initializer = Initializer(initializer[0], **initializer[1])
        if not self.init_params:
            initializer = ExternalInitializer()
        blob = initializer.create_param(core.BlobReference(param_name, self.param_init_net),
                                        self.param_init_net, shape)
        self.AddParameter(blob, tags)
        return blob

    def GetParams(self, namescope: str | None = None, top_scope: bool = False) -> list:
        """The params under `namescope` (by default the current NameScope; '' means all)."""
        if namescope is None:
            namescope = core.CurrentNameScope()
        elif namescope and not namescope.endswith("/"):
            namescope += "/"
        return [p for p in self.params if _namescope(p).startswith(namescope)]

    def GetComputedParams(self, namescope: str | None = None) -> list:
        if namescope is None:
            namescope = core.CurrentNameScope()
        elif namescope and not namescope.endswith("/"):
            namescope += "/"
        return [p for p in self._computed_params if _namescope(p).startswith(namescope)]

    def GetAllParams(self, namescope: str | None = None) -> list:
        return self.GetParams(namescope) + self.GetComputedParams(namescope)

    def Validate(self) -> None:
        names = [str(p) for p in self.params + self._computed_params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Model {self.name}: duplicate params {duplicates}")

    def AddGradientOperators(self, ys, skip: int = 0, block=(), params=None) -> dict:
        """Append the backward pass to `net` (arguments as core.Net.AddGradientOperators,
        `block=` included; `params=` defaults to the model's params), set `param_to_grad`
        and return the whole {blob: gradient} map."""
        if self.gradient_ops_added:
            raise RuntimeError("You cannot run AddGradientOperators twice.")
        self.Validate()
        params = [str(p) for p in self.params] if params is None else params
        self.gradient_ops_added = True
        self.grad_map = self.net.AddGradientOperators(ys, skip, block, params)
        self.param_to_grad = self.get_param_to_grad(self.params)
        return self.grad_map

    def get_param_to_grad(self, params) -> dict:
        """{param: gradient blob} for those of `params` that the backward pass reached."""
        if not self.gradient_ops_added:
            raise RuntimeError("You need to run AddGradientOperators first.")
        return {p: self.grad_map[str(p)] for p in params if str(p) in self.grad_map}

    def GetOptimizationParamInfo(self, params=None) -> list:
        """(param, gradient) pairs of the params that have a gradient."""
        params = self.params if params is None else params
        return [(p, self.param_to_grad[p]) for p in params if p in self.param_to_grad]

    def TensorProtosDBInput(self, unused_blob_in, blob_out, batch_size, db, db_type, **kwargs):
        """Reads batches from the DB `db` (brew.db_input): a reader made once in
        param_init_net, and TensorProtosDBInput in net. For an op reading a reader
        blob of your own, use model.net.TensorProtosDBInput."""
        if unused_blob_in:
            raise ValueError("model.TensorProtosDBInput makes its own DB reader and takes no input blob; "
                             "use model.net.TensorProtosDBInput to read from a reader of your own")
        return db_input(self, blob_out, batch_size, db, db_type, **kwargs)

    def Proto(self):
        return self.net.Proto()

    def InitProto(self):
        return self.param_init_net.Proto()

    def get_name(self) -> str:
        return self.name

    def RunAllOnGPU(self, *args, **kwargs) -> None:
        """Both nets on the GPU (core.Net.RunAllOnGPU's arguments)."""
        self.param_init_net.RunAllOnGPU(*args, **kwargs)
        self.net.RunAllOnGPU(*args, **kwargs)

    def GetDevices(self) -> list:
        """The devices data_parallel_model spread the model over."""
        if not getattr(self, "_devices", None):
            raise ValueError("the model is on no devices yet: use data_parallel_model to run it on several")
        return self._devices

    def CreateDB(self, blob_out, db, db_type, **kwargs):
        """A DB reader made in param_init_net."""
        return self.param_init_net.CreateDB([], blob_out, db=db, db_type=db_type, **kwargs)

    def __getattr__(self, op_type: str):
        """Ops without parameters go straight to `net`: model.Relu("x", "y")."""
        if op_type.startswith("_") or get_schema(op_type) is None:
            raise AttributeError(f"{type(self).__name__} has no attribute or op type {op_type!r}")
        return getattr(self.net, op_type)


def ExtractPredictorNet(net_proto, input_blobs, output_blobs, device=None, renames=None, disabled_inputs=None):
    """A prediction net cut from a (test-mode) model net: the ops from the first that reads
    an input to the last that writes an output, keeping those whose inputs are known (the
    net's external inputs and `input_blobs`, less `disabled_inputs`); so gradient and
    data-reading ops drop out. `device` is set on every op, `renames` renames blobs.
    Returns (the net, its external inputs that are not input_blobs: the parameters)."""
    renames = renames or {}
    inputs, outputs = [str(b) for b in input_blobs], {str(b) for b in output_blobs}
    original_inputs, original_outputs = set(net_proto.external_input), set(net_proto.external_output)
    known = (original_inputs | set(inputs)) - set(disabled_inputs or ())
    ops = list(net_proto.op)
    firsts = [j for j, op in enumerate(ops) if set(inputs) & set(op.input) and op.type != "StopGradient"]
    lasts = [j for j, op in enumerate(ops) if outputs & set(op.output)]
    if not firsts or not lasts:
        raise ValueError(f"ExtractPredictorNet: no op reads {sorted(inputs)}" if not firsts
                         else f"ExtractPredictorNet: no op writes {sorted(outputs)}")
    predict_net = core.Net(net_proto.name + "_predict")
    proto = predict_net.Proto()
    external_in, external_out = list(inputs), [o for o in outputs]

    def add(names, into):
        into.extend(n for n in names if n not in into)

    def on_device(op):
        if device is not None:
            op.device_option.device_type, op.device_option.device_id = device.device_type, device.device_id

    for original in ops[min(firsts):max(lasts) + 1]:
        if not known.issuperset(original.input):
            continue
        if any(a.name == "is_test" and a.i == 0 for a in original.arg):
            raise ValueError(f"ExtractPredictorNet: op {original.type} has is_test=0: extract the "
                             "predictor from a test model, not a training one")
        op = proto.op.add()
        op.CopyFrom(original)
        on_device(op)
        if op.type == "RecurrentNetwork":  # the step net runs too: rename and place its ops
            for arg in op.arg:
                if arg.name == "backward_step_net":
                    arg.ClearField("n")
                elif arg.name == "step_net":
                    for step_op in arg.n.op:
                        on_device(step_op)
                    _rename(arg.n, renames)
                    add([b for b in arg.n.external_input if b in original_inputs], external_in)
        known.update(op.output)
        add([b for b in op.input if b in original_inputs], external_in)
        add([b for b in op.output if b in original_outputs], external_out)
    proto.external_input.extend(external_in)
    proto.external_output.extend(external_out)
    _rename(proto, renames)
    renamed_inputs = {renames.get(b, b) for b in inputs}
    return predict_net, [b for b in proto.external_input if b not in renamed_inputs]


def _rename(net_proto, renames: dict) -> None:
    """Rename blobs in a NetDef's ops and external inputs and outputs, in place."""
    for names in [net_proto.external_input, net_proto.external_output,
                  *[field for op in net_proto.op for field in (op.input, op.output)]]:
        names[:] = [renames.get(b, b) for b in names]
