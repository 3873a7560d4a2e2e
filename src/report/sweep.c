/* A sweep's own files: one study per imbalance profile, merged into results.json, a terminal
 * table and report.html (results.csv and summary.csv: csv.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/svg.h"

#define SWEEP_FORMAT_VERSION 1

int lb_sweep_write_json(const lb_results *const *parts, const char *const *dirs, int n, const char *path)
{
    if (n < 1) return lb_error(LB_EINVAL, "%s: a sweep of no profile", path);
    for (int p = 0; p < n; p++) {
        int st = lb__check_records(parts[p], path);
        if (st) return st;
    }
    lb_buf b = {0};
    lb_jw w;
    lb_jw_init(&w, &b);
    lb_jw_object(&w, NULL, 0);
    lb_jw_string(&w, "format", "libra-sweep");
    lb_jw_int(&w, "format_version", SWEEP_FORMAT_VERSION);
    lb_jw_string(&w, "libra_version", lb_version());
    lb_jw_string(&w, "title", parts[0]->title ? parts[0]->title : "libra imbalance sweep");
    lb_jw_string(&w, "baseline", parts[0]->baseline ? parts[0]->baseline : "ce");
    lb_jw_array(&w, "sweep", 1);
    for (int p = 0; p < n; p++) lb_jw_string(&w, NULL, parts[p]->dataset.profile);
    lb_jw_end(&w, ']');
    lb_jw_object(&w, "flags", 0);
    for (size_t i = 0; i < parts[0]->n_flags; i++) /* the profile is each study's; "sweep" names them all */
        if (strcmp(parts[0]->flags[i].key, "imbalance")) lb_jw_string(&w, parts[0]->flags[i].key, parts[0]->flags[i].value);
    lb_jw_end(&w, '}');
    lb_jw_array(&w, "studies", 0);
    for (int p = 0; p < n; p++) {
        lb_jw_object(&w, NULL, 0);
        lb_jw_string(&w, "profile", parts[p]->dataset.profile);
        lb_jw_string(&w, "folder", dirs[p]);
        for (int k = 0; k < 2; k++) {
            const char *prof = k ? parts[p]->oracle_full_profile : parts[p]->oracle_profile;
            if (!prof) continue;
            lb_jw_object(&w, k ? "oracle_full" : "oracle", 1);
            lb_jw_string(&w, "profile", prof);
            lb_jw_string(&w, "note", k ? parts[p]->oracle_full_note : parts[p]->oracle_note);
            lb_jw_end(&w, '}');
        }
        lb__jw_dataset(&w, &parts[p]->dataset);
        lb_jw_end(&w, '}');
    }
    lb_jw_end(&w, ']');
    if (parts[0]->boot_resamples > 0) {
        lb_jw_object(&w, "bootstrap", 1);
        lb_jw_string(&w, "over", "test images and seeds, paired, per profile");
        lb_jw_int(&w, "resamples", parts[0]->boot_resamples);
        lb_jw_uint(&w, "seed", parts[0]->boot_seed);
        lb_jw_end(&w, '}');
    }
    lb_jw_array(&w, "summary", 0);
    for (int p = 0; p < n; p++)
        for (size_t i = 0; i < parts[p]->n_summary; i++) lb__jw_summary_row(&w, &parts[p]->summary[i]);
    lb_jw_end(&w, ']');
    lb_jw_array(&w, "runs", 0);
    for (int p = 0; p < n; p++)
        for (size_t i = 0; i < parts[p]->n_runs; i++) lb__jw_record(&w, &parts[p]->runs[i], dirs[p]);
    lb_jw_end(&w, ']');
    lb_jw_end(&w, '}');
    lb_buf_puts(&b, "\n");
    int st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

/* ---- the lines of a sweep: each strategy and variant of the first profile, in its order ---- */

static const lb_summary_row *row_in(const lb_results *r, const lb_summary_row *like)
{
    return lb_results_summary_row(r, r->dataset.profile, like->strategy, like->variant);
}

