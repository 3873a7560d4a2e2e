/* Samplers: each epoch's index list over the training entries. They never touch pixels: a
 * synthetic sampler (smote, ...) is a plain shuffle of the resampled set's rows, which
 * lb_synth_dataset made beforehand (src/data/synth.c). */
#include "data/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct lb_sampler {
    lb_sampler_kind kind;
    char name[160];        /* as long as lb_synth_spec's */
    int n, C;
    int *idx, *y;          /* the entries (copies) */
    int *cls_start;        /* C + 1: entries of class c are members[cls_start[c] .. cls_start[c+1]) */
    int *members;          /* entry positions grouped by class */
    int *n_c;              /* entries per class */
    double ratio, q;       /* under/oversample ratio, sqrt exponent */
    int horizon;           /* progressive: T (0 = not set) */
    uint64_t seed;
    int len;               /* entries per epoch */
    int *out_idx, *out_y;  /* the current epoch */
    int *pick;             /* scratch: entry positions of the current epoch */
    int *counts;           /* per class, of the current epoch */
    double *p;             /* per-class probabilities (scratch) */
    int cur_epoch, pos;    /* lb_sampler_next's cursor */
};

void lb_sampler_free(lb_sampler *s)
{
    if (!s) return;
    lb_free(s->idx);
    lb_free(s->y);
    lb_free(s->cls_start);
    lb_free(s->members);
    lb_free(s->n_c);
    lb_free(s->out_idx);
    lb_free(s->out_y);
    lb_free(s->pick);
    lb_free(s->counts);
    lb_free(s->p);
    lb_free(s);
}

lb_sampler_kind lb_sampler_kind_of(const lb_sampler *s) { return s->kind; }
const char *lb_sampler_name(const lb_sampler *s) { return s->name; }
int lb_sampler_epoch_len(const lb_sampler *s) { return s->len; }
const int *lb_sampler_counts(const lb_sampler *s) { return s->counts; }
int lb_sampler_current_epoch(const lb_sampler *s) { return s->cur_epoch; }

int lb_sampler_set_horizon(lb_sampler *s, int total_epochs)
{
    if (total_epochs < 1) return lb_error(LB_EINVAL, "sampler horizon %d: must be >= 1 epoch", total_epochs);
    s->horizon = total_epochs;
    if (s->kind == LB_SAMPLER_PROGRESSIVE) snprintf(s->name, sizeof s->name, "progressive:epochs=%d", total_epochs);
    return LB_OK;
}

static const char *const sampler_names[] = {"shuffle", "undersample", "oversample", "balanced", "sqrt", "progressive"};

/* The sampler's one parameter: its key, range and where it goes (NULL key: none). */
static int read_param(lb_sampler *s, const lb_spec *sp)
{
    static const char *const keys[][2] = {{NULL, NULL}, {"ratio", NULL}, {"ratio", NULL}, {NULL, NULL},
                                          {"q", NULL},  {"epochs", NULL}};
    const char *key = keys[s->kind][0];
    int rc = lb_spec_check(sp, "sampler", keys[s->kind], 0);
    if (rc != LB_OK || !key || !lb_spec_get(sp, key)) return rc;
    double v;
    if (lb_parse_double(lb_spec_get(sp, key), &v) != 0)
        return lb_error(LB_EINVAL, "sampler '%s': %s=%s is not a number", lb_spec_text(sp), key, lb_spec_get(sp, key));
    if (s->kind == LB_SAMPLER_SQRT) {
        if (v < 0.0 || v > 1.0) return lb_error(LB_EINVAL, "sampler '%s': q=%g must be in [0, 1]", lb_spec_text(sp), v);
        s->q = v;
    } else if (s->kind == LB_SAMPLER_PROGRESSIVE) {
        if (v < 1.0 || v != floor(v) || v > 1e9)
            return lb_error(LB_EINVAL, "sampler '%s': epochs=%g must be a whole number >= 1", lb_spec_text(sp), v);
        s->horizon = (int)v;
    } else {
        if (v < 1.0) return lb_error(LB_EINVAL, "sampler '%s': ratio=%g must be >= 1", lb_spec_text(sp), v);
        s->ratio = v;
    }
    return LB_OK;
}

