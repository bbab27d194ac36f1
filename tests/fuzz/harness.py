"""The loader fuzzer shared by tests/fuzz (bounded, through hypothesis) and
scripts/fuzz_loaders.py (long runs): seeds (tests/fuzz/seeds.py), mutations
(tests/fuzz/mutations.py), and here one target per loader family that feeds a
file to the loaders the way the CLI does. A target passes when the loaders
accept the file, or refuse it with a PyCaffe2Error that names the file; an
accepted net must also convert to every format and read back. Anything else
raised, or a run past the time limit, is a failure.

Families: pb, pbtxt, json, yaml (net files), model (model files, with a plan
or not), folder (init_net.pb + predict_net.pb), minidb (Save files and data
files, as db info, Load and TensorProtosDBInput read them), lmdb (the same
records stored through lmdb) and lmdbfile (a damaged data.mdb; both when the
lmdb package is there), exported (a predictor db read back and run), npy and
npz (--feed files, and db write's input).
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

from pycaffe2 import db, netfile
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.run.feeds import parse_feed
from pycaffe2.schema.checker import check_model
from tests.fuzz.mutations import _records, mutate
from tests.fuzz.seeds import FAMILIES, REPO, seeds

__all__ = ["FAMILIES", "REPO", "fuzz_with_hypothesis", "mutate", "run_one", "seeds"]


# ---------------------------------------------------------------- targets

def _net_target(suffix: str):
    def target(data: bytes, folder: Path) -> None:
        path = folder / f"net{suffix}"
        path.write_bytes(data)
        _load_check_convert(path, folder)
    return target


def _load_check_convert(path: Path, folder: Path) -> None:
    """What validate and convert do with the file: load, check, write in each
    format; what was written must read back."""
    model = netfile.load_model(path)
    check_model(model)
    if model.init_net is None and model.plan is None and not model.input_shapes:
        outputs = [folder / f"out{s}" for s in (".pb", ".pbtxt", ".json", ".yaml")]
    else:
        outputs = [folder / "out.json", folder / "out.yaml"]
    for out in outputs:
        netfile.save_model(model, out)
        try:
            netfile.load_model(out)
        except PyCaffe2Error as exc:
            raise AssertionError(f"{out.suffix} written from an accepted file does not read back: "
                                 f"{exc}") from exc


def _folder_target(data: bytes, folder: Path) -> None:
    model_dir = folder / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "init_net.pb").write_bytes(seeds()["folder"][0])
    (model_dir / "predict_net.pb").write_bytes(data)
    if data[:1] == b"\x00":  # now and then the init net is the mutated one
        (model_dir / "init_net.pb").write_bytes(data[1:])
    _load_check_convert(model_dir, folder)


def _minidb_target(data: bytes, folder: Path) -> None:
    path = str(folder / "in.minidb")
    Path(path).write_bytes(data)
    _read_db(path, "minidb")


def _read_db(path: str, db_type: str) -> None:
    """What db info, Load and TensorProtosDBInput do with a DB."""
    db.describe_db(path, db_type)
    reader = db.DBReader(db_type, path)
    try:
        key, value = reader.read()
        if db._is_blob_proto(value):
            db.load_blobs(path, db_type)
            db.blob_names(path, db_type)
            return
        for _ in range(3):  # as TensorProtosDBInput reads records
            protos = db.parse_tensor_protos(value, f"{path}: record '{key}'")
            for tensor in protos.protos:
                db.record_tensor(tensor, path, key)
            key, value = reader.read()
    finally:
        reader.db.close()  # the shared lmdb handle goes before the folder is made again


def _fresh_folder(folder: Path, name: str) -> Path:
    path = folder / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def _lmdb_target(data: bytes, folder: Path) -> None:
    """A minidb's records (or the whole input as one value) stored through lmdb, raw keys and all."""
    import lmdb
    path = _fresh_folder(folder, "in.lmdb")
    records = [(k, v) for k, v in (_records(data) or [(b"k", data)]) if 0 < len(k) <= 511]
    with lmdb.open(str(path), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value)
    _read_db(str(path), "lmdb")


def _lmdbfile_target(data: bytes, folder: Path) -> None:
    path = _fresh_folder(folder, "in.lmdb")
    (path / "data.mdb").write_bytes(data)
    _read_db(str(path), "lmdb")


def _exported_target(data: bytes, folder: Path) -> None:
    """A predictor db read back with prepare_prediction_net (its init nets run)."""
    from pycaffe2 import workspace
    from pycaffe2.predictor import predictor_exporter
    path = folder / "export.minidb"
    path.write_bytes(data)
    with workspace.WorkspaceGuard("fuzz-exported"):
        workspace.ResetWorkspace()
        predictor_exporter.prepare_prediction_net(str(path), "minidb")


def _npy_target(data: bytes, folder: Path) -> None:
    path = folder / "in.npy"
    path.write_bytes(data)
    parse_feed(f"X={path}")


def _npz_target(data: bytes, folder: Path) -> None:
    path = folder / "in.npz"
    path.write_bytes(data)
    parse_feed(f"X={path}")
    parse_feed(f"Y={path}:a")
    db.write_npz_to_minidb(str(path), str(folder / "out.minidb"))


TARGETS = {"pb": _net_target(".pb"), "pbtxt": _net_target(".pbtxt"), "json": _net_target(".json"),
           "yaml": _net_target(".yaml"), "model": _net_target(".yaml"), "folder": _folder_target,
           "minidb": _minidb_target, "lmdb": _lmdb_target, "lmdbfile": _lmdbfile_target,
           "exported": _exported_target, "npy": _npy_target, "npz": _npz_target}


class Hang(Exception):
    """A loader ran past run_one's time limit on one input."""


def _hang(signum, frame):
    raise Hang("still running after the time limit")


def run_one(family: str, data: bytes, folder: Path,
            seconds: float = 10.0) -> tuple[str, BaseException | None]:
    """('accepted', None) or ('refused', the PyCaffe2Error naming the file)
    when the loader behaves; ('failed', the exception) when it raises anything
    else, an error that does not name the file, or runs past `seconds` (a Hang;
    checked on the main thread only)."""
    cwd = os.getcwd()
    timed = threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _hang)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        os.chdir(folder)  # relative paths inside a file stay in the scratch folder
        TARGETS[family](data, folder)
    except PyCaffe2Error as exc:
        if str(folder) not in str(exc):
            return "failed", AssertionError(f"the error does not name the file: {exc}")
        return "refused", exc
    except Exception as exc:  # noqa: BLE001 (the fuzzer's whole point)
        return "failed", exc
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        os.chdir(cwd)
    return "accepted", None


def fuzz_with_hypothesis(family: str, folder: Path, examples: int) -> None:
    """The bounded fuzz test of one family: hypothesis draws the random choices
    of `mutate` (so a failure shrinks to a short list of them) and fails the
    test on the first input that ends in anything but a PyCaffe2Error."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False))
    def check(rng):
        data = mutate(family, rng)
        outcome, exc = run_one(family, data, folder)
        if outcome == "failed":
            raise AssertionError(f"{family} loader raised {type(exc).__name__}: {exc} "
                                 f"on {data[:200]!r}") from exc

    check()
