/* Report: JSON parser, run-record round trip, results.json / .csv / .html writers, atomic
 * writes. Expected values here are worked out by hand in the comments.
 *
 * The suite also writes report.html (+ results.json, results.csv) of a synthetic study into
 * $LIBRA_REPORT_OUT (or a temporary directory, removed afterwards): tests/e2e_report_html.sh
 * renders that file in headless Chromium. `test_report --count-colours FILE.png` prints the
 * number of distinct colours in a PNG (the e2e test's blank-screenshot check). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stb_image.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "libra/metrics.h"
#include "libra/report.h"
#include "report/report_internal.h"

#define C 10
static const char *const class_names[C] = {"T-shirt/top", "Trouser",       "Pullover", "Dress",
                                           "Coat",        "Sandal",        "Shirt",    "Sneaker",
                                           "Bag <&>",     "Ankle \"boot\""};
/* exponential profile, ratio 100: 5000 * 100^(-c/9) */
static const int train[C] = {5000, 2997, 1797, 1077, 646, 387, 232, 139, 83, 50};
static const int val[C] = {500, 300, 180, 108, 65, 39, 23, 14, 8, 5};
static const int test_n[C] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};

static char outdir[4096];
static int own_outdir; /* a temporary directory this process made */

/* ---- a synthetic study that looks like a real one ---- */

/* How a model treats the classes: recall = top - spread * (1 - f) for a class whose
 * log-count sits at fraction f between the smallest and the largest class; errors go to
 * other classes in proportion to count^bias. */
typedef struct {
    double top, spread, bias;
} profile;

static void synth_confusion(int64_t *cm, profile p, lb_rng *rng)
{
    memset(cm, 0, sizeof(int64_t) * C * C);
    for (int t = 0; t < C; t++) {
        double f = log((double)train[t] / 50.0) / log(100.0);
        double rec =
            p.top - p.spread * (1 - f) - (t == 6 ? 0.15 : 0) + 0.03 * (lb_rng_uniform(rng) - 0.5);
        int64_t right = (int64_t)lround(fmax(0.02, fmin(0.99, rec)) * (double)test_n[t]);
        int64_t left = test_n[t] - right;
        double wsum = 0;
        for (int q = 0; q < C; q++)
            if (q != t) wsum += pow((double)train[q], p.bias);
        cm[t * C + t] = right;
        int64_t given = 0;
        for (int q = 0; q < C; q++) {
            if (q == t) continue;
            int64_t k = (int64_t)floor((double)left * pow((double)train[q], p.bias) / wsum);
            cm[t * C + q] = k;
            given += k;
        }
        cm[t * C + (t == 0 ? 1 : 0)] += left - given; /* rounding remainder */
    }
}

static void synth_metrics(lb_metrics *m, profile p, lb_rng *rng, double auc, double ece)
{
    int64_t cm[C * C];
    synth_confusion(cm, p, rng);
    ck_assert_int_eq(lb_metrics_from_confusion(m, cm, C, train, NULL), LB_OK);
    m->roc_auc = (float)(auc + 0.004 * lb_rng_uniform(rng));
    m->ece = (float)(ece + 0.01 * lb_rng_uniform(rng));
}

static void make_study(lb_results *s)
{
    static const char *const specs[] = {"ce", "weighted_ce:beta=0.999", "focal:gamma=2",
                                        "oversample"};
    static const profile prof[] = {
        {0.95, 0.60, 1.0}, {0.88, 0.16, 0.3}, {0.93, 0.40, 0.7}, {0.90, 0.25, 0.4}};
    lb_results_init(s);
    s->title = lb_strdup("Fashion-MNIST, exponential imbalance 100:1");
    ck_assert_int_eq(lb_results_set_dataset(s, "idx:/usr/share/datasets/fashion-mnist",
                                          "exp:ratio=100", 42, C, class_names, train, val, test_n),
                     LB_OK);
    ck_assert_int_eq(lb_results_set_flag(s, "steps", "3000"), LB_OK);
    ck_assert_int_eq(lb_results_set_flag(s, "seeds", "3"), LB_OK);
    ck_assert_int_eq(lb_results_set_flag(s, "batch", "128"), LB_OK);
    ck_assert_int_eq(lb_results_set_flag(s, "steps", "3000"), LB_OK); /* replaces, no duplicate */
    ck_assert_uint_eq(s->n_flags, 3);
    for (int k = 0; k < 4; k++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            lb_rng rng;
            lb_rng_derive(&rng, seed, (uint64_t)k);
            lb_run_record r;
            lb_run_record_init(&r);
            ck_assert_int_eq(lb_run_record_set_strategy(&r, specs[k]), LB_OK);
            r.seed = seed;
            r.steps = 3000;
            r.wall_seconds = (float)(40 + 5 * lb_rng_uniform(&rng));
            r.images_per_sec = (float)(3000 * 128 / r.wall_seconds);
            synth_metrics(&r.metrics, prof[k], &rng, 0.93 + 0.01 * k, k == 0 ? 0.03 : 0.08);
            double floor_loss = 0.25 + 0.1 * k;
            for (int64_t step = 0; step <= 3000; step += 50)
                ck_assert_int_eq(
                    lb_curve_append(&r.loss, step,
                                    (float)(floor_loss + 2.0 * exp(-(double)step / 500) +
                                            0.05 * lb_rng_uniform(&rng))),
                    LB_OK);
            for (int64_t step = 300; step <= 3000; step += 300)
                ck_assert_int_eq(lb_curve_append(&r.val_bacc, step,
                                                 (float)(r.metrics.balanced_accuracy *
                                                             (1 - exp(-(double)step / 600)) +
                                                         0.01 * lb_rng_uniform(&rng))),
                                 LB_OK);
            if (k == 0) { /* the post-hoc corrections of the plain model */
                lb_metrics m;
                synth_metrics(&m, (profile){0.88, 0.18, 0.3}, &rng, 0.93, 0.12);
                ck_assert_int_eq(lb_run_record_add_posthoc(&r, "prior_correction", NAN, &m), LB_OK);
                ck_assert_ptr_null(m.recall);
                synth_metrics(&m, (profile){0.90, 0.14, 0.3}, &rng, 0.93, 0.09);
                ck_assert_int_eq(lb_run_record_add_posthoc(&r, "logit_adjust", 1.0f, &m), LB_OK);
            }
            if (k == 2) {
                static const char *const grid[] = {"focal:gamma=0.5", "focal:gamma=1",
                                                   "focal:gamma=2", "focal:gamma=5"};
                for (int g = 0; g < 4; g++)
                    ck_assert_int_eq(lb_run_record_add_grid(
                                         &r, grid[g], (float)(0.70 + 0.03 * g - (g == 3) * 0.08)),
                                     LB_OK);
                r.grid_chosen = 2;
            }
            ck_assert_int_eq(lb_results_take_run(s, &r), LB_OK);
            ck_assert_ptr_null(r.strategy);
        }
}

