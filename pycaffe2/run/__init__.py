"""Running model files and plans, as `pycaffe2 run` does: feeds, made-up weights,
training plans with progress and checkpoints.

    from pycaffe2.run import run_model
    out = run_model("caffe2_model/", feeds={"data": x}, fetch=["prob"])

- `model`: a model (init and predict net) made ready and run: `ModelRunner`,
  `run_model`, the checks before anything runs;
- `feeds`: `--feed NAME=PATH.npy` parsed into (name, array);
- `plan_job`: a model file's training plan: `PlanRun` (progress, Ctrl-C, checkpoints),
  with `progress` (tqdm bar or plain lines) and `checkpoint` (the checkpoint file);
- `confine`: the command line's data roots, checked before anything runs;
- `random_init`: made-up weights for predict nets published without their init net.
"""
from pycaffe2.run.feeds import parse_feed
from pycaffe2.run.model import (
    DEVICES,
    ModelRunner,
    RunError,
    RunFailure,
    check_iters,
    describe_missing_ops,
    missing_op_types,
    placed,
    run_model,
)
from pycaffe2.run.plan_job import PlanRun, carried_state
from pycaffe2.run.random_init import can_make_up, made_up_weights

__all__ = [
    "DEVICES", "ModelRunner", "PlanRun", "RunError", "RunFailure", "can_make_up", "carried_state",
    "check_iters", "describe_missing_ops", "made_up_weights", "missing_op_types", "parse_feed",
    "placed", "run_model",
]
