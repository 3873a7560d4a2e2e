/* Synthetic oversampling, the SMOTE family, with imbalanced-learn 0.10's semantics: SMOTE,
 * Borderline-SMOTE-1, ADASYN and the smoothed bootstrap of RandomOverSampler(shrinkage=S).
 * The one place of the data module that makes pixels.
 *
 * Neighbours. Euclidean distances between rows, computed in double as |a|^2 + |b|^2 - 2 a.b
 * (the products by cblas_dgemm). On pixel values (whole numbers 0..255) every term is a whole
 * number below 2^53, so the distances are exact whatever order dgemm sums in; on other float
 * rows they are as exact as double allows. A row is never its own neighbour (by index: a
 * duplicate at distance 0 is a neighbour); ties go to the lower row. The reference rows are
 * always scanned in increasing order, which is what makes "ties to the lower row" hold.
 * Distances are worked out in blocks: a block of query rows and a block of reference rows in
 * double, B = min(512, max(16, 2^19 / dim)) rows each (at most 2 x 4 MiB when dim <= 2^15),
 * and their B x B distances (at most 2 MiB); plus the neighbour lists asked for (queries x k
 * ints, queries x m for Borderline's danger set).
 *
 * Order of the draws (all from the rng handed in): classes in index order; within a class
 * first every base (lb_rng_below over the rows a base may be: the class for SMOTE and
 * ros_noise, its danger rows for Borderline; ADASYN draws none, its bases are fixed by its
 * per-row counts), then every neighbour (lb_rng_below over that base's neighbours), then every
 * gap (lb_rng_uniform). A class that cannot interpolate (one row) draws only its bases.
 * The gap is kept as a float in the plan, rounded down from the double so that it stays
 * below 1, and the float is the gap used.
 *
 * Where libra departs from imblearn, on purpose: a class with <= k rows uses all its other
 * rows as neighbours and a class of one row is copied (imblearn raises); ADASYN meets its
 * target exactly (imblearn's np.rint may miss it) and makes nothing, with a warning, when no
 * row has another class among its neighbours (imblearn raises); ratio=R asking exactly what
 * the minority has makes nothing (imblearn raises); the uint8 path rounds to the nearest
 * value (imblearn's astype truncates toward zero), so that a synthetic image is the image
 * nearest to the point on the segment. */
#define _DEFAULT_SOURCE /* madvise */
#include "data/internal.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ======================================================================== specs */

static const char *const synth_kinds[] = {"smote", "borderline_smote", "adasyn", "ros_noise"};
#define N_SYNTH_KINDS 4

static int synth_kind_of(const char *name, size_t len)
{
    for (int k = 0; k < N_SYNTH_KINDS; k++)
        if (strlen(synth_kinds[k]) == len && strncmp(name, synth_kinds[k], len) == 0) return k;
    return -1;
}

int lb_synth_is(const char *spec)
{
    if (!spec) return 0;
    while (*spec == ' ' || *spec == '\t') spec++;
    size_t len = strcspn(spec, ":");
    while (len > 0 && (spec[len - 1] == ' ' || spec[len - 1] == '\t')) len--;
    return synth_kind_of(spec, len) >= 0;
}

void lb_synth_spec_free(lb_synth_spec *s)
{
    if (!s) return;
    lb_free(s->counts);
    s->counts = NULL;
    s->n_counts = 0;
}

/* A whole number in [lo, hi] for `key`, if given (else *out stays). */
static int read_whole(const lb_spec *sp, const char *key, double lo, double hi, int *out)
{
    if (!lb_spec_get(sp, key)) return LB_OK;
    double v;
    int rc = lb_spec_number(sp, key, lo, hi, &v);
    if (rc != LB_OK) return rc;
    if (v != floor(v)) return lb_error(LB_EINVAL, "%s: %s=%s must be a whole number", lb_spec_name(sp), key, lb_spec_get(sp, key));
    *out = (int)v;
    return LB_OK;
}

/* counts=n0,n1,...: whole numbers >= 0, at most LB_SYNTH_MAX_CLASSES of them. */
static int read_counts(const lb_spec *sp, lb_synth_spec *out)
{
    const char *v = lb_spec_get(sp, "counts");
    if (!v) return LB_OK;
    double d[LB_SYNTH_MAX_CLASSES];
    int n = 0;
    int rc = lb_spec_numbers(sp, "counts", d, LB_SYNTH_MAX_CLASSES, &n);
    if (rc != LB_OK) return rc;
    for (int i = 0; i < n; i++)
        if (d[i] < 0 || d[i] != floor(d[i]) || d[i] > INT_MAX)
            return lb_error(LB_EINVAL, "%s: counts=%s: value %d (%g) must be a whole number >= 0", lb_spec_name(sp), v, i,
                            d[i]);
    if (!(out->counts = lb_malloc(sizeof(int) * (size_t)n)))
        return lb_error(LB_ENOMEM, "%s: out of memory for %d counts", lb_spec_name(sp), n);
    for (int i = 0; i < n; i++) out->counts[i] = (int)d[i];
    out->n_counts = n;
    return LB_OK;
}

/* Appends printf text to buf[0..size) at *len; -1 once it no longer fits. */
static int name_append(char *buf, size_t size, size_t *len, const char *fmt, ...) LB_PRINTF(4, 5);
static int name_append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= size - *len) return -1;
    *len += (size_t)w;
    return 0;
}

/* The canonical name: the kind and every key that differs from its default, in the order
 * k, m, shrinkage, ratio, counts. */
static int synth_name(lb_synth_spec *s, const char *spec)
{
    char num[40];
    size_t len = 0, size = sizeof s->name;
    int bad = name_append(s->name, size, &len, "%s", synth_kinds[s->kind]);
    const char *sep = ":";
    if (s->kind != LB_SYNTH_ROS_NOISE && s->k != 5) {
        bad |= name_append(s->name, size, &len, "%sk=%d", sep, s->k);
        sep = ",";
    }
    if (s->kind == LB_SYNTH_BORDERLINE && s->m != 10) {
        bad |= name_append(s->name, size, &len, "%sm=%d", sep, s->m);
        sep = ",";
    }
    if (s->kind == LB_SYNTH_ROS_NOISE && s->shrinkage != 1.0) {
        bad |= name_append(s->name, size, &len, "%sshrinkage=%s", sep, lb_format_number(s->shrinkage, num, sizeof num));
        sep = ",";
    }
    if (s->ratio > 0) bad |= name_append(s->name, size, &len, "%sratio=%s", sep, lb_format_number(s->ratio, num, sizeof num));
    if (s->n_counts > 0) bad |= name_append(s->name, size, &len, "%scounts=", sep);
    for (int i = 0; i < s->n_counts; i++) bad |= name_append(s->name, size, &len, "%s%d", i ? "," : "", s->counts[i]);
    if (bad)
        return lb_error(LB_EINVAL, "synthetic sampler '%s': its canonical name would be longer than %zu characters", spec,
                        size - 1);
    return LB_OK;
}

