"""CreateNet refuses what `validate` refuses, unless the problem needs blob values.

A rule on an op's args and input/output counts holds whatever the inputs are,
so a net breaking it never gets as far as RunNet (where it used to fail with an
IndexError deep in a kernel). Shape problems that need the values fed at run
time still wait for the run.
"""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import all_schemas
from pycaffe2.schema.checker import check_net
from pycaffe2.testing import make_op

# family -> (op type, inputs, outputs, args, text of the problem): at least one per op family.
STATIC_PROBLEMS = {
    "batch_norm (SpatialBN)": ("SpatialBN", ["X", "scale", "bias", "mean", "var"],
                                  ["Y", "mean", "var", "saved_mean", "saved_var"], {"is_test": 1},
                                  "is_test=1 takes 1 output (Y), got 5"),
    "norms (GroupNorm)": ("GroupNorm", ["X", "gamma", "beta"], ["Y"], {"is_test": 0},
                                  "training (is_test=0) takes 3 outputs"),
    "norms (LayerNorm)": ("LayerNorm", ["X", "gamma", "beta"], ["Y", "mean", "std"], {},
                                  "elementwise_affine=0 takes 1 input(s), got 3"),
    "norms (AffineChannelGradient)": ("AffineChannelGradient", ["dY", "X", "scale"], ["dX"], {"is_learnable": 1},
                                      "is_learnable=1 takes 3 inputs and 3 output(s), got 3 and 1"),
    "resize": ("ResizeNearest", ["X", "s", "t"], ["Y"], {}, "takes 1 to 2 inputs (X, scales), got 3"),
    "normalize": ("LpNorm", ["X"], ["Z"], {"p": 3}, "arg 'p': value 3 is not allowed (allowed: 1, 2)"),
    "moments": ("Moments", ["X"], ["mean"], {}, "takes 2 outputs (mean, variance), got 1"),
    "boolean_mask": ("BooleanUnmask", ["m", "v", "m2"], ["o"], {}, "takes 2 or more in steps of 2 inputs"),
    "one_hot": ("OneHot", ["i"], ["o"], {}, "takes 2 to 3 inputs (indices, index_size_tensor, values), got 1"),
    "find": ("Find", ["a"], ["b"], {}, "takes 2 inputs (index, query), got 1"),
    "arithmetic": ("Add", ["A", "B"], ["C"], {"broadcast": 1, "axis": 0, "axis_str": "C"},
                   "give axis (0) or axis_str ('C'), not both"),
    "elementwise": ("Pow", ["X", "E"], ["Y"], {"exponent": 2.0},
                    "give the exponent as the arg or as input 1; got both"),
    "fill": ("ConstantFill", ["X"], ["Y"], {"shape": [2], "value": 1.0},
             "give the shape [2] or an input, not both"),
    "fill (values)": ("GivenTensorFill", [], ["Y"], {"shape": [2], "values": [1.0, 2.0, 3.0]},
                      "3 values cannot fill shape [2]"),
    "tensor (Reshape)": ("Reshape", ["X", "new_shape"], ["Y", "old_shape"], {"shape": [2, 3]},
                         "shape comes from input new_shape; do not also give the `shape` arg"),
    "indexing (Slice)": ("Slice", ["X"], ["Y"], {"starts": [0, 1], "ends": [1]},
                         "starts [0, 1] and ends [1] differ in length"),
    "tensor (Cast)": ("Cast", ["X"], ["Y"], {"to": 99}, "99 is not a data type a tensor can hold"),
    "tensor_utility": ("ScaleBlobs", ["A", "B"], ["A2"], {}, "needs one output per input, got 2 inputs and 1 outputs"),
    "conv": ("ConvGradient", ["X", "filter", "dY"], ["dfilter", "dbias", "dX"], {"no_bias": 1, "kernel": 3},
             "with no_bias=1 the outputs are dfilter and dX, got 3"),
    "linalg": ("FC", ["X", "W"], ["Y"], {}, "takes 3 inputs (X, W, b), got 2"),
    "linalg_extra": ("Einsum", ["X"], ["Y"], {}, "required arg 'equation' is missing"),
    "attention_ops": ("LinearAttention", ["Q", "K", "V"], ["Y"], {"kv_num_heads": 1},
                      "required arg 'q_num_heads' is missing"),
    "bit_cast": ("BitCast", ["X"], ["Y"], {"to": "complex64"}, "arg 'to': value 'complex64' is not allowed"),
    "loss": ("LabelCrossEntropy", ["X"], ["Y"], {}, "takes 2 inputs (X, label), got 1"),
    "distance": ("DotProductWithPadding", ["X"], ["Z"], {"pad_value": 0.5}, "takes 2 inputs (X, Y), got 1"),
    "activation": ("Elu", ["X"], ["Y"], {"alpha": "x"}, "arg 'alpha' must be float"),
    "activation_extra": ("Celu", ["X"], ["Y"], {"alpha": 0.0}, "value 0.0 is out of range (must be > 0.0)"),
    "nn": ("Dropout", ["X"], ["Y", "mask"], {"ratio": 2.0}, "arg 'ratio': value 2.0 is out of range"),
    "reduction": ("ReduceSum", ["X", "Z"], ["Y"], {}, "takes 1 input (data), got 2"),
    "training": ("Iter", ["iter"], ["iter2"], {}, "output 0 (iter) must be the same blob as input 0"),
    "adaptive": ("RmsProp", ["g", "ms", "mom"], ["g2", "ms", "mom"], {},
                 "takes 4 inputs (grad, mean_squares, mom, lr), got 3"),
    "yellowfin": ("YellowFin", [f"x{i}" for i in range(9)], [f"x{i}" for i in range(8)], {},
                  "takes 10 inputs"),
    "segment": ("Unique", ["a", "b"], ["u"], {}, "takes 1 input (indices), got 2"),
    "elementwise_linear": ("ElementwiseLinear", ["X", "a"], ["Y"], {}, "takes 3 inputs (X, a, b), got 2"),
    "sequence_mask": ("SequenceMask", ["X"], ["Y"], {}, "mode 'sequence' takes 2 inputs"),
    "sparse_update": ("SparseAdagrad", ["p", "m", "i", "g", "lr"], ["p2", "m"], {},
                      "output 0 (output_param) must be the same blob as input 0 (param)"),
    "adagrad_fused": ("SparseAdagradFusedWithSparseLengthsSumGradient", ["p", "m", "i", "g", "lr", "l"],
                      ["p", "m2"], {}, "output 1 (output_moment) must be the same blob as input 1 (moment)"),
    "optimizer_util": ("RowWiseCounter", ["pi", "c", "i", "it"], ["pi", "c2"], {},
                       "output 1 (output_update_counter) must be the same blob as input 1 (update_counter)"),
    "io": ("Save", ["X"], [], {}, "required arg 'db_type' is missing"),
    "image": ("ImageInput", ["reader"], ["data", "label"], {"batch_size": 1, "crop": 2, "scale": 3, "minsize": 3},
              "give exactly one of scale (3) and minsize (3)"),
    "pooling": ("MaxPool", ["X", "Z"], ["Y"], {"kernel": 2}, "takes 1 input (X), got 2"),
    "detection_roi": ("RoIAlign", ["X", "R"], ["Y"], {"pooled_h": 0}, "arg 'pooled_h': value 0 is out of range"),
    "detection_boxes": ("BoxWithNMSLimit", ["S", "B"], ["s", "b", "c", "d", "e"], {}, "takes 3 or 4 or 6 outputs"),
    "detection_proposals": ("CollectRpnProposals", ["R", "S"], ["rois"], {}, "2 inputs but RPN levels 2..6 need 10"),
    "softmax_loss": ("SoftmaxWithLoss", ["X"], ["P", "loss"], {}, "takes 2 to 3 inputs"),
    "python": ("Python", ["X"], ["Y"], {"token": "f"}, "no Python function is registered under token 'f'"),
    "control": ("Do", ["a", "scope"], ["b", "scope"],
                {"net": caffe2_pb2.NetDef(name="inner"), "inner_blobs": ["a"], "outer_blobs_idx": [0]},
                "outer blob(s) b are bound to no inner name"),
    "half": ("FloatToHalf", ["X"], ["Y"], {"clip": "x"}, "arg 'clip' must be bool"),
    "recurrent": ("LSTMUnit", ["H", "C", "G", "L", "T"], ["H_t", "C_t"], {"sequence_lengths": 0},
                  "sequence_lengths=0 needs 4 inputs, got 5"),
    "recurrent_network": ("RecurrentNetwork", ["X", "h0"], ["h_all", "step_workspaces"],
                          {"recurrent_states": ["h_states"], "initial_recurrent_state_ids": [1]},
                          "required arg 'step_net' is missing"),
    "lengths_util": ("LengthsSplit", ["L"], ["Y"], {}, "n_split must be > 0 (the arg, or a second input), got 0"),
    "pack_segments": ("PackSegments", ["l", "d"], ["p", "m"], {}, "needs return_presence_mask=1"),
    "sparse_dense": ("SparseToDenseMask", ["i", "v", "d"], ["o"], {"mask": [1, 1]}, "mask holds id 1 twice"),
    "partition": ("Partition", ["k", "x"], ["a", "b", "c"], {}, "3 outputs are not a multiple of the 2 inputs"),
    "math_unary": ("Mod", ["X"], ["Y"], {}, "divisor must not be 0"),
    "math_bitwise": ("BitShift", ["X", "S"], ["Y"], {}, "required arg 'direction' is missing"),
    "math_reduce": ("SumElements", ["X", "Z"], ["Y"], {}, "takes 1 input (X), got 2"),
    "math_tensor": ("Expand", ["X"], ["Y"], {}, "takes 2 inputs (X, shape), got 1"),
    "math_bucket": ("Bucketize", ["X"], ["Y"], {"boundaries": [2.5, 1.5]},
                    "boundaries must be in ascending order"),
    "aten": ("ATen", ["X"], ["Y"], {"operator": "frobnicate"}, "ATen operator 'frobnicate' is not supported"),
    "top_k": ("TopK", ["X"], ["Values"], {"k": 2}, "takes 2 to 3 outputs"),
    "indexing_nd": ("ScatterND", ["D", "I", "U"], ["Y"], {"reduction": "sub"}, "value 'sub' is not allowed"),
    "cumulative": ("CumSum", ["X", "a", "b"], ["Y"], {}, "takes 1 to 2 inputs (X, axis_tensor), got 3"),
    "selection": ("ReverseSequence", ["X", "L"], ["Y"], {"batch_axis": 2}, "value 2 is not allowed"),
    "int8": ("Int8FC", ["X", "W"], ["Y"], {}, "takes 3 inputs (X, W, b), got 2"),
    "int8_nn": ("Int8LeakyRelu", ["X"], ["Y"], {"alpha": 1.5}, "alpha is 1.5 but must be in (0, 1)"),
    "int8_tensor": ("Int8Flatten", ["X", "Z"], ["Y"], {}, "takes 1 input (input), got 2"),
    "fused": ("FbFCPacked", ["X", "W"], ["Y"], {}, "takes 3 inputs (X, W, b), got 2"),
    "lengths_reducer": ("SparseLengthsSum", ["D", "I"], ["Y"], {}, "takes 3 inputs (DATA, INDICES, LENGTHS), got 2"),
    "segment_reducer": ("SparseSortedSegmentSum", ["D", "I"], ["Y"], {},
                        "takes 3 inputs (DATA, INDICES, SEGMENT_IDS), got 2"),
    "segment_util": ("LengthsTopK", ["X"], ["V", "I"], {"k": 2}, "takes 2 inputs (DATA, LENGTHS), got 1"),
    "rowwise_quantized": ("FloatToRowwiseQuantized8Bits", ["X"], ["Q"], {},
                          "takes 2 outputs (quantized_input, scale_bias), got 1"),
    "ranking": ("PairWiseLoss", ["X"], ["Y"], {}, "takes 2 to 3 inputs"),
    "row_scale": ("RowMul", ["M"], ["Y"], {}, "takes 2 inputs (mat, w), got 1"),
    "metrics": ("APMeter", ["P", "L"], ["AP"], {"buffer_size": 0}, "arg 'buffer_size': value 0 is out of range"),
    "ctc": ("CTCBeamSearchDecoder", ["X"], ["L", "V"], {"num_candidates": 0},
            "arg 'num_candidates': value 0 is out of range"),
    "locally_connected": ("LCGradient", ["X", "W", "dY"], ["dW", "dX", "db"], {"no_bias": 1},
                          "with no_bias=1 the outputs are dfilter and dX, got 3"),
    "string_match": ("StringStartsWith", ["s"], ["b"], {"prefix": 3}, "arg 'prefix' must be string"),
    "weighted_sample": ("WeightedSample", ["w"], ["i", "v"], {}, "as many outputs as inputs"),
    "rand_quantized": ("FloatToFusedRandRowwiseQuantized", ["X"], ["Y"], {"bitwidth": 3},
                       "bitwidth must be 1, 2, 4 or 8, got 3"),
    "tt_linear": ("TT", ["X", "b", "c"], ["Y"], {"inp_sizes": [2], "out_sizes": [2, 2], "tt_ranks": [1, 1]},
                  "must give one size per core"),
    "misc": ("Quantile", ["X"], ["q"], {}, "quantile must be in [0, 1], got -1"),
    "id_list": ("NGramFromCategorical", ["F"], ["Y"], {"col_ids": [0, 1], "categorical_limits": [2], "vals": [1, 2]},
                "col_ids has 2 columns, categorical_limits 1"),
    "feature_maps": ("MergeSingleScalarFeatureTensors", ["a", "p"], ["l", "k", "v"], {"feature_ids": [1, 2]},
                     "feature_ids has 2 ids for 1 features"),
    "spatial": ("Im2Col", ["X"], ["Y"], {}, "kernel must be > 0, got 0"),
    "counter": ("CountUp", ["c"], ["a", "b"], {}, "takes 1 output (previous_count), got 2"),
    "index": ("IndexFreeze", ["i"], ["j"], {}, "output 0 (handle) must be the same blob as input 0"),
    "map": ("CreateMap", [], ["m"], {"key_dtype": 1}, "key_dtype must be INT32 or INT64, got FLOAT"),
    "stats": ("AveragePut", ["x"], [], {"magnitude_expand": 0}, "value 0 is out of range (must be >= 1)"),
    "onnx_rnn": ("LSTM", ["X", "W", "R"], ["Y"], {"direction": "sideways"},
                 "arg 'direction': value 'sideways' is not allowed"),
    "signal": ("DFT", ["X"], ["Y"], {"inverse": 2}, "arg 'inverse': value 2 is not allowed"),
    "nms": ("NonMaxSuppression", ["boxes"], ["selected"], {}, "takes 2 to 5 inputs"),
    "last_n_window": ("LastNWindowCollector", ["b", "n", "d"], ["b", "n"], {}, "required arg 'num_to_collect' is missing"),
}