static void row_label(const lb_summary_row *r, char *out, size_t n)
{
    snprintf(out, n, "%s%s%s", r->strategy, r->variant ? " / " : "", r->variant ? r->variant : "");
}

int lb_sweep_summary_text(const lb_results *const *parts, int n, lb_buf *out)
{
    if (n < 1) return LB_OK;
    int gap = 0;
    for (int p = 0; p < n; p++)
        for (size_t i = 0; i < parts[p]->n_summary; i++) gap |= isfinite(parts[p]->summary[i].gap_recovered);
    lb_buf_printf(out, "sweep: balanced accuracy%s per profile\n%-40s", gap ? " (gap recovered)" : "", "strategy");
    for (int p = 0; p < n; p++) lb_buf_printf(out, " %-18s", parts[p]->dataset.profile);
    lb_buf_puts(out, "\n");
    for (size_t i = 0; i < parts[0]->n_summary; i++) {
        char label[200];
        row_label(&parts[0]->summary[i], label, sizeof label);
        lb_buf_printf(out, "%-40s", label);
        for (int p = 0; p < n; p++) {
            const lb_summary_row *r = row_in(parts[p], &parts[0]->summary[i]);
            char cell[64] = "-";
            if (r && isfinite(r->gap_recovered))
                snprintf(cell, sizeof cell, "%.4f (%5.1f%%)%s", r->bacc, 100 * r->gap_recovered, r->best ? "*" : "");
            else if (r)
                snprintf(cell, sizeof cell, "%.4f%s", r->bacc, r->best ? "*" : "");
            lb_buf_printf(out, " %-18s", cell);
        }
        lb_buf_puts(out, "\n");
    }
    lb_buf_puts(out, "(mean over seeds; * the best of its profile; each profile's own summary has the intervals)\n");
    return lb_buf_status(out, "sweep summary");
}

/* ---- report.html of a sweep ---- */

static void sweep_table(lb_buf *b, const lb_results *const *parts, int n)
{
    lb_buf_puts(b, "<div class=\"scroll\"><table class=\"summary\"><tr><th>strategy</th>");
    for (int p = 0; p < n; p++) {
        lb_buf_puts(b, "<th>");
        lb__html_escape(b, parts[p]->dataset.profile, 0);
        lb_buf_puts(b, "</th>");
    }
    lb_buf_puts(b, "</tr>\n");
    for (size_t i = 0; i < parts[0]->n_summary; i++) {
        char label[200];
        row_label(&parts[0]->summary[i], label, sizeof label);
        lb_buf_puts(b, "<tr><td>");
        lb__html_escape(b, label, 0);
        lb_buf_puts(b, "</td>");
        for (int p = 0; p < n; p++) {
            const lb_summary_row *r = row_in(parts[p], &parts[0]->summary[i]);
            if (!r) {
                lb_buf_puts(b, "<td></td>");
                continue;
            }
            lb_buf_printf(b, "<td%s>%.2f", r->best ? " class=\"best\"" : "", 100 * r->bacc);
            if (isfinite(r->bacc_lo)) lb_buf_printf(b, "<small>[%.2f, %.2f]</small>", 100 * r->bacc_lo, 100 * r->bacc_hi);
            if (isfinite(r->gap_recovered)) lb_buf_printf(b, "<small>gap %.0f%%</small>", 100 * r->gap_recovered);
            lb_buf_puts(b, "</td>");
        }
        lb_buf_puts(b, "</tr>\n");
    }
    lb_buf_puts(b, "</table></div>\n");
}