/* The keys of a parsed spec: k >= 0 and m >= 1 whole, shrinkage >= 0, ratio in (0, 1]
 * (imblearn's float sampling_strategy), counts; ratio and counts not both. */
static int synth_keys(lb_synth_spec *out, const lb_spec *sp)
{
    static const char *const keys[N_SYNTH_KINDS][6] = {{"k", "ratio", "counts", NULL},
                                                        {"k", "m", "ratio", "counts", NULL},
                                                        {"k", "ratio", "counts", NULL},
                                                        {"shrinkage", "ratio", "counts", NULL}};
    int rc = lb_spec_check(sp, "synthetic sampler", keys[out->kind], 0);
    if (rc != LB_OK) return rc;
    if ((rc = read_whole(sp, "k", 0, 1e9, &out->k)) != LB_OK) return rc;
    if ((rc = read_whole(sp, "m", 1, 1e9, &out->m)) != LB_OK) return rc;
    if (lb_spec_get(sp, "shrinkage") && (rc = lb_spec_number(sp, "shrinkage", 0.0, 1e6, &out->shrinkage)) != LB_OK)
        return rc;
    if (lb_spec_get(sp, "ratio")) {
        if ((rc = lb_spec_number(sp, "ratio", 0.0, 1.0, &out->ratio)) != LB_OK) return rc;
        if (out->ratio <= 0.0)
            return lb_error(LB_EINVAL, "%s: ratio=%s must be in (0, 1] (minority / majority after resampling)",
                            lb_spec_name(sp), lb_spec_get(sp, "ratio"));
    }
    if (lb_spec_get(sp, "ratio") && lb_spec_get(sp, "counts"))
        return lb_error(LB_EINVAL, "%s: give ratio=R or counts=..., not both", lb_spec_name(sp));
    return read_counts(sp, out);
}

int lb_synth_parse(lb_synth_spec *out, const char *spec)
{
    memset(out, 0, sizeof *out);
    out->k = 5;
    out->m = 10;
    out->shrinkage = 1.0;
    lb_spec *sp = spec ? lb_spec_new(spec) : NULL;
    if (!sp) {
        if (!spec) return lb_error(LB_EINVAL, "synthetic sampler: no spec");
        lb_error_prefix("synthetic sampler");
        return lb_last_status();
    }
    const char *name = lb_spec_name(sp);
    int kind = synth_kind_of(name, strlen(name));
    int rc = kind >= 0 ? LB_OK
                       : lb_error(LB_EINVAL, "synthetic sampler '%s': unknown (expected smote, borderline_smote, adasyn or "
                                             "ros_noise)", spec);
    if (rc == LB_OK) {
        out->kind = (lb_synth_kind)kind;
        rc = synth_keys(out, sp);
        if (rc != LB_OK && lb_last_status() == LB_EINVAL && !strstr(lb_last_error(), "synthetic sampler"))
            lb_error_prefix("synthetic sampler '%s'", spec);
    }
    if (rc == LB_OK) rc = synth_name(out, spec);
    lb_spec_free(sp);
    if (rc != LB_OK) lb_synth_spec_free(out);
    return rc;
}

/* ======================================================================== targets */

/* ratio=R (binary): the majority is the class with more rows (a tie: class 0, as imblearn's
 * max over np.unique's order); the minority grows by int(R * N_maj - n_min). */
static int ratio_targets(const lb_synth_spec *s, const int *counts, int C, int *targets)
{
    if (C != 2)
        return lb_error(LB_EINVAL, "synthetic sampler '%s': ratio=R needs two classes, this task has %d (use counts=...)",
                        s->name, C);
    if (counts[0] == 0 || counts[1] == 0)
        return lb_error(LB_EINVAL, "synthetic sampler '%s': ratio=R needs both classes present (counts %d and %d)",
                        s->name, counts[0], counts[1]);
    int maj = counts[1] > counts[0] ? 1 : 0, mnr = 1 - maj;
    double more = s->ratio * (double)counts[maj] - (double)counts[mnr];
    if (more < 0.0)
        return lb_error(LB_EINVAL,
                        "synthetic sampler '%s': ratio=%g asks int(%g x %d) = %d images of class %d, which has %d "
                        "(synthesis never removes images)",
                        s->name, s->ratio, s->ratio, counts[maj], (int)(s->ratio * counts[maj]), mnr, counts[mnr]);
    targets[maj] = counts[maj];
    targets[mnr] = counts[mnr] + (int)more;
    return LB_OK;
}

int lb_synth_targets(const lb_synth_spec *s, const int *counts, int n_classes, int *targets)
{
    if (n_classes < 1 || n_classes > LB_SYNTH_MAX_CLASSES)
        return lb_error(LB_EINVAL, "synthetic sampler '%s': %d classes (1..%d)", s->name, n_classes, LB_SYNTH_MAX_CLASSES);
    int most = 0;
    for (int c = 0; c < n_classes; c++) {
        if (counts[c] < 0) return lb_error(LB_EINVAL, "synthetic sampler '%s': class %d has count %d", s->name, c, counts[c]);
        if (counts[c] > most) most = counts[c];
    }
    if (s->ratio > 0) return ratio_targets(s, counts, n_classes, targets);
    if (s->n_counts > 0 && s->n_counts != n_classes)
        return lb_error(LB_EINVAL, "synthetic sampler '%s': counts= has %d values for %d classes", s->name, s->n_counts,
                        n_classes);
    for (int c = 0; c < n_classes; c++) {
        int want = s->n_counts > 0 ? s->counts[c] : counts[c] > 0 ? most : 0;
        if (want < counts[c])
            return lb_error(LB_EINVAL, "synthetic sampler '%s': class %d has %d images, counts= asks %d (synthesis never "
                                       "removes images)", s->name, c, counts[c], want);
        if (want > 0 && counts[c] == 0)
            return lb_error(LB_EINVAL, "synthetic sampler '%s': class %d has no image to make %d from", s->name, c, want);
        targets[c] = want;
    }
    return LB_OK;
}

