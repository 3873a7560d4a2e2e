/* Imbalance profiles (how many training images each class keeps), class order, and splits. */
#include "data/internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* floor() of values that should be integers but come out of pow() a hair low
 * (6000 * 100^-1 = 59.99999...) must not lose one image. */
#define FLOOR_EPS 1e-9

void lb_profile_free(lb_profile *p)
{
    if (!p) return;
    lb_free(p->counts);
    memset(p, 0, sizeof *p);
}

static int find_class(const char *s, int n_classes, const char *const *names, int *out)
{
    if (lb_parse_int(s, out) == 0) return *out >= 0 && *out < n_classes ? 0 : -1;
    for (int c = 0; names && c < n_classes; c++)
        if (strcasecmp(names[c], s) == 0) {
            *out = c;
            return 0;
        }
    return -1;
}

/* The positional arguments of a profile spec: exactly `n` numbers (n < 0: at least one). */
static int numbers_of(const lb_spec *sp, int n, double *out, const char *usage)
{
    int k = lb_spec_n_args(sp);
    if (lb_spec_count(sp) > 0 || (n >= 0 && k != n) || (n < 0 && k < 1))
        return lb_error(LB_EINVAL, "imbalance '%s': %s", lb_spec_text(sp), usage);
    for (int i = 0; i < k && n >= 0; i++)
        if (lb_parse_double(lb_spec_arg(sp, i), &out[i]) != 0)
            return lb_error(LB_EINVAL, "imbalance '%s': %s", lb_spec_text(sp), usage);
    return LB_OK;
}

static int parse_longtail(const lb_spec *sp, lb_profile *out)
{
    out->kind = LB_PROFILE_LONGTAIL;
    if (numbers_of(sp, 1, &out->rho, "longtail needs a number, as in longtail:100")) return LB_EINVAL;
    if (out->rho < 1.0)
        return lb_error(LB_EINVAL, "imbalance '%s': RHO = %g must be >= 1 (the head/tail ratio)", lb_spec_text(sp),
                        out->rho);
    return LB_OK;
}

static int parse_step(const lb_spec *sp, int n_classes, lb_profile *out)
{
    const char *spec = lb_spec_text(sp);
    double v[2];
    out->kind = LB_PROFILE_STEP;
    if (numbers_of(sp, 2, v, "step needs RHO,MU, as in step:100,0.5")) return LB_EINVAL;
    out->rho = v[0];
    out->mu = v[1];
    if (out->rho < 1.0) return lb_error(LB_EINVAL, "imbalance '%s': RHO = %g must be >= 1", spec, out->rho);
    if (!(out->mu > 0.0 && out->mu < 1.0))
        return lb_error(LB_EINVAL, "imbalance '%s': MU = %g must be in (0, 1) (the fraction of minority classes)",
                        spec, out->mu);
    int minor = (int)floor(out->mu * n_classes + 0.5);
    if (n_classes >= 0 && (minor < 1 || minor >= n_classes))
        return lb_error(LB_EINVAL, "imbalance '%s': MU = %g of %d classes gives %d minority classes; need 1..%d",
                        spec, out->mu, n_classes, minor, n_classes - 1);
    return LB_OK;
}

static int parse_binary(const lb_spec *sp, int n_classes, const char *const *names, lb_profile *out)
{
    const char *spec = lb_spec_text(sp);
    out->kind = LB_PROFILE_BINARY;
    if (lb_spec_count(sp) > 0 || lb_spec_n_args(sp) != 2 || lb_parse_double(lb_spec_arg(sp, 1), &out->ratio))
        return lb_error(LB_EINVAL, "imbalance '%s': binary needs CLASS,RATIO, as in binary:6,50", spec);
    if (n_classes >= 0 && find_class(lb_spec_arg(sp, 0), n_classes, names, &out->pos_class) != 0)
        return lb_error(LB_EINVAL, "imbalance '%s': class '%s' is neither an index in [0, %d) nor a class name",
                        spec, lb_spec_arg(sp, 0), n_classes);
    if (!(out->ratio > 0.0))
        return lb_error(LB_EINVAL, "imbalance '%s': RATIO = %g must be > 0 (negatives per positive)", spec, out->ratio);
    if (n_classes >= 0 && n_classes < 2) return lb_error(LB_EINVAL, "imbalance '%s': binary needs at least 2 classes", spec);
    return LB_OK;
}

