"""Linear regression trained by a plan: pycaffe2's own walk-through of nets, gradients
and plans in Caffe2's Python API.

The true line is y = 2.0 * x0 + 1.5 * x1 + 0.5. Each training iteration draws a fresh
batch of 64 points inside the net (GaussianFill with run_once=0), adds unit noise to the
true line's answer, and takes one SGD step on the squared error, with the step size from
a LearningRate op that decays it every 20 iterations. A plan runs the setup net once and
the training net 100 times; LEARNED holds [w0, w1, b] afterwards.
"""
import numpy as np

from pycaffe2 import core, workspace

TRUE_W, TRUE_B = [2.0, 1.5], [0.5]
BATCH, STEPS = 64, 100

setup = core.Net("toy_setup")
truth_w = setup.GivenTensorFill([], "truth_w", shape=[1, 2], values=TRUE_W)
truth_b = setup.GivenTensorFill([], "truth_b", shape=[1], values=TRUE_B)
w = setup.UniformFill([], "w", shape=[1, 2], min=-1.0, max=1.0)
b = setup.ConstantFill([], "b", shape=[1], value=0.0)
one = setup.ConstantFill([], "one", shape=[1], value=1.0)
step = setup.ConstantFill([], "step", shape=[1], value=0, dtype=core.DataType.INT64)

train = core.Net("toy_train")
points = train.GaussianFill([], "points", shape=[BATCH, 2], mean=0.0, std=1.0, run_once=0)
jitter = train.GaussianFill([], "jitter", shape=[BATCH, 1], mean=0.0, std=1.0, run_once=0)
target = points.FC([truth_w, truth_b], "clean_target").Add(jitter, "target")
target = target.StopGradient([], "target")  # the data, not something to learn
guess = points.FC([w, b], "guess")
loss = train.SquaredL2Distance([target, guess], "sq_err").AveragedLoss([], "loss")
grads = train.AddGradientOperators([loss])
train.Iter(step, step)
rate = train.LearningRate(step, "rate", base_lr=-0.1, policy="step", stepsize=20, gamma=0.9)
for param in (w, b):  # param <- 1 * param + rate * grad (rate is negative)
    train.WeightedSum([param, one, grads[param], rate], param)

plan = core.Plan("toy_regression")
plan.AddStep(core.execution_step("setup", setup))
plan.AddStep(core.execution_step("train", train, STEPS))
workspace.RunPlan(plan)

LEARNED = np.concatenate([workspace.FetchBlob("w").ravel(), workspace.FetchBlob("b")])
print(f"learned w = {LEARNED[:2]}, b = {LEARNED[2]:.3f} (truth {TRUE_W}, {TRUE_B[0]}); "
      f"last loss {float(workspace.FetchBlob('loss')):.3f}")
