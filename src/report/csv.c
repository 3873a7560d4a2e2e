/* results.csv: one row per run and variant with the scalar metrics (RFC 4180 quoting). */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "report/report_internal.h"

/* An empty field stands for NaN. */
static void csv_float(lb_buf *b, float v)
{
    lb_buf_put(b, ",", 1);
    if (isfinite(v)) lb_buf_printf(b, "%.9g", (double)v);
}

static void csv_row(lb_buf *b, const lb_run_record *r, const char *variant, float tau,
                    const lb_metrics *m)
{
    lb_buf_csv_field(b, r->profile ? r->profile : "");
    lb_buf_put(b, ",", 1);
    lb_buf_csv_field(b, r->strategy);
    lb_buf_printf(b, ",%" PRIu64 ",", r->seed);
    lb_buf_csv_field(b, variant);
    csv_float(b, tau);
    lb_buf_printf(b, ",%" PRId64, r->steps);
    csv_float(b, r->wall_seconds);
    csv_float(b, r->images_per_sec);
    lb_buf_printf(b, ",%" PRId64, m->n);
    for (int i = 0; i < LB_N_METRIC_FIELDS; i++) csv_float(b, lb_metric_get(m, &lb_metric_fields[i]));
    lb_buf_puts(b, "\r\n");
}

static void csv_header(lb_buf *b)
{
    lb_buf_puts(b, "profile,strategy,seed,variant,tau,steps,wall_seconds,images_per_sec,n");
    for (int i = 0; i < LB_N_METRIC_FIELDS; i++) lb_buf_printf(b, ",%s", lb_metric_fields[i].name);
    lb_buf_puts(b, "\r\n");
}

/* Every run of s and its variants as rows. */
static int csv_runs(lb_buf *b, const lb_results *s, const char *path)
{
    for (size_t i = 0; i < s->n_runs; i++) {
        const lb_run_record *r = &s->runs[i];
        if (r->metrics.n_classes < 1)
            return lb_error(LB_EINVAL, "%s: run %zu (strategy \"%s\") has no metrics", path, i,
                            r->strategy ? r->strategy : "");
        csv_row(b, r, "raw", NAN, &r->metrics);
        for (size_t k = 0; k < r->n_posthoc; k++)
            csv_row(b, r, r->posthoc[k].name, r->posthoc[k].tau, &r->posthoc[k].metrics);
    }
    return LB_OK;
}

int lb_sweep_write_csv(const lb_results *const *parts, int n, const char *path)
{
    lb_buf b = {0};
    csv_header(&b);
    int st = LB_OK;
    for (int p = 0; st == LB_OK && p < n; p++) st = csv_runs(&b, parts[p], path);
    if (st == LB_OK) st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

int lb_report_write_csv(const lb_results *s, const char *path) { return lb_sweep_write_csv(&s, 1, path); }

static void csv_double(lb_buf *b, double v)
{
    lb_buf_put(b, ",", 1);
    if (isfinite(v)) lb_buf_printf(b, "%.9g", v);
}

int lb_report_write_summary_csv(const lb_results *const *parts, int n, const char *path)
{
    lb_buf b = {0};
    lb_buf_puts(&b, "profile,strategy,variant,seeds,balanced_accuracy,ci95_lo,ci95_hi,minority_recall,"
                    "minority_recall_sd,macro_f1,diff_vs_baseline,diff_ci95_lo,diff_ci95_hi,diff_excludes_zero,"
                    "best,same_as_best,gap_recovered\r\n");
    for (int p = 0; p < n; p++)
        for (size_t i = 0; i < parts[p]->n_summary; i++) {
            const lb_summary_row *r = &parts[p]->summary[i];
            lb_buf_csv_field(&b, r->profile ? r->profile : "");
            lb_buf_put(&b, ",", 1);
            lb_buf_csv_field(&b, r->strategy);
            lb_buf_put(&b, ",", 1);
            lb_buf_csv_field(&b, r->variant ? r->variant : "raw");
            lb_buf_printf(&b, ",%d", r->n_seeds);
            const double v[] = {r->bacc, r->bacc_lo, r->bacc_hi, r->minority_recall, r->minority_recall_sd, r->macro_f1};
            for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) csv_double(&b, v[k]);
            if (r->has_diff) {
                csv_double(&b, r->diff);
                csv_double(&b, r->diff_lo);
                csv_double(&b, r->diff_hi);
                lb_buf_printf(&b, ",%d", r->diff_excludes_zero);
            } else {
                lb_buf_puts(&b, ",,,,");
            }
            lb_buf_printf(&b, ",%d,%d", r->best, r->same_as_best);
            csv_double(&b, r->gap_recovered);
            lb_buf_puts(&b, "\r\n");
        }
    int st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}
