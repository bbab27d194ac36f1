"""Args Caffe2 accepts and ignores on the CPU (cuDNN's forced algorithms, PRelu's
alpha, SumReduceLike's broadcast): an op carrying them passes the checker and
gives what it gives without them, forward and gradient."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.gradient import GetBackwardPass
from pycaffe2.schema.checker import check_net
from pycaffe2.testing import run_op

RNG = np.random.default_rng(0)
FORCE_ALGOS = {"force_algo_fwd": 1, "force_algo_dgrad": 0, "force_algo_wgrad": 2}

# (op type, inputs, the ignored args, the op's own args)
CASES = [
    ("Conv", [RNG.standard_normal((1, 2, 5, 5)), RNG.standard_normal((3, 2, 3, 3)), RNG.standard_normal(3)],
     FORCE_ALGOS, {"kernel": 3}),
    ("ConvTranspose", [RNG.standard_normal((1, 2, 4, 4)), RNG.standard_normal((2, 3, 3, 3)),
                       RNG.standard_normal(3)], FORCE_ALGOS, {"kernel": 3}),
    ("PRelu", [RNG.standard_normal((2, 3, 4)), RNG.random(3) + 0.1], {"alpha": 0.25}, {}),
    ("SumReduceLike", [RNG.standard_normal((2, 3, 4)), RNG.standard_normal(4)], {"broadcast": 1}, {}),
]


@pytest.mark.parametrize("op_type, inputs, ignored, own", CASES, ids=[c[0] for c in CASES])
def test_ignored_args_change_nothing(op_type, inputs, ignored, own):
    inputs = [x.astype(np.float32) for x in inputs]
    for got, expected in zip(run_op(op_type, inputs, {**own, **ignored}), run_op(op_type, inputs, own)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("op_type, inputs, ignored, own", CASES, ids=[c[0] for c in CASES])
def test_ignored_args_pass_the_checker_forward_and_backward(op_type, inputs, ignored, own):
    names = [f"x{i}" for i in range(len(inputs))]
    op = core.CreateOperator(op_type, names, ["y"], **own, **ignored)
    ops = [op]
    if op_type != "SumReduceLike":  # no gradient in Caffe2
        ops += GetBackwardPass(ops, ["y"])[0]
    net = core.Net("ignored").Proto()
    net.op.extend(ops)
    net.external_input.extend(names + ["y_grad"])
    assert check_net(net) == []
