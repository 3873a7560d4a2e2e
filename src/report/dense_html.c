/* A dense study's results: results.json, results.csv, report.html and the terminal table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/svg.h"

/* ---- aggregation ---- */

static void interval(const double *v, int n, double *mean, double *lo, double *hi)
{
    if (n == 0) {
        *mean = *lo = *hi = NAN;
        return;
    }
    lb_mean_ci95(v, n, mean, lo, hi);
}

static void summarise_one(const lb_dense_record *recs, int n, lb_dense_summary_row *row, double *a, double *b)
{
    int k = 0;
    double loss = 0, ips = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(recs[i].strategy, row->strategy) != 0) continue;
        row->runs++;
        ips += recs[i].images_per_second;
        if (recs[i].diverged_step) {
            row->diverged++;
            continue;
        }
        a[k] = recs[i].mean_ap;
        b[k] = recs[i].image_mean_ap;
        loss += recs[i].final_loss;
        k++;
    }
    interval(a, k, &row->map, &row->map_lo, &row->map_hi);
    interval(b, k, &row->image_map, &row->image_map_lo, &row->image_map_hi);
    row->final_loss = k ? loss / k : NAN;
    row->images_per_second = row->runs ? ips / row->runs : NAN;
}

int lb_dense_summarise(const lb_dense_record *recs, int n, lb_dense_summary_row *rows, int *n_rows)
{
    double *a = lb_malloc((size_t)(n + 1) * sizeof(double)), *b = lb_malloc((size_t)(n + 1) * sizeof(double));
    if (!a || !b) {
        lb_free(a);
        lb_free(b);
        return lb_error(LB_ENOMEM, "dense results: out of memory");
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < m && !seen; j++) seen = strcmp(rows[j].strategy, recs[i].strategy) == 0;
        if (seen) continue;
        rows[m] = (lb_dense_summary_row){.strategy = recs[i].strategy, .loss = recs[i].loss_spec, .prior = recs[i].prior};
        summarise_one(recs, n, &rows[m], a, b);
        m++;
    }
    lb_free(a);
    lb_free(b);
    *n_rows = m;
    return LB_OK;
}

static int best_row(const lb_dense_summary_row *rows, int m)
{
    int best = -1;
    for (int j = 0; j < m; j++)
        if (isfinite(rows[j].map) && (best < 0 || rows[j].map > rows[best].map)) best = j;
    return best;
}

/* ---- results.json and results.csv ---- */

static void json_summary(lb_jw *w, const lb_dense_summary_row *rows, int m)
{
    lb_jw_array(w, "summary", 0);
    for (int j = 0; j < m; j++) {
        const lb_dense_summary_row *r = &rows[j];
        lb_jw_object(w, NULL, 1);
        lb_jw_string(w, "strategy", r->strategy);
        lb_jw_string(w, "loss", r->loss);
        lb_jw_float(w, "prior", r->prior);
        lb_jw_int(w, "runs", r->runs);
        lb_jw_int(w, "diverged", r->diverged);
        lb_jw_float(w, "mean_ap", r->map);
        lb_jw_float(w, "mean_ap_lo", r->map_lo);
        lb_jw_float(w, "mean_ap_hi", r->map_hi);
        lb_jw_float(w, "image_mean_ap", r->image_map);
        lb_jw_float(w, "image_mean_ap_lo", r->image_map_lo);
        lb_jw_float(w, "image_mean_ap_hi", r->image_map_hi);
        lb_jw_float(w, "final_loss", r->final_loss);
        lb_jw_float(w, "images_per_second", r->images_per_second);
        lb_jw_end(w, '}');
    }
    lb_jw_end(w, ']');
}

static void json_runs(lb_jw *w, const lb_dense_record *recs, int n)
{
    lb_jw_array(w, "runs", 0);
    for (int i = 0; i < n; i++) {
        const lb_dense_record *r = &recs[i];
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
        lb_jw_object(w, NULL, 1);
        lb_jw_string(w, "strategy", r->strategy);
        lb_jw_string(w, "seed", seed);
        lb_jw_int(w, "steps", r->steps);
        lb_jw_int(w, "diverged_step", r->diverged_step);
        lb_jw_float(w, "mean_ap", r->mean_ap);
        lb_jw_float(w, "image_mean_ap", r->image_mean_ap);
        lb_jw_float(w, "final_loss", r->final_loss);
        lb_jw_float(w, "images_per_second", r->images_per_second);
        lb_jw_end(w, '}');
    }
    lb_jw_end(w, ']');
}

