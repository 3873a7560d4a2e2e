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

static double lane_dot(const float *a, const float *b, size_t n) /* sum a * b */
{
    double acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += (double)a[i + j] * b[i + j];
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A batch norm node's work, split over libra's threads by channel. */
typedef struct {
    lb_node *y;
    bn_geom q;
    int N, training;
    float *running_mean, *running_var, momentum, eps;
} bn_work;

static void bn_backward_channel(const bn_work *k, size_t c)
{
    lb_node *y = k->y, *x = y->in[0], *gamma = y->in[1], *beta = y->in[2];
    bn_geom q = k->q;
    const float *invstd = (const float *)y->aux + q.C, *xhat = (const float *)y->aux + 2 * q.C;
    double sd = 0.0, sdx = 0.0;
    for (int n = 0; n < k->N; n++) {
        size_t k0 = BN_AT(q, n, c, 0);
        sd += lane_sum(y->grad + k0, q.inner);
        sdx += lane_dot(y->grad + k0, xhat + k0, q.inner);
    }
    if (gamma->requires_grad) gamma->grad[c] += (float)sdx;
    if (beta->requires_grad) beta->grad[c] += (float)sd;
    if (!x->requires_grad) return;
    float gs = gamma->val[c] * invstd[c];
    /* training: dx = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)); running statistics
     * (eval) are constants: dx = gamma*invstd*dy */
    float mean_d = k->training ? (float)(sd / (double)q.M) : 0.0f;
    float mean_dx = k->training ? (float)(sdx / (double)q.M) : 0.0f;
    for (int n = 0; n < k->N; n++) {
        size_t k0 = BN_AT(q, n, c, 0);
        float *restrict dx = x->grad + k0;
        const float *restrict dy = y->grad + k0, *restrict xh = xhat + k0;
        for (size_t i = 0; i < q.inner; i++) dx[i] += gs * (dy[i] - mean_d - xh[i] * mean_dx);
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

static void bn_forward_channel(const bn_work *k, size_t c)
{
    lb_node *y = k->y, *x = y->in[0], *gamma = y->in[1], *beta = y->in[2];
    bn_geom q = k->q;
    float *mean = y->aux, *invstd = mean + q.C, *xhat = mean + 2 * q.C;
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
    mean[c] = (float)m;
    invstd[c] = (float)(1.0 / sqrt(v + k->eps));
    float mc = mean[c], is = invstd[c], ga = gamma->val[c], be = beta->val[c];
    for (int n = 0; n < k->N; n++) {
        size_t k0 = BN_AT(q, n, c, 0);
        const float *restrict xv = x->val + k0;
        float *restrict xh = xhat + k0, *restrict yv = y->val + k0;
        for (size_t i = 0; i < q.inner; i++) {
            xh[i] = (xv[i] - mc) * is;
            yv[i] = ga * xh[i] + be;
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
    y->aux = aux;
    LB_ARGS(y, bn_args)->training = training;
    bn_work k = {y, q, x->shape[0], training, running_mean, running_var, momentum, eps};
    lb_parallel(bn_threads(&q), bn_forward_part, &k);
    return y;
}
