// CUDA kernels of SoftmaxWithLoss (softmax_loss family), float32 values and int32
// class labels (the launchers check labels on the host first, so every label is in
// [0, cols)).
//
// Row kernels run one block per row (blocks stride over the rows when there are
// more rows than blocks) and reduce in shared memory; scalar results come from
// one-block kernels. Sums are taken in double. Launch with a power-of-two block
// of at most MAX_THREADS threads. Pointers documented as optional may be NULL.

#include "common.cuh"

#define LOG_PROB_FLOOR -46.051701859880914f  // log(1e-20)

__device__ float floor_log_prob(float lp) { return lp < LOG_PROB_FLOOR ? LOG_PROB_FLOOR : lp; }

extern "C" {

// Per row: P = exp(log_softmax(x)) and the row's loss, times its weight:
// -log_p[label] (labels), or -sum(max(log_p, log 1e-20) * target) (targets [rows, cols]).
// Exactly one of labels and targets is given; weights are optional.
__global__ void softmax_with_loss_rows(const float* x, const int* labels, const float* targets,
                                       const float* weights, float* p, float* losses,
                                       long long rows, long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const long long start = row * cols;
    float m = -INFINITY;
    FOR_EACH_IN_BLOCK(c, cols) { m = fmaxf(m, x[start + c]); }
    m = block_max(m, buf);
    double s = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) { s += expf(x[start + c] - m); }
    const float log_sum = logf((float)block_sum(s, buf));
    double part = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) {
      const float lp = (x[start + c] - m) - log_sum;
      p[start + c] = expf(lp);
      if (targets != NULL) part += floor_log_prob(lp) * targets[start + c];
    }
    float loss;
    if (targets != NULL) {  // the same branch in every thread: block_sum is safe here
      loss = -(float)block_sum(part, buf);
    } else {
      loss = -((x[start + labels[row]] - m) - log_sum);
    }
    if (threadIdx.x == 0) losses[row] = weights != NULL ? loss * weights[row] : loss;
  }
}

// One block: loss = sum(losses) * scale / sum(weights) (rows without weights), 0 when
// the weights sum to 0.
__global__ void softmax_with_loss_total(const float* losses, const float* weights, float* loss,
                                        float scale, long long rows) {
  __shared__ double buf[MAX_THREADS];
  double loss_sum = 0.0, weight_sum = 0.0;
  FOR_EACH_IN_BLOCK(i, rows) {
    loss_sum += losses[i];
    weight_sum += weights != NULL ? (double)weights[i] : 1.0;
  }
  loss_sum = block_sum(loss_sum, buf);
  weight_sum = block_sum(weight_sum, buf);
  if (threadIdx.x == 0) {
    *loss = weight_sum != 0.0 ? (float)(loss_sum * scale / weight_sum) : 0.f;
  }
}

// dX = (P - target) * weight * f, f = scale * dloss / total (0 when total is 0), total
// = *weight_sum with weights and rows without. Exactly one of labels and targets is given.
__global__ void softmax_with_loss_gradient(const float* p, const int* labels, const float* targets,
                                           const float* weights, const float* weight_sum,
                                           const float* dloss, float* dx, float scale,
                                           long long rows, long long cols) {
  const double total = weights != NULL ? (double)*weight_sum : (double)rows;
  const float f = total != 0.0 ? (float)(scale * (double)*dloss / total) : 0.f;
  FOR_EACH(i, rows * cols) {
    const long long row = i / cols;
    const long long col = i - row * cols;
    const float target = targets != NULL ? targets[i] : (labels[row] == col ? 1.f : 0.f);
    float g = p[i] - target;
    if (weights != NULL) g *= weights[row];
    dx[i] = g * f;
  }
}

// One block: *out = sum(x) as float (the sum is taken in double).
__global__ void sum_all(const float* x, float* out, long long n) {
  __shared__ double buf[MAX_THREADS];
  double s = 0.0;
  FOR_EACH_IN_BLOCK(i, n) { s += x[i]; }
  s = block_sum(s, buf);
  if (threadIdx.x == 0) *out = (float)s;
}

}  // extern "C"
