/* Study: strategy parsing, list splitting, grid expansion, and the behaviour the whole study
 * is about: on a rare-class problem plain cross-entropy collapses to the majority class,
 * oversampling and a re-weighted loss do not. */
#include "check_util.h"
#include "libra/dist.h"
#include "libra/losses.h"
#include "libra/study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(test_strategy_parse)
{
    lb_strategy s;
    ck_assert_int_eq(lb_strategy_parse(&s, "ce"), LB_OK);
    ck_assert_str_eq(s.loss, "ce");
    ck_assert_str_eq(s.sampler, "shuffle");
    ck_assert_int_eq(s.posthoc, 0);
    ck_assert_int_eq(s.n_points, 1);
    ck_assert_str_eq(s.spec, "ce");
    lb_strategy_free(&s);

    ck_assert_int_eq(lb_strategy_parse(&s, "focal:gamma=2,alpha=0.25@oversample+posthoc"), LB_OK);
    ck_assert_str_eq(s.loss, "focal:gamma=2,alpha=0.25");
    ck_assert_str_eq(s.sampler, "oversample");
    ck_assert_int_eq(s.posthoc, 1);
    ck_assert_str_eq(s.spec, "focal:gamma=2,alpha=0.25@oversample+posthoc");
    lb_strategy_free(&s);

    /* aliases: a sampler alone is ce with that sampler */
    ck_assert_int_eq(lb_strategy_parse(&s, "undersample:ratio=2"), LB_OK);
    ck_assert_str_eq(s.loss, "ce");
    ck_assert_str_eq(s.sampler, "undersample:ratio=2");
    ck_assert_str_eq(s.spec, "ce@undersample:ratio=2");
    lb_strategy_free(&s);

    /* mixing and stages: LOSS[@SAMPLER][~MIX][+STAGE...][+posthoc], canonical parts */
    ck_assert_int_eq(lb_strategy_parse(&s, "ldam:drw=0.8~remix:kappa=3"), LB_OK);
    ck_assert_str_eq(s.loss, "ldam:drw=0.8");
    ck_assert_str_eq(s.sampler, "shuffle");
    ck_assert_str_eq(s.mix, "remix");
    ck_assert_ptr_null(s.stages);
    ck_assert_str_eq(s.spec, "ldam:drw=0.8~remix");
    lb_strategy_free(&s);
    ck_assert_int_eq(lb_strategy_parse(&s, "ce@balanced~mixup:alpha=0.2+crt:steps=0+taunorm+posthoc"), LB_OK);
    ck_assert_str_eq(s.sampler, "balanced");
    ck_assert_str_eq(s.mix, "mixup:alpha=0.2");
    ck_assert_str_eq(s.stages, "crt+taunorm");
    ck_assert_int_eq(s.posthoc, 1);
    ck_assert_str_eq(s.spec, "ce@balanced~mixup:alpha=0.2+crt+taunorm+posthoc");
    lb_strategy_free(&s);
    ck_assert_int_eq(lb_strategy_parse(&s, "smote:k=3"), LB_OK);
    ck_assert_str_eq(s.spec, "ce@smote:k=3");
    lb_strategy_free(&s);
    ck_assert_int_eq(lb_strategy_parse(&s, "ce~cutmix"), LB_EINVAL);
    ck_error_mentions("cutmix");
    ck_assert_int_eq(lb_strategy_parse(&s, "ce+crt:steps=x"), LB_EINVAL);
    ck_error_mentions("steps");
    ck_assert_int_eq(lb_strategy_parse(&s, "ce+crt+crt"), LB_EINVAL);
    ck_error_mentions("crt");
    ck_assert_int_eq(lb_strategy_parse(&s, "ce~"), LB_EINVAL);

    ck_assert_int_eq(lb_strategy_parse(&s, "ce+later"), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "+later"));
    ck_assert_int_eq(lb_strategy_parse(&s, "ce@"), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "sampler"));
}
END_TEST

