/* The terminal summary of a study (or of a sweep's merged results): a table of its rows. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

static int same_profile(const lb_summary_row *a, const lb_summary_row *b)
{
    return (!a->profile && !b->profile) || (a->profile && b->profile && !strcmp(a->profile, b->profile));
}

static void header(lb_buf *out, const lb_summary_row *first, int have_diff, int have_gap)
{
    if (first->profile) lb_buf_printf(out, "imbalance %s\n", first->profile);
    lb_buf_printf(out, "%-40s %-25s %-17s %-9s %-29s%s\n", "strategy", "balanced acc [95% CI]", "minority recall",
                  "macro F1", have_diff ? "vs baseline [95% bootstrap]" : "", have_gap ? " gap recovered" : "");
}

static void line(lb_buf *out, const lb_summary_row *r, int have_diff, int have_gap)
{
    char label[200], ci[64] = "", diff[64] = "";
    snprintf(label, sizeof label, "%s%s%s", r->strategy, r->variant ? " / " : "", r->variant ? r->variant : "");
    if (isfinite(r->bacc_lo)) snprintf(ci, sizeof ci, " [%.4f, %.4f]", r->bacc_lo, r->bacc_hi);
    if (r->has_diff)
        snprintf(diff, sizeof diff, "%+.4f [%+.4f, %+.4f]%s", r->diff, r->diff_lo, r->diff_hi,
                 r->diff_excludes_zero ? " *" : "");
    lb_buf_printf(out, "%-40s %.4f%-18s %.4f ± %.4f   %.4f    %-29s", label, r->bacc, ci, r->minority_recall,
                  isfinite(r->minority_recall_sd) ? r->minority_recall_sd : 0.0, r->macro_f1, have_diff ? diff : "");
    if (have_gap && isfinite(r->gap_recovered)) lb_buf_printf(out, " %6.1f%%", 100 * r->gap_recovered);
    else if (have_gap) lb_buf_puts(out, "        ");
    if (r->same_as_best) lb_buf_puts(out, "  = best");
    if (r->best) lb_buf_puts(out, "  (best)");
    lb_buf_puts(out, "\n");
}

int lb_results_summary_text(const lb_results *s, lb_buf *out)
{
    const char *bname = s->baseline ? s->baseline : "ce";
    int have_diff = 0, have_gap = 0, seeds = 0;
    for (size_t i = 0; i < s->n_summary; i++) {
        have_diff |= s->summary[i].has_diff;
        have_gap |= isfinite(s->summary[i].gap_recovered);
        if (s->summary[i].n_seeds > seeds) seeds = s->summary[i].n_seeds;
    }
    for (size_t i = 0; i < s->n_summary; i++) {
        if (i == 0 || !same_profile(&s->summary[i], &s->summary[i - 1])) {
            if (i) lb_buf_puts(out, "\n");
            header(out, &s->summary[i], have_diff, have_gap);
        }
        line(out, &s->summary[i], have_diff, have_gap);
    }
    lb_buf_printf(out, "(%d seeds, test set: mean and 95%% t-interval over seeds", seeds);
    if (have_diff)
        lb_buf_printf(out, "; against %s, a paired bootstrap over test images and seeds (%d resamples, seed %llu), "
                           "* where it excludes 0; '= best': not distinguishable from the best",
                      bname, s->boot_resamples, (unsigned long long)s->boot_seed);
    if (have_gap) lb_buf_printf(out, "; gap recovered: (strategy - %s) / (oracle - %s)", bname, bname);
    lb_buf_puts(out, ")\n");
    if (s->oracle_profile) lb_buf_printf(out, "oracle: ce trained on %s, %s\n", s->oracle_profile, s->oracle_note);
    if (s->oracle_full_profile)
        lb_buf_printf(out, "oracle_full: ce trained on %s, %s\n", s->oracle_full_profile, s->oracle_full_note);
    return lb_buf_status(out, "summary");
}
