"""Operator kernels: one module per op family, registered by op type (the
registries and registration verbs are in registry.py, the CUDA launch helpers
in _cuda.py).

A CPU kernel takes the op's input arrays positionally and its schema args as
keyword-only parameters without defaults (the schema supplies every default
once, when a net is created). It returns its outputs: a tuple, or one array
for a single output; optional outputs the op did not ask for are dropped.
Kernels never modify their inputs: that is what lets a failing op leave the
workspace as it was.

A kernel may also declare the keyword-only parameters `num_outputs` (how many
outputs the op asked for), `rng` (a NumPy Generator, seeded from the op's
device_option.random_seed when it has one) and `input_names` / `output_names`
(the op's blob names, for ops such as Save that key data by name) and
`workspace` (the executor Workspace the net is created in, None when it is
compiled without one: the Python op hands it to functions registered with
pass_workspace); the executor fills them. Control ops (control.py) also take
`subnets` (their net args, compiled), `is_gradient_op` and `blobs` (the live
blob mapping, at run time); such a kernel returns {name: value} of the blobs it writes.
Ops running a net of their own (RecurrentNetwork's step net) take `compile_net`
(the executor's compile_net(net, known_blobs)).

`register_cpu(..., specialize=True)` registers a kernel factory instead: it
takes only the keyword args, once, when the net is created, and returns the
function to call on the inputs (e.g. plain `np.add` when Add has no legacy
broadcast), so args cost nothing per run.
"""
from pycaffe2.operators.registry import (
    ALL_SCHEMA_ARGS,
    CONTEXT_PARAMS,
    CPU_KERNELS,
    CUDA_KERNELS,
    Kernel,
    load_kernels,
    register_cpu,
    register_cuda,
)

__all__ = ["ALL_SCHEMA_ARGS", "CONTEXT_PARAMS", "CPU_KERNELS", "CUDA_KERNELS", "Kernel", "load_kernels", "register_cpu",
           "register_cuda"]
