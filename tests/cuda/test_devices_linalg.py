"""Linalg family on CUDA (the tiled SGEMM of linalg.cu) against the CPU: FC, FCTransposed,
their gradient ops, MatMul and BatchMatMul at sizes that fill no tile evenly (1x1x1,
17x33x65, 130x7x129), a full one (512^3) and a large one (over 1M outputs); and `gemm`
itself with out, beta and a broadcast operand. Marked gpu: skipped without a GPU."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, Workspace
from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, make_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

load_kernels()
CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)

# (M, K, N): odd sizes (no tile is full), an even one, a large one (M * N > 1M)
SIZES = [(1, 1, 1), (17, 33, 65), (130, 7, 129), (512, 512, 512), (1100, 70, 1000)]


def randn(seed, shape, m, k, n):
    """Scaled so that every product here sums to O(1): fp32 tolerances then hold."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) / max(m, k, n) ** 0.25).astype(np.float32)


def fc_inputs(transposed=False, gradient=False, nested=False):
    def make(m, k, n):
        x_shape = (m, 1, k) if nested else (m, k)  # nested: X flattened at axis 1, W at 1
        w_shape = (k, n) if transposed else ((n, k, 1) if nested else (n, k))
        last = (m, n) if gradient else (n,)  # dY, or b
        return [randn(1, x_shape, m, k, n), randn(2, w_shape, m, k, n), randn(3, last, m, k, n)]
    return make


def matmul_inputs(trans_a, trans_b, shaped=False):
    def make(m, k, n):
        a = randn(1, (k, m) if trans_a else (m, k), m, k, n)
        b = randn(2, (n, k) if trans_b else (k, n), m, k, n)
        if not shaped:
            return [a, b]
        # A as [1, rows, cols] read at axis_a 2, B as [rows, cols, 1] read at axis_b 1, Y
        # shaped like a third input.
        return [a.reshape(1, *a.shape), b.reshape(*b.shape, 1), np.zeros((m, n, 1), np.float32)]
    return make


def batch_matmul_inputs(trans_a, trans_b):
    def make(m, k, n):
        return [randn(1, (2, 3) + ((k, m) if trans_a else (m, k)), m, k, n),
                randn(2, (2, 3) + ((n, k) if trans_b else (k, n)), m, k, n)]
    return make


TRANSPOSES = [(0, 0), (0, 1), (1, 0), (1, 1)]
# op type -> [(variant id, inputs for (M, K, N), args, num_outputs)]
CASES = {
    "FC": [("plain", fc_inputs(), {}, None),
           ("nested", fc_inputs(nested=True), {"axis": 1, "axis_w": 1}, None)],
    "FCTransposed": [("plain", fc_inputs(transposed=True), {}, None)],
    "FCGradient": [("dX", fc_inputs(gradient=True), {}, 3),
                   ("no_dX", fc_inputs(gradient=True), {}, 2),
                   ("nested", fc_inputs(gradient=True, nested=True), {"axis": 1, "axis_w": 1}, 3)],
    "FCTransposedGradient": [("dX", fc_inputs(transposed=True, gradient=True), {}, 3)],
    "MatMul": [(f"t{ta}{tb}", matmul_inputs(ta, tb), {"trans_a": ta, "trans_b": tb}, None)
               for ta, tb in TRANSPOSES]
    + [("shaped", matmul_inputs(0, 1, shaped=True), {"trans_b": 1, "axis_a": 2, "axis_b": 1}, None)],
    "BatchMatMul": [(f"t{ta}{tb}", batch_matmul_inputs(ta, tb), {"trans_a": ta, "trans_b": tb}, None)
                    for ta, tb in TRANSPOSES],
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
VARIANTS = [(op_type, *variant) for op_type, variants in CASES.items() for variant in variants]


@pytest.mark.gpu
@pytest.mark.parametrize("size", SIZES, ids=["x".join(map(str, s)) for s in SIZES])
@pytest.mark.parametrize("op_type, variant, make_inputs, args, num_outputs", VARIANTS,
                         ids=[f"{v[0]}-{v[1]}" for v in VARIANTS])
def test_cuda_kernel_matches_cpu(op_type, variant, make_inputs, args, num_outputs, size):
    check_devices(op_type, make_inputs(*size), args, num_outputs, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
def test_gemm_with_out_beta_and_a_broadcast_operand():
    from pycaffe2.operators import _cuda as cuda
    from pycaffe2.operators.linalg import gemm
    m, k, n = 70, 300, 129
    a = randn(1, (k, m), m, k, n)  # one A for the whole batch, stored transposed
    b = randn(2, (4, k, n), m, k, n)
    c = randn(3, (4, m, n), m, k, n)
    out = cuda.as_gpu(c)
    assert gemm(a, b, True, False, out=out, beta=0.5, alpha=2.0) is out
    expected = 2.0 * np.matmul(a.T.astype(np.float64), b) + 0.5 * c
    np.testing.assert_allclose(out.get(), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
def test_gemm_with_k_zero_gives_zeros():
    from pycaffe2.operators.linalg import gemm
    y = gemm(np.zeros((3, 0), np.float32), np.zeros((0, 5), np.float32), False, False)
    np.testing.assert_array_equal(y.get(), np.zeros((3, 5), np.float32))


@pytest.mark.gpu
def test_fc_gradient_bias_sums_many_rows_in_two_passes():
    """db over 5000 rows takes the two-pass column sum (chunks of 1024 rows)."""
    m, k, n = 5000, 3, 40
    check_devices("FCGradient", fc_inputs(gradient=True)(m, k, n), {}, 2, atol=1e-4, rtol=1e-4)


def test_batch_matmul_with_broadcast_says_it_is_cpu_only():
    op = make_op("BatchMatMul", ["A", "B"], ["Y"], {"broadcast": 1})
    op.device_option.CopyFrom(CUDA)
    net = caffe2_pb2.NetDef(name="bmm", op=[op], external_input=["A", "B"])
    with pytest.raises(NetError, match="broadcast=1 has no CUDA kernel"):
        Workspace().CreateNet(net)
