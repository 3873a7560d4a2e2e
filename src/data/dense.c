/* Generated dense canvases: a few scaled objects from an image source on a textured
 * background, with one label per stride x stride cell (the object class whose centre is in
 * the cell, else background). Canvas i is drawn from its own stream, lb_rng_derive(seed, i),
 * so a set does not depend on the order canvases are made in. */
#include "data/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TWO_PI 6.283185307179586476925

/* ---- the spec: dense:SOURCE[,canvas=N|HxW][,objects=A-B][,scale=A-B][,stride=S][,train=N][,test=N] ---- */

static const char *const dense_keys[] = {"canvas", "objects", "scale", "stride", "train", "test", NULL};

static int is_dense_key(const char *piece)
{
    size_t n = strcspn(piece, "=");
    if (piece[n] != '=') return 0;
    for (int i = 0; dense_keys[i]; i++)
        if (strlen(dense_keys[i]) == n && strncmp(piece, dense_keys[i], n) == 0) return 1;
    return 0;
}

/* "A-B" or "A" into [lo, hi]. */
static int parse_range(const char *key, const char *v, double min, double max, double *lo, double *hi)
{
    char a[64];
    const char *dash = strchr(v, '-');
    size_t n = dash ? (size_t)(dash - v) : strlen(v);
    if (n >= sizeof a) n = sizeof a - 1;
    memcpy(a, v, n);
    a[n] = '\0';
    if (lb_parse_double(a, lo) != 0 || (dash ? lb_parse_double(dash + 1, hi) : lb_parse_double(a, hi)) != 0 ||
        *lo < min || *hi > max || *lo > *hi)
        return lb_error(LB_EINVAL, "dense: %s=%s must be A-B (or A) with %g <= A <= B <= %g", key, v, min, max);
    return LB_OK;
}

static int parse_count(const char *key, const char *v, int lo, int hi, int *out)
{
    if (lb_parse_int(v, out) != 0 || *out < lo || *out > hi)
        return lb_error(LB_EINVAL, "dense: %s=%s must be an integer in [%d, %d]", key, v, lo, hi);
    return LB_OK;
}

static int set_key(lb_dense_spec *s, const char *key, const char *v)
{
    double lo, hi;
    int rc;
    if (strcmp(key, "canvas") == 0) {
        if (lb_parse_size(v, &s->canvas_h, &s->canvas_w) != LB_OK || s->canvas_h > 4096 || s->canvas_w > 4096)
            return lb_error(LB_EINVAL, "dense: canvas=%s must be N or HxW, at most 4096", v);
        return LB_OK;
    }
    if (strcmp(key, "objects") == 0) {
        if ((rc = parse_range(key, v, 0, 1000, &lo, &hi)) != LB_OK) return rc;
        if (lo != floor(lo) || hi != floor(hi)) return lb_error(LB_EINVAL, "dense: objects=%s must be integers", v);
        s->obj_min = (int)lo, s->obj_max = (int)hi;
        return LB_OK;
    }
    if (strcmp(key, "scale") == 0) {
        if ((rc = parse_range(key, v, 0.05, 64, &s->scale_min, &s->scale_max)) != LB_OK) return rc;
        return LB_OK;
    }
    if (strcmp(key, "stride") == 0) return parse_count(key, v, 1, 4096, &s->stride);
    if (strcmp(key, "train") == 0) return parse_count(key, v, 1, 10000000, &s->n_train);
    return parse_count(key, v, 1, 10000000, &s->n_test);
}

/* The spec's keys checked against each other once all are read. */
static int check_spec(const lb_dense_spec *s, const char *spec)
{
    if (!s->source[0]) return lb_error(LB_EINVAL, "dense: '%s' names no source (dense:SOURCE,...)", spec);
    if (strncmp(s->source, "dense:", 6) == 0) return lb_error(LB_EINVAL, "dense: '%s': a dense source of a dense source", spec);
    if (s->canvas_h % s->stride || s->canvas_w % s->stride)
        return lb_error(LB_EINVAL, "dense: canvas %dx%d is not a multiple of stride=%d", s->canvas_h, s->canvas_w,
                        s->stride);
    int cells = (s->canvas_h / s->stride) * (s->canvas_w / s->stride);
    if (s->obj_max > cells)
        return lb_error(LB_EINVAL, "dense: objects up to %d do not fit %d cells (canvas %dx%d, stride %d)", s->obj_max,
                        cells, s->canvas_h, s->canvas_w, s->stride);
    return LB_OK;
}

