/* Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions, forward and both backward passes (see
 * conv.h). Each image is first copied channels-last and zero-padded ([rows, cols, C]), so that
 * a tile's transform is a loop over its channels with unit stride (it vectorises for any
 * image size; along a row of 7 tiles it did not pay); V holds [16, tiles, C], M [16, tiles, F],
 * and the outputs are copied back to [F, OH, OW]. The transforms only add, subtract and halve,
 * so they give the same bits with or without FMA.
 *
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]                        Y = A^T [(G g G^T) (.) (B^T d B)] A
 */
#include "conv.h"
#include "internal.h"

#include <string.h>

/* The tile loops write 16 vectors whose offsets differ by whole planes: no iteration reads
 * what another writes, which GCC cannot prove itself. (Clang's equivalent, "loop vectorize
 * (assume_safety)", warns wherever it then does not vectorise, as in the -O1 fuzz build; the
 * release build is GCC's.) */
#if defined(__GNUC__) && !defined(__clang__)
#define LB_IVDEP _Pragma("GCC ivdep")
#else
#define LB_IVDEP
#endif

static int tiles_h(const conv_geom *q) { return (q->OH + 1) / 2; }
static int tiles_w(const conv_geom *q) { return (q->OW + 1) / 2; }
/* The padded channels-last input: rows ih = -pt .. 2 TH + 1 - pt, columns likewise (the
 * padded image always has its H + pt rows and W + pl columns inside); the output: 2 TH x 2 TW. */
static int pad_rows(const conv_geom *q) { return 2 * tiles_h(q) + 2; }
static int pad_cols(const conv_geom *q) { return 2 * tiles_w(q) + 2; }
static size_t pad_floats(const conv_geom *q) { return (size_t)pad_rows(q) * pad_cols(q) * q->C; }
static size_t out_floats(const conv_geom *q) { return (size_t)4 * tiles_h(q) * tiles_w(q) * q->F; }

int lb__wino_applies(const conv_geom *q)
{
    return q->KH == 3 && q->KW == 3 && q->sh == 1 && q->sw == 1 && q->C >= LB_WINO_MIN && q->F >= LB_WINO_MIN;
}

int lb__wino_tiles(const conv_geom *q) { return tiles_h(q) * tiles_w(q); }

int lb__wino_chunk(const conv_geom *q, int n)
{
    int c = LB_WINO_TILES / lb__wino_tiles(q);
    if (c > n) c = n;
    return c < 1 ? 1 : c;
}

size_t lb__wino_forward_floats(const conv_geom *q, int chunk)
{
    return 16 * (size_t)(q->C + q->F) * chunk * lb__wino_tiles(q) + pad_floats(q) + out_floats(q);
}

size_t lb__wino_backward_floats(const conv_geom *q, int chunk)
{
    return 16 * (size_t)(2 * q->C + q->F) * chunk * lb__wino_tiles(q) + 2 * pad_floats(q) + out_floats(q);
}

void lb__wino_weights(const conv_geom *q, const float *w, float *U)
{
    size_t FC = (size_t)q->F * q->C;
    for (size_t fc = 0; fc < FC; fc++) {
        const float *g = w + fc * 9;
        float t[4][3], u[4][4];
        for (int j = 0; j < 3; j++) { /* G g */
            t[0][j] = g[j];
            t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
            t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
            t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; i++) { /* (G g) G^T */
            u[i][0] = t[i][0];
            u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
            u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
            u[i][3] = t[i][2];
        }
        for (int e = 0; e < 16; e++) U[(size_t)e * FC + fc] = u[e / 4][e % 4];
    }
}

