"""A small training plan for the distributed tests: FC + SoftmaxWithLoss + plain SGD (WeightedSum)
on the digits of nets/examples/lenet_digits, with no batch statistics, so the mean of the shards'
gradients is the gradient of the whole batch."""
from pathlib import Path

DIGITS = Path(__file__).resolve().parents[2] / "nets" / "examples" / "lenet_digits"

FC_PLAN = """
init_net: &init
  name: fc_init
  op:
  - {type: CreateDB, output: [train_reader], arg: {db: "@TRAIN@", db_type: minidb}}
  - {type: CreateDB, output: [test_reader], arg: {db: "@TEST@", db_type: minidb}}
  - {type: XavierFill, output: [fc_w], arg: {shape: [10, 64]}}
  - {type: ConstantFill, output: [fc_b], arg: {shape: [10]}}
  - {type: ConstantFill, output: [ONE], arg: {shape: [1], value: 1.0}}
  - {type: ConstantFill, output: [iteration], arg: {shape: [1], value: 0, dtype: 10}}
  device_option: {device_type: 0, random_seed: 7}
predict_net: &test
  name: fc_test
  op:
  - {type: TensorProtosDBInput, input: [test_reader], output: [data, label], arg: {batch_size: 360}}
  - {type: FC, input: [data, fc_w, fc_b], output: [pred]}
  - {type: SoftmaxWithLoss, input: [pred, label], output: [softmax, loss]}
  - {type: Accuracy, input: [softmax, label], output: [accuracy]}
  external_output: [accuracy]
plan:
  name: fc_digits
  network:
  - *init
  - name: fc_train
    op:
    - {type: TensorProtosDBInput, input: [train_reader], output: [data, label], arg: {batch_size: @BATCH@}}
    - {type: FC, input: [data, fc_w, fc_b], output: [pred]}
    - {type: SoftmaxWithLoss, input: [pred, label], output: [softmax, loss]}
    - {type: Accuracy, input: [softmax, label], output: [accuracy]}
    - {type: ConstantFill, input: [loss], output: [loss_grad], arg: {value: 1.0}}
    - {type: SoftmaxWithLossGradient, input: [pred, label, softmax, loss_grad], output: [pred_grad]}
    - {type: FCGradient, input: [data, fc_w, pred_grad], output: [fc_w_grad, fc_b_grad, data_grad]}
    - {type: Iter, input: [iteration], output: [iteration]}
    - {type: LearningRate, input: [iteration], output: [lr], arg: {base_lr: -0.5, policy: fixed}}
    - {type: WeightedSum, input: [fc_w, ONE, fc_w_grad, lr], output: [fc_w]}
    - {type: WeightedSum, input: [fc_b, ONE, fc_b_grad, lr], output: [fc_b]}
    external_output: [loss, accuracy]
  - *test
  execution_step:
  - {name: init, network: [fc_init]}
  - {name: train, network: [fc_train], num_iter: @ITERS@}
  - {name: test, network: [fc_test]}
"""


def write_fc_plan(folder: Path, batch: int = 64, iters: int = 20, edit=None) -> Path:
    """The plan as a model file in `folder`; `edit(text)` may change it first (refusal tests)."""
    text = (FC_PLAN.replace("@TRAIN@", str(DIGITS / "train.minidb")).replace("@TEST@", str(DIGITS / "test.minidb"))
            .replace("@BATCH@", str(batch)).replace("@ITERS@", str(iters)))
    path = folder / "fc_plan.yaml"
    path.write_text(edit(text) if edit else text)
    return path
