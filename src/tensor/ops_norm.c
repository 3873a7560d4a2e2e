/* Dropout and batch normalisation: the two ops whose behaviour depends on training mode. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* dropout: the drop probability; batchnorm: whether batch statistics were used. */
typedef struct {
    float p;
} dropout_args;

typedef struct {
    int training, relu; /* relu: the fused ReLU of lb_batchnorm2d_relu / _add_relu */
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

/* Batch norm. aux holds per channel: mean, invstd (2*C floats); xhat is recomputed from x. */
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

/* Sums over a channel's N runs of `inner` floats, in double, in 8 interleaved partial sums per
 * run (one running sum is a chain of dependent additions: it was most of batch norm's time)
 * added in a fixed order, so the result depends on neither the thread count nor the split. */
#define LANES 8
static double lane_sum(const float *x, size_t n) /* sum x */
{
    double acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += x[i];
    return s;
}

static double lane_sq(const float *x, size_t n, double m) /* sum (x - m)^2 */
{
    double acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            double d = (double)x[i + j] - m;
            acc[j] += d * d;
        }
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += ((double)x[i] - m) * ((double)x[i] - m);
    return s;
}

/* A batch norm node's work, split over libra's threads by channel. */
typedef struct {
    lb_node *y;
    bn_geom q;
    int N, training;
    float *running_mean, *running_var, momentum, eps;
} bn_work;

/* The gradient reaching the normalised value: dy, where the fused ReLU let it through. */
static inline float bn_dz(const bn_args *a, float dy, float y) { return a->relu ? dy * (y > 0.0f ? 1.0f : 0.0f) : dy; }

static void bn_backward_channel(const bn_work *k, size_t c)
{
    lb_node *y = k->y, *x = y->in[0], *gamma = y->in[1], *beta = y->in[2], *r = y->n_in > 3 ? y->in[3] : NULL;
    const bn_args *a = LB_ARGS(y, bn_args);
    bn_geom q = k->q;
    /* xhat = (x - mean) * invstd again rather than stored: the same floats, one tensor fewer */
    float mc = ((const float *)y->aux)[c], is = ((const float *)y->aux)[q.C + c];
    double sd = 0.0, sdx = 0.0;
    for (int n = 0; n < k->N; n++) {
        size_t k0 = BN_AT(q, n, c, 0);
        const float *restrict dy = y->grad + k0, *restrict yv = y->val + k0, *restrict xv = x->val + k0;
        double acc_d[LANES] = {0}, acc_dx[LANES] = {0};
        size_t i = 0;
        for (; i + LANES <= q.inner; i += LANES)
            for (int j = 0; j < LANES; j++) {
                float dz = bn_dz(a, dy[i + j], yv[i + j]);
                acc_d[j] += dz;
                acc_dx[j] += (double)dz * ((xv[i + j] - mc) * is);
            }
        double s = 0.0, sx = 0.0;
        for (int j = 0; j < LANES; j++) s += acc_d[j], sx += acc_dx[j];
        for (; i < q.inner; i++) {
            float dz = bn_dz(a, dy[i], yv[i]);
            s += dz;
            sx += (double)dz * ((xv[i] - mc) * is);
        }
        sd += s;
        sdx += sx;
    }
    if (gamma->requires_grad) gamma->grad[c] += (float)sdx;
    if (beta->requires_grad) beta->grad[c] += (float)sd;
    float gs = gamma->val[c] * is;
    /* training: dx = gamma*invstd/M * (M*dz - sum(dz) - xhat*sum(dz*xhat)); running statistics
     * (eval) are constants: dx = gamma*invstd*dz. The residual gets dz itself. */
    float mean_d = k->training ? (float)(sd / (double)q.M) : 0.0f;
    float mean_dx = k->training ? (float)(sdx / (double)q.M) : 0.0f;
    for (int n = 0; n < k->N && (x->requires_grad || (r && r->requires_grad)); n++) {
        size_t k0 = BN_AT(q, n, c, 0);
        const float *restrict dy = y->grad + k0, *restrict yv = y->val + k0, *restrict xv = x->val + k0;
        if (x->requires_grad) {
            float *restrict dx = x->grad + k0;
            for (size_t i = 0; i < q.inner; i++) dx[i] += gs * (bn_dz(a, dy[i], yv[i]) - mean_d - ((xv[i] - mc) * is) * mean_dx);
        }
        if (r && r->requires_grad) {
            float *restrict dr = r->grad + k0;
            for (size_t i = 0; i < q.inner; i++) dr[i] += bn_dz(a, dy[i], yv[i]);
        }
    }
}

static void bn_backward_part(void *p, int part, int n_parts)
{
    const bn_work *k = p;
    int lo, hi;
    lb_split_range((int)k->q.C, part, n_parts, &lo, &hi);
    for (int c = lo; c < hi; c++) bn_backward_channel(k, (size_t)c);
}

static int bn_threads(const bn_geom *q)
{
    int t = lb_get_threads();
    return (size_t)t < q->C ? t : (int)q->C;
}

static int bn_backward(lb_node *y)
{
    bn_work k = {.y = y, .q = bn_geom_of(y->in[0]), .N = y->in[0]->shape[0], .training = LB_ARGS(y, bn_args)->training};
    lb_parallel(bn_threads(&k.q), bn_backward_part, &k);
    return LB_OK;
}

