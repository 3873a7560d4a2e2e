/* The training step, the training job, evaluation and checkpoints, on a small synthetic
 * image set written as IDX files (so the whole data path is the real one). */
#include "check_util.h"
#include "libra/losses.h"
#include "libra/train.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------- synthetic data */

/* 4 classes of 10x10 images: class k is a bright 4x4 square in quadrant k on noise, its
 * position jittered by one pixel. Learnable in a few hundred steps, chance is 25%. */
enum { S = 10, NCLS = 4, NTRAIN = 400, NTEST = 200 };
static char tmpdir[256];
static char spec[1400];

static void make_images(lb_rng *r, int n, uint8_t *px, uint8_t *lab)
{
    for (int i = 0; i < n; i++) {
        int k = i % NCLS;
        lab[i] = (uint8_t)k;
        uint8_t *im = px + (size_t)i * S * S;
        for (int j = 0; j < S * S; j++) im[j] = (uint8_t)lb_rng_below(r, 60);
        int y0 = (k / 2) * 5 + (int)lb_rng_below(r, 2), x0 = (k % 2) * 5 + (int)lb_rng_below(r, 2);
        for (int y = y0; y < y0 + 4; y++)
            for (int x = x0; x < x0 + 4; x++) im[y * S + x] = (uint8_t)(180 + lb_rng_below(r, 70));
    }
}

static void setup_data(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/libra_test_train_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    lb_rng r;
    lb_rng_seed(&r, 2024);
    static uint8_t px[NTRAIN * S * S], lab[NTRAIN];
    const char *names[4] = {"tri", "trl", "tei", "tel"};
    char paths[4][300];
    for (int f = 0; f < 4; f++) snprintf(paths[f], sizeof paths[f], "%s/%s.idx", tmpdir, names[f]);
    for (int part = 0; part < 2; part++) {
        int n = part ? NTEST : NTRAIN;
        make_images(&r, n, px, lab);
        uint32_t dims[3] = {(uint32_t)n, S, S};
        ck_assert_int_eq(lb_idx_write(paths[2 * part], px, 3, dims, 1), LB_OK);
        ck_assert_int_eq(lb_idx_write(paths[2 * part + 1], lab, 1, dims, 0), LB_OK);
    }
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", paths[0], paths[1], paths[2], paths[3]);
}

