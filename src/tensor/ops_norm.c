/* Dropout and batch normalisation: the two ops whose behaviour depends on training mode. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* dropout: the drop probability; batchnorm: whether batch statistics were used. */
typedef struct {
    float p;
} dropout_args;

typedef struct {
    int training;
} bn_args;

static int dropout_backward(lb_node *y)
{
    lb_node *x = y->in[0];
    const float *mask = y->aux;
    if (!mask) {
        for (size_t i = 0; i < y->size; i++) x->grad[i] += y->grad[i];
        return LB_OK;
    }
    for (size_t i = 0; i < y->size; i++) x->grad[i] += y->grad[i] * mask[i];
    return LB_OK;
}

lb_node *lb_dropout(lb_graph *g, lb_node *x, float p, lb_rng *rng)
{
    LB_NEED(x);
    if (!(p >= 0.0f && p < 1.0f)) {
        lb_error(LB_EINVAL, "dropout: p = %g must be in [0, 1)", p);
        return NULL;
    }
    lb_node *y = lb_node_new(g, "dropout", x->ndim, x->shape, 1, &x, dropout_backward);
    if (!y) return NULL;
    LB_ARGS(y, dropout_args)->p = p;
    if (!lb_graph_training(g) || p == 0.0f) {
        memcpy(y->val, x->val, x->size * sizeof(float));
        return y;
    }
    if (!rng) {
        lb_error(LB_EINVAL, "dropout: training mode needs an RNG");
        return NULL;
    }
    float *mask = lb_graph_floats(g, x->size);
    if (!mask) return NULL;
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < x->size; i++) {
        mask[i] = lb_rng_uniform(rng) < p ? 0.0f : keep;
        y->val[i] = x->val[i] * mask[i];
    }
    y->aux = mask;
    return y;
}

/* Batch norm. aux holds per channel: mean, invstd (2*C floats), and xhat (size floats). */
typedef struct {
    size_t C, inner, M; /* channels, H*W, elements per channel (N*H*W) */
} bn_geom;

static bn_geom bn_geom_of(const lb_node *x)
{
    bn_geom q = {(size_t)x->shape[1], 1, 0};
    for (int i = 2; i < x->ndim; i++) q.inner *= (size_t)x->shape[i];
    q.M = (size_t)x->shape[0] * q.inner;
    return q;
}

#define BN_AT(q, n, c, i) (((size_t)(n) * (q).C + (c)) * (q).inner + (i))

static int bn_backward(lb_node *y)
{
    lb_node *x = y->in[0], *gamma = y->in[1], *beta = y->in[2];
    bn_geom q = bn_geom_of(x);
    int N = x->shape[0];
    const float *invstd = (const float *)y->aux + q.C, *xhat = (const float *)y->aux + 2 * q.C;
    int training = LB_ARGS(y, bn_args)->training;
    for (size_t c = 0; c < q.C; c++) {
        double sd = 0.0, sdx = 0.0;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < q.inner; i++) {
                size_t k = BN_AT(q, n, c, i);
                sd += y->grad[k];
                sdx += (double)y->grad[k] * xhat[k];
            }
        if (gamma->requires_grad) gamma->grad[c] += (float)sdx;
        if (beta->requires_grad) beta->grad[c] += (float)sd;
        if (!x->requires_grad) continue;
        float gs = gamma->val[c] * invstd[c];
        if (!training) { /* running statistics are constants */
            for (int n = 0; n < N; n++)
                for (size_t i = 0; i < q.inner; i++) {
                    size_t k = BN_AT(q, n, c, i);
                    x->grad[k] += gs * y->grad[k];
                }
            continue;
        }
        /* dx = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)) */
        float mean_d = (float)(sd / (double)q.M), mean_dx = (float)(sdx / (double)q.M);
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < q.inner; i++) {
                size_t k = BN_AT(q, n, c, i);
                x->grad[k] += gs * (y->grad[k] - mean_d - xhat[k] * mean_dx);
            }
    }
    return LB_OK;
}

lb_node *lb_batchnorm2d(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta, float *running_mean,
                        float *running_var, float momentum, float eps)
{
    LB_NEED(x);
    LB_NEED(gamma);
    LB_NEED(beta);
    if (x->ndim != 4 && x->ndim != 2) return lb__shape_error("batchnorm2d", x, NULL, "input must be [N,C,H,W] or [N,C]");
    if (gamma->ndim != 1 || gamma->shape[0] != x->shape[1])
        return lb__shape_error("batchnorm2d", x, gamma, "gamma must be [C]");
    if (!lb_same_shape(gamma, beta)) return lb__shape_error("batchnorm2d", gamma, beta, "beta must match gamma");
    if (!running_mean || !running_var) {
        lb_error(LB_EINVAL, "batchnorm2d: running statistics are NULL");
        return NULL;
    }
    bn_geom q = bn_geom_of(x);
    int training = lb_graph_training(g);
    if (training && q.M < 2) return lb__shape_error("batchnorm2d", x, NULL, "training needs more than one value per channel");
    lb_node *in[3] = {x, gamma, beta};
    lb_node *y = lb_node_new(g, "batchnorm2d", x->ndim, x->shape, 3, in, bn_backward);
    if (!y) return NULL;
    float *aux = lb_graph_floats(g, 2 * q.C + x->size);
    if (!aux) return NULL;
    float *mean = aux, *invstd = aux + q.C, *xhat = aux + 2 * q.C;
    y->aux = aux;
    LB_ARGS(y, bn_args)->training = training;
    int N = x->shape[0];
    for (size_t c = 0; c < q.C; c++) {
        double m, v;
        if (training) {
            double s = 0.0, ss = 0.0;
            for (int n = 0; n < N; n++)
                for (size_t i = 0; i < q.inner; i++) s += x->val[BN_AT(q, n, c, i)];
            m = s / (double)q.M;
            for (int n = 0; n < N; n++)
                for (size_t i = 0; i < q.inner; i++) {
                    double d = x->val[BN_AT(q, n, c, i)] - m;
                    ss += d * d;
                }
            v = ss / (double)q.M;
            running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * (float)m;
            running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)(ss / (double)(q.M - 1));
        } else {
            m = running_mean[c];
            v = running_var[c];
        }
        mean[c] = (float)m;
        invstd[c] = (float)(1.0 / sqrt(v + eps));
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < q.inner; i++) {
                size_t k = BN_AT(q, n, c, i);
                xhat[k] = (x->val[k] - mean[c]) * invstd[c];
                y->val[k] = gamma->val[c] * xhat[k] + beta->val[c];
            }
    }
    return y;
}
