/* Building and freeing the study and its run records. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

void lb_results_init(lb_results *s)
{
    memset(s, 0, sizeof *s);
    lb_metrics_opts_default(&s->metrics_opts);
}

static void dataset_free(lb_dataset_info *d)
{
    if (d->class_names)
        for (int c = 0; c < d->n_classes; c++) lb_free(d->class_names[c]);
    lb_free(d->class_names);
    lb_free(d->train_counts);
    lb_free(d->val_counts);
    lb_free(d->test_counts);
    lb_free(d->source);
    lb_free(d->profile);
    lb_notes_free(&d->warnings);
    memset(d, 0, sizeof *d);
}

void lb_results_free(lb_results *s)
{
    if (!s) return;
    dataset_free(&s->dataset);
    for (size_t i = 0; i < s->n_flags; i++) {
        lb_free(s->flags[i].key);
        lb_free(s->flags[i].value);
    }
    lb_free(s->flags);
    for (size_t i = 0; i < s->n_runs; i++) lb_run_record_free(&s->runs[i]);
    lb_free(s->runs);
    lb_free(s->title);
    lb_free(s->baseline);
    for (size_t i = 0; i < s->n_summary; i++) lb_summary_row_free(&s->summary[i]);
    lb_free(s->summary);
    lb_free(s->oracle_profile);
    lb_free(s->oracle_note);
    lb_free(s->oracle_full_profile);
    lb_free(s->oracle_full_note);
    lb_results_init(s);
}

void lb_summary_row_free(lb_summary_row *row)
{
    lb_free(row->profile);
    lb_free(row->strategy);
    lb_free(row->variant);
    memset(row, 0, sizeof *row);
}

int lb_results_add_summary(lb_results *s, const lb_summary_row *row)
{
    lb_summary_row *g = lb_realloc(s->summary, (s->n_summary + 1) * sizeof *g);
    if (!g) return lb_error(LB_ENOMEM, "lb_results_add_summary: out of memory");
    s->summary = g;
    lb_summary_row c = *row;
    c.profile = row->profile ? lb_strdup(row->profile) : NULL;
    c.strategy = lb_strdup(row->strategy ? row->strategy : "");
    c.variant = row->variant ? lb_strdup(row->variant) : NULL;
    if ((row->profile && !c.profile) || !c.strategy || (row->variant && !c.variant)) {
        lb_summary_row_free(&c);
        return lb_error(LB_ENOMEM, "lb_results_add_summary: out of memory");
    }
    g[s->n_summary++] = c;
    return LB_OK;
}

static int same_or_null(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

const lb_summary_row *lb_results_summary_row(const lb_results *s, const char *profile, const char *strategy,
                                             const char *variant)
{
    for (size_t i = 0; i < s->n_summary; i++) {
        const lb_summary_row *r = &s->summary[i];
        if ((!profile || same_or_null(r->profile, profile)) && !strcmp(r->strategy, strategy) &&
            same_or_null(r->variant, variant))
            return r;
    }
    return NULL;
}

static char *dup_or_empty(const char *s) { return lb_strdup(s ? s : ""); }

int lb_results_set_dataset(lb_results *s, const char *source, const char *profile, uint64_t split_seed,
                         int n_classes, const char *const *class_names, const int *train_counts,
                         const int *val_counts, const int *test_counts)
{
    if (n_classes < 1 || !train_counts)
        return lb_error(LB_EINVAL, "lb_results_set_dataset: n_classes=%d, train_counts %s", n_classes,
                        train_counts ? "given" : "NULL");
    lb_dataset_info d = {0};
    size_t C = (size_t)n_classes;
    d.n_classes = n_classes;
    d.split_seed = split_seed;
    d.source = dup_or_empty(source);
    d.profile = dup_or_empty(profile);
    d.class_names = lb_calloc(C, sizeof(char *));
    d.train_counts = lb_calloc(C, sizeof(int));
    d.val_counts = lb_calloc(C, sizeof(int));
    d.test_counts = lb_calloc(C, sizeof(int));
    int ok =
        d.source && d.profile && d.class_names && d.train_counts && d.val_counts && d.test_counts;
    for (size_t c = 0; ok && c < C; c++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", c);
        d.class_names[c] = lb_strdup(class_names && class_names[c] ? class_names[c] : num);
        ok = d.class_names[c] != NULL;
        d.train_counts[c] = train_counts[c];
        d.val_counts[c] = val_counts ? val_counts[c] : 0;
        d.test_counts[c] = test_counts ? test_counts[c] : 0;
    }
    if (!ok) {
        dataset_free(&d);
        return lb_error(LB_ENOMEM, "lb_results_set_dataset: out of memory for %d classes", n_classes);
    }
    dataset_free(&s->dataset);
    s->dataset = d;
    return LB_OK;
}

int lb_results_set_warnings(lb_results *s, const lb_notes *warnings, int n_skipped)
{
    lb_notes_free(&s->dataset.warnings);
    s->dataset.n_skipped = n_skipped;
    int rc = lb_notes_add_all(&s->dataset.warnings, warnings);
    if (rc != LB_OK) lb_notes_free(&s->dataset.warnings);
    return rc;
}

int lb_results_set_flag(lb_results *s, const char *key, const char *value)
{
    if (!key || !*key) return lb_error(LB_EINVAL, "lb_results_set_flag: empty key");
    char *v = dup_or_empty(value);
    if (!v) return lb_error(LB_ENOMEM, "lb_results_set_flag: out of memory for --%s", key);
    for (size_t i = 0; i < s->n_flags; i++)
        if (!strcmp(s->flags[i].key, key)) {
            lb_free(s->flags[i].value);
            s->flags[i].value = v;
            return LB_OK;
        }
    char *k = lb_strdup(key);
    lb_kv *f = lb_realloc(s->flags, (s->n_flags + 1) * sizeof *f);
    if (!k || !f) {
        lb_free(k);
        lb_free(v);
        if (f) s->flags = f;
        return lb_error(LB_ENOMEM, "lb_results_set_flag: out of memory for --%s", key);
    }
    s->flags = f;
    s->flags[s->n_flags++] = (lb_kv){k, v};
    return LB_OK;
}

int lb_results_take_run(lb_results *s, lb_run_record *r)
{
    lb_run_record *runs = lb_realloc(s->runs, (s->n_runs + 1) * sizeof *runs);
    if (!runs)
        return lb_error(LB_ENOMEM, "lb_results_take_run: out of memory for run %zu", s->n_runs);
    s->runs = runs;
    runs[s->n_runs++] = *r;
    lb_run_record_init(r);
    return LB_OK;
}

void lb_run_record_init(lb_run_record *r)
{
    memset(r, 0, sizeof *r);
    r->wall_seconds = r->images_per_sec = NAN;
    r->grid_chosen = -1;
    r->rank = -1;
}

void lb_run_record_free(lb_run_record *r)
{
    lb_notes_free(&r->warnings);
    if (!r) return;
    lb_free(r->strategy);
    lb_free(r->profile);
    lb_free(r->predictions);
    lb_predictions_free(&r->pred);
    lb_metrics_free(&r->metrics);
    lb_curve_free(&r->loss);
    lb_curve_free(&r->val_bacc);
    lb_free(r->pr.x);
    lb_free(r->pr.y);
    lb_free(r->roc.x);
    lb_free(r->roc.y);
    for (size_t i = 0; i < r->n_grid; i++) lb_free(r->grid[i].spec);
    lb_free(r->grid);
    for (size_t i = 0; i < r->n_posthoc; i++) {
        lb_free(r->posthoc[i].name);
        lb_metrics_free(&r->posthoc[i].metrics);
    }
    lb_free(r->posthoc);
    lb_run_record_init(r);
}

int lb_run_record_set_strategy(lb_run_record *r, const char *spec)
{
    char *d = dup_or_empty(spec);
    if (!d) return lb_error(LB_ENOMEM, "lb_run_record_set_strategy: out of memory");
    lb_free(r->strategy);
    r->strategy = d;
    return LB_OK;
}

int lb_run_record_add_grid(lb_run_record *r, const char *spec, float val_balanced_accuracy)
{
    char *d = dup_or_empty(spec);
    lb_grid_point *g = d ? lb_realloc(r->grid, (r->n_grid + 1) * sizeof *g) : NULL;
    if (!g) {
        lb_free(d);
        return lb_error(LB_ENOMEM, "lb_run_record_add_grid: out of memory");
    }
    r->grid = g;
    g[r->n_grid++] = (lb_grid_point){d, val_balanced_accuracy};
    return LB_OK;
}

int lb_run_record_add_posthoc(lb_run_record *r, const char *name, float tau, lb_metrics *m)
{
    char *d = dup_or_empty(name);
    lb_posthoc_result *p = d ? lb_realloc(r->posthoc, (r->n_posthoc + 1) * sizeof *p) : NULL;
    if (!p) {
        lb_free(d);
        return lb_error(LB_ENOMEM, "lb_run_record_add_posthoc: out of memory");
    }
    r->posthoc = p;
    p[r->n_posthoc].name = d;
    p[r->n_posthoc].tau = tau;
    p[r->n_posthoc].start_step = -1;
    p[r->n_posthoc].steps = -1;
    p[r->n_posthoc].metrics = *m;
    r->n_posthoc++;
    memset(m, 0, sizeof *m);
    return LB_OK;
}

int lb_run_record_add_stage(lb_run_record *r, const char *name, float tau, int64_t start_step, int64_t steps,
                            lb_metrics *m)
{
    int rc = lb_run_record_add_posthoc(r, name, tau, m);
    if (rc == LB_OK) {
        r->posthoc[r->n_posthoc - 1].start_step = start_step;
        r->posthoc[r->n_posthoc - 1].steps = steps;
    }
    return rc;
}

const lb_posthoc_result *lb_run_record_variant(const lb_run_record *r, const char *name)
{
    for (size_t i = 0; i < r->n_posthoc; i++)
        if (!strcmp(r->posthoc[i].name, name)) return &r->posthoc[i];
    return NULL;
}