/* A study as wide as a full one: the nineteen default strategies (long names, variants), the
 * summary lines with intervals, and a 5 x 3 grid: what must fit a 1400-px window
 * (e2e_report_html.sh renders it). The numbers are synthetic; only their layout matters. */
static void make_wide_study(lb_results *s, const char *prof_name, double shift)
{
    static const char *const specs[] = {
        "ce", "wce:weights=inverse", "wce:weights=effective", "focal:gamma=0|0.5|1|2|5,alpha=0.25|0.5|0.75",
        "cb_focal", "undersample", "oversample", "ce@balanced", "ldam:drw=0.8", "logit_adjust", "balanced_softmax",
        "ce+posthoc", "ce@smote", "ce~mixup", "ce~remix", "ldam:drw=0.8~remix", "ce+crt", "ce+taunorm", "oracle"};
    const int ns = (int)(sizeof specs / sizeof *specs);
    lb_results_init(s);
    ck_assert_int_eq(lb_results_set_dataset(s, "fmnist", prof_name, 1, C, class_names, train, val, test_n), LB_OK);
    for (int k = 0; k < ns; k++) {
        double b[3];
        for (uint64_t seed = 1; seed <= 3; seed++) {
            lb_rng rng;
            lb_rng_derive(&rng, seed, (uint64_t)k + 100);
            lb_run_record r;
            lb_run_record_init(&r);
            ck_assert_int_eq(lb_run_record_set_strategy(&r, specs[k]), LB_OK);
            r.profile = lb_strdup(prof_name);
            r.seed = seed;
            r.steps = 1500;
            double top = 0.80 + 0.005 * k - shift;
            synth_metrics(&r.metrics, (profile){top, 0.5 - 0.02 * k, 0.5}, &rng, 0.9, 0.05);
            b[seed - 1] = r.metrics.balanced_accuracy;
            if (k == 11) {
                lb_metrics m;
                synth_metrics(&m, (profile){top + 0.02, 0.3, 0.3}, &rng, 0.9, 0.05);
                ck_assert_int_eq(lb_run_record_add_posthoc(&r, "prior_correction", NAN, &m), LB_OK);
                synth_metrics(&m, (profile){top + 0.03, 0.25, 0.3}, &rng, 0.9, 0.05);
                ck_assert_int_eq(lb_run_record_add_posthoc(&r, "logit_adjust", 1.0f, &m), LB_OK);
            }
            if (k == 3) {
                static const char *const g[] = {"0", "0.5", "1", "2", "5"}, *const a[] = {"0.25", "0.5", "0.75"};
                for (int i = 0; i < 5; i++)
                    for (int j = 0; j < 3; j++) {
                        char spec[64];
                        snprintf(spec, sizeof spec, "focal:gamma=%s,alpha=%s", g[i], a[j]);
                        ck_assert_int_eq(lb_run_record_add_grid(&r, spec, (float)(0.7 + 0.01 * i - 0.005 * j)), LB_OK);
                    }
                r.grid_chosen = 7;
            }
            ck_assert_int_eq(lb_results_take_run(s, &r), LB_OK);
        }
        lb_summary_row row = {.profile = (char *)prof_name, .strategy = (char *)specs[k], .n_seeds = 3};
        lb_mean_ci95(b, 3, &row.bacc, &row.bacc_lo, &row.bacc_hi);
        row.minority_recall = row.bacc - 0.2;
        row.minority_recall_sd = 0.02;
        row.macro_f1 = row.bacc - 0.01;
        row.has_diff = k > 0;
        row.diff = k > 0 ? row.bacc - s->summary[0].bacc : 0;
        row.diff_lo = row.diff - 0.01;
        row.diff_hi = row.diff + 0.01;
        row.diff_excludes_zero = row.diff_lo > 0 || row.diff_hi < 0;
        row.best = k == ns - 1;
        row.same_as_best = k == ns - 2;
        row.gap_recovered = k / (double)(ns - 1);
        ck_assert_int_eq(lb_results_add_summary(s, &row), LB_OK);
    }
    s->boot_resamples = 10000;
    s->boot_seed = 2026;
}

/* ---- helpers ---- */

static char *path_in(const char *name)
{
    static char buf[8][4200];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 4200, "%s/%s", outdir, name);
    return p;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* No temporary file of the atomic writer may be left in outdir. */
static void assert_no_temp_files(void)
{
    DIR *d = opendir(outdir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)))
        ck_assert_msg(!strstr(e->d_name, ".tmp"), "left behind: %s", e->d_name);
    closedir(d);
}

