/* conv2d as im2col + sgemm per image (output written in place in NCHW), backward as two
 * sgemms + col2im per image, split over images on libra's threads; 3x3 stride-1 kernels with
 * enough channels by Winograd F(2x2, 3x3) over chunks of images instead (ops_winograd.c);
 * optionally with the ReLU, or ReLU and 2x2 max-pool, fused in. The direct convolution lives
 * in tests/ only, as the oracle. */
#include "conv.h"
#include "internal.h"

#include <string.h>

/* A convolution node's arguments; with pool, aux holds the pool's choices. */
typedef struct {
    int stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right;
    int relu;   /* ReLU fused in */
    int pool;   /* 2x2 stride-2 max-pool fused in after the ReLU */
} conv_args;


static conv_geom geom_of(const lb_node *y)
{
    const lb_node *x = y->in[0], *w = y->in[1];
    const conv_args *a = LB_ARGS(y, conv_args);
    /* the convolution's own output size (y is smaller when a pool is fused in) */
    int OH = (x->shape[2] + a->pad_top + a->pad_bottom - w->shape[2]) / a->stride_h + 1;
    int OW = (x->shape[3] + a->pad_left + a->pad_right - w->shape[3]) / a->stride_w + 1;
    conv_geom q = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                   OH, OW, a->stride_h, a->stride_w, a->pad_top, a->pad_left};
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

/* One row of col (fixed c, kh, kw) for stride 1 and OW == W ("same" width): the valid
 * output rows are one contiguous shifted copy of the input plane, so one memcpy replaces
 * OH short ones (each a library call); the columns that wrapped around are then zeroed. */
static void shifted_rows(const conv_geom *q, const float *xc, int kh, int kw, int lo, int hi, float *row)
{
    int oh0 = q->pt - kh > 0 ? q->pt - kh : 0;          /* first oh with ih = oh - pt + kh >= 0 */
    if (oh0 > q->OH) oh0 = q->OH; /* kernel row kh reads only top padding (e.g. H = 1, pad_top 2) */
    int oh1 = q->H + q->pt - kh < q->OH ? q->H + q->pt - kh : q->OH;
    if (oh1 < oh0) oh1 = oh0;
    size_t W = (size_t)q->W, HW = (size_t)q->H * W;
    memset(row, 0, (size_t)oh0 * W * sizeof(float));
    memset(row + (size_t)oh1 * W, 0, (size_t)(q->OH - oh1) * W * sizeof(float));
    /* output (oh, ow) reads input index s0 + (oh - oh0) * W + ow */
    long s0 = (long)(oh0 - q->pt + kh) * (long)W + (kw - q->pl);
    long len = (long)(oh1 - oh0) * (long)W, j0 = s0 < 0 ? -s0 : 0, j1 = (long)HW - s0 < len ? (long)HW - s0 : len;
    if (j0 > len) j0 = len; /* left padding wider than the block (W = 1): stay inside this row */
    float *dst = row + (size_t)oh0 * W;
    if (j0 > 0) memset(dst, 0, (size_t)j0 * sizeof(float));
    if (j1 > j0) memcpy(dst + j0, xc + s0 + j0, (size_t)(j1 - j0) * sizeof(float));
    if (j1 < len) memset(dst + (j1 > j0 ? j1 : j0), 0, (size_t)(len - (j1 > j0 ? j1 : j0)) * sizeof(float));
    for (int oh = oh0; oh < oh1; oh++) {
        float *ro = row + (size_t)oh * W;
        for (int ow = 0; ow < lo; ow++) ro[ow] = 0.0f;
        for (int ow = hi; ow < q->OW; ow++) ro[ow] = 0.0f;
    }
}

/* col [C*KH*KW, OH*OW] from one image x [C,H,W]; padding reads as zero. One image at a
 * time keeps col (conv2 of the reference net: 225 KB) in L2 between im2col and the GEMM. */
