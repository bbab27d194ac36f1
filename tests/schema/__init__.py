"""Schema tests; `infer` runs one op's inference rule on given input shapes."""
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import TensorInfo, infer_op


def infer(op_type, shapes, n_out=1, dtype="float32", **args):
    """Output infos of op_type on inputs of these shapes (None = unknown; a TensorInfo as is)."""
    op = caffe2_pb2.OperatorDef(type=op_type, input=[f"x{i}" for i in range(len(shapes))],
                                output=[f"y{i}" for i in range(n_out)])
    op.arg.extend(make_argument(name, value) for name, value in args.items())
    infos = [None if s is None else s if isinstance(s, TensorInfo) else TensorInfo(tuple(s), dtype)
             for s in shapes]
    return infer_op(op, infos)
