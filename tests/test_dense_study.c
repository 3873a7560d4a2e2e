/* A dense task end to end, on generated canvases of four 8x8 patterns (no files needed): one
 * training run (lb_dense_train: curves, determinism, the prior's first loss, divergence as a
 * result), its record written and read back, the aggregation against hand-worked means and
 * t-intervals, and a dense study's plan, output folder and results files. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "dense_fixture.h"
#include "libra/study.h"

/* A dense lb_data of 64 training, 16 validation and 16 test canvases of 32 x 32, stride 8. */
static lb_data *pattern_data(void)
{
    lb_data *d = lb_calloc(1, sizeof *d);
    d->train = d->test = pattern_source();
    d->dense = lb_calloc(1, sizeof *d->dense);
    lb_dense_data *dd = d->dense;
    ck_assert_int_eq(lb_dense_spec_parse(&dd->spec, "dense:x,canvas=32,objects=1-2,scale=1,stride=8"), LB_OK);
    ck_assert_int_eq(lb_dense_make(&dd->spec, d->train, NULL, 0, 64, 11, &dd->train), LB_OK);
    ck_assert_int_eq(lb_dense_make(&dd->spec, d->train, NULL, 0, 16, 12, &dd->val), LB_OK);
    ck_assert_int_eq(lb_dense_make(&dd->spec, d->train, NULL, 0, 16, 13, &dd->test), LB_OK);
    dd->mean[0] = 0.2f, dd->std[0] = 0.3f;
    return d;
}

static void free_data(lb_data *d)
{
    lb_dense_data *dd = d->dense;
    lb_dense_set_free(&dd->train);
    lb_dense_set_free(&dd->val);
    lb_dense_set_free(&dd->test);
    lb_dense_spec_free(&dd->spec);
    lb_free(dd);
    free_pattern_source(d->train);
    lb_free(d);
}

#define TRUNK "conv:8,3;relu;pool:2;conv:8,3;relu;pool:2;conv:8,3;relu;pool:2"

static void small_opts(lb_train_opts *o, const char *loss, long steps)
{
    lb_train_opts_init(o);
    o->arch = TRUNK;
    o->loss = loss;
    o->steps = steps;
    o->batch = 8;
    o->lr = 0.01;
    o->log_every = 1;
    o->eval_every = steps / 2;
    o->seed = 5;
}