static void im2col(const conv_geom *q, const float *x, float *col)
{
    size_t P = (size_t)q->OH * q->OW;
    for (int c = 0; c < q->C; c++)
        for (int kh = 0; kh < q->KH; kh++)
            for (int kw = 0; kw < q->KW; kw++) {
                float *row = col + ((size_t)(c * q->KH + kh) * q->KW + kw) * P;
                const float *xc = x + (size_t)c * q->H * q->W;
                int lo, hi;
                valid_cols(q, kw, &lo, &hi);
                if (q->sh == 1 && q->sw == 1 && q->OW == q->W) {
                    shifted_rows(q, xc, kh, kw, lo, hi, row);
                    continue;
                }
                for (int oh = 0; oh < q->OH; oh++) {
                    int ih = oh * q->sh - q->pt + kh;
                    float *ro = row + (size_t)oh * q->OW;
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

/* dx += col2im(dcol) for one image: the adjoint of im2col. */
static void col2im(const conv_geom *q, const float *col, float *dx)
{
    size_t P = (size_t)q->OH * q->OW;
    for (int c = 0; c < q->C; c++)
        for (int kh = 0; kh < q->KH; kh++)
            for (int kw = 0; kw < q->KW; kw++) {
                const float *row = col + ((size_t)(c * q->KH + kh) * q->KW + kw) * P;
                float *xc = dx + (size_t)c * q->H * q->W;
                int lo, hi;
                valid_cols(q, kw, &lo, &hi);
                for (int oh = 0; oh < q->OH; oh++) {
                    int ih = oh * q->sh - q->pt + kh;
                    if (ih < 0 || ih >= q->H) continue;
                    float *restrict xr = xc + (size_t)ih * q->W + (lo * q->sw - q->pl + kw);
                    const float *restrict ro = row + (size_t)oh * q->OW + lo;
                    int n_ok = hi - lo;
                    if (q->sw == 1)
                        for (int i = 0; i < n_ok; i++) xr[i] += ro[i];
                    else
                        for (int i = 0; i < n_ok; i++) xr[i * q->sw] += ro[i];
                }
            }
}

/* A 1x1, stride-1, unpadded kernel reads the image itself as its column matrix. */
static int col_is_input(const conv_geom *q)
{
    return q->KH == 1 && q->KW == 1 && q->sh == 1 && q->sw == 1 && q->pt == 0 && q->pl == 0 && q->OH == q->H &&
           q->OW == q->W;
}

/* Sum of n floats in 8 interleaved partial sums: one running sum is a chain of dependent
 * additions that cannot be vectorised (it was most of the bias gradient's time). */
static double row_sum(const float *r, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += r[i + j];
    double s = 0.0;
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; i < n; i++) s += r[i];
    return s;
}

/* Work shared by the parts of a convolution: images [lo, hi) of part i, in chunks of `chunk`
 * images (1 on the im2col path), use scratch col + i * CKK * P (and dcol, dw, db, dym, z, ws
 * likewise), taken from the arena beforehand. */
typedef struct {
    const lb_node *y;
    conv_geom q;
    int CKK, direct, wino, chunk;
    size_t P, xs;
    float *col, *dcol, *dw; /* dw: weight-gradient partials of parts 1.. (part 0 adds into w->grad) */
    double *db;             /* bias-gradient partials, F per part */
    float *dym;             /* fused ReLU: dY masked by y > 0, chunk * F * P per part */
    int relu, pool;         /* fused ReLU; fused 2x2 stride-2 max-pool (after the ReLU) */
    float *z;               /* fused pool: the conv+ReLU output of a chunk, chunk * F * P per part */
    unsigned char *arg;     /* fused pool: per pooled output, the chosen cell of its 2x2 window
                             * (0..3, row-major), or NO_GRAD where the ReLU passes none */
    float *U, *dU, *ws;     /* Winograd: U [16, F, C]; dU partials and scratch per part */
    size_t ws_n;            /* Winograd: scratch floats per part */
} conv_work;

#define NO_GRAD 255

/* Four 2x2 windows at a time as vectors (GCC's vector extension, SSE width: every x86-64 has
 * it): the windows' four cells are split out of two 8-float loads per row. */
typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));
#if defined(__clang__)
#define SHUFFLE4(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
#else
#define SHUFFLE4(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, (v4i){i0, i1, i2, i3})
#endif