void lb__wino_weight_grad(const conv_geom *q, const float *dU, float *dw)
{
    size_t FC = (size_t)q->F * q->C;
    for (size_t fc = 0; fc < FC; fc++) {
        float d[4][4], s[3][4];
        for (int e = 0; e < 16; e++) d[e / 4][e % 4] = dU[(size_t)e * FC + fc];
        for (int j = 0; j < 4; j++) { /* G^T dU */
            s[0][j] = d[0][j] + 0.5f * (d[1][j] + d[2][j]);
            s[1][j] = 0.5f * (d[1][j] - d[2][j]);
            s[2][j] = d[3][j] + 0.5f * (d[1][j] + d[2][j]);
        }
        float *g = dw + fc * 9;
        for (int i = 0; i < 3; i++) { /* (G^T dU) G */
            g[3 * i] += s[i][0] + 0.5f * (s[i][1] + s[i][2]);
            g[3 * i + 1] += 0.5f * (s[i][1] - s[i][2]);
            g[3 * i + 2] += s[i][3] + 0.5f * (s[i][1] + s[i][2]);
        }
    }
}

/* Xt [pad_rows, pad_cols, C] = image xi [C, H, W], zero-padded. */
static void to_channels_last(const conv_geom *q, const float *xi, float *Xt)
{
    int Wp = pad_cols(q), C = q->C;
    memset(Xt, 0, pad_floats(q) * sizeof(float));
    for (int c = 0; c < C; c++)
        for (int h = 0; h < q->H; h++) {
            const float *r = xi + ((size_t)c * q->H + h) * q->W;
            float *o = Xt + ((size_t)(h + q->pt) * Wp + q->pl) * C + c;
            for (int w = 0; w < q->W; w++) o[(size_t)w * C] = r[w];
        }
}

/* dx_i [C, H, W] += the image's part of dXt (the adjoint of to_channels_last). */
static void add_channels_first(const conv_geom *q, const float *dXt, float *dxi)
{
    int Wp = pad_cols(q), C = q->C;
    for (int c = 0; c < C; c++)
        for (int h = 0; h < q->H; h++) {
            float *r = dxi + ((size_t)c * q->H + h) * q->W;
            const float *o = dXt + ((size_t)(h + q->pt) * Wp + q->pl) * C + c;
            for (int w = 0; w < q->W; w++) r[w] += o[(size_t)w * C];
        }
}

/* The 16 [C] vectors of V (v + e * vs) for the 4x4 window at d of a channels-last image
 * (rows rs floats apart): B^T d B, channel by channel. */
static void input_tile(const float *d, size_t rs, int C, float *v, size_t vs)
{
    LB_IVDEP
    for (int c = 0; c < C; c++) {
        float x[4][4], t[4][4];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) x[a][b] = d[a * rs + (size_t)b * C + c];
        for (int b = 0; b < 4; b++) { /* B^T d */
            t[0][b] = x[0][b] - x[2][b], t[1][b] = x[1][b] + x[2][b];
            t[2][b] = x[2][b] - x[1][b], t[3][b] = x[1][b] - x[3][b];
        }
        for (int a = 0; a < 4; a++) { /* (B^T d) B */
            v[(size_t)(4 * a) * vs + c] = t[a][0] - t[a][2];
            v[(size_t)(4 * a + 1) * vs + c] = t[a][1] + t[a][2];
            v[(size_t)(4 * a + 2) * vs + c] = t[a][2] - t[a][1];
            v[(size_t)(4 * a + 3) * vs + c] = t[a][1] - t[a][3];
        }
    }
}

/* The 2x2 outputs [F] at y (rows rs floats apart) of one tile from its 16 [F] vectors m + e * ms:
 * A^T M A. */
static void output_tile(const float *m, size_t ms, int F, float *y, size_t rs)
{
    LB_IVDEP
    for (int f = 0; f < F; f++) {
        float a[4], b[4];
        for (int s = 0; s < 4; s++) { /* A^T M */
            float m0 = m[(size_t)s * ms + f], m1 = m[(size_t)(4 + s) * ms + f];
            float m2 = m[(size_t)(8 + s) * ms + f], m3 = m[(size_t)(12 + s) * ms + f];
            a[s] = m0 + m1 + m2, b[s] = m1 - m2 - m3;
        }
        y[f] = a[0] + a[1] + a[2], y[F + f] = a[1] - a[2] - a[3]; /* (A^T M) A */
        y[rs + f] = b[0] + b[1] + b[2], y[rs + F + f] = b[1] - b[2] - b[3];
    }
}

