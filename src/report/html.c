/* report.html: one self-contained page (inline CSS and SVG, no script, nothing
 * fetched). */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "report/svg.h"

const char lb__report_css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe "
    "UI',sans-serif;margin:24px auto;"
    "max-width:1120px;padding:0 16px;color:#1d2330;background:#fff}\n"
    "h1{font-size:24px;margin:0 0 6px}h2{font-size:18px;margin:30px 0 "
    "4px;border-bottom:1px solid "
    "#dde1e8;padding-bottom:4px}\n"
    ".how{color:#555;margin:2px 0 "
    "10px;font-size:13px}.note{color:#777;font-style:italic}\n"
    ".warn{border-left:4px solid #c77b00;background:#fff6e5;padding:4px "
    "12px;margin:8px 0}\n"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:"
    "6px 0}\n"
    "th,td{padding:4px 8px;border-bottom:1px solid #e6e8ee;text-align:right}"
    "th:first-child,td:first-child,.l{text-align:left}th{background:#f4f5f8}\n"
    ".summary td{white-space:nowrap}.summary "
    "small{display:block;font-size:11px}\n"
    ".summary th{white-space:normal;vertical-align:bottom;min-width:56px}"
    ".summary th:first-child,.summary "
    "td:first-child{position:sticky;left:0;background:#fff;z-index:1;"
    "white-space:normal;min-width:150px}.summary "
    "th:first-child{background:#f4f5f8}\n"
    "details>summary{cursor:pointer;color:#2c6fbb;margin:6px 0}\n"
    "td.best{font-weight:700;background:#e6f3e6}small{margin-left:4px}small.up{"
    "color:#2f7d3a}"
    "small.down{color:#b3372f}\n"
    ".meta td{text-align:left;border:none;padding:1px 14px 1px 0}\n"
    ".legend{margin:4px 0 8px}.legend "
    "span{display:inline-flex;align-items:center;margin-right:14px;"
    "font-size:13px}.legend "
    "i{width:12px;height:12px;display:inline-block;margin-right:5px;"
    "border-radius:2px}\n"
    ".scroll{overflow-x:auto}svg.chart{max-width:100%;height:auto;display:"
    "block}svg text{font:11px "
    "system-ui,sans-serif;"
    "fill:#333}svg .axis{font-size:12px;fill:#111}svg .cell{font-size:10px}\n"
    "svg .grid{stroke:#e3e5ea}svg .line{fill:none;stroke-width:1.6}svg "
    ".frame{fill:none;"
    "stroke:#999}\n"
    ".figs{display:flex;flex-wrap:wrap;gap:22px}figure{margin:0}figcaption{"
    "font-weight:600;"
    "margin-bottom:4px}\n";

/* The metric columns of the summary table: the fields marked in_summary; a
 * column that is NaN everywhere is left out. */
#define NCOLS LB_N_METRIC_FIELDS
#define COL(c) (&lb_metric_fields[c])

typedef struct {
    const char *strategy, *variant; /* variant NULL: the raw model */
    double mean[NCOLS], std[NCOLS];
    int n; /* runs */
} row;

static const lb_metrics *metrics_of(const lb_run_record *r, const char *variant)
{
    if (!variant) return &r->metrics;
    for (size_t i = 0; i < r->n_posthoc; i++)
        if (!strcmp(r->posthoc[i].name, variant)) return &r->posthoc[i].metrics;
    return NULL;
}

static const char *str(const char *s) { return s ? s : ""; }

static float col_value(const lb_metrics *m, size_t c) { return lb_metric_get(m, COL(c)); }

/* Mean and sample standard deviation of each column over the runs of one row.
 */
static void aggregate(const lb_results *s, row *w)
{
    for (size_t c = 0; c < NCOLS; c++) {
        double sum = 0, sq = 0;
        int n = 0;
        w->n = 0;
        for (size_t i = 0; i < s->n_runs; i++) {
            const lb_metrics *m;
            if (strcmp(str(s->runs[i].strategy), w->strategy) ||
                !(m = metrics_of(&s->runs[i], w->variant)))
                continue;
            w->n++;
            float v = col_value(m, c);
            if (!isfinite(v)) continue;
            sum += v;
            n++;
        }
        w->mean[c] = n ? sum / n : NAN;
        for (size_t i = 0; n && i < s->n_runs; i++) {
            const lb_metrics *m;
            if (strcmp(str(s->runs[i].strategy), w->strategy) ||
                !(m = metrics_of(&s->runs[i], w->variant)))
                continue;
            float v = col_value(m, c);
            if (isfinite(v)) sq += (v - w->mean[c]) * (v - w->mean[c]);
        }
        w->std[c] = n > 1 ? sqrt(sq / (n - 1)) : NAN;
    }
}

static void section(lb_buf *b, const char *id, const char *title, const char *how)
{
    lb_buf_printf(b, "<section id=\"%s\">\n<h2>%s</h2>\n<p class=\"how\">%s</p>\n", id, title, how);
}

/* The warnings about the data, where the reader of the report cannot miss them.
 */
