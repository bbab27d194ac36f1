"""ONNX both ways: `backend` runs ONNX models by translating them to NetDefs
(Caffe2's `caffe2.python.onnx.backend`); the exporter writes NetDefs as ONNX
models (Caffe2's `frontend`). Needs the `onnx` package (the `onnx` extra),
imported only when one of these modules is.

    registry.py     converters by ONNX op type and opset; the Node view
    context.py      what a converter sees: emit ops, constants, known values and shapes
    checks.py       what a model must be before any converter sees it (names, nesting,
                    tensors, ONNX's schemas)
    translate.py    ModelProto -> init/predict NetDefs (constant folding, traced mode)
    subgraph.py     If/Loop/Scan bodies -> NetDefs, for the control-flow converters
    backend.py      the ONNX backend API (prepare, run_model, run_node, ...)
    converters/     one module per area of ONNX ops
    export*.py      NetDefs -> ModelProto (export.py: the entry; export_graph, export_ops,
    frontend.py     export_nn, export_files); frontend.py: Caffe2's frontend names
"""
