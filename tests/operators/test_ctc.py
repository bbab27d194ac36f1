"""ctc family: CTCGreedyDecoder and CTCBeamSearchDecoder against independent
references (loops over sequences, steps, prefixes and classes with dicts, in
float64), refusals, and the inference rule. CPU only; neither has a gradient."""
from collections import defaultdict

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.schema import infer

ERRORS = (OpFailure, NetError)


def ref_greedy(scores, seq_len=None, merge_repeated=1):
    t, b, _ = scores.shape
    lengths, values = [], []
    for i in range(b):
        decoded, previous = [], 0
        for step in range(t if seq_len is None else seq_len[i]):
            label = int(np.argmax(scores[step, i]))
            if label != 0 and not (merge_repeated and label == previous):
                decoded.append(label)
            previous = label
        lengths.append(len(decoded))
        values.extend(decoded)
    return np.array(lengths, np.int32), np.array(values, np.int32)


@pytest.mark.parametrize("merge", [1, 0])
@pytest.mark.parametrize("t, b, c, with_len", [(6, 3, 4, True), (5, 2, 3, False), (1, 2, 2, True), (4, 2, 1, True)])
def test_ctc_greedy_decoder(merge, t, b, c, with_len):
    rng = np.random.default_rng(t * b + c)
    scores = rng.integers(0, 3, (t, b, c)).astype(np.float32)  # small integers: repeats and ties
    inputs = [scores] + ([rng.integers(0, t + 1, b).astype(np.int32)] if with_len else [])
    check_reference("CTCGreedyDecoder", inputs, ref_greedy, {"merge_repeated": merge})


def ref_beam(scores, seq_len=None, beam_width=10, prune_threshold=0.001, num_candidates=1):
    t, b, c = scores.shape
    lengths, probs, values = np.zeros(b * num_candidates, np.int32), np.zeros(b * num_candidates), []
    for i in range(b):
        blank, other = {(): 1.0}, {(): 0.0}  # probability of the prefix's paths ending in a blank / not
        beam = [()]
        for step in range(t if seq_len is None else seq_len[i]):
            x = scores[step, i].astype(np.float64)
            tried = [k for k in range(c) if x[k] > prune_threshold] or list(range(c))
            new_blank, new_other = defaultdict(float), defaultdict(float)
            for prefix in beam:
                for k in tried:
                    if k == 0:
                        new_blank[prefix] += x[0] * (blank[prefix] + other[prefix])
                        continue
                    longer = prefix + (k,)
                    if prefix and prefix[-1] == k:
                        new_other[longer] += x[k] * blank[prefix]
                        new_other[prefix] += x[k] * other[prefix]
                    else:
                        new_other[longer] += x[k] * (blank[prefix] + other[prefix])
                    if longer not in beam:
                        new_blank[longer] += x[0] * (blank.get(longer, 0) + other.get(longer, 0))
                        new_other[longer] += x[k] * other.get(longer, 0)
            blank, other = dict(new_blank), dict(new_other)
            total = {p: blank.get(p, 0) + other.get(p, 0) for p in set(blank) | set(other)}
            ranked = sorted((p for p in total if total[p] > 0), key=lambda p: -total[p])
            beam = ranked[:beam_width]
            for p in total:
                blank.setdefault(p, 0.0)
                other.setdefault(p, 0.0)
        best = ranked[:num_candidates] if (t if seq_len is None else seq_len[i]) else []
        for index, prefix in enumerate(best):
            lengths[i * num_candidates + index] = len(prefix)
            probs[i * num_candidates + index] = total[prefix]
            values.extend(prefix)
    return lengths, np.array(values, np.int32), probs


BEAM_CASES = [  # (T, B, C, args, with SEQ_LEN)
    ((5, 2, 4), {}, True),
    ((6, 3, 3), {"beam_width": 2, "num_candidates": 2}, True),
    ((4, 1, 5), {"beam_width": 1}, False),
    ((3, 2, 1), {"num_candidates": 2}, False),
    ((7, 2, 6), {"beam_width": 16, "num_candidates": 2, "prune_threshold": 0.3}, True),
    ((3, 1, 3), {"prune_threshold": 2.0}, False),  # nothing above the threshold: every class is tried
]


@pytest.mark.parametrize("shape, args, with_len", BEAM_CASES, ids=[f"{s}-{a}" for s, a, _ in BEAM_CASES])
def test_ctc_beam_search_decoder(shape, args, with_len):
    rng = np.random.default_rng(sum(shape))
    scores = rng.random(shape).astype(np.float32)
    inputs = [scores] + ([rng.integers(1, shape[0] + 1, shape[1]).astype(np.int32)] if with_len else [])
    full = {"beam_width": 10, "prune_threshold": 0.001, "num_candidates": 1, **args}
    reference = lambda *inputs, **_: ref_beam(*inputs, **full)
    check_reference("CTCBeamSearchDecoder", inputs, reference, args, num_outputs=3)
    lengths, values = check_reference("CTCBeamSearchDecoder", inputs, lambda *v, **_: reference(*v)[:2], args)
    assert lengths.dtype == values.dtype == np.int32


def test_ctc_beam_search_of_a_certain_path():
    scores = np.zeros((4, 1, 3), np.float32)
    scores[[0, 1, 2, 3], 0, [1, 1, 0, 1]] = 1  # "1 1 _ 1" decodes to [1, 1]
    lengths, values, probs = run_op("CTCBeamSearchDecoder", [scores], num_outputs=3)
    assert lengths.tolist() == [2] and values.tolist() == [1, 1] and probs.tolist() == [1.0]
    assert run_op("CTCGreedyDecoder", [scores])[1].tolist() == [1, 1]


def test_ctc_errors_and_inference():
    scores = np.zeros((3, 2, 4), np.float32)
    for op in ("CTCGreedyDecoder", "CTCBeamSearchDecoder"):
        with pytest.raises(ERRORS, match=r"INPUTS must be 3-D \[T, B, C\]"):
            run_op(op, [np.zeros((3, 4), np.float32)])
        with pytest.raises(ERRORS, match=r"SEQ_LEN values must be in \[0, 3\] \(T\), got 4"):
            run_op(op, [scores, np.array([1, 4], np.int32)])
        with pytest.raises(ERRORS, match=r"SEQ_LEN must be \[2\]"):
            run_op(op, [scores, np.array([1], np.int32)])
        with pytest.raises(ERRORS, match="SEQ_LEN must be int32"):
            run_op(op, [scores, np.array([1, 1], np.int64)])
    assert infer("CTCGreedyDecoder", [(5, 3, 4)], n_out=2) == [TensorInfo((3,), "int32"), None]
    assert infer("CTCBeamSearchDecoder", [(5, 3, 4), None], n_out=3, num_candidates=2) == [
        TensorInfo((6,), "int32"), None, TensorInfo((6,), "float32")]
    with pytest.raises(ShapeError, match="INPUTS must be float, got int32"):
        infer("CTCGreedyDecoder", [(5, 3, 4)], n_out=2, dtype="int32")