static int write_json(const lb_dense_record *recs, int n, const lb_dense_summary_row *rows, int m,
                      const lb_dense_report_info *in, const char *path)
{
    lb_buf b = {0};
    lb_jw w;
    lb_jw_init(&w, &b);
    lb_jw_object(&w, NULL, 0);
    lb_jw_string(&w, "format", "libra-dense-results");
    lb_jw_int(&w, "version", 1);
    lb_jw_string(&w, "task", "dense");
    lb_jw_string(&w, "data", in->data);
    lb_jw_string(&w, "trunk", in->trunk);
    lb_jw_int(&w, "seeds", in->seeds);
    lb_jw_float(&w, "foreground_share", in->foreground_share);
    lb_jw_float(&w, "test_foreground_share", in->test_foreground_share);
    lb_jw_array(&w, "classes", 1);
    for (int c = 0; c < in->n_classes; c++) lb_jw_string(&w, NULL, in->class_names ? in->class_names[c] : NULL);
    lb_jw_end(&w, ']');
    lb_jw_string(&w, "settings", in->settings);
    json_summary(&w, rows, m);
    json_runs(&w, recs, n);
    lb_jw_end(&w, '}');
    lb_buf_puts(&b, "\n");
    int st = lb_buf_status(&b, path);
    if (st == LB_OK) st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

/* A CSV field: quoted when it holds a comma, a quote or a newline. */
static void csv_field(lb_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        lb_buf_puts(b, s);
        return;
    }
    lb_buf_puts(b, "\"");
    for (; *s; s++) lb_buf_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    lb_buf_puts(b, "\"");
}

static void csv_num(lb_buf *b, double v)
{
    if (isfinite(v)) lb_buf_printf(b, ",%.6g", v);
    else lb_buf_puts(b, ",");
}

