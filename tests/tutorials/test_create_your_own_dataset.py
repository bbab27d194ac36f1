"""Caffe2's create_your_own_dataset tutorial: iris (downloaded with Python 2's
urllib2) is split into train and test sets, written as minidb files of
TensorProtos through core.C.create_db, and read back in batches of 16 by
CreateDB + TensorProtosDBInput.

Stand-ins: iris.data, 150 rows in the UCI file's format (four measurements and
the species name, 50 of each, an empty last line) made here. Two lines of the
tutorial need help, neither touching what it teaches:
- `print(raw_data[:100] + '...')` adds a str to what urlopen read, which was a
  str in Python 2 and is bytes in Python 3 (a TypeError): before= makes the
  literal b'...' (a Python-2-only line).
- `dtype=np.int` names an alias NumPy 1.24 removed: the test gives numpy an
  `int` attribute (the builtin, which the alias was) for the run, not the tutorial.
Checked: both minidb files hold one record per example (the tutorial's keys are
all the literal 'train_%03d', its `'...'.format(i)` slip), and the batches the
tutorial's reader net gives equal its first 16 training examples and labels.
"""
from __future__ import annotations

import numpy as np
import pytest

from pycaffe2 import db, workspace
from tests.tutorials.harness import run_tutorial

IRIS_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/iris/iris.data"
SPECIES = {"Iris-setosa": (5.0, 3.4, 1.5, 0.2), "Iris-versicolor": (5.9, 2.8, 4.3, 1.3),
           "Iris-virginica": (6.6, 3.0, 5.6, 2.0)}


def iris_data() -> bytes:
    """150 rows like UCI's iris.data: `5.1,3.5,1.4,0.2,Iris-setosa`, 50 per species."""
    rng = np.random.default_rng(0)
    rows = []
    for name, means in SPECIES.items():
        for values in np.abs(rng.normal(means, 0.3, (50, 4))):
            rows.append(",".join(f"{v:.1f}" for v in values) + f",{name}")
    return ("\n".join(rows) + "\n\n").encode()


def python3_bytes(source: str) -> str:
    """The one Python-2-only line: bytes + str (see the module doc)."""
    line = "print(raw_data[:100] + '...')"
    assert line in source
    return source.replace(line, "print(raw_data[:100] + b'...')")


def test_create_your_own_dataset(tmp_path, monkeypatch):
    if not hasattr(pytest.importorskip("pycaffe2.utils"), "NumpyArrayToCaffe2Tensor"):
        pytest.skip("needs pycaffe2.utils.NumpyArrayToCaffe2Tensor (Caffe2's utils, another part of issue 15)")
    monkeypatch.setattr(np, "int", int, raising=False)  # NumPy's removed alias (see the module doc)
    names = run_tutorial("create_your_own_dataset", tmp_path, downloads={IRIS_URL: iris_data()},
                         before=python3_bytes)
    features, labels = names["features"], names["labels"]
    assert features.shape == (150, 4) and features.dtype == np.float32
    assert sorted(np.bincount(labels)) == [50, 50, 50]
    train_features, train_labels = names["train_features"], names["train_labels"]
    for name, count in (("iris_train.minidb", 100), ("iris_test.minidb", 50)):
        assert len(db.blob_names(str(tmp_path / name))) == 1  # one key, 'train_%03d', for all
        store = db.create_db("minidb", str(tmp_path / name), db.Mode.read)
        assert len(list(store.new_cursor())) == count
        store.close()
    # the tutorial's reader net, run again here: CreateDB reopens the DB on every run (as
    # Caffe2's did), so each run gives the first 16 training examples
    monkeypatch.chdir(tmp_path)  # the net names iris_train.minidb relative to the tutorial's folder
    net = names["net_proto"]
    workspace.ResetWorkspace()
    try:
        workspace.CreateNet(net)
        for _ in range(2):
            workspace.RunNet(net.Proto().name)
            np.testing.assert_array_equal(workspace.FetchBlob("X"), train_features[:16])
            np.testing.assert_array_equal(workspace.FetchBlob("Y"), train_labels[:16])
    finally:
        workspace.ResetWorkspace()