/* One tile's 16 [F] vectors of dM (m + e * ms) from its 2x2 output gradient at dy: A dY A^T. */
static void grad_tile(const float *dy, size_t rs, int F, float *m, size_t ms)
{
    LB_IVDEP
    for (int f = 0; f < F; f++) {
        float d00 = dy[f], d01 = dy[F + f], d10 = dy[rs + f], d11 = dy[rs + F + f];
        float g0[4] = {d00, d00 + d10, d00 - d10, -d10}, g1[4] = {d01, d01 + d11, d01 - d11, -d11}; /* A dY */
        for (int r = 0; r < 4; r++) { /* (A dY) A^T */
            m[(size_t)(4 * r) * ms + f] = g0[r];
            m[(size_t)(4 * r + 1) * ms + f] = g0[r] + g1[r];
            m[(size_t)(4 * r + 2) * ms + f] = g0[r] - g1[r];
            m[(size_t)(4 * r + 3) * ms + f] = -g1[r];
        }
    }
}

/* The 4x4 window at dx of a channels-last gradient (rows rs floats apart) += B dV B^T from the
 * tile's 16 [C] vectors v + e * vs: the adjoint of input_tile. Windows overlap by two rows and
 * columns; tiles add in order. B's rows are [1 0 0 0], [0 1 -1 1], [-1 1 1 0], [0 0 0 -1]. */
static void input_grad_tile(const float *v, size_t vs, int C, float *dx, size_t rs)
{
    LB_IVDEP
    for (int c = 0; c < C; c++) {
        float s[4][4];
        for (int k = 0; k < 4; k++) { /* B dV */
            float v0 = v[(size_t)k * vs + c], v1 = v[(size_t)(4 + k) * vs + c];
            float v2 = v[(size_t)(8 + k) * vs + c], v3 = v[(size_t)(12 + k) * vs + c];
            s[0][k] = v0, s[1][k] = v1 - v2 + v3, s[2][k] = -v0 + v1 + v2, s[3][k] = -v3;
        }
        for (int r = 0; r < 4; r++) { /* (B dV) B^T */
            float *o = dx + r * rs + c;
            o[0] += s[r][0];
            o[C] += s[r][1] - s[r][2] + s[r][3];
            o[2 * C] += -s[r][0] + s[r][1] + s[r][2];
            o[3 * C] += -s[r][3];
        }
    }
}

/* V [16, Tc, C] for the n images of a chunk (tiles of image i from i * T). */
static void input_transform(const conv_geom *q, const float *x, size_t xs, int n, float *V, float *Xt)
{
    int T = lb__wino_tiles(q), TH = tiles_h(q), TW = tiles_w(q), C = q->C;
    size_t rs = (size_t)pad_cols(q) * C, vs = (size_t)n * T * C;
    for (int i = 0; i < n; i++) {
        to_channels_last(q, x + i * xs, Xt);
        for (int th = 0; th < TH; th++)
            for (int tw = 0; tw < TW; tw++)
                input_tile(Xt + 2 * th * rs + (size_t)(2 * tw) * C, rs, C,
                           V + ((size_t)i * T + (size_t)th * TW + tw) * C, vs);
    }
}