START_TEST(test_strategy_split)
{
    char **it;
    int n;
    ck_assert_int_eq(lb_strategy_split("ce,focal:gamma=2,alpha=0.25,ce@oversample;wce:weights=1,2,4", &it, &n), LB_OK);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(it[0], "ce");
    ck_assert_str_eq(it[1], "focal:gamma=2,alpha=0.25");
    ck_assert_str_eq(it[2], "ce@oversample");
    ck_assert_str_eq(it[3], "wce:weights=1,2,4");
    for (int i = 0; i < n; i++) lb_free(it[i]);
    lb_free(it);
    /* a NAME:NUMBER part is an item of a per-class list by class name, not a strategy */
    ck_assert_int_eq(lb_strategy_split("ce,focal:gamma=2,alpha=Diseased:0.75,Healthy:0.25@oversample,ldam", &it, &n), LB_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(it[1], "focal:gamma=2,alpha=Diseased:0.75,Healthy:0.25@oversample");
    ck_assert_str_eq(it[2], "ldam");
    for (int i = 0; i < n; i++) lb_free(it[i]);
    lb_free(it);
    ck_assert_int_eq(lb_strategy_split("ce~mixup,ldam:drw=0.8~remix,ce+crt,ce@smote:k=3,ratio=0.5", &it, &n), LB_OK);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(it[1], "ldam:drw=0.8~remix");
    ck_assert_str_eq(it[3], "ce@smote:k=3,ratio=0.5");
    for (int i = 0; i < n; i++) lb_free(it[i]);
    lb_free(it);
    ck_assert_int_eq(lb_strategy_split("ce;;focal", &it, &n), LB_EINVAL);
    ck_assert_int_eq(lb_strategy_split("", &it, &n), LB_EINVAL);
}
END_TEST

START_TEST(test_grid_expand)
{
    char **p;
    int n;
    ck_assert_int_eq(lb_grid_expand("focal:gamma=0.5|1|2,alpha=0.25|0.75", &p, &n), LB_OK);
    ck_assert_int_eq(n, 6);
    /* the last key varies fastest */
    ck_assert_str_eq(p[0], "focal:gamma=0.5,alpha=0.25");
    ck_assert_str_eq(p[1], "focal:gamma=0.5,alpha=0.75");
    ck_assert_str_eq(p[5], "focal:gamma=2,alpha=0.75");
    for (int i = 0; i < n; i++) lb_free(p[i]);
    lb_free(p);
    ck_assert_int_eq(lb_grid_expand("ce", &p, &n), LB_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(p[0], "ce");
    lb_free(p[0]);
    lb_free(p);
    ck_assert_int_eq(lb_grid_expand("focal:gamma=1||2", &p, &n), LB_EINVAL);
    ck_assert_int_eq(lb_grid_expand("focal:gamma=1|", &p, &n), LB_EINVAL);
    ck_assert_int_eq(lb_grid_expand("a|b", &p, &n), LB_EINVAL);
    /* 2^24 points from a short spec: refused before anything is allocated (a fuzzer find) */
    ck_assert_int_eq(lb_grid_expand("f:a=1|2,b=1|2,c=1|2,d=1|2,e=1|2,f=1|2,g=1|2,h=1|2,i=1|2,j=1|2,k=1|2,l=1|2,"
                                    "m=1|2,n=1|2,o=1|2,p=1|2,q=1|2,r=1|2,s=1|2,t=1|2,u=1|2,v=1|2,w=1|2,x=1|2",
                                    &p, &n),
                     LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "more than 1000 points"));
}
END_TEST

START_TEST(test_strategy_check)
{
    lb_strategy s;
    int counts[3] = {100, 10, 1};
    ck_assert_int_eq(lb_strategy_parse(&s, "focal:gamma=1|2,beta=3"), LB_OK);
    ck_assert_int_eq(lb_strategy_check(&s, 3, counts), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "beta"));
    lb_strategy_free(&s);
    ck_assert_int_eq(lb_strategy_parse(&s, "ce@nosuchsampler"), LB_OK);
    ck_assert_int_eq(lb_strategy_check(&s, 3, counts), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "nosuchsampler"));
    lb_strategy_free(&s);
}
END_TEST

/* Strategies that differ only in how they are written have one canonical key, and a study
 * refuses them as duplicates (the report once counted "ce;ce" as one strategy of 4 runs). */
