"""What the command line's .onnx handling (pycaffe2/run/onnx_files.py) needs from the
onnx package, kept inside pycaffe2.onnx: the install check, a model's fed inputs and
their shapes, onnx.checker's verdict."""
from __future__ import annotations

from pycaffe2.errors import PyCaffe2Error

INSTALL_HINT = "pip install 'pycaffe2[onnx]'"


def require_onnx() -> None:
    """Raise a PyCaffe2Error saying how to install the onnx extra when it is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise PyCaffe2Error(f"ONNX files need the onnx package ({exc}): {INSTALL_HINT}") from None


def fed_inputs(model) -> list[str]:
    """The graph inputs an initializer does not fill, in order."""
    initialized = {t.name for t in model.graph.initializer}
    return [v.name for v in model.graph.input if v.name not in initialized]


def input_shapes(model) -> dict:
    """The fed inputs with static shapes: name -> (dims, dtype), as model files keep them."""
    from onnx import helper
    fed, shapes = set(fed_inputs(model)), {}
    for value in model.graph.input:
        tensor = value.type.tensor_type
        if value.name not in fed or not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if None in dims:
            continue
        try:
            dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        except (KeyError, TypeError, ValueError):
            continue
        shapes[value.name] = (tuple(dims), dtype)
    return shapes


def checker_problem(model) -> str | None:
    """onnx.checker's complaint about `model` (one line), or None."""
    import onnx
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        return " ".join(str(exc).split())[:500]
    return None
