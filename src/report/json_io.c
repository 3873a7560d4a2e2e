/* results.json, the per-run record files, and reading a record back (for --resume). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

#define FORMAT_VERSION 2

/* ---- writing ---- */

void lb__jw_curve(lb_jw *w, const char *key, const lb_curve *c)
{
    lb_jw_array(w, key, 1);
    for (size_t i = 0; i < c->n; i++) {
        lb_jw_array(w, NULL, 1);
        lb_jw_int(w, NULL, c->step[i]);
        lb_jw_float(w, NULL, c->value[i]);
        lb_jw_end(w, ']');
    }
    lb_jw_end(w, ']');
}

static void put_xy(lb_jw *w, const char *key, const lb_xy *c)
{
    lb_jw_array(w, key, 1);
    for (size_t i = 0; i < c->n; i++) {
        lb_jw_array(w, NULL, 1);
        lb_jw_float(w, NULL, c->x[i]);
        lb_jw_float(w, NULL, c->y[i]);
        lb_jw_end(w, ']');
    }
    lb_jw_end(w, ']');
}

static void put_operating_point(lb_jw *w, const lb_operating_point *op)
{
    lb_jw_object(w, "operating_point", 1);
    lb_jw_int(w, "class", op->positive);
    lb_jw_float(w, "target_recall", op->target_recall);
    lb_jw_float(w, "threshold", op->threshold);
    lb_jw_float(w, "val_recall", op->val_recall);
    lb_jw_float(w, "val_precision", op->val_precision);
    lb_jw_float(w, "test_recall", op->test_recall);
    lb_jw_float(w, "test_precision", op->test_precision);
    lb_jw_end(w, '}');
}

static void put_metrics(lb_jw *w, const char *key, const lb_metrics *m)
{
    lb_jw_object(w, key, 0);
    lb_jw_metrics(w, m);
    lb_jw_end(w, '}');
}

static void put_posthoc(lb_jw *w, const lb_run_record *r)
{
    lb_jw_array(w, "posthoc", 1);
    for (size_t i = 0; i < r->n_posthoc; i++) {
        lb_jw_object(w, NULL, 0);
        lb_jw_string(w, "name", r->posthoc[i].name);
        lb_jw_float(w, "tau", r->posthoc[i].tau);
        if (r->posthoc[i].steps >= 0) { /* a stage */
            lb_jw_int(w, "start_step", r->posthoc[i].start_step);
            lb_jw_int(w, "steps", r->posthoc[i].steps);
        }
        put_metrics(w, "metrics", &r->posthoc[i].metrics);
        lb_jw_end(w, '}');
    }
    lb_jw_end(w, ']');
}

static void put_grid(lb_jw *w, const lb_run_record *r)
{
    lb_jw_object(w, "grid", 0);
    lb_jw_int(w, "chosen", r->grid_chosen);
    lb_jw_array(w, "points", 0);
    for (size_t i = 0; i < r->n_grid; i++) {
        lb_jw_object(w, NULL, 1);
        lb_jw_string(w, "spec", r->grid[i].spec);
        lb_jw_float(w, "val_balanced_accuracy", r->grid[i].val_balanced_accuracy);
        lb_jw_end(w, '}');
    }
    lb_jw_end(w, ']');
    lb_jw_end(w, '}');
}

/* One record as a block object; with_format adds the keys of a record file of its own; with
 * prefix, its predictions path is relative to the folder above (a sweep's). */
static void put_record_in(lb_jw *w, const lb_run_record *r, int with_format, const char *prefix)
{
    lb_jw_object(w, NULL, 0);
    if (with_format) {
        lb_jw_string(w, "format", "libra-run");
        lb_jw_int(w, "format_version", FORMAT_VERSION);
        lb_jw_string(w, "libra_version", lb_version());
    }
    lb_jw_string(w, "strategy", r->strategy);
    lb_jw_uint(w, "seed", r->seed);
    lb_jw_int(w, "steps", r->steps);
    lb_jw_float(w, "wall_seconds", r->wall_seconds);
    lb_jw_float(w, "images_per_sec", r->images_per_sec);
    if (r->rank >= 0) lb_jw_int(w, "rank", r->rank); /* a study across ranks: who trained it */
    if (r->predictions && !prefix) lb_jw_string(w, "predictions", r->predictions);
    if (r->predictions && prefix) {
        char *p = lb_strfmt("%s/%s", prefix, r->predictions);
        lb_jw_string(w, "predictions", p ? p : r->predictions);
        lb_free(p);
    }
    if (r->profile) lb_jw_string(w, "profile", r->profile);
    put_metrics(w, "metrics", &r->metrics);
    if (r->warnings.n) lb_jw_notes(w, "warnings", &r->warnings);
    put_posthoc(w, r);
    lb_jw_object(w, "curves", 0);
    lb__jw_curve(w, "loss", &r->loss);
    lb__jw_curve(w, "val_balanced_accuracy", &r->val_bacc);
    if (r->pr.n) put_xy(w, "pr", &r->pr); /* binary tasks: class 1 on the test split */
    if (r->roc.n) put_xy(w, "roc", &r->roc);
    lb_jw_end(w, '}');
    if (r->op.set) put_operating_point(w, &r->op);
    put_grid(w, r);
    lb_jw_end(w, '}');
}

