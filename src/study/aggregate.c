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
        lb_free(r.profile);
        r.profile = lb_strdup(st->data->split.profile);
        if (rc == LB_OK && !r.profile) rc = lb_error(LB_ENOMEM, "study: out of memory");
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

/* The paired bootstrap's resamples and seed (docs/metrics.md, "Intervals"). */
#define BOOT_RESAMPLES 10000
#define BOOT_SEED 2026

/* One line of the summary: strategy s's raw model (v < 0) or its variant v, over its seeds. */
typedef struct {
    const lb_strategy *s;
    int v;
    char label[200];
    const lb_run_record **rec; /* [seeds], its records in seed order */
    int k;
    double mean, lo, hi; /* balanced accuracy: mean over seeds and its 95% t-interval */
} sum_line;

/* The lines of the summary, in strategy order, each variant after its strategy's model. */
static void free_lines(sum_line *L, int n)
{
    for (int l = 0; l < n; l++) lb_free(L[l].rec);
    lb_free(L);
}

static int summary_lines(const lb_study *st, const lb_results *r, sum_line **out, int *n_out)
{
    int n = 0, cap = 0, K = st->cfg.seeds;
    sum_line *L = NULL;
    double *b = lb_malloc(((size_t)K + 1) * sizeof *b);
    if (!b) return lb_error(LB_ENOMEM, "summary: out of memory");
    for (int i = 0; i < st->n_strat; i++)
        for (int v = -1, nv = 0; v < nv; v++) {
            sum_line x = {.s = &st->strat[i], .v = v, .rec = lb_malloc(((size_t)K + 1) * sizeof *x.rec)};
            if (!x.rec) return lb_free(b), free_lines(L, n), lb_error(LB_ENOMEM, "summary: out of memory");
            for (size_t j = 0; j < r->n_runs && x.k < K; j++) {
                const lb_run_record *rec = &r->runs[j];
                if (strcmp(rec->strategy, x.s->spec) || (v >= 0 && (size_t)v >= rec->n_posthoc)) continue;
                if (x.k == 0) nv = (int)rec->n_posthoc;
                b[x.k] = v < 0 ? rec->metrics.balanced_accuracy : rec->posthoc[v].metrics.balanced_accuracy;
                x.rec[x.k++] = rec;
            }
            if (!x.k) {
                lb_free(x.rec);
                continue;
            }
            lb_mean_ci95(b, x.k, &x.mean, &x.lo, &x.hi);
            snprintf(x.label, sizeof x.label, "%s%s%s", x.s->spec, v >= 0 ? " / " : "", v >= 0 ? x.rec[0]->posthoc[v].name : "");
            if (n == cap) {
                sum_line *g = lb_realloc(L, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *g);
                if (!g) return lb_free(b), lb_free(x.rec), free_lines(L, n), lb_error(LB_ENOMEM, "summary: out of memory");
                L = g;
            }
            L[n++] = x;
        }
    lb_free(b);
    *out = L;
    *n_out = n;
    return LB_OK;
}

/* The predictions file read last: the lines of one trained model (its variants, and the
 * strategies that share the model) come one after another, so each file is read once. */
typedef struct {
    const char *rel; /* the record's "predictions" it was read from (NULL: none yet) */
    lb_predictions p;
} pred_cache;

/* Line l's predicted classes of seed j, from its run's predictions file, into pred [n]. 0 when
 * the record names none (a record of an older libra): no bootstrap then. */