static void warnings_list(lb_buf *b, const lb_dataset_info *d)
{
    if (d->warnings.n == 0) return;
    lb_buf_printf(b, "<div class=\"warn\"><p><b>%d warning%s about the data</b>", d->warnings.n,
                  d->warnings.n == 1 ? "" : "s");
    if (d->n_skipped)
        lb_buf_printf(b, " (%d image file%s skipped)", d->n_skipped, d->n_skipped == 1 ? "" : "s");
    lb_buf_puts(b, ":</p>\n<ul>\n");
    for (int i = 0; i < d->warnings.n_kept; i++) {
        lb_buf_puts(b, "<li>");
        lb__html_escape(b, d->warnings.msg[i], 0);
        lb_buf_puts(b, "</li>\n");
    }
    if (d->warnings.n > d->warnings.n_kept)
        lb_buf_printf(b, "<li>and %d more</li>\n", d->warnings.n - d->warnings.n_kept);
    lb_buf_puts(b, "</ul></div>\n");
}

static void dataset_section(lb_buf *b, const lb_results *s)
{
    const lb_dataset_info *d = &s->dataset;
    int64_t tr = 0, va = 0, te = 0;
    int mx = 0, mn = INT32_MAX;
    for (int c = 0; c < d->n_classes; c++) {
        tr += d->train_counts[c];
        va += d->val_counts[c];
        te += d->test_counts[c];
        if (d->train_counts[c] > mx) mx = d->train_counts[c];
        if (d->train_counts[c] < mn) mn = d->train_counts[c];
    }
    const lb_metrics_opts *o = &s->metrics_opts;
    char how[512];
    if (o->shot_mode == LB_SHOT_RELATIVE)
        snprintf(how, sizeof how,
                 "Images per class in the training split, before any resampling. "
                 "Shot groups: many &gt; %.3g, few &lt; %.3g training images "
                 "(%.3g%% and %.3g%% of the "
                 "largest class).",
                 o->many_above * (double)mx, o->few_below * (double)mx, 100 * o->many_above,
                 100 * o->few_below);
    else
        snprintf(how, sizeof how,
                 "Images per class in the training split, before any resampling. "
                 "Shot groups: many &gt; %.6g, few &lt; %.6g training images.",
                 o->many_above, o->few_below);
    section(b, "dataset", "Training set", how);
    lb_buf_printf(b,
                  "<p>%d classes; %" PRId64 " training, %" PRId64 " validation, %" PRId64
                  " test images; largest class %d, smallest %d",
                  d->n_classes, tr, va, te, mx, mn);
    if (mn > 0) lb_buf_printf(b, " (imbalance ratio %.3g)", (double)mx / (double)mn);
    lb_buf_puts(b, ".</p>\n");
    warnings_list(b, d);
    double *v = lb_malloc((size_t)d->n_classes * sizeof *v);
    if (!v) {
        b->oom = 1;
        return;
    }
    for (int c = 0; c < d->n_classes; c++) v[c] = (double)d->train_counts[c];
    const char *color = lb__palette[0];
    lb__svg_bar_chart(b, (const char *const *)d->class_names, (size_t)d->n_classes, NULL, &color, 1,
                      v, "training images", NAN, d->n_classes <= 30);
    lb_free(v);
    static const char *const group[] = {"many", "medium", "few"};
    lb_buf_puts(b,
                "<details><summary>Counts per "
                "class</summary>\n<table><tr><th>class</th><th>#</th>"
                "<th>train</th><th>val</th><th>test</th><th>shot group</th></tr>\n");
    for (int c = 0; c < d->n_classes; c++) {
        lb_buf_puts(b, "<tr><td>");
        lb__html_escape(b, d->class_names[c], 0);
        lb_buf_printf(b, "</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%s</td></tr>\n", c,
                      d->train_counts[c], d->val_counts[c], d->test_counts[c],
                      group[lb_shot_group(d->train_counts[c], mx, o)]);
    }
    lb_buf_puts(b, "</table></details>\n</section>\n");
}

static void row_name(lb_buf *b, const row *w)
{
    lb__html_escape(b, w->strategy, 0);
    if (w->variant) {
        lb_buf_puts(b, " <em>+ ");
        lb__html_escape(b, w->variant, 0);
        lb_buf_puts(b, "</em>");
    }
}

/* Is column c one of the few the summary shows before "every metric"? */
static int key_column(size_t c)
{
    const char *n = COL(c)->name;
    return !strcmp(n, "balanced_accuracy") || !strcmp(n, "minority_recall") ||
           !strcmp(n, "macro_f1");
}

/* The interval cells of row w from the study's summary lines (blank without
 * them). */
static void interval_cells(lb_buf *b, const lb_results *s, const row *w, int have_diff,
                           int have_gap)
{
    const lb_summary_row *r = lb_results_summary_row(s, NULL, w->strategy, w->variant);
    lb_buf_puts(b, "<td>");
    if (r && isfinite(r->bacc_lo))
        lb_buf_printf(b, "[%.1f, %.1f]", 100 * r->bacc_lo, 100 * r->bacc_hi);
    lb_buf_puts(b, "</td>");
    if (have_diff) {
        lb_buf_puts(b, "<td>");
        if (r && r->has_diff)
            lb_buf_printf(b, "%+.1f <small>[%+.1f, %+.1f]%s</small>", 100 * r->diff,
                          100 * r->diff_lo, 100 * r->diff_hi, r->diff_excludes_zero ? " *" : "");
        if (r && r->best)
            lb_buf_puts(b, "<small>best</small>");
        else if (r && r->same_as_best)
            lb_buf_puts(b, "<small>= best</small>");
        lb_buf_puts(b, "</td>");
    }
    if (have_gap) {
        lb_buf_puts(b, "<td>");
        if (r && isfinite(r->gap_recovered)) lb_buf_printf(b, "%.0f%%", 100 * r->gap_recovered);
        lb_buf_puts(b, "</td>");
    }
}

/* What the summary tables show: which metric columns, each one's best mean, whether there
 * are intervals against the baseline and gaps. */