static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void assert_same_metrics(const lb_metrics *a, const lb_metrics *b)
{
    ck_assert_int_eq(a->n_classes, b->n_classes);
    ck_assert_int_eq(a->n, b->n);
    const float x[] = {a->accuracy,     a->balanced_accuracy, a->macro_f1,      a->weighted_f1,
                       a->g_mean,       a->minority_recall,   a->many_shot_accuracy, a->medium_shot_accuracy,
                       a->few_shot_accuracy, a->roc_auc,           a->pr_auc,        a->ece};
    const float y[] = {b->accuracy,     b->balanced_accuracy, b->macro_f1,      b->weighted_f1,
                       b->g_mean,       b->minority_recall,   b->many_shot_accuracy, b->medium_shot_accuracy,
                       b->few_shot_accuracy, b->roc_auc,           b->pr_auc,        b->ece};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        ck_assert_msg(same_float(x[i], y[i]), "scalar %zu: %.9g != %.9g", i, x[i], y[i]);
    for (int c = 0; c < a->n_classes; c++) {
        ck_assert(same_float(a->precision[c], b->precision[c]));
        ck_assert(same_float(a->recall[c], b->recall[c]));
        ck_assert(same_float(a->f1[c], b->f1[c]));
    }
    ck_assert(!memcmp(a->confusion, b->confusion,
                      sizeof(int64_t) * (size_t)(a->n_classes * a->n_classes)));
}

static void assert_same_curve(const lb_curve *a, const lb_curve *b)
{
    ck_assert_uint_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        ck_assert_int_eq(a->step[i], b->step[i]);
        ck_assert(same_float(a->value[i], b->value[i]));
    }
}

static void assert_same_record(const lb_run_record *a, const lb_run_record *b)
{
    ck_assert_str_eq(a->strategy, b->strategy);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert_int_eq(a->steps, b->steps);
    ck_assert(same_float(a->wall_seconds, b->wall_seconds));
    ck_assert(same_float(a->images_per_sec, b->images_per_sec));
    assert_same_metrics(&a->metrics, &b->metrics);
    assert_same_curve(&a->loss, &b->loss);
    assert_same_curve(&a->val_bacc, &b->val_bacc);
    ck_assert_uint_eq(a->n_grid, b->n_grid);
    ck_assert_int_eq(a->grid_chosen, b->grid_chosen);
    for (size_t i = 0; i < a->n_grid; i++) {
        ck_assert_str_eq(a->grid[i].spec, b->grid[i].spec);
        ck_assert(same_float(a->grid[i].val_balanced_accuracy, b->grid[i].val_balanced_accuracy));
    }
    ck_assert_uint_eq(a->n_posthoc, b->n_posthoc);
    for (size_t i = 0; i < a->n_posthoc; i++) {
        ck_assert_str_eq(a->posthoc[i].name, b->posthoc[i].name);
        ck_assert(same_float(a->posthoc[i].tau, b->posthoc[i].tau));
        assert_same_metrics(&a->posthoc[i].metrics, &b->posthoc[i].metrics);
    }
}

/* ---- JSON parser ---- */

static int parse_err(const char *text, const char *expect)
{
    lb_json v;
    int st = lb__json_parse(text, strlen(text), "t.json", &v);
    ck_assert_msg(st == LB_EFORMAT, "accepted: %s", text);
    ck_assert_msg(strstr(lb_last_error(), expect), "for %s: got \"%s\", expected \"%s\"", text,
                  lb_last_error(), expect);
    return st;
}