static int parse_counts(const lb_spec *sp, int n_classes, lb_profile *out)
{
    const char *spec = lb_spec_text(sp);
    int k = lb_spec_n_args(sp);
    out->kind = LB_PROFILE_COUNTS;
    if (lb_spec_count(sp) > 0 || k < 1)
        return lb_error(LB_EINVAL, "imbalance '%s': counts needs integers n0,n1,..., one per class", spec);
    for (int i = 0; i < k; i++) {
        int v;
        if (lb_parse_int(lb_spec_arg(sp, i), &v) != 0)
            return lb_error(LB_EINVAL, "imbalance '%s': counts needs integers n0,n1,..., one per class", spec);
        if (v < 1) return lb_error(LB_EINVAL, "imbalance '%s': count %d for rank %d must be >= 1", spec, v, i);
    }
    if (n_classes >= 0 && k != n_classes)
        return lb_error(LB_EINVAL, "imbalance '%s': %d counts given for %d classes", spec, k, n_classes);
    if (!(out->counts = lb_calloc((size_t)k, sizeof(int)))) return lb_error(LB_ENOMEM, "imbalance '%s': out of memory for %d counts", spec, k);
    for (int i = 0; i < k; i++) lb_parse_int(lb_spec_arg(sp, i), &out->counts[i]);
    out->n_counts = k;
    return LB_OK;
}

int lb_profile_parse(lb_profile *out, const char *spec, int n_classes, const char *const *class_names)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec || strcmp(spec, "none") == 0) return LB_OK;
    if (strchr(spec, '|'))
        return lb_error(LB_EINVAL, "imbalance '%s': '|' lists the profiles of a sweep, which libra-compare runs as one "
                                   "study per profile; one split takes one profile",
                        spec);
    lb_spec *sp = lb_spec_new(spec);
    if (!sp) {
        lb_error_prefix("imbalance");
        return lb_last_status();
    }
    const char *name = lb_spec_name(sp);
    int rc;
    if (strcmp(name, "longtail") == 0) rc = parse_longtail(sp, out);
    else if (strcmp(name, "step") == 0) rc = parse_step(sp, n_classes, out);
    else if (strcmp(name, "binary") == 0) rc = parse_binary(sp, n_classes, class_names, out);
    else if (strcmp(name, "counts") == 0) rc = parse_counts(sp, n_classes, out);
    else
        rc = lb_error(LB_EINVAL,
                      "imbalance '%s': unknown profile (expected none, longtail:RHO, step:RHO,MU, "
                      "binary:CLASS,RATIO or counts:n0,n1,...)", spec);
    lb_spec_free(sp);
    if (rc != LB_OK) lb_profile_free(out);
    return rc;
}

int lb_profile_check(const char *spec)
{
    lb_profile p;
    int rc = lb_profile_parse(&p, spec, -1, NULL);
    lb_profile_free(&p);
    return rc;
}

static void free_pieces(char **v, int n)
{
    for (int i = 0; i < n; i++) lb_free(v[i]);
    lb_free(v);
}

/* Piece `p` (k bytes) as a whole profile, or continuing `prev`. */
static char *profile_piece(const char *p, size_t k, const char *prev)
{
    if (isalpha((unsigned char)p[0]) || !prev) return lb_strndup(p, k);
    size_t keep = strlen(prev);
    while (keep > 0 && prev[keep - 1] != ':' && prev[keep - 1] != ',') keep--;
    return lb_strfmt("%.*s%.*s", (int)keep, prev, (int)k, p);
}

