"""Metrics family: MultiClassAccuracy, Perplexity and APMeter against
independent NumPy references (loops over examples and classes), APMeter's
buffer across runs, refusals, and the inference rules. CPU only; none has a
gradient."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

ERRORS = (OpFailure, NetError)


def ref_multi_class_accuracy(prediction, labels):
    d = prediction.shape[1]
    hits, amounts = np.zeros(d), np.zeros(d, np.int64)
    for row, label in zip(prediction, labels):
        amounts[label] += 1
        hits[label] += int(np.argmax(row) == label)
    return np.array([h / a if a else 0.0 for h, a in zip(hits, amounts)]), amounts


@pytest.mark.parametrize("n, d", [(10, 3), (4, 5), (0, 2), (6, 1)])
def test_multi_class_accuracy(n, d):
    rng = np.random.default_rng(n + d)
    prediction = rng.random((n, d)).astype(np.float32)
    labels = rng.integers(0, d, n).astype(np.int32)
    prediction[:2, :] = 0.5  # ties: the first class wins
    accuracies, amounts = check_reference("MultiClassAccuracy", [prediction, labels], ref_multi_class_accuracy)
    assert accuracies.dtype == np.float32 and amounts.dtype == np.int32


def test_perplexity():
    x = np.random.default_rng(2).uniform(0.01, 1, 10).astype(np.float32)
    reference = lambda x: np.prod([p ** (-1.0 / x.size) for p in x.astype(np.float64)])
    (y,) = check_reference("Perplexity", [x], reference)
    assert y.shape == () and y.dtype == np.float32
    assert run_op("Perplexity", [np.zeros(0, np.float32)])[0] == 1.0


def ref_average_precision(predictions, labels):
    n, d = predictions.shape
    out = np.zeros(d)
    for k in range(d):
        order = sorted(range(n), key=lambda j: -predictions[j, k])  # stable: ties keep their order
        hits, total, positives = 0, 0.0, 0
        for rank, j in enumerate(order, 1):
            hits += labels[j, k]
            if labels[j, k] == 1:
                positives += 1
                total += hits / rank
        out[k] = total / max(1, positives)
    return out


@pytest.mark.parametrize("buffer_size", [1000, 10, 4])
def test_apmeter_one_run(buffer_size):
    rng = np.random.default_rng(buffer_size)
    predictions = rng.uniform(0.1, 1, (10, 3)).astype(np.float32)
    labels = rng.integers(0, 2, (10, 3)).astype(np.int32)
    reference = lambda p, y, buffer_size: ref_average_precision(p[-buffer_size:], y[-buffer_size:])
    (ap,) = check_reference("APMeter", [predictions, labels], reference, {"buffer_size": buffer_size})
    assert ap.dtype == np.float32


def test_apmeter_buffers_across_runs_and_drops_the_sorted_front():
    rng = np.random.default_rng(5)
    batches = [(rng.uniform(0.1, 1, (3, 2)).astype(np.float32), rng.integers(0, 2, (3, 2)).astype(np.int32))
               for _ in range(3)]
    workspace = Workspace("apmeter")
    workspace.CreateNet(_net(buffer_size=5))
    kept_p, kept_y = [np.zeros((0,)) for _ in range(2)], [np.zeros((0,), np.int32) for _ in range(2)]
    for predictions, labels in batches:
        workspace.FeedBlob("P", predictions)
        workspace.FeedBlob("Y", labels)
        workspace.RunNet("apmeter_net")
        for k in range(2):  # by hand: the class's buffer sorted, its first entries dropped for room
            room = max(len(kept_p[k]) + 3 - 5, 0)
            p, y = np.concatenate([kept_p[k][room:], predictions[:, k]]), np.concatenate([kept_y[k][room:], labels[:, k]])
            order = np.argsort(-p, kind="stable")
            kept_p[k], kept_y[k] = p[order], y[order]
        expected = [ref_average_precision(kept_p[k][:, None], kept_y[k][:, None])[0] for k in range(2)]
        np.testing.assert_allclose(workspace.FetchBlob("AP"), expected, rtol=1e-6)


def _net(buffer_size):
    net = caffe2_pb2.NetDef(name="apmeter_net")
    net.op.append(make_op("APMeter", ["P", "Y"], ["AP"], {"buffer_size": buffer_size}))
    return net


def test_metrics_errors_and_inference():
    with pytest.raises(ERRORS, match=r"labels must be class indices in \[0, 3\), got 3"):
        run_op("MultiClassAccuracy", [np.zeros((2, 3), np.float32), np.array([0, 3], np.int32)])
    with pytest.raises(ERRORS, match="N must match"):
        run_op("MultiClassAccuracy", [np.zeros((2, 3), np.float32), np.zeros(3, np.int32)])
    with pytest.raises(ERRORS, match=r"probabilities must be 1-D"):
        run_op("Perplexity", [np.ones((2, 2), np.float32)])
    with pytest.raises(ERRORS, match="they must have the same shape"):
        run_op("APMeter", [np.zeros((2, 3), np.float32), np.zeros((2, 2), np.int32)])
    with pytest.raises(ERRORS, match="labels must be int32"):
        run_op("APMeter", [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)])
    assert infer("MultiClassAccuracy", [(4, 3), TensorInfo((4,), "int32")], n_out=2) == [
        TensorInfo((3,)), TensorInfo((3,), "int32")]
    assert infer("Perplexity", [(7,)]) == [TensorInfo(())]
    assert infer("APMeter", [(4, 3), None]) == [TensorInfo((3,))]
    with pytest.raises(ShapeError, match="predictions must be 2-D"):
        infer("APMeter", [(4,), None])