static int line_predictions(const lb_study *st, const sum_line *l, int j, int n, int *pred, int *y, pred_cache *c)
{
    const lb_run_record *rec = l->rec[j];
    if (!rec->predictions) return 0;
    int rc = LB_OK;
    if (!c->rel || strcmp(c->rel, rec->predictions)) {
        lb_predictions_free(&c->p);
        c->rel = NULL;
        char *path = lb_strfmt("%s/%s", st->out, rec->predictions);
        rc = path ? lb_predictions_read_csv(&c->p, path) : lb_error(LB_ENOMEM, "summary: out of memory");
        lb_free(path);
        if (rc != LB_OK) return rc;
        c->rel = rec->predictions;
    }
    const lb_predictions *p = &c->p;
    const char *vname = l->v >= 0 ? rec->posthoc[l->v].name : NULL;
    const int *col = vname ? NULL : p->pred;
    for (int v = 0; vname && v < p->n_variants; v++)
        if (!strcmp(p->variant[v], vname)) col = p->variant_pred + (size_t)v * p->n;
    if (!col || p->n != n)
        return lb_error(LB_EFORMAT, "%s/%s: %s", st->out, rec->predictions,
                        col ? "another number of test images than the study's" : "no column for the variant");
    memcpy(pred, col, (size_t)n * sizeof *pred);
    memcpy(y, p->label, (size_t)n * sizeof *y);
    return 1;
}

/* Every line's bootstrap resamples into boot [n_lines * R] (the same draws for all: paired);
 * *have 0 when some run has no predictions file. */
static int summary_bootstrap(const lb_study *st, const sum_line *L, int n_lines, int k, double *boot, int *have)
{
    int n = st->data->split.n_test, C = st->data->split.n_classes, rc = LB_OK;
    int *all = lb_malloc((size_t)n_lines * k * n * sizeof *all + 1), *y = lb_malloc((size_t)n * sizeof *y + 1);
    const int **pred = lb_malloc((size_t)n_lines * k * sizeof *pred + 1);
    if (!all || !y || !pred) rc = lb_error(LB_ENOMEM, "summary: out of memory for the predictions");
    *have = rc == LB_OK && n > 0;
    pred_cache cache = {0};
    for (int j = 0; rc == LB_OK && *have && j < k; j++) /* seed by seed: a model's lines one after another */
        for (int l = 0; rc == LB_OK && *have && l < n_lines; l++) {
            int *p = all + ((size_t)l * k + j) * n, got = line_predictions(st, &L[l], j, n, p, y, &cache);
            if (got < 0) rc = got;
            *have = *have && got == 1;
            pred[(size_t)l * k + j] = p;
        }
    lb_predictions_free(&cache.p);
    if (rc == LB_OK && *have) rc = lb_bootstrap_bacc(pred, n_lines, k, y, n, C, BOOT_RESAMPLES, BOOT_SEED, boot);
    lb_free(all);
    lb_free(y);
    lb_free(pred);
    return rc;
}

/* Line l against line base: the mean of the per-seed differences, and its interval. */
static int line_diff(const sum_line *L, const double *boot, int l, int base, lb_paired_diff *d)
{
    double diff = 0;
    for (int j = 0; j < L[l].k; j++) {
        const lb_run_record *a = L[l].rec[j], *b = L[base].rec[j];
        diff += (L[l].v < 0 ? a->metrics.balanced_accuracy : a->posthoc[L[l].v].metrics.balanced_accuracy) -
                (L[base].v < 0 ? b->metrics.balanced_accuracy : b->posthoc[L[base].v].metrics.balanced_accuracy);
    }
    return lb_paired_diff_of(boot + (size_t)l * BOOT_RESAMPLES, boot + (size_t)base * BOOT_RESAMPLES, BOOT_RESAMPLES,
                             diff / L[l].k, d);
}

/* The summary's rows: per line, balanced accuracy with its t-interval, minority recall,
 * macro F1, (with predictions) the difference from the baseline with its bootstrap interval
 * and whether the best line's interval includes it, and the share of the baseline-to-oracle
 * gap it recovers. */
static double metric_of(const sum_line *l, int j, int which)
{
    const lb_metrics *m = l->v < 0 ? &l->rec[j]->metrics : &l->rec[j]->posthoc[l->v].metrics;
    return which == 0 ? m->balanced_accuracy : which == 1 ? m->minority_recall : m->macro_f1;
}