int lb_profile_list(const char *spec, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    char **v = NULL;
    int m = 0, rc = LB_OK;
    for (const char *p = spec ? spec : "";;) {
        size_t k = strcspn(p, "|");
        char **g = lb_realloc(v, ((size_t)m + 1) * sizeof *g);
        if (!g) {
            rc = lb_error(LB_ENOMEM, "imbalance '%s': out of memory", spec);
            break;
        }
        v = g;
        if (k == 0 && (strchr(spec, '|') || !*spec)) {
            rc = strchr(spec, '|') ? lb_error(LB_EINVAL, "imbalance '%s': an empty profile between '|'s", spec) : LB_OK;
            if (!strchr(spec, '|')) v[m++] = lb_strdup("none");
            break;
        }
        if (!isalpha((unsigned char)p[0]) && m == 0) {
            rc = lb_error(LB_EINVAL, "imbalance '%s': '%.*s' continues no profile (start with its name, longtail:10|50)",
                          spec, (int)k, p);
            break;
        }
        if (!(v[m] = profile_piece(p, k, m ? v[m - 1] : NULL))) {
            rc = lb_error(LB_ENOMEM, "imbalance '%s': out of memory", spec);
            break;
        }
        m++;
        if ((rc = lb_profile_check(v[m - 1])) != LB_OK) {
            lb_error_prefix("imbalance '%s'", spec);
            break;
        }
        for (int i = 0; i < m - 1 && rc == LB_OK; i++)
            if (!strcmp(v[i], v[m - 1])) rc = lb_error(LB_EINVAL, "imbalance '%s': '%s' is given twice", spec, v[i]);
        if (rc != LB_OK || !p[k]) break;
        p += k + 1;
    }
    if (rc != LB_OK) {
        free_pieces(v, m);
        return rc;
    }
    *out = v;
    *n = m;
    return LB_OK;
}

/* Classes by available count, largest first; ties keep the lower index first (a stable
 * insertion sort: C is small). */
static void order_by_count(const int *available, int C, int *order)
{
    for (int i = 1; i < C; i++) {
        int c = order[i], j = i;
        while (j > 0 && available[order[j - 1]] < available[c]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = c;
    }
}

int lb_order_parse(const char *spec, int n_classes, uint64_t seed, const int *available, int *order)
{
    for (int c = 0; c < n_classes; c++) order[c] = c;
    if (!spec || !*spec || strcmp(spec, "count") == 0) {
        if (available) order_by_count(available, n_classes, order);
        return LB_OK;
    }
    if (strcmp(spec, "natural") == 0) return LB_OK;
    if (strcmp(spec, "random") == 0) {
        lb_rng r;
        lb_rng_derive(&r, seed, LB_STREAM_ORDER);
        lb_rng_shuffle(&r, order, (size_t)n_classes);
        return LB_OK;
    }
    int *seen = lb_calloc((size_t)(n_classes > 0 ? n_classes : 1), sizeof(int));
    if (!seen) return lb_error(LB_ENOMEM, "order '%s': out of memory for %d classes", spec, n_classes);
    const char *p = spec;
    int k = 0, rc = LB_OK;
    while (rc == LB_OK) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char num[32];
        int v;
        if (len == 0 || len >= sizeof num) {
            rc = lb_error(LB_EINVAL, "order '%s': expected count, natural, random, or class indices like 3,1,0,...", spec);
            break;
        }
        memcpy(num, p, len);
        num[len] = '\0';
        if (lb_parse_int(num, &v) != 0 || v < 0 || v >= n_classes)
            rc = lb_error(LB_EINVAL, "order '%s': '%s' is not a class index in [0, %d)", spec, num, n_classes);
        else if (seen[v]++)
            rc = lb_error(LB_EINVAL, "order '%s': class %d appears twice", spec, v);
        else if (k < n_classes)
            order[k++] = v;
        if (!e) break;
        p = e + 1;
    }
    if (rc == LB_OK && k != n_classes)
        rc = lb_error(LB_EINVAL, "order '%s': names %d classes, the dataset has %d (give a permutation of all)",
                      spec, k, n_classes);
    lb_free(seen);
    if (rc)
        for (int c = 0; c < n_classes; c++) order[c] = c;
    return rc;
}

/* Longtail and step profiles: the class of rank k gets the head's size scaled down by the
 * profile, at least 1 and at most what it has. */
static int ranked_targets(const lb_profile *p, const int *available, int C, const int *order, int *targets)
{
    for (int c = 0; c < C; c++)
        if (available[c] < 1)
            return lb_error(LB_EINVAL, "class %d has no training images; a %s profile needs every class", c,
                            p->kind == LB_PROFILE_STEP ? "step" : "longtail");
    int n_max = available[order[0]];
    int minor = (int)floor(p->mu * C + 0.5);
    for (int k = 0; k < C; k++) {
        double t;
        if (p->kind == LB_PROFILE_LONGTAIL)
            t = C > 1 ? n_max * pow(p->rho, -(double)k / (C - 1)) : n_max;
        else
            t = k >= C - minor ? n_max / p->rho : n_max;
        int v = (int)floor(t + FLOOR_EPS);
        if (v < 1) v = 1; /* never drop a class entirely */
        targets[order[k]] = v < available[order[k]] ? v : available[order[k]];
    }
    return LB_OK;
}

