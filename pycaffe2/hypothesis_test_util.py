"""Caffe2's `hypothesis_test_util` ("hu") over pycaffe2: strategies, device options
and HypothesisTestCase, so Caffe2-style property tests run unchanged.

    import pycaffe2.hypothesis_test_util as hu

    class TestRelu(hu.HypothesisTestCase):
        @given(X=hu.tensor(), **hu.gcs)
        def test_relu(self, X, gc, dc):
            op = core.CreateOperator("Relu", ["X"], ["Y"])
            self.assertReferenceChecks(gc, op, [X], lambda x: (np.maximum(x, 0),))
            self.assertGradientChecks(gc, op, [X], 0, [0])

Needs hypothesis, a test-only dependency (`pip install hypothesis`, or the
package's `test` extra). Without a working GPU the device lists hold the CPU
only, so `gcs` draws CPU device options and GPU-only tests skip as Caffe2's do.
"""
from __future__ import annotations

import contextlib
import functools
import os

import numpy as np

try:
    import hypothesis
    import hypothesis.extra.numpy as hnp
    import hypothesis.strategies as st
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("pycaffe2.hypothesis_test_util needs hypothesis: pip install hypothesis") from error

from pycaffe2 import workspace
from pycaffe2.device_checker import DeviceChecker, placed_on
from pycaffe2.gradient import GetBackwardPass, GradientSlice
from pycaffe2.gradient_checker import GradientChecker
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import infer_op
from pycaffe2.schema.inference import TensorInfo
from pycaffe2.test_util import TestCase


def is_sandcastle() -> bool:
    return os.environ.get("SANDCASTLE") == "1"


def is_travis() -> bool:
    return "TRAVIS" in os.environ


# Profiles under Caffe2's names; CAFFE2_HYPOTHESIS_PROFILE picks one (none is loaded otherwise).
hypothesis.settings.register_profile("sandcastle", max_examples=100, deadline=None, derandomize=True)
hypothesis.settings.register_profile("dev", max_examples=10, deadline=None)
hypothesis.settings.register_profile("debug", max_examples=1000, deadline=None,
                                     verbosity=hypothesis.Verbosity.verbose)
if os.environ.get("CAFFE2_HYPOTHESIS_PROFILE"):
    hypothesis.settings.load_profile(os.environ["CAFFE2_HYPOTHESIS_PROFILE"])


# --- strategies ------------------------------------------------------------

def dims(min_value: int = 1, max_value: int = 5):
    return st.integers(min_value=min_value, max_value=max_value)


_FLOAT_WIDTH = {np.float16: 16, np.float32: 32, np.float64: 64}
_INT_MAX = {np.int32: 2 ** 31 - 1, np.int64: 2 ** 63 - 1}


def elements_of_type(dtype=np.float32, filter_=None):
    """Floats in [-1, 1] of the dtype's width, non-negative ints, or booleans."""
    dtype = np.dtype(dtype).type
    if dtype in _FLOAT_WIDTH:
        elements = st.floats(min_value=-1.0, max_value=1.0, width=_FLOAT_WIDTH[dtype])
    elif dtype in _INT_MAX:
        elements = st.integers(min_value=0, max_value=_INT_MAX[dtype])
    elif dtype is np.bool_:
        elements = st.booleans()
    else:
        raise ValueError(f"no default elements for dtype {np.dtype(dtype).name}: pass elements=")
    return elements if filter_ is None else elements.filter(filter_)


def arrays(dims, dtype=np.float32, elements=None, unique: bool = False):
    return hnp.arrays(dtype, dims, elements=elements if elements is not None else elements_of_type(dtype),
                      unique=unique)


def _shapes(min_dim: int, max_dim: int, **dim_bounds):
    return st.lists(dims(**dim_bounds), min_size=min_dim, max_size=max_dim)


def tensor(min_dim: int = 1, max_dim: int = 4, dtype=np.float32, elements=None, unique: bool = False,
           **dim_bounds):
    """One array of min_dim..max_dim dimensions, each dims(**dim_bounds) long."""
    return _shapes(min_dim, max_dim, **dim_bounds).flatmap(
        lambda shape: arrays(shape, dtype, elements, unique=unique))


def tensor1d(min_len: int = 1, max_len: int = 64, dtype=np.float32, elements=None):
    return tensor(1, 1, dtype, elements, min_value=min_len, max_value=max_len)