/* The canonical name: the kind, and its parameter where it differs from the default. */
static void sampler_name(lb_sampler *s)
{
    const char *kind = sampler_names[s->kind];
    if ((s->kind == LB_SAMPLER_UNDERSAMPLE || s->kind == LB_SAMPLER_OVERSAMPLE) && s->ratio != 1.0)
        snprintf(s->name, sizeof s->name, "%s:ratio=%g", kind, s->ratio);
    else if (s->kind == LB_SAMPLER_SQRT && s->q != 0.5)
        snprintf(s->name, sizeof s->name, "sqrt:q=%g", s->q);
    else if (s->kind == LB_SAMPLER_PROGRESSIVE && s->horizon)
        snprintf(s->name, sizeof s->name, "progressive:epochs=%d", s->horizon);
    else
        snprintf(s->name, sizeof s->name, "%s", kind);
}

/* A synthetic sampler's spec: checked by lb_synth_parse, named by its canonical name. */
static int parse_synthetic(lb_sampler *s, const char *spec)
{
    lb_synth_spec ss;
    int rc = lb_synth_parse(&ss, spec);
    if (rc == LB_OK) {
        s->kind = LB_SAMPLER_SYNTHETIC;
        snprintf(s->name, sizeof s->name, "%s", ss.name);
    }
    lb_synth_spec_free(&ss);
    return rc;
}

/* Parses "name[:key=value]" into s->kind and its parameter. */
static int parse_spec(lb_sampler *s, const char *spec)
{
    if (lb_synth_is(spec)) return parse_synthetic(s, spec);
    lb_spec *sp = lb_spec_new(spec);
    if (!sp) {
        lb_error_prefix("sampler");
        return lb_last_status();
    }
    int kind = -1;
    for (int k = 0; k < 6; k++)
        if (strcmp(lb_spec_name(sp), sampler_names[k]) == 0) kind = k;
    s->ratio = 1.0;
    s->q = 0.5;
    s->horizon = 0;
    int rc = kind >= 0 ? LB_OK
                       : lb_error(LB_EINVAL, "sampler '%s': unknown (expected shuffle, undersample, oversample, "
                                             "balanced, sqrt, progressive, smote, borderline_smote, adasyn or "
                                             "ros_noise)", spec);
    if (rc == LB_OK) {
        s->kind = (lb_sampler_kind)kind;
        rc = read_param(s, sp);
    }
    if (rc == LB_OK) sampler_name(s);
    lb_spec_free(sp);
    return rc;
}

/* How many entries class c gets per epoch under under/oversampling. */
static int resampled_count(const lb_sampler *s, int c, int n_min, int n_max)
{
    int m = s->n_c[c];
    if (m == 0) return 0;
    if (s->kind == LB_SAMPLER_UNDERSAMPLE) {
        double cap = floor(s->ratio * n_min + 1e-9);
        return cap < m ? (int)cap : m;
    }
    double floor_to = ceil(n_max / s->ratio - 1e-9);
    return floor_to > m ? (int)floor_to : m;
}

