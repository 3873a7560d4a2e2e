/* SGD with momentum / Nesterov and L2 weight decay, as torch.optim.SGD (dampening 0). */
#include "libra/optim.h"

void lb_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum,
                   int nesterov, float weight_decay)
{
    if (momentum == 0.0f || !buf) {
        for (size_t i = 0; i < n; i++) w[i] -= lr * (g[i] + weight_decay * w[i]);
        return;
    }
    /* buf starts at zero, so its first value is the gradient itself, as in torch. */
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * w[i];
        float b = momentum * buf[i] + gi;
        buf[i] = b;
        w[i] -= lr * (nesterov ? gi + momentum * b : b);
    }
}
