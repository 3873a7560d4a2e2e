/* Reductions and reshapes: sum, mean, softmax, log_softmax, reshape, flatten, pick. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const int scalar_shape[1] = {1};

/* sum and mean: the factor of the sum (1 or 1/n). */
typedef struct {
    float factor;
} reduce_args;

static int sum_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    float d = y->grad[0] * LB_ARGS(y, reduce_args)->factor;
    for (size_t i = 0; i < a->size; i++) a->grad[i] += d;
    return LB_OK;
}

static lb_node *reduce(lb_graph *g, const char *op, lb_node *a, float factor)
{
    LB_NEED(a);
    lb_node *y = lb_node_new(g, op, 1, scalar_shape, 1, &a, sum_backward);
    if (!y) return NULL;
    double s = 0.0; /* double accumulation: sums of many floats lose digits otherwise */
    for (size_t i = 0; i < a->size; i++) s += a->val[i];
    y->val[0] = (float)(s * factor);
    LB_ARGS(y, reduce_args)->factor = factor;
    return y;
}

lb_node *lb_sum(lb_graph *g, lb_node *a) { return reduce(g, "sum", a, 1.0f); }
lb_node *lb_mean(lb_graph *g, lb_node *a) { return a ? reduce(g, "mean", a, 1.0f / (float)a->size) : NULL; }

/* softmax / log_softmax over the last dim of [N, C] */
static lb_node *rows_new(lb_graph *g, const char *op, lb_node *a, lb_backward_fn bw)
{
    LB_NEED(a);
    if (a->ndim != 2) return lb__shape_error(op, a, NULL, "expects a 2-D [N, C] input");
    return lb_node_new(g, op, 2, a->shape, 1, &a, bw);
}

static int softmax_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    int N = y->shape[0], C = y->shape[1];
    for (int n = 0; n < N; n++) {
        const float *p = y->val + (size_t)n * C, *dy = y->grad + (size_t)n * C;
        float *da = a->grad + (size_t)n * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++) dot += (double)dy[c] * p[c];
        for (int c = 0; c < C; c++) da[c] += p[c] * (dy[c] - (float)dot);
    }
    return LB_OK;
}

static int log_softmax_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    int N = y->shape[0], C = y->shape[1];
    for (int n = 0; n < N; n++) {
        const float *ls = y->val + (size_t)n * C, *dy = y->grad + (size_t)n * C;
        float *da = a->grad + (size_t)n * C;
        double s = 0.0;
        for (int c = 0; c < C; c++) s += dy[c];
        for (int c = 0; c < C; c++) da[c] += dy[c] - expf(ls[c]) * (float)s;
    }
    return LB_OK;
}

/* Writes log-softmax (want_log) or softmax of each row; max-subtracted so large logits
 * neither overflow nor lose the small terms. */
static void softmax_rows(const float *x, float *y, int N, int C, int want_log)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *yr = y + (size_t)n * C;
        float m = xr[0];
        for (int c = 1; c < C; c++) m = xr[c] > m ? xr[c] : m;
        double s = 0.0;
        for (int c = 0; c < C; c++) s += exp((double)xr[c] - m);
        double ls = log(s);
        for (int c = 0; c < C; c++)
            yr[c] = want_log ? (float)((double)xr[c] - m - ls) : (float)(exp((double)xr[c] - m) / s);
    }
}

lb_node *lb_softmax(lb_graph *g, lb_node *a)
{
    lb_node *y = rows_new(g, "softmax", a, softmax_backward);
    if (y) softmax_rows(a->val, y->val, a->shape[0], a->shape[1], 0);
    return y;
}

lb_node *lb_log_softmax(lb_graph *g, lb_node *a)
{
    lb_node *y = rows_new(g, "log_softmax", a, log_softmax_backward);
    if (y) softmax_rows(a->val, y->val, a->shape[0], a->shape[1], 1);
    return y;
}

/* reshape copies when a gradient flows: a copy of an activation is cheap next to a
 * convolution, and it keeps every node owning its own value and gradient. Without one
 * (evaluation) it is a view. */
static int copy_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    for (size_t i = 0; i < y->size; i++) a->grad[i] += y->grad[i];
    return LB_OK;
}

lb_node *lb_reshape(lb_graph *g, lb_node *a, int ndim, const int *shape)
{
    LB_NEED(a);
    size_t size = 1;
    for (int i = 0; i < ndim && i < LB_MAX_DIMS; i++) size *= shape[i] > 0 ? (size_t)shape[i] : 0;
    if (ndim < 1 || ndim > LB_MAX_DIMS || size != a->size) {
        char sa[80], sb[80] = "[";
        size_t k = 1;
        for (int i = 0; i < ndim && i < LB_MAX_DIMS && k < sizeof sb; i++)
            k += (size_t)snprintf(sb + k, sizeof sb - k, i ? ", %d" : "%d", shape[i]);
        if (k < sizeof sb) snprintf(sb + k, sizeof sb - k, "]");
        lb_error(LB_ESHAPE, "reshape: cannot reshape %s into %s (sizes differ)", lb_shape_str(a, sa, sizeof sa),
                 sb);
        return NULL;
    }
    if (!a->requires_grad) {
        /* nothing flows back (e.g. evaluation): a view of a's values, no copy, no memory */
        lb_node *y = lb_input(g, ndim, shape, a->val);
        if (y) {
            y->op = "reshape";
            y->n_in = 1;
            y->in[0] = a;
        }
        return y;
    }
    lb_node *y = lb_node_new(g, "reshape", ndim, shape, 1, &a, copy_backward);
    if (y) memcpy(y->val, a->val, a->size * sizeof(float));
    return y;
}

lb_node *lb_flatten(lb_graph *g, lb_node *a)
{
    LB_NEED(a);
    int shape[2] = {a->shape[0], (int)(a->size / (size_t)a->shape[0])};
    return lb_reshape(g, a, 2, shape);
}

static int pick_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    const int *idx = y->aux;
    int C = a->shape[1];
    for (int n = 0; n < y->shape[0]; n++) a->grad[(size_t)n * C + idx[n]] += y->grad[n];
    return LB_OK;
}

lb_node *lb_pick(lb_graph *g, lb_node *a, const int *index)
{
    LB_NEED(a);
    if (a->ndim != 2) return lb__shape_error("pick", a, NULL, "expects a 2-D [N, C] input");
    int N = a->shape[0], C = a->shape[1];
    for (int n = 0; n < N; n++)
        if (index[n] < 0 || index[n] >= C) {
            lb_error(LB_EINVAL, "pick: index[%d] = %d is outside [0, %d)", n, index[n], C);
            return NULL;
        }
    lb_node *y = lb_node_new(g, "pick", 1, &N, 1, &a, pick_backward);
    if (!y) return NULL;
    int *idx = lb_graph_alloc(g, (size_t)N * sizeof(int));
    if (!idx) return NULL;
    memcpy(idx, index, (size_t)N * sizeof(int));
    y->aux = idx;
    for (int n = 0; n < N; n++) y->val[n] = a->val[(size_t)n * C + idx[n]];
    return y;
}