typedef struct {
    int show[NCOLS];
    double best[NCOLS];
    int have_diff, have_gap;
    const row *bl; /* the baseline's row, or NULL */
} table_plan;

static void plan_table(const lb_results *s, const row *rows, size_t nr, table_plan *t)
{
    const char *base = s->baseline ? s->baseline : "ce";
    t->bl = NULL;
    for (size_t i = 0; i < nr; i++)
        if (!rows[i].variant && !strcmp(rows[i].strategy, base)) t->bl = &rows[i];
    for (size_t c = 0; c < NCOLS; c++) {
        t->show[c] = 0;
        t->best[c] = NAN;
        for (size_t i = 0; i < nr && COL(c)->in_summary; i++) {
            double m = rows[i].mean[c];
            if (!isfinite(m)) continue;
            t->show[c] = 1;
            if (!isfinite(t->best[c]) || (!COL(c)->higher_is_better ? m < t->best[c] : m > t->best[c]))
                t->best[c] = m;
        }
    }
    t->have_diff = t->have_gap = 0;
    for (size_t i = 0; i < s->n_summary; i++) {
        t->have_diff |= s->summary[i].has_diff;
        t->have_gap |= isfinite(s->summary[i].gap_recovered);
    }
}

/* One cell: the mean ± sd, shaded when the best, with the difference from the baseline. */
static void metric_cell(lb_buf *b, const table_plan *t, const row *w, size_t c)
{
    double m = w->mean[c];
    if (!isfinite(m)) {
        lb_buf_puts(b, "<td>&#8211;</td>");
        return;
    }
    lb_buf_printf(b, "<td%s>%.1f", m == t->best[c] ? " class=\"best\"" : "", 100 * m);
    if (isfinite(w->std[c])) lb_buf_printf(b, " &#177; %.1f", 100 * w->std[c]);
    if (t->bl && w != t->bl && isfinite(t->bl->mean[c])) {
        double dlt = 100 * (m - t->bl->mean[c]);
        int good = !COL(c)->higher_is_better ? dlt < 0 : dlt > 0;
        lb_buf_printf(b, "<small class=\"%s\">%+.1f</small>", dlt == 0 ? "" : good ? "up" : "down", dlt);
    }
    lb_buf_puts(b, "</td>");
}

/* The table of the key columns (all = 0, with the interval columns after balanced accuracy)
 * or of every metric (all = 1). */
static void metric_table(lb_buf *b, const lb_results *s, const row *rows, size_t nr, const table_plan *t, int all)
{
    lb_buf_puts(b, "<div class=\"scroll\"><table class=\"summary\"><tr><th>strategy</th><th>runs</th>");
    for (size_t c = 0; c < NCOLS; c++) {
        if (!t->show[c] || (!all && !key_column(c))) continue;
        lb_buf_printf(b, "<th>%s</th>", COL(c)->label);
        if (!all && !strcmp(COL(c)->name, "balanced_accuracy"))
            lb_buf_printf(b, "<th>95%% t-interval</th>%s%s",
                          t->have_diff ? "<th>vs baseline [95% bootstrap]</th>" : "",
                          t->have_gap ? "<th>gap recovered</th>" : "");
    }
    lb_buf_puts(b, "</tr>\n");
    for (size_t i = 0; i < nr; i++) {
        lb_buf_puts(b, "<tr><td>");
        row_name(b, &rows[i]);
        lb_buf_printf(b, "</td><td>%d</td>", rows[i].n);
        for (size_t c = 0; c < NCOLS; c++) {
            if (!t->show[c] || (!all && !key_column(c))) continue;
            metric_cell(b, t, &rows[i], c);
            if (!all && !strcmp(COL(c)->name, "balanced_accuracy"))
                interval_cells(b, s, &rows[i], t->have_diff, t->have_gap);
        }
        lb_buf_puts(b, "</tr>\n");
    }
    lb_buf_puts(b, "</table></div>\n");
}

static void summary_section(lb_buf *b, const lb_results *s, row *rows, size_t nr)
{
    table_plan t;
    plan_table(s, rows, nr, &t);
    section(b, "summary", "Summary",
            "Test-set metrics in %, mean &#177; standard deviation over seeds. The best value of each column is "
            "shaded; the small number is the difference from the baseline in points (green: better). Beside "
            "balanced accuracy: its 95% t-interval over seeds, the difference from the baseline with its "
            "paired-bootstrap interval (* where it excludes 0; &#8220;= best&#8221;: not distinguishable from "
            "the best) and, with an oracle, the share of the baseline-to-oracle gap recovered. Rows marked + are "
            "variants of the same trained models: post-hoc corrections, or a stage that re-balanced only the "
            "classifier (crt, lws, taunorm, fsmote: within the same step budget). ECE: lower is better; the "
            "other metrics are behind &#8220;Every metric&#8221;.");
    lb_buf_puts(b, "<p class=\"how\">Baseline: <b>");
    lb__html_escape(b, s->baseline ? s->baseline : "ce", 0);
    lb_buf_puts(b, t.bl ? "</b></p>\n" : "</b> (not among the runs, so no differences are shown)</p>\n");
    metric_table(b, s, rows, nr, &t, 0);
    lb_buf_puts(b, "<details><summary>Every metric</summary>\n");
    metric_table(b, s, rows, nr, &t, 1);
    lb_buf_puts(b, "</details>\n</section>\n");
}

/* Per-class recall (mean over seeds) of each strategy's raw model: strategies x
 * classes, the classes in training-count order (largest first). */
