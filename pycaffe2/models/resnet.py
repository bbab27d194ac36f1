"""ResNet and ResNeXt built with brew, under Caffe2's blob names (models/resnet.py there).

He et al., "Deep Residual Learning for Image Recognition" (2015), and Xie et al.,
"Aggregated Residual Transformations for Deep Neural Networks" (2016).
Components are counted: component k's convolutions are `comp_k_conv_1..3`, their
batch norms `comp_k_spatbn_1..3`, its shortcut projection `shortcut_projection_k`
(+ `_spatbn`), and the sum `comp_k_sum_3` (`comp_k_sum_2` in a simple block).
"""
from __future__ import annotations

from pycaffe2 import brew
from pycaffe2.errors import PyCaffe2Error

MSRA = ("MSRAFill", {})
# ResNeXt depth -> bottleneck blocks in each of the four stages.
RESNEXT_BLOCK_CONFIG = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                        152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
RESNEXT_STRIDES = [1, 2, 2, 2]


class ResNetBuilder:
    """Appends residual components to `model`, from `prev_blob` on; `prev_blob`
    always names the newest output."""

    def __init__(self, model, prev_blob, no_bias, is_test, bn_epsilon=1e-5, bn_momentum=0.9):
        self.model, self.prev_blob = model, prev_blob
        self.no_bias = 1 if no_bias else 0
        self.is_test = is_test
        self.bn_epsilon, self.bn_momentum = bn_epsilon, bn_momentum
        self.comp_count = 0  # components finished
        self.comp_idx = 0  # layers inside the current component

    def add_conv(self, in_filters, out_filters, kernel, stride=1, group=1, pad=0):
        self.comp_idx += 1
        self.prev_blob = brew.conv(
            self.model, self.prev_blob, f"comp_{self.comp_count}_conv_{self.comp_idx}", in_filters,
            out_filters, weight_init=MSRA, kernel=kernel, stride=stride, group=group, pad=pad,
            no_bias=self.no_bias)
        return self.prev_blob

    def add_relu(self):
        self.prev_blob = brew.relu(self.model, self.prev_blob, self.prev_blob)  # in place
        return self.prev_blob

    def add_spatial_bn(self, num_filters):
        self.prev_blob = brew.spatial_bn(
            self.model, self.prev_blob, f"comp_{self.comp_count}_spatbn_{self.comp_idx}", num_filters,
            epsilon=self.bn_epsilon, momentum=self.bn_momentum, is_test=self.is_test)
        return self.prev_blob

    def _conv_bn_relu(self, in_filters, out_filters, kernel, spatial_batch_norm, relu=True, **conv_args):
        self.add_conv(in_filters, out_filters, kernel, **conv_args)
        if spatial_batch_norm:
            self.add_spatial_bn(out_filters)
        return self.add_relu() if relu else self.prev_blob

    def _shortcut(self, blob, in_filters, out_filters, stride, spatial_batch_norm, bn_args):
        """The input itself, or a strided 1x1 projection when the channel count changes."""
        if in_filters == out_filters:
            return blob
        name = f"shortcut_projection_{self.comp_count}"
        blob = brew.conv(self.model, blob, name, in_filters, out_filters, weight_init=MSRA, kernel=1,
                         stride=stride, no_bias=self.no_bias)
        if spatial_batch_norm:
            blob = brew.spatial_bn(self.model, blob, name + "_spatbn", out_filters, is_test=self.is_test,
                                   **bn_args)
        return blob

    def _close(self, shortcut, last):
        """Sum the branch with the shortcut, Relu it, and start the next component."""
        self.prev_blob = brew.sum(self.model, [shortcut, last], f"comp_{self.comp_count}_sum_{self.comp_idx}")
        self.comp_idx += 1
        self.add_relu()
        self.comp_count += 1

    def add_bottleneck(self, input_filters, base_filters, output_filters, stride=1, group=1,
                       spatial_batch_norm=True):
        """1x1 down to `base_filters`, 3x3 (strided, grouped), 1x1 up to `output_filters`,
        plus the shortcut (Figure 3 right of He et al.). Returns `output_filters`."""
        self.comp_idx = 0
        shortcut = self.prev_blob
        self._conv_bn_relu(input_filters, base_filters, 1, spatial_batch_norm)
        self._conv_bn_relu(base_filters, base_filters, 3, spatial_batch_norm, stride=stride, group=group, pad=1)
        last = self._conv_bn_relu(base_filters, output_filters, 1, spatial_batch_norm, relu=False)
        bn_args = {"epsilon": self.bn_epsilon, "momentum": self.bn_momentum}
        shortcut = self._shortcut(shortcut, input_filters, output_filters, stride, spatial_batch_norm, bn_args)
        self._close(shortcut, last)
        return output_filters

    def add_simple_block(self, input_filters, num_filters, down_sampling=False, spatial_batch_norm=True):
        """Two 3x3 convolutions (the first strided by 2 when `down_sampling`) plus the shortcut."""
        self.comp_idx = 0
        shortcut = self.prev_blob
        stride = 2 if down_sampling else 1
        self._conv_bn_relu(input_filters, num_filters, 3, spatial_batch_norm, stride=stride, pad=1)
        last = self._conv_bn_relu(num_filters, num_filters, 3, spatial_batch_norm, relu=False, pad=1)
        shortcut = self._shortcut(shortcut, input_filters, num_filters, stride, spatial_batch_norm,
                                  {"epsilon": 1e-3})
        self._close(shortcut, last)