START_TEST(test_strategy_keys_and_duplicates)
{
    static const char *const same[][2] = {{"ce", "ce@shuffle"}, {"focal", "focal:gamma=2"},
                                          {"wce", "wce:weights=inverse,beta=0.999"}, {"oversample", "ce@oversample:ratio=1"},
                                          {"ce~remix", "ce@shuffle~remix:kappa=3,tau=0.5"}, {"ce+crt", "ce+crt:steps=0"},
                                          {"smote", "ce@smote:k=5"}, {"ce~mixup@balanced", "ce@balanced~mixup"}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        lb_strategy a, b;
        lb_buf ka = {0}, kb = {0};
        ck_assert_int_eq(lb_strategy_parse(&a, same[i][0]), LB_OK);
        ck_assert_int_eq(lb_strategy_parse(&b, same[i][1]), LB_OK);
        ck_assert_int_eq(lb_strategy_key(&a, &ka), LB_OK);
        ck_assert_int_eq(lb_strategy_key(&b, &kb), LB_OK);
        ck_assert_msg(!strcmp(ka.p, kb.p), "'%s' -> %s but '%s' -> %s", same[i][0], ka.p, same[i][1], kb.p);
        lb_strategy_free(&a);
        lb_strategy_free(&b);
        lb_buf_free(&ka);
        lb_buf_free(&kb);
    }
    lb_study_config c;
    lb_study_config_init(&c);
    c.strategies = "ce;focal:gamma=1;ce+posthoc";
    ck_assert_int_eq(lb_study_check(&c), LB_OK); /* +posthoc is another strategy of the same model */
    c.strategies = "ce;ce+crt;ce+taunorm;ce~mixup;ce@smote"; /* stages: other strategies of the same model */
    ck_assert_int_eq(lb_study_check(&c), LB_OK);
    c.strategies = "ce+fsmote"; /* +fsmote needs its control, +crt of the same model */
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "+fsmote needs its control +crt");
    c.strategies = "ce+crt:steps=7;ce+fsmote:steps=5";
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "+crt:steps=5");
    c.strategies = "ce@balanced+crt;ce+fsmote";
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "of the same model");
    c.strategies = "ce+crt;ce+fsmote:k=3";
    ck_assert_int_eq(lb_study_check(&c), LB_OK);
    c.strategies = "ce+fsmote+crt";
    ck_assert_int_eq(lb_study_check(&c), LB_OK);
    c.strategies = "ce;wce;ce@shuffle";
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "'ce@shuffle' (number 3) is the same as 'ce' (number 1)");
    c.strategies = "focal:gamma=1|2;focal:gamma=1|2,alpha=none";
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "is the same as");
    c.strategies = "ce;nosuch";
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "unknown loss 'nosuch'");
    c.strategies = "ce";
    c.train.arch = "densenet";
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "unknown architecture");
}
END_TEST

/* ---- a whole study on a small IDX dataset of 70 classes ---- */

static char tmpdir[256];

static const char *tp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* n images of 4x4 with a class-dependent pattern, labels i % classes. */
static void write_idx(const char *img, const char *lab, int n, int classes)
{
    uint8_t *px = malloc((size_t)n * 16), *y = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % classes);
        for (int p = 0; p < 16; p++) px[i * 16 + p] = (uint8_t)((y[i] * 37 + p * 11 + i) & 255);
    }
    uint32_t di[3] = {(uint32_t)n, 4, 4}, dl[1] = {(uint32_t)n};
    ck_assert_int_eq(lb_idx_write(img, px, 3, di, 0), LB_OK);
    ck_assert_int_eq(lb_idx_write(lab, y, 1, dl, 0), LB_OK);
    free(px);
    free(y);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* A fresh temp folder (tmpdir) with IDX training (n_train) and test (n_test) sets of
 * `classes` classes, and the data of them with --val val and --imbalance imb (NULL: none);
 * d must outlive the data's study. */
static lb_data *study_data(lb_data_opts *d, int n_train, int n_test, int classes, const char *val, const char *imb)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/libra-test-study-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    write_idx(tp("tri"), tp("trl"), n_train, classes);
    write_idx(tp("tei"), tp("tel"), n_test, classes);
    lb_data_opts_init(d);
    char spec[1200];
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", tp("tri"), tp("trl"), tp("tei"), tp("tel"));
    ck_assert_int_eq(lb_data_opts_set(d, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(d, "val", val), LB_OK);
    if (imb) ck_assert_int_eq(lb_data_opts_set(d, "imbalance", imb), LB_OK);
    lb_data *data = lb_data_new(d);
    ck_assert_msg(data != NULL, "%s", lb_last_error());
    return data;
}