static void recall_section(lb_buf *b, const lb_results *s, const char **strat, size_t ns)
{
    const lb_dataset_info *d = &s->dataset;
    int C = d->n_classes;
    section(b, "recall", "Recall per class",
            "Share of each class's test images classified correctly, mean over "
            "seeds; one row per strategy, the "
            "classes from the most training images (left) to the fewest (right). "
            "Imbalance shows as a light right "
            "side; a good strategy evens the row out.");
    double *v = lb_calloc((size_t)C * ns + 1, sizeof *v);
    int *order = lb_malloc((size_t)C * sizeof *order + 1);
    const char **cols = lb_malloc((size_t)C * sizeof *cols + 1);
    if (!v || !order || !cols) {
        b->oom = 1;
    } else {
        for (int c = 0; c < C; c++) order[c] = c;
        for (int a = 1; a < C; a++) /* stable: ties keep the class order */
            for (int k = a; k > 0 && d->train_counts[order[k]] > d->train_counts[order[k - 1]];
                 k--) {
                int t = order[k];
                order[k] = order[k - 1];
                order[k - 1] = t;
            }
        for (int c = 0; c < C; c++) cols[c] = d->class_names[order[c]];
        for (size_t k = 0; k < ns; k++) {
            int n = 0;
            for (size_t i = 0; i < s->n_runs; i++) {
                if (strcmp(str(s->runs[i].strategy), strat[k])) continue;
                n++;
                for (int c = 0; c < C; c++)
                    v[k * (size_t)C + (size_t)c] += s->runs[i].metrics.recall[order[c]];
            }
            for (int c = 0; c < C; c++)
                v[k * (size_t)C + (size_t)c] = n ? v[k * (size_t)C + (size_t)c] / n : NAN;
        }
        lb__svg_value_heatmap(b, strat, ns, cols, (size_t)C, v, "recall per strategy and class");
    }
    lb_free(v);
    lb_free(order);
    lb_free(cols);
    lb_buf_puts(b, "</section>\n");
}

/* Which differences are real: balanced accuracy's mean and t-interval per
 * summary line, best first; the best and the lines not distinguishable from it
 * shaded. */
static void dots_section(lb_buf *b, const lb_results *s)
{
    size_t n = s->n_summary;
    if (!n) return;
    section(b, "intervals", "Which differences are real",
            "Test balanced accuracy in %, mean over seeds with its 95% "
            "t-interval, best first. Dark green: the best; "
            "light green: not distinguishable from it (the paired bootstrap "
            "interval of the difference includes 0; "
            "docs/metrics.md).");
    size_t *idx = lb_malloc(n * sizeof *idx);
    const char **labels = lb_malloc(n * sizeof *labels);
    char(*text)[200] = lb_malloc(n * sizeof *text);
    double *v = lb_malloc(3 * n * sizeof *v);
    int *mark = lb_malloc(n * sizeof *mark);
    if (!idx || !labels || !text || !v || !mark) {
        b->oom = 1;
    } else {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        for (size_t a = 1; a < n; a++)
            for (size_t k = a; k > 0 && s->summary[idx[k]].bacc > s->summary[idx[k - 1]].bacc;
                 k--) {
                size_t t = idx[k];
                idx[k] = idx[k - 1];
                idx[k - 1] = t;
            }
        for (size_t i = 0; i < n; i++) {
            const lb_summary_row *r = &s->summary[idx[i]];
            snprintf(text[i], sizeof text[i], "%s%s%s", r->strategy, r->variant ? " / " : "",
                     r->variant ? r->variant : "");
            labels[i] = text[i];
            v[i] = r->bacc;
            v[n + i] = r->bacc_lo;
            v[2 * n + i] = r->bacc_hi;
            mark[i] = r->best ? 1 : r->same_as_best ? 2 : 0;
        }
        lb__svg_dot_plot(b, labels, v, v + n, v + 2 * n, mark, n, "test balanced accuracy (%)");
    }
    lb_free(idx);
    lb_free(labels);
    lb_free(text);
    lb_free(v);
    lb_free(mark);
    lb_buf_puts(b, "</section>\n");
}

static void confusion_section(lb_buf *b, const lb_results *s, const char **strat, size_t ns)
{
    int C = s->dataset.n_classes;
    section(b, "confusion", "Confusion matrices",
            "Rows are the true classes, columns the predicted ones; each cell is "
            "the % of the row's "
            "test images (summed over seeds), so a perfect model is a dark "
            "diagonal. Hover a cell "
            "for its count.");
    int64_t *cm = lb_malloc((size_t)C * (size_t)C * sizeof *cm);
    if (!cm) {
        b->oom = 1;
        return;
    }
    lb_buf_puts(b, "<div class=\"figs\">\n");
    for (size_t k = 0; k < ns; k++) {
        int n = 0;
        memset(cm, 0, (size_t)C * (size_t)C * sizeof *cm);
        for (size_t i = 0; i < s->n_runs; i++) {
            if (strcmp(str(s->runs[i].strategy), strat[k])) continue;
            n++;
            for (size_t j = 0; j < (size_t)C * (size_t)C; j++)
                cm[j] += s->runs[i].metrics.confusion[j];
        }
        lb_buf_puts(b, "<figure><figcaption>");
        lb__html_escape(b, strat[k], 0);
        lb_buf_printf(b, " <span class=\"note\">(%d run%s)</span></figcaption>\n", n,
                      n == 1 ? "" : "s");
        lb__svg_heatmap(b, (const char *const *)s->dataset.class_names, C, cm, strat[k]);
        lb_buf_puts(b, "</figure>\n");
    }
    lb_buf_puts(b, "</div>\n</section>\n");
    lb_free(cm);
}

