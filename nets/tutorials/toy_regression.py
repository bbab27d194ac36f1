"""Caffe2's toy regression tutorial flow, in the Caffe2 spelling (only the imports differ).

Learns y = 2.0 * x0 + 1.5 * x1 + 0.5 from noisy samples drawn inside the
train net, with gradients from AddGradientOperators and a plain SGD update,
run by a plan: an init step, then a training step of 100 iterations.
"""
import numpy as np

from pycaffe2 import core, workspace

init_net = core.Net("init")
W_gt = init_net.GivenTensorFill([], "W_gt", shape=[1, 2], values=[2.0, 1.5])
B_gt = init_net.GivenTensorFill([], "B_gt", shape=[1], values=[0.5])
ONE = init_net.ConstantFill([], "ONE", shape=[1], value=1.)
ITER = init_net.ConstantFill([], "ITER", shape=[1], value=0, dtype=core.DataType.INT64)
W = init_net.UniformFill([], "W", shape=[1, 2], min=-1., max=1.)
B = init_net.ConstantFill([], "B", shape=[1], value=0.0)

train_net = core.Net("train")
X = train_net.GaussianFill([], "X", shape=[64, 2], mean=0.0, std=1.0, run_once=0)
Y_gt = X.FC([W_gt, B_gt], "Y_gt")
noise = train_net.GaussianFill([], "noise", shape=[64, 1], mean=0.0, std=1.0, run_once=0)
Y_noise = Y_gt.Add(noise, "Y_noise")
Y_noise = Y_noise.StopGradient([], "Y_noise")
Y_pred = X.FC([W, B], "Y_pred")
dist = train_net.SquaredL2Distance([Y_noise, Y_pred], "dist")
loss = dist.AveragedLoss([], ["loss"])
gradient_map = train_net.AddGradientOperators([loss])
train_net.Iter(ITER, ITER)
LR = train_net.LearningRate(ITER, "LR", base_lr=-0.1, policy="step", stepsize=20, gamma=0.9)
train_net.WeightedSum([W, ONE, gradient_map[W], LR], W)
train_net.WeightedSum([B, ONE, gradient_map[B], LR], B)

plan = core.Plan("toy_regression")
plan.AddStep(core.execution_step("init", init_net))
plan.AddStep(core.execution_step("train", train_net, 100))
workspace.RunPlan(plan)

print("W after training:", workspace.FetchBlob("W"), "(truth [[2.0, 1.5]])")
print("B after training:", workspace.FetchBlob("B"), "(truth [0.5])")
print("loss:", workspace.FetchBlob("loss"))
LEARNED = np.concatenate([workspace.FetchBlob("W").ravel(), workspace.FetchBlob("B")])