/* The cells c[0..3] (row-major) of windows pw .. pw + 3. */
static void window_cells(const float *r0, const float *r1, int pw, v4f c[4])
{
    v4f a0, a1, b0, b1;
    memcpy(&a0, r0 + 2 * pw, sizeof a0), memcpy(&a1, r0 + 2 * pw + 4, sizeof a1);
    memcpy(&b0, r1 + 2 * pw, sizeof b0), memcpy(&b1, r1 + 2 * pw + 4, sizeof b1);
    c[0] = SHUFFLE4(a0, a1, 0, 2, 4, 6), c[1] = SHUFFLE4(a0, a1, 1, 3, 5, 7);
    c[2] = SHUFFLE4(b0, b1, 0, 2, 4, 6), c[3] = SHUFFLE4(b0, b1, 1, 3, 5, 7);
}

/* One row of 2x2 windows (rows r0, r1) pooled into yo: the first maximum in row-major order wins
 * and NaN is chosen (v > m or v is NaN takes the place), as lb_maxpool2d does; arg (may be NULL)
 * gets the cell (0..3), or NO_GRAD where the maximum is not > 0. Four windows at a time, then
 * the rest one by one with the same rule. */
static void pool_row(const float *r0, const float *r1, int PW, float *yo, unsigned char *ao)
{
    int pw = 0;
    for (; pw + 4 <= PW; pw += 4) {
        v4f c[4];
        window_cells(r0, r1, pw, c);
        v4f m = c[0];
        v4i best = {0, 0, 0, 0};
        for (int j = 1; j < 4; j++) {
            v4i t = (c[j] > m) | (c[j] != c[j]);
            m = (v4f)(((v4i)c[j] & t) | ((v4i)m & ~t));
            best = (t & j) | (best & ~t);
        }
        memcpy(yo + pw, &m, sizeof m);
        v4i pos = m > 0.0f;
        for (int j = 0; ao && j < 4; j++) ao[pw + j] = (unsigned char)(pos[j] ? best[j] : NO_GRAD);
    }
    for (; pw < PW; pw++) {
        float v[4] = {r0[2 * pw], r0[2 * pw + 1], r1[2 * pw], r1[2 * pw + 1]}, m = v[0];
        int best = 0;
        for (int j = 1; j < 4; j++) {
            int t = (v[j] > m) | (v[j] != v[j]);
            m = t ? v[j] : m, best = t ? j : best;
        }
        yo[pw] = m;
        if (ao) ao[pw] = (unsigned char)(m > 0.0f ? best : NO_GRAD);
    }
}

/* 2x2 stride-2 max-pool of one image's conv+ReLU output z [F, OH, OW] into y [F, OH/2, OW/2],
 * with the same values lb_maxpool2d(lb_relu(.)) gives (first maximum wins, NaN is chosen). arg
 * (may be NULL) gets the chosen cell, or NO_GRAD if its value is not > 0: there ReLU's gradient
 * is 0. One byte per output, a quarter of an int index. */
static void relu_pool(const conv_geom *q, const float *z, float *y, unsigned char *arg)
{
    int OH = q->OH, OW = q->OW, PH = OH / 2, PW = OW / 2;
    for (int f = 0; f < q->F; f++)
        for (int ph = 0; ph < PH; ph++) {
            const float *r0 = z + (size_t)(f * OH + 2 * ph) * OW, *r1 = r0 + OW;
            float *yo = y + ((size_t)f * PH + ph) * PW;
            pool_row(r0, r1, PW, yo, arg ? arg + ((size_t)f * PH + ph) * PW : NULL);
        }
}