/* One line per run, coloured by strategy; the legend names each strategy once.
 */
static void curve_chart(lb_buf *b, const lb_results *s, const char **strat, const char **colors,
                        size_t ns, int which, const char *ylabel)
{
    size_t total = 0;
    for (size_t i = 0; i < s->n_runs; i++)
        total += (which ? s->runs[i].val_bacc : s->runs[i].loss).n;
    lb_series *ser = lb_calloc(s->n_runs ? s->n_runs : 1, sizeof *ser);
    double *xy = lb_malloc((2 * total + 1) * sizeof *xy);
    char *titles = lb_malloc(s->n_runs * 96 + 1);
    if (!ser || !xy || !titles) {
        lb_free(ser);
        lb_free(xy);
        lb_free(titles);
        b->oom = 1;
        return;
    }
    double *p = xy;
    for (size_t i = 0; i < s->n_runs; i++) {
        const lb_run_record *r = &s->runs[i];
        const lb_curve *c = which ? &r->val_bacc : &r->loss;
        size_t k = 0;
        while (k < ns && strcmp(strat[k], str(r->strategy))) k++;
        int first = 1; /* only the strategy's first run is named in the legend */
        for (size_t j = 0; j < i; j++) first &= strcmp(str(s->runs[j].strategy), strat[k]) != 0;
        snprintf(titles + i * 96, 96, "%.70s, seed %" PRIu64, str(r->strategy), r->seed);
        ser[i] = (lb_series){
            first ? strat[k] : NULL, titles + i * 96, colors[k], p, p + c->n, c->n, 0, 0};
        for (size_t j = 0; j < c->n; j++) {
            p[j] = (double)c->step[j];
            p[c->n + j] = c->value[j];
        }
        p += 2 * c->n;
    }
    const char **names = lb_malloc((s->n_runs + 1) * sizeof *names),
               **cl = lb_malloc((s->n_runs + 1) * sizeof *cl);
    if (names && cl) {
        for (size_t i = 0; i < s->n_runs; i++) {
            names[i] = ser[i].name;
            cl[i] = ser[i].color;
        }
        lb__html_legend(b, names, cl, s->n_runs);
    } else {
        b->oom = 1;
    }
    lb__svg_line_chart(b, ser, s->n_runs, "training step", ylabel, !which);
    lb_free(names);
    lb_free(cl);
    lb_free(ser);
    lb_free(xy);
    lb_free(titles);
}

/* Binary tasks: one chart (PR or ROC) with a line per run and, on the PR chart,
 * a dot per run at its operating point on the test split. */
static void binary_chart(lb_buf *b, const lb_results *s, const char **strat, const char **colors,
                         size_t ns, int roc)
{
    size_t nr = s->n_runs, total = 0;
    for (size_t i = 0; i < nr; i++) total += s->runs[i].pr.n + 1;
    lb_series *ser = lb_calloc(2 * nr + 1, sizeof *ser);
    double *xy = lb_malloc((2 * total + 1) * sizeof *xy);
    char *titles = lb_malloc(2 * nr * 128 + 1);
    if (!ser || !xy || !titles) {
        b->oom = 1;
    } else {
        double *p = xy;
        size_t n = 0;
        for (size_t i = 0; i < nr; i++) {
            const lb_run_record *r = &s->runs[i];
            const lb_xy *c = roc ? &r->roc : &r->pr;
            size_t k = 0;
            while (k < ns && strcmp(strat[k], str(r->strategy))) k++;
            snprintf(titles + 2 * i * 128, 128, "%.70s, seed %" PRIu64, str(r->strategy), r->seed);
            for (size_t j = 0; j < c->n; j++) p[j] = c->x[j], p[c->n + j] = c->y[j];
            ser[n++] = (lb_series){NULL, titles + 2 * i * 128, colors[k], p, p + c->n, c->n, 0, 0};
            p += 2 * c->n;
            if (roc || !r->op.set) continue;
            snprintf(titles + (2 * i + 1) * 128, 128,
                     "%.60s, seed %" PRIu64 ": recall %.3f, precision %.3f", str(r->strategy),
                     r->seed, r->op.test_recall, r->op.test_precision);
            p[0] = r->op.test_recall, p[1] = r->op.test_precision;
            ser[n++] = (lb_series){NULL, titles + (2 * i + 1) * 128, colors[k], p, p + 1, 1, 0, 1};
            p += 2;
        }
        lb__svg_line_chart(b, ser, n, roc ? "false positive rate" : "recall",
                           roc ? "true positive rate" : "precision", 1);
    }
    lb_free(ser);
    lb_free(xy);
    lb_free(titles);
}

/* The operating points: per run, the threshold chosen on validation and what it
 * gives. */
static void operating_table(lb_buf *b, const lb_results *s)
{
    lb_buf_puts(b,
                "<table><tr><th class=\"l\">run</th><th>threshold</th><th>val. "
                "recall</th><th>val. precision</th>"
                "<th>test recall</th><th>test precision</th></tr>\n");
    for (size_t i = 0; i < s->n_runs; i++) {
        const lb_run_record *r = &s->runs[i];
        if (!r->op.set) continue;
        lb_buf_puts(b, "<tr><td class=\"l\">");
        lb__html_escape(b, r->strategy, 60);
        lb_buf_printf(b,
                      ", seed %" PRIu64
                      "</td><td>%.4g</td><td>%.3f</td><td>%.3f</"
                      "td><td>%.3f</td><td>%.3f</td></tr>\n",
                      r->seed, r->op.threshold, r->op.val_recall, r->op.val_precision,
                      r->op.test_recall, r->op.test_precision);
    }
    lb_buf_puts(b, "</table>\n");
}

