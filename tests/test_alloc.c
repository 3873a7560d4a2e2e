/* Allocation failure, in the manner of SQLite's malloc tests: for each operation below, the
 * N-th allocation and every later one fail, for N = 1, 2, ... until the operation completes
 * without reaching N. Every N must end with LB_ENOMEM and a message about memory, give back
 * every allocation it made (lb_alloc_live, so no sanitizer is needed to see a leak), and leave
 * no partial output file. The operations: a short training run (data load, model, arena,
 * optimizer, checkpoint save), loading that checkpoint and building its model, one study
 * (plan, a job and its record, the result files), reading a run record back, the resampled
 * training split of each synthetic sampler (lb_synth_dataset), loading an image folder and
 * loading a CSV-labelled dataset. Each sweep prints how many allocations the operation makes; at the end the
 * number of distinct call sites the injections reached is printed (docs/reliability.md). */
#include "check_util.h"
#include "libra/dist.h"
#include "libra/study.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tp(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/libra-test-alloc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Files whose name holds ".tmp." below dir (an atomic write that did not finish). */
static int temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (strstr(e->d_name, ".tmp.")) n++;
        else if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) n += temp_files(p);
    }
    closedir(d);
    return n;
}

/* n images of 4x4 with a class-dependent pattern, labels i % classes. */
static void write_idx(const char *img, const char *lab, int n, int classes)
{
    uint8_t *px = malloc((size_t)n * 16), *y = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % classes);
        for (int p = 0; p < 16; p++) px[i * 16 + p] = (uint8_t)((y[i] * 60 + p * 9 + i) & 255);
    }
    uint32_t di[3] = {(uint32_t)n, 4, 4}, dl[1] = {(uint32_t)n};
    ck_assert_int_eq(lb_idx_write(img, px, 3, di, 0), LB_OK);
    ck_assert_int_eq(lb_idx_write(lab, y, 1, dl, 0), LB_OK);
    free(px);
    free(y);
}

typedef int (*operation)(void);
typedef void (*after_failure)(void);

static int total_allocations;

/* The sweep of one operation; returns how many allocations a complete run makes. */
static int sweep(const char *name, operation op, after_failure check)
{
    int64_t live0 = lb_alloc_live();
    for (uint64_t n = 1;; n++) {
        lb_clear_error();
        lb_alloc_fail_at(n, 1);
        int rc = op();
        uint64_t attempts = lb_alloc_attempts(), injected = lb_alloc_injected();
        lb_alloc_fail_at(0, 0);
        int64_t live = lb_alloc_live();
        ck_assert_msg(live == live0, "%s, allocation %llu failing: %lld allocations not given back (%s)", name,
                      (unsigned long long)n, (long long)(live - live0), lb_last_error());
        if (injected == 0) {
            ck_assert_msg(rc == LB_OK, "%s: fails with no allocation failing: %s", name, lb_last_error());
            printf("%-28s %5llu allocations, each made to fail in turn\n", name, (unsigned long long)attempts);
            total_allocations += (int)attempts;
            return (int)attempts;
        }
        ck_assert_msg(rc == LB_ENOMEM, "%s, allocation %llu failing: status %d (%s), not LB_ENOMEM", name,
                      (unsigned long long)n, rc, lb_last_error());
        ck_assert_msg(lb_last_status() == LB_ENOMEM, "%s, allocation %llu: the stored status is %d", name,
                      (unsigned long long)n, lb_last_status());
        const char *m = lb_last_error();
        ck_assert_msg(strstr(m, "memory") && strlen(m) > strlen("out of memory") + 2,
                      "%s, allocation %llu: the message does not say what was being allocated: '%s'", name,
                      (unsigned long long)n, m);
        if (check) check();
    }
}

/* ---- the operations ---- */

static lb_data_opts train_data;

static int training_run(void)
{
    unlink(tp("run.ckpt"));
    lb_train_opts o;
    lb_train_opts_init(&o);
    o.arch = "smallcnn:c1=2,c2=2,fc=4";
    o.steps = 3;
    o.batch = 8;
    o.threads = 1;
    o.monitor = LB_MONITOR_VAL;
    o.eval_every = 2;
    o.save = tp("run.ckpt");
    lb_train_result r;
    int rc = lb_train_run(&o, &train_data, NULL, NULL, &r);
    lb_train_result_free(&r);
    return rc;
}