/* Bias, then the fused ReLU or ReLU and pool, on image n's convolution yn [F, P] while it is
 * still in cache; the ReLU as lb_relu computes it. */
static void conv_epilogue(const conv_work *k, float *yn, int n)
{
    const lb_node *y = k->y, *b = y->n_in > 2 ? y->in[2] : NULL;
    const conv_geom *q = &k->q;
    for (int f = 0; f < q->F; f++) {
        float *restrict r = yn + (size_t)f * k->P, bias = b ? b->val[f] : 0.0f;
        if (k->relu)
            for (size_t i = 0; i < k->P; i++) {
                float u = r[i] + bias;
                r[i] = u * (u > 0.0f ? 1.0f : 0.0f);
            }
        else if (b)
            for (size_t i = 0; i < k->P; i++) r[i] += bias;
    }
    if (k->pool) {
        size_t ps = (size_t)q->F * (q->OH / 2) * (q->OW / 2);
        relu_pool(q, yn, y->val + (size_t)n * ps, k->arg ? k->arg + (size_t)n * ps : NULL);
    }
}

static void conv_forward_part(void *p, int part, int n_parts)
{
    const conv_work *k = p;
    const lb_node *y = k->y, *x = y->in[0], *w = y->in[1];
    const conv_geom *q = &k->q;
    float *col = k->direct || k->wino ? NULL : k->col + (size_t)part * k->CKK * k->P;
    size_t FP = (size_t)q->F * k->P;
    int lo, hi;
    lb_split_range(q->N, part, n_parts, &lo, &hi);
    for (int n0 = lo; n0 < hi; n0 += k->chunk) {
        int m = hi - n0 < k->chunk ? hi - n0 : k->chunk;
        const float *x0 = x->val + (size_t)n0 * k->xs;
        float *out = k->pool ? k->z + (size_t)part * k->chunk * FP : y->val + (size_t)n0 * FP;
        if (k->wino)
            lb__wino_forward(q, k->U, x0, k->xs, m, out, FP, k->ws + (size_t)part * k->ws_n);
        for (int i = 0; i < m && !k->wino; i++) {
            if (!k->direct) im2col(q, x0 + (size_t)i * k->xs, col);
            lb__gemm_serial(0, 0, q->F, (int)k->P, k->CKK, w->val, k->CKK, k->direct ? x0 + (size_t)i * k->xs : col,
                           (int)k->P, 0.0f, out + (size_t)i * FP, (int)k->P);
        }
        for (int i = 0; i < m; i++) conv_epilogue(k, out + (size_t)i * FP, n0 + i);
    }
}

/* dY of image n as the convolution's own output [F, P] sees it: scattered through the fused
 * pool's choices (ReLU's mask is in arg), or masked by the fused ReLU, into m; or y->grad. */
static const float *conv_dy(const conv_work *k, int n, float *m)
{
    const lb_node *y = k->y;
    const conv_geom *q = &k->q;
    const float *dy = y->grad + (size_t)n * (size_t)y->size / q->N;
    if (k->pool) {
        int PH = q->OH / 2, PW = q->OW / 2;
        const unsigned char *a = k->arg + (size_t)n * q->F * PH * PW;
        memset(m, 0, (size_t)q->F * k->P * sizeof(float));
        for (int f = 0; f < q->F; f++)
            for (int ph = 0; ph < PH; ph++) {
                size_t o = ((size_t)f * PH + ph) * PW;
                float *r = m + (size_t)(f * q->OH + 2 * ph) * q->OW;
                for (int pw = 0; pw < PW; pw++)
                    if (a[o + pw] != NO_GRAD) r[2 * pw + (a[o + pw] & 1) + (a[o + pw] >> 1) * q->OW] = dy[o + pw];
            }
        return m;
    }
    if (k->relu) { /* ReLU's gradient: y > 0 exactly where its input was > 0 */
        const float *restrict yv = y->val + (size_t)n * q->F * k->P;
        for (size_t i = 0; i < (size_t)q->F * k->P; i++) m[i] = dy[i] * (yv[i] > 0.0f ? 1.0f : 0.0f);
        return m;
    }
    return dy;
}

