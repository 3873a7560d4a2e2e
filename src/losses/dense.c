/* Losses of a dense task: one per-sample loss at every location of a [N, K, H, W] output,
 * summed and divided by the batch's foreground count (Lin et al. 2017, Sec. 4.1). The
 * per-location value and gradient are the loss kind's own per-sample function on the K
 * logits of the location, so every formula (and its finite-difference check) is the one
 * of the classification losses. */
#include "losses/internal.h"

#include <math.h>
#include <stdio.h>

int lb_loss_dense_background(const lb_loss *L)
{
    return (L->kind->flags & LB_LOSS_ONE_VS_ALL) ? L->C : L->C - 1;
}

long lb_dense_foreground(const int *targets, size_t n, int background)
{
    long fg = 0;
    for (size_t i = 0; i < n; i++) fg += targets[i] != background;
    return fg;
}

/* What one evaluation needs, checked. */
typedef struct {
    int N, K, H, W, bg;
    size_t plane;    /* H * W */
} dense_shape;

static int check_dense(const lb_loss *L, int N, int K, int H, int W, const int *targets, dense_shape *s)
{
    if (!targets) return lb_error(LB_EINVAL, "%s (dense): NULL targets", L->name);
    if (L->reduction != LB_REDUCE_MEAN)
        return lb_error(LB_EINVAL, "%s (dense): reduction=%s has no dense meaning (a dense loss divides by the "
                        "foreground count)", L->name, L->reduction == LB_REDUCE_SUM ? "sum" : "none");
    if (L->C < 2 && !(L->kind->flags & LB_LOSS_ONE_VS_ALL))
        return lb_error(LB_EINVAL, "%s (dense): a softmax over %d output has no background class", L->name, L->C);
    if (N <= 0 || H <= 0 || W <= 0 || K != L->C)
        return lb_error(LB_ESHAPE, "%s (dense): logits are [%d, %d, %d, %d], expected [N, %d, H, W]", L->name, N, K,
                        H, W, L->C);
    *s = (dense_shape){N, K, H, W, lb_loss_dense_background(L), (size_t)H * W};
    for (size_t i = 0; i < (size_t)N * s->plane; i++)
        if (targets[i] < 0 || targets[i] > s->bg) {
            size_t n = i / s->plane, hw = i % s->plane;
            return lb_error(LB_EINVAL, "%s (dense): target %d at image %zu, location (%zu, %zu) is outside [0, %d] "
                            "(%d = background)", L->name, targets[i], n, hw / W, hw % W, s->bg, s->bg);
        }
    return LB_OK;
}

/* Sums w_t l over every location into *sum; d (may be NULL) gets the gradient times scale in
 * the logits' layout. z and dz: K scratch values each (one location's logits, gradient). */
static int sum_locations(lb_loss *L, const dense_shape *s, const float *x, const int *y, int on, double scale,
                         float *d, float *z, double *dz, double *sum)
{
    const int ova = (L->kind->flags & LB_LOSS_ONE_VS_ALL) != 0;
    double acc = 0;
    for (int n = 0; n < s->N; n++)
        for (size_t hw = 0; hw < s->plane; hw++) {
            size_t base = (size_t)n * s->K * s->plane + hw;
            int t = y[(size_t)n * s->plane + hw];
            for (int k = 0; k < s->K; k++) z[k] = x[base + (size_t)k * s->plane];
            double l = L->kind->sample(L->state, s->K, z, t, dz);
            double w = on && !(ova && t == s->bg) ? L->weights[t] : 1.0;
            if (!isfinite(w * l))
                return lb_error(LB_ENUMERIC, "%s (dense): loss at image %d, location (%zu, %zu) is %g", L->name, n,
                                hw / s->W, hw % s->W, w * l);
            acc += w * l;
            if (d)
                for (int k = 0; k < s->K; k++) d[base + (size_t)k * s->plane] = (float)(w * dz[k] * scale);
        }
    *sum = acc;
    return LB_OK;
}

int lb_loss_eval_dense(lb_loss *L, const float *logits, int N, int K, int H, int W, const int *targets,
                       float *dlogits, double *loss, long *n_fg, long step, long total_steps)
{
    if (!L || !logits) return lb_error(LB_EINVAL, "dense loss: NULL loss or logits");
    dense_shape s = {0};
    int on = 0, rc = check_dense(L, N, K, H, W, targets, &s);
    if (rc == LB_OK) rc = lb__loss_weights_on(L, step, total_steps, &on);
    if (rc != LB_OK) return rc;
    enum { ON_STACK = 256 }; /* outputs whose scratch needs no allocation (3 KB) */
    float zs[ON_STACK];
    double dzs[ON_STACK], *dz = K <= ON_STACK ? dzs : lb_malloc((size_t)K * sizeof(double));
    float *z = K <= ON_STACK ? zs : lb_malloc((size_t)K * sizeof(float));
    if (!z || !dz) rc = lb_error(LB_ENOMEM, "%s (dense): out of memory for one location's %d logits", L->name, K);
    long fg = lb_dense_foreground(targets, (size_t)N * s.plane, s.bg);
    double sum = 0, scale = 1.0 / (double)(fg > 0 ? fg : 1);
    if (rc == LB_OK) rc = sum_locations(L, &s, logits, targets, on, scale, dlogits, z, dz, &sum);
    if (z != zs) lb_free(z);
    if (dz != dzs) lb_free(dz);
    if (rc != LB_OK) return rc;
    if (loss) *loss = sum * scale;
    if (n_fg) *n_fg = fg;
    return LB_OK;
}

static int dense_backward(lb_node *self)
{
    lb_node *x = self->in[0];
    if (!x->requires_grad) return LB_OK;
    const float *d = self->aux;
    float g = self->grad[0];
    size_t len = (size_t)x->shape[0] * x->shape[1] * x->shape[2] * x->shape[3];
    for (size_t k = 0; k < len; k++) x->grad[k] += g * d[k];
    return LB_OK;
}

lb_node *lb_loss_forward_dense(lb_loss *L, lb_graph *g, lb_node *logits, const int *targets, long step,
                               long total_steps, long *n_fg)
{
    if (!logits) return NULL; /* an earlier op failed; keep its message */
    if (!L || !g) {
        lb_error(LB_EINVAL, "dense loss: NULL loss or graph");
        return NULL;
    }
    char buf[64];
    if (logits->ndim != 4) {
        lb_error(LB_ESHAPE, "%s (dense): logits are %s, expected [N, %d, H, W]", L->name,
                 lb_shape_str(logits, buf, sizeof buf), L->C);
        return NULL;
    }
    const int *sh = logits->shape;
    int one[1] = {1};
    lb_node *out = lb_node_new(g, L->op, 1, one, 1, &logits, dense_backward);
    if (!out) return NULL;
    float *d = NULL;
    if (out->requires_grad && !(d = lb_graph_floats(g, (size_t)sh[0] * sh[1] * sh[2] * sh[3]))) return NULL;
    double loss;
    if (lb_loss_eval_dense(L, logits->val, sh[0], sh[1], sh[2], sh[3], targets, d, &loss, n_fg, step, total_steps) !=
        LB_OK)
        return NULL;
    out->val[0] = (float)loss;
    out->aux = d;
    return out;
}