static void binary_section(lb_buf *b, const lb_results *s, const char **strat, const char **colors,
                           size_t ns)
{
    int any = 0, ops = 0, k = 1;
    float target = NAN;
    for (size_t i = 0; i < s->n_runs; i++) {
        any |= s->runs[i].pr.n > 0;
        ops |= s->runs[i].op.set;
        if (s->runs[i].op.set) target = s->runs[i].op.target_recall, k = s->runs[i].op.positive;
    }
    if (!any) return;
    char how[400];
    snprintf(how, sizeof how,
             "Binary task: the test precision-recall and ROC curves of the rare "
             "class, '%s', one line per run. The dots "
             "are each run's operating point: the threshold on its probability "
             "that reaches recall %.2f on the "
             "validation split, applied to the test split.",
             s->dataset.n_classes > k ? str(s->dataset.class_names[k]) : "?", target);
    section(b, "binary", "Precision-recall, ROC and the operating point", how);
    lb__html_legend(b, strat, colors, ns);
    binary_chart(b, s, strat, colors, ns, 0);
    binary_chart(b, s, strat, colors, ns, 1);
    if (ops) operating_table(b, s);
    lb_buf_puts(b, "</section>\n");
}

/* The value of key in a loss spec "name:k1=v1,k2=v2" (a value may hold commas:
 * the items up to the next "k=" are its), into out; 0 when absent. */
static int spec_value(const char *spec, const char *key, char *out, size_t size)
{
    const char *p = strchr(spec, ':');
    size_t kl = strlen(key);
    while (p && *p) {
        p++;
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            const char *v = p + kl + 1, *e = v;
            while (*e) { /* up to the "," before the next "k=" */
                if (*e == ',') {
                    size_t m = strcspn(e + 1, ",=");
                    if (e[1 + m] == '=') break;
                }
                e++;
            }
            snprintf(out, size, "%.*s", (int)(e - v), v);
            return 1;
        }
        p = strchr(p, ',');
    }
    return 0;
}

/* The keys of a grid whose values differ between its points (at most two), in
 * spec order. */
static int varying_keys(const lb_run_record *r, char keys[2][32])
{
    int n = 0;
    const char *p = strchr(r->grid[0].spec, ':');
    while (p && *p && n < 2) {
        p++;
        size_t m = strcspn(p, "=,");
        if (p[m] == '=' && m < 32) {
            char k[32], a[64] = "", v[64] = "";
            snprintf(k, sizeof k, "%.*s", (int)m, p);
            spec_value(r->grid[0].spec, k, a, sizeof a);
            for (size_t g = 1; g < r->n_grid; g++)
                if (spec_value(r->grid[g].spec, k, v, sizeof v) && strcmp(a, v)) {
                    snprintf(keys[n++], 32, "%s", k);
                    break;
                }
        }
        p = strchr(p, ',');
    }
    return n;
}

/* Index of s in list [*n] (added if new). */
static size_t index_of(char (*list)[64], size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(list[i], s)) return i;
    snprintf(list[*n], 64, "%s", s);
    return (*n)++;
}

/* A grid over two keys (focal's gamma x alpha, say) as a heatmap of validation
 * balanced accuracy: the analogue of Lin et al.'s Table 1. */
static void grid_heatmap(lb_buf *b, const lb_run_record *r)
{
    char keys[2][32];
    if (r->n_grid < 2 || r->n_grid > 400 || varying_keys(r, keys) != 2) return;
    char(*rv)[64] = lb_malloc(r->n_grid * 64), (*cv)[64] = lb_malloc(r->n_grid * 64);
    const char **rl = lb_malloc(r->n_grid * sizeof *rl), **cl = lb_malloc(r->n_grid * sizeof *cl);
    double *v = lb_malloc(r->n_grid * r->n_grid * sizeof *v);
    size_t nr = 0, nc = 0;
    if (!rv || !cv || !rl || !cl || !v) {
        b->oom = 1;
    } else {
        for (size_t i = 0; i < r->n_grid * r->n_grid; i++) v[i] = NAN;
        for (size_t g = 0; g < r->n_grid; g++) {
            char a[64] = "", c[64] = "";
            spec_value(r->grid[g].spec, keys[0], a, sizeof a);
            spec_value(r->grid[g].spec, keys[1], c, sizeof c);
            size_t i = index_of(rv, &nr, a), j = index_of(cv, &nc, c);
            v[i * r->n_grid + j] = r->grid[g].val_balanced_accuracy;
        }
        for (size_t i = 0; i < nr; i++) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%s = %s", keys[0], rv[i]);
            snprintf(rv[i], 64, "%s", tmp);
            rl[i] = rv[i];
        }
        for (size_t j = 0; j < nc; j++) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%s = %s", keys[1], cv[j]);
            snprintf(cv[j], 64, "%s", tmp);
            cl[j] = cv[j];
        }
        double *packed = v; /* rows of nc values */
        for (size_t i = 0; i < nr; i++) memmove(packed + i * nc, v + i * r->n_grid, nc * sizeof *v);
        lb_buf_puts(b, "<figure><figcaption>");
        lb__html_escape(b, r->strategy, 0);
        lb_buf_puts(b, ": validation balanced accuracy (%) per grid point</figcaption>\n");
        lb__svg_value_heatmap(b, rl, nr, cl, nc, packed,
                              "validation balanced accuracy per grid point");
        lb_buf_puts(b, "</figure>\n");
    }
    lb_free(rv);
    lb_free(cv);
    lb_free(rl);
    lb_free(cl);
    lb_free(v);
}