START_TEST(test_json_parse)
{
    const char *doc = "{\"a\": [1, -2.5e3, true, null],\n \"s\": "
                      "\"q\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\", \"o\": {}}";
    lb_json v;
    ck_assert_int_eq(lb__json_parse(doc, strlen(doc), "t.json", &v), LB_OK);
    ck_assert_int_eq(v.type, LB_JSON_OBJECT);
    ck_assert_uint_eq(v.n, 3);
    const lb_json *a = lb__json_get(&v, "a");
    ck_assert_uint_eq(a->n, 4);
    ck_assert_str_eq(a->items[1].str, "-2.5e3"); /* numbers keep their text */
    ck_assert_int_eq(a->items[2].type, LB_JSON_BOOL);
    ck_assert_int_eq(a->items[2].boolean, 1);
    ck_assert_int_eq(a->items[3].type, LB_JSON_NULL);
    /* U+00E9 is C3 A9 in UTF-8; the pair D83D DE00 is U+1F600, F0 9F 98 80 */
    ck_assert_str_eq(lb__json_get(&v, "s")->str, "q\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
    const lb_json *s = lb__json_get(&v, "s");
    ck_assert_int_eq(s->line, 2); /* positions are 1-based */
    ck_assert_int_eq(s->col, 7);
    ck_assert_int_eq(lb__json_get(&v, "o")->type, LB_JSON_OBJECT);
    ck_assert_ptr_null(lb__json_get(&v, "missing"));
    lb__json_free(&v);

    /* columns: `{"a": [1, 2,]}` has ']' at column 13 */
    parse_err("{\"a\": [1, 2,]}", "t.json:1:13: value expected");
    parse_err("[1]\n  x", "t.json:2:3: unexpected text");
    parse_err("", "t.json:1:1: value expected, found end of input");
    parse_err("\"abc", "unterminated string");
    parse_err("[\"a\\x\"]", "t.json:1:4: invalid escape"); /* at the backslash */
    parse_err("\"\\ud83d\"", "unpaired UTF-16 surrogate");
    parse_err("\"\\u0000\"", "\\u0000 is not supported");
    parse_err("\"a\tb\"", "control character");
    parse_err("{\"k\": 1, \"k\": 2}", "t.json:1:10: duplicate key \"k\"");
    parse_err("{\"k\" 1}", "':' expected");
    parse_err("{1: 2}", "object key (a string) expected");
    parse_err("01", "t.json:1:2: unexpected text"); /* no leading zeros */
    parse_err("1.", "digit expected after decimal point");
    parse_err("1e+", "digit expected in exponent");
    parse_err("-", "invalid number");
    parse_err("tru", "value expected");
    parse_err("[1 2]", "',' or ']' expected");
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = '\0';
    parse_err(deep, "nesting deeper than 64 levels");
}
END_TEST

/* ---- run records ---- */

START_TEST(test_record_roundtrip)
{
    lb_results s;
    make_study(&s);
    for (size_t i = 0; i < s.n_runs; i++) {
        const char *p1 = path_in("run.json"), *p2 = path_in("run2.json");
        ck_assert_int_eq(lb_run_record_write_json(&s.runs[i], p1), LB_OK);
        lb_run_record r;
        ck_assert_msg(lb_run_record_read_json(&r, p1) == LB_OK, "%s", lb_last_error());
        assert_same_record(&s.runs[i], &r);
        /* and the text is a fixed point */
        ck_assert_int_eq(lb_run_record_write_json(&r, p2), LB_OK);
        char *a = slurp(p1), *b = slurp(p2);
        ck_assert_str_eq(a, b);
        if (i == 0) {
            ck_assert_ptr_nonnull(strstr(a, "\"format\": \"libra-run\""));
            ck_assert_ptr_nonnull(strstr(a, "\"tau\": null")); /* prior correction has no tau */
            ck_assert_ptr_nonnull(strstr(a, "\"pr_auc\": null"));
        }
        free(a);
        free(b);
        lb_run_record_free(&r);
        unlink(p1);
        unlink(p2);
    }

    /* edge values: the largest seed, a curve with NaN, strings needing escapes */
    lb_run_record r, back;
    lb_run_record_init(&r);
    r.seed = UINT64_MAX;
    r.steps = 0;
    ck_assert_int_eq(lb_run_record_set_strategy(&r, "mix:\"a\"\\b\n\x01\xc3\xa9"), LB_OK);
    ck_assert_int_eq(lb_metrics_init(&r.metrics, 1), LB_OK);
    r.metrics.accuracy = 0x1.fffffep-1f; /* needs all 9 digits */
    r.metrics.recall[0] = 1e-38f;
    ck_assert_int_eq(lb_curve_append(&r.loss, -5, NAN), LB_OK);
    ck_assert_int_eq(lb_curve_append(&r.loss, INT64_MAX, 3.40282347e38f), LB_OK);
    ck_assert_int_eq(lb_run_record_add_grid(&r, "", 0.5f), LB_OK);
    r.grid_chosen = 0;
    const char *p = path_in("edge.json");
    ck_assert_int_eq(lb_run_record_write_json(&r, p), LB_OK);
    ck_assert_msg(lb_run_record_read_json(&back, p) == LB_OK, "%s", lb_last_error());
    assert_same_record(&r, &back);
    lb_run_record_free(&back);
    lb_run_record_free(&r);
    unlink(p);
    lb_results_free(&s);
    assert_no_temp_files();
}
END_TEST

/* A record as text and back (the message of a study across ranks): the same record, the
 * same text as its file; the rank that trained it survives, and a record without "rank" (an
 * older file) reads with rank -1. A negative rank is refused. */
START_TEST(test_record_text_and_rank)
{
    lb_results s;
    make_study(&s);
    lb_run_record *r = &s.runs[0];
    ck_assert_int_eq(r->rank, -1);
    lb_buf b = {0};
    ck_assert_int_eq(lb_run_record_to_json(r, &b), LB_OK);
    ck_assert_ptr_null(strstr(b.p, "\"rank\""));
    const char *p = path_in("run.json");
    ck_assert_int_eq(lb_run_record_write_json(r, p), LB_OK);
    char *file = slurp(p);
    ck_assert_str_eq(file, b.p);
    lb_run_record back;
    ck_assert_msg(lb_run_record_parse_json(&back, b.p, b.n, "message") == LB_OK, "%s", lb_last_error());
    assert_same_record(r, &back);
    ck_assert_int_eq(back.rank, -1);
    lb_run_record_free(&back);
    lb_buf_free(&b);

    r->rank = 3;
    ck_assert_int_eq(lb_run_record_to_json(r, &b), LB_OK);
    ck_assert_ptr_nonnull(strstr(b.p, "\n  \"rank\": 3,\n"));
    ck_assert_msg(lb_run_record_parse_json(&back, b.p, b.n, "message") == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(back.rank, 3);
    assert_same_record(r, &back);
    lb_run_record_free(&back);
    char *neg = strstr(b.p, "\"rank\": 3");
    neg[8] = '-'; /* "rank": -, a malformed number */
    ck_assert_int_eq(lb_run_record_parse_json(&back, b.p, b.n, "message"), LB_EFORMAT);
    ck_error_mentions("message:");
    lb_buf_free(&b);
    free(file);
    unlink(p);
    lb_results_free(&s);
}
END_TEST

/* Replaces the first `from` in the record file with `to`, reads it, and checks the error
 * names the file, `expect`, and where: mode 0 the file only, 1 also the line of `to`,
 * 2 also its column. */
static void corrupt(const char *good, const char *from, const char *to, const char *expect,
                    int mode)
{
    const char *p = path_in("bad.json");
    const char *hit = strstr(good, from);
    ck_assert_msg(hit != NULL, "%s not in the record", from);
    size_t pre = (size_t)(hit - good);
    char *text = malloc(strlen(good) + strlen(to) + 1);
    memcpy(text, good, pre);
    strcpy(text + pre, to);
    strcat(text, hit + strlen(from));
    spit(p, text);
    int line = 1, col = 1;
    for (size_t i = 0; i < pre; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    lb_run_record r;
    int st = lb_run_record_read_json(&r, p);
    ck_assert_msg(st == LB_EFORMAT, "accepted %s -> %s", from, to);
    char where[4400];
    snprintf(where, sizeof where, mode ? "%s:%d:" : "%s:", p, line);
    ck_assert_msg(strstr(lb_last_error(), where), "\"%s\" lacks %s", lb_last_error(), where);
    if (mode == 2) {
        snprintf(where, sizeof where, "%s:%d:%d: ", p, line, col);
        ck_assert_msg(strstr(lb_last_error(), where), "\"%s\" lacks %s", lb_last_error(), where);
    }
    ck_assert_msg(strstr(lb_last_error(), expect), "\"%s\" lacks \"%s\"", lb_last_error(), expect);
    ck_assert_ptr_null(r.strategy); /* left empty */
    free(text);
    unlink(p);
}

/* The text `"key": value` of the first such member (value up to the next comma). */
static const char *member_text(const char *text, const char *key)
{
    static char buf[4][128];
    static int next;
    char *out = buf[next++ % 4], pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *w = strstr(text, pat);
    ck_assert_ptr_nonnull(w);
    snprintf(out, 128, "%.*s", (int)strcspn(w, ","), w);
    return out;
}

START_TEST(test_record_read_errors)
{
    lb_results s;
    make_study(&s);
    char p[4200]; /* path_in's buffers rotate; corrupt() uses them too */
    snprintf(p, sizeof p, "%s", path_in("good.json"));
    ck_assert_int_eq(lb_run_record_write_json(&s.runs[0], p), LB_OK);
    char *good = slurp(p);
    corrupt(good, "\"seed\": 1", "\"seed\": \"1\"", "\"seed\" must be a number, found string", 1);
    corrupt(good, "\"seed\": 1", "\"seed\": -1", "seed must be an integer in [0, 2^64)", 1);
    corrupt(good, "\"steps\": 3000", "\"steps\": 3000.5", "steps must be an integer, found 3000.5",
            1);
    corrupt(good, "\"steps\": 3000", "\"stepz\": 3000", "unknown key \"stepz\"", 1);
    corrupt(good, "\"strategy\": \"ce\",", "", "missing key \"strategy\"", 0);
    corrupt(good, "\"per_class_recall\": [", "\"per_class_recall\": [0.5, ",
            "\"per_class_recall\" has 11 values, expected 10", 1);
    corrupt(good, member_text(good, "wall_seconds"), "\"wall_seconds\": 1e99",
            "wall_seconds = 1e99 does not fit a float", 1);
    corrupt(good, "\"format\": \"libra-run\"", "\"format\": \"libra-results\"",
            "expected \"libra-run\"", 1);
    corrupt(good, "\"chosen\": -1", "\"chosen\": 3", "chosen = 3 but the grid has 0 points", 1);
    corrupt(good, member_text(good, "accuracy"), "\"accuracy\": true",
            "accuracy must be a number or null", 1);
    corrupt(good, "\"n_classes\": 10", "\"n_classes\": 0", "n_classes = 0 is out of range", 1);
    /* truncations of the file are refused cleanly (only the final newline may go): every cut
     * in the first and last 256 bytes, and 500 more spread over the rest, so that the loop
     * (each parse reads the whole prefix) stays well inside the budget under ASan on a loaded
     * machine; fuzz/fuzz_record.c covers the rest */
    size_t len = strlen(good), step = len / 500 + 1;
    for (size_t k = 0; k + 1 < len; k += k < 256 || k + 257 > len ? 1 : step) {
        lb_json v;
        ck_assert_int_eq(lb__json_parse(good, k, "cut.json", &v), LB_EFORMAT);
    }
    /* a syntax error: the position is where the bad text starts */
    corrupt(good, "\"libra_version\"", "'libra_version'", "object key (a string) expected", 2);
    free(good);

    lb_run_record r;
    ck_assert_int_eq(lb_run_record_read_json(&r, path_in("does-not-exist.json")), LB_EIO);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "does-not-exist.json: cannot open"));
    spit(p, "[]");
    ck_assert_int_eq(lb_run_record_read_json(&r, p), LB_EFORMAT);
    ck_assert_ptr_nonnull(
        strstr(lb_last_error(), "good.json:1:1: a run record must be a JSON object"));
    unlink(p);
    lb_results_free(&s);
}
END_TEST

/* ---- the study's files ---- */

START_TEST(test_results_json)
{
    lb_results s;
    make_study(&s);
    const char *p = path_in("results.json");
    ck_assert_int_eq(lb_report_write_json(&s, p), LB_OK);
    char *text = slurp(p);
    lb_json v;
    ck_assert_msg(lb__json_parse(text, strlen(text), p, &v) == LB_OK, "%s", lb_last_error());
    ck_assert_str_eq(lb__json_get(&v, "format")->str, "libra-results");
    ck_assert_str_eq(lb__json_get(&v, "libra_version")->str, lb_version());
    ck_assert_str_eq(lb__json_get(&v, "baseline")->str, "ce");
    const lb_json *d = lb__json_get(&v, "dataset"), *cl = lb__json_get(d, "classes");
    ck_assert_str_eq(lb__json_get(d, "profile")->str, "exp:ratio=100");
    ck_assert_str_eq(lb__json_get(d, "split_seed")->str, "42");
    ck_assert_uint_eq(cl->n, C);
    ck_assert_str_eq(lb__json_get(&cl->items[9], "name")->str, "Ankle \"boot\"");
    ck_assert_str_eq(lb__json_get(&cl->items[9], "train")->str, "50");
    ck_assert_str_eq(lb__json_get(&cl->items[9], "val")->str, "5");
    const lb_json *f = lb__json_get(&v, "flags");
    ck_assert_uint_eq(f->n, 3);
    ck_assert_str_eq(f->keys[0], "steps");
    ck_assert_str_eq(lb__json_get(f, "batch")->str, "128");
    const lb_json *runs = lb__json_get(&v, "runs");
    ck_assert_uint_eq(runs->n, 12);
    const lb_json *r0 = &runs->items[0], *m0 = lb__json_get(r0, "metrics");
    ck_assert_ptr_null(lb__json_get(r0, "format")); /* only per-run files carry it */
    ck_assert_uint_eq(lb__json_get(m0, "confusion")->n, C);
    ck_assert_uint_eq(lb__json_get(r0, "posthoc")->n, 2);
    ck_assert_uint_eq(lb__json_get(lb__json_get(&runs->items[6], "grid"), "points")->n, 4);
    /* %.9g of the stored float */
    char want[32];
    snprintf(want, sizeof want, "%.9g", (double)s.runs[0].metrics.balanced_accuracy);
    ck_assert_str_eq(lb__json_get(m0, "balanced_accuracy")->str, want);
    lb__json_free(&v);
    free(text);
    assert_no_temp_files();

    /* a run whose class count disagrees with the dataset is refused, naming it */
    lb_metrics_free(&s.runs[3].metrics);
    ck_assert_int_eq(lb_metrics_init(&s.runs[3].metrics, 3), LB_OK);
    ck_assert_int_eq(lb_report_write_json(&s, p), LB_EINVAL);
    ck_assert_ptr_nonnull(
        strstr(lb_last_error(), "run 3 (strategy \"weighted_ce:beta=0.999\", seed 1)"));
    ck_assert_int_eq(lb_report_write_html(&s, p), LB_EINVAL);
    lb_results_free(&s);
    lb_results e;
    lb_results_init(&e);
    ck_assert_int_eq(lb_report_write_json(&e, p), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "no dataset description"));
    unlink(p);
}
END_TEST