/* More classes than v1's 64-entry arrays held; stored, resumed, refused and replaced. */
START_TEST(test_study_engine)
{
    lb_data_opts d;
    lb_data *data = study_data(&d, 280, 70, 70, "0.25", NULL);
    lb_study_config c;
    lb_study_config_init(&c);
    c.strategies = "ce;wce:weights=inverse;focal:gamma=0|2";
    c.seeds = 2;
    c.train.arch = "linear";
    c.train.steps = 4;
    c.data = &d;
    c.out_dir = tp("out/study");
    lb_study *st = lb_study_new(&c, data);
    ck_assert_msg(st != NULL, "%s", lb_last_error());
    lb_scheduler serial = lb_scheduler_serial();
    ck_assert_int_eq(lb_study_execute(st, &serial), LB_OK);
    const lb_results *r = lb_study_results(st);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->dataset.n_classes, 70);
    ck_assert_int_eq(r->dataset.train_counts[69], 3);
    ck_assert_uint_eq(r->n_runs, 6); /* 3 strategies x 2 seeds; the grid's other point is not a run */
    ck_assert_int_eq(r->runs[4].grid_chosen >= 0, 1);
    ck_assert_int_eq(lb_study_write(st), LB_OK);
    ck_assert(exists(tp("out/study/results.json")) && exists(tp("out/study/runs/settings.txt")));
    lb_study_free(st);

    /* resumed: every run is reused; with other settings: refused, then replaced by force */
    c.resume = 1;
    st = lb_study_new(&c, data);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(lb_study_execute(st, &serial), LB_OK);
    lb_study_free(st);
    c.train.steps = 5;
    ck_assert_ptr_null(lb_study_new(&c, data));
    ck_assert_int_eq(lb_last_status(), LB_EINVAL);
    ck_error_mentions("steps: '4' there, '5' here");
    c.resume = 0;
    ck_assert_ptr_null(lb_study_new(&c, data));
    ck_error_mentions("holds a study with other settings");
    c.force = 1;
    st = lb_study_new(&c, data);
    ck_assert_ptr_nonnull(st);
    ck_assert(!exists(tp("out/study/results.json")) && !exists(tp("out/study/runs")));
    lb_study_free(st);

    /* a study that stores nothing takes away the folders it made */
    c.force = 0;
    c.out_dir = tp("new/deeper/study");
    st = lb_study_new(&c, data);
    ck_assert_ptr_nonnull(st);
    ck_assert(exists(tp("new/deeper/study")));
    lb_study_free(st);
    ck_assert(!exists(tp("new")));

    lb_data_free(data);
    lb_data_opts_free(&d);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static int n_notes;
static void count_note(void *ctx, const char *m)
{
    (void)ctx;
    (void)m;
    n_notes++;
}

/* Runs the study of c (serial) and returns its results' test balanced accuracies (runs in
 * order), or NULL when it ran without results (a share waiting for phase 2). */
static float *run_share(lb_study_config *c, lb_data *data, int *deferred)
{
    lb_study *st = lb_study_new(c, data);
    ck_assert_msg(st != NULL, "%s", lb_last_error());
    lb_study_events ev = {.on_note = count_note};
    lb_study_set_events(st, &ev);
    lb_scheduler serial = lb_scheduler_serial();
    ck_assert_msg(lb_study_execute(st, &serial) == LB_OK, "%s", lb_last_error());
    *deferred = lb_study_deferred(st);
    const lb_results *r = *deferred ? NULL : lb_study_results(st);
    float *bacc = NULL;
    if (r) {
        bacc = calloc(r->n_runs + 1, sizeof *bacc);
        for (size_t i = 0; i < r->n_runs; i++) bacc[i] = r->runs[i].metrics.balanced_accuracy;
        bacc[r->n_runs] = -1;
    }
    lb_study_free(st);
    return bacc;
}

/* Every metric of run rec recomputed from its predictions file (in study folder dir): the
 * model's from the logits (softmax, lb_metrics_from_scores: the same floats, so the same
 * bits), each variant's confusion-matrix metrics from its pred_<variant> column. */
static void ck_rescored(const char *dir, const lb_run_record *rec, const int *train_counts)
{
    ck_assert_msg(rec->predictions != NULL, "run %s names no predictions file", rec->strategy);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, rec->predictions);
    lb_predictions p;
    ck_assert_msg(lb_predictions_read_csv(&p, path) == LB_OK, "%s", lb_last_error());
    int C = p.n_classes, n = p.n;
    ck_assert_int_eq(C, rec->metrics.n_classes);
    ck_assert_int_eq(n, (int)rec->metrics.n);
    float *probs = malloc((size_t)n * C * sizeof *probs);
    ck_assert_int_eq(lb_softmax_rows(p.logits, (size_t)n, C, probs), LB_OK);
    lb_metrics m;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(lb_metrics_from_scores(&m, probs, p.label, (size_t)n, C, train_counts, NULL), LB_OK);
    for (int f = 0; f < LB_N_METRIC_FIELDS; f++) {
        float a = lb_metric_get(&m, &lb_metric_fields[f]), b = lb_metric_get(&rec->metrics, &lb_metric_fields[f]);
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b), "%s: %s re-scored %.9g, recorded %.9g",
                      rec->strategy, lb_metric_fields[f].name, a, b);
    }
    for (int k = 0; k < C; k++) ck_assert(memcmp(&m.recall[k], &rec->metrics.recall[k], sizeof(float)) == 0);
    lb_metrics_free(&m);
    for (size_t v = 0; v < rec->n_posthoc; v++) {
        const lb_posthoc_result *ph = &rec->posthoc[v];
        int k = 0;
        while (k < p.n_variants && strcmp(p.variant[k], ph->name)) k++;
        ck_assert_msg(k < p.n_variants, "%s: no pred_%s column", rec->strategy, ph->name);
        int64_t *conf = calloc((size_t)C * C, sizeof *conf);
        ck_assert_int_eq(lb_confusion_add(conf, C, p.label, p.variant_pred + (size_t)k * n, (size_t)n), LB_OK);
        memset(&m, 0, sizeof m);
        ck_assert_int_eq(lb_metrics_from_confusion(&m, conf, C, train_counts, NULL), LB_OK);
        ck_assert_msg(m.balanced_accuracy == ph->metrics.balanced_accuracy && m.accuracy == ph->metrics.accuracy &&
                          m.macro_f1 == ph->metrics.macro_f1,
                      "%s / %s: re-scored balanced accuracy %.9g, recorded %.9g", rec->strategy, ph->name,
                      m.balanced_accuracy, ph->metrics.balanced_accuracy);
        lb_metrics_free(&m);
        free(conf);
    }
    free(probs);
    lb_predictions_free(&p);
}

