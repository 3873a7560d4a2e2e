/* Elementwise ops: add, sub, mul (same shape, or a [C] bias broadcast over every other
 * dimension), scale, and the unary activations. Forward and backward side by side. */
#include "internal.h"

#include <math.h>

/* b broadcast: b is [a.shape[1]]; element i of a uses b[(i / inner) % C]. */
typedef struct {
    int bcast;
    size_t inner, C;
} bcast_t;

/* The arguments of a binary op's node: whether b is broadcast. */
typedef struct {
    int bcast;
} binary_args;

/* scale and leaky_relu: one number. */
typedef struct {
    float s;
} scalar_args;

static lb_node *binary_new(lb_graph *g, const char *op, lb_node *a, lb_node *b, lb_backward_fn bw)
{
    LB_NEED(a);
    LB_NEED(b);
    int bc = 0;
    if (!lb_same_shape(a, b)) {
        if (b->ndim == 1 && a->ndim >= 2 && b->shape[0] == a->shape[1])
            bc = 1;
        else
            return lb__shape_error(op, a, b, "shapes differ and the second is not a [C] vector over dim 1");
    }
    lb_node *in[2] = {a, b};
    lb_node *y = lb_node_new(g, op, a->ndim, a->shape, 2, in, bw);
    if (!y) return NULL;
    LB_ARGS(y, binary_args)->bcast = bc;
    return y;
}

static bcast_t bcast_of(const lb_node *y)
{
    bcast_t t = {LB_ARGS(y, binary_args)->bcast, 1, 1};
    if (t.bcast) {
        t.C = (size_t)y->shape[1];
        for (int i = 2; i < y->ndim; i++) t.inner *= (size_t)y->shape[i];
    }
    return t;
}

#define BIDX(t, i) ((t).bcast ? ((i) / (t).inner) % (t).C : (i))

/* d(a + s*b): dA += dY, dB += s * dY (summed over the broadcast dimensions). */
static void add_grads(lb_node *y, float s)
{
    lb_node *a = y->in[0], *b = y->in[1];
    bcast_t t = bcast_of(y);
    if (a->requires_grad)
        for (size_t i = 0; i < y->size; i++) a->grad[i] += y->grad[i];
    if (b->requires_grad)
        for (size_t i = 0; i < y->size; i++) b->grad[BIDX(t, i)] += s * y->grad[i];
}

static int add_backward(lb_node *y)
{
    add_grads(y, 1.0f);
    return LB_OK;
}

static int sub_backward(lb_node *y)
{
    add_grads(y, -1.0f);
    return LB_OK;
}

lb_node *lb_add(lb_graph *g, lb_node *a, lb_node *b)
{
    lb_node *y = binary_new(g, "add", a, b, add_backward);
    if (!y) return NULL;
    bcast_t t = bcast_of(y);
    for (size_t i = 0; i < y->size; i++) y->val[i] = a->val[i] + b->val[BIDX(t, i)];
    return y;
}

lb_node *lb_sub(lb_graph *g, lb_node *a, lb_node *b)
{
    lb_node *y = binary_new(g, "sub", a, b, sub_backward);
    if (!y) return NULL;
    bcast_t t = bcast_of(y);
    for (size_t i = 0; i < y->size; i++) y->val[i] = a->val[i] - b->val[BIDX(t, i)];
    return y;
}

static int mul_backward(lb_node *y)
{
    lb_node *a = y->in[0], *b = y->in[1];
    bcast_t t = bcast_of(y);
    if (a->requires_grad)
        for (size_t i = 0; i < y->size; i++) a->grad[i] += y->grad[i] * b->val[BIDX(t, i)];
    if (b->requires_grad)
        for (size_t i = 0; i < y->size; i++) b->grad[BIDX(t, i)] += y->grad[i] * a->val[i];
    return LB_OK;
}

lb_node *lb_mul(lb_graph *g, lb_node *a, lb_node *b)
{
    lb_node *y = binary_new(g, "mul", a, b, mul_backward);
    if (!y) return NULL;
    bcast_t t = bcast_of(y);
    for (size_t i = 0; i < y->size; i++) y->val[i] = a->val[i] * b->val[BIDX(t, i)];
    return y;
}

/* ---- unary ---- */