void lb_dense_spec_free(lb_dense_spec *s)
{
    if (!s) return;
    lb_free(s->source);
    s->source = NULL;
}

char *lb__dense_spec_format(const lb_dense_spec *s, const char *source)
{
    return lb_strfmt("dense:%s,canvas=%dx%d,objects=%d-%d,scale=%.9g-%.9g,stride=%d,train=%d,test=%d", source,
                     s->canvas_h, s->canvas_w, s->obj_min, s->obj_max, s->scale_min, s->scale_max, s->stride,
                     s->n_train, s->n_test);
}

int lb_dense_spec_parse(lb_dense_spec *out, const char *spec)
{
    *out = (lb_dense_spec){NULL, 64, 64, 0, 3, 0.5, 1.0, 8, 6000, 1000};
    if (!spec || strncmp(spec, "dense:", 6) != 0)
        return lb_error(LB_EINVAL, "dense: '%s' is not a dense spec (dense:SOURCE[,canvas=64][,objects=0-3]"
                        "[,scale=0.5-1][,stride=8][,train=6000][,test=1000])", spec ? spec : "(null)");
    size_t len = strlen(spec);
    char *copy = lb_malloc(len + 1), *src = lb_calloc(1, len + 1);
    if (!copy || !src) {
        lb_free(copy);
        lb_free(src);
        return lb_error(LB_ENOMEM, "dense: out of memory");
    }
    memcpy(copy, spec, len + 1);
    int rc = LB_OK;
    for (char *p = copy + 6, *next; p && rc == LB_OK; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = '\0';
        if (is_dense_key(p)) {
            char *eq = strchr(p, '=');
            *eq = '\0';
            rc = set_key(out, p, eq + 1);
        } else {
            if (src[0]) strcat(src, ",");
            strcat(src, p);
        }
    }
    lb_free(copy);
    out->source = src;
    if (rc == LB_OK) rc = check_spec(out, spec);
    if (rc != LB_OK) lb_dense_spec_free(out);
    return rc;
}

/* ---- making canvases ---- */

void lb_dense_set_free(lb_dense_set *d)
{
    if (!d) return;
    lb_free(d->pixels);
    lb_free(d->targets);
    lb_free(d->objects);
    lb_free(d->object_source);
    lb_free(d->object_class);
    lb_free(d->object_cell);
    memset(d, 0, sizeof *d);
}

/* A background: a base level, one sinusoidal grating and pixel noise, the same in every channel. */
static void draw_background(uint8_t *px, int c, int h, int w, lb_rng *r)
{
    double base = 48 * lb_rng_uniform(r), amp = 24 * lb_rng_uniform(r);
    double period = 6 + 18 * lb_rng_uniform(r), angle = TWO_PI / 2 * lb_rng_uniform(r), phase = TWO_PI * lb_rng_uniform(r);
    double fx = cos(angle) * TWO_PI / period, fy = sin(angle) * TWO_PI / period;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = base + amp * (0.5 + 0.5 * sin(fx * x + fy * y + phase)) + 16 * lb_rng_uniform(r) - 8;
            uint8_t b = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
            for (int k = 0; k < c; k++) px[((size_t)k * h + y) * w + x] = b;
        }
}

/* Scratch for one object: the source image interleaved, and resized. */
typedef struct {
    uint8_t *in, *out;
} obj_scratch;