/* ======================================================================== rows */

/* The rows synthesis reads: float rows [n, dim], or uint8 images px[idx[i] * dim ...]. */
typedef struct rows {
    const float *f;
    const uint8_t *px;
    const int *idx;
    int n, dim;
} rows;

static void row_get(const rows *x, int i, double *out)
{
    size_t d = (size_t)x->dim;
    if (x->f) {
        const float *p = x->f + (size_t)i * d;
        for (size_t j = 0; j < d; j++) out[j] = p[j];
    } else {
        const uint8_t *p = x->px + (size_t)x->idx[i] * d;
        for (size_t j = 0; j < d; j++) out[j] = p[j];
    }
}

/* ======================================================================== neighbours */

/* Pixel rows take the products in float, K_EXACT values at a time: 256 products of whole
 * numbers <= 255^2 sum to at most 16,646,400 < 2^24, so every partial sum of such a run is
 * a whole float and sgemm's result is exact in any order; the runs are added in double.
 * So the distances are the very numbers dgemm gave, at about half the time. */
#define K_EXACT 256

typedef struct knn_ws {
    int b;                  /* rows per block */
    double *qd, *rd;        /* float rows: [b, dim] query and reference rows, as double */
    float *qf, *rf, *f;     /* pixel rows: the same as float, and [b, b] products of one run */
    double *qn, *rn;        /* [b] their squared norms */
    double *d;              /* [b, b] -2 q.r */
} knn_ws;

static void knn_ws_free(knn_ws *w)
{
    lb_free(w->qd);
    lb_free(w->rd);
    lb_free(w->qf);
    lb_free(w->rf);
    lb_free(w->f);
    lb_free(w->qn);
    lb_free(w->rn);
    lb_free(w->d);
}

static int knn_ws_init(knn_ws *w, const rows *x)
{
    memset(w, 0, sizeof *w);
    int b = (1 << 19) / x->dim;
    w->b = b > 512 ? 512 : b < 16 ? 16 : b;
    size_t bd = (size_t)w->b * (size_t)x->dim, bb = (size_t)w->b;
    int ok = 1;
    if (x->px) {
        ok = (w->qf = lb_malloc(bd * sizeof(float))) && (w->rf = lb_malloc(bd * sizeof(float))) &&
             (w->f = lb_malloc(bb * bb * sizeof(float)));
    } else {
        ok = (w->qd = lb_malloc(bd * sizeof(double))) && (w->rd = lb_malloc(bd * sizeof(double)));
    }
    w->qn = lb_malloc(bb * sizeof(double));
    w->rn = lb_malloc(bb * sizeof(double));
    w->d = lb_malloc(bb * bb * sizeof(double));
    if (!ok || !w->qn || !w->rn || !w->d) {
        knn_ws_free(w);
        return lb_error(LB_ENOMEM, "synthetic sampler: out of memory for blocks of distances (%d rows of %d values)",
                        w->b, x->dim);
    }
    return LB_OK;
}

/* Rows list[first .. first+m) (list NULL: the rows themselves) into the block (fb for pixel
 * rows, db for float rows), and their squared norms (exact for pixels: whole numbers). */
static void load_block(const rows *x, const int *list, int first, int m, float *fb, double *db, double *norm)
{
    size_t d = (size_t)x->dim;
    for (int i = 0; i < m; i++) {
        int row = list ? list[first + i] : first + i;
        if (x->px) {
            const uint8_t *p = x->px + (size_t)x->idx[row] * d;
            float *o = fb + (size_t)i * d;
            long long s = 0;
            for (size_t j = 0; j < d; j++) {
                o[j] = p[j];
                s += p[j] * p[j];
            }
            norm[i] = (double)s;
        } else {
            double *o = db + (size_t)i * d, s = 0.0;
            row_get(x, row, o);
            for (size_t j = 0; j < d; j++) s += o[j] * o[j];
            norm[i] = s;
        }
    }
}

/* w->d[i, j] = -2 q_i.r_j for the nq x nr rows in the blocks: dgemm for float rows, exact
 * float runs of K_EXACT values for pixel rows (see K_EXACT). */
static void knn_products(knn_ws *w, int dim, int nq, int nr)
{
    if (!w->qf) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nr, dim, -2.0, w->qd, dim, w->rd, dim, 0.0, w->d, w->b);
        return;
    }
    for (int k0 = 0; k0 < dim; k0 += K_EXACT) {
        int kc = dim - k0 < K_EXACT ? dim - k0 : K_EXACT;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nr, kc, 1.0f, w->qf + k0, dim, w->rf + k0, dim, 0.0f,
                    w->f, w->b);
        for (int i = 0; i < nq; i++) {
            double *d = w->d + (size_t)i * (size_t)w->b;
            const float *f = w->f + (size_t)i * (size_t)w->b;
            if (k0 == 0)
                for (int j = 0; j < nr; j++) d[j] = -2.0 * (double)f[j];
            else
                for (int j = 0; j < nr; j++) d[j] -= 2.0 * (double)f[j];
        }
    }
}

/* Keeps (d, row) in the ascending list td/ti of at most kk if it is among the kk smallest,
 * ordered by distance, then row: so ties go to the lower row in whatever order rows come. */
static void top_insert(double *td, int *ti, int *cnt, int kk, double d, int row)
{
    int c = *cnt;
    if (c == kk && !(d < td[kk - 1] || (d == td[kk - 1] && row < ti[kk - 1]))) return;
    int at = c < kk ? c : kk - 1;
    while (at > 0 && (td[at - 1] > d || (td[at - 1] == d && ti[at - 1] > row))) {
        td[at] = td[at - 1];
        ti[at] = ti[at - 1];
        at--;
    }
    td[at] = d;
    ti[at] = row;
    if (c < kk) *cnt = c + 1;
}

/* The search's lists: for each query, the kept distances (td, kk each) and how many (cnt). */
typedef struct knn_lists {
    double *td;
    int *cnt, *nb, kk;
} knn_lists;

/* The distances of one query block (q[q0 ..], nq rows, in the ws) to one reference block
 * (r[r0 ..], nr rows), merged into the queries' lists; `both` (the symmetric search, r = q)
 * merges each distance into the reference row's list too: on pixel rows d(i, j) = d(j, i)
 * exactly, so this is the list the reference row would get as a query. */
