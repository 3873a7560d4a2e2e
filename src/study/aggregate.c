/* Aggregation: the stored records of every strategy and seed into the study's result, its
 * files, and the terminal summary. */
#include "study/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The flags results.json records: how the study was asked for. */
static int set_flags(lb_study *st, lb_results *r)
{
    const lb_study_config *c = &st->cfg;
    const lb_train_opts *o = &st->base;
    const lb_data_opts *d = c->data;
    char v[64];
    int rc = lb_results_set_flag(r, "strategies", c->strategies ? c->strategies : lb_default_strategy_list());
#define FLAG(key, ...) \
    do { snprintf(v, sizeof v, __VA_ARGS__); if (rc == LB_OK) rc = lb_results_set_flag(r, key, v); } while (0)
    FLAG("seeds", "%d", c->seeds);
    FLAG("seed", "%" PRIu64, c->seed0);
    FLAG("steps", "%ld", o->steps);
    FLAG("batch", "%d", o->batch);
    FLAG("lr", "%.9g", o->lr);
    if (rc == LB_OK) rc = lb_results_set_flag(r, "arch", o->arch ? o->arch : "smallcnn");
    if (rc == LB_OK) rc = lb_results_set_flag(r, "optimizer", o->optimizer ? o->optimizer : "adam");
    FLAG("threads", "%d", o->threads);
    FLAG("jobs", "%d", st->sched_width);
    if (rc == LB_OK && d) rc = lb_results_set_flag(r, "data", d->data ? d->data : "fmnist");
    if (rc == LB_OK && d) rc = lb_results_set_flag(r, "imbalance", d->imbalance ? d->imbalance : "none");
    if (rc == LB_OK && d && d->name) rc = lb_results_set_flag(r, "preset", d->name);
    if (d) FLAG("val_fraction", "%.9g", d->val_frac);
#undef FLAG
    for (int i = 0; rc == LB_OK && i < st->n_extra; i++) rc = lb_results_set_flag(r, st->extra[i].key, st->extra[i].value);
    return rc;
}

/* A record keeps the variants its strategy asks for, in the record's order: the post-hoc
 * corrections for +posthoc, each stage for +STAGE (every one must be there). */
static int keep_variants(const lb_strategy *s, lb_run_record *r, const lb_job *j)
{
    size_t k = 0;
    for (size_t v = 0; v < r->n_posthoc; v++) {
        lb_posthoc_result *p = &r->posthoc[v];
        int keep = p->steps < 0 ? s->posthoc : lb__in_list(s->stages, p->name);
        if (keep) {
            r->posthoc[k++] = *p;
            continue;
        }
        lb_free(p->name);
        lb_metrics_free(&p->metrics);
    }
    r->n_posthoc = k;
    for (const char *p = s->stages; p && *p;) {
        size_t m = strcspn(p, "+");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)m, p);
        if (!lb_run_record_variant(r, name))
            return lb_error(LB_EFORMAT, "study: the record of %s has no variant '%s' for strategy '%s'", j->name, name,
                            s->spec);
        p += m + (p[m] == '+');
    }
    return LB_OK;
}

/* Strategy i's records, one per seed, from the stored files: named by the strategy, with the
 * variants it asks for (post-hoc, stages), and the tuning grid if it has one. */
static int add_records(lb_study *st, lb_results *res, int i)
{
    const lb_strategy *s = &st->strat[i];
    for (int k = 0; k < st->cfg.seeds; k++) {
        lb_job *j = lb__study_job(st, s, s->points[st->chosen[i]], st->cfg.seed0 + (uint64_t)k);
        char *path = j ? lb__job_path(st, j, 0) : NULL;
        lb_run_record r;
        int rc = path ? lb_run_record_read_json(&r, path) : LB_ENOMEM;
        lb_free(path);
        if (rc != LB_OK) return rc;
        rc = lb_run_record_set_strategy(&r, s->spec);
        if (rc == LB_OK) rc = keep_variants(s, &r, j);
        for (int g = 0; rc == LB_OK && s->n_points > 1 && g < s->n_points; g++)
            rc = lb_run_record_add_grid(&r, s->points[g], st->grid_vals[i][g]);
        if (s->n_points > 1) r.grid_chosen = st->chosen[i];
        if (rc == LB_OK) rc = lb_results_take_run(res, &r);
        lb_run_record_free(&r);
        if (rc != LB_OK) return rc;
    }
    return LB_OK;
}

