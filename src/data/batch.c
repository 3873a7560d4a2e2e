/* The batcher: uint8 images -> normalised float NCHW in a reused buffer, optionally
 * augmented (random crop with zero padding, horizontal flip). */
#include "data/internal.h"

#include <string.h>

lb_batcher *lb_batcher_new(const lb_dataset *ds, int max_batch, const float *mean,
                              const float *std, const lb_augment *aug)
{
    if (max_batch < 1) {
        lb_error(LB_EINVAL, "batcher: batch size %d must be >= 1", max_batch);
        return NULL;
    }
    if (ds->c < 1 || ds->c > 3) {
        lb_error(LB_EINVAL, "batcher: %d channels; 1 to 3 supported", ds->c);
        return NULL;
    }
    for (int c = 0; c < ds->c; c++)
        if (std && !(std[c] > 0.0f)) {
            lb_error(LB_EINVAL, "batcher: std[%d] = %g must be > 0", c, (double)std[c]);
            return NULL;
        }
    if (aug && (aug->crop_pad < 0 || aug->crop_pad > ds->h || aug->crop_pad > ds->w)) {
        lb_error(LB_EINVAL, "batcher: crop padding %d outside [0, %d]", aug->crop_pad,
                 ds->h < ds->w ? ds->h : ds->w);
        return NULL;
    }
    lb_batcher *b = lb_calloc(1, sizeof *b);
    if (!b) {
        lb_error(LB_ENOMEM, "batcher: out of memory");
        return NULL;
    }
    b->ds = ds;
    b->max_batch = max_batch;
    b->c = ds->c;
    b->h = ds->h;
    b->w = ds->w;
    for (int c = 0; c < 3; c++) {
        b->mean[c] = mean && c < ds->c ? mean[c] : 0.0f;
        b->std[c] = std && c < ds->c ? std[c] : 1.0f;
    }
    if (aug) b->aug = *aug;
    b->x = lb_malloc(sizeof(float) * (size_t)max_batch * ds->c * ds->h * ds->w);
    b->t = lb_malloc(sizeof(int) * (size_t)max_batch);
    b->lut = lb_malloc(sizeof(float) * 256 * (size_t)ds->c);
    if (!b->x || !b->t || !b->lut) {
        lb_batcher_free(b);
        lb_error(LB_ENOMEM, "out of memory for a batch of %d x %dx%dx%d", max_batch, ds->c, ds->h, ds->w);
        return NULL;
    }
    for (int c = 0; c < ds->c; c++)
        for (int v = 0; v < 256; v++) b->lut[c * 256 + v] = ((float)v / 255.0f - b->mean[c]) / b->std[c];
    return b;
}

void lb_batcher_free(lb_batcher *b)
{
    if (!b) return;
    lb_free(b->x);
    lb_free(b->t);
    lb_free(b->lut);
    lb_free(b);
}

int lb_batcher_fill_into(const lb_batcher *b, const int *idx, const int *y, int n, lb_rng *rng,
                         float *x, int *t)
{
    const lb_dataset *ds = b->ds;
    if (n < 0 || n > b->max_batch) return lb_error(LB_EINVAL, "batch of %d images, the batcher holds %d", n, b->max_batch);
    int aug = b->aug.crop_pad > 0 || b->aug.hflip;
    if (aug && !rng) return lb_error(LB_EINVAL, "batcher: augmentation needs an rng");
    const int C = b->c, H = b->h, W = b->w, P = b->aug.crop_pad;
    const size_t hw = (size_t)H * W;
    for (int k = 0; k < n; k++) {
        int i = idx[k];
        if (i < 0 || i >= ds->n) return lb_error(LB_EINVAL, "batch entry %d: image index %d outside [0, %d)", k, i, ds->n);
        if (t) t[k] = y ? y[k] : ds->labels[i];
        const uint8_t *src = ds->pixels + (size_t)i * C * hw;
        float *dst = x + (size_t)k * C * hw;
        if (!aug) {
            for (int c = 0; c < C; c++) {
                const float *lut = b->lut + c * 256;
                for (size_t p = 0; p < hw; p++) dst[c * hw + p] = lut[src[c * hw + p]];
            }
            continue;
        }
        /* Crop then flip, as torchvision: output (r, q) reads source (r + dy, q' + dx) with
         * dy, dx uniform in [-P, P] and q' = q, or W-1-q when flipped; outside the image it is
         * the padding value 0. Draw order per image: dy, dx, flip. */
        int dy = P ? (int)lb_rng_below(rng, (uint64_t)(2 * P + 1)) - P : 0;
        int dx = P ? (int)lb_rng_below(rng, (uint64_t)(2 * P + 1)) - P : 0;
        int flip = b->aug.hflip ? (int)lb_rng_below(rng, 2) : 0;
        for (int c = 0; c < C; c++) {
            const float *lut = b->lut + c * 256;
            const uint8_t *sc = src + c * hw;
            float *dc = dst + c * hw;
            for (int r = 0; r < H; r++) {
                int sr = r + dy;
                for (int q = 0; q < W; q++) {
                    int sq = (flip ? W - 1 - q : q) + dx;
                    dc[r * W + q] = (sr < 0 || sr >= H || sq < 0 || sq >= W) ? lut[0] : lut[sc[sr * W + sq]];
                }
            }
        }
    }
    return LB_OK;
}

int lb_batcher_fill(lb_batcher *b, const int *idx, const int *y, int n, lb_rng *rng)
{
    return lb_batcher_fill_into(b, idx, y, n, rng, b->x, b->t);
}
