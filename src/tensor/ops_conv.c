/* conv2d as im2col + one sgemm over the whole batch (batch folded into the GEMM's N
 * dimension), backward as two sgemms + col2im. The direct convolution lives in tests/ only,
 * as the oracle. iarg: 0 stride_h, 1 stride_w, 2 pad_top, 3 pad_bottom, 4 pad_left, 5 pad_right. */
#include "internal.h"

#include <string.h>

typedef struct {
    int N, C, H, W, F, KH, KW, OH, OW, sh, sw, pt, pl;
} conv_geom;

static conv_geom geom_of(const lb_node *y)
{
    const lb_node *x = y->in[0], *w = y->in[1];
    conv_geom q = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                   y->shape[2], y->shape[3], y->iarg[0], y->iarg[1], y->iarg[2], y->iarg[4]};
    return q;
}

/* The output columns ow whose input column iw = ow*sw - pl + kw lies inside [0, W):
 * [*lo, *hi). Computing the range once per row keeps the inner loops free of bounds checks. */
static void valid_cols(const conv_geom *q, int kw, int *lo, int *hi)
{
    int a = q->pl - kw; /* ow*sw >= a */
    int l = a <= 0 ? 0 : (a + q->sw - 1) / q->sw;
    int b = q->W - 1 + q->pl - kw; /* ow*sw <= b */
    int h = b < 0 ? 0 : b / q->sw + 1;
    *lo = l < q->OW ? l : q->OW;
    *hi = h < q->OW ? h : q->OW;
    if (*hi < *lo) *hi = *lo;
}

/* col [C*KH*KW, N*OH*OW] from x [N,C,H,W]; padding reads as zero. */
static void im2col(const conv_geom *q, const float *x, float *col)
{
    size_t P = (size_t)q->OH * q->OW, NP = (size_t)q->N * P;
    for (int c = 0; c < q->C; c++)
        for (int kh = 0; kh < q->KH; kh++)
            for (int kw = 0; kw < q->KW; kw++) {
                float *row = col + ((size_t)(c * q->KH + kh) * q->KW + kw) * NP;
                int lo, hi;
                valid_cols(q, kw, &lo, &hi);
                for (int n = 0; n < q->N; n++) {
                    const float *xc = x + ((size_t)n * q->C + c) * q->H * q->W;
                    float *r = row + (size_t)n * P;
                    for (int oh = 0; oh < q->OH; oh++) {
                        int ih = oh * q->sh - q->pt + kh;
                        float *ro = r + (size_t)oh * q->OW;
                        if (ih < 0 || ih >= q->H) {
                            memset(ro, 0, (size_t)q->OW * sizeof(float));
                            continue;
                        }
                        /* input column of output column lo; no pointer before the row is formed */
                        const float *xr = xc + (size_t)ih * q->W + (lo * q->sw - q->pl + kw);
                        for (int ow = 0; ow < lo; ow++) ro[ow] = 0.0f;
                        if (q->sw == 1)
                            memcpy(ro + lo, xr, (size_t)(hi - lo) * sizeof(float));
                        else
                            for (int ow = lo; ow < hi; ow++) ro[ow] = xr[(ow - lo) * q->sw];
                        for (int ow = hi; ow < q->OW; ow++) ro[ow] = 0.0f;
                    }
                }
            }
}

/* dx += col2im(dcol): the adjoint of im2col. */
static void col2im(const conv_geom *q, const float *col, float *dx)
{
    size_t P = (size_t)q->OH * q->OW, NP = (size_t)q->N * P;
    for (int c = 0; c < q->C; c++)
        for (int kh = 0; kh < q->KH; kh++)
            for (int kw = 0; kw < q->KW; kw++) {
                const float *row = col + ((size_t)(c * q->KH + kh) * q->KW + kw) * NP;
                int lo, hi;
                valid_cols(q, kw, &lo, &hi);
                for (int n = 0; n < q->N; n++) {
                    float *xc = dx + ((size_t)n * q->C + c) * q->H * q->W;
                    const float *r = row + (size_t)n * P;
                    for (int oh = 0; oh < q->OH; oh++) {
                        int ih = oh * q->sh - q->pt + kh;
                        if (ih < 0 || ih >= q->H) continue;
                        float *restrict xr = xc + (size_t)ih * q->W + (lo * q->sw - q->pl + kw);
                        const float *restrict ro = r + (size_t)oh * q->OW + lo;
                        int n_ok = hi - lo;
                        if (q->sw == 1)
                            for (int i = 0; i < n_ok; i++) xr[i] += ro[i];
                        else
                            for (int i = 0; i < n_ok; i++) xr[i * q->sw] += ro[i];
                    }
                }
            }
}