static void knn_pair(knn_ws *w, const rows *x, const int *q, int q0, int nq, const int *r, int r0, int nr, int both,
                     knn_lists *L)
{
    knn_products(w, x->dim, nq, nr);
    size_t kk = (size_t)L->kk;
    for (int i = 0; i < nq; i++) {
        int qi = q0 + i, self = q[qi];
        const double *drow = w->d + (size_t)i * (size_t)w->b;
        for (int j = 0; j < nr; j++) {
            int row = r ? r[r0 + j] : r0 + j;
            if (row == self) continue;
            double d = w->qn[i] + w->rn[j] + drow[j];
            top_insert(L->td + qi * kk, L->nb + qi * kk, &L->cnt[qi], L->kk, d, row);
            if (both) top_insert(L->td + (size_t)(r0 + j) * kk, L->nb + (size_t)(r0 + j) * kk, &L->cnt[r0 + j], L->kk, d, self);
        }
    }
}

/* nb[i * kk .. i * kk + kk) = the kk nearest of r[0..nr) (NULL: rows 0..nr-1) to query row
 * q[i], nearest first, ties to the lower row, the query itself left out; -1 fills a list
 * with fewer candidates, in the workspace w. Pixel rows searched among
 * themselves (r == q) take only the block pairs on and above the diagonal (half the
 * products): their distances are exact, so both halves are the same numbers. */
static int knn(knn_ws *w, const rows *x, const int *q, int nq, const int *r, int nr, int kk, int *nb)
{
    int sym = x->px && r == q && nr == nq;
    knn_lists L = {lb_malloc(sizeof(double) * (size_t)nq * (size_t)kk), lb_calloc((size_t)nq, sizeof(int)), nb, kk};
    if (!L.td || !L.cnt) {
        lb_free(L.td);
        lb_free(L.cnt);
        return lb_error(LB_ENOMEM, "synthetic sampler: out of memory for the neighbour lists of %d rows", nq);
    }
    for (int q0 = 0; q0 < nq; q0 += w->b) {
        int bq = nq - q0 < w->b ? nq - q0 : w->b;
        load_block(x, q, q0, bq, w->qf, w->qd, w->qn);
        for (int r0 = sym ? q0 : 0; r0 < nr; r0 += w->b) {
            int br = nr - r0 < w->b ? nr - r0 : w->b;
            load_block(x, r, r0, br, w->rf, w->rd, w->rn);
            knn_pair(w, x, q, q0, bq, r, r0, br, sym && r0 != q0, &L);
        }
    }
    for (int i = 0; i < nq; i++)
        for (int j = L.cnt[i]; j < kk; j++) nb[(size_t)i * (size_t)kk + (size_t)j] = -1;
    lb_free(L.td);
    lb_free(L.cnt);
    return LB_OK;
}

/* ======================================================================== planning */

typedef struct planner {
    const lb_synth_spec *s;
    const rows *x;
    const int *y;
    int n, C;
    int *start, *pos;   /* the rows grouped by class (lb_group_by_class) */
    lb_rng *rng;
    lb_synth_plan *p;   /* p->n grows as rows are appended */
    knn_ws ws;          /* the neighbour searches' workspace, once has_ws */
    int has_ws;
} planner;

#define CLASS_ROWS(pl, c) ((pl)->pos + (pl)->start[c])
#define CLASS_N(pl, c) ((pl)->start[(c) + 1] - (pl)->start[c])

/* knn() in the planner's workspace, made on first need: one for all the classes, not one
 * per class (fresh pages cost a fault each). */
static int planner_knn(planner *pl, const int *q, int nq, const int *r, int nr, int kk, int *nb)
{
    if (kk <= 0 || nq <= 0) return LB_OK;
    if (!pl->has_ws) {
        int rc = knn_ws_init(&pl->ws, pl->x);
        if (rc != LB_OK) return rc;
        pl->has_ws = 1;
    }
    return knn(&pl->ws, pl->x, q, nq, r, nr, kk, nb);
}

void lb_synth_plan_free(lb_synth_plan *p)
{
    if (!p) return;
    lb_free(p->y);
    lb_free(p->source);
    lb_free(p->neighbour);
    lb_free(p->gap);
    lb_free(p->targets);
    lb_notes_free(&p->warnings);
    memset(p, 0, sizeof *p);
}

/* u ~ U[0, 1) as a float below 1 (rounded down from the double). */
static float draw_gap(lb_rng *rng)
{
    double u = lb_rng_uniform(rng);
    float f = (float)u;
    if ((double)f > u) f = nextafterf(f, 0.0f);
    return f;
}

/* The warnings of a class that interpolates among fewer than k neighbours. */
static int few_rows_warning(planner *pl, int cls, int nc, int t)
{
    if (nc == 1)
        return lb_notes_add(&pl->p->warnings, "synthetic sampler %s: class %d has a single image: its %d synthetic images "
                                              "are copies of it", pl->s->name, cls, t);
    return lb_notes_add(&pl->p->warnings, "synthetic sampler %s: class %d has %d images (k=%d): each uses its %d other "
                                          "images as neighbours", pl->s->name, cls, nc, pl->s->k, nc - 1);
}

/* The distinct bases of bp[0..t) (class positions) as query rows q[0..nq), slot[pos] = the
 * query of position pos (-1: not a base). */
static int distinct_bases(const int *mem, int nc, const int *bp, int t, int *slot, int *q)
{
    int nq = 0;
    for (int i = 0; i < nc; i++) slot[i] = -1;
    for (int i = 0; i < t; i++)
        if (slot[bp[i]] < 0) {
            slot[bp[i]] = nq;
            q[nq++] = mem[bp[i]];
        }
    return nq;
}

/* Appends t rows of class cls from the bases bp[0..t) (positions in the class): then each
 * base's neighbour, uniform among its kk nearest rows of the class, then the gaps. A class of
 * one row cannot interpolate: its rows are copies (neighbour -1, gap NaN). */