START_TEST(test_results_csv)
{
    lb_results s;
    make_study(&s);
    ck_assert_int_eq(lb_run_record_set_strategy(&s.runs[11], "mix:a=\"1\",b=2"), LB_OK);
    const char *p = path_in("results.csv");
    ck_assert_int_eq(lb_report_write_csv(&s, p), LB_OK);
    char *t = slurp(p);
    /* header + 12 raw rows + 3 ce runs x 2 post-hoc rows */
    ck_assert_int_eq(count_of(t, "\r\n"), 1 + 12 + 6);
    const char *head = "profile,strategy,seed,variant,tau,steps,wall_seconds,images_per_sec,n,accuracy,"
                       "balanced_accuracy,";
    ck_assert(!strncmp(t, head, strlen(head)));
    /* the records name no profile: the first field is empty */
    ck_assert_int_eq(count_of(t, "\r\n,ce,1,raw,,3000,"), 1); /* tau of the raw row is empty (NaN) */
    ck_assert_int_eq(count_of(t, "\r\n,ce,2,prior_correction,,3000,"), 1);
    ck_assert_int_eq(count_of(t, "\r\n,ce,3,logit_adjust,1,3000,"), 1);
    ck_assert_int_eq(count_of(t, "\r\n,\"mix:a=\"\"1\"\",b=2\",3,raw,"),
                     1); /* quoted, quotes doubled */
    /* every row has the header's 21 fields; pr_auc (multi-class) is empty: ",," */
    char *line = strstr(t, "\r\n,ce,1,raw") + 2;
    int commas = 0;
    for (char *q = line; *q != '\r'; q++) commas += *q == ',';
    ck_assert_int_eq(commas, 20);
    free(t);
    unlink(p);
    lb_results_free(&s);
}
END_TEST