/* Counts profile: the class of rank k gets counts[k], which must be available. */
static int counts_targets(const lb_profile *p, const int *available, int C, const int *order, int *targets)
{
    if (p->n_counts != C) return lb_error(LB_EINVAL, "counts profile has %d counts for %d classes", p->n_counts, C);
    for (int k = 0; k < C; k++) {
        int c = order[k];
        if (p->counts[k] > available[c])
            return lb_error(LB_EINVAL, "counts: rank %d (class %d) asks %d images but %d are available",
                            k, c, p->counts[k], available[c]);
        targets[c] = p->counts[k];
    }
    return LB_OK;
}

/* Spreads n_neg negatives over the classes other than pos in proportion to their size, by
 * largest remainder (ties to the lower class index). */
static void spread_negatives(const int *available, int C, int pos, long long neg_avail, long long n_neg,
                             int *targets)
{
    long long given = 0;
    for (int c = 0; c < C; c++) {
        targets[c] = 0;
        if (c == pos || neg_avail == 0) continue;
        targets[c] = (int)(n_neg * available[c] / neg_avail);
        given += targets[c];
    }
    while (given < n_neg) {
        int best = -1;
        long long best_rem = -1;
        for (int c = 0; c < C; c++) {
            if (c == pos || targets[c] >= available[c]) continue;
            long long rem = (n_neg * available[c]) % neg_avail;
            /* a class already topped up once in this pass has used its remainder */
            if ((long long)targets[c] > n_neg * available[c] / neg_avail) rem = -1;
            if (rem > best_rem) {
                best_rem = rem;
                best = c;
            }
        }
        if (best < 0) break;
        targets[best]++;
        given++;
    }
}

/* Binary profile: as many positives as the negatives allow at `ratio` negatives each. */
static int binary_targets(const lb_profile *p, const int *available, int C, int *targets)
{
    int pos = p->pos_class;
    if (pos < 0 || pos >= C) return lb_error(LB_EINVAL, "binary: positive class %d outside [0, %d)", pos, C);
    long long neg_avail = 0;
    for (int c = 0; c < C; c++)
        if (c != pos) neg_avail += available[c];
    /* clamped in double: a tiny RATIO (1e-300) gives a quotient no integer type holds,
     * and converting it would be undefined (found with fuzz/fuzz_spec.c under UBSan) */
    double q = floor((double)neg_avail / p->ratio + FLOOR_EPS);
    long long n_pos = q < (double)available[pos] ? (long long)q : available[pos];
    if (n_pos < 1)
        return lb_error(LB_EINVAL, "binary: %d positives and %lld negatives available cannot give %g negatives per positive",
                        available[pos], neg_avail, p->ratio);
    long long n_neg = (long long)floor((double)n_pos * p->ratio + 0.5);
    if (n_neg > neg_avail) n_neg = neg_avail;
    spread_negatives(available, C, pos, neg_avail, n_neg, targets);
    targets[pos] = (int)n_pos;
    return LB_OK;
}

int lb_profile_targets(const lb_profile *p, const int *available, int n_classes,
                       const int *order, int *targets)
{
    if (n_classes < 1) return lb_error(LB_EINVAL, "no classes");
    int C = n_classes;
    switch (p->kind) {
    case LB_PROFILE_NONE:
        for (int c = 0; c < C; c++) targets[c] = available[c];
        return LB_OK;
    case LB_PROFILE_LONGTAIL:
    case LB_PROFILE_STEP:
        return ranked_targets(p, available, C, order, targets);
    case LB_PROFILE_COUNTS:
        return counts_targets(p, available, C, order, targets);
    case LB_PROFILE_BINARY:
        return binary_targets(p, available, C, targets);
    }
    return lb_error(LB_EINVAL, "unknown profile kind %d", (int)p->kind);
}