def test_every_op_family_has_a_row():
    families = {schema.family for schema in all_schemas().values()}
    assert families - {key.split(" ")[0] for key in STATIC_PROBLEMS} == set()


def net_of(op_type, inputs, outputs, args, name="bad"):
    return caffe2_pb2.NetDef(name=name, external_input=inputs, op=[make_op(op_type, inputs, outputs, args)])


@pytest.mark.parametrize("family", sorted(STATIC_PROBLEMS))
def test_create_net_refuses_what_validate_refuses(family):
    *op, text = STATIC_PROBLEMS[family]
    net = net_of(*op)
    messages = [problem.message for problem in check_net(net)]
    assert any(text in message for message in messages), messages  # validate refuses it
    workspace = Workspace("refusals")
    workspace.FeedBlob("kept", np.arange(3.0))
    with pytest.raises(NetError, match="op 0") as refused:
        workspace.CreateNet(net)
    assert text in str(refused.value)
    assert workspace.Nets() == [] and workspace.Blobs() == ["kept"]  # nothing half-made


def test_spatial_bn_with_five_outputs_in_test_mode_never_runs():
    net = net_of(*STATIC_PROBLEMS["batch_norm (SpatialBN)"][:4])
    workspace = Workspace("spatial_bn")
    for name, shape in zip(net.external_input, [(2, 3, 4, 4), (3,), (3,), (3,), (3,)]):
        workspace.FeedBlob(name, np.ones(shape, np.float32))
    with pytest.raises(NetError, match=r"op 0 \(SpatialBN\).*is_test=1 takes 1 output"):
        workspace.RunNetOnce(net)