static int write_csv(const lb_dense_record *recs, int n, const lb_dense_report_info *in, const char *path)
{
    lb_buf b = {0};
    lb_buf_puts(&b, "strategy,loss,prior,seed,steps,diverged_step,mean_ap,image_mean_ap,final_loss,foreground_share,"
                    "test_foreground_share,images_per_second");
    for (int c = 0; c < in->n_classes; c++) {
        lb_buf_puts(&b, ",");
        char head[300];
        snprintf(head, sizeof head, "ap:%s", in->class_names ? in->class_names[c] : "?");
        csv_field(&b, head);
    }
    lb_buf_puts(&b, "\n");
    for (int i = 0; i < n; i++) {
        const lb_dense_record *r = &recs[i];
        csv_field(&b, r->strategy);
        lb_buf_puts(&b, ",");
        csv_field(&b, r->loss_spec);
        lb_buf_printf(&b, ",%.9g,%llu,%ld,%ld", r->prior, (unsigned long long)r->seed, r->steps, r->diverged_step);
        csv_num(&b, r->mean_ap);
        csv_num(&b, r->image_mean_ap);
        csv_num(&b, r->final_loss);
        csv_num(&b, r->foreground_share);
        csv_num(&b, r->test_foreground_share);
        csv_num(&b, r->images_per_second);
        for (int c = 0; c < in->n_classes && c < r->n_classes; c++) csv_num(&b, r->ap[c]);
        lb_buf_puts(&b, "\n");
    }
    int st = lb_buf_status(&b, path);
    if (st == LB_OK) st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

/* ---- report.html ---- */

static void html_header(lb_buf *b, const lb_dense_report_info *in, int n_runs, int m)
{
    lb_buf_printf(b,
                  "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                  "<title>libra dense study</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n"
                  "<h1>libra dense study</h1>\n<table class=\"meta\">\n<tr><td>data</td><td>",
                  lb__report_css);
    lb__html_escape(b, in->data, 0);
    lb_buf_puts(b, "</td></tr>\n<tr><td>model</td><td>");
    lb__html_escape(b, in->trunk, 0);
    lb_buf_printf(b, "; 3x3 head</td></tr>\n<tr><td>foreground share</td><td>training 1:%.0f, test 1:%.0f "
                     "(foreground locations : all locations)</td></tr>\n"
                     "<tr><td>runs</td><td>%d (%d strategies, %d seeds)</td></tr>\n"
                     "<tr><td>libra</td><td>%s</td></tr>\n</table>\n</header>\n",
                  in->foreground_share > 0 ? 1 / in->foreground_share : 0,
                  in->test_foreground_share > 0 ? 1 / in->test_foreground_share : 0, n_runs, m, in->seeds,
                  lb_version());
}

static void html_cell(lb_buf *b, double v, double lo, double hi, int best)
{
    if (!isfinite(v)) {
        lb_buf_puts(b, "<td>&ndash;</td>");
        return;
    }
    lb_buf_printf(b, "<td%s>%.3f", best ? " class=\"best\"" : "", v);
    if (isfinite(lo)) lb_buf_printf(b, "<small>[%.3f, %.3f]</small>", lo, hi);
    lb_buf_puts(b, "</td>");
}

static void html_table(lb_buf *b, const lb_dense_summary_row *rows, int m, int best)
{
    lb_buf_puts(b, "<h2>Average precision on the test canvases</h2>\n<p class=\"note\">Mean over seeds with the 95% "
                   "t-interval. Location mean AP: per class over every test location (step-wise, as scikit-learn's "
                   "average_precision_score), averaged over classes; image mean AP: does the canvas hold the "
                   "class (score: its maximum over the canvas). A run whose loss or gradient became non-finite "
                   "is counted as diverged and left out of the means.</p>\n<div class=\"scroll\"><table "
                   "class=\"summary\">\n<tr><th>strategy</th><th>prior</th><th>location mean AP</th><th>image "
                   "mean AP</th><th>runs</th><th>diverged</th><th>final loss</th><th>img/s</th></tr>\n");
    for (int j = 0; j < m; j++) {
        const lb_dense_summary_row *r = &rows[j];
        lb_buf_puts(b, "<tr><td>");
        lb__html_escape(b, r->strategy, 0);
        lb_buf_printf(b, "</td><td>%s</td>", r->prior > 0 ? "yes" : "no");
        html_cell(b, r->map, r->map_lo, r->map_hi, j == best);
        html_cell(b, r->image_map, r->image_map_lo, r->image_map_hi, 0);
        lb_buf_printf(b, "<td>%d</td><td>%d</td>", r->runs, r->diverged);
        html_cell(b, r->final_loss, NAN, NAN, 0);
        lb_buf_printf(b, "<td>%.0f</td></tr>\n", r->images_per_second);
    }
    lb_buf_puts(b, "</table></div>\n");
}

static void html_dots(lb_buf *b, const lb_dense_summary_row *rows, int m, int best)
{
    const char **labels = lb_malloc((size_t)m * sizeof *labels);
    double *v = lb_malloc((size_t)m * 3 * sizeof(double));
    int *mark = lb_calloc((size_t)m, sizeof(int));
    if (labels && v && mark) {
        for (int j = 0; j < m; j++) {
            labels[j] = rows[j].strategy;
            v[j] = rows[j].map, v[m + j] = rows[j].map_lo, v[2 * m + j] = rows[j].map_hi;
            mark[j] = j == best;
        }
        lb__svg_dot_plot(b, labels, v, v + m, v + 2 * m, mark, (size_t)m, "location mean AP (test, %)");
    }
    lb_free(labels);
    lb_free(v);
    lb_free(mark);
}

/* One chart: the first run (first seed) of each strategy, its curve cut at max_step. */
static void html_curves(lb_buf *b, const lb_dense_record *recs, int n, const lb_dense_summary_row *rows, int m,
                        int val, long max_step, const char *ylabel)
{
    lb_series *s = lb_calloc((size_t)m, sizeof *s);
    double *xy = lb_malloc(sizeof(double) * 2 * (size_t)(n > 0 ? n : 1) * 4096);
    size_t at = 0;
    for (int j = 0; s && xy && j < m; j++) {
        const lb_dense_record *r = NULL;
        for (int i = 0; i < n && !r; i++)
            if (strcmp(recs[i].strategy, rows[j].strategy) == 0) r = &recs[i];
        const lb_curve *c = val ? &r->val_map : &r->loss;
        s[j] = (lb_series){rows[j].strategy, NULL, lb__palette[j % LB_PALETTE_N], xy + at, xy + at + 4096, 0,
                           rows[j].prior <= 0, 0};
        size_t every = (c->n + 4095) / 4096; /* a long curve is drawn from every k-th point */
        for (size_t i = 0, k = 0; i < c->n && c->step[i] <= max_step; i += every ? every : 1, k++) {
            xy[at + k] = (double)c->step[i];
            xy[at + 4096 + k] = c->value[i];
            s[j].n = k + 1;
        }
        at += 2 * 4096;
    }
    if (s && xy) {
        const char **names = lb_malloc((size_t)m * sizeof *names), **colors = lb_malloc((size_t)m * sizeof *colors);
        for (int j = 0; names && colors && j < m; j++) names[j] = s[j].name, colors[j] = s[j].color;
        if (names && colors) lb__html_legend(b, names, colors, (size_t)m);
        lb_free(names);
        lb_free(colors);
        lb__svg_line_chart(b, s, (size_t)m, "step", ylabel, val);
    }
    lb_free(s);
    lb_free(xy);
}

#define FIG_PX 88 /* every canvas and heat map is drawn this wide: eleven to a row */

/* A grey canvas as SVG rectangles (runs of equal 16-level grey merged along rows), the truth's
 * foreground cells outlined with their class index. */
static void html_canvas(lb_buf *b, const lb_dense_report_info *in, int k)
{
    int H = in->h, W = in->w, gh = in->grid_h, gw = in->grid_w, sh = H / gh, sw = W / gw;
    lb_buf_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">", FIG_PX,
                  FIG_PX * H / W, W, H);
    const uint8_t *p = in->pixels + (size_t)k * in->c * H * W;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W;) {
            int g = p[y * W + x] >> 4, e = x + 1;
            while (e < W && (p[y * W + e] >> 4) == g) e++;
            lb_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"1\" fill=\"#%02x%02x%02x\"/>", x, y, e - x,
                          g * 17, g * 17, g * 17);
            x = e;
        }
    const int *t = in->targets + (size_t)k * gh * gw;
    for (int cy = 0; cy < gh; cy++)
        for (int cx = 0; cx < gw; cx++) {
            if (t[cy * gw + cx] == in->n_classes) continue;
            lb_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#e0301e\" "
                             "stroke-width=\"%.2f\"/><text x=\"%d\" y=\"%d\" style=\"font-size:%dpx;fill:#e0301e\">%d</text>",
                          cx * sw, cy * sh, sw, sh, W / 64.0 + 0.3, cx * sw + 1, cy * sh + sh - 1, sh > 4 ? sh - 2 : 3,
                          t[cy * gw + cx]);
        }
    lb_buf_puts(b, "</svg>");
}