static void put_record(lb_jw *w, const lb_run_record *r, int with_format) { put_record_in(w, r, with_format, NULL); }

void lb__jw_record(lb_jw *w, const lb_run_record *r, const char *prefix) { put_record_in(w, r, 0, prefix); }

void lb__jw_summary_row(lb_jw *w, const lb_summary_row *r)
{
    lb_jw_object(w, NULL, 0);
    if (r->profile) lb_jw_string(w, "profile", r->profile);
    lb_jw_string(w, "strategy", r->strategy);
    lb_jw_string(w, "variant", r->variant);
    lb_jw_int(w, "seeds", r->n_seeds);
    lb_jw_object(w, "balanced_accuracy", 1);
    lb_jw_float(w, "mean", r->bacc);
    lb_jw_array(w, "ci95", 1);
    lb_jw_float(w, NULL, r->bacc_lo);
    lb_jw_float(w, NULL, r->bacc_hi);
    lb_jw_end(w, ']');
    lb_jw_end(w, '}');
    lb_jw_object(w, "minority_recall", 1);
    lb_jw_float(w, "mean", r->minority_recall);
    lb_jw_float(w, "sd", r->minority_recall_sd);
    lb_jw_end(w, '}');
    lb_jw_float(w, "macro_f1", r->macro_f1);
    if (r->has_diff) {
        lb_jw_object(w, "vs_baseline", 1);
        lb_jw_float(w, "diff", r->diff);
        lb_jw_array(w, "ci95", 1);
        lb_jw_float(w, NULL, r->diff_lo);
        lb_jw_float(w, NULL, r->diff_hi);
        lb_jw_end(w, ']');
        lb_jw_bool(w, "excludes_zero", r->diff_excludes_zero);
        lb_jw_end(w, '}');
    }
    lb_jw_bool(w, "best", r->best);
    lb_jw_bool(w, "same_as_best", r->same_as_best);
    lb_jw_float(w, "gap_recovered", r->gap_recovered);
    lb_jw_end(w, '}');
}

void lb__jw_summary_rows(lb_jw *w, const lb_summary_row *rows, size_t n)
{
    lb_jw_array(w, "summary", 0);
    for (size_t i = 0; i < n; i++) lb__jw_summary_row(w, &rows[i]);
    lb_jw_end(w, ']');
}

void lb__jw_summary(lb_jw *w, const lb_results *s)
{
    if (s->boot_resamples > 0) {
        lb_jw_object(w, "bootstrap", 1);
        lb_jw_string(w, "over", "test images and seeds, paired");
        lb_jw_int(w, "resamples", s->boot_resamples);
        lb_jw_uint(w, "seed", s->boot_seed);
        lb_jw_end(w, '}');
    }
    for (int k = 0; k < 2; k++) {
        const char *prof = k ? s->oracle_full_profile : s->oracle_profile;
        if (!prof) continue;
        lb_jw_object(w, k ? "oracle_full" : "oracle", 0);
        lb_jw_string(w, "profile", prof);
        lb_jw_string(w, "note", k ? s->oracle_full_note : s->oracle_note);
        lb_jw_end(w, '}');
    }
    if (s->n_summary) lb__jw_summary_rows(w, s->summary, s->n_summary);
}