static int sampler_create(const char *spec, const int *idx, const int *y, int n, int n_classes, uint64_t seed,
                          lb_sampler **out)
{
    *out = NULL;
    if (!spec || !*spec) spec = "shuffle";
    if (n < 1) return lb_error(LB_EINVAL, "sampler '%s': no training entries", spec);
    if (n_classes < 1) return lb_error(LB_EINVAL, "sampler '%s': %d classes", spec, n_classes);
    lb_sampler *s = lb_calloc(1, sizeof *s);
    if (!s) return lb_error(LB_ENOMEM, "sampler '%s': out of memory", spec);
    int rc = parse_spec(s, spec);
    if (rc) {
        lb_free(s);
        return rc;
    }
    s->n = n;
    s->C = n_classes;
    s->seed = seed;
    s->cur_epoch = -1;
    s->idx = lb_malloc(sizeof(int) * (size_t)n);
    s->y = lb_malloc(sizeof(int) * (size_t)n);
    s->members = lb_malloc(sizeof(int) * (size_t)n);
    s->cls_start = lb_calloc((size_t)n_classes + 1, sizeof(int));
    s->n_c = lb_calloc((size_t)n_classes, sizeof(int));
    s->counts = lb_calloc((size_t)n_classes, sizeof(int));
    s->p = lb_calloc((size_t)n_classes, sizeof(double));
    if (!s->idx || !s->y || !s->members || !s->cls_start || !s->n_c || !s->counts || !s->p) {
        lb_sampler_free(s);
        return lb_error(LB_ENOMEM, "out of memory for a sampler over %d entries", n);
    }
    if (lb_group_by_class(y, n, n_classes, s->cls_start, s->members) != LB_OK) {
        lb_sampler_free(s);
        lb_error_prefix("sampler '%s'", spec);
        return LB_EINVAL;
    }
    memcpy(s->idx, idx, sizeof(int) * (size_t)n);
    memcpy(s->y, y, sizeof(int) * (size_t)n);
    for (int c = 0; c < n_classes; c++) s->n_c[c] = s->cls_start[c + 1] - s->cls_start[c];

    long long len = n;
    if (s->kind == LB_SAMPLER_UNDERSAMPLE || s->kind == LB_SAMPLER_OVERSAMPLE) {
        int n_min = n, n_max = 0;
        for (int c = 0; c < n_classes; c++) {
            if (s->n_c[c] == 0) continue;
            if (s->n_c[c] < n_min) n_min = s->n_c[c];
            if (s->n_c[c] > n_max) n_max = s->n_c[c];
        }
        len = 0;
        for (int c = 0; c < n_classes; c++) len += resampled_count(s, c, n_min, n_max);
        if (len > 0x7fffffff) {
            lb_sampler_free(s);
            return lb_error(LB_EINVAL, "sampler '%s': an epoch of %lld entries is too long", spec, len);
        }
    }
    s->len = (int)len;
    s->out_idx = lb_malloc(sizeof(int) * (size_t)s->len);
    s->out_y = lb_malloc(sizeof(int) * (size_t)s->len);
    s->pick = lb_malloc(sizeof(int) * (size_t)(s->len > n ? s->len : n));
    if (!s->out_idx || !s->out_y || !s->pick) {
        lb_sampler_free(s);
        return lb_error(LB_ENOMEM, "out of memory for a sampler epoch of %lld entries", len);
    }
    *out = s;
    return LB_OK;
}

int lb_sampler_canonical(const char *spec, char *buf, size_t size)
{
    lb_sampler s;
    memset(&s, 0, sizeof s);
    int rc = parse_spec(&s, spec && *spec ? spec : "shuffle");
    if (rc == LB_OK && (size_t)snprintf(buf, size, "%s", s.name) >= size)
        return lb_error(LB_EINVAL, "sampler '%s': its canonical name '%s' is longer than the %zu characters kept", spec,
                        s.name, size ? size - 1 : 0);
    return rc;
}

lb_sampler *lb_sampler_new(const char *spec, const int *idx, const int *y, int n, int n_classes, uint64_t seed)
{
    lb_sampler *s = NULL;
    return sampler_create(spec, idx, y, n, n_classes, seed, &s) == LB_OK ? s : NULL;
}

/* Draws s->len entries: a class from the probabilities s->p (by inverse CDF), then an
 * entry uniformly within it. */
static void draw_by_class(lb_sampler *s, lb_rng *r)
{
    for (int k = 0; k < s->len; k++) {
        double u = lb_rng_uniform(r), acc = 0.0;
        int c = -1;
        for (int j = 0; j < s->C; j++) {
            if (s->n_c[j] == 0) continue;
            c = j; /* the last non-empty class absorbs rounding at the top of the CDF */
            acc += s->p[j];
            if (u < acc) break;
        }
        int m = s->n_c[c];
        s->pick[k] = s->members[s->cls_start[c] + (int)lb_rng_below(r, (uint64_t)m)];
    }
}