/* The channel's mean and 1/sqrt(var + eps): the batch's (and the running statistics moved
 * towards it) in training, the running statistics in evaluation. */
static void bn_statistics(const bn_work *k, size_t c, float *mean, float *invstd)
{
    const lb_node *x = k->y->in[0];
    bn_geom q = k->q;
    double m, v;
    if (k->training) {
        double s = 0.0, ss = 0.0;
        for (int n = 0; n < k->N; n++) s += lane_sum(x->val + BN_AT(q, n, c, 0), q.inner);
        m = s / (double)q.M;
        for (int n = 0; n < k->N; n++) ss += lane_sq(x->val + BN_AT(q, n, c, 0), q.inner, m);
        v = ss / (double)q.M;
        k->running_mean[c] = (1.0f - k->momentum) * k->running_mean[c] + k->momentum * (float)m;
        k->running_var[c] = (1.0f - k->momentum) * k->running_var[c] + k->momentum * (float)(ss / (double)(q.M - 1));
    } else {
        m = k->running_mean[c];
        v = k->running_var[c];
    }
    *mean = (float)m;
    *invstd = (float)(1.0 / sqrt(v + k->eps));
}

static void bn_forward_channel(const bn_work *k, size_t c)
{
    lb_node *y = k->y, *x = y->in[0], *gamma = y->in[1], *beta = y->in[2], *r = y->n_in > 3 ? y->in[3] : NULL;
    bn_geom q = k->q;
    float *mean = y->aux, *invstd = mean + q.C;
    bn_statistics(k, c, &mean[c], &invstd[c]);
    float mc = mean[c], is = invstd[c], ga = gamma->val[c], be = beta->val[c];
    float lo = LB_ARGS(y, bn_args)->relu ? 0.0f : 1.0f; /* the slope below 0, as lb_relu */
    for (int n = 0; n < k->N; n++) {
        size_t k0 = BN_AT(q, n, c, 0);
        const float *restrict xv = x->val + k0, *restrict rv = r ? r->val + k0 : NULL;
        float *restrict yv = y->val + k0;
        if (rv)
            for (size_t i = 0; i < q.inner; i++) {
                float z = ga * ((xv[i] - mc) * is) + be + rv[i];
                yv[i] = z * (z > 0.0f ? 1.0f : lo);
            }
        else
            for (size_t i = 0; i < q.inner; i++) {
                float z = ga * ((xv[i] - mc) * is) + be;
                yv[i] = z * (z > 0.0f ? 1.0f : lo);
            }
    }
}

static void bn_forward_part(void *p, int part, int n_parts)
{
    const bn_work *k = p;
    int lo, hi;
    lb_split_range((int)k->q.C, part, n_parts, &lo, &hi);
    for (int c = lo; c < hi; c++) bn_forward_channel(k, (size_t)c);
}

static lb_node *bn_new(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta, lb_node *residual, int relu,
                       float *running_mean, float *running_var, float momentum, float eps)
{
    const char *op = residual ? "batchnorm2d_add_relu" : relu ? "batchnorm2d_relu" : "batchnorm2d";
    LB_NEED(x);
    LB_NEED(gamma);
    LB_NEED(beta);
    if (x->ndim != 4 && x->ndim != 2) return lb__shape_error(op, x, NULL, "input must be [N,C,H,W] or [N,C]");
    if (gamma->ndim != 1 || gamma->shape[0] != x->shape[1]) return lb__shape_error(op, x, gamma, "gamma must be [C]");
    if (!lb_same_shape(gamma, beta)) return lb__shape_error(op, gamma, beta, "beta must match gamma");
    if (residual && !lb_same_shape(x, residual)) return lb__shape_error(op, x, residual, "the residual must match the input");
    if (!running_mean || !running_var) {
        lb_error(LB_EINVAL, "%s: running statistics are NULL", op);
        return NULL;
    }
    bn_geom q = bn_geom_of(x);
    int training = lb_graph_training(g);
    if (training && q.M < 2) return lb__shape_error(op, x, NULL, "training needs more than one value per channel");
    lb_node *in[4] = {x, gamma, beta, residual};
    lb_node *y = lb_node_new(g, op, x->ndim, x->shape, residual ? 4 : 3, in, bn_backward);
    if (!y) return NULL;
    if (!(y->aux = lb_graph_floats(g, 2 * q.C))) return NULL;
    *LB_ARGS(y, bn_args) = (bn_args){training, relu};
    bn_work k = {y, q, x->shape[0], training, running_mean, running_var, momentum, eps};
    lb_parallel(bn_threads(&q), bn_forward_part, &k);
    return y;
}

lb_node *lb_batchnorm2d(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta, float *running_mean,
                        float *running_var, float momentum, float eps)
{
    return bn_new(g, x, gamma, beta, NULL, 0, running_mean, running_var, momentum, eps);
}

lb_node *lb_batchnorm2d_relu(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta, float *running_mean,
                             float *running_var, float momentum, float eps)
{
    return bn_new(g, x, gamma, beta, NULL, 1, running_mean, running_var, momentum, eps);
}

lb_node *lb_batchnorm2d_add_relu(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta, lb_node *residual,
                                 float *running_mean, float *running_var, float momentum, float eps)
{
    LB_NEED(residual); /* an earlier op failed: not "no residual" */
    return bn_new(g, x, gamma, beta, residual, 1, running_mean, running_var, momentum, eps);
}