/* What every writer checks before it formats a record. */
static int check_record(const lb_run_record *r, int n_classes, const char *path, size_t index)
{
    const char *what = NULL;
    int got = r->metrics.n_classes;
    if (got < 1)
        what = "has no metrics";
    else if (n_classes > 0 && got != n_classes)
        what = "has metrics for another class count";
    for (size_t i = 0; !what && i < r->n_posthoc; i++)
        if (r->posthoc[i].metrics.n_classes != got)
            what = "has a post-hoc variant with another class count";
    if (!what && r->grid_chosen >= 0 && (size_t)r->grid_chosen >= r->n_grid)
        what = "chooses a grid point it does not have";
    if (!what && r->grid_chosen < -1) what = "has grid_chosen < -1";
    if (!what) return LB_OK;
    return lb_error(LB_EINVAL,
                    "%s: run %zu (strategy \"%s\", seed %" PRIu64
                    ") %s (metrics classes %d, dataset %d)",
                    path, index, r->strategy ? r->strategy : "", r->seed, what, got, n_classes);
}

int lb_run_record_to_json(const lb_run_record *r, lb_buf *out)
{
    int st = check_record(r, 0, "a run record", 0);
    if (st) return st;
    lb_jw w;
    lb_jw_init(&w, out);
    put_record(&w, r, 1);
    lb_buf_put(out, "\n", 1);
    return lb_buf_status(out, "a run record");
}

int lb_run_record_write_json(const lb_run_record *r, const char *path)
{
    int st = check_record(r, 0, path, 0);
    if (st) return st;
    lb_buf b = {0};
    st = lb_run_record_to_json(r, &b);
    if (st == LB_OK) st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

void lb__jw_dataset(lb_jw *w, const lb_dataset_info *d)
{
    lb_jw_object(w, "dataset", 0);
    lb_jw_string(w, "source", d->source);
    lb_jw_string(w, "profile", d->profile);
    lb_jw_uint(w, "split_seed", d->split_seed);
    lb_jw_int(w, "n_classes", d->n_classes);
    lb_jw_array(w, "classes", 0);
    for (int c = 0; c < d->n_classes; c++) {
        lb_jw_object(w, NULL, 1);
        lb_jw_string(w, "name", d->class_names[c]);
        lb_jw_int(w, "train", d->train_counts[c]);
        lb_jw_int(w, "val", d->val_counts[c]);
        lb_jw_int(w, "test", d->test_counts[c]);
        lb_jw_end(w, '}');
    }
    lb_jw_end(w, ']');
    lb_jw_int(w, "skipped_files", d->n_skipped);
    lb_jw_notes(w, "warnings", &d->warnings);
    lb_jw_end(w, '}');
}

int lb__check_records(const lb_results *s, const char *path)
{
    const lb_dataset_info *d = &s->dataset;
    if (d->n_classes < 1)
        return lb_error(LB_EINVAL, "%s: the study has no dataset description (call lb_results_set_dataset)", path);
    for (size_t i = 0; i < s->n_runs; i++) {
        int st = check_record(&s->runs[i], d->n_classes, path, i);
        if (st) return st;
    }
    return LB_OK;
}

int lb_report_write_json(const lb_results *s, const char *path)
{
    const lb_dataset_info *d = &s->dataset;
    int st0 = lb__check_records(s, path);
    if (st0) return st0;
    lb_buf b = {0};
    lb_jw w;
    lb_jw_init(&w, &b);
    lb_jw_object(&w, NULL, 0);
    lb_jw_string(&w, "format", "libra-results");
    lb_jw_int(&w, "format_version", FORMAT_VERSION);
    lb_jw_string(&w, "libra_version", lb_version());
    lb_jw_string(&w, "title", s->title ? s->title : "libra imbalance study");
    lb_jw_string(&w, "baseline", s->baseline ? s->baseline : "ce");
    lb__jw_dataset(&w, d);
    lb_jw_object(&w, "flags", 0);
    for (size_t i = 0; i < s->n_flags; i++) lb_jw_string(&w, s->flags[i].key, s->flags[i].value);
    lb_jw_end(&w, '}');
    lb__jw_summary(&w, s);
    lb_jw_array(&w, "runs", 0);
    for (size_t i = 0; i < s->n_runs; i++) put_record(&w, &s->runs[i], 0);
    lb_jw_end(&w, ']');
    lb_jw_end(&w, '}');
    lb_buf_puts(&b, "\n");
    int st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

/* ---- reading a record back ---- */

#define MAX_CLASSES 100000

int lb__json_bad(const char *path, const lb_json *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lb_error(LB_EFORMAT, "%s:%d:%d: %s", path, at->line, at->col, msg);
}

/* Every key of obj must be one of `allowed` (a NULL-terminated list). */
int lb__json_only_keys(const char *path, const lb_json *obj, const char *where,
                     const char *const *allowed)
{
    for (size_t i = 0; i < obj->n; i++) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, obj->keys[i])) a++;
        if (!*a) return lb__json_bad(path, &obj->items[i], "unknown key \"%s\" in %s", obj->keys[i], where);
    }
    return LB_OK;
}