void lb__wino_forward(const conv_geom *q, const float *U, const float *x, size_t xs, int n, float *y, size_t ys,
                      float *scratch)
{
    int T = lb__wino_tiles(q), TH = tiles_h(q), TW = tiles_w(q), Tc = n * T, C = q->C, F = q->F;
    size_t CT = (size_t)C * Tc, FT = (size_t)F * Tc, FC = (size_t)F * C, rs = (size_t)2 * TW * F;
    float *V = scratch, *M = V + 16 * CT, *Xt = M + 16 * FT, *Yt = Xt + pad_floats(q);
    input_transform(q, x, xs, n, V, Xt);
    for (int e = 0; e < 16; e++) /* M_e [Tc, F] = V_e [Tc, C] U_e^T */
        lb__gemm_serial(0, 1, Tc, F, C, V + e * CT, C, U + e * FC, C, 0.0f, M + e * FT, F);
    for (int i = 0; i < n; i++) {
        for (int th = 0; th < TH; th++)
            for (int tw = 0; tw < TW; tw++)
                output_tile(M + ((size_t)i * T + (size_t)th * TW + tw) * F, FT, F,
                            Yt + 2 * th * rs + (size_t)(2 * tw) * F, rs);
        float *yi = y + i * ys; /* [F, OH, OW] from Yt [2 TH, 2 TW, F] */
        for (int f = 0; f < F; f++)
            for (int oh = 0; oh < q->OH; oh++) {
                float *r = yi + ((size_t)f * q->OH + oh) * q->OW;
                const float *o = Yt + oh * rs + f;
                for (int ow = 0; ow < q->OW; ow++) r[ow] = o[(size_t)ow * F];
            }
    }
}

/* dM [16, Tc, F] for the n images' output gradients dy_i [F, OH, OW]. */
static void grad_transform(const conv_geom *q, const float *dy, size_t ys, int n, float *dM, float *dYt)
{
    int T = lb__wino_tiles(q), TH = tiles_h(q), TW = tiles_w(q), F = q->F;
    size_t rs = (size_t)2 * TW * F, ms = (size_t)n * T * F;
    for (int i = 0; i < n; i++) {
        memset(dYt, 0, out_floats(q) * sizeof(float)); /* rows and columns past OH, OW: no gradient */
        for (int f = 0; f < F; f++)
            for (int oh = 0; oh < q->OH; oh++) {
                const float *r = dy + i * ys + ((size_t)f * q->OH + oh) * q->OW;
                float *o = dYt + oh * rs + f;
                for (int ow = 0; ow < q->OW; ow++) o[(size_t)ow * F] = r[ow];
            }
        for (int th = 0; th < TH; th++)
            for (int tw = 0; tw < TW; tw++)
                grad_tile(dYt + 2 * th * rs + (size_t)(2 * tw) * F, rs, F,
                          dM + ((size_t)i * T + (size_t)th * TW + tw) * F, ms);
    }
}

void lb__wino_backward(const conv_geom *q, const float *U, const float *x, const float *dy, size_t xs, size_t ys,
                       int n, float *dU, float *dx, float *scratch)
{
    int T = lb__wino_tiles(q), TH = tiles_h(q), TW = tiles_w(q), Tc = n * T, C = q->C, F = q->F;
    size_t CT = (size_t)C * Tc, FT = (size_t)F * Tc, FC = (size_t)F * C, rs = (size_t)pad_cols(q) * C;
    float *V = scratch, *dV = V + 16 * CT, *dM = dV + 16 * CT, *Xt = dM + 16 * FT, *dYt = Xt + pad_floats(q);
    float *dXt = dYt + out_floats(q);
    grad_transform(q, dy, ys, n, dM, dYt);
    if (dU) {
        input_transform(q, x, xs, n, V, Xt);
        for (int e = 0; e < 16; e++) /* dU_e [F, C] += dM_e^T [F, Tc] V_e [Tc, C] */
            lb__gemm_serial(1, 0, F, C, Tc, dM + e * FT, F, V + e * CT, C, 1.0f, dU + e * FC, C);
    }
    if (!dx) return;
    for (int e = 0; e < 16; e++) /* dV_e [Tc, C] = dM_e [Tc, F] U_e [F, C] */
        lb__gemm_serial(0, 0, Tc, C, F, dM + e * FT, F, U + e * FC, C, 0.0f, dV + e * CT, C);
    for (int i = 0; i < n; i++) {
        memset(dXt, 0, pad_floats(q) * sizeof(float));
        for (int th = 0; th < TH; th++)
            for (int tw = 0; tw < TW; tw++)
                input_grad_tile(dV + ((size_t)i * T + (size_t)th * TW + tw) * C, CT, C,
                                dXt + 2 * th * rs + (size_t)(2 * tw) * C, rs);
        add_channels_first(q, dXt, dx + i * xs);
    }
}