/* The oracle: ce on the balanced counterpart of the split (here longtail:10 of 3 x 200 images:
 * 200 + 63 + 20 = 283 kept, so 94 per class, worked by hand), scored with the study's counts
 * (every metric re-scored from its file with them), and the summary's gap_recovered: 0 for
 * ce and 1 for the oracle by definition. */
START_TEST(test_study_oracle)
{
    lb_data_opts d;
    lb_data *data = study_data(&d, 600, 90, 3, "0.2", "longtail:10");
    lb_study_config c;
    lb_study_config_init(&c);
    c.strategies = "ce;oracle;oracle_full";
    c.seeds = 2;
    c.train.arch = "linear";
    c.train.steps = 6;
    c.out_dir = tp("out/oracle");
    ck_assert_ptr_null(lb_study_new(&c, data)); /* no data options: the source cannot be opened again */
    ck_error_mentions("data options");
    c.data = &d;
    lb_study *st = lb_study_new(&c, data);
    ck_assert_msg(st != NULL, "%s", lb_last_error());
    ck_assert_ptr_nonnull(strstr(lb_study_settings(st), "oracle=counts:94,94,94\n"));
    ck_assert_ptr_nonnull(strstr(lb_study_settings(st), "oracle_full=counts:200,200,200\n")); /* all of every class */
    lb_scheduler serial = lb_scheduler_serial();
    ck_assert_int_eq(lb_study_execute(st, &serial), LB_OK);
    const lb_results *r = lb_study_results(st);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->oracle_profile, "counts:94,94,94");
    ck_assert_uint_eq(r->n_runs, 6);
    ck_assert_str_eq(r->runs[2].strategy, "oracle");
    ck_assert_str_eq(r->runs[4].strategy, "oracle_full");
    ck_assert_str_eq(r->oracle_full_profile, "counts:200,200,200");
    ck_assert_str_eq(r->runs[2].profile, "longtail:10");
    for (size_t i = 0; i < r->n_runs; i++) ck_rescored(tp("out/oracle"), &r->runs[i], r->dataset.train_counts);
    ck_assert_uint_eq(r->n_summary, 3);
    const lb_summary_row *ce = lb_results_summary_row(r, "longtail:10", "ce", NULL),
                         *orc = lb_results_summary_row(r, "longtail:10", "oracle", NULL);
    ck_assert(ce && orc);
    ck_assert(ce->bacc != orc->bacc); /* else there is no gap to recover */
    ck_assert(ce->gap_recovered == 0.0 && orc->gap_recovered == 1.0);
    ck_assert(!ce->has_diff && orc->has_diff);
    double diff = 0; /* the point estimate: the mean of the per-seed differences */
    for (int k = 0; k < 2; k++) diff += r->runs[2 + k].metrics.balanced_accuracy - r->runs[k].metrics.balanced_accuracy;
    ck_assert_double_eq_tol(orc->diff, diff / 2, 1e-6);
    const lb_summary_row *full = lb_results_summary_row(r, "longtail:10", "oracle_full", NULL);
    ck_assert(full && isfinite(full->gap_recovered)); /* measured against the same-size oracle too */
    ck_assert_double_eq_tol(full->gap_recovered, (full->bacc - ce->bacc) / (orc->bacc - ce->bacc), 1e-12);
    ck_assert_int_eq(ce->best + orc->best + full->best, 1);
    ck_assert_int_eq(lb_study_write(st), LB_OK);
    ck_assert(exists(tp("out/oracle/summary.csv")));
    lb_study_free(st);
    /* the oracle takes nothing else */
    c.strategies = "ce;oracle@balanced";
    ck_assert_int_eq(lb_study_check(&c), LB_EINVAL);
    ck_error_mentions("the oracle is ce on a class-balanced training set");
    c.strategies = "oracle+crt";
    ck_assert_int_eq(lb_study_check(&c), LB_EINVAL);
    lb_data_free(data);
    lb_data_opts_free(&d);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The forked scheduler hands a phase's jobs out largest first (lb__job_cost: a synthetic
 * sampler, then stages), not in plan order. Two processes, stopped once the first job is
 * done: whatever the timing, the two jobs that ran are the first two handed out. */