def tensors(n: int, min_dim: int = 1, max_dim: int = 4, dtype=np.float32, elements=None, **dim_bounds):
    """A list of n arrays of one shape."""
    return _shapes(min_dim, max_dim, **dim_bounds).flatmap(
        lambda shape: st.lists(arrays(shape, dtype, elements), min_size=n, max_size=n))


def tensors1d(n: int, min_len: int = 1, max_len: int = 64, dtype=np.float32, elements=None):
    return tensors(n, 1, 1, dtype, elements, min_value=min_len, max_value=max_len)


def segment_ids(size: int, is_sorted: bool):
    """int32 segment ids for `size` rows: sorted ones start at 0 and step by 0 or 1."""
    if size == 0:
        return st.just(np.empty(shape=[0], dtype=np.int32))
    if is_sorted:
        steps = arrays([size], dtype=np.int32, elements=st.booleans())
        return steps.map(lambda x: np.cumsum(x, dtype=np.int32) - x[0])
    return arrays([size], dtype=np.int32, elements=st.integers(min_value=0, max_value=2 * size))


def lengths(size: int, min_segments=None, max_segments=None, **kwargs):
    """int32 segment lengths that add up to `size`."""
    min_segments = 0 if min_segments is None else min_segments
    max_segments = size if max_segments is None else max_segments
    if not 0 <= min_segments <= max_segments:
        raise ValueError(f"need 0 <= min_segments ({min_segments}) <= max_segments ({max_segments})")
    if size == 0 and max_segments == 0:
        return st.just(np.empty(shape=[0], dtype=np.int32))
    if max_segments <= 0:
        raise ValueError(f"{size} rows need at least one segment")

    def from_cuts(cuts):
        return np.diff(np.sort(np.concatenate([cuts, [0, size]]))).astype(np.int32)

    count = st.integers(min_value=max(min_segments, 1), max_value=max_segments)
    return count.flatmap(lambda n: hnp.arrays(np.int32, n - 1, elements=st.integers(0, size))).map(from_cuts)


def _maybe_empty(allow_empty: bool):
    return st.booleans() if allow_empty else st.just(False)


def segmented_tensor(min_dim: int = 1, max_dim: int = 4, dtype=np.float32, is_sorted: bool = True,
                     elements=None, segment_generator=segment_ids, allow_empty: bool = False, **dim_bounds):
    """(data, segments of its rows); with allow_empty, data may have 0 rows."""
    shapes = st.tuples(_maybe_empty(allow_empty), _shapes(min_dim, max_dim, **dim_bounds)).map(
        lambda pair: ([0] if pair[0] else []) + pair[1])
    return shapes.flatmap(lambda shape: st.tuples(
        arrays(shape, dtype, elements), segment_generator(shape[0], is_sorted=is_sorted)))


def lengths_tensor(min_segments=None, max_segments=None, *args, **kwargs):
    generator = functools.partial(lengths, min_segments=min_segments, max_segments=max_segments)
    return segmented_tensor(*args, segment_generator=generator, **kwargs)


def sparse_segmented_tensor(min_dim: int = 1, max_dim: int = 4, dtype=np.float32, is_sorted: bool = True,
                            elements=None, allow_empty: bool = False, segment_generator=segment_ids,
                            itype=np.int64, **dim_bounds):
    """(data, indices into its rows, segments of the indices)."""
    def with_count(pair):
        empty, shape = pair
        count = st.just(0) if empty else st.integers(min_value=1, max_value=shape[0])
        return st.tuples(st.just(shape), count)

    shapes = st.tuples(_maybe_empty(allow_empty), _shapes(min_dim, max_dim, **dim_bounds)).flatmap(with_count)
    return shapes.flatmap(lambda sc: st.tuples(
        arrays(sc[0], dtype, elements),
        arrays(sc[1], dtype=itype, elements=st.integers(min_value=0, max_value=sc[0][0] - 1)),
        segment_generator(sc[1], is_sorted=is_sorted)))


def sparse_lengths_tensor(**kwargs):
    generator = functools.partial(lengths, min_segments=kwargs.pop("min_segments", None),
                                  max_segments=kwargs.pop("max_segments", None))
    return sparse_segmented_tensor(segment_generator=generator, **kwargs)


# --- device options --------------------------------------------------------