START_TEST(test_dense_train_run)
{
    lb_data *d = pattern_data();
    lb_train_opts o;
    small_opts(&o, "sigmoid_focal:gamma=2,alpha=0.25", 40);
    lb_dense_record a, b, c;
    ck_assert_msg(lb_dense_train(&o, d, 0.01, 2, NULL, &a) == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(a.steps, 40);
    ck_assert_int_eq(a.diverged_step, 0);
    ck_assert_int_eq((int)a.loss.n, 40);
    ck_assert_int_eq((int)a.val_map.n, 2);
    ck_assert_int_eq(a.n_classes, 4);
    ck_assert(a.one_vs_all);
    ck_assert_str_eq(a.loss_spec, "sigmoid_focal:gamma=2,alpha=0.25,reduction=mean");
    ck_assert_msg(a.mean_ap > 0 && a.mean_ap <= 1 && a.image_mean_ap > 0 && a.image_mean_ap <= 1, "AP %g, %g", a.mean_ap,
                  a.image_mean_ap);
    ck_assert_int_eq(a.n_maps, 2);
    for (int i = 0; i < 2 * 4 * 16; i++) ck_assert(a.maps[i] >= 0 && a.maps[i] <= 1);
    ck_assert_close(a.foreground_share, (double)d->dense->train.n_foreground / (64 * 16), 1e-12);
    /* the same seed, the same run; another seed, another model */
    ck_assert_int_eq(lb_dense_train(&o, d, 0.01, 2, NULL, &b), LB_OK);
    ck_assert(a.param_hash == b.param_hash && a.mean_ap == b.mean_ap);
    o.seed = 6;
    ck_assert_int_eq(lb_dense_train(&o, d, 0.01, 2, NULL, &c), LB_OK);
    ck_assert(a.param_hash != c.param_hash);
    lb_dense_record_free(&a);
    lb_dense_record_free(&b);
    lb_dense_record_free(&c);
    /* a softmax loss has C + 1 outputs, the background last */
    small_opts(&o, "ce", 4);
    ck_assert_int_eq(lb_dense_train(&o, d, 0.01, 0, NULL, &a), LB_OK);
    ck_assert(!a.one_vs_all && a.maps == NULL);
    lb_dense_record_free(&a);
    free_data(d);
}
END_TEST

/* Lin et al. Sec. 3.3: without the prior every location starts at p = 0.5, so the first loss of
 * bce is about K log 2 per location over the few foreground locations (4 classes x 16 locations x
 * 0.69 / ~1.5 foreground locations per canvas = ~30); with pi = 0.01 a foreground location's
 * positive term is -log(0.01) = 4.6 and each of the ~63 negative terms -log(0.99) = 0.01: ~5. */
START_TEST(test_prior_sets_the_first_loss)
{
    lb_data *d = pattern_data();
    lb_train_opts o;
    small_opts(&o, "bce", 1);
    lb_dense_record with, without;
    ck_assert_int_eq(lb_dense_train(&o, d, 0.01, 0, NULL, &with), LB_OK);
    ck_assert_int_eq(lb_dense_train(&o, d, 0, 0, NULL, &without), LB_OK);
    ck_assert_msg(without.loss.value[0] > 15 && with.loss.value[0] < 6.5 && with.loss.value[0] > 4,
                  "first loss %g with the prior, %g without",
                  with.loss.value[0], without.loss.value[0]);
    lb_dense_record_free(&with);
    lb_dense_record_free(&without);
    free_data(d);
}
END_TEST

START_TEST(test_divergence_is_a_result)
{
    lb_data *d = pattern_data();
    lb_train_opts o;
    small_opts(&o, "bce", 30);
    o.lr = 1e30; /* the first update sends the parameters to ~1e30: the next loss is not finite */
    lb_dense_record r;
    ck_assert_msg(lb_dense_train(&o, d, 0.01, 2, NULL, &r) == LB_OK, "%s", lb_last_error());
    ck_assert_msg(r.diverged_step > 0 && r.diverged_step <= 30, "diverged at %ld", r.diverged_step);
    ck_assert_int_eq(r.steps, r.diverged_step - 1);
    ck_assert(isnan(r.mean_ap) && isnan(r.ap[0]) && r.maps == NULL);
    ck_assert_msg(strstr(r.diverged_reason, "non-finite") != NULL, "reason '%s'", r.diverged_reason);
    lb_dense_record_free(&r);
    free_data(d);
}
END_TEST

START_TEST(test_refusals)
{
    lb_data *d = pattern_data();
    lb_train_opts o;
    lb_dense_record r;
    small_opts(&o, "bce", 5);
    o.sampler = "oversample";
    ck_assert_err(lb_dense_train(&o, d, 0.01, 0, NULL, &r), LB_EINVAL, "samplers");
    small_opts(&o, "bce", 5);
    ck_assert_err(lb_dense_train(&o, d, 1.5, 0, NULL, &r), LB_EINVAL, "prior 1.5");
    o.arch = "conv:8,3;relu;pool:2";
    ck_assert_err(lb_dense_train(&o, d, 0.01, 0, NULL, &r), LB_ESHAPE, "4x4 grid");
    lb_dense_record_free(&r);
    lb_dense_data *dd = d->dense;
    d->dense = NULL;
    small_opts(&o, "bce", 5);
    ck_assert_err(lb_dense_train(&o, d, 0.01, 0, NULL, &r), LB_EINVAL, "not a dense task");
    d->dense = dd;
    free_data(d);
}
END_TEST

static char tmpdir[256];

static void make_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/libra-test-dense-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmp(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Replaces the first `from` in the file by `to`. */
static void edit_file(const char *path, const char *from, const char *to)
{
    char *text = NULL;
    size_t n = 0;
    ck_assert_int_eq(lb_read_file(path, 1 << 24, &text, &n), LB_OK);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "'%s' not in %s", from, path);
    FILE *f = fopen(path, "w");
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    lb_free(text);
}

START_TEST(test_record_round_trip)
{
    make_tmp();
    lb_data *d = pattern_data();
    lb_train_opts o;
    small_opts(&o, "bce:alpha=0.75", 10);
    lb_dense_record r, back;
    ck_assert_int_eq(lb_dense_train(&o, d, 0.01, 2, NULL, &r), LB_OK);
    r.strategy = lb_strdup("bce:alpha=0.75");
    char path[300];
    snprintf(path, sizeof path, "%s/run.json", tmpdir);
    ck_assert_int_eq(lb_dense_record_write_json(&r, path), LB_OK);
    ck_assert_msg(lb_dense_record_read_json(&back, path) == LB_OK, "%s", lb_last_error());
    ck_assert_str_eq(back.strategy, r.strategy);
    ck_assert_str_eq(back.loss_spec, r.loss_spec);
    ck_assert(back.seed == r.seed && back.steps == r.steps && back.param_hash == r.param_hash);
    ck_assert_close(back.mean_ap, r.mean_ap, 1e-8);
    ck_assert_close(back.ap[3], r.ap[3], 1e-8);
    ck_assert_int_eq((int)back.loss.n, (int)r.loss.n);
    ck_assert(back.loss.value[9] == r.loss.value[9] && back.maps[100] == r.maps[100]);
    lb_dense_record_free(&back);
    /* a wrong type and an unknown key are refused, naming the file and the field */
    edit_file(path, "\"steps\": 10", "\"steps\": \"ten\"");
    ck_assert_err(lb_dense_record_read_json(&back, path), LB_EFORMAT, "steps must be an integer");
    ck_assert_msg(strstr(lb_last_error(), path) != NULL, "%s", lb_last_error());
    ck_assert_int_eq(lb_dense_record_write_json(&r, path), LB_OK);
    edit_file(path, "\"prior\"", "\"priors\"");
    ck_assert_err(lb_dense_record_read_json(&back, path), LB_EFORMAT, "unknown key \"priors\"");
    lb_dense_record_free(&r);
    free_data(d);
    remove_tmp();
}
END_TEST

/* Means and 95% t-intervals by hand: two seeds of 0.2 and 0.4 give 0.3 +- t(1) s / sqrt(2) with
 * s = 0.1414, t(1) = 12.706: [-0.9706, 1.5706]; a diverged run is counted, not averaged. */
START_TEST(test_summary_by_hand)
{
    lb_dense_record r[4];
    memset(r, 0, sizeof r);
    const char *names[4] = {"bce", "bce", "ce", "bce"};
    const double map[4] = {0.2, 0.4, 0.5, NAN};
    for (int i = 0; i < 4; i++) {
        r[i].strategy = (char *)names[i];
        r[i].loss_spec = (char *)names[i];
        r[i].mean_ap = map[i];
        r[i].image_mean_ap = map[i] + 0.1;
        r[i].diverged_step = i == 3 ? 7 : 0;
    }
    lb_dense_summary_row rows[4];
    int m = 0;
    ck_assert_int_eq(lb_dense_summarise(r, 4, rows, &m), LB_OK);
    ck_assert_int_eq(m, 2);
    ck_assert_str_eq(rows[0].strategy, "bce");
    ck_assert_int_eq(rows[0].runs, 3);
    ck_assert_int_eq(rows[0].diverged, 1);
    ck_assert_close(rows[0].map, 0.3, 1e-12);
    ck_assert_close(rows[0].map_lo, 0.3 - 12.7062047361747 * 0.1, 1e-6);
    ck_assert_close(rows[0].map_hi, 0.3 + 12.7062047361747 * 0.1, 1e-6);
    ck_assert_close(rows[0].image_map, 0.4, 1e-12);
    ck_assert_close(rows[1].map, 0.5, 1e-12);
    ck_assert(isnan(rows[1].map_lo)); /* one seed: no interval */
}
END_TEST

typedef struct {
    int jobs;
} counter;

static void count_job(void *ctx, const char *name, const lb_dense_record *rec, int done, int total, double s)
{
    (void)name, (void)rec, (void)done, (void)total, (void)s;
    ((counter *)ctx)->jobs++;
}

static int file_lines(const char *path)
{
    char *text = NULL;
    size_t n = 0;
    ck_assert_msg(lb_read_file(path, 1 << 26, &text, &n) == LB_OK, "%s", lb_last_error());
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    lb_free(text);
    return lines;
}

START_TEST(test_dense_study)
{
    make_tmp();
    lb_data *d = pattern_data();
    char out[300], path[400];
    snprintf(out, sizeof out, "%s/study", tmpdir);
    lb_dense_study_config c;
    lb_dense_study_config_init(&c);
    c.strategies = "bce;sigmoid_focal:gamma=1|2+noprior";
    c.seeds = 2;
    c.train.arch = TRUNK;
    c.train.steps = 6;
    c.train.batch = 8;
    c.train.eval_every = 3;
    c.n_maps = 2;
    c.out_dir = out;
    /* a study that stores nothing takes the folders it made away again */
    char deep[340];
    snprintf(deep, sizeof deep, "%s/a/b", tmpdir);
    c.out_dir = deep;
    lb_dense_study *st = lb_dense_study_new(&c, d);
    ck_assert_msg(st != NULL, "%s", lb_last_error());
    lb_dense_study_free(st);
    snprintf(path, sizeof path, "%s/a", tmpdir);
    ck_assert_msg(access(path, F_OK) != 0, "%s is left", path);
    ck_assert_int_eq(access(tmpdir, F_OK), 0);
    c.out_dir = out;
    st = lb_dense_study_new(&c, d);
    ck_assert_msg(st != NULL, "%s", lb_last_error());
    ck_assert_int_eq(lb_dense_study_n_strategies(st), 3);
    ck_assert_int_eq(lb_dense_study_n_jobs(st), 6);
    counter n = {0};
    lb_dense_study_events ev = {&n, count_job};
    ck_assert_int_eq(lb_dense_study_run(st, &ev, NULL), LB_OK);
    ck_assert_int_eq(n.jobs, 6);
    lb_buf sum = {0};
    ck_assert_msg(lb_dense_study_write(st, &sum) == LB_OK, "%s", lb_last_error());
    ck_assert_msg(strstr(sum.p, "sigmoid_focal:gamma=2+noprior") != NULL, "%s", sum.p);
    lb_buf_free(&sum);
    snprintf(path, sizeof path, "%s/results.csv", out);
    ck_assert_int_eq(file_lines(path), 7); /* the header and six runs */
    snprintf(path, sizeof path, "%s/report.html", out);
    ck_assert(file_lines(path) > 10);
    snprintf(path, sizeof path, "%s/runs/sigmoid_focal_gamma_1_noprior-s2.json", out);
    ck_assert_int_eq(access(path, F_OK), 0);
    lb_dense_study_free(st);
    /* the folder holds this study: refused without --resume; with it nothing runs again */
    ck_assert_ptr_null(lb_dense_study_new(&c, d));
    ck_error_mentions("--resume");
    c.resume = 1;
    st = lb_dense_study_new(&c, d);
    ck_assert_ptr_nonnull(st);
    n.jobs = 0;
    ck_assert_int_eq(lb_dense_study_run(st, &ev, NULL), LB_OK);
    ck_assert_int_eq(n.jobs, 0);
    lb_dense_study_free(st);
    /* a value the loss refuses, found before any run (the loss made with the data's classes) */
    c.strategies = "bce;bce:alpha=0.1|2";
    ck_assert_err(lb_dense_study_check_data(&c, d), LB_EINVAL, "alpha");
    ck_assert_ptr_null(lb_dense_study_new(&c, d));
    ck_error_mentions("bce:alpha=2");
    c.strategies = "bce;sigmoid_focal:gamma=1|2+noprior";
    /* other settings are refused unless --force */
    c.resume = 0;
    c.train.steps = 7;
    ck_assert_ptr_null(lb_dense_study_new(&c, d));
    ck_error_mentions("other settings");
    free_data(d);
    remove_tmp();
}
END_TEST

START_TEST(test_strategy_errors)
{
    lb_dense_study_config c;
    lb_dense_study_config_init(&c);
    ck_assert_int_eq(lb_dense_study_check(&c), LB_OK); /* the defaults */
    c.strategies = "bce+posthoc";
    ck_assert_err(lb_dense_study_check(&c), LB_EINVAL, "LOSS or LOSS+noprior");
    c.strategies = "bce;bce:alpha=-1";
    ck_assert_err(lb_dense_study_check(&c), LB_EINVAL, "is 'bce' again");
    c.strategies = "nosuch";
    ck_assert_err(lb_dense_study_check(&c), LB_EINVAL, "nosuch");
    c.strategies = "bce";
    c.prior = 0;
    ck_assert_err(lb_dense_study_check(&c), LB_EINVAL, "prior");
}
END_TEST

static Suite *dense_study_suite(void)
{
    Suite *s = suite_create("dense_study");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_dense_train_run);
    tcase_add_test(tc, test_prior_sets_the_first_loss);
    tcase_add_test(tc, test_divergence_is_a_result);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_record_round_trip);
    tcase_add_test(tc, test_summary_by_hand);
    tcase_add_test(tc, test_dense_study);
    tcase_add_test(tc, test_strategy_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lb_run_suite(dense_study_suite()); }