int lb__json_member(const char *path, const lb_json *obj, const char *k, lb_json_type t,
                  const lb_json **out)
{
    const lb_json *v = lb__json_get(obj, k);
    if (!v) return lb__json_bad(path, obj, "missing key \"%s\" in this object", k);
    if (v->type != t)
        return lb__json_bad(path, v, "\"%s\" must be %s %s, found %s", k,
                   t == LB_JSON_ARRAY || t == LB_JSON_OBJECT ? "an" : "a", lb__json_type_name(t),
                   lb__json_type_name(v->type));
    *out = v;
    return LB_OK;
}

/* A number (or null = NaN) as a float. */
int lb__json_to_float(const char *path, const lb_json *v, const char *what, float *out)
{
    if (v->type == LB_JSON_NULL) {
        *out = NAN;
        return LB_OK;
    }
    if (v->type != LB_JSON_NUMBER)
        return lb__json_bad(path, v, "%s must be a number or null, found %s", what,
                   lb__json_type_name(v->type));
    *out = strtof(v->str, NULL);
    if (!isfinite(*out)) return lb__json_bad(path, v, "%s = %s does not fit a float", what, v->str);
    return LB_OK;
}

int lb__json_to_int64(const char *path, const lb_json *v, const char *what, int64_t lo, int64_t *out)
{
    if (v->type != LB_JSON_NUMBER || strpbrk(v->str, ".eE"))
        return lb__json_bad(path, v, "%s must be an integer, found %s", what,
                   v->type == LB_JSON_NUMBER ? v->str : lb__json_type_name(v->type));
    errno = 0;
    long long x = strtoll(v->str, NULL, 10);
    if (errno == ERANGE || x < lo) return lb__json_bad(path, v, "%s = %s is out of range", what, v->str);
    *out = (int64_t)x;
    return LB_OK;
}

int lb__json_get_float(const char *path, const lb_json *obj, const char *k, float *out)
{
    const lb_json *v = lb__json_get(obj, k);
    if (!v) return lb__json_bad(path, obj, "missing key \"%s\" in this object", k);
    return lb__json_to_float(path, v, k, out);
}

int lb__json_get_int64(const char *path, const lb_json *obj, const char *k, int64_t lo, int64_t *out)
{
    const lb_json *v = lb__json_get(obj, k);
    if (!v) return lb__json_bad(path, obj, "missing key \"%s\" in this object", k);
    return lb__json_to_int64(path, v, k, lo, out);
}

int lb__json_get_string(const char *path, const lb_json *obj, const char *k, char **out)
{
    const lb_json *v = NULL;
    int st = lb__json_member(path, obj, k, LB_JSON_STRING, &v);
    if (st) return st;
    *out = lb_strdup(v->str);
    return *out ? LB_OK : lb_error(LB_ENOMEM, "%s: out of memory", path);
}

static int get_float_array(const char *path, const lb_json *obj, const char *k, size_t n,
                           float *out)
{
    const lb_json *v = NULL;
    int st = lb__json_member(path, obj, k, LB_JSON_ARRAY, &v);
    if (st) return st;
    if (v->n != n)
        return lb__json_bad(path, v, "\"%s\" has %zu values, expected %zu (one per class)", k, v->n, n);
    for (size_t i = 0; i < n && !st; i++) st = lb__json_to_float(path, &v->items[i], k, &out[i]);
    return st;
}