static int summary_rows(lb_study *st, lb_results *r, const sum_line *L, int n_lines, const double *boot, int have)
{
    const char *bname = r->baseline ? r->baseline : "ce";
    int base = -1, best = 0, oracle = -1, rc = LB_OK;
    for (int l = 0; l < n_lines; l++) {
        if (base < 0 && L[l].v < 0 && !strcmp(L[l].s->spec, bname)) base = l;
        if (oracle < 0 && L[l].v < 0 && L[l].s->oracle == 1) oracle = l; /* the same-size one */
        if (L[l].mean > L[best].mean) best = l;
    }
    double gap = base >= 0 && oracle >= 0 ? L[oracle].mean - L[base].mean : NAN;
    for (int l = 0; l < n_lines && rc == LB_OK; l++) {
        lb_summary_row row = {.profile = st->data->split.profile, .strategy = L[l].s->spec, .n_seeds = L[l].k,
                              .bacc = L[l].mean, .bacc_lo = L[l].lo, .bacc_hi = L[l].hi, .best = l == best};
        if (L[l].v >= 0) row.variant = L[l].rec[0]->posthoc[L[l].v].name;
        double s1 = 0, s2 = 0, f1 = 0;
        for (int j = 0; j < L[l].k; j++) {
            double m = metric_of(&L[l], j, 1);
            s1 += m;
            s2 += m * m;
            f1 += metric_of(&L[l], j, 2);
        }
        row.minority_recall = s1 / L[l].k;
        row.minority_recall_sd =
            L[l].k > 1 ? sqrt(fmax(0, (s2 - L[l].k * row.minority_recall * row.minority_recall) / (L[l].k - 1))) : NAN;
        row.macro_f1 = f1 / L[l].k;
        row.gap_recovered = base >= 0 && oracle >= 0 && gap != 0 ? (L[l].mean - L[base].mean) / gap : NAN;
        lb_paired_diff d;
        if (have && base >= 0 && l != base && (rc = line_diff(L, boot, l, base, &d)) == LB_OK) {
            row.has_diff = 1;
            row.diff = d.diff;
            row.diff_lo = d.lo;
            row.diff_hi = d.hi;
            row.diff_excludes_zero = d.excludes_zero;
        }
        if (have && l != best && rc == LB_OK && (rc = line_diff(L, boot, l, best, &d)) == LB_OK)
            row.same_as_best = !d.excludes_zero;
        if (rc == LB_OK) rc = lb_results_add_summary(r, &row);
    }
    if (rc == LB_OK && have) {
        r->boot_resamples = BOOT_RESAMPLES;
        r->boot_seed = BOOT_SEED;
    }
    return rc;
}

/* The summary of the study's records into its results. */
static int add_summary(lb_study *st, lb_results *r)
{
    sum_line *L = NULL;
    int n_lines = 0, have = 0, k = st->cfg.seeds, rc = summary_lines(st, r, &L, &n_lines);
    for (int l = 0; rc == LB_OK && l < n_lines; l++) have = l == 0 ? L[l].k == k : have && L[l].k == k;
    double *boot = rc == LB_OK && have ? lb_malloc((size_t)n_lines * BOOT_RESAMPLES * sizeof *boot) : NULL;
    if (boot) rc = summary_bootstrap(st, L, n_lines, k, boot, &have);
    else have = 0;
    if (rc == LB_OK) rc = summary_rows(st, r, L, n_lines, boot, have);
    lb_free(boot);
    free_lines(L, n_lines);
    for (int k = 0; rc == LB_OK && k < 2; k++)
        if (st->oracle_profile[k]) {
            char **prof = k ? &r->oracle_full_profile : &r->oracle_profile, **note = k ? &r->oracle_full_note : &r->oracle_note;
            *prof = lb_strdup(st->oracle_profile[k]);
            *note = lb_strdup(st->oracle_note[k]);
            if (!*prof || !*note) rc = lb_error(LB_ENOMEM, "study: out of memory");
        }
    return rc;
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
    if (rc == LB_OK) rc = add_summary(st, r);
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
    char *path = lb_strfmt("%s/summary.csv", st->out);
    int rc = path ? lb_report_write_summary_csv(&r, 1, path) : lb_error(LB_ENOMEM, "study: out of memory");
    lb_free(path);
    return rc;
}

/* The terminal summary: a table of the summary rows. */
int lb_study_summary(lb_study *st, lb_buf *out)
{
    const lb_results *r = lb_study_results(st);
    if (!r) return lb_last_status();
    return lb_results_summary_text(r, out);
}