static void conv_backward(lb_node *y)
{
    lb_node *x = y->in[0], *w = y->in[1], *b = y->n_in > 2 ? y->in[2] : NULL;
    conv_geom q = geom_of(y);
    int CKK = q.C * q.KH * q.KW;
    size_t P = (size_t)q.OH * q.OW, NP = (size_t)q.N * P;
    const float *col = y->aux;
    /* dY from [N,F,P] to the GEMM layout [F, N*P] */
    float *dt = lb_graph_floats(y->g, (size_t)q.F * NP);
    if (!dt) return; /* out of memory: lb_backward's caller sees the message */
    for (int n = 0; n < q.N; n++)
        for (int f = 0; f < q.F; f++)
            memcpy(dt + (size_t)f * NP + (size_t)n * P, y->grad + ((size_t)n * q.F + f) * P, P * sizeof(float));
    if (w->requires_grad) lb_gemm(0, 1, q.F, CKK, (int)NP, dt, col, 1.0f, w->grad);
    if (b && b->requires_grad)
        for (int f = 0; f < q.F; f++) {
            double s = 0.0;
            for (size_t i = 0; i < NP; i++) s += dt[(size_t)f * NP + i];
            b->grad[f] += (float)s;
        }
    if (x->requires_grad) {
        float *dcol = lb_graph_floats(y->g, (size_t)CKK * NP);
        if (!dcol) return;
        lb_gemm(1, 0, CKK, (int)NP, q.F, w->val, dt, 0.0f, dcol);
        col2im(&q, dcol, x->grad);
    }
}

lb_node *lb_conv2d_ex(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride_h, int stride_w, int pad_top,
                      int pad_bottom, int pad_left, int pad_right)
{
    LB_NEED(x);
    LB_NEED(w);
    if (x->ndim != 4) return lb_shape_error("conv2d", x, w, "input must be 4-D [N, C, H, W]");
    if (w->ndim != 4) return lb_shape_error("conv2d", x, w, "weight must be 4-D [F, C, KH, KW]");
    if (w->shape[1] != x->shape[1]) return lb_shape_error("conv2d", x, w, "input channels differ");
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return lb_shape_error("conv2d", w, b, "bias must be [F] for weight [F, C, KH, KW]");
    if (stride_h < 1 || stride_w < 1 || pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0) {
        lb_error(LB_EINVAL, "conv2d: stride %dx%d must be >= 1 and padding %d,%d,%d,%d >= 0", stride_h, stride_w,
                 pad_top, pad_bottom, pad_left, pad_right);
        return NULL;
    }
    int Hp = x->shape[2] + pad_top + pad_bottom, Wp = x->shape[3] + pad_left + pad_right;
    if (Hp < w->shape[2] || Wp < w->shape[3])
        return lb_shape_error("conv2d", x, w, "kernel larger than the padded input");
    int shape[4] = {x->shape[0], w->shape[0], (Hp - w->shape[2]) / stride_h + 1,
                    (Wp - w->shape[3]) / stride_w + 1};
    lb_node *in[3] = {x, w, b};
    lb_node *y = lb_node_new(g, "conv2d", 4, shape, b ? 3 : 2, in, conv_backward);
    if (!y) return NULL;
    int args[6] = {stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right};
    memcpy(y->iarg, args, sizeof args);
    conv_geom q = geom_of(y);
    int CKK = q.C * q.KH * q.KW;
    size_t P = (size_t)q.OH * q.OW, NP = (size_t)q.N * P;
    float *col = lb_graph_floats(g, (size_t)CKK * NP);
    float *t = lb_graph_floats(g, (size_t)q.F * NP);
    if (!col || !t) return NULL;
    im2col(&q, x->val, col);
    lb_gemm(0, 0, q.F, (int)NP, CKK, w->val, col, 0.0f, t);
    for (int n = 0; n < q.N; n++)
        for (int f = 0; f < q.F; f++) {
            float *yo = y->val + ((size_t)n * q.F + f) * P;
            const float *to = t + (size_t)f * NP + (size_t)n * P;
            float bias = b ? b->val[f] : 0.0f;
            for (size_t i = 0; i < P; i++) yo[i] = to[i] + bias;
        }
    y->aux = col;
    return y;
}

lb_node *lb_conv2d(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride, int pad)
{
    return lb_conv2d_ex(g, x, w, b, stride, stride, pad, pad, pad, pad);
}