def create_resnet_32x32(model, data, num_input_channels, num_groups, num_labels, is_test=False):
    """The CIFAR ResNet of He et al. section 4.2 (6n + 2 layers, n = `num_groups`):
    three stages of 2n simple blocks at 16, 32 and 64 filters; returns the softmax."""
    brew.conv(model, data, "conv1", num_input_channels, 16, kernel=3, stride=1)
    brew.spatial_bn(model, "conv1", "conv1_spatbn", 16, epsilon=1e-3, is_test=is_test)
    brew.relu(model, "conv1_spatbn", "relu1")
    builder = ResNetBuilder(model, "relu1", no_bias=0, is_test=is_test)
    filters_in = 16
    for stage, filters in enumerate([16, 32, 64]):
        for block in range(2 * num_groups):
            builder.add_simple_block(filters_in, filters, down_sampling=block == 0 and stage > 0)
            filters_in = filters
    brew.average_pool(model, builder.prev_blob, "final_avg", kernel=8, stride=1)
    brew.fc(model, "final_avg", "last_out", 64, num_labels)
    return brew.softmax(model, "last_out", "softmax")


def create_resnext(model, data, num_input_channels, num_labels, num_layers, num_groups, num_width_per_group,
                   label=None, is_test=False, no_loss=False, no_bias=1, conv1_kernel=7, conv1_stride=2,
                   final_avg_kernel=7, log=None, bn_epsilon=1e-5, bn_momentum=0.9):
    """ResNeXt-`num_layers` with `num_groups` x `num_width_per_group` bottlenecks.
    Returns the last FC output when `no_loss`, (softmax, loss) when a `label` is
    given, else the softmax. `log` is accepted for Caffe2's signature."""
    if num_layers not in RESNEXT_BLOCK_CONFIG:
        raise PyCaffe2Error(f"ResNeXt has no {num_layers}-layer configuration "
                            f"(one of {sorted(RESNEXT_BLOCK_CONFIG)})")
    filters = [64, 64, 128, 256, 512] if num_layers in (18, 34) else [64, 256, 512, 1024, 2048]
    conv = brew.conv(model, data, "conv1", num_input_channels, filters[0], weight_init=MSRA, kernel=conv1_kernel,
                     stride=conv1_stride, pad=3, no_bias=no_bias)
    bn = brew.spatial_bn(model, conv, "conv1_spatbn_relu", filters[0], epsilon=bn_epsilon, momentum=bn_momentum,
                         is_test=is_test)
    pool = brew.max_pool(model, brew.relu(model, bn, bn), "pool1", kernel=3, stride=2, pad=1)
    builder = ResNetBuilder(model, pool, no_bias=no_bias, is_test=is_test, bn_epsilon=bn_epsilon,
                            bn_momentum=bn_momentum)
    inner = num_groups * num_width_per_group
    dim = filters[0]
    for stage, blocks in enumerate(RESNEXT_BLOCK_CONFIG[num_layers]):
        for block in range(blocks):
            stride = RESNEXT_STRIDES[stage] if block == 0 else 1
            dim = builder.add_bottleneck(dim, inner, filters[stage + 1], stride=stride, group=num_groups)
        inner *= 2
    final_avg = brew.average_pool(model, builder.prev_blob, "final_avg", kernel=final_avg_kernel, stride=1,
                                  global_pooling=True)
    last_out = brew.fc(model, final_avg, f"last_out_L{num_labels}", filters[-1], num_labels)
    if no_loss:
        return last_out
    if label is not None:
        return model.SoftmaxWithLoss([last_out, label], ["softmax", "loss"])
    return brew.softmax(model, last_out, "softmax")


def create_resnet50(model, data, num_input_channels, num_labels, label=None, is_test=False, no_loss=False,
                    no_bias=0, conv1_kernel=7, conv1_stride=2, final_avg_kernel=7):
    """ResNet-50: ResNeXt-50 with one group of width 64."""
    return create_resnext(model, data, num_input_channels, num_labels, num_layers=50, num_groups=1,
                          num_width_per_group=64, label=label, is_test=is_test, no_loss=no_loss,
                          no_bias=no_bias, conv1_kernel=conv1_kernel, conv1_stride=conv1_stride,
                          final_avg_kernel=final_avg_kernel)