int lb_stratified_split(const int *idx, const int *y, int n, int n_classes, double frac,
                        lb_rng *rng, int *a, int *na, int *b, int *nb)
{
    *na = *nb = 0;
    if (!(frac >= 0.0 && frac < 1.0)) return lb_error(LB_EINVAL, "split fraction %g must be in [0, 1)", frac);
    int *start = lb_malloc(sizeof(int) * ((size_t)n_classes + 1));
    int *grouped = lb_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int rc = start && grouped ? lb_group_by_class(y, n, n_classes, start, grouped)
                              : lb_error(LB_ENOMEM, "out of memory splitting %d items", n);
    for (int c = 0; rc == LB_OK && c < n_classes; c++) {
        int m = start[c + 1] - start[c];
        int *g = grouped + start[c];
        for (int i = 0; i < m; i++) g[i] = idx[g[i]];
        int k = (int)floor(frac * m + 0.5);
        if (frac > 0 && m >= 2 && k < 1) k = 1;
        if (k > m - 1) k = m > 0 ? m - 1 : 0;
        lb_rng_subset(rng, g, m, k);
        for (int i = 0; i < k; i++) b[(*nb)++] = g[i];
        for (int i = k; i < m; i++) a[(*na)++] = g[i];
    }
    if (rc == LB_OK) {
        qsort(a, (size_t)*na, sizeof(int), lb__cmp_int);
        qsort(b, (size_t)*nb, sizeof(int), lb__cmp_int);
    }
    lb_free(start);
    lb_free(grouped);
    return rc;
}

void lb_split_free(lb_split *s)
{
    if (!s) return;
    lb__free_names(s->class_names, s->n_classes);
    lb_free(s->label_map);
    lb_free(s->profile);
    lb_free(s->order);
    lb_free(s->available);
    lb_free(s->kept);
    lb_free(s->train_idx);
    lb_free(s->train_y);
    lb_free(s->val_idx);
    lb_free(s->val_y);
    lb_free(s->test_idx);
    lb_free(s->test_y);
    lb_free(s->train_counts);
    lb_free(s->val_counts);
    lb_free(s->test_counts);
    lb_notes_free(&s->warnings);
    memset(s, 0, sizeof *s);
}

/* The task classes: the source's, or { rest, CLASS } under a binary profile. */
static int task_classes(lb_split *out, const lb_dataset *train, const lb_profile *prof)
{
    int C = train->n_classes;
    if (prof->kind == LB_PROFILE_BINARY) {
        out->n_classes = 2;
        for (int c = 0; c < C; c++) out->label_map[c] = c == prof->pos_class ? 1 : 0;
        const char *names[2] = {"rest", train->class_names[prof->pos_class]};
        out->class_names = lb__names(2, names);
    } else {
        out->n_classes = C;
        for (int c = 0; c < C; c++) out->label_map[c] = c;
        out->class_names = lb__names(C, (const char *const *)train->class_names);
    }
    if (out->class_names) return LB_OK;
    int n = out->n_classes;
    out->n_classes = 0;
    return lb_error(LB_ENOMEM, "out of memory for the names of %d classes", n);
}

/* Per class, a seeded random subset of the pool of targets[c] images: kept_idx (sorted) gets
 * them, out->kept the counts. */
static int select_kept(lb_split *out, const lb_dataset *train, const int *pool, int n_pool, const int *targets,
                       int *kept_idx, int *n_kept)
{
    int C = train->n_classes;
    int *start = lb_malloc(sizeof(int) * ((size_t)C + 1)), *lab = lb_malloc(sizeof(int) * (size_t)(n_pool + 1));
    int *g = lb_malloc(sizeof(int) * (size_t)(n_pool + 1));
    int rc = start && lab && g ? LB_OK : lb_error(LB_ENOMEM, "out of memory building the split");
    for (int i = 0; rc == LB_OK && i < n_pool; i++) lab[i] = train->labels[pool ? pool[i] : i];
    if (rc == LB_OK) rc = lb_group_by_class(lab, n_pool, C, start, g);
    lb_rng rng;
    lb_rng_derive(&rng, out->seed, LB_STREAM_SELECT);
    *n_kept = 0;
    for (int c = 0; rc == LB_OK && c < C; c++) {
        int *gc = g + start[c], m = start[c + 1] - start[c];
        for (int i = 0; i < m; i++) gc[i] = pool ? pool[gc[i]] : gc[i];
        lb_rng_subset(&rng, gc, m, targets[c]);
        for (int i = 0; i < targets[c]; i++) kept_idx[(*n_kept)++] = gc[i];
        out->kept[c] = targets[c];
    }
    if (rc == LB_OK) qsort(kept_idx, (size_t)*n_kept, sizeof(int), lb__cmp_int);
    lb_free(start);
    lb_free(lab);
    lb_free(g);
    return rc;
}

