// CUDA kernels of the training family, float32. The update ops are one grid-stride
// loop each and round every step as the NumPy kernels do (explicit _rn intrinsics:
// no fused multiply-adds), so the two devices agree to the bit. Scalars (lr,
// momentum, bias corrections) come from the host by value; WeightedSum's weights
// are one-element device arrays. dot (WeightedSumGradient's dw) is one block
// summing in double, closer to the exact sum than NumPy's float32 vdot.

#include "common.cuh"

extern "C" {

// One (X, weight) pair of WeightedSum: y = x * w[0] for the first pair, else y += x * w[0].
__global__ void weighted_sum_pair(const float* x, const float* w, float* y, int first, long long n) {
  float weight = w[0];
  FOR_EACH(i, n) {
    float term = __fmul_rn(x[i], weight);
    y[i] = first ? term : __fadd_rn(y[i], term);
  }
}

// m' = lr * g + momentum * m; step = m' (or (1 + momentum) * m' - momentum * m with
// Nesterov); param' = param - step.
__global__ void momentum_sgd_update(const float* grad, const float* moment, const float* param,
                                    float* step, float* new_moment, float* new_param, float lr,
                                    float momentum, float one_plus_momentum, int nesterov,
                                    long long n) {
  FOR_EACH(i, n) {
    float m = moment[i];
    float updated = __fadd_rn(__fmul_rn(lr, grad[i]), __fmul_rn(momentum, m));
    float taken = nesterov ? __fsub_rn(__fmul_rn(one_plus_momentum, updated), __fmul_rn(momentum, m))
                           : updated;
    step[i] = taken;
    new_moment[i] = updated;
    new_param[i] = __fsub_rn(param[i], taken);
  }
}

// h' = decay * h + g^2; param' = param + lr * g / (sqrt(h') + epsilon); the effective rate
// lr / (sqrt(h') + epsilon) and the update, the rate times g.
__global__ void adagrad(const float* param, const float* moment, const float* grad, float* new_param,
                        float* new_moment, float* effective_lr, float* update, float lr, float epsilon,
                        float decay, float weight_decay, long long n) {
  FOR_EACH(i, n) {
    float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
    float h = __fadd_rn(__fmul_rn(decay, moment[i]), __fmul_rn(g, g));
    float root = __fadd_rn(__fsqrt_rn(h), epsilon);
    float rate = __fdiv_rn(lr, root);
    new_moment[i] = h;
    new_param[i] = __fadd_rn(param[i], __fdiv_rn(__fmul_rn(lr, g), root));
    effective_lr[i] = rate;
    update[i] = __fmul_rn(rate, g);
  }
}

// m1' = beta1 * m1 + (1 - beta1) * g; m2' = beta2 * m2 + (1 - beta2) * g^2;
// step = correction * m1' / (sqrt(m2') + epsilon); param' = param + lr * step.
__global__ void adam(const float* param, const float* moment_1, const float* moment_2,
                     const float* grad, float* new_param, float* new_moment_1, float* new_moment_2,
                     float* step, float lr, float beta1, float one_minus_beta1, float beta2,
                     float one_minus_beta2, float epsilon, float correction, long long n) {
  FOR_EACH(i, n) {
    float g = grad[i];
    float m1 = __fadd_rn(__fmul_rn(beta1, moment_1[i]), __fmul_rn(one_minus_beta1, g));
    float m2 = __fadd_rn(__fmul_rn(beta2, moment_2[i]), __fmul_rn(one_minus_beta2, __fmul_rn(g, g)));
    float s = __fdiv_rn(__fmul_rn(correction, m1), __fadd_rn(__fsqrt_rn(m2), epsilon));
    new_moment_1[i] = m1;
    new_moment_2[i] = m2;
    step[i] = s;
    new_param[i] = __fadd_rn(param[i], __fmul_rn(lr, s));
  }
}

// One block: out[0] = sum(a * b), products and sum in double (WeightedSumGradient's dw).
__global__ void dot(const float* a, const float* b, float* out, long long n) {
  __shared__ double buf[MAX_THREADS];
  double s = 0.0;
  FOR_EACH_IN_BLOCK(i, n) { s += (double)a[i] * (double)b[i]; }
  s = block_sum(s, buf);
  if (threadIdx.x == 0) out[0] = (float)s;
}

}  // extern "C"
