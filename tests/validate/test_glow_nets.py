"""Glow's Caffe2 importer test nets (../shared/glow_caffe2_nets: real Caffe2 text nets that
another project wrote) validate clean, an init net and the predict net it fills together.

An init net pairs with the predict nets of its name (`fc_init_net` with `fc_predict_net`,
`gather_const_fold_init` with `gather_const_fold`); a predict net without one of its name
pairs with the init net that makes every blob it reads and nothing else provides, of the
name closest to its own (Glow's own test loads `uniform_fill_input_as_shape` with
`gaussian_fill_input_as_shape_init`).

EXCEPTIONS says what does not validate, each entry with its reason: a net that uses an
op only Glow defines, or one that is inconsistent in itself. Every other net validates
clean; an excepted net that starts validating must leave the list (the test says so).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pycaffe2 import netfile
from pycaffe2.schema.checker import check_model
from tests.conftest import SHARED

GLOW_NETS = SHARED / "glow_caffe2_nets"
MISSING = f"needs {GLOW_NETS} (Glow's Caffe2 importer test nets, from pytorch/glow tests/models/caffe2Models)"

_ROLE = re.compile(r"(?:^|_)(init_net|init|predict_net|pred_net|predict|net)$")
_INIT = re.compile(r"(?:^|_)init(?:_net)?$")

# file -> why it does not validate here, and never will
EXCEPTIONS = {
    "fill_examples_with_indicator.pbtxt": "needs op FillExamplesWithIndicator, which Glow itself defines",
    "sqr_predict_net.pbtxt": "the file itself is inconsistent: its op reads 'input' but the net declares "
                             "external_input 'inputs'",
    "empty_predict_net.pbtxt": "the file itself is inconsistent: external_output 'unused_output' is never "
                               "produced",
    "pre_partitioned_fill_test_predict_net.pbtxt": "the file itself is inconsistent: its Copy ops take two "
                                                   "inputs; Caffe2's Copy takes one",
    "convtranspose_nhwc.pbtxt": "the file itself is inconsistent: its NHWC ConvTranspose has the filter "
                                "[1, 1, 3, 3] laid out as NCHW's [C, M, kH, kW]; Caffe2 reads an NHWC filter "
                                "as [C, kH, kW, M] (kH 1 against kernel 3, M 3 against a bias of 1)",
    "layernorm_weight_bias_pred_net.pbtxt": "the file itself is inconsistent: LayerNorm gets weight and bias "
                                            "but not elementwise_affine=1, so Caffe2 would not apply them",
}

def _role_key(path: Path) -> str:
    return _ROLE.sub("", path.stem)


def _made(net) -> set[str]:
    return {blob for op in net.op for blob in op.output}


def _read_not_made(net) -> set[str]:
    """Blobs the net's ops read that neither an external_input nor an op of its own provides."""
    return {blob for op in net.op for blob in op.input} - _made(net) - set(net.external_input)


def _likeness(init: Path, path: Path) -> float:
    """How alike two file names are: the words their stems share, of all their words."""
    a, b = set(_role_key(init).split("_")), set(_role_key(path).split("_"))
    return len(a & b) / len(a | b)


def units() -> list[tuple[Path, Path | None]]:
    """(net file, its init net file or None) for every file of the folder; an init net
    that fills some predict net is checked with it, and alone only when it fills none."""
    files = sorted(GLOW_NETS.glob("*.pbtxt")) + sorted(GLOW_NETS.glob("*.pb"))
    inits = [p for p in files if _INIT.search(p.stem)]
    by_key = {_role_key(p): p for p in inits}
    loaded = {p: netfile.load_net(p) for p in inits}
    pairs, used = [], set()
    for path in files:
        if path in loaded:
            continue
        init = by_key.get(_role_key(path))
        if init is None:
            wanted = _read_not_made(netfile.load_net(path))
            makers = [p for p in inits if wanted and wanted <= _made(loaded[p])]
            init = max(makers, key=lambda p: _likeness(p, path), default=None)
            if init is not None and not _likeness(init, path):
                init = None  # makes the blobs by chance (a blob named 'input'), not this net's init net
        pairs.append((path, init))
        used.add(init)
    return pairs + [(p, None) for p in inits if p not in used]


def _params():
    if not GLOW_NETS.is_dir():
        return [pytest.param(None, None, id="glow-nets-missing", marks=pytest.mark.skip(reason=MISSING))]
    return [pytest.param(path, init, id=path.name) for path, init in units()]


def problems_of(path: Path, init: Path | None):
    model = netfile.load_model(path)
    if init is not None:
        model.init_net, model.files["init_net"] = netfile.load_net(init), str(init)
    return check_model(model)


@pytest.mark.parametrize("path, init", _params())
def test_glow_net_validates(path, init):
    names = {path.name} | ({init.name} if init else set())
    problems = problems_of(path, init)
    excepted = names & set(EXCEPTIONS)
    if excepted:
        assert problems, f"{', '.join(sorted(excepted))} now validates: drop it from EXCEPTIONS"
        pytest.skip("; ".join(f"{name}: {EXCEPTIONS[name]}" for name in sorted(excepted)))
    assert problems == [], "\n".join(str(p) for p in problems)


@pytest.mark.skipif(not GLOW_NETS.is_dir(), reason=MISSING)
def test_the_lists_name_files_of_the_folder():
    present = {p.name for p in GLOW_NETS.iterdir()}
    assert set(EXCEPTIONS) - present == set()