/* Resizes source image `img` (planar c x h x w) to oh x ow and pastes it at (y0, x0) by max. */
static int paste(uint8_t *canvas, int ch, int cw, const uint8_t *img, int c, int h, int w, int oh, int ow, int y0,
                 int x0, obj_scratch *s)
{
    for (int k = 0; k < c; k++)
        for (int i = 0; i < h * w; i++) s->in[(size_t)i * c + k] = img[(size_t)k * h * w + i];
    if (lb__resize_u8(s->in, w, h, s->out, ow, oh, c) != 0)
        return lb_error(LB_ENOMEM, "dense: resizing an object to %dx%d failed", oh, ow);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                uint8_t v = s->out[((size_t)y * ow + x) * c + k], *p = &canvas[((size_t)k * ch + y0 + y) * cw + x0 + x];
                if (v > *p) *p = v;
            }
    return LB_OK;
}

typedef struct {
    const lb_dense_spec *spec;
    const lb_dataset *src;
    const int *pool;
    int n_pool, gh, gw;
    obj_scratch scratch;
} maker;

/* Canvas i: its background, then its objects, each placed where its centre cell is free
 * (8 tries, then it is dropped); the targets of its cells. Appends to d's object lists. */
static int make_canvas(maker *m, lb_dense_set *d, int i, uint64_t seed)
{
    const lb_dense_spec *s = m->spec;
    const lb_dataset *src = m->src;
    int H = s->canvas_h, W = s->canvas_w, cells = m->gh * m->gw, placed = 0;
    uint8_t *px = d->pixels + (size_t)i * d->c * H * W;
    int *t = d->targets + (size_t)i * cells;
    lb_rng r;
    lb_rng_derive(&r, seed, (uint64_t)i);
    draw_background(px, d->c, H, W, &r);
    for (int k = 0; k < cells; k++) t[k] = d->n_classes;
    int k_obj = s->obj_min + (int)lb_rng_below(&r, (uint64_t)(s->obj_max - s->obj_min + 1));
    for (int o = 0; o < k_obj; o++) {
        int img = m->pool ? m->pool[lb_rng_below(&r, (uint64_t)m->n_pool)] : (int)lb_rng_below(&r, (uint64_t)src->n);
        double sc = s->scale_min + (s->scale_max - s->scale_min) * lb_rng_uniform(&r);
        int oh = (int)lrint(sc * src->h), ow = (int)lrint(sc * src->w);
        oh = oh < 1 ? 1 : oh > H ? H : oh;
        ow = ow < 1 ? 1 : ow > W ? W : ow;
        int cell = -1, y0 = 0, x0 = 0;
        for (int attempt = 0; attempt < 8 && cell < 0; attempt++) {
            y0 = (int)lb_rng_below(&r, (uint64_t)(H - oh + 1));
            x0 = (int)lb_rng_below(&r, (uint64_t)(W - ow + 1));
            int cy = (y0 + oh / 2) / s->stride, cx = (x0 + ow / 2) / s->stride;
            if (t[cy * m->gw + cx] == d->n_classes) cell = cy * m->gw + cx;
        }
        if (cell < 0) {
            d->n_dropped++;
            continue;
        }
        const uint8_t *ip = src->pixels + (size_t)img * src->c * src->h * src->w;
        int rc = paste(px, H, W, ip, src->c, src->h, src->w, oh, ow, y0, x0, &m->scratch);
        if (rc != LB_OK) return rc;
        t[cell] = src->labels[img];
        long j = d->n_objects++;
        d->object_source[j] = img;
        d->object_class[j] = src->labels[img];
        d->object_cell[j] = (long)i * cells + cell;
        placed++;
    }
    d->objects[i] = placed;
    return LB_OK;
}

static int alloc_set(lb_dense_set *d, const lb_dense_spec *s, const lb_dataset *src, int n, int gh, int gw)
{
    size_t max_obj = (size_t)n * (size_t)s->obj_max;
    *d = (lb_dense_set){0};
    d->n = n, d->c = src->c, d->h = s->canvas_h, d->w = s->canvas_w, d->grid_h = gh, d->grid_w = gw;
    d->stride = s->stride, d->n_classes = src->n_classes;
    d->pixels = lb_malloc((size_t)n * src->c * s->canvas_h * s->canvas_w);
    d->targets = lb_malloc((size_t)n * gh * gw * sizeof(int));
    d->objects = lb_malloc((size_t)n * sizeof(int));
    d->object_source = lb_malloc((max_obj ? max_obj : 1) * sizeof(int));
    d->object_class = lb_malloc((max_obj ? max_obj : 1) * sizeof(int));
    d->object_cell = lb_malloc((max_obj ? max_obj : 1) * sizeof(long));
    if (d->pixels && d->targets && d->objects && d->object_source && d->object_class && d->object_cell) return LB_OK;
    lb_dense_set_free(d);
    return lb_error(LB_ENOMEM, "dense: out of memory for %d canvases of %dx%d", n, s->canvas_h, s->canvas_w);
}