/* The im2col path's gradients of one image: with the NCHW layout, dY_n is already the GEMM's
 * [F, P] operand, so there is no permute; the column matrix is rebuilt from x rather than kept
 * from the forward pass (a copy costs less than holding C*KH*KW*N*P floats for the whole step). */
static void gemm_backward_image(const conv_work *k, int part, int n, const float *dy, float *dw)
{
    const lb_node *x = k->y->in[0], *w = k->y->in[1];
    const conv_geom *q = &k->q;
    int CKK = k->CKK, P = (int)k->P;
    float *col = k->direct ? NULL : k->col + (size_t)part * CKK * k->P;
    float *dcol = k->dcol ? k->dcol + (size_t)part * CKK * k->P : NULL;
    const float *xn = x->val + (size_t)n * k->xs;
    if (w->requires_grad) {
        if (!k->direct) im2col(q, xn, col);
        lb__gemm_serial(0, 1, q->F, CKK, P, dy, P, k->direct ? xn : col, P, 1.0f, dw, CKK);
    }
    if (x->requires_grad) {
        float *dx = x->grad + (size_t)n * k->xs;
        if (k->direct) {
            lb__gemm_serial(1, 0, CKK, P, q->F, w->val, CKK, dy, P, 1.0f, dx, P);
        } else {
            lb__gemm_serial(1, 0, CKK, P, q->F, w->val, CKK, dy, P, 0.0f, dcol, P);
            col2im(q, dcol, dx);
        }
    }
}

static void conv_backward_part(void *p, int part, int n_parts)
{
    const conv_work *k = p;
    const lb_node *x = k->y->in[0], *w = k->y->in[1];
    const conv_geom *q = &k->q;
    size_t FP = (size_t)q->F * k->P, dws = k->wino ? 16 * (size_t)q->F * q->C : (size_t)q->F * k->CKK;
    float *dw = k->wino ? k->dU + (size_t)part * dws : part == 0 ? w->grad : k->dw + (size_t)(part - 1) * dws;
    double *db = k->db ? k->db + (size_t)part * q->F : NULL;
    if ((part > 0 || k->wino) && w->requires_grad)
        for (size_t i = 0; i < dws; i++) dw[i] = 0.0f;
    if (db)
        for (int f = 0; f < q->F; f++) db[f] = 0.0;
    int lo, hi;
    lb_split_range(q->N, part, n_parts, &lo, &hi);
    for (int n0 = lo; n0 < hi; n0 += k->chunk) {
        int m = hi - n0 < k->chunk ? hi - n0 : k->chunk;
        const float *dy[LB_WINO_TILES]; /* chunk <= LB_WINO_TILES images */
        for (int i = 0; i < m; i++) dy[i] = conv_dy(k, n0 + i, k->dym ? k->dym + ((size_t)part * k->chunk + i) * FP : NULL);
        for (int i = 0; i < m && db; i++)
            for (int f = 0; f < q->F; f++) db[f] += row_sum(dy[i] + (size_t)f * k->P, (int)k->P);
        if (k->wino) /* the chunk's dY is contiguous: y->grad's images, or dym's */
            lb__wino_backward(q, k->U, x->val + (size_t)n0 * k->xs, dy[0], k->xs, FP, m, w->requires_grad ? dw : NULL,
                              x->requires_grad ? x->grad + (size_t)n0 * k->xs : NULL, k->ws + (size_t)part * k->ws_n);
        else
            for (int i = 0; i < m; i++) gemm_backward_image(k, part, n0 + i, dy[i], dw);
    }
}

/* Parts: the thread count, but never more than the images. */
static int conv_parts(int N)
{
    int t = lb_get_threads();
    return t < N ? t : N;
}