static int interpolate(planner *pl, int cls, const int *bp, int t)
{
    const int *mem = CLASS_ROWS(pl, cls);
    int nc = CLASS_N(pl, cls), kk = pl->s->k < nc - 1 ? pl->s->k : nc - 1;
    lb_synth_plan *p = pl->p;
    int rc = kk < pl->s->k ? few_rows_warning(pl, cls, nc, t) : LB_OK;
    int *slot = lb_malloc(sizeof(int) * (size_t)nc), *q = lb_malloc(sizeof(int) * (size_t)nc);
    int *nb = lb_malloc(sizeof(int) * (size_t)nc * (size_t)kk + 1);
    if (rc == LB_OK && (!slot || !q || !nb))
        rc = lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for the neighbours of class %d (%d images)",
                      pl->s->name, cls, nc);
    int nq = rc == LB_OK ? distinct_bases(mem, nc, bp, t, slot, q) : 0;
    if (rc == LB_OK && pl->x->px && 2 * nq > nc) { /* the symmetric search over the class costs less */
        for (int i = 0; i < nc; i++) slot[i] = i;
        rc = planner_knn(pl, mem, nc, mem, nc, kk, nb);
    } else if (rc == LB_OK)
        rc = planner_knn(pl, q, nq, mem, nc, kk, nb);
    if (rc == LB_OK) {
        int r0 = p->n;
        for (int i = 0; i < t; i++) {
            p->y[r0 + i] = cls;
            p->source[r0 + i] = mem[bp[i]];
        }
        for (int i = 0; i < t; i++)
            p->neighbour[r0 + i] = kk > 0 ? nb[(size_t)slot[bp[i]] * (size_t)kk + lb_rng_below(pl->rng, (uint64_t)kk)] : -1;
        for (int i = 0; i < t; i++) p->gap[r0 + i] = kk > 0 ? draw_gap(pl->rng) : NAN;
        p->n += t;
        p->targets[cls] += t;
    }
    lb_free(slot);
    lb_free(q);
    lb_free(nb);
    return rc;
}

/* t bases uniform with replacement among set[0..m) (class positions) into bp. */
static void draw_bases(lb_rng *rng, const int *set, int m, int t, int *bp)
{
    for (int i = 0; i < t; i++) bp[i] = set ? set[lb_rng_below(rng, (uint64_t)m)] : (int)lb_rng_below(rng, (uint64_t)m);
}

/* SMOTE: bases among the whole class. */
static int plan_smote(planner *pl, int cls, int t)
{
    int *bp = lb_malloc(sizeof(int) * (size_t)t);
    if (!bp) return lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for %d bases", pl->s->name, t);
    draw_bases(pl->rng, NULL, CLASS_N(pl, cls), t, bp);
    int rc = interpolate(pl, cls, bp, t);
    lb_free(bp);
    return rc;
}

/* ros_noise: bases among the whole class, no neighbour, no gap (the noise is the fill's). */
static int plan_ros(planner *pl, int cls, int t)
{
    lb_synth_plan *p = pl->p;
    const int *mem = CLASS_ROWS(pl, cls);
    int nc = CLASS_N(pl, cls);
    for (int i = 0; i < t; i++) {
        int r = p->n + i;
        p->y[r] = cls;
        p->source[r] = mem[lb_rng_below(pl->rng, (uint64_t)nc)];
        p->neighbour[r] = -1;
        p->gap[r] = NAN;
    }
    p->n += t;
    p->targets[cls] += t;
    return LB_OK;
}

/* For each row of the class, how many of its kk nearest rows of all classes belong to
 * another class (other: nc ints). */
static int other_class_neighbours(planner *pl, int cls, int kk, int *other)
{
    const int *mem = CLASS_ROWS(pl, cls);
    int nc = CLASS_N(pl, cls);
    int *nb = lb_malloc(sizeof(int) * (size_t)nc * (size_t)kk + 1);
    if (!nb)
        return lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for %d x %d neighbours of class %d", pl->s->name, nc,
                        kk, cls);
    int rc = planner_knn(pl, mem, nc, NULL, pl->n, kk, nb);
    for (int i = 0; rc == LB_OK && i < nc; i++) {
        other[i] = 0;
        for (int j = 0; j < kk; j++) {
            int row = nb[(size_t)i * (size_t)kk + (size_t)j];
            other[i] += row >= 0 && pl->y[row] != cls;
        }
    }
    lb_free(nb);
    return rc;
}

/* The neighbours over all rows that a class's rows have (k or m; fewer when there are not
 * that many other rows, with a warning). */
static int all_rows_k(planner *pl, const char *key, int want, int *kk)
{
    *kk = want < pl->n - 1 ? want : pl->n - 1;
    if (*kk == want) return LB_OK;
    return lb_notes_add(&pl->p->warnings, "synthetic sampler %s: %s=%d but there are only %d other images: %d used",
                        pl->s->name, key, want, pl->n - 1, *kk);
}

/* Borderline-1: the danger rows (of their m nearest over all rows, m/2 <= n_other < m, as
 * imblearn's in_danger_noise(kind='danger')), bases among them. */
static int plan_borderline(planner *pl, int cls, int t)
{
    int nc = CLASS_N(pl, cls), m, nd = 0;
    int rc = all_rows_k(pl, "m", pl->s->m, &m);
    int *other = lb_malloc(sizeof(int) * (size_t)nc), *danger = lb_malloc(sizeof(int) * (size_t)nc);
    int *bp = lb_malloc(sizeof(int) * (size_t)t);
    if (rc == LB_OK && (!other || !danger || !bp))
        rc = lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for the danger set of class %d", pl->s->name, cls);
    if (rc == LB_OK) rc = other_class_neighbours(pl, cls, m, other);
    for (int i = 0; rc == LB_OK && i < nc; i++)
        if (2 * (long)other[i] >= m && other[i] < m) danger[nd++] = i;
    if (rc == LB_OK && nd == 0)
        rc = lb_notes_add(&pl->p->warnings, "synthetic sampler %s: class %d has no danger point (no image with between m/2 "
                                            "and m-1 of its m=%d nearest neighbours in other classes): nothing made for it",
                          pl->s->name, cls, m);
    else if (rc == LB_OK) {
        draw_bases(pl->rng, danger, nd, t, bp);
        rc = interpolate(pl, cls, bp, t);
    }
    lb_free(other);
    lb_free(danger);
    lb_free(bp);
    return rc;
}

typedef struct row_rem {
    long long rem;
    int row;
} row_rem;

