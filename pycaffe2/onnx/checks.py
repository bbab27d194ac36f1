"""What a model must be before any converter sees it: a graph pycaffe2 can walk
(subgraphs nested at most MAX_SUBGRAPH_DEPTH deep, checked without recursion),
names in single static assignment (each value written once, read only after it
is written, graph inputs, initializers and outputs named and unique), and tensors
that hold their own data (a model naming external files, absolute or ../ or
not, would make pycaffe2 read where the user did not point it).

    check_model(model, model_file)     # ConversionError naming what is wrong
    tensor_array(tensor, what)         # a TensorProto's array, or Unsupported

Every message quotes names with repr(): a name may hold newlines or NULs.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import ConversionError
from pycaffe2.onnx.registry import Unsupported
from pycaffe2.proto.checks import MAX_NET_NESTING

# Subgraphs become nets inside op args, which pycaffe2 nests at most this deep.
MAX_SUBGRAPH_DEPTH = MAX_NET_NESTING


def _short(name: str, limit: int = 80) -> str:
    text = repr(name)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _subgraphs(node):
    """(attribute name, graph) for each graph a node carries."""
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.name, attribute.g
        for index, graph in enumerate(attribute.graphs):
            yield f"{attribute.name}[{index}]", graph


def walk_graphs(graph, model_file=None):
    """(graph, path, depth) for the graph and every subgraph, outermost first, walked
    without recursion; ConversionError past MAX_SUBGRAPH_DEPTH."""
    stack = [(graph, "", 0)]
    while stack:
        current, path, depth = stack.pop()
        yield current, path, depth
        for index, node in enumerate(current.node):
            for attr_name, sub in _subgraphs(node):
                where = f"{path} > node {index} ({node.op_type}) {attr_name}".lstrip(" >")
                if depth + 1 > MAX_SUBGRAPH_DEPTH:
                    shown = where if len(where) <= 160 else where[:157] + "..."
                    raise ConversionError(f"subgraphs nested more than {MAX_SUBGRAPH_DEPTH} deep (at {shown}); "
                                          f"at most {MAX_SUBGRAPH_DEPTH} levels are supported", file=model_file)
                stack.append((sub, where, depth + 1))


def _tensors(graph):
    """(what, TensorProto) for each tensor a graph itself holds (not its subgraphs')."""
    for tensor in graph.initializer:
        yield f"initializer {_short(tensor.name)}", tensor
    for sparse in graph.sparse_initializer:
        yield f"sparse initializer {_short(sparse.values.name)}", sparse.values
        yield f"sparse initializer {_short(sparse.values.name)} (indices)", sparse.indices
    for index, node in enumerate(graph.node):
        for attribute in node.attribute:
            what = f"node {index} ({node.op_type}) attribute {_short(attribute.name)}"
            if attribute.HasField("t"):
                yield what, attribute.t
            yield from ((what, t) for t in attribute.tensors)
            if attribute.HasField("sparse_tensor"):
                yield what, attribute.sparse_tensor.values
                yield what, attribute.sparse_tensor.indices
            for sparse in attribute.sparse_tensors:
                yield what, sparse.values
                yield what, sparse.indices


def external_problem(tensor) -> str | None:
    from onnx import TensorProto
    if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        return (f"keeps its data in external files (location {_short(location)}), which pycaffe2 does not read; "
                "save the model with the data inside (onnx.save_model(model, path, save_as_external_data=False))")
    return None


def check_model(model, model_file=None) -> None:
    """Refuse, naming the graph, node and value, what the converters must never see."""
    for graph, path, _ in walk_graphs(model.graph, model_file):
        where = f"subgraph {path}: " if path else ""
        for what, tensor in _tensors(graph):
            problem = external_problem(tensor)
            if problem:
                raise ConversionError(f"{where}{what} {problem}", file=model_file)
        for kind, entries in (("graph input", graph.input), ("graph output", graph.output),
                              ("value_info", graph.value_info)):
            for entry in entries:
                dims = _negative_dims(entry.type)
                if dims:  # ONNX's own shape inference aborts the process on some of these
                    raise ConversionError(f"{where}{kind} {_short(entry.name)} declares negative dims {dims[:4]}",
                                          file=model_file)
    _check_graph(model.graph, frozenset(), "", model_file)


def _negative_dims(type_proto) -> list:
    """The negative dim_values of a TypeProto, its sequence/optional/map elements included."""
    found, stack = [], [type_proto]
    while stack:
        current = stack.pop()
        kind = current.WhichOneof("value")
        if kind in ("tensor_type", "sparse_tensor_type"):
            found += [dim.dim_value for dim in getattr(current, kind).shape.dim if dim.dim_value < 0]
        elif kind in ("sequence_type", "optional_type"):
            stack.append(getattr(current, kind).elem_type)
        elif kind == "map_type":
            stack.append(current.map_type.value_type)
    return found


def _check_graph(graph, outer: frozenset, path: str, model_file) -> None:
    """Single static assignment within `graph`; `outer` are the names visible from
    enclosing graphs. Recursion is bounded: walk_graphs has checked the depth."""
    where = f"subgraph {path}: " if path else ""

    def fail(message, node_index=None, node=None):
        if node is None:
            raise ConversionError(where + message, file=model_file)
        raise ConversionError(where + message, file=model_file, op_index=node_index,
                              op_type=f"{node.op_type} {_short(node.name)}" if node.name else node.op_type)

    defined: dict[str, str] = {}
    for kind, entries in (("graph input", graph.input), ("initializer", graph.initializer)):
        seen = set()
        for entry in entries:
            if not entry.name:
                fail(f"{'an' if kind[0] == 'i' else 'a'} {kind} has an empty name")
            if entry.name in seen:
                fail(f"{kind} {_short(entry.name)} is declared twice")
            seen.add(entry.name)
            defined.setdefault(entry.name, f"a {kind}")  # an initializer may give an input's default
    writers = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name and name not in writers:
                writers[name] = index
    for index, node in enumerate(graph.node):
        if not node.op_type:
            fail("a node has no op type", index, node)
        names = set()
        for attribute in node.attribute:
            if attribute.name in names:
                fail(f"attribute {_short(attribute.name)} is given twice", index, node)
            names.add(attribute.name)
        for name in node.input:
            if not name or name in defined or name in outer:
                continue
            later = writers.get(name)
            if later is not None and later >= index:
                fail(f"reads {_short(name)}, which node {later} writes later: the nodes are not in "
                     "topological order, or form a cycle", index, node)
            fail(f"reads {_short(name)}, which no node writes and which is neither a graph input "
                 "nor an initializer", index, node)
        for name in node.output:
            if not name:
                continue
            if name in defined:
                fail(f"writes {_short(name)}, which is already {defined[name]} (each value is "
                     "written once)", index, node)
            defined[name] = f"written by node {index}"
        for attr_name, sub in _subgraphs(node):
            inner = f"{path} > node {index} ({node.op_type}) {attr_name}".lstrip(" >")
            _check_graph(sub, outer | frozenset(defined), inner, model_file)
    seen = set()
    for entry in graph.output:
        if not entry.name:
            fail("a graph output has an empty name")
        if entry.name in seen:
            fail(f"graph output {_short(entry.name)} is declared twice")
        seen.add(entry.name)
    missing = [_short(entry.name) for entry in graph.output
               if entry.name not in defined and entry.name not in outer]
    if missing:
        fail(f"graph outputs {', '.join(missing[:5])} are made by no node")


def tensor_array(tensor, what: str) -> np.ndarray:
    """The array a TensorProto holds; Unsupported (saying `what`) for external data,
    segments, an unknown element type, or data that does not fit its dims."""
    from onnx import TensorProto, numpy_helper
    problem = external_problem(tensor)
    if problem:
        raise Unsupported(f"{what} {problem}")
    if tensor.HasField("segment"):
        raise Unsupported(f"{what} is a segment of a tensor (not supported)")
    if tensor.data_type not in TensorProto.DataType.values() or tensor.data_type == TensorProto.UNDEFINED:
        raise Unsupported(f"{what} has data_type {tensor.data_type}, not an ONNX element type")
    if any(dim < 0 for dim in tensor.dims):
        raise Unsupported(f"{what} has negative dims {list(tensor.dims)[:8]}")
    try:
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001  (ONNX's and NumPy's errors on damaged data: say which)
        message = str(exc) or type(exc).__name__
        raise Unsupported(f"{what} cannot be read (dims {list(tensor.dims)[:8]}, data_type "
                          f"{TensorProto.DataType.Name(tensor.data_type)}): {message}") from None


def _onnx_schema(op_type: str, opset: int):
    from onnx import defs
    try:
        return defs.get_schema(op_type, min(opset, defs.onnx_opset_version()), "")
    except Exception:  # noqa: BLE001  (no such ONNX op: its converter, if any, decides)
        return None


def schema_problem(node, opset: int, required: bool = False) -> str | None:
    """What breaks ONNX's schema of the node's op at `opset`: the count of inputs or
    outputs, an attribute of another type, and with `required` a required attribute
    missing. Checked before the converter runs, so no converter trips on them (the
    required attributes only once a converter fails: one may refuse the node for a
    better reason first). None when fine (or when ONNX has no such op)."""
    if node.domain not in ("", "ai.onnx"):
        return None
    schema = _onnx_schema(node.op_type, opset)
    if schema is None:
        return None
    for kind, names, low, high in (("inputs", node.input, schema.min_input, schema.max_input),
                                   ("outputs", node.output, schema.min_output, schema.max_output)):
        count = len(names)
        if not low <= count <= high:
            wanted = f"at least {low}" if high >= 2**31 - 1 else (f"{low}" if low == high else f"{low} to {high}")
            return f"has {count} {kind}; {node.op_type} (opset {schema.since_version}) takes {wanted}"
    given = {attribute.name: attribute for attribute in node.attribute}
    for name, spec in schema.attributes.items():
        attribute = given.get(name)
        if attribute is None:
            if spec.required and required:
                return f"misses its required attribute {name!r}"
            continue
        if attribute.type != int(spec.type) and not attribute.ref_attr_name:
            from onnx import AttributeProto
            types = AttributeProto.AttributeType
            kind = types.Name(attribute.type) if attribute.type in types.values() else str(attribute.type)
            return f"attribute {name!r} is {kind}, {node.op_type} takes {spec.type.name}"
    return None
