/* Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), bias-corrected, in the
 * arithmetic order torch.optim uses so results agree to float rounding. */
#include "libra/optim.h"

#include <math.h>

void lb_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int decoupled,
                    long t)
{
    /* Bias corrections in double: beta2^t near 1 loses digits in float. */
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float sqrt_bc2 = (float)sqrt(bc2);
    float l2 = decoupled ? 0.0f : weight_decay;
    float shrink = decoupled ? 1.0f - lr * weight_decay : 1.0f;
    float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * shrink;
        float gi = g[i] + l2 * w[i];
        float mi = beta1 * m[i] + a1 * gi;
        float vi = beta2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}