int lb_dense_make(const lb_dense_spec *s, const lb_dataset *src, const int *pool, int n_pool, int n, uint64_t seed,
                  lb_dense_set *out)
{
    memset(out, 0, sizeof *out);
    if (!s || !src || n <= 0) return lb_error(LB_EINVAL, "dense: no spec, no source or %d canvases", n);
    if (src->n <= 0 || src->n_classes <= 0 || (pool && n_pool <= 0))
        return lb_error(LB_EINVAL, "dense: the source '%s' has no labelled image to place", src->source ? src->source : "?");
    if (lrint(s->scale_max * src->h) > s->canvas_h || lrint(s->scale_max * src->w) > s->canvas_w)
        return lb_error(LB_EINVAL, "dense: objects of %dx%d at scale %g do not fit a %dx%d canvas", src->h, src->w,
                        s->scale_max, s->canvas_h, s->canvas_w);
    maker m = {s, src, pool, n_pool, s->canvas_h / s->stride, s->canvas_w / s->stride, {NULL, NULL}};
    int rc = alloc_set(out, s, src, n, m.gh, m.gw);
    if (rc != LB_OK) return rc;
    size_t big = (size_t)src->c * (size_t)(src->h > s->canvas_h ? src->h : s->canvas_h) *
                 (size_t)(src->w > s->canvas_w ? src->w : s->canvas_w);
    m.scratch.in = lb_malloc(big);
    m.scratch.out = lb_malloc(big);
    if (!m.scratch.in || !m.scratch.out) rc = lb_error(LB_ENOMEM, "dense: out of memory for an object");
    for (int i = 0; i < n && rc == LB_OK; i++) rc = make_canvas(&m, out, i, seed);
    lb_free(m.scratch.in);
    lb_free(m.scratch.out);
    if (rc != LB_OK) {
        lb_dense_set_free(out);
        return rc;
    }
    out->n_foreground = out->n_objects; /* each placed object marks one free cell */
    out->foreground_share = (double)out->n_foreground / ((double)n * m.gh * m.gw);
    return LB_OK;
}

void lb_dense_location_counts(const lb_dense_set *s, int *counts)
{
    memset(counts, 0, (size_t)(s->n_classes + 1) * sizeof(int));
    for (size_t i = 0, n = (size_t)s->n * s->grid_h * s->grid_w; i < n; i++) counts[s->targets[i]]++;
    for (int c = 0; c <= s->n_classes; c++) counts[c] += counts[c] == 0;
}

/* ---- a dense task's data: canvases from a split source (lb_data_new of "dense:...") ---- */

void lb__dense_data_free(lb_dense_data *dd)
{
    if (!dd) return;
    lb_dense_set_free(&dd->train);
    lb_dense_set_free(&dd->val);
    lb_dense_set_free(&dd->test);
    lb_dense_spec_free(&dd->spec);
    lb_free(dd);
}

static uint64_t set_hash(const lb_dense_set *s, uint64_t h)
{
    h = lb_hash64(s->pixels, (size_t)s->n * s->c * s->h * s->w, h);
    return lb_hash64(s->targets, (size_t)s->n * s->grid_h * s->grid_w * sizeof(int), h);
}

uint64_t lb__dense_data_hash(const lb_dense_data *dd, uint64_t h)
{
    h = set_hash(&dd->train, h);
    if (dd->val.n > 0) h = set_hash(&dd->val, h);
    return set_hash(&dd->test, h);
}

