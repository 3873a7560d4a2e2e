/* Naive direct NCHW convolution and pooling, forward and backward: the test oracles for
 * the im2col + sgemm convolution and the pooling loops in src/tensor. Each is a plain loop
 * over the definition, accumulated in double. The backward passes are written as gathers
 * (for each input element, sum the outputs that read it) while the library scatters, so
 * the two do not share an indexing mistake. Tests only; nothing in src/ uses this. */
#ifndef LIBRA_TESTS_NAIVE_OPS_H
#define LIBRA_TESTS_NAIVE_OPS_H

#include <float.h>
#include <stddef.h>

typedef struct {
    int N, C, H, W;         /* input */
    int F, KH, KW;          /* weight [F, C, KH, KW] */
    int sh, sw;             /* strides */
    int pt, pb, pl, pr;     /* padding: top, bottom, left, right */
} naive_conv;

static inline int naive_conv_oh(const naive_conv *q) { return (q->H + q->pt + q->pb - q->KH) / q->sh + 1; }
static inline int naive_conv_ow(const naive_conv *q) { return (q->W + q->pl + q->pr - q->KW) / q->sw + 1; }

#define NAIVE_AT4(a, d1, d2, d3, i0, i1, i2, i3) \
    ((a)[(((size_t)(i0) * (d1) + (size_t)(i1)) * (d2) + (size_t)(i2)) * (d3) + (size_t)(i3)])

/* y [N, F, OH, OW] = sum_{c,kh,kw} x[n, c, oh*sh - pt + kh, ow*sw - pl + kw] w[f, c, kh, kw] + b[f] */
static inline void naive_conv2d_forward(const naive_conv *q, const float *x, const float *w, const float *b, float *y)
{
    int OH = naive_conv_oh(q), OW = naive_conv_ow(q);
    for (int n = 0; n < q->N; n++)
        for (int f = 0; f < q->F; f++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b ? b[f] : 0.0;
                    for (int c = 0; c < q->C; c++)
                        for (int kh = 0; kh < q->KH; kh++)
                            for (int kw = 0; kw < q->KW; kw++) {
                                int ih = oh * q->sh - q->pt + kh, iw = ow * q->sw - q->pl + kw;
                                if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W) continue;
                                s += (double)NAIVE_AT4(x, q->C, q->H, q->W, n, c, ih, iw) *
                                     NAIVE_AT4(w, q->C, q->KH, q->KW, f, c, kh, kw);
                            }
                    NAIVE_AT4(y, q->F, OH, OW, n, f, oh, ow) = (float)s;
                }
}

/* Given dy [N, F, OH, OW], writes (overwrites) dx, dw and db (any may be NULL). */
static inline void naive_conv2d_backward(const naive_conv *q, const float *x, const float *w, const float *dy,
                                         float *dx, float *dw, float *db)
{
    int OH = naive_conv_oh(q), OW = naive_conv_ow(q);
    if (dx) /* dx[n,c,ih,iw] = sum over (f, kh, kw) with oh = (ih + pt - kh) / sh an in-range integer */
        for (int n = 0; n < q->N; n++)
            for (int c = 0; c < q->C; c++)
                for (int ih = 0; ih < q->H; ih++)
                    for (int iw = 0; iw < q->W; iw++) {
                        double s = 0.0;
                        for (int f = 0; f < q->F; f++)
                            for (int kh = 0; kh < q->KH; kh++)
                                for (int kw = 0; kw < q->KW; kw++) {
                                    int th = ih + q->pt - kh, tw = iw + q->pl - kw;
                                    if (th < 0 || tw < 0 || th % q->sh || tw % q->sw) continue;
                                    int oh = th / q->sh, ow = tw / q->sw;
                                    if (oh >= OH || ow >= OW) continue;
                                    s += (double)NAIVE_AT4(dy, q->F, OH, OW, n, f, oh, ow) *
                                         NAIVE_AT4(w, q->C, q->KH, q->KW, f, c, kh, kw);
                                }
                        NAIVE_AT4(dx, q->C, q->H, q->W, n, c, ih, iw) = (float)s;
                    }
    if (dw)
        for (int f = 0; f < q->F; f++)
            for (int c = 0; c < q->C; c++)
                for (int kh = 0; kh < q->KH; kh++)
                    for (int kw = 0; kw < q->KW; kw++) {
                        double s = 0.0;
                        for (int n = 0; n < q->N; n++)
                            for (int oh = 0; oh < OH; oh++)
                                for (int ow = 0; ow < OW; ow++) {
                                    int ih = oh * q->sh - q->pt + kh, iw = ow * q->sw - q->pl + kw;
                                    if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W) continue;
                                    s += (double)NAIVE_AT4(dy, q->F, OH, OW, n, f, oh, ow) *
                                         NAIVE_AT4(x, q->C, q->H, q->W, n, c, ih, iw);
                                }
                        NAIVE_AT4(dw, q->C, q->KH, q->KW, f, c, kh, kw) = (float)s;
                    }
    if (db)
        for (int f = 0; f < q->F; f++) {
            double s = 0.0;
            for (int n = 0; n < q->N; n++)
                for (int oh = 0; oh < OH; oh++)
                    for (int ow = 0; ow < OW; ow++) s += NAIVE_AT4(dy, q->F, OH, OW, n, f, oh, ow);
            db[f] = (float)s;
        }
}

