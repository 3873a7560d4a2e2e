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

int lb_report_write_csv(const lb_results *s, const char *path)
{
    lb_buf b = {0};
    lb_buf_puts(&b, "strategy,seed,variant,tau,steps,wall_seconds,images_per_sec,n");
    for (int i = 0; i < LB_N_METRIC_FIELDS; i++) lb_buf_printf(&b, ",%s", lb_metric_fields[i].name);
    lb_buf_puts(&b, "\r\n");
    for (size_t i = 0; i < s->n_runs; i++) {
        const lb_run_record *r = &s->runs[i];
        if (r->metrics.n_classes < 1) {
            lb_buf_free(&b);
            return lb_error(LB_EINVAL, "%s: run %zu (strategy \"%s\") has no metrics", path, i,
                            r->strategy ? r->strategy : "");
        }
        csv_row(&b, r, "raw", NAN, &r->metrics);
        for (size_t k = 0; k < r->n_posthoc; k++)
            csv_row(&b, r, r->posthoc[k].name, r->posthoc[k].tau, &r->posthoc[k].metrics);
    }
    int st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}