static int read_metrics(const char *path, const lb_json *obj, lb_metrics *m)
{
    const char *keys[LB_N_METRIC_FIELDS + 8] = {"n_classes", "n", "classes_scored"};
    for (int i = 0; i < LB_N_METRIC_FIELDS; i++) keys[3 + i] = lb_metric_fields[i].name;
    const char *arrays[] = {"per_class_precision", "per_class_recall", "per_class_f1", "confusion", NULL};
    memcpy(keys + 3 + LB_N_METRIC_FIELDS, arrays, sizeof arrays);
    int64_t C = 0;
    int st = lb__json_only_keys(path, obj, "metrics", keys);
    if (!st) st = lb__json_get_int64(path, obj, "n_classes", 1, &C);
    if (!st && C > MAX_CLASSES)
        st = lb__json_bad(path, lb__json_get(obj, "n_classes"), "n_classes = %" PRId64 " is more than %d", C,
                 MAX_CLASSES);
    /* The confusion matrix's shape is checked before its C*C counts are allocated, so a
     * small file cannot make the reader allocate for a huge class count (fuzz/fuzz_record.c
     * found n_classes = 99999 asking for 80 GB). */
    const lb_json *cm = NULL;
    if (!st) st = lb__json_member(path, obj, "confusion", LB_JSON_ARRAY, &cm);
    if (!st && cm->n != (size_t)C)
        st = lb__json_bad(path, cm, "\"confusion\" has %zu rows, expected %" PRId64, cm->n, C);
    for (size_t t = 0; !st && t < (size_t)C; t++)
        if (cm->items[t].type != LB_JSON_ARRAY || cm->items[t].n != (size_t)C)
            st = lb__json_bad(path, &cm->items[t], "confusion row %zu must be an array of %" PRId64 " counts", t, C);
    if (!st) st = lb_metrics_init(m, (int)C);
    if (st) return st;
    if (!st) st = lb__json_get_int64(path, obj, "n", 0, &m->n);
    for (int i = 0; i < LB_N_METRIC_FIELDS && !st; i++)
        st = lb__json_get_float(path, obj, lb_metric_fields[i].name, lb_metric_ptr(m, &lb_metric_fields[i]));
    if (!st) st = get_float_array(path, obj, "per_class_precision", (size_t)C, m->precision);
    if (!st) st = get_float_array(path, obj, "per_class_recall", (size_t)C, m->recall);
    if (!st) st = get_float_array(path, obj, "per_class_f1", (size_t)C, m->f1);
    int scored = 0;
    for (size_t t = 0; !st && t < (size_t)C; t++) {
        const lb_json *row = &cm->items[t];
        int64_t support = 0;
        for (size_t p = 0; !st && p < (size_t)C; p++) {
            st = lb__json_to_int64(path, &row->items[p], "a confusion count", 0, &m->confusion[t * (size_t)C + p]);
            support += m->confusion[t * (size_t)C + p];
        }
        scored += support > 0;
    }
    int64_t x = 0;
    if (!st) st = lb__json_get_int64(path, obj, "classes_scored", 0, &x);
    if (!st && x != scored)
        st = lb__json_bad(path, lb__json_get(obj, "classes_scored"),
                 "classes_scored = %" PRId64 " but %d rows of the confusion matrix have test samples", x, scored);
    if (!st) m->n_scored = scored;
    if (st) lb_metrics_free(m);
    return st;
}

int lb__json_read_curve(const char *path, const lb_json *obj, const char *k, lb_curve *c)
{
    const lb_json *v = NULL;
    int st = lb__json_member(path, obj, k, LB_JSON_ARRAY, &v);
    for (size_t i = 0; !st && i < v->n; i++) {
        const lb_json *pt = &v->items[i];
        int64_t step = 0;
        float val = 0;
        if (pt->type != LB_JSON_ARRAY || pt->n != 2)
            return lb__json_bad(path, pt, "a point of curve \"%s\" must be [step, value]", k);
        st = lb__json_to_int64(path, &pt->items[0], "a curve step", INT64_MIN, &step);
        if (!st) st = lb__json_to_float(path, &pt->items[1], "a curve value", &val);
        if (!st) st = lb_curve_append(c, step, val);
    }
    return st;
}

/* The record's seed: a decimal integer in [0, 2^64), which a double cannot hold exactly. */
static int read_seed(const char *path, const lb_json *obj, lb_run_record *r)
{
    const lb_json *seed = NULL;
    int st = lb__json_member(path, obj, "seed", LB_JSON_NUMBER, &seed);
    if (!st) {
        errno = 0;
        char *end;
        r->seed = strtoull(seed->str, &end, 10);
        if (seed->str[0] == '-' || *end || errno == ERANGE)
            st = lb__json_bad(path, seed, "seed must be an integer in [0, 2^64), found %s", seed->str);
    }
    return st;
}