static void teardown_data(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static lb_data *open_data(lb_data_opts *o)
{
    lb_data_opts_init(o);
    ck_assert_int_eq(lb_data_opts_set(o, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(o, "val", "0"), LB_OK); /* every image trains (the default holds out 10%) */
    lb_data *d = NULL;
    ck_assert_msg(NEW_OK(d, lb_data_new(o)) == LB_OK, "%s", lb_last_error());
    return d;
}

static const char *tiny_arch = "smallcnn:c1=4,c2=8,fc=16";

/* ---------------------------------------------------------------- the step */

/* Cross-entropy written out of core ops, so the step is tested without the losses module. */
static lb_node *plain_ce(void *ctx, lb_graph *g, lb_node *logits, const int *y, long step, long total)
{
    (void)ctx, (void)step, (void)total;
    return lb_scale(g, lb_mean(g, lb_pick(g, lb_log_softmax(g, logits), y)), -1.0f);
}

START_TEST(test_step_learns_and_allocates_nothing)
{
    lb_data_opts o;
    lb_data *d = open_data(&o);
    lb_model *m = lb_model_new_arch("smallcnn:bn,dropout=0.2,c1=4,c2=8,fc=16", 1, S, S, NCLS);
    lb_rng r;
    lb_rng_seed(&r, 1);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    oc.lr = 3e-3f;
    oc.clip_norm = 5.0f;
    lb_trainer *t = lb_trainer_new(m, &oc, NULL, plain_ce, NULL, 60);
    ck_assert_ptr_nonnull(t);
    lb_batcher *b = lb_batcher_new(d->train, 32, d->mean, d->std, NULL);
    ck_assert_ptr_nonnull(b);
    double first = 0, last = 0;
    uint64_t count3 = 0;
    for (int s = 0; s < 60; s++) {
        if (s == 3) count3 = lb_alloc_count();
        int at = (s * 32) % (NTRAIN - 32);
        ck_assert_int_eq(lb_batcher_fill(b, d->split.train_idx + at, d->split.train_y + at, 32, NULL), LB_OK);
        ck_assert_msg(lb_trainer_step(t, b->x, b->t, 32) == LB_OK, "%s", lb_last_error());
        if (s < 5) first += t->loss / 5;
        if (s >= 55) last += t->loss / 5;
        if (s == 50) ck_assert_uint_eq(lb_alloc_count(), count3);
    }
    ck_assert_int_eq(t->optim->step, 60);
    ck_assert_msg(last < 0.5 * first, "loss %g -> %g", first, last);

    /* a wrong batch shape is refused with both shapes named */
    ck_assert_int_eq(lb_trainer_step(t, b->x, b->t, 0), LB_ESHAPE);
    lb_batcher_free(b);
    lb_trainer_free(t);
    lb_model_free(m);
    lb_data_free(d);
    lb_data_opts_free(&o);
}
END_TEST

/* ---------------------------------------------------------------- the job */

typedef struct {
    int starts, steps, epochs, checkpoints;
    uint64_t count3;
    long last_step;
    float first_loss;
} counter;

static void on_start(void *ctx, const lb_model *m, const lb_data *d, const lb_train_progress *p)
{
    counter *c = ctx;
    c->starts++;
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(p->step, p->start_step);
}

static int on_step(void *ctx, const lb_train_progress *p)
{
    counter *c = ctx;
    c->steps++;
    ck_assert_int_eq(p->step, c->last_step + 1);
    c->last_step = p->step;
    if (p->step == 1) c->first_loss = p->loss;
    /* steady state: steps 3..50 allocate nothing (they cross two epoch boundaries) */
    if (p->step == 3) c->count3 = lb_alloc_count();
    if (p->step == 50) ck_assert_uint_eq(lb_alloc_count(), c->count3);
    ck_assert(p->lr > 0);
    return 0;
}

static int on_epoch(void *ctx, const lb_train_progress *p)
{
    counter *c = ctx;
    c->epochs++;
    ck_assert_int_eq(p->step % p->steps_per_epoch == 0 || p->step == p->total_steps, 1);
    return 0;
}

START_TEST(test_run_learns)
{
    lb_data_opts dopts;
    lb_data_opts_init(&dopts);
    ck_assert_int_eq(lb_data_opts_set(&dopts, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&dopts, "val", "0"), LB_OK);
    lb_train_opts o;
    lb_train_opts_init(&o);
    o.arch = tiny_arch;
    o.batch = 16;   /* 400 / 16 = 25 steps per epoch */
    o.epochs = 4;
    o.lr = 3e-3;
    o.seed = 11;
    o.log_every = 5;
    counter c = {0};
    lb_train_hooks h = {&c, on_start, on_step, on_epoch, NULL};
    lb_train_result res;
    int rc = lb_train_run(&o, &dopts, NULL, &h, &res);
    ck_assert_msg(rc == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(c.starts, 1);
    ck_assert_int_eq(c.steps, 100);
    ck_assert_int_eq(c.epochs, 4);
    ck_assert_int_eq(res.steps, 100);
    ck_assert_int_eq(res.epochs, 4);
    ck_assert_int_eq(res.loss.n, 20);
    ck_assert_int_eq(res.loss.step[19], 100);
    ck_assert_int_eq(res.monitor_acc.n, 0);
    /* the loss falls and the test accuracy is far above chance (25%) */
    ck_assert_msg(res.loss.value[19] < 0.5f * res.loss.value[0], "loss %g -> %g", res.loss.value[0],
                  res.loss.value[19]);
    ck_assert_msg(res.test.accuracy > 0.9f, "test accuracy %g", res.test.accuracy);
    ck_assert_int_eq(res.n_test, NTEST);
    ck_assert_int_eq(res.test.n, NTEST);
    ck_assert(res.images_per_second > 0 && res.wall_seconds >= res.train_seconds);
    lb_train_result_free(&res);

    /* a step budget that ends mid-epoch, and per-epoch monitoring on the test split */
    o.steps = 30;
    o.monitor = LB_MONITOR_TEST;
    memset(&c, 0, sizeof c);
    h.on_step = NULL;
    ck_assert_int_eq(lb_train_run(&o, &dopts, NULL, &h, &res), LB_OK);
    ck_assert_int_eq(res.steps, 30);
    ck_assert_int_eq(res.epochs, 2);
    ck_assert_int_eq(c.epochs, 2);
    ck_assert_int_eq(res.monitor_acc.n, 2);
    ck_assert(res.monitor_acc.value[1] >= 0.0f && res.monitor_acc.value[1] <= 1.0f);
    lb_train_result_free(&res);

    /* bad options name what is wrong */
    o.optimizer = "rmsprop";
    ck_assert_int_eq(lb_train_run(&o, &dopts, NULL, NULL, &res), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "rmsprop"));
    lb_train_result_free(&res);
    o.optimizer = "adam";
    o.arch = "smallcnn:c9=1";
    ck_assert_int_eq(lb_train_run(&o, &dopts, NULL, NULL, &res), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "c9"));
    lb_train_result_free(&res);
    lb_data_opts_free(&dopts);
}
END_TEST

/* ---------------------------------------------------------------- resume */

static int stop_hook(void *ctx, const lb_train_progress *p) { return p->step >= *(long *)ctx; }

static void run_to(lb_train_opts *o, const lb_data_opts *dopts, long steps, const char *save, const char *resume)
{
    o->steps = steps;
    o->save = save;
    o->resume = resume;
    lb_train_result res;
    int rc = lb_train_run(o, dopts, NULL, NULL, &res);
    ck_assert_msg(rc == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(res.steps, steps);
    lb_train_result_free(&res);
}

START_TEST(test_resume_is_bitwise)
{
    lb_data_opts dopts;
    lb_data_opts_init(&dopts);
    ck_assert_int_eq(lb_data_opts_set(&dopts, "data", spec), LB_OK);
    lb_train_opts o;
    lb_train_opts_init(&o);
    /* everything that draws random numbers: dropout, augmentation, a resampling sampler,
     * batchnorm statistics, Adam's moments, a schedule */
    o.arch = "smallcnn:bn,dropout=0.3,c1=4,c2=8,fc=16";
    o.batch = 16;
    o.sampler = "oversample";
    o.augment.crop_pad = 1;
    o.augment.hflip = 1;
    o.schedule = "cosine,warmup=5";
    o.seed = 5;
    o.log_every = 4;
    char full[300], half[300], resumed[300];
    snprintf(full, sizeof full, "%s/full.ckpt", tmpdir);
    snprintf(half, sizeof half, "%s/half.ckpt", tmpdir);
    snprintf(resumed, sizeof resumed, "%s/resumed.ckpt", tmpdir);

    /* N = 37 steps (mid-epoch 2), then M = 23 more, against 60 in one go. The budget is
     * the same (60) in both, so the cosine schedule is the same. */
    run_to(&o, &dopts, 60, full, NULL);
    /* the first part stops after 37 steps through a hook, with the 60-step budget in force */
    o.steps = 60;
    o.save = half;
    o.resume = NULL;
    long stop_at = 37;
    lb_train_hooks h = {0};
    h.ctx = &stop_at;
    h.on_step = stop_hook;
    lb_train_result res;
    ck_assert_int_eq(lb_train_run(&o, &dopts, NULL, &h, &res), LB_OK);
    ck_assert_int_eq(res.steps, 37);
    ck_assert_int_eq(res.stopped, 1);
    lb_train_result_free(&res);
    run_to(&o, &dopts, 60, resumed, half);

    lb_checkpoint a, b;
    ck_assert_int_eq(lb_checkpoint_read(&a, full), LB_OK);
    ck_assert_int_eq(lb_checkpoint_read(&b, resumed), LB_OK);
    ck_assert_int_eq(a.step, 60);
    ck_assert_int_eq(b.step, 60);
    ck_assert_uint_eq(a.n_params, b.n_params);
    ck_assert(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0);
    ck_assert(memcmp(a.state, b.state, a.n_state * sizeof(float)) == 0);
    ck_assert(memcmp(a.optim_v, b.optim_v, a.n_params * sizeof(float)) == 0);
    ck_assert(memcmp(&a.model_rng, &b.model_rng, sizeof a.model_rng) == 0);
    ck_assert(memcmp(&a.data_rng, &b.data_rng, sizeof a.data_rng) == 0);
    /* the loss curve continues across the resume */
    ck_assert_int_eq(a.loss.n, b.loss.n);
    ck_assert(memcmp(a.loss.value, b.loss.value, a.loss.n * sizeof(float)) == 0);
    lb_checkpoint_free(&a);
    lb_checkpoint_free(&b);

    /* resuming with another setting that defines the run is refused, naming it */
    o.sampler = "shuffle";
    o.steps = 60;
    o.save = NULL;
    o.resume = half;
    ck_assert_int_eq(lb_train_run(&o, &dopts, NULL, NULL, &res), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "sampler 'oversample'"));
    lb_train_result_free(&res);
    lb_data_opts_free(&dopts);
}
END_TEST

/* ---------------------------------------------------------------- keep best, patience */

/* Keep best: the kept parameters are those of the evaluation point with the best validation
 * balanced accuracy (the first of equals), checked independently: a run whose budget ends at
 * that step (constant lr, so the same trajectory) ends with exactly those parameters.
 * Patience stops after that many points without a better one. */
START_TEST(test_keep_best_and_patience)
{
    lb_data_opts dopts;
    lb_data_opts_init(&dopts);
    ck_assert_int_eq(lb_data_opts_set(&dopts, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&dopts, "val", "0.2"), LB_OK);
    lb_train_opts o;
    lb_train_opts_init(&o);
    o.arch = "smallcnn:bn,c1=4,c2=8,fc=16";
    o.batch = 16;
    o.lr = 0.02; /* large enough that validation accuracy moves up and down */
    o.seed = 3;
    o.steps = 160;
    o.eval_every = 10;
    o.monitor = LB_MONITOR_VAL;
    o.keep_best = 1;
    char best[300], upto[300];
    snprintf(best, sizeof best, "%s/best.ckpt", tmpdir);
    snprintf(upto, sizeof upto, "%s/upto.ckpt", tmpdir);
    o.save = best;
    lb_train_result res;
    ck_assert_msg(lb_train_run(&o, &dopts, NULL, NULL, &res) == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(res.monitor_bacc.n, 16);
    size_t arg = 0;
    for (size_t i = 1; i < res.monitor_bacc.n; i++)
        if (res.monitor_bacc.value[i] > res.monitor_bacc.value[arg]) arg = i;
    ck_assert_int_eq(res.best_step, res.monitor_bacc.step[arg]);
    ck_assert(res.best_val_bacc == res.monitor_bacc.value[arg]);
    long best_step = res.best_step;
    ck_assert_int_lt(best_step, 160); /* (seed 3: an earlier point wins, so the check below means something) */
    lb_train_result_free(&res);

    lb_checkpoint ck, ref;
    ck_assert_int_eq(lb_checkpoint_read(&ck, best), LB_OK);
    ck_assert_int_eq(ck.step, 160); /* the last state, to resume from */
    ck_assert_int_eq(ck.best_step, best_step);
    o.keep_best = 0;
    o.steps = best_step;
    o.save = upto;
    ck_assert_msg(lb_train_run(&o, &dopts, NULL, NULL, &res) == LB_OK, "%s", lb_last_error());
    lb_train_result_free(&res);
    ck_assert_int_eq(lb_checkpoint_read(&ref, upto), LB_OK);
    ck_assert(memcmp(ck.best_params, ref.params, ck.n_params * sizeof(float)) == 0);
    ck_assert(memcmp(ck.best_state, ref.state, ck.n_state * sizeof(float)) == 0);
    /* the model a checkpoint gives for use is the kept one; its test score is the run's */
    lb_model *m = lb_model_new_checkpoint(&ck);
    ck_assert_ptr_nonnull(m);
    ck_assert(memcmp(m->params->data, ck.best_params, ck.n_params * sizeof(float)) == 0);
    lb_model_free(m);
    lb_checkpoint_free(&ck);
    lb_checkpoint_free(&ref);

    /* patience 3: stops 3 points after the best one seen by then */
    o.steps = 160;
    o.save = NULL;
    o.patience = 3;
    ck_assert_msg(lb_train_run(&o, &dopts, NULL, NULL, &res) == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(res.stopped_patience, 1);
    ck_assert_int_eq(res.steps, res.best_step + 3 * 10);
    ck_assert_int_lt(res.steps, 160);
    lb_train_result_free(&res);

    /* the test set never chooses */
    o.monitor = LB_MONITOR_TEST;
    ck_assert_err(lb_train_run(&o, &dopts, NULL, NULL, &res), LB_EINVAL, "need monitor = val");
    lb_train_result_free(&res);
    lb_data_opts_free(&dopts);
}
END_TEST

/* ---------------------------------------------------------------- checkpoint files */

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void write_bytes(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    long sz = file_size(path);
    ck_assert_int_gt(sz, 0);
    unsigned char *p = malloc((size_t)sz);
    FILE *f = fopen(path, "rb");
    ck_assert_uint_eq(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Loading `bytes` must fail with LB_EFORMAT and a message containing `what`. */
static void expect_rejected(const char *path, const unsigned char *bytes, size_t n, const char *what)
{
    write_bytes(path, bytes, n);
    lb_checkpoint c;
    ck_assert_int_eq(lb_checkpoint_read(&c, path), LB_EFORMAT);
    ck_assert_msg(strstr(lb_last_error(), what) != NULL, "expected '%s' in: %s", what, lb_last_error());
    ck_assert_ptr_nonnull(strstr(lb_last_error(), path));
}

START_TEST(test_checkpoint_file)
{
    lb_model *m = lb_model_new_arch("smallcnn:bn,c1=4,c2=8,fc=16", 1, S, S, NCLS);
    lb_rng r;
    lb_rng_seed(&r, 9);
    lb_model_init(m, LB_INIT_KAIMING_NORMAL, &r);
    for (size_t i = 0; i < m->state_size; i++) m->state[i] = 0.25f * (float)i;
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAMW);
    lb_optim *o = lb_optim_new(&oc, m->params->size);
    for (size_t i = 0; i < o->n; i++) {
        o->m[i] = (float)i * 1e-3f;
        o->v[i] = (float)i * 1e-6f;
    }
    o->step = 77;
    lb_checkpoint c;
    lb_checkpoint_init(&c);
    ck_assert_int_eq(lb_checkpoint_capture(&c, m, o, 123), LB_OK);
    ck_assert_int_eq(lb_checkpoint_set(&c, "class.0", "T-shirt/top"), LB_OK);
    ck_assert_int_eq(lb_checkpoint_set(&c, "note", "line one\nline two = x"), LB_OK);
    lb_rng_seed(&c.data_rng, 4);
    char path[300];
    snprintf(path, sizeof path, "%s/model.ckpt", tmpdir);
    ck_assert_int_eq(lb_checkpoint_write(&c, path), LB_OK);

    /* round trip */
    lb_checkpoint d;
    ck_assert_msg(lb_checkpoint_read(&d, path) == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(d.step, 123);
    ck_assert_int_eq(d.optim_step, 77);
    ck_assert_int_eq(d.optim_kind, LB_OPTIM_ADAMW);
    ck_assert_int_eq(d.optim_k, 2);
    ck_assert_str_eq(lb_checkpoint_get(&d, "class.0"), "T-shirt/top");
    ck_assert_str_eq(lb_checkpoint_get(&d, "note"), "line one\nline two = x");
    ck_assert_str_eq(lb_checkpoint_get(&d, "arch"), m->arch);
    ck_assert_str_eq(lb_checkpoint_get(&d, "input"), "1x10x10");
    ck_assert(memcmp(d.params, m->params->data, d.n_params * sizeof(float)) == 0);
    ck_assert(memcmp(d.state, m->state, d.n_state * sizeof(float)) == 0);
    ck_assert(memcmp(d.optim_v, o->v, o->n * sizeof(float)) == 0);
    ck_assert(memcmp(&d.data_rng, &c.data_rng, sizeof c.data_rng) == 0);

    /* a model rebuilt from the checkpoint alone has the same parameters */
    lb_model *m2 = lb_model_new_checkpoint(&d);
    ck_assert_ptr_nonnull(m2);
    ck_assert(memcmp(m2->params->data, m->params->data, d.n_params * sizeof(float)) == 0);
    lb_model_free(m2);

    /* restoring into another architecture or optimizer is refused, naming both */
    lb_model *other = lb_model_new_arch("smallcnn:c1=4,c2=8,fc=16", 1, S, S, NCLS);
    ck_assert_int_eq(lb_checkpoint_restore(&d, other, NULL), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "different architecture"));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "bn=1"));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "bn=0"));
    lb_model_free(other);
    other = lb_model_new_arch("smallcnn:bn,c1=4,c2=8,fc=16", 1, S, S, NCLS + 1);
    ck_assert_int_eq(lb_checkpoint_restore(&d, other, NULL), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "n_outputs '4'"));
    lb_model_free(other);
    lb_optim_config sgd = lb_optim_defaults(LB_OPTIM_SGD);
    lb_optim *o2 = lb_optim_new(&sgd, m->params->size);
    ck_assert_int_eq(lb_checkpoint_restore(&d, m, o2), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "adamw"));
    lb_optim_free(o2);
    lb_checkpoint_free(&d);

    /* damaged files: each rejected with the reason */
    size_t n;
    unsigned char *good = read_bytes(path, &n);
    unsigned char *bad = malloc(n + 8);
    char bpath[300];
    snprintf(bpath, sizeof bpath, "%s/bad.ckpt", tmpdir);
    memcpy(bad, good, n);
    bad[0] = 'X';
    expect_rejected(bpath, bad, n, "wrong magic");
    memcpy(bad, good, n);
    bad[8] = 9; /* version 9 */
    expect_rejected(bpath, bad, n, "version 9 is not supported");
    memcpy(bad, good, n);
    bad[n / 2] ^= 0x01; /* one bit in the payload */
    expect_rejected(bpath, bad, n, "CRC mismatch");
    expect_rejected(bpath, good, n - 100, "truncated");
    expect_rejected(bpath, good, 20, "truncated");
    memcpy(bad, good, n);
    memset(bad + n, 0, 8);
    expect_rejected(bpath, bad, n + 8, "unexpected bytes");
    /* a consistent CRC over a section that lies about its content */
    memcpy(bad, good, n);
    ck_assert(memcmp(bad + 32, "META", 4) == 0);
    memset(bad + 48, 0xff, 4); /* META's entry count */
    uLong crc = crc32(crc32(0L, Z_NULL, 0), bad + 32, (uInt)(n - 32));
    for (int i = 0; i < 4; i++) bad[24 + i] = (unsigned char)(crc >> (8 * i));
    expect_rejected(bpath, bad, n, "section META is malformed");
    lb_checkpoint e;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.ckpt", tmpdir);
    ck_assert_int_eq(lb_checkpoint_read(&e, missing), LB_EIO);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "none.ckpt"));
    free(good);
    free(bad);

    /* saving over an existing file replaces it whole and leaves no temporary behind;
     * a directory that does not exist fails without touching anything */
    ck_assert_int_eq(lb_checkpoint_write(&c, path), LB_OK);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | grep -c tmp) -eq 0", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.ckpt", tmpdir);
    ck_assert_int_eq(lb_checkpoint_write(&c, missing), LB_EIO);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "x.ckpt"));

    lb_checkpoint_free(&c);
    lb_optim_free(o);
    lb_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- prediction */