/* Pooling: square window k, stride s, padding p on every side. */
typedef struct {
    int N, C, H, W, k, s, p;
} naive_pool;

static inline int naive_pool_oh(const naive_pool *q) { return (q->H + 2 * q->p - q->k) / q->s + 1; }
static inline int naive_pool_ow(const naive_pool *q) { return (q->W + 2 * q->p - q->k) / q->s + 1; }

/* Flat index (within one [H, W] plane) of the first largest in-range element of the
 * window at (oh, ow); padding never wins (it is -inf). */
static inline int naive_window_argmax(const naive_pool *q, const float *plane, int oh, int ow)
{
    int best = -1;
    for (int kh = 0; kh < q->k; kh++)
        for (int kw = 0; kw < q->k; kw++) {
            int ih = oh * q->s - q->p + kh, iw = ow * q->s - q->p + kw;
            if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W) continue;
            if (best < 0 || plane[ih * q->W + iw] > plane[best]) best = ih * q->W + iw;
        }
    return best;
}

static inline void naive_maxpool_forward(const naive_pool *q, const float *x, float *y)
{
    int OH = naive_pool_oh(q), OW = naive_pool_ow(q);
    for (int nc = 0; nc < q->N * q->C; nc++) {
        const float *plane = x + (size_t)nc * q->H * q->W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                y[((size_t)nc * OH + oh) * OW + ow] = plane[naive_window_argmax(q, plane, oh, ow)];
    }
}

/* dx[i] = sum of dy over the windows whose maximum is element i. */
static inline void naive_maxpool_backward(const naive_pool *q, const float *x, const float *dy, float *dx)
{
    int OH = naive_pool_oh(q), OW = naive_pool_ow(q);
    for (int nc = 0; nc < q->N * q->C; nc++) {
        const float *plane = x + (size_t)nc * q->H * q->W;
        for (int i = 0; i < q->H * q->W; i++) {
            double s = 0.0;
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    if (naive_window_argmax(q, plane, oh, ow) == i) s += dy[((size_t)nc * OH + oh) * OW + ow];
            dx[(size_t)nc * q->H * q->W + i] = (float)s;
        }
    }
}

/* Average with the padding counted (divisor k*k), as PyTorch's count_include_pad=True. */
static inline void naive_avgpool_forward(const naive_pool *q, const float *x, float *y)
{
    int OH = naive_pool_oh(q), OW = naive_pool_ow(q);
    for (int nc = 0; nc < q->N * q->C; nc++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double s = 0.0;
                for (int kh = 0; kh < q->k; kh++)
                    for (int kw = 0; kw < q->k; kw++) {
                        int ih = oh * q->s - q->p + kh, iw = ow * q->s - q->p + kw;
                        if (ih >= 0 && ih < q->H && iw >= 0 && iw < q->W)
                            s += x[((size_t)nc * q->H + ih) * q->W + iw];
                    }
                y[((size_t)nc * OH + oh) * OW + ow] = (float)(s / (q->k * q->k));
            }
}

/* dx[ih, iw] = sum over the windows containing (ih, iw) of dy / (k*k). */
static inline void naive_avgpool_backward(const naive_pool *q, const float *dy, float *dx)
{
    int OH = naive_pool_oh(q), OW = naive_pool_ow(q);
    for (int nc = 0; nc < q->N * q->C; nc++)
        for (int ih = 0; ih < q->H; ih++)
            for (int iw = 0; iw < q->W; iw++) {
                double s = 0.0;
                for (int oh = 0; oh < OH; oh++)
                    for (int ow = 0; ow < OW; ow++) {
                        int kh = ih + q->p - oh * q->s, kw = iw + q->p - ow * q->s;
                        if (kh >= 0 && kh < q->k && kw >= 0 && kw < q->k) s += dy[((size_t)nc * OH + oh) * OW + ow];
                    }
                dx[((size_t)nc * q->H + ih) * q->W + iw] = (float)(s / (q->k * q->k));
            }
}

#endif