static void grid_section(lb_buf *b, const lb_results *s)
{
    int any = 0;
    for (size_t i = 0; i < s->n_runs; i++) any |= s->runs[i].n_grid > 0;
    if (!any) return;
    section(b, "grids", "Tuning grids",
            "Strategies with a hyper-parameter grid tried each point on the "
            "validation split; "
            "the chosen point (highest validation balanced accuracy) is marked "
            "&#9733;. A grid over two "
            "keys is also drawn as a heatmap (rows: the first key, columns: the "
            "second).");
    for (size_t i = 0; i < s->n_runs; i++)
        if (s->runs[i].n_grid > 1 && s->runs[i].grid_chosen >= 0) {
            size_t k = 0; /* the first run of each strategy: its grid is the same on
                             every seed */
            while (k < i && strcmp(str(s->runs[k].strategy), str(s->runs[i].strategy))) k++;
            if (k == i) grid_heatmap(b, &s->runs[i]);
        }
    lb_buf_puts(b,
                "<details><summary>Every grid "
                "point</summary>\n<table><tr><th>run</th><th class=\"l\">grid "
                "point</th><th>val. balanced acc. "
                "(%)</th></tr>\n");
    for (size_t i = 0; i < s->n_runs; i++) {
        const lb_run_record *r = &s->runs[i];
        for (size_t g = 0; g < r->n_grid; g++) {
            lb_buf_puts(b, "<tr><td>");
            if (g == 0) {
                lb__html_escape(b, r->strategy, 0);
                lb_buf_printf(b, ", seed %" PRIu64, r->seed);
            }
            lb_buf_puts(b, "</td><td class=\"l\">");
            lb__html_escape(b, r->grid[g].spec, 0);
            lb_buf_printf(b, "%s</td><td>%.1f</td></tr>\n",
                          (int)g == r->grid_chosen ? " &#9733;" : "",
                          100.0 * r->grid[g].val_balanced_accuracy);
        }
    }
    lb_buf_puts(b, "</table>\n</details>\n</section>\n");
}

static void focal_section(lb_buf *b)
{
    enum { NP = 101 };
    static const double gammas[] = {0, 0.5, 1, 2, 5};
    /* legend text with HTML entities, hover titles in plain text */
    static const char *const names[] = {"&#947; = 0 (cross-entropy)", "&#947; = 0.5", "&#947; = 1",
                                        "&#947; = 2", "&#947; = 5"};
    static const char *const titles[] = {"gamma 0", "gamma 0.5", "gamma 1", "gamma 2", "gamma 5"};
    double x[NP], y[5][NP];
    lb_series ser[5];
    section(b, "focal", "Focal loss: the modulating factor",
            "Focal loss multiplies each sample's cross-entropy by (1 &#8722; "
            "p<sub>t</sub>)<sup>&#947;</sup>, "
            "where p<sub>t</sub> is the probability the model gives the true class: "
            "well-classified "
            "samples (p<sub>t</sub> near 1) are down-weighted more as &#947; grows.");
    for (int i = 0; i < NP; i++) x[i] = i / (double)(NP - 1);
    lb_buf_puts(b, "<div class=\"legend\">");
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < NP; i++) y[g][i] = pow(1 - x[i], gammas[g]);
        ser[g] = (lb_series){NULL, titles[g], lb__palette[g], x, y[g], NP, 0, 0};
        lb_buf_printf(b, "<span><i style=\"background:%s\"></i>%s</span>", lb__palette[g],
                      names[g]);
    }
    lb_buf_puts(b, "</div>\n");
    lb__svg_line_chart(b, ser, 5, "p_t (probability of the true class)", "(1 - p_t)^gamma", 1);
    lb_buf_puts(b, "</section>\n");
}

static void flags_section(lb_buf *b, const lb_results *s)
{
    section(b, "flags", "Settings",
            "The flags the study ran with; rerun with the same flags (and "
            "seeds) to reproduce it.");
    lb_buf_puts(b, "<table class=\"meta\">\n");
    for (size_t i = 0; i < s->n_flags; i++) {
        lb_buf_puts(b, "<tr><td>--");
        lb__html_escape(b, s->flags[i].key, 0);
        lb_buf_puts(b, "</td><td>");
        lb__html_escape(b, s->flags[i].value, 0);
        lb_buf_puts(b, "</td></tr>\n");
    }
    if (!s->n_flags) lb_buf_puts(b, "<tr><td class=\"note\">none recorded</td></tr>\n");
    lb_buf_puts(b, "</table>\n</section>\n");
}

/* Refuses a study without a dataset, or with a run whose metrics have another
 * number of classes; *max_rows is the most summary rows the runs can give. */
static int check_runs(const lb_results *s, const char *path, size_t *max_rows)
{
    const lb_dataset_info *d = &s->dataset;
    if (d->n_classes < 1)
        return lb_error(LB_EINVAL,
                        "%s: the study has no dataset description (call "
                        "lb_results_set_dataset)",
                        path);
    *max_rows = 0;
    for (size_t i = 0; i < s->n_runs; i++) {
        const lb_run_record *r = &s->runs[i];
        int bad = r->metrics.n_classes != d->n_classes;
        for (size_t k = 0; k < r->n_posthoc; k++)
            bad |= r->posthoc[k].metrics.n_classes != d->n_classes;
        if (bad)
            return lb_error(LB_EINVAL,
                            "%s: run %zu (strategy \"%s\") has metrics for %d "
                            "classes, the dataset has %d",
                            path, i, str(r->strategy), r->metrics.n_classes, d->n_classes);
        *max_rows += 1 + r->n_posthoc;
    }
    return LB_OK;
}