/* The task labels y[i] = label_map[labels[idx[i]]] of n entries, and their counts. */
static int *task_labels(const lb_split *out, const lb_dataset *ds, const int *idx, int n, int *counts)
{
    int *y = lb_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!y) {
        lb_error(LB_ENOMEM, "out of memory building the split");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        y[i] = out->label_map[ds->labels[idx[i]]];
        counts[y[i]]++;
    }
    return y;
}

/* Validation (stratified on the task labels) out of the kept images, or the given list;
 * then every index list with its labels and counts. */
static int fill_lists(lb_split *out, const lb_split_input *in, const int *kept_idx, int n_kept, double val_frac)
{
    int K = out->n_classes, n_test = in->n_test;
    int *kept_y = lb_malloc(sizeof(int) * (size_t)(n_kept + 1));
    out->train_idx = lb_malloc(sizeof(int) * (size_t)(n_kept + 1));
    out->val_idx = lb_malloc(sizeof(int) * (size_t)(n_kept + in->n_val + 1));
    out->test_idx = lb_malloc(sizeof(int) * (size_t)(n_test + 1));
    out->train_counts = lb_calloc((size_t)K, sizeof(int));
    out->val_counts = lb_calloc((size_t)K, sizeof(int));
    out->test_counts = lb_calloc((size_t)K, sizeof(int));
    int rc = LB_OK;
    if (!kept_y || !out->train_idx || !out->val_idx || !out->test_idx || !out->train_counts || !out->val_counts ||
        !out->test_counts)
        rc = lb_error(LB_ENOMEM, "out of memory building the split");
    for (int i = 0; rc == LB_OK && i < n_kept; i++) kept_y[i] = out->label_map[in->train->labels[kept_idx[i]]];
    lb_rng rng;
    lb_rng_derive(&rng, out->seed, LB_STREAM_VAL);
    if (rc == LB_OK)
        rc = lb_stratified_split(kept_idx, kept_y, n_kept, K, in->val ? 0.0 : val_frac, &rng, out->train_idx,
                                 &out->n_train, out->val_idx, &out->n_val);
    lb_free(kept_y);
    if (rc != LB_OK) return rc;
    if (in->val) { /* the source's own validation images, as they are */
        memcpy(out->val_idx, in->val, sizeof(int) * (size_t)in->n_val);
        out->n_val = in->n_val;
        qsort(out->val_idx, (size_t)out->n_val, sizeof(int), lb__cmp_int);
    }
    out->n_test = n_test;
    for (int i = 0; i < n_test; i++) out->test_idx[i] = in->test_idx ? in->test_idx[i] : i;
    if (in->test_idx) qsort(out->test_idx, (size_t)n_test, sizeof(int), lb__cmp_int);
    if (!(out->train_y = task_labels(out, in->train, out->train_idx, out->n_train, out->train_counts)) ||
        !(out->val_y = task_labels(out, in->train, out->val_idx, out->n_val, out->val_counts)) ||
        !(out->test_y = task_labels(out, in->test, out->test_idx, n_test, out->test_counts)))
        return LB_ENOMEM;
    return LB_OK;
}

static int check_index_list(const int *idx, int n, const lb_dataset *ds, const char *what)
{
    for (int i = 0; idx && i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n) return lb_error(LB_EINVAL, "%s index %d outside [0, %d)", what, idx[i], ds->n);
    return LB_OK;
}

