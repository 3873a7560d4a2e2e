/* Pooling: max (argmax saved for backward), average (padding counted, as PyTorch's
 * count_include_pad=True), global average. */
#include "internal.h"

#include <float.h>

/* A square window. */
typedef struct {
    int k, stride, pad;
} pool_args;

static lb_node *pool_new(lb_graph *g, const char *op, lb_node *x, int k, int stride, int pad, lb_backward_fn bw)
{
    LB_NEED(x);
    if (x->ndim != 4) return lb__shape_error(op, x, NULL, "input must be 4-D [N, C, H, W]");
    if (k < 1 || stride < 1 || pad < 0 || pad > k / 2) {
        lb_error(LB_EINVAL, "%s: window %d, stride %d, padding %d: need window >= 1, stride >= 1, "
                            "0 <= padding <= window/2",
                 op, k, stride, pad);
        return NULL;
    }
    int Hp = x->shape[2] + 2 * pad, Wp = x->shape[3] + 2 * pad;
    if (Hp < k || Wp < k) return lb__shape_error(op, x, NULL, "window larger than the padded input");
    int shape[4] = {x->shape[0], x->shape[1], (Hp - k) / stride + 1, (Wp - k) / stride + 1};
    lb_node *y = lb_node_new(g, op, 4, shape, 1, &x, bw);
    if (!y) return NULL;
    *LB_ARGS(y, pool_args) = (pool_args){k, stride, pad};
    return y;
}

static int maxpool_backward(lb_node *y)
{
    lb_node *x = y->in[0];
    const int *arg = y->aux;
    for (size_t i = 0; i < y->size; i++) x->grad[arg[i]] += y->grad[i];
    return LB_OK;
}

lb_node *lb_maxpool2d(lb_graph *g, lb_node *x, int k, int stride, int pad)
{
    lb_node *y = pool_new(g, "maxpool2d", x, k, stride, pad, maxpool_backward);
    if (!y) return NULL;
    int *arg = lb_graph_alloc(g, y->size * sizeof(int));
    if (!arg) return NULL;
    y->aux = arg;
    int NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3], OH = y->shape[2], OW = y->shape[3];
    if (k == 2 && stride == 2 && pad == 0) {
        /* The reference network's pool: same rule as below (first maximum wins, NaN is
         * chosen), written with selects so it runs without unpredictable branches. */
        for (int nc = 0; nc < NC; nc++) {
            const float *xp = x->val + (size_t)nc * H * W;
            int base = nc * H * W;
            for (int oh = 0; oh < OH; oh++) {
                const float *r0 = xp + (size_t)(2 * oh) * W, *r1 = r0 + W;
                float *yo = y->val + ((size_t)nc * OH + oh) * OW;
                int *ao = arg + ((size_t)nc * OH + oh) * OW;
                for (int ow = 0; ow < OW; ow++) {
                    int i0 = 2 * ow;
                    float m = r0[i0];
                    int best = 0;
                    float v = r0[i0 + 1];
                    int take = (v > m) | (v != v);
                    m = take ? v : m;
                    best = take ? 1 : best;
                    v = r1[i0];
                    take = (v > m) | (v != v);
                    m = take ? v : m;
                    best = take ? W : best;
                    v = r1[i0 + 1];
                    take = (v > m) | (v != v);
                    m = take ? v : m;
                    best = take ? W + 1 : best;
                    yo[ow] = m;
                    ao[ow] = base + 2 * oh * W + i0 + best;
                }
            }
        }
        return y;
    }
    for (int nc = 0; nc < NC; nc++) {
        const float *xp = x->val + (size_t)nc * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float m = -FLT_MAX;
                int best = -1;
                for (int kh = 0; kh < k; kh++) {
                    int ih = oh * stride - pad + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < k; kw++) {
                        int iw = ow * stride - pad + kw;
                        if (iw < 0 || iw >= W) continue;
                        float v = xp[ih * W + iw];
                        /* first maximum wins on ties; NaN propagates by being chosen */
                        if (best < 0 || v > m || v != v) {
                            m = v;
                            best = ih * W + iw;
                        }
                    }
                }
                size_t o = ((size_t)nc * OH + oh) * OW + ow;
                y->val[o] = m;
                arg[o] = (int)((size_t)nc * H * W + (size_t)best);
            }
    }
    return y;
}

static int avgpool_backward(lb_node *y)
{
    lb_node *x = y->in[0];
    const pool_args *q = LB_ARGS(y, pool_args);
    int k = q->k, stride = q->stride, pad = q->pad;
    int NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3], OH = y->shape[2], OW = y->shape[3];
    float inv = 1.0f / (float)(k * k);
    for (int nc = 0; nc < NC; nc++) {
        float *dx = x->grad + (size_t)nc * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float d = y->grad[((size_t)nc * OH + oh) * OW + ow] * inv;
                for (int kh = 0; kh < k; kh++) {
                    int ih = oh * stride - pad + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < k; kw++) {
                        int iw = ow * stride - pad + kw;
                        if (iw >= 0 && iw < W) dx[ih * W + iw] += d;
                    }
                }
            }
    }
    return LB_OK;
}

lb_node *lb_avgpool2d(lb_graph *g, lb_node *x, int k, int stride, int pad)
{
    lb_node *y = pool_new(g, "avgpool2d", x, k, stride, pad, avgpool_backward);
    if (!y) return NULL;
    int NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3], OH = y->shape[2], OW = y->shape[3];
    float inv = 1.0f / (float)(k * k);
    for (int nc = 0; nc < NC; nc++) {
        const float *xp = x->val + (size_t)nc * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float s = 0.0f;
                for (int kh = 0; kh < k; kh++) {
                    int ih = oh * stride - pad + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < k; kw++) {
                        int iw = ow * stride - pad + kw;
                        if (iw >= 0 && iw < W) s += xp[ih * W + iw];
                    }
                }
                y->val[((size_t)nc * OH + oh) * OW + ow] = s * inv;
            }
    }
    return y;
}

static int gap_backward(lb_node *y)
{
    lb_node *x = y->in[0];
    size_t P = (size_t)x->shape[2] * x->shape[3];
    float inv = 1.0f / (float)P;
    for (size_t nc = 0; nc < y->size; nc++)
        for (size_t i = 0; i < P; i++) x->grad[nc * P + i] += y->grad[nc] * inv;
    return LB_OK;
}

lb_node *lb_global_avgpool(lb_graph *g, lb_node *x)
{
    LB_NEED(x);
    if (x->ndim != 4) return lb__shape_error("global_avgpool", x, NULL, "input must be 4-D [N, C, H, W]");
    int shape[2] = {x->shape[0], x->shape[1]};
    lb_node *y = lb_node_new(g, "global_avgpool", 2, shape, 1, &x, gap_backward);
    if (!y) return NULL;
    size_t P = (size_t)x->shape[2] * x->shape[3];
    for (size_t nc = 0; nc < y->size; nc++) {
        double s = 0.0;
        for (size_t i = 0; i < P; i++) s += x->val[nc * P + i];
        y->val[nc] = (float)(s / (double)P);
    }
    return y;
}