static volatile sig_atomic_t fork_stop;
static unsigned fork_ran; /* bit i: job i is done */
static void stop_after_one(void *ctx, const lb_job *job, const lb_run_record *rec, int done, int total, double sec)
{
    (void)ctx, (void)rec, (void)done, (void)total, (void)sec;
    fork_ran |= 1u << job->index;
    fork_stop = 1;
}

START_TEST(test_study_fork_largest_first)
{
    lb_data_opts d;
    lb_data *data = study_data(&d, 600, 90, 3, "0.2", "longtail:10");
    lb_study_config c;
    lb_study_config_init(&c);
    /* plan order 0..3, estimated costs 1, 1, 1.1 (a stage), 1.5 (SMOTE): handed out 3, 2, 0, 1 */
    c.strategies = "ce;wce:weights=inverse;wce:weights=effective+crt;ce@smote";
    c.seeds = 1;
    c.train.arch = "linear";
    c.train.steps = 6;
    c.data = &d;
    c.out_dir = tp("out/fork");
    lb_study *st = lb_study_new(&c, data);
    ck_assert_msg(st != NULL, "%s", lb_last_error());
    lb_study_events ev = {.on_job = stop_after_one};
    lb_study_set_events(st, &ev);
    fork_stop = 0;
    fork_ran = 0;
    lb_study_set_stop(st, &fork_stop);
    lb_scheduler two = lb_scheduler_fork(2);
    ck_assert_int_eq(lb_study_execute(st, &two), LB_EINTR);
    ck_assert_uint_eq(fork_ran, (1u << 3) | (1u << 2)); /* plan order would have run 0 and 1 */
    lb_study_free(st);
    lb_data_free(data);
    lb_data_opts_free(&d);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* --only I/N: each share runs its jobs (index % N) of each phase; a share whose grids lack
 * other shares' phase-1 records waits (deferred, a note) and leaves the shared folder alone;
 * run again, it plans phase 2; the shares together give the whole study's records bit for
 * bit. Also the plan's text, a worker rank's study (no folder, no store) and the checks. */
START_TEST(test_study_shares)
{
    lb_data_opts d;
    lb_data *data = study_data(&d, 160, 40, 4, "0.25", NULL);
    lb_study_config c;
    lb_study_config_init(&c);
    c.strategies = "ce;focal:gamma=0|2";
    c.seeds = 2;
    c.train.arch = "linear";
    c.train.steps = 6;
    c.data = &d;
    c.out_dir = tp("whole");
    int deferred = -1;
    float *whole = run_share(&c, data, &deferred); /* jobs: 0 ce s1, 1 ce s2, 2 focal0 s1, 3 focal2 s1; 4: phase 2 */
    ck_assert_ptr_nonnull(whole);

    c.out_dir = tp("shared");
    c.n_shards = 2;
    c.shard = 0;
    n_notes = 0;
    ck_assert_ptr_null(run_share(&c, data, &deferred)); /* 0 and 2 run; the grid lacks job 3 */
    ck_assert_int_eq(deferred, 1);
    ck_assert_int_eq(n_notes, 1);
    ck_assert(exists(tp("shared/runs/ce@shuffle-s1.json")) && !exists(tp("shared/runs/ce@shuffle-s2.json")));
    c.shard = 1;
    ck_assert_ptr_null(run_share(&c, data, &deferred) /* 1 and 3; phase 2's job 4 is share 1's */);
    ck_assert_int_eq(deferred, 0);
    c.shard = 0;
    c.resume = 1;
    float *first = run_share(&c, data, &deferred); /* reuses 0 and 2, runs 4: results, as a share sees them */
    ck_assert_ptr_nonnull(first);
    free(first);
    c.n_shards = 0; /* --aggregate: everything stored */
    float *all = run_share(&c, data, &deferred);
    ck_assert_ptr_nonnull(all);
    for (int i = 0; whole[i] >= 0; i++) ck_assert_msg(all[i] == whole[i], "run %d: %.9g vs %.9g", i, all[i], whole[i]);
    free(all);
    free(whole);

    /* the plan: every phase-1 job with its share and strategies, and what phase 2 adds */
    c.n_shards = 2;
    lb_study *st = lb_study_new(&c, data);
    ck_assert_ptr_nonnull(st);
    lb_buf b = {0};
    ck_assert_int_eq(lb_study_plan(st, &b), LB_OK);
    ck_assert_ptr_nonnull(strstr(b.p, "phase 1: 4 jobs (2 strategies x 2 seeds"));
    ck_assert_ptr_nonnull(strstr(b.p, "focal:gamma=0|2 (point 2/2)"));
    ck_assert_ptr_nonnull(strstr(b.p, "phase 2: after phase 1"));
    ck_assert_ptr_nonnull(strstr(b.p, "    3  1          2  focal:gamma=2@shuffle"));
    lb_buf_free(&b);
    char diff[200];
    ck_assert_int_eq(lb_study_same_settings(st, lb_study_settings(st), diff, sizeof diff), 1);
    ck_assert_int_eq(lb_study_same_settings(st, "steps=7\n", diff, sizeof diff), 0);
    lb_study_free(st);

    /* a worker rank's study touches no folder and stores nothing */
    lb_study_config w = c;
    w.n_shards = 0;
    w.resume = 0;
    w.worker = 1;
    w.out_dir = tp("never/made");
    st = lb_study_new(&w, data);
    ck_assert_ptr_nonnull(st);
    ck_assert(!exists(tp("never")));
    lb_run_record rec;
    lb_run_record_init(&rec);
    lb_job j = {.name = "x"};
    ck_assert_err(lb_study_store(st, &j, &rec), LB_ESTATE, "a worker rank stores no file");
    lb_study_free(st);
    ck_assert(!exists(tp("never")));

    /* a share may not --force, and must be a share */
    c.resume = 0;
    c.force = 1;
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "--force with --only");
    c.force = 0;
    c.shard = 2;
    ck_assert_err(lb_study_check(&c), LB_EINVAL, "shard 3 of 2");

    lb_data_free(data);
    lb_data_opts_free(&d);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Stages share the training run of their model, mixing and synthesis make runs of their
 * own; each record has the variants its strategy asks for; a resumed study with a new stage
 * runs that model again. */
START_TEST(test_study_variants)
{
    lb_data_opts d;
    lb_data *data = study_data(&d, 240, 40, 4, "0.25", "longtail:10");
    lb_study_config c;
    lb_study_config_init(&c);
    c.strategies = "ce;ce+crt;ce~remix;ce@smote:k=2+taunorm";
    c.seeds = 2;
    c.train.arch = "linear";
    c.train.steps = 20;
    c.data = &d;
    c.out_dir = tp("out/variants");
    lb_study *st = lb_study_new(&c, data);
    ck_assert_msg(st != NULL, "%s", lb_last_error());
    lb_scheduler serial = lb_scheduler_serial();
    ck_assert_msg(lb_study_execute(st, &serial) == LB_OK, "%s", lb_last_error());
    const lb_results *r = lb_study_results(st);
    ck_assert_msg(r != NULL, "%s", lb_last_error());
    ck_assert_uint_eq(r->n_runs, 8);
    for (size_t i = 0; i < r->n_runs; i++) {
        const lb_run_record *rec = &r->runs[i];
        const lb_posthoc_result *crt = lb_run_record_variant(rec, "crt"), *tn = lb_run_record_variant(rec, "taunorm");
        if (!strcmp(rec->strategy, "ce")) ck_assert_uint_eq(rec->n_posthoc, 0);
        if (!strcmp(rec->strategy, "ce+crt")) {
            ck_assert_uint_eq(rec->n_posthoc, 1);
            ck_assert_ptr_nonnull(crt);
            ck_assert_int_eq(crt->steps, 2); /* 10% of the budget, counted in it */
            ck_assert_int_eq(crt->start_step, 18);
            ck_assert_int_eq(crt->metrics.n_classes, 4);
        }
        if (!strcmp(rec->strategy, "ce@smote:k=2+taunorm")) {
            ck_assert_ptr_nonnull(tn);
            ck_assert_int_eq(tn->steps, 0);
            ck_assert(tn->tau >= 0 && tn->tau <= 2);
        }
    }
    for (size_t i = 0; i < r->n_runs; i++) ck_rescored(tp("out/variants"), &r->runs[i], r->dataset.train_counts);
    /* ce and ce+crt are one model: three trained runs per seed */
    lb_buf b = {0};
    ck_assert_int_eq(lb_study_summary(st, &b), LB_OK);
    ck_assert_ptr_nonnull(strstr(b.p, "ce+crt / crt"));
    ck_assert_ptr_nonnull(strstr(b.p, "vs baseline [95% bootstrap]")); /* every run has its predictions */
    ck_assert_ptr_nonnull(strstr(b.p, "(best)"));
    lb_buf_free(&b);
    lb_study_free(st);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "test $(ls '%s'/runs/*.json | wc -l) -eq 6", tp("out/variants"));
    ck_assert_int_eq(system(cmd), 0);

    /* resumed with a new stage of ce's model: that model runs again, the others are reused */
    c.strategies = "ce;ce+crt;ce~remix;ce@smote:k=2+taunorm;ce+lws";
    c.resume = 1;
    st = lb_study_new(&c, data);
    ck_assert_ptr_nonnull(st);
    ck_assert_msg(lb_study_execute(st, &serial) == LB_OK, "%s", lb_last_error());
    r = lb_study_results(st);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->n_runs, 10);
    lb_study_free(st);

    lb_data_free(data);
    lb_data_opts_free(&d);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Fashion-MNIST, Shirt against the rest with 50 negatives per positive, a linear model and
 * 150 steps: a few seconds. Measured when written: ce's Shirt recall 0.00-0.02, oversampling
 * 0.79-0.85, inverse-frequency weights 0.70-0.86 (2 seeds each). */