static int check_split_args(const lb_split_input *in, double val_frac)
{
    if (!(val_frac >= 0.0 && val_frac < 1.0))
        return lb_error(LB_EINVAL, "validation fraction %g must be in [0, 1)", val_frac);
    if (in->test && in->test->n_classes != in->train->n_classes)
        return lb_error(LB_EINVAL, "test set has %d classes, training set %d", in->test->n_classes, in->train->n_classes);
    int rc = check_index_list(in->pool, in->n_pool, in->train, "training pool");
    if (rc == LB_OK) rc = check_index_list(in->val, in->n_val, in->train, "validation");
    if (rc == LB_OK && in->test) rc = check_index_list(in->test_idx, in->n_test, in->test, "test");
    return rc;
}

/* Longtail and step on data that is already imbalanced: a class the profile would give more
 * than it has keeps what it has, and an order that makes a smaller class the head inverts the
 * existing imbalance. Both are said. */
static int profile_warnings(lb_split *out, const lb_profile *prof, const int *targets, int C, const char *const *names)
{
    if (prof->kind != LB_PROFILE_LONGTAIL && prof->kind != LB_PROFILE_STEP) return LB_OK;
    int *even = lb_malloc(sizeof(int) * (size_t)C), *asked = lb_malloc(sizeof(int) * (size_t)C);
    int rc = even && asked ? LB_OK : lb_error(LB_ENOMEM, "out of memory building the split");
    for (int c = 0; rc == LB_OK && c < C; c++) even[c] = out->available[out->order[0]];
    if (rc == LB_OK) rc = lb_profile_targets(prof, even, C, out->order, asked); /* the profile's own numbers */
    for (int c = 0; rc == LB_OK && c < C; c++)
        if (asked[c] > out->available[c])
            rc = lb_notes_add(&out->warnings, "imbalance '%s': class '%s' keeps all its %d training images (the profile asks %d)",
                              out->profile, names[c], out->available[c], asked[c]);
    for (int a = 0; rc == LB_OK && a < C; a++)
        for (int b = 0; rc == LB_OK && b < C; b++)
            if (out->available[a] > out->available[b] && targets[a] < targets[b]) {
                rc = lb_notes_add(&out->warnings,
                                  "imbalance '%s': class '%s' (%d available) gets fewer images than '%s' (%d available): "
                                  "this order inverts the existing imbalance (--order count keeps it)",
                                  out->profile, names[a], out->available[a], names[b], out->available[b]);
                a = C; /* one such message is enough */
                break;
            }
    lb_free(even);
    lb_free(asked);
    return rc;
}

int lb_split_init(lb_split *out, const lb_split_input *in, const char *profile_spec, const char *order_spec,
                  double val_frac, uint64_t seed)
{
    memset(out, 0, sizeof *out);
    lb_split_input inp = *in;
    const lb_dataset *train = inp.train;
    const int C = train->n_classes;
    if (!inp.pool) inp.n_pool = train->n;
    if (!inp.val) inp.n_val = 0;
    if (inp.test && !inp.test_idx) inp.n_test = inp.test->n;
    if (!inp.test) inp.n_test = 0;
    int rc = check_split_args(&inp, val_frac);
    if (rc) return rc;
    lb_profile prof;
    if ((rc = lb_profile_parse(&prof, profile_spec, C, (const char *const *)train->class_names)) != LB_OK) return rc;
    out->seed = seed;
    out->n_source_classes = C;
    out->profile = lb_strdup(profile_spec && *profile_spec ? profile_spec : "none");
    out->order = lb_malloc(sizeof(int) * (size_t)C);
    out->available = lb_calloc((size_t)C, sizeof(int));
    out->kept = lb_calloc((size_t)C, sizeof(int));
    out->label_map = lb_malloc(sizeof(int) * (size_t)C);
    int *targets = lb_calloc((size_t)C, sizeof(int)), *kept_idx = lb_malloc(sizeof(int) * (size_t)(inp.n_pool + 1));
    int n_kept = 0;
    if (!out->profile || !out->order || !out->available || !out->kept || !out->label_map || !targets || !kept_idx)
        rc = lb_error(LB_ENOMEM, "out of memory building the split");
    for (int i = 0; rc == LB_OK && i < inp.n_pool; i++) out->available[train->labels[inp.pool ? inp.pool[i] : i]]++;
    if (rc == LB_OK) rc = lb_order_parse(order_spec, C, seed, out->available, out->order);
    if (rc == LB_OK && (rc = lb_profile_targets(&prof, out->available, C, out->order, targets)) != LB_OK)
        lb_error_prefix("imbalance '%s'", out->profile);
    if (rc == LB_OK) rc = profile_warnings(out, &prof, targets, C, (const char *const *)train->class_names);
    if (rc == LB_OK) rc = task_classes(out, train, &prof);
    if (rc == LB_OK) rc = select_kept(out, train, inp.pool, inp.n_pool, targets, kept_idx, &n_kept);
    if (rc == LB_OK) rc = fill_lists(out, &inp, kept_idx, n_kept, val_frac);
    lb_profile_free(&prof);
    lb_free(targets);
    lb_free(kept_idx);
    if (rc) lb_split_free(out);
    return rc;
}