/* One class's probabilities over the grid, white (0) to dark blue (1), truth cells outlined. */
static void html_map(lb_buf *b, const lb_dense_report_info *in, const float *map, const int *t, int cls)
{
    int gh = in->grid_h, gw = in->grid_w;
    lb_buf_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">", FIG_PX,
                  FIG_PX * gh / gw, gw, gh);
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            double v = map[y * gw + x];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            int r = (int)lrint(255 - 225 * v), g = (int)lrint(255 - 185 * v), bl = (int)lrint(255 - 95 * v);
            lb_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"1\" height=\"1\" fill=\"#%02x%02x%02x\"><title>%.3f</title></rect>",
                          x, y, r, g, bl, map[y * gw + x]);
        }
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++)
            if (t[y * gw + x] == cls)
                lb_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"1\" height=\"1\" fill=\"none\" stroke=\"#e0301e\" "
                                 "stroke-width=\"%.3f\"/>", x, y, gw / 44.0);
    lb_buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\" stroke-width=\"%.3f\"/></svg>", gw, gh,
                  gw / 88.0);
}

static void html_heatmaps(lb_buf *b, const lb_dense_record *r, const lb_dense_report_info *in)
{
    if (!r || !r->maps || in->n_maps <= 0 || r->grid_h != in->grid_h || r->grid_w != in->grid_w) return;
    lb_buf_puts(b, "<h2>Heat maps</h2>\n<p class=\"note\">The best strategy's first run, ");
    lb__html_escape(b, r->strategy, 0);
    lb_buf_puts(b, ", on the first test canvases: each canvas with its foreground cells outlined (the number is the "
                   "class index), then the predicted probability of each class at each location (white 0, dark blue "
                   "1, linear; the cells of that class outlined in red; hover for the value).</p>\n");
    int n = r->n_maps < in->n_maps ? r->n_maps : in->n_maps, C = in->n_classes;
    size_t cells = (size_t)in->grid_h * in->grid_w;
    for (int k = 0; k < n; k++) {
        lb_buf_puts(b, "<div class=\"figs\" style=\"gap:8px;margin-bottom:10px\"><figure><figcaption style=\"font-size:11px\">"
                       "canvas</figcaption>");
        html_canvas(b, in, k);
        lb_buf_puts(b, "</figure>");
        for (int c = 0; c < C && c < r->n_classes; c++) {
            lb_buf_printf(b, "<figure><figcaption style=\"font-size:11px;width:%dpx;overflow:hidden;white-space:nowrap\">%d ",
                          FIG_PX, c);
            lb__html_escape(b, in->class_names ? in->class_names[c] : "", 10);
            lb_buf_puts(b, "</figcaption>");
            html_map(b, in, r->maps + ((size_t)k * r->n_classes + c) * cells, in->targets + (size_t)k * cells, c);
            lb_buf_puts(b, "</figure>");
        }
        lb_buf_puts(b, "</div>\n");
    }
}