/* A failed run leaves no partial checkpoint: none, or one that loads. */
static void no_partial_checkpoint(void)
{
    ck_assert_int_eq(temp_files(tmpdir), 0);
    if (access(tp("run.ckpt"), F_OK) == 0) {
        lb_alloc_fail_at(0, 0);
        lb_checkpoint c;
        ck_assert_msg(lb_checkpoint_read(&c, tp("run.ckpt")) == LB_OK, "a partial checkpoint: %s", lb_last_error());
        lb_checkpoint_free(&c);
    }
}

static int load_checkpoint(void)
{
    lb_checkpoint c;
    int rc = lb_checkpoint_read(&c, tp("good.ckpt"));
    if (rc != LB_OK) return rc;
    lb_model *m = lb_model_new_checkpoint(&c);
    rc = m ? LB_OK : lb_last_status();
    lb_model_free(m);
    lb_checkpoint_free(&c);
    return rc;
}

static lb_data *study_data;

static int one_study(void)
{
    lb_study_config c;
    lb_study_config_init(&c);
    c.strategies = "ce+posthoc";
    c.seeds = 1;
    c.train.arch = "linear";
    c.train.steps = 2;
    c.train.batch = 8;
    c.data = &train_data;
    c.out_dir = tp("study");
    c.force = 1;
    lb_study *st = lb_study_new(&c, study_data);
    if (!st) return lb_last_status();
    lb_scheduler serial = lb_scheduler_serial();
    int rc = lb_study_execute(st, &serial);
    if (rc == LB_OK) rc = lb_study_write(st);
    lb_study_free(st);
    return rc;
}

/* Each two-stage re-balancing of a small trained-from-init model (the model, its graph and
 * every stage's features, classifier and logits made and freed inside the operation). */
static int stage_runs(void)
{
    static const char *const specs[] = {"crt:steps=2", "lws:steps=2", "taunorm", "fsmote:k=2,steps=2"};
    lb_train_opts o;
    lb_train_opts_init(&o);
    o.batch = 8;
    o.eval_batch = 16;
    lb_model *m = lb_model_new_arch("mlp:hidden=4", 1, 4, 4, study_data->split.n_classes);
    lb_graph *g = m ? lb_graph_new() : NULL;
    int rc = g ? LB_OK : lb_last_status();
    if (rc == LB_OK) {
        lb_rng r;
        lb_rng_seed(&r, 1);
        lb_model_init(m, LB_INIT_DEFAULT, &r);
    }
    for (int i = 0; i < 4 && rc == LB_OK; i++) {
        lb_stage s;
        lb_stage_result res;
        if ((rc = lb_stage_parse(&s, specs[i])) != LB_OK) break;
        rc = lb_stage_run(&s, m, g, study_data, &o, 7, lb_stage_steps(&s, 20), &res);
        lb_stage_result_free(&res);
    }
    lb_graph_free(g);
    lb_model_free(m);
    return rc;
}

/* A failed study leaves no partial file: no temporary file, and results.json whole if there. */
static void no_partial_study(void)
{
    ck_assert_int_eq(temp_files(tmpdir), 0);
    if (access(tp("study/results.json"), F_OK) == 0) {
        lb_alloc_fail_at(0, 0);
        char *text = NULL;
        size_t n = 0;
        ck_assert_int_eq(lb_read_file(tp("study/results.json"), 1 << 24, &text, &n), LB_OK);
        ck_assert_msg(n > 0 && text[n - 2] == '}', "results.json is cut short");
        lb_free(text);
    }
}

static int read_record(void)
{
    lb_run_record r;
    int rc = lb_run_record_read_json(&r, tp("record.json"));
    lb_run_record_free(&r);
    return rc;
}

/* The resampled training split of study_data by each synthetic sampler (its tail class has
 * fewer than k images, so that the warnings are made too). */
static int synth_dataset(void)
{
    static const char *const specs[] = {"smote", "borderline_smote:k=2,m=4", "adasyn:k=3", "ros_noise"};
    const lb_split *sp = &study_data->split;
    int rc = LB_OK;
    for (int i = 0; rc == LB_OK && i < 4; i++) {
        lb_synth_plan plan;
        lb_dataset *ds = lb_synth_dataset(specs[i], study_data->train, sp->train_idx, sp->train_y, sp->n_train,
                                          sp->n_classes, 7, &plan);
        rc = ds ? LB_OK : lb_last_status();
        lb_dataset_free(ds);
        lb_synth_plan_free(&plan);
    }
    return rc;
}

/* The folder (with a file that is not an image and a class of one image, so that the
 * warnings are made too) into a dataset and split. */