/* The algorithm and its sizes; U (Winograd) from the weight's current values. */
static int conv_plan(lb_graph *g, conv_work *k, int parts)
{
    k->CKK = k->q.C * k->q.KH * k->q.KW;
    k->P = (size_t)k->q.OH * k->q.OW;
    k->xs = (size_t)k->q.C * k->q.H * k->q.W;
    k->direct = col_is_input(&k->q);
    k->wino = lb__wino_applies(&k->q);
    k->chunk = k->wino ? lb__wino_chunk(&k->q, (k->q.N + parts - 1) / parts) : 1;
    if (!k->wino) return LB_OK;
    if (!(k->U = lb_graph_floats(g, 16 * (size_t)k->q.F * k->q.C))) return lb_last_status();
    lb__wino_weights(&k->q, k->y->in[1]->val, k->U);
    return LB_OK;
}

/* Part sums in part order: the result depends on the thread count only. */
static void conv_sum_parts(const conv_work *k, int parts)
{
    lb_node *w = k->y->in[1], *b = k->y->n_in > 2 ? k->y->in[2] : NULL;
    size_t dws = k->wino ? 16 * (size_t)k->q.F * k->q.C : (size_t)k->q.F * k->CKK;
    if (w->requires_grad && k->wino) {
        for (int i = 1; i < parts; i++)
            for (size_t j = 0; j < dws; j++) k->dU[j] += k->dU[(size_t)i * dws + j];
        lb__wino_weight_grad(&k->q, k->dU, w->grad);
    } else if (w->requires_grad) {
        for (int i = 1; i < parts; i++) {
            const float *d = k->dw + (size_t)(i - 1) * dws;
            for (size_t j = 0; j < dws; j++) w->grad[j] += d[j];
        }
    }
    if (k->db)
        for (int f = 0; f < k->q.F; f++) {
            double s = 0.0;
            for (int i = 0; i < parts; i++) s += k->db[(size_t)i * k->q.F + f];
            b->grad[f] += (float)s;
        }
}

static int conv_backward(lb_node *y)
{
    lb_node *x = y->in[0], *w = y->in[1], *b = y->n_in > 2 ? y->in[2] : NULL;
    const conv_args *a = LB_ARGS(y, conv_args);
    conv_work k = {.y = y, .q = geom_of(y), .relu = a->relu, .pool = a->pool, .arg = y->aux};
    int parts = conv_parts(k.q.N), bad = conv_plan(y->g, &k, parts) != LB_OK;
    size_t cs = (size_t)parts * k.CKK * k.P, FP = (size_t)k.q.F * k.P;
    int gemm = !k.direct && !k.wino;
    if (gemm && w->requires_grad) bad |= !(k.col = lb_graph_floats(y->g, cs));
    if (gemm && x->requires_grad) bad |= !(k.dcol = lb_graph_floats(y->g, cs));
    if (!k.wino && parts > 1 && w->requires_grad)
        bad |= !(k.dw = lb_graph_floats(y->g, (size_t)(parts - 1) * k.q.F * k.CKK));
    if (k.wino && w->requires_grad) bad |= !(k.dU = lb_graph_floats(y->g, (size_t)parts * 16 * k.q.F * k.q.C));
    k.ws_n = k.wino ? lb__wino_backward_floats(&k.q, k.chunk) : 0;
    if (k.ws_n) bad |= !(k.ws = lb_graph_floats(y->g, (size_t)parts * k.ws_n));
    if (b && b->requires_grad) bad |= !(k.db = lb_graph_alloc(y->g, (size_t)parts * k.q.F * sizeof(double)));
    if (k.relu) bad |= !(k.dym = lb_graph_floats(y->g, (size_t)parts * k.chunk * FP));
    if (bad) {
        lb_error_prefix("%s backward", y->op);
        return lb_last_status();
    }
    lb_parallel(parts, conv_backward_part, &k);
    conv_sum_parts(&k, parts);
    return LB_OK;
}