START_TEST(test_report_html)
{
    lb_results s;
    make_study(&s);
    const char *p = path_in("report.html");
    ck_assert_int_eq(lb_report_write_html(&s, p), LB_OK);
    /* the e2e test also gets the other two files beside it */
    ck_assert_int_eq(lb_report_write_json(&s, path_in("results.json")), LB_OK);
    ck_assert_int_eq(lb_report_write_csv(&s, path_in("results.csv")), LB_OK);
    char *h = slurp(p);
    ck_assert(!strncmp(h, "<!DOCTYPE html>", 15));
    ck_assert_ptr_nonnull(strstr(h, "<title>Fashion-MNIST, exponential imbalance 100:1</title>"));
    /* user strings are escaped everywhere: the raw forms never appear */
    ck_assert_ptr_null(strstr(h, "Bag <&>"));
    ck_assert_ptr_null(strstr(h, "Ankle \"boot\""));
    ck_assert_ptr_nonnull(strstr(h, "Bag &lt;&amp;&gt;"));
    ck_assert_ptr_nonnull(strstr(h, "Ankle &quot;boot&quot;"));
    /* self-contained: no script, no external resource (the one URL is the SVG namespace) */
    ck_assert_ptr_null(strstr(h, "<script"));
    ck_assert_ptr_null(strstr(h, "src="));
    ck_assert_ptr_null(strstr(h, "href="));
    ck_assert_ptr_null(strstr(h, "url("));
    ck_assert_ptr_null(strstr(h, "@import"));
    ck_assert_int_eq(count_of(h, "http"), count_of(h, "xmlns=\"http://www.w3.org/2000/svg\""));
    /* charts: class histogram, recall bars, 4 heatmaps, 2 training curves, focal factor */
    ck_assert_int_eq(count_of(h, "<svg "), 1 + 1 + 4 + 2 + 1);
    ck_assert_int_eq(count_of(h, "<svg "), count_of(h, "</svg>"));
    static const char *const ids[] = {"dataset", "summary", "recall", "confusion",
                                      "curves",  "grids",   "focal",  "flags"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        char id[64];
        snprintf(id, sizeof id, "<section id=\"%s\">", ids[i]);
        ck_assert_msg(strstr(h, id), "missing %s", id);
    }
    /* summary: 4 strategies + 2 post-hoc rows of ce; best marked; differences from ce */
    ck_assert_int_eq(count_of(h, "<em>+ "), 2 * 2); /* the key columns' table and every metric's */
    ck_assert(count_of(h, "class=\"best\"") >= 5);
    ck_assert(count_of(h, "<small class=\"up\">+") > 0);
    ck_assert_ptr_nonnull(strstr(h, "focal:gamma=2 &#9733;")); /* the chosen grid point */
    ck_assert_ptr_nonnull(strstr(h, "imbalance ratio 100"));
    ck_assert_int_eq(count_of(h, "<section"), count_of(h, "</section>"));
    free(h);
    lb_results_free(&s);
    /* the wide study, and a sweep of it on two profiles, for the e2e test to render */
    lb_results w[2];
    make_wide_study(&w[0], "longtail:100", 0);
    make_wide_study(&w[1], "longtail:200", 0.03);
    ck_assert_int_eq(lb_report_write_html(&w[0], path_in("wide.html")), LB_OK);
    const lb_results *parts[2] = {&w[0], &w[1]};
    const char *dirs[2] = {"longtail_100", "longtail_200"};
    ck_assert_int_eq(lb_sweep_write_html(parts, dirs, 2, path_in("sweep.html")), LB_OK);
    h = slurp(path_in("wide.html"));
    ck_assert_ptr_nonnull(strstr(h, "<section id=\"intervals\">"));
    ck_assert_int_eq(count_of(h, "<figure><figcaption>focal:gamma=0|0.5|1|2|5,alpha=0.25|0.5|0.75: validation"), 1);
    ck_assert_ptr_nonnull(strstr(h, "gap recovered"));
    free(h);
    h = slurp(path_in("sweep.html"));
    ck_assert_int_eq(count_of(h, "<polyline"), 19); /* one line per strategy */
    ck_assert_int_eq(count_of(h, " (dashed)</span>"), 9); /* the legend names the 9 dashed ones */
    ck_assert_ptr_nonnull(strstr(h, "href=\"longtail_200/report.html\""));
    free(h);
    lb_results_free(&w[0]);
    lb_results_free(&w[1]);
    if (own_outdir) {
        unlink(p);
        unlink(path_in("results.json"));
        unlink(path_in("results.csv"));
        unlink(path_in("wide.html"));
        unlink(path_in("sweep.html"));
    }
    assert_no_temp_files();
}
END_TEST

