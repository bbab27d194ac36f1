// CUDA kernels of the loss family, float32 values and int32 class labels (the
// launchers check labels on the host first, so every label is in [0, cols)).
// SoftmaxWithLoss's are in softmax_loss.cu.
//
// Row kernels run one block per row (blocks stride over the rows when there are
// more rows than blocks) and reduce in shared memory; scalar results come from
// one-block kernels. Sums are taken in double. Launch with a power-of-two block
// of at most MAX_THREADS threads. Pointers documented as optional may be NULL.

#include "common.cuh"

#define PROB_FLOOR 1e-20f

// max(p, 1e-20) that keeps a NaN, as NumPy's maximum does (fmaxf would drop it).
__device__ float floor_prob(float p) { return p < PROB_FLOOR ? PROB_FLOOR : p; }

extern "C" {

// One block: *out = sum(x) / n in double, rounded to float (n > 0).
__global__ void mean_all(const float* x, float* out, long long n) {
  __shared__ double buf[MAX_THREADS];
  double s = 0.0;
  FOR_EACH_IN_BLOCK(i, n) { s += x[i]; }
  s = block_sum(s, buf);
  if (threadIdx.x == 0) *out = (float)(s / (double)n);
}

// dX = dY / n everywhere (dY holds one element).
__global__ void averaged_loss_gradient(const float* dy, float* dx, long long n) {
  const float value = (float)((double)*dy / (double)n);
  FOR_EACH(i, n) { dx[i] = value; }
}

__global__ void label_cross_entropy(const float* x, const int* label, float* y, long long rows,
                                    long long cols) {
  FOR_EACH(i, rows) { y[i] = -logf(floor_prob(x[i * cols + label[i]])); }
}

__global__ void label_cross_entropy_gradient(const float* x, const int* label, const float* dy,
                                             float* dx, long long rows, long long cols) {
  FOR_EACH(i, rows * cols) {
    const long long row = i / cols;
    const long long col = i - row * cols;
    dx[i] = label[row] == col ? -dy[row] / floor_prob(x[i]) : 0.f;
  }
}

// Z[row] = 0.5 * sum((X - Y)^2) over the row.
__global__ void squared_l2_distance_rows(const float* x, const float* y, float* z, long long rows,
                                         long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const long long start = row * cols;
    double s = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) {
      const float d = x[start + c] - y[start + c];
      s += d * d;
    }
    s = block_sum(s, buf);
    if (threadIdx.x == 0) z[row] = (float)s * 0.5f;
  }
}

__global__ void squared_l2_distance_gradient(const float* x, const float* y, const float* dz,
                                             float* dx, float* dy, long long rows, long long cols) {
  FOR_EACH(i, rows * cols) {
    const float g = (x[i] - y[i]) * dz[i / cols];
    dx[i] = g;
    dy[i] = -g;
  }
}

// correct[row] = 1 when fewer than top_k classes rank ahead of the label: a higher
// score, or an equal score at a lower class index (a stable descending sort).
__global__ void accuracy_rows(const float* scores, const int* labels, float* correct, int top_k,
                              long long rows, long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const long long start = row * cols;
    const long long label = labels[row];
    const float label_score = scores[start + label];
    double ahead = 0.0;  // a count: exact in double
    FOR_EACH_IN_BLOCK(c, cols) {
      const float v = scores[start + c];
      if (v > label_score || (v == label_score && c < label)) ahead += 1.f;
    }
    ahead = block_sum(ahead, buf);
    if (threadIdx.x == 0) correct[row] = ahead < (double)top_k ? 1.f : 0.f;
  }
}

}  // extern "C"

// Cross-entropies on logits and soft labels, outside extern "C": device helpers.
#define LOG_2 0.6931471805599453f

// log(1 + exp(x)) as NumPy's logaddexp(x, 0) takes it (no overflow; NaN stays NaN).
__device__ float softplus(float x) {
  if (x == 0.f) return LOG_2;
  return x > 0.f ? __fadd_rn(x, log1pf(expf(-x))) : log1pf(expf(x));
}

__device__ float stable_sigmoid(float x) { return expf(-softplus(-x)); }

// Per element of SigmoidCrossEntropyWithLogits, by variant (loss.py's SIGMOID_XENT_CODES):
// the log-likelihood whose row mean is -loss, and its derivative in the logit. Rounded
// step by step as NumPy computes them (no fused multiply-adds: their differences cancel).
__device__ float sigmoid_xent_element(float lg, float t, int variant) {
  if (variant == 1) return __fmul_rn(__fsub_rn(2.f * t, 1.f), -softplus(-lg));  // log_D_trick
  const float weight = variant == 2 ? __fsub_rn(1.f, t) : 1.f;                   // unjoined_lr_loss
  return __fsub_rn(__fmul_rn(t, lg), __fmul_rn(weight, softplus(lg)));
}

__device__ float sigmoid_xent_derivative(float lg, float t, int variant) {
  if (variant == 1) return __fmul_rn(__fsub_rn(2.f * t, 1.f), stable_sigmoid(-lg));
  const float weight = variant == 2 ? __fsub_rn(1.f, t) : 1.f;
  return __fsub_rn(t, __fmul_rn(weight, stable_sigmoid(lg)));
}

extern "C" {

// y[row] = -mean of the row's log-likelihoods (NaN for an empty row, as NumPy's mean).
__global__ void sigmoid_xent_rows(const float* logits, const float* targets, float* y, int variant,
                                  long long rows, long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const long long start = row * cols;
    double s = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) { s += sigmoid_xent_element(logits[start + c], targets[start + c], variant); }
    s = block_sum(s, buf);
    if (threadIdx.x == 0) y[row] = -(float)(s / (double)cols);
  }
}

// dlogits = (dY[row] / -cols) * derivative, rounded as the NumPy kernel does.
__global__ void sigmoid_xent_gradient(const float* dy, const float* logits, const float* targets,
                                      float* dx, int variant, long long n, long long cols) {
  FOR_EACH(i, n) {
    const float factor = __fdiv_rn(dy[i / cols], -(float)cols);
    dx[i] = __fmul_rn(factor, sigmoid_xent_derivative(logits[i], targets[i], variant));
  }
}

// Y[row] = -sum(label * log(max(X, 1e-20))) over the row.
__global__ void cross_entropy_rows(const float* x, const float* label, float* y, long long rows,
                                   long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const long long start = row * cols;
    double s = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) { s += __fmul_rn(label[start + c], logf(floor_prob(x[start + c]))); }
    s = block_sum(s, buf);
    if (threadIdx.x == 0) y[row] = -(float)s;
  }
}

// dX = -dY[row] * label / max(X, 1e-20).
__global__ void cross_entropy_gradient(const float* x, const float* label, const float* dy, float* dx,
                                       long long rows, long long cols) {
  FOR_EACH(i, rows * cols) {
    dx[i] = __fdiv_rn(__fmul_rn(-dy[i / cols], label[i]), floor_prob(x[i]));
  }
}

}  // extern "C"