static int by_remainder(const void *a, const void *b)
{
    const row_rem *x = a, *y = b;
    if (x->rem != y->rem) return x->rem > y->rem ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* ADASYN's per-row counts g[i] for t rows from the other-class counts o[i] (sum S > 0):
 * r_i = o_i / S (imblearn's ratio_nn after normalising, exactly: o_i / kk / sum(o / kk));
 * g_i = floor(r_i t), then one more to the t - sum(g) rows with the largest remainders (ties
 * to the lower row), so that sum(g) = t exactly. In whole numbers: no rounding at all. */
static int adasyn_counts(const int *o, int nc, long long S, int t, int *g)
{
    row_rem *rm = lb_malloc(sizeof *rm * (size_t)nc);
    if (!rm) return lb_error(LB_ENOMEM, "synthetic sampler adasyn: out of memory for %d remainders", nc);
    long long left = t;
    for (int i = 0; i < nc; i++) {
        long long a = (long long)o[i] * t;
        g[i] = (int)(a / S);
        left -= g[i];
        rm[i].rem = a % S;
        rm[i].row = i;
    }
    qsort(rm, (size_t)nc, sizeof *rm, by_remainder);
    for (long long j = 0; j < left; j++) g[rm[j].row]++;
    lb_free(rm);
    return LB_OK;
}

/* ADASYN: per-row counts from the share of other-class rows among each row's k nearest over
 * all rows; the bases are the rows repeated that many times, in row order (np.repeat). */
static int plan_adasyn(planner *pl, int cls, int t)
{
    int nc = CLASS_N(pl, cls), kk;
    int rc = all_rows_k(pl, "k", pl->s->k, &kk);
    int *other = lb_malloc(sizeof(int) * (size_t)nc), *g = lb_malloc(sizeof(int) * (size_t)nc);
    int *bp = lb_malloc(sizeof(int) * (size_t)t);
    if (rc == LB_OK && (!other || !g || !bp))
        rc = lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for the ratios of class %d", pl->s->name, cls);
    if (rc == LB_OK) rc = other_class_neighbours(pl, cls, kk, other);
    long long S = 0;
    for (int i = 0; rc == LB_OK && i < nc; i++) S += other[i];
    if (rc == LB_OK && S == 0)
        rc = lb_notes_add(&pl->p->warnings, "synthetic sampler %s: no image of class %d has a neighbour of another class "
                                            "among its k=%d nearest: nothing made for it", pl->s->name, cls, kk);
    else if (rc == LB_OK && (rc = adasyn_counts(other, nc, S, t, g)) == LB_OK) {
        int k = 0;
        for (int i = 0; i < nc; i++)
            for (int j = 0; j < g[i]; j++) bp[k++] = i;
        rc = interpolate(pl, cls, bp, t);
    }
    lb_free(other);
    lb_free(g);
    lb_free(bp);
    return rc;
}

/* The plan's arrays for up to cap rows, the originals in place (rows 0..n-1). */
static int plan_alloc(lb_synth_plan *p, const int *y, int n, int C, int cap)
{
    size_t m = (size_t)cap;
    p->y = lb_malloc(sizeof(int) * m);
    p->source = lb_malloc(sizeof(int) * m);
    p->neighbour = lb_malloc(sizeof(int) * m);
    p->gap = lb_malloc(sizeof(float) * m);
    p->targets = lb_calloc((size_t)C, sizeof(int));
    if (!p->y || !p->source || !p->neighbour || !p->gap || !p->targets)
        return lb_error(LB_ENOMEM, "synthetic sampler: out of memory for a plan of %d rows", cap);
    p->n = p->n_orig = n;
    p->n_classes = C;
    for (int i = 0; i < n; i++) {
        p->y[i] = y[i];
        p->source[i] = p->neighbour[i] = -1;
        p->gap[i] = NAN;
        p->targets[y[i]]++;
    }
    return LB_OK;
}

/* Each class to grow, in index order, by the kind's planner. */
static int plan_classes(planner *pl, const int *targets)
{
    const lb_synth_spec *s = pl->s;
    int grow = 0;
    for (int c = 0; c < pl->C; c++) grow |= targets[c] > CLASS_N(pl, c);
    if (grow && s->k == 0 && s->kind != LB_SYNTH_ROS_NOISE)
        return lb_notes_add(&pl->p->warnings, "synthetic sampler %s: k=0: no neighbour to interpolate with, nothing made",
                            s->name);
    int rc = LB_OK;
    for (int c = 0; rc == LB_OK && c < pl->C; c++) {
        int t = targets[c] - CLASS_N(pl, c);
        if (t <= 0) continue;
        rc = s->kind == LB_SYNTH_SMOTE        ? plan_smote(pl, c, t)
             : s->kind == LB_SYNTH_BORDERLINE ? plan_borderline(pl, c, t)
             : s->kind == LB_SYNTH_ADASYN     ? plan_adasyn(pl, c, t)
                                              : plan_ros(pl, c, t);
    }
    return rc;
}

/* The plan over any rows (float or uint8): grouping, targets, the plan's arrays, classes. */
static int plan_core(const lb_synth_spec *s, const rows *x, const int *y, int C, lb_rng *rng, lb_synth_plan *p)
{
    int n = x->n;
    planner pl = {s, x, y, n, C, lb_malloc(sizeof(int) * ((size_t)C + 1)), lb_malloc(sizeof(int) * (size_t)n), rng, p,
                  {0}, 0};
    int *counts = lb_malloc(sizeof(int) * (size_t)C), *targets = lb_malloc(sizeof(int) * (size_t)C);
    int rc = pl.start && pl.pos && counts && targets
                 ? LB_OK
                 : lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory grouping %d rows by class", s->name, n);
    if (rc == LB_OK && (rc = lb_group_by_class(y, n, C, pl.start, pl.pos)) != LB_OK)
        lb_error_prefix("synthetic sampler %s", s->name);
    for (int c = 0; rc == LB_OK && c < C; c++) counts[c] = CLASS_N(&pl, c);
    if (rc == LB_OK) rc = lb_synth_targets(s, counts, C, targets);
    long long cap = n;
    for (int c = 0; rc == LB_OK && c < C; c++) cap += targets[c] - counts[c];
    if (rc == LB_OK && cap > INT_MAX)
        rc = lb_error(LB_EINVAL, "synthetic sampler %s: a resampled set of %lld rows is too large", s->name, cap);
    if (rc == LB_OK) rc = plan_alloc(p, y, n, C, (int)cap);
    if (rc == LB_OK) rc = plan_classes(&pl, targets);
    if (pl.has_ws) knn_ws_free(&pl.ws);
    lb_free(pl.start);
    lb_free(pl.pos);
    lb_free(counts);
    lb_free(targets);
    if (rc != LB_OK) lb_synth_plan_free(p);
    return rc;
}

/* The arguments every entry point shares. */
static int check_args(const lb_synth_spec *s, int n, int dim, int C)
{
    if (n < 1) return lb_error(LB_EINVAL, "synthetic sampler %s: no rows", s->name);
    if (dim < 1) return lb_error(LB_EINVAL, "synthetic sampler %s: rows of %d values", s->name, dim);
    if (C < 1 || C > LB_SYNTH_MAX_CLASSES)
        return lb_error(LB_EINVAL, "synthetic sampler %s: %d classes (1..%d)", s->name, C, LB_SYNTH_MAX_CLASSES);
    return LB_OK;
}

int lb_synth_plan_rows(const lb_synth_spec *s, const float *x, const int *y, int n, int dim, int n_classes, lb_rng *rng,
                       lb_synth_plan *out)
{
    memset(out, 0, sizeof *out);
    int rc = check_args(s, n, dim, n_classes);
    if (rc != LB_OK) return rc;
    for (size_t i = 0; i < (size_t)n * (size_t)dim; i++)
        if (!isfinite(x[i]))
            return lb_error(LB_EINVAL, "synthetic sampler %s: value %zu of row %zu is not finite", s->name,
                            i % (size_t)dim, i / (size_t)dim);
    rows r = {x, NULL, NULL, n, dim};
    return plan_core(s, &r, y, n_classes, rng, out);
}

/* ======================================================================== filling */

/* ros_noise's scale of class cls per value (sd: dim doubles): shrinkage x (4 / ((dim + 2) N))
 * ^ (1 / (dim + 4)) x the class's standard deviation (ddof 0) of that value, N = the rows
 * given (all classes: imblearn's X.shape[0]). mean: dim doubles of scratch, row: dim. */
static void noise_scale(const lb_synth_spec *s, const lb_synth_plan *p, const rows *x, int cls, double *sd, double *mean,
                        double *row)
{
    size_t d = (size_t)x->dim;
    int m = 0;
    memset(mean, 0, d * sizeof(double));
    memset(sd, 0, d * sizeof(double));
    for (int i = 0; i < p->n_orig; i++)
        if (p->y[i] == cls) {
            row_get(x, i, row);
            for (size_t j = 0; j < d; j++) mean[j] += row[j];
            m++;
        }
    for (size_t j = 0; j < d; j++) mean[j] /= m > 0 ? m : 1;
    for (int i = 0; i < p->n_orig; i++)
        if (p->y[i] == cls) {
            row_get(x, i, row);
            for (size_t j = 0; j < d; j++) sd[j] += (row[j] - mean[j]) * (row[j] - mean[j]);
        }
    double h = s->shrinkage * pow(4.0 / ((x->dim + 2.0) * p->n_orig), 1.0 / (x->dim + 4.0));
    for (size_t j = 0; j < d; j++) sd[j] = h * sqrt(sd[j] / (m > 0 ? m : 1));
}

/* Synthetic row r of the plan into out (dim doubles): x_src + gap (x_nn - x_src) in double,
 * a copy (no neighbour), or (ros_noise) x_src + sd * N(0, 1) per value, drawn in value order
 * from lb_rng_derive(seed, r). tmp: dim doubles. */
static void synth_row(const lb_synth_spec *s, const lb_synth_plan *p, const rows *x, int r, const double *sd,
                      uint64_t seed, double *out, double *tmp)
{
    size_t d = (size_t)x->dim;
    row_get(x, p->source[r], out);
    if (s->kind == LB_SYNTH_ROS_NOISE) {
        lb_rng g;
        lb_rng_derive(&g, seed, (uint64_t)r);
        for (size_t j = 0; j < d; j++) out[j] += sd[j] * lb_rng_normal(&g);
    } else if (p->neighbour[r] >= 0) {
        double u = p->gap[r];
        row_get(x, p->neighbour[r], tmp);
        for (size_t j = 0; j < d; j++) out[j] += u * (tmp[j] - out[j]);
    }
}

/* Where a plan can be filled from n_orig rows: every source and neighbour an original row. */
static int check_plan(const lb_synth_spec *s, const lb_synth_plan *p, int n_orig)
{
    if (p->n_orig != n_orig || p->n < p->n_orig)
        return lb_error(LB_EINVAL, "synthetic sampler %s: a plan of %d rows (%d original) for %d rows", s->name, p->n,
                        p->n_orig, n_orig);
    for (int r = p->n_orig; r < p->n; r++)
        if (p->source[r] < 0 || p->source[r] >= n_orig || p->neighbour[r] >= n_orig || p->y[r] < 0 ||
            p->y[r] >= p->n_classes)
            return lb_error(LB_EINVAL, "synthetic sampler %s: plan row %d refers outside the %d original rows", s->name, r,
                            n_orig);
    return LB_OK;
}

/* Fills the synthetic rows in order, class by class (ros_noise: the class's scale first);
 * put(ctx, r, v) stores row r from the doubles v. */
typedef void (*row_sink)(void *ctx, int r, const double *v, int dim);

static int fill_synthetic(const lb_synth_spec *s, const lb_synth_plan *p, const rows *x, uint64_t seed, row_sink put,
                          void *ctx)
{
    size_t d = (size_t)x->dim;
    double *buf = lb_malloc(sizeof(double) * d * 5);
    if (!buf) return lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for rows of %zu values", s->name, d);
    double *out = buf, *tmp = buf + d, *sd = buf + 2 * d;
    int cls = -1;
    for (int r = p->n_orig; r < p->n; r++) {
        if (s->kind == LB_SYNTH_ROS_NOISE && p->y[r] != cls) {
            cls = p->y[r];
            noise_scale(s, p, x, cls, sd, buf + 3 * d, buf + 4 * d);
        }
        synth_row(s, p, x, r, sd, seed, out, tmp);
        put(ctx, r, out, x->dim);
    }
    lb_free(buf);
    return LB_OK;
}

static void put_float(void *ctx, int r, const double *v, int dim)
{
    float *o = (float *)ctx + (size_t)r * (size_t)dim;
    for (int j = 0; j < dim; j++) o[j] = (float)v[j];
}

int lb_synth_fill_rows(const lb_synth_spec *s, const lb_synth_plan *p, const float *x, int dim, uint64_t seed, float *out)
{
    int rc = check_args(s, p->n_orig, dim, p->n_classes > 0 ? p->n_classes : 1);
    if (rc == LB_OK) rc = check_plan(s, p, p->n_orig);
    if (rc != LB_OK) return rc;
    memcpy(out, x, sizeof(float) * (size_t)p->n_orig * (size_t)dim);
    rows r = {x, NULL, NULL, p->n_orig, dim};
    return fill_synthetic(s, p, &r, seed, put_float, out);
}

/* ======================================================================== datasets */

/* Nearest uint8, halves up, clamped to 0..255 (imblearn's astype would truncate toward
 * zero; the nearest value keeps a synthetic image the image nearest to its point). Clamped
 * first, so that adding a half and truncating is floor(v + 0.5): one form the compiler
 * vectorises, for every pixel path. */
static inline uint8_t nearest_pixel(double v)
{
    v = v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v;
    return (uint8_t)(int)(v + 0.5);
}

static void put_pixels(void *ctx, int r, const double *v, int dim)
{
    uint8_t *o = (uint8_t *)ctx + (size_t)r * (size_t)dim;
    for (int j = 0; j < dim; j++) o[j] = nearest_pixel(v[j]);
}

/* The interpolating kinds' synthetic images straight from the uint8 rows: the same doubles
 * as synth_row + put_pixels (a + u (b - a)), without the row copies. */
static void fill_pixels(const lb_synth_plan *p, const rows *x, uint8_t *out)
{
    size_t d = (size_t)x->dim;
    for (int r = p->n_orig; r < p->n; r++) {
        const uint8_t *a = x->px + (size_t)x->idx[p->source[r]] * d;
        uint8_t *o = out + (size_t)r * d;
        if (p->neighbour[r] < 0) {
            memcpy(o, a, d);
            continue;
        }
        const uint8_t *b = x->px + (size_t)x->idx[p->neighbour[r]] * d;
        double u = p->gap[r];
        for (size_t j = 0; j < d; j++) o[j] = nearest_pixel((double)a[j] + u * ((double)b[j] - (double)a[j]));
    }
}

/* The arguments of lb_synth_dataset: a dataset with pixels, entries inside it. */
static int check_dataset_args(const lb_synth_spec *s, const lb_dataset *ds, const int *idx, int n, int n_classes)
{
    if (!ds || !ds->pixels || ds->c < 1 || ds->h < 1 || ds->w < 1)
        return lb_error(LB_EINVAL, "synthetic sampler %s: a dataset without images", s->name);
    if ((long long)ds->c * ds->h * ds->w > INT_MAX)
        return lb_error(LB_EINVAL, "synthetic sampler %s: images of %dx%dx%d are too large", s->name, ds->c, ds->h, ds->w);
    int rc = check_args(s, n, ds->c * ds->h * ds->w, n_classes);
    for (int i = 0; rc == LB_OK && i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n)
            rc = lb_error(LB_EINVAL, "synthetic sampler %s: entry %d is image %d of a dataset of %d", s->name, i, idx[i],
                          ds->n);
    return rc;
}

/* Asks Linux for 2 MiB pages under the whole 2 MiB stretches of a large new buffer (numpy
 * does the same for its arrays): writing a resampled set of 42 MB first touched 10,000 4 KiB
 * pages, a fault each, about a quarter of SMOTE's time on this machine's VM. Only advice:
 * where transparent huge pages are off or absent nothing changes. */
static void advise_huge_pages(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)1 << 21;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + n) & ~(huge - 1);
    if (e > a) (void)madvise((void *)a, (size_t)(e - a), MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

/* The new dataset's shape, labels, class names (ds's when it has n_classes classes, else
 * "0", "1", ...), source and pixels (allocated, not yet written). */
static lb_dataset *synth_dataset_shell(const lb_synth_spec *s, const lb_dataset *ds, const lb_synth_plan *p)
{
    lb_dataset *out = lb__dataset_new();
    if (!out) {
        lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for a dataset", s->name);
        return NULL;
    }
    size_t dim = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    out->n = p->n;
    out->c = ds->c;
    out->h = ds->h;
    out->w = ds->w;
    out->n_classes = p->n_classes;
    out->pixels = lb_malloc((size_t)p->n * dim);
    if (out->pixels) advise_huge_pages(out->pixels, (size_t)p->n * dim);
    out->labels = lb_malloc(sizeof(int) * (size_t)p->n);
    int same = ds->n_classes == p->n_classes && ds->class_names;
    out->class_names = lb__names(p->n_classes, same ? (const char *const *)ds->class_names : NULL);
    out->source = lb_strfmt("%s resampled by %s", ds->source ? ds->source : "a dataset", s->name);
    if (!out->pixels || !out->labels || !out->class_names || !out->source) {
        if (!out->class_names) out->n_classes = 0;
        lb_dataset_free(out);
        lb_error(LB_ENOMEM, "synthetic sampler %s: out of memory for %d images of %zu bytes", s->name, p->n, dim);
        return NULL;
    }
    memcpy(out->labels, p->y, sizeof(int) * (size_t)p->n);
    return out;
}

/* The plan over the uint8 images, then the new dataset: originals copied, synthetic rows
 * filled, rounded and clamped. */
static lb_dataset *synth_dataset(const lb_synth_spec *s, const lb_dataset *ds, const int *idx, const int *y, int n,
                                 int n_classes, uint64_t seed, lb_synth_plan *plan)
{
    int rc = check_dataset_args(s, ds, idx, n, n_classes);
    if (rc != LB_OK) return NULL;
    int dim = ds->c * ds->h * ds->w;
    rows x = {NULL, ds->pixels, idx, n, dim};
    lb_rng rng;
    lb_rng_seed(&rng, seed);
    if (plan_core(s, &x, y, n_classes, &rng, plan) != LB_OK) return NULL;
    lb_dataset *out = synth_dataset_shell(s, ds, plan);
    if (!out) return NULL;
    for (int i = 0; i < n; i++)
        memcpy(out->pixels + (size_t)i * (size_t)dim, ds->pixels + (size_t)idx[i] * (size_t)dim, (size_t)dim);
    if (s->kind != LB_SYNTH_ROS_NOISE)
        fill_pixels(plan, &x, out->pixels);
    else if (fill_synthetic(s, plan, &x, seed, put_pixels, out->pixels) != LB_OK) {
        lb_dataset_free(out);
        return NULL;
    }
    return out;
}

lb_dataset *lb_synth_dataset(const char *spec, const lb_dataset *ds, const int *idx, const int *y, int n, int n_classes,
                             uint64_t seed, lb_synth_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    lb_synth_spec s;
    if (lb_synth_parse(&s, spec) != LB_OK) return NULL;
    lb_dataset *out = synth_dataset(&s, ds, idx, y, n, n_classes, seed, plan);
    if (!out) lb_synth_plan_free(plan);
    lb_synth_spec_free(&s);
    return out;
}