/* The summary's mean and standard deviation, worked by hand: two seeds with balanced
 * accuracy 0.5 and 0.7 -> 60.0 +- 14.1 (sample std sqrt(0.02) = 0.1414). */
START_TEST(test_html_summary_numbers)
{
    lb_results s;
    lb_results_init(&s);
    int tr[2] = {90, 10};
    ck_assert_int_eq(lb_results_set_dataset(&s, "toy", "", 1, 2, NULL, tr, NULL, NULL), LB_OK);
    int64_t cms[2][4] = {{50, 0, 50, 0}, {70, 30, 30, 70}}; /* recalls (1, 0) and (.7, .7) */
    for (int k = 0; k < 2; k++) {
        lb_run_record r;
        lb_run_record_init(&r);
        lb_run_record_set_strategy(&r, "x");
        r.seed = (uint64_t)k;
        ck_assert_int_eq(lb_metrics_from_confusion(&r.metrics, cms[k], 2, tr, NULL), LB_OK);
        lb_results_take_run(&s, &r);
    }
    const char *p = path_in("toy.html");
    ck_assert_int_eq(lb_report_write_html(&s, p), LB_OK);
    char *h = slurp(p);
    ck_assert_ptr_nonnull(strstr(h, "<td class=\"best\">60.0 &#177; 14.1</td>"));
    ck_assert_ptr_nonnull(strstr(h, "(not among the runs")); /* no "ce" run to compare with */
    ck_assert_ptr_nonnull(strstr(h, "<td>0</td><td>90</td><td>0</td><td>0</td><td>medium</td>"));
    ck_assert_ptr_nonnull(strstr(h, "<td>1</td><td>10</td><td>0</td><td>0</td><td>few</td>"));
    free(h);
    /* relative thresholds: 90 * 100/1280 = 7.03 and 90 * 20/1280 = 1.41, so both are many-shot */
    s.metrics_opts.shot_mode = LB_SHOT_RELATIVE;
    s.metrics_opts.many_above = 100.0 / 1280;
    s.metrics_opts.few_below = 20.0 / 1280;
    ck_assert_int_eq(lb_report_write_html(&s, p), LB_OK);
    h = slurp(p);
    ck_assert_ptr_nonnull(strstr(h, "many &gt; 7.03, few &lt; 1.41 training images"));
    ck_assert_ptr_nonnull(strstr(h, "<td>1</td><td>10</td><td>0</td><td>0</td><td>many</td>"));
    free(h);
    unlink(p);
    lb_results_free(&s);
}
END_TEST

/* ---- atomic writes ---- */