/* The record's scalar fields (format and its version checked) and its metrics. */
static int read_run_fields(const char *path, const lb_json *obj, lb_run_record *r)
{
    const lb_json *v = NULL;
    int64_t x = 0;
    int st = lb__json_member(path, obj, "format", LB_JSON_STRING, &v);
    if (!st && strcmp(v->str, "libra-run"))
        st = lb__json_bad(path, v, "format is \"%s\", expected \"libra-run\"", v->str);
    if (!st) st = lb__json_get_int64(path, obj, "format_version", 0, &x);
    if (!st && x != FORMAT_VERSION)
        st = lb__json_bad(path, lb__json_get(obj, "format_version"),
                 "format_version %" PRId64 " is not %d (this libra's)", x, FORMAT_VERSION);
    if (!st) st = lb__json_get_string(path, obj, "strategy", &r->strategy);
    if (!st) st = read_seed(path, obj, r);
    if (!st) st = lb__json_get_int64(path, obj, "steps", 0, &r->steps);
    if (!st) st = lb__json_get_float(path, obj, "wall_seconds", &r->wall_seconds);
    if (!st) st = lb__json_get_float(path, obj, "images_per_sec", &r->images_per_sec);
    if (!st) st = lb__json_member(path, obj, "metrics", LB_JSON_OBJECT, &v);
    if (!st) st = read_metrics(path, v, &r->metrics);
    return st;
}

/* One entry of "posthoc" ({name, tau, metrics}), added to r; its metrics must have the
 * run's number of classes. */
static int read_posthoc_entry(const char *path, const lb_json *p, lb_run_record *r)
{
    static const char *const pkeys[] = {"name", "tau", "start_step", "steps", "metrics", NULL};
    const lb_json *pm = NULL;
    char *name = NULL;
    float tau = 0;
    int64_t from = -1, steps = -1;
    lb_metrics m = {0};
    int st = LB_OK;
    if (p->type != LB_JSON_OBJECT) st = lb__json_bad(path, p, "a post-hoc entry must be an object");
    if (!st) st = lb__json_only_keys(path, p, "a post-hoc entry", pkeys);
    if (!st) st = lb__json_get_string(path, p, "name", &name);
    if (!st) st = lb__json_get_float(path, p, "tau", &tau);
    if (!st && lb__json_get(p, "steps")) { /* a stage: both or neither */
        st = lb__json_get_int64(path, p, "steps", 0, &steps);
        if (!st) st = lb__json_get_int64(path, p, "start_step", 0, &from);
    } else if (!st && lb__json_get(p, "start_step")) {
        st = lb__json_bad(path, p, "a post-hoc entry has \"start_step\" without \"steps\"");
    }
    if (!st) st = lb__json_member(path, p, "metrics", LB_JSON_OBJECT, &pm);
    if (!st) st = read_metrics(path, pm, &m);
    if (!st && m.n_classes != r->metrics.n_classes)
        st = lb__json_bad(path, pm, "post-hoc metrics have %d classes, the run has %d", m.n_classes,
                 r->metrics.n_classes);
    if (!st) st = lb_run_record_add_stage(r, name, tau, from, steps, &m);
    lb_free(name);
    lb_metrics_free(&m);
    return st;
}

/* The "posthoc" array: the post-hoc variants of the model. */
static int read_posthoc(const char *path, const lb_json *obj, lb_run_record *r)
{
    const lb_json *arr = NULL;
    int st = lb__json_member(path, obj, "posthoc", LB_JSON_ARRAY, &arr);
    for (size_t i = 0; !st && i < arr->n; i++) st = read_posthoc_entry(path, &arr->items[i], r);
    return st;
}

/* An optional curve of [x, y] points in [0, 1] (pr, roc), at most 101. */
static int read_xy(const char *path, const lb_json *obj, const char *k, lb_xy *c)
{
    const lb_json *v = lb__json_get(obj, k);
    if (!v) return LB_OK;
    if (v->type != LB_JSON_ARRAY || v->n > 101) return lb__json_bad(path, v, "\"%s\" must be an array of at most 101 points", k);
    if (!(c->x = lb_malloc(sizeof(float) * (v->n + 1))) || !(c->y = lb_malloc(sizeof(float) * (v->n + 1))))
        return lb_error(LB_ENOMEM, "%s: out of memory", path);
    int st = LB_OK;
    for (size_t i = 0; !st && i < v->n; i++) {
        const lb_json *pt = &v->items[i];
        if (pt->type != LB_JSON_ARRAY || pt->n != 2) return lb__json_bad(path, pt, "a point of \"%s\" must be [x, y]", k);
        st = lb__json_to_float(path, &pt->items[0], "a curve x", &c->x[i]);
        if (!st) st = lb__json_to_float(path, &pt->items[1], "a curve y", &c->y[i]);
        if (!st && !(c->x[i] >= 0 && c->x[i] <= 1 && c->y[i] >= 0 && c->y[i] <= 1))
            st = lb__json_bad(path, pt, "a point of \"%s\" must lie in [0, 1]", k);
        if (!st) c->n = i + 1;
    }
    return st;
}