cpu_do = caffe2_pb2.DeviceOption()
cuda_do = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
hip_do = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_HIP)
gpu_do = caffe2_pb2.DeviceOption(device_type=workspace.GpuDeviceType)
_cuda_do_list = [cuda_do] if workspace.has_cuda_support else []
_gpu_do_list = [gpu_do] if workspace.has_gpu_support else []
_hip_do_list = []  # pycaffe2 has no HIP device
device_options = [cpu_do] + _gpu_do_list
expanded_device_options = [cpu_do] + [caffe2_pb2.DeviceOption(device_type=workspace.GpuDeviceType, device_id=i)
                                      for i in range(workspace.NumGpuDevices())]


def _gcs(options) -> dict:
    """`gc`: one device option to test on; `dc`: all of them, for device checks."""
    return {"gc": st.sampled_from(options), "dc": st.just(options)}


gcs = _gcs(device_options)
gcs_cpu_only = _gcs([cpu_do])
gcs_cuda_only = _gcs(_cuda_do_list)
gcs_gpu_only = _gcs(_gpu_do_list)
gcs_no_hip = _gcs([cpu_do] + _cuda_do_list)


@contextlib.contextmanager
def temp_workspace(name=b"temp_ws"):
    """Run the block in a fresh workspace `name`, then go back to the current one."""
    name = name.decode() if isinstance(name, bytes) else str(name)
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace(name, True)
    workspace.ResetWorkspace()
    try:
        yield
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)


def _feed(op, inputs, device_option, input_device_options) -> None:
    input_device_options = input_device_options or {}
    for name, value in zip(op.input, inputs):
        workspace.FeedBlob(name, value, input_device_options.get(name, device_option))


def runOpOnInput(device_option, op, inputs, input_device_options=None) -> list:
    """The op's outputs (name order) after running it once on `inputs`."""
    op = placed_on(op, device_option)
    with temp_workspace():
        _feed(op, inputs, device_option, input_device_options)
        workspace.RunOperatorOnce(op)
        return [workspace.FetchBlob(name) for name in op.output]