START_TEST(test_atomic_write)
{
    lb_results s;
    make_study(&s);
    const char *p = path_in("out.csv");
    spit(p, "old content that is longer than nothing\n");
    ck_assert_int_eq(lb_report_write_csv(&s, p), LB_OK);
    char *t = slurp(p);
    ck_assert(!strncmp(t, "profile,strategy,", 17)); /* replaced whole */
    free(t);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    unlink(p);

    /* a missing directory: an I/O error naming the path */
    const char *q = path_in("no/such/dir/results.json");
    ck_assert_int_eq(lb_report_write_json(&s, q), LB_EIO);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), q));
    /* the target is a directory: rename fails, the directory stays, no temp file is left */
    const char *d = path_in("a-dir");
    ck_assert_int_eq(mkdir(d, 0755), 0);
    ck_assert_int_eq(lb_report_write_html(&s, d), LB_EIO);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "rename failed"));
    ck_assert_int_eq(stat(d, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    rmdir(d);
    assert_no_temp_files();
    lb_results_free(&s);
}
END_TEST

/* ---- setup and the PNG helper of the e2e test ---- */

static int count_colours(const char *file)
{
    int w, h, n;
    unsigned char *px = stbi_load(file, &w, &h, &n, 3);
    if (!px) {
        fprintf(stderr, "%s: cannot decode: %s\n", file, stbi_failure_reason());
        return 1;
    }
    unsigned char *seen = calloc(1 << 21, 1); /* one bit per 24-bit colour */
    long distinct = 0;
    for (long i = 0; i < (long)w * h; i++) {
        unsigned c = (unsigned)px[3 * i] << 16 | (unsigned)px[3 * i + 1] << 8 | px[3 * i + 2];
        if (!(seen[c >> 3] & (1u << (c & 7)))) {
            seen[c >> 3] |= (unsigned char)(1u << (c & 7));
            distinct++;
        }
    }
    printf("%dx%d %ld\n", w, h, distinct);
    free(seen);
    stbi_image_free(px);
    return 0;
}

/* The predictions file: written and read back to the same values (logits to the bit), and
 * each malformed file refused naming its line and what is wrong. */
START_TEST(test_predictions_csv)
{
    const float logits[] = {1.5f, -2.25f, 0.1f, 3.0f, 1e-8f, -0.0f}; /* 3 rows, 2 classes */
    const int labels[] = {0, 1, 1};
    const float other[] = {0.0f, 1.0f, 1.0f, 0.0f, 0.3f, 0.7f};
    lb_predictions p = {0}, q;
    ck_assert_int_eq(lb_predictions_set(&p, logits, labels, 3, 2), LB_OK);
    ck_assert_int_eq(p.pred[0], 0);
    ck_assert_int_eq(p.pred[1], 1);
    ck_assert_int_eq(p.pred[2], 0); /* 1e-8 > -0 */
    ck_assert_int_eq(lb_predictions_add_variant(&p, "logit_adjust", other), LB_OK);
    ck_assert_err(lb_predictions_add_variant(&p, "logit_adjust", other), LB_EINVAL, "twice");
    ck_assert_err(lb_predictions_add_variant(&p, "a,b", other), LB_EINVAL, "holds a space, comma");
    lb_buf b = {0};
    ck_assert_int_eq(lb_predictions_to_csv(&p, &b), LB_OK);
    ck_assert_str_eq(b.p, "index,label,pred,logit_0,logit_1,pred_logit_adjust\n0,0,0,1.5,-2.25,1\n1,1,1,0.100000001,3,0\n"
                          "2,1,0,9.99999994e-09,-0,1\n");
    ck_assert_int_eq(lb_predictions_parse_csv(&q, b.p, b.n, "p.csv"), LB_OK);
    ck_assert_int_eq(q.n, 3);
    ck_assert_int_eq(q.n_variants, 1);
    ck_assert_str_eq(q.variant[0], "logit_adjust");
    ck_assert(memcmp(q.logits, logits, sizeof logits) == 0);
    ck_assert(memcmp(q.variant_pred, p.variant_pred, 3 * sizeof(int)) == 0);
    lb_predictions_free(&q);
    lb_buf_free(&b);
    lb_predictions_free(&p);
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"", "p.csv: empty"},
        {"index,label,logit_0\n", "p.csv:1: the header must start index,label,pred,logit_0"},
        {"index,label,pred,logit_0,logit_2\n", "column 5 is 'logit_2'"},
        {"index,label,pred,logit_0,logit_1\n0,0,0,1\n", "p.csv:2: 4 cells, the header has 5"},
        {"index,label,pred,logit_0,logit_1\n1,0,0,1,2\n", "p.csv:2: index '1' is not an integer in [0, 1)"},
        {"index,label,pred,logit_0,logit_1\n0,2,0,1,2\n", "label '2'"},
        {"index,label,pred,logit_0,logit_1\n0,0,0,x,2\n", "p.csv:2: logit_0 'x' is not a number"},
        {"index,label,pred,logit_0,pred_crt\n0,0,0,1,-1\n", "crt '-1'"},
        {"index,label,pred,logit_0\n0,0,0,1\n\n", "p.csv:3: 1 cells"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(lb_predictions_parse_csv(&q, bad[i].text, strlen(bad[i].text), "p.csv"), LB_EFORMAT);
        ck_assert_msg(strstr(lb_last_error(), bad[i].needle), "case %zu: '%s' lacks '%s'", i, lb_last_error(),
                      bad[i].needle);
        ck_assert_int_eq(q.n, 0);
    }
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--count-colours")) return count_colours(argv[2]);
    const char *env = getenv("LIBRA_REPORT_OUT");
    if (env && *env) {
        snprintf(outdir, sizeof outdir, "%s", env);
        if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "cannot create LIBRA_REPORT_OUT=%s: %s\n", outdir, strerror(errno));
            return 1;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(outdir, sizeof outdir, "%s/libra-report-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(outdir)) {
            perror("mkdtemp");
            return 1;
        }
        own_outdir = 1;
    }
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_json_parse);
    tcase_add_test(tc, test_record_roundtrip);
    tcase_add_test(tc, test_record_text_and_rank);
    tcase_set_timeout(tc, 60); /* times CK_TIMEOUT_MULTIPLIER under sanitizers */
    tcase_add_test(tc, test_record_read_errors);
    tcase_add_test(tc, test_results_json);
    tcase_add_test(tc, test_results_csv);
    tcase_add_test(tc, test_report_html);
    tcase_add_test(tc, test_html_summary_numbers);
    tcase_add_test(tc, test_atomic_write);
    tcase_add_test(tc, test_predictions_csv);
    suite_add_tcase(s, tc);
    int rc = lb_run_suite(s);
    if (own_outdir) rmdir(outdir); /* here, not atexit: Check's forked tests exit too */
    return rc;
}