/* The strategies in order of first appearance, each with its colour; returns
 * how many. */
static size_t list_strategies(const lb_results *s, const char **strat, const char **colors)
{
    size_t ns = 0;
    for (size_t i = 0; i < s->n_runs; i++) {
        size_t k = 0;
        while (k < ns && strcmp(strat[k], str(s->runs[i].strategy))) k++;
        if (k == ns) {
            colors[ns] = lb__palette[ns % LB_PALETTE_N];
            strat[ns++] = str(s->runs[i].strategy);
        }
    }
    return ns;
}

/* The summary rows: per strategy the raw model, then each post-hoc variant its
 * runs have; returns how many. */
static size_t list_rows(const lb_results *s, const char **strat, size_t ns, row *rows)
{
    size_t nr = 0;
    for (size_t k = 0; k < ns; k++) {
        rows[nr++] = (row){.strategy = strat[k]};
        for (size_t i = 0; i < s->n_runs; i++) {
            const lb_run_record *r = &s->runs[i];
            if (strcmp(str(r->strategy), strat[k])) continue;
            for (size_t v = 0; v < r->n_posthoc; v++) {
                size_t j = 0;
                while (j < nr && !(rows[j].variant && !strcmp(rows[j].strategy, strat[k]) &&
                                   !strcmp(rows[j].variant, r->posthoc[v].name)))
                    j++;
                if (j == nr)
                    rows[nr++] = (row){.strategy = strat[k], .variant = r->posthoc[v].name};
            }
        }
    }
    return nr;
}

/* The page's head (title, inline CSS) and its header table describing the
 * study. */
static void page_header(lb_buf *b, const lb_results *s, size_t ns)
{
    const lb_dataset_info *d = &s->dataset;
    const char *title = s->title ? s->title : "libra imbalance study";
    lb_buf_puts(b,
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, "
                "initial-scale=1\">\n<title>");
    lb__html_escape(b, title, 0);
    lb_buf_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>",
                  lb__report_css);
    lb__html_escape(b, title, 0);
    lb_buf_puts(b, "</h1>\n<table class=\"meta\">\n<tr><td>data</td><td>");
    lb__html_escape(b, d->source, 0);
    lb_buf_puts(b, "</td></tr>\n<tr><td>imbalance profile</td><td>");
    lb__html_escape(b, d->profile, 0);
    lb_buf_printf(b,
                  "</td></tr>\n<tr><td>split seed</td><td>%" PRIu64
                  "</td></tr>\n"
                  "<tr><td>runs</td><td>%zu (%zu strateg%s)</td></tr>\n"
                  "<tr><td>libra</td><td>%s</td></tr>\n</table>\n</header>\n",
                  d->split_seed, s->n_runs, ns, ns == 1 ? "y" : "ies", lb_version());
}

/* The sections about the runs' results (there is at least one strategy). */
static void results_sections(lb_buf *b, const lb_results *s, const char **strat,
                             const char **colors, size_t ns, row *rows, size_t nr)
{
    summary_section(b, s, rows, nr);
    dots_section(b, s);
    recall_section(b, s, strat, ns);
    confusion_section(b, s, strat, ns);
    section(b, "curves", "Training curves",
            "Training loss (top) and validation balanced accuracy at each "
            "evaluation point "
            "(bottom), one line per run, coloured by strategy. Hover a line for "
            "its run.");
    curve_chart(b, s, strat, colors, ns, 0, "training loss");
    curve_chart(b, s, strat, colors, ns, 1, "validation balanced accuracy");
    lb_buf_puts(b, "</section>\n");
    binary_section(b, s, strat, colors, ns);
    grid_section(b, s);
}

int lb_report_write_html(const lb_results *s, const char *path)
{
    size_t max_rows = 0;
    int st = check_runs(s, path, &max_rows);
    if (st) return st;
    /* strategies in order of first appearance, and the summary rows (raw, then
     * variants) */
    const char **strat = lb_malloc((s->n_runs + 1) * sizeof *strat);
    const char **colors = lb_malloc((s->n_runs + 1) * sizeof *colors);
    row *rows = lb_calloc(max_rows + 1, sizeof *rows);
    if (!strat || !colors || !rows) {
        lb_free(strat);
        lb_free(colors);
        lb_free(rows);
        return lb_error(LB_ENOMEM, "%s: out of memory", path);
    }
    size_t ns = list_strategies(s, strat, colors);
    size_t nr = list_rows(s, strat, ns, rows);
    for (size_t i = 0; i < nr; i++) aggregate(s, &rows[i]);

    lb_buf b = {0};
    page_header(&b, s, ns);
    dataset_section(&b, s);
    if (ns)
        results_sections(&b, s, strat, colors, ns, rows, nr);
    else
        lb_buf_puts(&b, "<p class=\"note\">No run has finished yet.</p>\n");
    focal_section(&b);
    flags_section(&b, s);
    lb_buf_puts(&b, "</body>\n</html>\n");
    st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    lb_free(strat);
    lb_free(colors);
    lb_free(rows);
    return st;
}