static int write_html(const lb_dense_record *recs, int n, const lb_dense_summary_row *rows, int m,
                      const lb_dense_report_info *in, const char *path)
{
    lb_buf b = {0};
    int best = best_row(rows, m);
    long max_step = 0;
    for (int i = 0; i < n; i++) max_step = recs[i].total_steps > max_step ? recs[i].total_steps : max_step;
    html_header(&b, in, n, m);
    html_table(&b, rows, m, best);
    html_dots(&b, rows, m, best);
    lb_buf_puts(&b, "<h2>Training loss</h2>\n<p class=\"note\">The first seed of each strategy; dashed: without the "
                    "prior initialisation. The loss is summed over locations (and classes) and divided by the "
                    "batch's foreground count.</p>\n");
    html_curves(&b, recs, n, rows, m, 0, max_step, "loss");
    lb_buf_puts(&b, "<h3>The first tenth of training</h3>\n");
    html_curves(&b, recs, n, rows, m, 0, max_step / 10 > 20 ? max_step / 10 : 20, "loss");
    lb_buf_puts(&b, "<h2>Validation mean AP</h2>\n");
    html_curves(&b, recs, n, rows, m, 1, max_step, "location mean AP (validation)");
    const lb_dense_record *first_of_best = NULL;
    for (int i = 0; best >= 0 && i < n && !first_of_best; i++)
        if (strcmp(recs[i].strategy, rows[best].strategy) == 0) first_of_best = &recs[i];
    html_heatmaps(&b, first_of_best, in);
    lb_buf_puts(&b, "<h2>Settings</h2>\n<pre>");
    lb__html_escape(&b, in->settings, 0);
    lb_buf_puts(&b, "</pre>\n</body>\n</html>\n");
    int st = lb_buf_status(&b, path);
    if (st == LB_OK) st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

int lb_dense_report_write(const lb_dense_record *recs, int n, const lb_dense_report_info *info, const char *dir)
{
    lb_dense_summary_row *rows = lb_calloc((size_t)(n + 1), sizeof *rows);
    if (!rows) return lb_error(LB_ENOMEM, "dense results: out of memory");
    int m = 0, st = lb_dense_summarise(recs, n, rows, &m);
    char path[4096];
    if (st == LB_OK) {
        snprintf(path, sizeof path, "%s/results.json", dir);
        st = write_json(recs, n, rows, m, info, path);
    }
    if (st == LB_OK) {
        snprintf(path, sizeof path, "%s/results.csv", dir);
        st = write_csv(recs, n, info, path);
    }
    if (st == LB_OK) {
        snprintf(path, sizeof path, "%s/report.html", dir);
        st = write_html(recs, n, rows, m, info, path);
    }
    lb_free(rows);
    return st;
}

int lb_dense_summary_text(const lb_dense_record *recs, int n, lb_buf *out)
{
    lb_dense_summary_row *rows = lb_calloc((size_t)(n + 1), sizeof *rows);
    if (!rows) return lb_error(LB_ENOMEM, "dense results: out of memory");
    int m = 0, st = lb_dense_summarise(recs, n, rows, &m);
    int width = 8;
    for (int j = 0; j < m; j++) width = (int)strlen(rows[j].strategy) > width ? (int)strlen(rows[j].strategy) : width;
    lb_buf_printf(out, "%-*s  %-24s  %-24s  %s\n", width, "strategy", "mean AP [95% CI]", "image mean AP [95% CI]",
                  "diverged");
    for (int j = 0; st == LB_OK && j < m; j++) {
        const lb_dense_summary_row *r = &rows[j];
        char a[64], b[64];
        snprintf(a, sizeof a, "%.3f [%.3f, %.3f]", r->map, r->map_lo, r->map_hi);
        snprintf(b, sizeof b, "%.3f [%.3f, %.3f]", r->image_map, r->image_map_lo, r->image_map_hi);
        lb_buf_printf(out, "%-*s  %-24s  %-24s  %d/%d\n", width, r->strategy, a, b, r->diverged, r->runs);
    }
    lb_free(rows);
    return st == LB_OK ? lb_buf_status(out, "dense summary") : st;
}