START_TEST(test_ce_collapses_to_majority)
{
    lb_data_opts d;
    lb_data_opts_init(&d);
    ck_assert_int_eq(lb_data_opts_set(&d, "imbalance", "binary:Shirt,50"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&d, "val", "0.1"), LB_OK);
    lb_data *data;
    ck_assert_msg(NEW_OK(data, lb_data_new(&d)) == LB_OK, "%s (Fashion-MNIST: Debian package dataset-fashion-mnist)",
                  lb_last_error());
    const char *loss[3] = {"ce", "ce", "wce:weights=inverse"};
    const char *sampler[3] = {"shuffle", "oversample", "shuffle"};
    float recall[3];
    for (int i = 0; i < 3; i++) {
        lb_train_opts o;
        lb_train_opts_init(&o);
        o.arch = "linear";
        o.steps = 150;
        o.loss = loss[i];
        o.sampler = sampler[i];
        o.seed = 7;
        o.monitor = LB_MONITOR_VAL;
        lb_run_record r;
        ck_assert_msg(lb_study_run_one(&o, data, NULL, LB_STUDY_TARGET_RECALL, &r) == LB_OK, "%s", lb_last_error());
        ck_assert_int_eq(r.metrics.n_classes, 2);
        recall[i] = r.metrics.recall[1]; /* class 1 = Shirt, the rare one */
        ck_assert_int_eq(r.n_posthoc, 2);
        ck_assert(r.val_bacc.n > 0);
        lb_run_record_free(&r);
    }
    ck_assert_msg(recall[0] < 0.2f, "ce should collapse to the majority: Shirt recall %.3f", recall[0]);
    ck_assert_msg(recall[1] > recall[0] + 0.4f, "oversampling: Shirt recall %.3f vs ce %.3f", recall[1], recall[0]);
    ck_assert_msg(recall[2] > recall[0] + 0.4f, "inverse weights: Shirt recall %.3f vs ce %.3f", recall[2], recall[0]);
    lb_data_free(data);
    lb_data_opts_free(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("study");
    TCase *tc = tcase_create("strategies");
    tcase_add_test(tc, test_strategy_parse);
    tcase_add_test(tc, test_strategy_split);
    tcase_add_test(tc, test_grid_expand);
    tcase_add_test(tc, test_strategy_check);
    tcase_add_test(tc, test_strategy_keys_and_duplicates);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("engine");
    tcase_set_timeout(te, 300);
    tcase_add_test(te, test_study_engine);
    tcase_add_test(te, test_study_oracle);
    tcase_add_test(te, test_study_variants);
    tcase_add_test(te, test_study_shares);
    tcase_add_test(te, test_study_fork_largest_first);
    suite_add_tcase(s, te);
    TCase *tb = tcase_create("behaviour");
    tcase_set_timeout(tb, 300);
    tcase_add_test(tb, test_ce_collapses_to_majority);
    suite_add_tcase(s, tb);
    return lb_run_suite(s);
}