static int load_folder(void)
{
    lb_data_opts o;
    lb_data_opts_init(&o);
    char spec[700];
    snprintf(spec, sizeof spec, "folder:%s", tp("folder"));
    int rc = lb_data_opts_set(&o, "data", spec);
    lb_data *d = rc == LB_OK ? lb_data_new(&o) : NULL;
    /* the skipped file, and class d (one image) without test and without validation images */
    if (d) ck_assert_msg(d->n_skipped == 1 && d->warnings.n == 3, "%d skipped, %d warnings", d->n_skipped, d->warnings.n);
    rc = d ? LB_OK : lb_last_status();
    lb_data_free(d);
    lb_data_opts_free(&o);
    return rc;
}

/* The folder's images listed by a CSV (with a header, a split column, a row naming a missing
 * file), into a dataset and split. */
static int load_csv(void)
{
    lb_data_opts o;
    lb_data_opts_init(&o);
    char spec[900];
    snprintf(spec, sizeof spec, "csv:%s,root=%s,split=fold", tp("labels.csv"), tp("folder"));
    int rc = lb_data_opts_set(&o, "data", spec);
    lb_data *d = rc == LB_OK ? lb_data_new(&o) : NULL;
    if (d) ck_assert_msg(d->n_skipped == 1 && d->split.n_val == 3, "%d skipped, %d val", d->n_skipped, d->split.n_val);
    rc = d ? LB_OK : lb_last_status();
    lb_data_free(d);
    lb_data_opts_free(&o);
    return rc;
}

/* A 3x3 gray PGM of one shade. */
static void write_pgm(const char *path, int shade)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "P5\n3 3\n255\n");
    for (int i = 0; i < 9; i++) fputc(shade + i, f);
    fclose(f);
}

START_TEST(test_allocation_failures)
{
    make_tmpdir();
    write_idx(tp("tri"), tp("trl"), 96, 3);
    write_idx(tp("tei"), tp("tel"), 24, 3);
    lb_data_opts_init(&train_data);
    char spec[1200];
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", tp("tri"), tp("trl"), tp("tei"), tp("tel"));
    ck_assert_int_eq(lb_data_opts_set(&train_data, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&train_data, "val", "0.25"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&train_data, "imbalance", "longtail:4"), LB_OK);

    sweep("training run", training_run, no_partial_checkpoint);
    ck_assert_int_eq(training_run(), LB_OK);
    ck_assert_int_eq(rename(tp("run.ckpt"), tp("good.ckpt")), 0);
    sweep("checkpoint load + model", load_checkpoint, NULL);

    study_data = lb_data_new(&train_data);
    ck_assert_ptr_nonnull(study_data);
    sweep("two-stage (4 stages)", stage_runs, NULL);
    sweep("study (plan, job, files)", one_study, no_partial_study);
    ck_assert_int_eq(one_study(), LB_OK);
    char rec[600];
    snprintf(rec, sizeof rec, "cp '%s/study/runs/ce@shuffle-s1.json' '%s'", tmpdir, tp("record.json"));
    ck_assert_int_eq(system(rec), 0);
    sweep("run record read", read_record, NULL);
    sweep("synthetic datasets (4 kinds)", synth_dataset, NULL);
    lb_data_free(study_data);

    mkdir(tp("folder"), 0755);
    const char *classes[4] = {"a", "b", "c", "d"};
    for (int k = 0; k < 4; k++) {
        char dir[600], file[700];
        snprintf(dir, sizeof dir, "%s/folder/%s", tmpdir, classes[k]);
        mkdir(dir, 0755);
        for (int i = 0; i < (k < 3 ? 4 + k : 1); i++) {
            snprintf(file, sizeof file, "%s/img%d.pgm", dir, i);
            write_pgm(file, 40 * k + 10 * i);
        }
    }
    FILE *f = fopen(tp("folder/a/notes.png"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("not an image\n", f);
    fclose(f);
    sweep("image folder + split", load_folder, NULL);
    FILE *csv = fopen(tp("labels.csv"), "w");
    ck_assert_ptr_nonnull(csv);
    fputs("file,label,fold\n", csv);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4 + k; i++)
            fprintf(csv, "\"%s/img%d.pgm\",%s,%s\n", classes[k], i, classes[k], i == 1 ? "val" : i == 2 ? "test" : "train");
    fputs("a/none.pgm,a,train\n", csv);
    fclose(csv);
    sweep("CSV dataset + split", load_csv, NULL);
    printf("%d allocations in all; the injections failed %d distinct call sites\n", total_allocations,
           lb_alloc_sites());
    lb_data_opts_free(&train_data);
    remove_tmpdir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("sweeps");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
