"""Which backward ops carry `is_gradient_op`, as in Caffe2: every op a gradient
maker of the op library emits; not the ConstantFill seeds of the losses nor the
Sum ops that add up fan-out (Caffe2's core.py makes those plainly)."""


def is_seed_or_sum(op) -> bool:
    seed = op.type == "ConstantFill" and len(op.output) == 1 and op.output[0].endswith("_autogen_grad")
    total = op.type == "Sum" and all("_grad" in name for name in [*op.input, *op.output])
    return seed or total


def assert_backward_ops_marked(ops) -> None:
    """Maker ops marked, seeds and sums not: no forward op slipped into the backward pass."""
    for op in ops:
        assert op.is_gradient_op != is_seed_or_sum(op), (op.type, list(op.input), list(op.output))