const lb_results *lb_study_results(lb_study *st)
{
    if (st->have_results) return &st->results;
    if (!st->executed) {
        lb_error(LB_ESTATE, "study: the results are not there until lb_study_execute has succeeded");
        return NULL;
    }
    lb_results *r = &st->results;
    lb_results_init(r);
    const lb_split *sp = &st->data->split;
    int rc = lb_results_set_dataset(r, st->data->train->source, sp->profile, sp->seed, sp->n_classes,
                                    (const char *const *)sp->class_names, sp->train_counts, sp->val_counts,
                                    sp->test_counts);
    if (rc == LB_OK) rc = lb_results_set_warnings(r, &st->data->warnings, st->data->n_skipped);
    if (rc == LB_OK) rc = set_flags(st, r);
    for (int i = 0; rc == LB_OK && i < st->n_strat; i++) rc = add_records(st, r, i);
    if (rc != LB_OK) {
        lb_results_free(r);
        return NULL;
    }
    st->have_results = 1;
    return r;
}

int lb_study_write(lb_study *st)
{
    const lb_results *r = lb_study_results(st);
    if (!r) return lb_last_status();
    static const char *const names[] = {"results.json", "results.csv", "report.html"};
    int (*const writers[])(const lb_results *, const char *) = {lb_report_write_json, lb_report_write_csv,
                                                                lb_report_write_html};
    for (int k = 0; k < 3; k++) {
        char *path = lb_strfmt("%s/%s", st->out, names[k]);
        int rc = path ? writers[k](r, path) : lb_error(LB_ENOMEM, "study: out of memory");
        lb_free(path);
        if (rc != LB_OK) return rc;
    }
    return LB_OK;
}

/* Mean and sample standard deviation of a sum and sum of squares over n values. */
static void mean_std(double s1, double s2, int n, double *mean, double *sd)
{
    *mean = s1 / n;
    *sd = n > 1 ? sqrt(fmax(0, (s2 - n * *mean * *mean) / (n - 1))) : 0;
}

/* One summary line: the raw model (v < 0) or post-hoc variant v of strategy s. */
static void summary_line(const lb_results *r, const lb_strategy *s, int v, lb_buf *out, int *n_variants)
{
    double s1 = 0, s2 = 0, m1 = 0, m2 = 0, f1 = 0;
    int n = 0;
    const char *vname = NULL;
    for (size_t i = 0; i < r->n_runs; i++) {
        const lb_run_record *rec = &r->runs[i];
        if (strcmp(rec->strategy, s->spec) || (v >= 0 && (size_t)v >= rec->n_posthoc)) continue;
        if (n == 0) *n_variants = (int)rec->n_posthoc;
        const lb_metrics *m = v < 0 ? &rec->metrics : &rec->posthoc[v].metrics;
        if (v >= 0) vname = rec->posthoc[v].name;
        s1 += m->balanced_accuracy;
        s2 += (double)m->balanced_accuracy * m->balanced_accuracy;
        m1 += m->minority_recall;
        m2 += (double)m->minority_recall * m->minority_recall;
        f1 += m->macro_f1;
        n++;
    }
    if (!n) return;
    double mb, sb, mm, sm;
    mean_std(s1, s2, n, &mb, &sb);
    mean_std(m1, m2, n, &mm, &sm);
    char label[200];
    snprintf(label, sizeof label, "%s%s%s", s->spec, vname ? " / " : "", vname ? vname : "");
    lb_buf_printf(out, "%-40s %.4f ± %.4f   %.4f ± %.4f   %.4f\n", label, mb, sb, mm, sm, f1 / n);
}

int lb_study_summary(lb_study *st, lb_buf *out)
{
    const lb_results *r = lb_study_results(st);
    if (!r) return lb_last_status();
    lb_buf_printf(out, "%-40s %-17s %-17s %s\n", "strategy", "balanced acc", "minority recall", "macro F1");
    for (int i = 0; i < st->n_strat; i++)
        for (int v = -1, nv = 0; v < nv; v++) summary_line(r, &st->strat[i], v, out, &nv);
    lb_buf_printf(out, "(mean ± standard deviation over %d seeds, test set)\n", st->cfg.seeds);
    return lb_buf_status(out, "summary");
}