/* Per channel mean and standard deviation of the canvases' pixels / 255. */
static void canvas_stats(const lb_dense_set *s, float *mean, float *std)
{
    size_t plane = (size_t)s->h * s->w;
    for (int ch = 0; ch < s->c; ch++) {
        double sum = 0, sq = 0;
        for (int i = 0; i < s->n; i++) {
            const uint8_t *p = s->pixels + ((size_t)i * s->c + ch) * plane;
            for (size_t k = 0; k < plane; k++) {
                double v = p[k] / 255.0;
                sum += v;
                sq += v * v;
            }
        }
        double n = (double)s->n * plane, m = sum / n, var = sq / n - m * m;
        mean[ch] = (float)m;
        std[ch] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
    }
}

static uint64_t set_seed(uint64_t data_seed, uint64_t which)
{
    return lb_hash64(&which, sizeof which, lb_hash64(&data_seed, sizeof data_seed, LB_HASH_INIT));
}

static void note_set(lb_notes *info, const char *name, const lb_dense_set *s)
{
    lb_notes_add(info, "dense: %d %s canvases %dx%d, grid %dx%d (stride %d), %ld objects, foreground share 1:%.0f%s",
                 s->n, name, s->h, s->w, s->grid_h, s->grid_w, s->stride, s->n_objects,
                 s->foreground_share > 0 ? 1.0 / s->foreground_share : 0.0, s->n_dropped ? " (some dropped)" : "");
    if (s->n_dropped)
        lb_notes_add(info, "dense: %ld %s objects dropped: 8 tries found no free centre cell", s->n_dropped, name);
}

/* The canvases of d's split (d already holds the opened source). */
static int make_sets(lb_data *d, lb_dense_data *dd, double val_frac, uint64_t seed)
{
    const lb_split *sp = &d->split;
    int n_val = sp->n_val > 0 ? (int)lrint(dd->spec.n_train * val_frac) : 0;
    int rc = lb_dense_make(&dd->spec, d->train, sp->train_idx, sp->n_train, dd->spec.n_train, set_seed(seed, 1),
                           &dd->train);
    if (rc == LB_OK && n_val > 0)
        rc = lb_dense_make(&dd->spec, d->train, sp->val_idx, sp->n_val, n_val, set_seed(seed, 2), &dd->val);
    if (rc == LB_OK)
        rc = lb_dense_make(&dd->spec, d->test, sp->test_idx, sp->n_test, dd->spec.n_test, set_seed(seed, 3), &dd->test);
    if (rc != LB_OK) return rc;
    canvas_stats(&dd->train, dd->mean, dd->std);
    note_set(&d->info, "training", &dd->train);
    if (n_val > 0) note_set(&d->info, "validation", &dd->val);
    note_set(&d->info, "test", &dd->test);
    return LB_OK;
}

lb_data *lb__data_new_dense(const lb_data_opts *o)
{
    lb_dense_data *dd = lb_calloc(1, sizeof *dd);
    if (!dd) {
        lb_error(LB_ENOMEM, "dense: out of memory");
        return NULL;
    }
    int rc = lb_dense_spec_parse(&dd->spec, o->data);
    if (rc == LB_OK && strncmp(dd->spec.source, "dense:", 6) == 0)
        rc = lb_error(LB_EINVAL, "dense: the source of '%s' is itself dense; give an image source", o->data);
    lb_data *d = NULL;
    if (rc == LB_OK) {
        lb_data_opts so = *o;
        so.data = dd->spec.source;
        d = lb_data_new(&so);
        rc = d ? LB_OK : lb_last_status();
    }
    if (rc == LB_OK && d->split.n_classes != d->train->n_classes)
        rc = lb_error(LB_EINVAL, "dense: '%s' regroups the source's classes; a dense task keeps them",
                      o->imbalance ? o->imbalance : "");
    if (rc == LB_OK) rc = make_sets(d, dd, o->val_frac, o->seed);
    if (rc != LB_OK) {
        lb__dense_data_free(dd);
        lb_data_free(d);
        return NULL;
    }
    d->dense = dd;
    return d;
}