int lb_sampler_epoch(lb_sampler *s, int epoch, const int **idx, const int **y)
{
    if (epoch < 0) return lb_error(LB_EINVAL, "sampler %s: epoch %d < 0", s->name, epoch);
    lb_rng r;
    lb_rng_derive(&r, s->seed, (uint64_t)epoch);
    int C = s->C, nonempty = 0;
    for (int c = 0; c < C; c++) nonempty += s->n_c[c] > 0;
    switch (s->kind) {
    case LB_SAMPLER_SHUFFLE:
    case LB_SAMPLER_SYNTHETIC:
        for (int i = 0; i < s->n; i++) s->pick[i] = i;
        lb_rng_shuffle(&r, s->pick, (size_t)s->n);
        break;
    case LB_SAMPLER_UNDERSAMPLE:
    case LB_SAMPLER_OVERSAMPLE: {
        int n_min = s->n, n_max = 0;
        for (int c = 0; c < C; c++) {
            if (s->n_c[c] == 0) continue;
            if (s->n_c[c] < n_min) n_min = s->n_c[c];
            if (s->n_c[c] > n_max) n_max = s->n_c[c];
        }
        int k = 0;
        for (int c = 0; c < C; c++) {
            int m = s->n_c[c], want = resampled_count(s, c, n_min, n_max);
            const int *mem = s->members + s->cls_start[c];
            if (want <= m) {
                /* Without replacement: copy the class into pick[k, k+m) (k + m <= n always,
                 * since earlier classes kept at most what they have) and let a partial
                 * Fisher-Yates choose the first `want`. */
                memcpy(s->pick + k, mem, sizeof(int) * (size_t)m);
                lb_rng_subset(&r, s->pick + k, m, want);
                k += want;
            } else {
                for (int i = 0; i < m; i++) s->pick[k++] = mem[i];
                for (int i = m; i < want; i++) s->pick[k++] = mem[lb_rng_below(&r, (uint64_t)m)];
            }
        }
        lb_rng_shuffle(&r, s->pick, (size_t)s->len);
        break;
    }
    case LB_SAMPLER_BALANCED:
        for (int c = 0; c < C; c++) s->p[c] = s->n_c[c] ? 1.0 / nonempty : 0.0;
        draw_by_class(s, &r);
        break;
    case LB_SAMPLER_SQRT: {
        double z = 0.0;
        for (int c = 0; c < C; c++) z += s->n_c[c] ? pow((double)s->n_c[c], s->q) : 0.0;
        for (int c = 0; c < C; c++) s->p[c] = s->n_c[c] ? pow((double)s->n_c[c], s->q) / z : 0.0;
        draw_by_class(s, &r);
        break;
    }
    case LB_SAMPLER_PROGRESSIVE: {
        if (s->horizon < 1)
            return lb_error(LB_ESTATE, "sampler progressive: no horizon; give progressive:epochs=T or call "
                                       "lb_sampler_set_horizon()");
        double a = (double)epoch / s->horizon;
        if (a > 1.0) a = 1.0;
        for (int c = 0; c < C; c++)
            s->p[c] = s->n_c[c] ? (1.0 - a) * s->n_c[c] / s->n + a / nonempty : 0.0;
        draw_by_class(s, &r);
        break;
    }
    }
    memset(s->counts, 0, sizeof(int) * (size_t)C);
    for (int k = 0; k < s->len; k++) {
        int e = s->pick[k];
        s->out_idx[k] = s->idx[e];
        s->out_y[k] = s->y[e];
        s->counts[s->y[e]]++;
    }
    *idx = s->out_idx;
    *y = s->out_y;
    return LB_OK;
}

int lb_sampler_next(lb_sampler *s, int batch, int drop_last, const int **idx, const int **y)
{
    if (batch < 1) return lb_error(LB_EINVAL, "batch size %d must be >= 1", batch);
    int left = s->cur_epoch < 0 ? 0 : s->len - s->pos;
    int short_tail = drop_last && left < batch && s->len >= batch;
    if (left == 0 || short_tail) {
        const int *a, *b;
        int rc = lb_sampler_epoch(s, s->cur_epoch + 1, &a, &b);
        if (rc) return rc;
        s->cur_epoch++;
        s->pos = 0;
        left = s->len;
    }
    int n = left < batch ? left : batch;
    *idx = s->out_idx + s->pos;
    *y = s->out_y + s->pos;
    s->pos += n;
    return n;
}