/* The "curves" object: the loss and validation balanced-accuracy curves (and for binary
 * tasks the test PR and ROC curves). */
static int read_curves(const char *path, const lb_json *obj, lb_run_record *r)
{
    const lb_json *v = NULL;
    int st = lb__json_member(path, obj, "curves", LB_JSON_OBJECT, &v);
    static const char *const ckeys[] = {"loss", "val_balanced_accuracy", "pr", "roc", NULL};
    if (!st) st = lb__json_only_keys(path, v, "curves", ckeys);
    if (!st) st = lb__json_read_curve(path, v, "loss", &r->loss);
    if (!st) st = lb__json_read_curve(path, v, "val_balanced_accuracy", &r->val_bacc);
    if (!st) st = read_xy(path, v, "pr", &r->pr);
    if (!st) st = read_xy(path, v, "roc", &r->roc);
    if (!st && r->pr.n != r->roc.n) st = lb__json_bad(path, v, "the pr and roc curves have %zu and %zu points", r->pr.n, r->roc.n);
    return st;
}

/* The optional "warnings" ({count, messages}) of a run, as lb_jw_notes writes them. */
static int read_notes(const char *path, const lb_json *obj, lb_notes *n)
{
    static const char *const keys[] = {"count", "messages", NULL};
    const lb_json *v = lb__json_get(obj, "warnings"), *arr = NULL;
    if (!v) return LB_OK;
    int64_t count = 0;
    int st = v->type == LB_JSON_OBJECT ? lb__json_only_keys(path, v, "warnings", keys) : lb__json_bad(path, v, "\"warnings\" must be an object");
    if (!st) st = lb__json_get_int64(path, v, "count", 0, &count);
    if (!st && count > 0x7fffffff) st = lb__json_bad(path, v, "warnings: a count of %" PRId64 " is out of range", count);
    if (!st) st = lb__json_member(path, v, "messages", LB_JSON_ARRAY, &arr);
    if (!st && (int64_t)arr->n > count) st = lb__json_bad(path, arr, "warnings: %zu messages but a count of %" PRId64, arr->n, count);
    for (size_t i = 0; !st && i < arr->n; i++)
        st = arr->items[i].type == LB_JSON_STRING ? lb_notes_add(n, "%s", arr->items[i].str)
                                                  : lb__json_bad(path, &arr->items[i], "a warning must be a string");
    if (!st) n->n = (int)count; /* counted beyond the kept ones */
    return st;
}

/* The optional "operating_point" object of a binary task. */
static int read_operating_point(const char *path, const lb_json *obj, lb_operating_point *op)
{
    static const char *const keys[] = {"class",       "target_recall",  "val_recall", "val_precision",
                                       "test_recall", "test_precision", "threshold",  NULL};
    const lb_json *v = lb__json_get(obj, "operating_point");
    if (!v) return LB_OK;
    if (v->type != LB_JSON_OBJECT) return lb__json_bad(path, v, "\"operating_point\" must be an object");
    int64_t k = 0;
    int st = lb__json_only_keys(path, v, "operating_point", keys);
    if (!st) st = lb__json_get_int64(path, v, "class", 0, &k);
    if (!st && k > 1) st = lb__json_bad(path, v, "operating_point: class %" PRId64 " of a binary task", k);
    op->positive = (int)k;
    if (!st) st = lb__json_get_float(path, v, "target_recall", &op->target_recall);
    if (!st) st = lb__json_get_float(path, v, "threshold", &op->threshold);
    if (!st) st = lb__json_get_float(path, v, "val_recall", &op->val_recall);
    if (!st) st = lb__json_get_float(path, v, "val_precision", &op->val_precision);
    if (!st) st = lb__json_get_float(path, v, "test_recall", &op->test_recall);
    if (!st) st = lb__json_get_float(path, v, "test_precision", &op->test_precision);
    op->set = !st;
    return st;
}