static void sweep_plot(lb_buf *b, const lb_results *const *parts, int n)
{
    size_t ns = parts[0]->n_summary, nx = (size_t)n;
    double *v = lb_malloc(3 * ns * nx * sizeof *v + 1);
    const char **names = lb_malloc(ns * sizeof *names + 1), **colors = lb_malloc(ns * sizeof *colors + 1),
               **xl = lb_malloc(nx * sizeof *xl + 1);
    char(*labels)[200] = lb_malloc(ns * sizeof *labels + 1);
    if (!v || !names || !colors || !xl || !labels) {
        b->oom = 1;
    } else {
        for (size_t k = 0; k < ns; k++) {
            row_label(&parts[0]->summary[k], labels[k], sizeof labels[k]);
            if (k >= LB_PALETTE_N) /* the colours repeat: the legend says which line is dashed */
                strncat(labels[k], " (dashed)", sizeof labels[k] - strlen(labels[k]) - 1);
            names[k] = labels[k];
            colors[k] = lb__palette[k % LB_PALETTE_N];
            for (size_t x = 0; x < nx; x++) {
                const lb_summary_row *r = row_in(parts[x], &parts[0]->summary[k]);
                v[k * nx + x] = r ? r->bacc : NAN;
                v[ns * nx + k * nx + x] = r ? r->bacc_lo : NAN;
                v[2 * ns * nx + k * nx + x] = r ? r->bacc_hi : NAN;
            }
        }
        for (size_t x = 0; x < nx; x++) xl[x] = parts[x]->dataset.profile;
        lb__html_legend(b, names, colors, ns);
        lb__svg_sweep_plot(b, xl, nx, names, colors, ns, v, v + ns * nx, v + 2 * ns * nx, "balanced accuracy (%)");
    }
    lb_free(v);
    lb_free(names);
    lb_free(colors);
    lb_free(xl);
    lb_free(labels);
}

int lb_sweep_write_html(const lb_results *const *parts, const char *const *dirs, int n, const char *path)
{
    if (n < 1) return lb_error(LB_EINVAL, "%s: a sweep of no profile", path);
    lb_buf b = {0};
    lb_buf_printf(&b,
                  "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
                  "content=\"width=device-width, initial-scale=1\">\n<title>libra imbalance sweep</title>\n<style>\n%s"
                  "</style>\n</head>\n<body>\n<header>\n<h1>libra imbalance sweep</h1>\n",
                  lb__report_css);
    lb_buf_printf(&b, "<p class=\"how\">The same study on %d imbalance profiles, each with its own split from the "
                      "same data seed; each profile's own report has every chart.</p>\n</header>\n", n);
    lb_buf_puts(&b, "<section id=\"sweep\">\n<h2>Balanced accuracy against the profile</h2>\n<p class=\"how\">Test "
                    "balanced accuracy in %, mean over seeds, with its 95% t-interval as a bar; one line per strategy "
                    "(dashed after the tenth colour).</p>\n");
    sweep_plot(&b, parts, n);
    lb_buf_puts(&b, "</section>\n<section id=\"table\">\n<h2>Every profile</h2>\n<p class=\"how\">Balanced "
                    "accuracy in %, its 95% t-interval over seeds and, with an oracle, the share of the gap between the "
                    "baseline and the oracle that the strategy recovers. Shaded: the best of the profile.</p>\n");
    sweep_table(&b, parts, n);
    lb_buf_puts(&b, "</section>\n<section id=\"profiles\">\n<h2>Each profile's report</h2>\n<ul>\n");
    for (int p = 0; p < n; p++) {
        lb_buf_puts(&b, "<li><a href=\"");
        lb__html_escape(&b, dirs[p], 0);
        lb_buf_puts(&b, "/report.html\">");
        lb__html_escape(&b, parts[p]->dataset.profile, 0);
        lb_buf_puts(&b, "</a>");
        if (parts[p]->oracle_profile) {
            lb_buf_puts(&b, " (oracle: ");
            lb__html_escape(&b, parts[p]->oracle_note, 0);
            lb_buf_puts(&b, ")");
        }
        lb_buf_puts(&b, "</li>\n");
    }
    lb_buf_puts(&b, "</ul>\n</section>\n</body>\n</html>\n");
    int st = lb_buf_status(&b, path);
    if (st == LB_OK) st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}