/* ---- the balanced counterpart of a split ---- */

static int binary_balanced(const lb_split *sp, const lb_profile *p, const char *const *names, lb_buf *spec,
                           lb_buf *note)
{
    int pos = p->pos_class, neg = 0;
    for (int c = 0; c < sp->n_source_classes; c++)
        if (c != pos) neg += sp->available[c];
    int n = sp->available[pos] < neg ? sp->available[pos] : neg;
    lb_buf_printf(spec, "binary:%d,1", pos);
    lb_buf_printf(note, "the largest balanced set the source has: %d images of '%s' and %d of the rest (%d in all, "
                        "against %d kept by %s)",
                  n, names ? names[pos] : "", n, 2 * n, sp->n_train + sp->n_val, sp->profile);
    return LB_OK;
}

int lb_balanced_profile(const lb_split *sp, const char *const *names, lb_buf *spec, lb_buf *note)
{
    const int C = sp->n_source_classes;
    lb_profile p;
    int rc = lb_profile_parse(&p, sp->profile, C, names);
    if (rc != LB_OK) return rc;
    if (p.kind == LB_PROFILE_BINARY) {
        rc = binary_balanced(sp, &p, names, spec, note);
        lb_profile_free(&p);
        return rc == LB_OK ? lb_buf_status(spec, "balanced profile") : rc;
    }
    lb_profile_free(&p);
    int total = 0, capped = 0, got = 0;
    for (int c = 0; c < C; c++) total += sp->kept[c];
    int n = total / C;
    lb_buf_puts(spec, "counts:");
    for (int r = 0; r < C; r++) {
        int c = sp->order[r], k = sp->available[c] < n ? sp->available[c] : n;
        lb_buf_printf(spec, "%s%d", r ? "," : "", k);
        got += k;
        capped += k < n;
    }
    if (!capped)
        lb_buf_printf(note, "%d images per class (%d in all): the same total size as the %d images %s kept", n, got,
                      total, sp->profile);
    else
        lb_buf_printf(note, "%d images per class where the source has them (%d in all, against the %d images %s kept)",
                      n, got, total, sp->profile);
    for (int r = 0, first = 1; capped && r < C; r++) {
        int c = sp->order[r];
        if (sp->available[c] >= n) continue;
        lb_buf_printf(note, "%s '%s' has only %d", first ? "; capped where the source has fewer:" : ",",
                      names ? names[c] : "", sp->available[c]);
        first = 0;
    }
    return lb_buf_status(spec, "balanced profile");
}

int lb_full_balanced_profile(const lb_split *sp, const char *const *names, lb_buf *spec, lb_buf *note)
{
    const int C = sp->n_source_classes;
    lb_profile p;
    int rc = lb_profile_parse(&p, sp->profile, C, names);
    if (rc != LB_OK) return rc;
    int binary = p.kind == LB_PROFILE_BINARY;
    lb_profile_free(&p);
    if (binary) return lb_balanced_profile(sp, names, spec, note);
    int m = sp->available[0], fewest = 0;
    for (int c = 1; c < C; c++)
        if (sp->available[c] < m) m = sp->available[fewest = c];
    lb_buf_puts(spec, "counts:");
    for (int r = 0; r < C; r++) lb_buf_printf(spec, "%s%d", r ? "," : "", m);
    lb_buf_printf(note, "the largest balanced set the source has: %d images per class (%d in all; '%s' has %d), against "
                        "the %d images %s kept",
                  m, m * C, names ? names[fewest] : "", m, sp->n_train + sp->n_val, sp->profile);
    return lb_buf_status(spec, "balanced profile");
}