class HypothesisTestCase(TestCase):
    """Caffe2's assert*Checks on pycaffe2 workspaces."""

    def assertDeviceChecks(self, device_options, op, inputs, outputs_to_check, input_device_options=None,
                           threshold: float = 0.01):
        checker = DeviceChecker(threshold, device_options=device_options)
        self.assertTrue(checker.CheckSimple(op, inputs, outputs_to_check, input_device_options))

    def assertGradientChecks(self, device_option, op, inputs, outputs_to_check, outputs_with_grads,
                             grad_ops=None, threshold: float = 0.005, stepsize: float = 0.05,
                             input_device_options=None, ensure_outputs_are_inferred: bool = False):
        checker = GradientChecker(stepsize, threshold, device_option, "gradient_check", input_device_options)
        ok, grad, estimate = checker.CheckSimple(op, inputs, outputs_to_check, outputs_with_grads,
                                                 grad_ops=grad_ops, input_device_options=input_device_options,
                                                 ensure_outputs_are_inferred=ensure_outputs_are_inferred)
        self.assertEqual(grad.shape, estimate.shape)
        self.assertTrue(ok, f"Gradient check failed for input {op.input[outputs_to_check]}: "
                            f"max |analytic - numeric| {np.max(np.abs(grad - estimate), initial=0):.4g}")

    def _assertInferTensorChecks(self, op, outputs, ensure_outputs_are_inferred: bool) -> None:
        """The schema's inference agrees with every output shape and type it claims to know."""
        infos = []
        for name in op.input:
            value = np.asarray(workspace.FetchBlob(name)) if workspace.HasBlob(name) else None
            infos.append(None if value is None else TensorInfo(value.shape, value.dtype.name))
        for name, info, value in zip(op.output, infer_op(op, infos), outputs):
            if info is None or info.shape is None:
                self.assertFalse(ensure_outputs_are_inferred, f"shape of output {name} was not inferred")
                continue
            value = np.asarray(value)
            self.assertEqual(list(info.shape), list(value.shape), f"inferred shape of output {name}")
            if value.dtype.kind in "biuf":
                self.assertEqual(info.dtype, value.dtype.name, f"inferred type of output {name}")

    def assertReferenceChecks(self, device_option, op, inputs, reference, input_device_options=None,
                              threshold: float = 1e-4, output_to_grad=None, grad_reference=None, atol=None,
                              outputs_to_check=None, ensure_outputs_are_inferred: bool = False):
        """Run the op on `inputs` and compare its outputs with `reference(*inputs)` (a tuple
        or list of arrays, None for an output not to check); returns the outputs."""
        op = placed_on(op, device_option)
        with temp_workspace():
            if len(op.input) > len(inputs):
                raise ValueError(f"{op.type} has {len(op.input)} inputs, {len(inputs)} values given")
            _feed(op, inputs, device_option, input_device_options)
            workspace.RunOperatorOnce(op)
            expected = reference(*inputs)
            if not isinstance(expected, (tuple, list)):
                raise RuntimeError(  # noqa: TRY004 (Caffe2 raises RuntimeError here)
                    "the reference must return a tuple or list of arrays")
            names = list(op.output) if outputs_to_check is None else [op.output[i] for i in outputs_to_check]
            outputs = [workspace.FetchBlob(name) for name in op.output]
            self._assertInferTensorChecks(op, outputs, ensure_outputs_are_inferred)
            for name, ref in zip(names, expected):
                if ref is None:
                    continue
                got = workspace.FetchBlob(name)
                if got.dtype.kind in "SUO" or np.asarray(ref).dtype.kind in "SUO":
                    np.testing.assert_array_equal(got, ref, err_msg=f"output {name}")
                else:
                    np.testing.assert_allclose(got, ref, atol=threshold if atol is None else atol, rtol=threshold,
                                               err_msg=f"output {name} differs from the reference")
            if grad_reference is not None:  # as Caffe2: output_to_grad alone checks nothing
                if output_to_grad is None:
                    raise ValueError("assertReferenceChecks: grad_reference needs output_to_grad")
                self._assertGradReferenceChecks(op, inputs, expected, output_to_grad, grad_reference, threshold)
            return outputs

    def _assertGradReferenceChecks(self, op, inputs, ref_outputs, output_to_grad, grad_reference,
                                   threshold: float = 1e-4) -> None:
        """The backward pass of the op, fed dY = Y for output `output_to_grad`, gives the input
        gradients grad_reference(dY, reference outputs, inputs) returns (None: no gradient)."""
        grad_name = f"{output_to_grad}_grad"
        grad_ops, grad_map = GetBackwardPass([op], {output_to_grad: grad_name})
        output_grad = workspace.FetchBlob(output_to_grad)
        expected = grad_reference(np.array(output_grad), ref_outputs, inputs)
        workspace.FeedBlob(grad_name, output_grad, op.device_option)
        workspace.RunOperatorsOnce(grad_ops)
        for name, ref in zip(op.input, expected):
            g_name = grad_map.get(name)
            if g_name is None:
                self.assertIsNone(ref, f"no gradient for input {name}, the reference has one")
                continue
            if isinstance(g_name, GradientSlice):  # a sparse gradient: the reference gives (values, indices)
                ref, ref_indices = ref
                np.testing.assert_allclose(workspace.FetchBlob(str(g_name.indices)), ref_indices,
                                           err_msg=f"gradient indices of input {name}")
                g_name = g_name.values
            np.testing.assert_allclose(workspace.FetchBlob(str(g_name)), ref, atol=threshold, rtol=threshold,
                                       err_msg=f"gradient of input {name}")

    def assertValidationChecks(self, device_option, op, inputs, validator, input_device_options=None,
                               as_kwargs: bool = True, init_net=None):
        op = placed_on(op, device_option)
        with temp_workspace():
            _feed(op, inputs, device_option, input_device_options)
            if init_net is not None:
                workspace.RunNetOnce(init_net)
            workspace.RunOperatorOnce(op)
            outputs = [workspace.FetchBlob(name) for name in op.output]
            if as_kwargs:
                validator(**dict(zip(list(op.input) + list(op.output), inputs + outputs)))
            else:
                validator(inputs=inputs, outputs=outputs)

    def assertRunOpRaises(self, device_option, op, inputs, input_device_options=None, exception=(Exception,),
                          regexp=None):
        op = placed_on(op, device_option)
        with temp_workspace():
            _feed(op, inputs, device_option, input_device_options)
            if regexp is None:
                self.assertRaises(exception, workspace.RunOperatorOnce, op)
            else:
                self.assertRaisesRegex(exception, regexp, workspace.RunOperatorOnce, op)