START_TEST(test_predict_matches_forward)
{
    lb_data_opts o;
    lb_data *d = open_data(&o);
    lb_model *m = lb_model_new_arch("smallcnn:bn,dropout=0.5,c1=4,c2=8,fc=16", 1, S, S, NCLS);
    lb_rng r;
    lb_rng_seed(&r, 3);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    lb_graph *g = lb_graph_new();
    /* batches of 7 (with a last partial one) give the same logits as one batch of 50 */
    lb_batcher *b7 = lb_batcher_new(d->test, 7, d->mean, d->std, NULL);
    lb_batcher *b50 = lb_batcher_new(d->test, 50, d->mean, d->std, NULL);
    static float l7[50 * NCLS], l50[50 * NCLS];
    ck_assert_int_eq(lb_predict(m, g, b7, d->split.test_idx, 50, l7), LB_OK);
    ck_assert_int_eq(lb_predict(m, g, b50, d->split.test_idx, 50, l50), LB_OK);
    for (int i = 0; i < 50 * NCLS; i++) ck_assert_close(l7[i], l50[i], 1e-5);
    ck_assert_int_eq(lb_graph_training(g), 1); /* mode restored */
    lb_batcher_free(b7);
    lb_batcher_free(b50);
    lb_graph_free(g);
    lb_model_free(m);
    lb_data_free(d);
    lb_data_opts_free(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, setup_data, teardown_data);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_step_learns_and_allocates_nothing);
    tcase_add_test(tc, test_run_learns);
    tcase_add_test(tc, test_resume_is_bitwise);
    tcase_add_test(tc, test_keep_best_and_patience);
    tcase_add_test(tc, test_checkpoint_file);
    tcase_add_test(tc, test_predict_matches_forward);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