def test_shapes_the_net_itself_fixes_are_checked_at_creation():
    """A fill's shape comes from its args, so a mismatch downstream needs no fed values."""
    net = caffe2_pb2.NetDef(name="filled", external_input=["X"], op=[
        make_op("ConstantFill", [], ["W"], {"shape": [4, 6], "value": 1.0}),
        make_op("ConstantFill", [], ["b"], {"shape": [4], "value": 0.0}),
        make_op("FC", ["X", "W", "b"], ["Y"])])
    Workspace("ok").CreateNet(net)  # X unknown: nothing to find yet
    net.op.insert(0, make_op("ConstantFill", [], ["X"], {"shape": [2, 5], "value": 1.0}))
    with pytest.raises(NetError, match=r"op 3 \(FC\)"):
        Workspace("filled").CreateNet(net)


def test_shape_problems_in_fed_values_wait_for_the_run():
    net = net_of("FC", ["X", "W", "b"], ["Y"], {})
    workspace = Workspace("fed")
    workspace.CreateNet(net)
    for name, shape in (("X", (2, 5)), ("W", (4, 6)), ("b", (4,))):
        workspace.FeedBlob(name, np.ones(shape, np.float32))
    with pytest.raises(OpFailure, match=r"op 0 \(FC\)"):
        workspace.RunNet("bad")