static lb_node *conv_new(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride_h, int stride_w, int pad_top,
                         int pad_bottom, int pad_left, int pad_right, int relu, int pool)
{
    LB_NEED(x);
    LB_NEED(w);
    if (x->ndim != 4) return lb__shape_error("conv2d", x, w, "input must be 4-D [N, C, H, W]");
    if (w->ndim != 4) return lb__shape_error("conv2d", x, w, "weight must be 4-D [F, C, KH, KW]");
    if (w->shape[1] != x->shape[1]) return lb__shape_error("conv2d", x, w, "input channels differ");
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return lb__shape_error("conv2d", w, b, "bias must be [F] for weight [F, C, KH, KW]");
    if (stride_h < 1 || stride_w < 1 || pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0) {
        lb_error(LB_EINVAL, "conv2d: stride %dx%d must be >= 1 and padding %d,%d,%d,%d >= 0", stride_h, stride_w,
                 pad_top, pad_bottom, pad_left, pad_right);
        return NULL;
    }
    int Hp = x->shape[2] + pad_top + pad_bottom, Wp = x->shape[3] + pad_left + pad_right;
    if (Hp < w->shape[2] || Wp < w->shape[3])
        return lb__shape_error("conv2d", x, w, "kernel larger than the padded input");
    int shape[4] = {x->shape[0], w->shape[0], (Hp - w->shape[2]) / stride_h + 1,
                    (Wp - w->shape[3]) / stride_w + 1};
    if (pool) {
        if (shape[2] < 2 || shape[3] < 2) {
            lb_error(LB_ESHAPE, "conv2d_relu_maxpool2: conv output %dx%d is smaller than the 2x2 window", shape[2],
                     shape[3]);
            return NULL;
        }
        shape[2] /= 2;
        shape[3] /= 2;
    }
    lb_node *in[3] = {x, w, b};
    lb_node *y = lb_node_new(g, pool ? "conv2d_relu_maxpool2" : relu ? "conv2d_relu" : "conv2d", 4, shape,
                             b ? 3 : 2, in, conv_backward);
    if (!y) return NULL;
    *LB_ARGS(y, conv_args) = (conv_args){stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, relu, pool};
    conv_work k = {.y = y, .q = geom_of(y), .relu = relu, .pool = pool};
    if (pool && y->requires_grad && !(y->aux = k.arg = lb_graph_alloc(g, y->size))) return NULL;
    int parts = conv_parts(k.q.N);
    if (conv_plan(g, &k, parts) != LB_OK) return NULL;
    if (!k.direct && !k.wino && !(k.col = lb_graph_floats(g, (size_t)parts * k.CKK * k.P))) return NULL;
    if (pool && !(k.z = lb_graph_floats(g, (size_t)parts * k.chunk * k.q.F * k.P))) return NULL;
    k.ws_n = k.wino ? lb__wino_forward_floats(&k.q, k.chunk) : 0;
    if (k.ws_n && !(k.ws = lb_graph_floats(g, (size_t)parts * k.ws_n))) return NULL;
    lb_parallel(parts, conv_forward_part, &k);
    return y;
}

lb_node *lb_conv2d_ex(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride_h, int stride_w, int pad_top,
                      int pad_bottom, int pad_left, int pad_right)
{
    return conv_new(g, x, w, b, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, 0, 0);
}

lb_node *lb_conv2d(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride, int pad)
{
    return conv_new(g, x, w, b, stride, stride, pad, pad, pad, pad, 0, 0);
}

lb_node *lb_conv2d_relu(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride, int pad)
{
    return conv_new(g, x, w, b, stride, stride, pad, pad, pad, pad, 1, 0);
}

lb_node *lb_conv2d_relu_maxpool2(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride, int pad)
{
    return conv_new(g, x, w, b, stride, stride, pad, pad, pad, pad, 1, 1);
}
