"""Seed files of each loader family for the fuzzer (tests/fuzz/harness.py):
the nets of nets/ (and the small real Caffe2 nets of ../shared when it is
there) rendered in every format, model files with and without a plan, a model
folder's .pb pair, and small generated minidb files, .npy and .npz arrays."""
from __future__ import annotations

import importlib.util
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from pycaffe2 import db, netfile
from pycaffe2.qtensor import Int8Tensor

REPO = Path(__file__).resolve().parents[2]
# lmdb: records stored through the lmdb backend; lmdbfile: a damaged data.mdb itself;
# exported: a predictor db (predictor_exporter) read back and run.
_LMDB = ("lmdb", "lmdbfile") if importlib.util.find_spec("lmdb") else ()
FAMILIES = ("pb", "pbtxt", "json", "yaml", "model", "folder", "minidb", *_LMDB, "exported", "npy", "npz")
_SEED_NETS = ("nets/hard_sigmoid.yaml", "nets/mlp.yaml", "nets/sync_spatial_bn.yaml",
              "nets/models/lenet")
_REAL_NETS = ("caffe2_ios_predict_only/tinyYoloPredict.pb", "hmc_random_test/predict_net.pb",
              "hungmingwu_pytorch_export/predict_net.pb")


# Nets held in args (If with both branches, While with a cond_net, a Do binding
# blobs, a Do inside an If): the checker, CreateNet and convert walk them.
_NESTED_NET = """\
name: control
external_input: [c, x, ws]
external_output: [y, z]
op:
  - {type: Copy, input: [x], output: [y]}
  - type: If
    input: [c, x]
    output: [y]
    arg:
      then_net: {name: t, op: [{type: Scale, input: [x], output: [y], arg: {scale: 2.0}}]}
      else_net:
        name: e
        op:
          - type: Do
            input: [x, ws]
            output: [y, ws]
            arg:
              inner_blobs: [a, b]
              outer_blobs_idx: [0, 1]
              net: {name: d, op: [{type: Sqr, input: [a], output: [b]}]}
  - type: While
    input: [c, y]
    output: [z]
    arg:
      loop_net: {name: l, op: [{type: Add, input: [y, y], output: [z]}]}
      cond_net: {name: cn, op: [{type: Copy, input: [c], output: [c]}]}
"""


def _net_seeds() -> list[netfile.Model]:
    models = [netfile.load_model(REPO / name) for name in _SEED_NETS]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "control.yaml").write_text(_NESTED_NET)
        models.append(netfile.load_model(Path(tmp) / "control.yaml"))
    shared = REPO.parent / "shared" / "caffe2_models"
    models += [netfile.load_model(shared / name) for name in _REAL_NETS if (shared / name).is_file()]
    return models


def _render(model: netfile.Model, suffix: str, folder: Path) -> bytes:
    path = folder / f"seed{suffix}"
    netfile.save_net(model.predict_net, path)
    return path.read_bytes()


def _minidb_seeds(folder: Path) -> list[bytes]:
    path, seeds = str(folder / "seed.minidb"), []
    db.save_blobs(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.arange(5),
                         "h": np.ones(3, np.float16), "b": np.array([True, False]),
                         "s": np.array([b"ab", b"c"], dtype=object), "raw": b"\x00\xff",
                         "q": Int8Tensor(np.arange(4, dtype=np.uint8).reshape(2, 2), 0.5, 3),  # Int8TensorCPU
                         "qb": Int8Tensor(np.array([-7, 9], np.int32), 0.25, 0)}, chunk_size=4)
    seeds.append(Path(path).read_bytes())
    arrays = {"data": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 2, 2),
              "label": np.arange(3, dtype=np.int32)}
    np.savez(folder / "data.npz", **arrays)
    db.write_npz_to_minidb(str(folder / "data.npz"), path)
    seeds.append(Path(path).read_bytes())
    return seeds


def _lmdbfile_seeds(folder: Path) -> list[bytes]:
    """data.mdb of a Save file and of a data file, both written as lmdb."""
    path = folder / "seed.lmdb"
    db.save_blobs(str(path), {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "raw": b"\x00\xff"},
                  "lmdb", chunk_size=4)
    found = [(path / "data.mdb").read_bytes()]
    db.write_npz_to_db(str(folder / "data.npz"), str(path), db_type="lmdb")
    return found + [(path / "data.mdb").read_bytes()]