static lb_node *unary_new(lb_graph *g, const char *op, lb_node *a, lb_backward_fn bw)
{
    LB_NEED(a);
    return lb_node_new(g, op, a->ndim, a->shape, 1, &a, bw);
}

static int scale_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    float s = LB_ARGS(y, scalar_args)->s;
    for (size_t i = 0; i < y->size; i++) a->grad[i] += s * y->grad[i];
    return LB_OK;
}

lb_node *lb_scale(lb_graph *g, lb_node *a, float s)
{
    lb_node *y = unary_new(g, "scale", a, scale_backward);
    if (!y) return NULL;
    LB_ARGS(y, scalar_args)->s = s;
    for (size_t i = 0; i < y->size; i++) y->val[i] = s * a->val[i];
    return y;
}

/* relu and leaky_relu: slope 0 is relu. The gradient at exactly 0 is taken as the left
 * side's (0 for relu), as PyTorch. */
static int leaky_backward(lb_node *y)
{
    /* restrict locals and a branch-free body let the loop vectorise; a branch per element
     * mispredicts on random signs (it was 18% of a training step) */
    const float *restrict x = y->in[0]->val, *restrict dy = y->grad;
    float *restrict dx = y->in[0]->grad;
    float s = LB_ARGS(y, scalar_args)->s;
    /* a select of constants, then one multiplication: the form GCC vectorises */
    for (size_t i = 0; i < y->size; i++) dx[i] += dy[i] * (x[i] > 0.0f ? 1.0f : s);
    return LB_OK;
}

lb_node *lb_leaky_relu(lb_graph *g, lb_node *a, float slope)
{
    lb_node *y = unary_new(g, slope == 0.0f ? "relu" : "leaky_relu", a, leaky_backward);
    if (!y) return NULL;
    LB_ARGS(y, scalar_args)->s = slope;
    const float *restrict x = a->val;
    float *restrict v = y->val;
    for (size_t i = 0; i < y->size; i++) {
        float u = x[i];
        v[i] = u * (u > 0.0f ? 1.0f : slope); /* NaN stays NaN */
    }
    return y;
}

lb_node *lb_relu(lb_graph *g, lb_node *a) { return lb_leaky_relu(g, a, 0.0f); }

/* sigmoid, tanh, exp: the derivative is a function of the output. */
static int sigmoid_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    for (size_t i = 0; i < y->size; i++) a->grad[i] += y->grad[i] * y->val[i] * (1.0f - y->val[i]);
    return LB_OK;
}

lb_node *lb_sigmoid(lb_graph *g, lb_node *a)
{
    lb_node *y = unary_new(g, "sigmoid", a, sigmoid_backward);
    if (!y) return NULL;
    for (size_t i = 0; i < y->size; i++) {
        float x = a->val[i];
        /* two branches so exp never overflows */
        if (x >= 0.0f)
            y->val[i] = 1.0f / (1.0f + expf(-x));
        else {
            float e = expf(x);
            y->val[i] = e / (1.0f + e);
        }
    }
    return y;
}

static int tanh_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    for (size_t i = 0; i < y->size; i++) a->grad[i] += y->grad[i] * (1.0f - y->val[i] * y->val[i]);
    return LB_OK;
}

lb_node *lb_tanh(lb_graph *g, lb_node *a)
{
    lb_node *y = unary_new(g, "tanh", a, tanh_backward);
    if (!y) return NULL;
    for (size_t i = 0; i < y->size; i++) y->val[i] = tanhf(a->val[i]);
    return y;
}

static int exp_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    for (size_t i = 0; i < y->size; i++) a->grad[i] += y->grad[i] * y->val[i];
    return LB_OK;
}

lb_node *lb_exp(lb_graph *g, lb_node *a)
{
    lb_node *y = unary_new(g, "exp", a, exp_backward);
    if (!y) return NULL;
    for (size_t i = 0; i < y->size; i++) y->val[i] = expf(a->val[i]);
    return y;
}

static int log_backward(lb_node *y)
{
    lb_node *a = y->in[0];
    for (size_t i = 0; i < y->size; i++) a->grad[i] += y->grad[i] / a->val[i];
    return LB_OK;
}

lb_node *lb_log(lb_graph *g, lb_node *a)
{
    lb_node *y = unary_new(g, "log", a, log_backward);
    if (!y) return NULL;
    for (size_t i = 0; i < y->size; i++) y->val[i] = logf(a->val[i]);
    return y;
}