/* One point of the grid ({spec, val_balanced_accuracy}), added to r. */
static int read_grid_point(const char *path, const lb_json *p, lb_run_record *r)
{
    static const char *const pkeys[] = {"spec", "val_balanced_accuracy", NULL};
    char *spec = NULL;
    float acc = 0;
    int st = LB_OK;
    if (p->type != LB_JSON_OBJECT) st = lb__json_bad(path, p, "a grid point must be an object");
    if (!st) st = lb__json_only_keys(path, p, "a grid point", pkeys);
    if (!st) st = lb__json_get_string(path, p, "spec", &spec);
    if (!st) st = lb__json_get_float(path, p, "val_balanced_accuracy", &acc);
    if (!st) st = lb_run_record_add_grid(r, spec, acc);
    lb_free(spec);
    return st;
}

/* The "grid" object: its points, and the index of the chosen one (-1: none). */
static int read_grid(const char *path, const lb_json *obj, lb_run_record *r)
{
    static const char *const gkeys[] = {"chosen", "points", NULL};
    const lb_json *v = NULL, *arr = NULL;
    int64_t x = 0;
    int st = lb__json_member(path, obj, "grid", LB_JSON_OBJECT, &v);
    if (!st) st = lb__json_only_keys(path, v, "grid", gkeys);
    if (!st) st = lb__json_member(path, v, "points", LB_JSON_ARRAY, &arr);
    for (size_t i = 0; !st && i < arr->n; i++) st = read_grid_point(path, &arr->items[i], r);
    if (!st) st = lb__json_get_int64(path, v, "chosen", -1, &x);
    if (!st && x >= (int64_t)r->n_grid && !(x == -1))
        st = lb__json_bad(path, lb__json_get(v, "chosen"), "chosen = %" PRId64 " but the grid has %zu points",
                 x, r->n_grid);
    if (!st) r->grid_chosen = (int)x;
    return st;
}

/* The optional "rank" (a study across ranks: the rank that trained it); -1 without it. */
static int read_rank(const char *path, const lb_json *obj, lb_run_record *r)
{
    int64_t x = -1;
    int st = lb__json_get(obj, "rank") ? lb__json_get_int64(path, obj, "rank", 0, &x) : LB_OK;
    if (!st && x > 0x7fffffff) st = lb__json_bad(path, lb__json_get(obj, "rank"), "rank = %" PRId64 " is out of range", x);
    r->rank = st ? -1 : (int)x;
    return st;
}

static int read_record(const char *path, const lb_json *obj, lb_run_record *r)
{
    static const char *const keys[] = {
        "format",  "format_version", "libra_version", "strategy",
        "seed",    "steps",          "wall_seconds",  "images_per_sec",
        "metrics", "posthoc",        "curves",        "grid",
        "operating_point", "warnings", "rank", "predictions", "profile", NULL};
    int st = lb__json_only_keys(path, obj, "the run record", keys);
    if (!st) st = read_run_fields(path, obj, r);
    if (!st) st = read_rank(path, obj, r);
    if (!st && lb__json_get(obj, "predictions")) st = lb__json_get_string(path, obj, "predictions", &r->predictions);
    if (!st && lb__json_get(obj, "profile")) st = lb__json_get_string(path, obj, "profile", &r->profile);
    if (!st) st = read_notes(path, obj, &r->warnings);
    if (!st) st = read_posthoc(path, obj, r);
    if (!st) st = read_curves(path, obj, r);
    if (!st) st = read_operating_point(path, obj, &r->op);
    if (!st) st = read_grid(path, obj, r);
    return st;
}

int lb_run_record_read_json(lb_run_record *r, const char *path)
{
    lb_run_record_init(r);
    char *text = NULL;
    size_t n = 0;
    int st = lb_read_file(path, (size_t)1 << 30, &text, &n);
    if (st) return st;
    st = lb_run_record_parse_json(r, text, n, path);
    lb_free(text);
    return st;
}

int lb_run_record_parse_json(lb_run_record *r, const char *text, size_t n, const char *path)
{
    lb_run_record_init(r);
    lb_json root;
    int st = lb__json_parse(text, n, path, &root);
    if (st) return st;
    if (root.type != LB_JSON_OBJECT) st = lb__json_bad(path, &root, "a run record must be a JSON object");
    if (!st) st = read_record(path, &root, r);
    lb__json_free(&root);
    if (st) lb_run_record_free(r);
    return st;
}