def _exported_seeds(folder: Path) -> list[bytes]:
    """A predictor db as predictor_exporter.save_to_db writes it: an FC net and its parameters."""
    from pycaffe2 import core, workspace
    from pycaffe2.predictor import predictor_exporter

    net = core.Net("fc")
    net.FC(["x", "w", "b"], "y")
    with workspace.WorkspaceGuard("fuzz-seed"):  # the caller's workspace stays as it was
        workspace.FeedBlob("w", np.ones((2, 3), np.float32))
        workspace.FeedBlob("b", np.zeros(2, np.float32))
        meta = predictor_exporter.PredictorExportMeta(predict_net=net, parameters=["w", "b"],
                                                      inputs=["x"], outputs=["y"], shapes={"x": (1, 3), "y": (1, 2)})
        predictor_exporter.save_to_db("minidb", str(folder / "export.minidb"), meta)
    return [(folder / "export.minidb").read_bytes()]


def _npy_seeds(folder: Path) -> list[bytes]:
    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4), np.asfortranarray(np.ones((2, 3))),
              np.array([1, 2], np.int8), np.zeros((0, 3), np.int64), np.array(3.5),
              np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]), np.array(["ab", "c"])]
    seeds = []
    for array in arrays:
        np.save(folder / "seed.npy", array)
        seeds.append((folder / "seed.npy").read_bytes())
    return seeds


def _npz_seeds(folder: Path) -> list[bytes]:
    seeds = []
    for save in (np.savez, np.savez_compressed):
        save(folder / "seed.npz", X=np.arange(8, dtype=np.float32).reshape(2, 4), a=np.ones(3))
        seeds.append((folder / "seed.npz").read_bytes())
    return seeds


# A small model with a training plan (nets/examples/lenet_digits/model.yaml is
# the real one, but 20 kB of YAML makes each input slow).
_PLAN_MODEL = """\
init_net:
  name: init
  op:
  - {type: XavierFill, output: [w], arg: {shape: [4, 3]}}
  - {type: ConstantFill, output: [b], arg: {shape: [4], value: 0.0}}
  - {type: GaussianFill, output: [x], arg: {shape: [2, 3]}}
  - {type: ConstantFill, output: [lr], arg: {shape: [1], value: -0.1}}
predict_net:
  name: train
  external_input: [x, w, b, lr]
  op:
  - {type: FC, input: [x, w, b], output: [y]}
  - {type: SquaredL2Distance, input: [y, y], output: [loss]}
  - {type: WeightedSum, input: [w, lr, w, lr], output: [w2]}
plan:
  name: fit
  network:
  - {name: init, op: [{type: ConstantFill, output: [one], arg: [{name: shape, ints: [1]}]}]}
  - {name: train, external_input: [x, w, b], op: [{type: FC, input: [x, w, b], output: [y]}]}
  execution_step:
  - {name: init, network: [init]}
  - {name: loop, network: [train], num_iter: 3, report_interval: 1}
input_shapes:
  x: [2, 3]
  w: {shape: [4, 3], dtype: float32}
"""


@lru_cache(maxsize=1)
def seeds() -> dict[str, list[bytes]]:
    """{family: [seed file bytes]}: the nets of nets/ (and the small real
    Caffe2 nets when ../shared is there) in every format, and small
    generated DBs and arrays."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = _net_seeds()
        found = {suffix.strip("."): [_render(m, suffix, folder) for m in models]
                 for suffix in (".pb", ".pbtxt", ".json", ".yaml")}
        found["model"] = [(REPO / "nets/mlp.yaml").read_bytes(), _PLAN_MODEL.encode()]
        found["folder"] = [(REPO / "nets/models/lenet/init_net.pb").read_bytes(),
                           (REPO / "nets/models/lenet/predict_net.pb").read_bytes()]
        found["minidb"] = _minidb_seeds(folder)
        found["lmdb"] = found["minidb"]  # the same records, stored through lmdb
        if _LMDB:
            found["lmdbfile"] = _lmdbfile_seeds(folder)
        found["exported"] = _exported_seeds(folder)
        found["npy"] = _npy_seeds(folder)
        found["npz"] = _npz_seeds(folder)
    return found
