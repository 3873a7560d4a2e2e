/* Two-stage re-balancing of the classifier (train.h "two-stage", layers.h lb_model_classifier
 * and lb_model_features): specs, the features, each stage's arithmetic, what it leaves alone,
 * determinism, and the claim itself: on a long-tailed toy problem, a classifier re-trained on
 * class-balanced batches of the frozen features has a better balanced accuracy and minority
 * recall than the one trained with the features. The data is a small image set written as IDX
 * files, so the data path is the real one. */
#include "check_util.h"
#include "libra/losses.h"
#include "libra/train.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The LWS loss of one batch, as src/train/stage.c records it (private: lb__). */
#include "train/internal.h"

/* ---------------------------------------------------------------- data */

/* 3 classes of 4x4 images: class k is row k brighter by DELTA on uniform noise of +-NOISE
 * around 128, so the classes overlap (a linear classifier's boundary depends on the priors).
 * The training file has TRAIN_EACH of each class, the profile keeps 600, 60 and 12 of them
 * (a fifth of each to validation); the test file is balanced. */
enum { S = 4, NC = 3, TRAIN_EACH = 620, TEST_EACH = 200, DELTA = 40, NOISE = 90 };
static char tmpdir[256], spec[1400];

static void write_set(const char *img, const char *lab, int each, lb_rng *r)
{
    int n = each * NC;
    uint8_t *px = malloc((size_t)n * S * S), *y = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        int k = i % NC;
        y[i] = (uint8_t)k;
        for (int p = 0; p < S * S; p++) {
            int v = 128 + (p / S == k ? DELTA : 0) + (int)lb_rng_below(r, 2 * NOISE + 1) - NOISE;
            px[(size_t)i * S * S + p] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    uint32_t di[3] = {(uint32_t)n, S, S}, dl[1] = {(uint32_t)n};
    ck_assert_int_eq(lb_idx_write(img, px, 3, di, 0), LB_OK);
    ck_assert_int_eq(lb_idx_write(lab, y, 1, dl, 0), LB_OK);
    free(px);
    free(y);
}

static void setup_data(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/libra_test_stage_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char p[4][300];
    const char *names[4] = {"tri", "trl", "tei", "tel"};
    for (int f = 0; f < 4; f++) snprintf(p[f], sizeof p[f], "%s/%s", tmpdir, names[f]);
    lb_rng r;
    lb_rng_seed(&r, 77);
    write_set(p[0], p[1], TRAIN_EACH, &r);
    write_set(p[2], p[3], TEST_EACH, &r);
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", p[0], p[1], p[2], p[3]);
}

static void teardown_data(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static lb_data *open_data(const char *val)
{
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_int_eq(lb_data_opts_set(&o, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "imbalance", "counts:600,60,12"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "val", val), LB_OK);
    lb_data *d = NULL;
    ck_assert_msg(NEW_OK(d, lb_data_new(&o)) == LB_OK, "%s", lb_last_error());
    lb_data_opts_free(&o);
    return d;
}

/* The options a stage reads: Adam at lr, batches of `batch`. */
static void stage_opts(lb_train_opts *o, double lr, int batch)
{
    lb_train_opts_init(o);
    o->lr = lr;
    o->batch = batch;
    o->eval_batch = 100;
}

static lb_node *plain_ce(void *ctx, lb_graph *g, lb_node *logits, const int *y, long step, long total)
{
    (void)ctx, (void)step, (void)total;
    return lb_scale(g, lb_mean(g, lb_pick(g, lb_log_softmax(g, logits), y)), -1.0f);
}

/* A model of `arch` trained `steps` steps on the imbalanced training split as it is
 * (shuffled, plain cross-entropy): the first stage. */
static lb_model *trained_model(const lb_data *d, const char *arch, int steps, uint64_t seed)
{
    lb_model *m = lb_model_new_arch(arch, 1, S, S, NC);
    ck_assert_msg(m != NULL, "%s", lb_last_error());
    lb_rng r;
    lb_rng_seed(&r, seed);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    lb_rng_derive(&m->rng, seed, LB_STREAM_DROPOUT);
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    oc.lr = 1e-2f;
    lb_trainer *t = lb_trainer_new(m, &oc, NULL, plain_ce, NULL, steps);
    lb_sampler *smp = lb_sampler_new("shuffle", d->split.train_idx, d->split.train_y, d->split.n_train, NC, seed);
    lb_batcher *b = lb_batcher_new(d->train, 32, d->mean, d->std, NULL);
    ck_assert(t && smp && b);
    for (int s = 0; s < steps; s++) {
        const int *idx, *y;
        int k = lb_sampler_next(smp, 32, 1, &idx, &y);
        ck_assert_int_gt(k, 0);
        ck_assert_int_eq(lb_batcher_fill(b, idx, y, k, NULL), LB_OK);
        ck_assert_msg(lb_trainer_step(t, b->x, b->t, k) == LB_OK, "%s", lb_last_error());
    }
    lb_batcher_free(b);
    lb_sampler_free(smp);
    lb_trainer_free(t);
    return m;
}

/* Balanced accuracy and the recall of class NC - 1 (the fewest training images). */
static void scores(const float *logits, const int *y, int n, double *bacc, double *minority)
{
    int64_t conf[NC * NC] = {0};
    int *pred = malloc((size_t)n * sizeof(int));
    lb_argmax_rows(logits, (size_t)n, NC, pred);
    ck_assert_int_eq(lb_confusion_add(conf, NC, y, pred, (size_t)n), LB_OK);
    lb_metrics mt;
    ck_assert_int_eq(lb_metrics_from_confusion(&mt, conf, NC, NULL, NULL), LB_OK);
    *bacc = mt.balanced_accuracy;
    *minority = mt.recall[NC - 1];
    lb_metrics_free(&mt);
    free(pred);
}

/* The model's test logits through the whole network. */
static float *test_logits(lb_model *m, const lb_data *d)
{
    lb_graph *g = lb_graph_new();
    lb_batcher *b = lb_batcher_new(d->test, 100, d->mean, d->std, NULL);
    float *z = malloc((size_t)d->split.n_test * NC * sizeof(float));
    ck_assert_int_eq(lb_predict(m, g, b, d->split.test_idx, d->split.n_test, z), LB_OK);
    lb_batcher_free(b);
    lb_graph_free(g);
    return z;
}

static int run_stage(const char *text, lb_model *m, const lb_data *d, const lb_train_opts *o, uint64_t seed,
                     long budget, lb_stage_result *out)
{
    lb_stage s;
    ck_assert_msg(lb_stage_parse(&s, text) == LB_OK, "%s: %s", text, lb_last_error());
    lb_graph *g = lb_graph_new();
    int rc = lb_stage_run(&s, m, g, d, o, seed, lb_stage_steps(&s, budget), out);
    lb_graph_free(g);
    return rc;
}

/* The classifier's weight and bias. */
static float *cls_w(lb_model *m)
{
    int l;
    ck_assert_int_eq(lb_model_classifier(m, &l), LB_OK);
    return lb_params_value(m->params, m->layers[l].w);
}

static float *cls_b(lb_model *m)
{
    int l;
    ck_assert_int_eq(lb_model_classifier(m, &l), LB_OK);
    return lb_params_value(m->params, m->layers[l].b);
}

/* ---------------------------------------------------------------- specs */

START_TEST(test_parse)
{
    static const char *const good[][2] = {
        {"crt", "crt"},           {"crt:steps=0", "crt"},           {"crt:steps=200", "crt:steps=200"},
        {"lws", "lws"},           {"lws:steps=7", "lws:steps=7"},   {"taunorm", "taunorm"},
        {"fsmote", "fsmote"},     {"fsmote:k=5", "fsmote"},         {"fsmote:steps=10,k=3", "fsmote:k=3,steps=10"},
        {"fsmote:k=1", "fsmote:k=1"}, {" crt : steps=3 ", "crt:steps=3"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        lb_stage s;
        ck_assert_msg(lb_stage_parse(&s, good[i][0]) == LB_OK, "%s: %s", good[i][0], lb_last_error());
        ck_assert_str_eq(s.name, good[i][1]);
        lb_stage again;
        ck_assert_int_eq(lb_stage_parse(&again, s.name), LB_OK); /* the canonical name reads back the same */
        ck_assert_str_eq(again.name, s.name);
        ck_assert_int_eq(again.kind, s.kind);
    }
    lb_stage s;
    ck_assert_int_eq(lb_stage_parse(&s, "fsmote:k=3,steps=10"), LB_OK);
    ck_assert_int_eq(s.kind, LB_STAGE_FSMOTE);
    ck_assert_int_eq(s.k, 3);
    ck_assert_int_eq(s.steps, 10);

    static const char *const bad[][2] = {
        {"crt:steps=1.5", "1.5"}, {"crt:steps=-1", "-1"},   {"lws:steps=abc", "abc"},   {"taunorm:steps=3", "steps"},
        {"bogus", "bogus"},       {"crt:k=3", "'k'"},       {"fsmote:k=0", "k=0"},      {"crt:5", "'5'"},
        {"", "empty"},            {"crt:steps=1e13", "1e13"}, {"fsmote:k=2.5", "2.5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(lb_stage_parse(&s, bad[i][0]) == LB_EINVAL, "%s accepted", bad[i][0]);
        ck_assert_msg(strstr(lb_last_error(), bad[i][1]), "%s: '%s' lacks '%s'", bad[i][0], lb_last_error(), bad[i][1]);
    }
}
END_TEST

START_TEST(test_parse_list_and_steps)
{
    lb_stage st[LB_MAX_STAGES];
    int n = -1;
    ck_assert_int_eq(lb_stage_parse_list("crt+taunorm", st, LB_MAX_STAGES, &n), LB_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(st[0].name, "crt");
    ck_assert_str_eq(st[1].name, "taunorm");
    ck_assert_int_eq(lb_stage_parse_list("crt:steps=5+crt+lws", st, LB_MAX_STAGES, &n), LB_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(lb_stage_parse_list(NULL, st, LB_MAX_STAGES, &n), LB_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(lb_stage_parse_list("none", st, LB_MAX_STAGES, &n), LB_OK);
    ck_assert_int_eq(n, 0);
    /* the same stage twice, by canonical name */
    ck_assert_err(lb_stage_parse_list("crt+taunorm+crt:steps=0", st, LB_MAX_STAGES, &n), LB_EINVAL, "crt is given twice");
    ck_assert_int_eq(n, 0);
    ck_assert_err(lb_stage_parse_list("crt++lws", st, LB_MAX_STAGES, &n), LB_EINVAL, "empty");
    ck_assert_err(lb_stage_parse_list("crt+lws+", st, LB_MAX_STAGES, &n), LB_EINVAL, "empty");
    ck_assert_err(lb_stage_parse_list("crt+lws:steps=x", st, LB_MAX_STAGES, &n), LB_EINVAL, "steps=x");
    ck_assert_err(lb_stage_parse_list("crt+lws+taunorm", st, 2, &n), LB_EINVAL, "more than 2");

    lb_stage s;
    ck_assert_int_eq(lb_stage_parse(&s, "crt"), LB_OK);
    ck_assert_int_eq(lb_stage_steps(&s, 1000), 100);
    ck_assert_int_eq(lb_stage_steps(&s, 1005), 100);
    ck_assert_int_eq(lb_stage_steps(&s, 5), 1);
    ck_assert_int_eq(lb_stage_parse(&s, "lws:steps=7"), LB_OK);
    ck_assert_int_eq(lb_stage_steps(&s, 1000), 7);
    ck_assert_int_eq(lb_stage_parse(&s, "taunorm"), LB_OK);
    ck_assert_int_eq(lb_stage_steps(&s, 1000), 0);
}
END_TEST

/* ---------------------------------------------------------------- classifier and features */

START_TEST(test_classifier)
{
    lb_model *m = lb_model_new_arch("smallcnn:c1=4,c2=8,fc=16", 1, 8, 8, 5);
    ck_assert_ptr_nonnull(m);
    int l = -1;
    ck_assert_int_eq(lb_model_classifier(m, &l), LB_OK);
    ck_assert_int_eq(l, m->n_layers - 1);
    ck_assert_int_eq(m->layers[l].kind, LB_LAYER_DENSE);
    lb_model_free(m);

    /* a last layer that is not dense, and a dense one without a bias */
    m = lb_model_new(1, 4, 4);
    ck_assert_int_eq(lb_model_add_flatten(m), LB_OK);
    ck_assert_int_eq(lb_model_add_dense(m, 3, 1), LB_OK);
    ck_assert_int_eq(lb_model_add_relu(m), LB_OK);
    ck_assert_err(lb_model_classifier(m, &l), LB_EINVAL, "relu_1");
    lb_model_free(m);
    m = lb_model_new(1, 4, 4);
    ck_assert_int_eq(lb_model_add_flatten(m), LB_OK);
    ck_assert_int_eq(lb_model_add_dense(m, 3, 0), LB_OK);
    ck_assert_err(lb_model_classifier(m, &l), LB_EINVAL, "dense_1");
    lb_model_free(m);
    m = lb_model_new(1, 4, 4);
    ck_assert_err(lb_model_classifier(m, &l), LB_EINVAL, "no layers");
    lb_model_free(m);
}
END_TEST

/* features W^T + b equals the whole forward pass, for a model of `arch` (or m if given). */
static void check_features(lb_model *m, int c, int h, int w, int classes, int training)
{
    lb_rng r;
    lb_rng_seed(&r, 5);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    int n = 7, shape[4] = {n, c, h, w};
    size_t size = (size_t)n * c * h * w;
    float *x = malloc(size * sizeof(float));
    for (size_t i = 0; i < size; i++) x[i] = (float)lb_rng_normal(&r);
    lb_graph *g = lb_graph_new();
    lb_graph_set_training(g, training); /* (no dropout here: both passes see the same network) */
    lb_node *z = lb_model_forward(m, g, lb_input(g, 4, shape, x));
    ck_assert_msg(z != NULL, "%s", lb_last_error());
    float *zc = malloc(z->size * sizeof(float));
    memcpy(zc, z->val, z->size * sizeof(float));
    lb_graph_reset(g);
    lb_node *f = lb_model_features(m, g, lb_input(g, 4, shape, x));
    ck_assert_msg(f != NULL, "%s", lb_last_error());
    int F = m->layers[m->n_layers - 1].in_shape[0];
    ck_assert_int_eq(f->ndim, 2);
    ck_assert_int_eq(f->shape[0], n);
    ck_assert_int_eq(f->shape[1], F);
    const float *W = cls_w(m), *b = cls_b(m);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < classes; k++) {
            double acc = b[k];
            for (int j = 0; j < F; j++) acc += (double)f->val[i * F + j] * W[k * F + j];
            ck_assert_close(acc, zc[i * classes + k], 1e-5 * fmax(1.0, fabs(acc)));
        }
    /* a wrong input shape is refused with both shapes */
    int bad[4] = {n, c, h + 1, w};
    ck_assert_ptr_null(lb_model_features(m, g, lb_input(g, 4, bad, x)));
    ck_assert_int_eq(lb_last_status(), LB_ESHAPE);
    lb_graph_free(g);
    free(zc);
    free(x);
}

START_TEST(test_features_are_the_classifier_input)
{
    lb_model *m = lb_model_new_arch("smallcnn:bn,c1=4,c2=8,fc=16", 2, 8, 8, 5);
    check_features(m, 2, 8, 8, 5, 0);
    check_features(m, 2, 8, 8, 5, 1);
    lb_model_free(m);
    m = lb_model_new_arch("resnet:depth=8,width=4", 1, 8, 8, 3);
    ck_assert_ptr_nonnull(m);
    check_features(m, 1, 8, 8, 3, 0);
    lb_model_free(m);
    /* a DAG whose classifier reads an output other than the layer before it */
    m = lb_model_new(1, 3, 3);
    ck_assert_int_eq(lb_model_add_flatten(m), LB_OK);
    ck_assert_int_eq(lb_model_add_dense(m, 6, 1), LB_OK);
    ck_assert_int_eq(lb_model_add_relu(m), LB_OK);
    ck_assert_int_eq(lb_model_from(m, 0), LB_OK);
    ck_assert_int_eq(lb_model_add_dense(m, 4, 1), LB_OK);
    check_features(m, 1, 3, 3, 4, 0);
    lb_model_free(m);

    /* no classifier: no features */
    m = lb_model_new(1, 4, 4);
    ck_assert_int_eq(lb_model_add_flatten(m), LB_OK);
    ck_assert_int_eq(lb_model_add_relu(m), LB_OK);
    lb_graph *g = lb_graph_new();
    float x[16] = {0};
    int shape[4] = {1, 1, 4, 4};
    ck_assert_ptr_null(lb_model_features(m, g, lb_input(g, 4, shape, x)));
    ck_assert_int_eq(lb_last_status(), LB_EINVAL);
    lb_graph_free(g);
    lb_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- crt: the claim */

START_TEST(test_crt_and_fsmote_rebalance)
{
    lb_data *d = open_data("0.2");
    ck_assert_int_eq(d->split.train_counts[NC - 1], 10);
    lb_model *m = trained_model(d, "linear", 400, 3);
    float *base = test_logits(m, d), W0[NC * S * S], b0[NC];
    memcpy(W0, cls_w(m), sizeof W0);
    memcpy(b0, cls_b(m), sizeof b0);
    double bacc0, min0;
    scores(base, d->split.test_y, d->split.n_test, &bacc0, &min0);

    lb_train_opts o;
    stage_opts(&o, 1e-2, 32);
    static const char *const kinds[] = {"crt:steps=300", "fsmote:steps=300"};
    for (int k = 0; k < 2; k++) {
        memcpy(cls_w(m), W0, sizeof W0);
        memcpy(cls_b(m), b0, sizeof b0);
        lb_stage_result res;
        ck_assert_msg(run_stage(kinds[k], m, d, &o, 11, 0, &res) == LB_OK, "%s: %s", kinds[k], lb_last_error());
        ck_assert_str_eq(res.name, kinds[k]);
        ck_assert_int_eq(res.steps, 300);
        ck_assert_int_eq(res.start_step, 0);
        ck_assert(isnan(res.tau));
        ck_assert_int_eq(res.n_test, d->split.n_test);
        ck_assert_int_eq(res.n_val, d->split.n_val);
        double bacc1, min1;
        scores(res.test_logits, d->split.test_y, d->split.n_test, &bacc1, &min1);
        if (getenv("LIBRA_STAGE_VERBOSE"))
            fprintf(stderr, "%s: balanced accuracy %.3f -> %.3f, minority recall %.3f -> %.3f\n", kinds[k], bacc0, bacc1,
                    min0, min1);
        ck_assert_msg(bacc1 > bacc0 + 0.05 && min1 > min0 + 0.2,
                      "%s: balanced accuracy %.3f -> %.3f, minority recall %.3f -> %.3f", kinds[k], bacc0, bacc1, min0,
                      min1);
        /* the stage's logits are the re-balanced model's own */
        float *after = test_logits(m, d);
        for (int i = 0; i < d->split.n_test * NC; i++)
            ck_assert_close(after[i], res.test_logits[i], 1e-4 * fmax(1.0, fabs(after[i])));
        free(after);
        lb_stage_result_free(&res);
    }
    free(base);
    lb_model_free(m);
    lb_data_free(d);
}
END_TEST

/* ---------------------------------------------------------------- what a stage leaves alone */

typedef struct snapshot {
    float *params, *state;
    lb_rng rng;
} snapshot;

static snapshot take(const lb_model *m)
{
    snapshot s;
    s.params = malloc(m->params->size * sizeof(float));
    s.state = malloc(m->state_size * sizeof(float) + 1);
    memcpy(s.params, m->params->data, m->params->size * sizeof(float));
    if (m->state_size) memcpy(s.state, m->state, m->state_size * sizeof(float));
    s.rng = m->rng;
    return s;
}

static void put_back(lb_model *m, const snapshot *s)
{
    memcpy(m->params->data, s->params, m->params->size * sizeof(float));
    if (m->state_size) memcpy(m->state, s->state, m->state_size * sizeof(float));
    m->rng = s->rng;
}

/* Every parameter tensor but the classifier's weight and bias, every buffer and the dropout
 * RNG are bitwise as in s; *changed gets whether the classifier changed. */
static void check_only_classifier(const lb_model *m, const snapshot *s, const char *what, int *changed)
{
    int cls = m->n_layers - 1;
    *changed = 0;
    for (int i = 0; i < m->params->count; i++) {
        const lb_param_info *in = &m->params->info[i];
        int same = !memcmp(m->params->data + in->offset, s->params + in->offset, in->size * sizeof(float));
        if (i == m->layers[cls].w || i == m->layers[cls].b) *changed |= !same;
        else ck_assert_msg(same, "%s changed %s", what, in->name);
    }
    ck_assert_msg(m->state_size && !memcmp(m->state, s->state, m->state_size * sizeof(float)),
                  "%s changed the running statistics", what);
    ck_assert_msg(!memcmp(&m->rng, &s->rng, sizeof m->rng), "%s drew from the dropout RNG", what);
}

START_TEST(test_only_the_classifier_changes)
{
    lb_data *d = open_data("0.2");
    lb_model *m = trained_model(d, "smallcnn:bn,dropout=0.3,c1=4,c2=8,fc=16", 30, 4);
    ck_assert_uint_gt(m->state_size, 0);
    snapshot s = take(m);
    lb_train_opts o;
    stage_opts(&o, 1e-2, 16);
    static const char *const kinds[] = {"crt:steps=20", "lws:steps=20", "taunorm", "fsmote:steps=20"};
    for (int k = 0; k < 4; k++) {
        lb_graph *g = lb_graph_new();
        lb_stage st;
        ck_assert_int_eq(lb_stage_parse(&st, kinds[k]), LB_OK);
        for (int mode = 0; mode < 2; mode++) {
            put_back(m, &s);
            lb_graph_set_training(g, mode);
            lb_stage_result res;
            ck_assert_msg(lb_stage_run(&st, m, g, d, &o, 9, lb_stage_steps(&st, 100), &res) == LB_OK, "%s: %s", kinds[k],
                          lb_last_error());
            ck_assert_int_eq(lb_graph_training(g), mode); /* the graph's mode is given back */
            int changed;
            check_only_classifier(m, &s, kinds[k], &changed);
            ck_assert_msg(changed, "%s left the classifier as it was", kinds[k]);
            lb_stage_result_free(&res);
        }
        lb_graph_free(g);
    }
    free(s.params);
    free(s.state);
    lb_model_free(m);
    lb_data_free(d);
}
END_TEST

/* ---------------------------------------------------------------- lws */

/* The LWS loss in double: mean_i logsumexp_c(s_c u_ic) - s_{y_i} u_{i y_i}. */
static double lws_ref(const double *s, const float *u, const int *y, int n, int C)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY, sum = 0.0;
        for (int c = 0; c < C; c++) mx = fmax(mx, s[c] * u[i * C + c]);
        for (int c = 0; c < C; c++) sum += exp(s[c] * u[i * C + c] - mx);
        total += mx + log(sum) - s[y[i]] * u[i * C + y[i]];
    }
    return total / n;
}

START_TEST(test_lws_gradient)
{
    enum { N = 9, C = 4 };
    lb_rng r;
    lb_rng_seed(&r, 31);
    float u[N * C];
    int y[N];
    for (int i = 0; i < N * C; i++) u[i] = (float)(2.0 * lb_rng_normal(&r));
    for (int i = 0; i < N; i++) y[i] = (int)lb_rng_below(&r, C);
    int c4 = C;
    lb_params *p = lb_params_new();
    ck_assert_int_eq(lb_params_add(p, "s", 1, &c4), 0);
    double s[C];
    for (int c = 0; c < C; c++) p->data[c] = (float)(s[c] = 0.5 + lb_rng_uniform(&r));
    for (int c = 0; c < C; c++) s[c] = p->data[c];
    lb_loss *ce = lb_loss_new("ce", C, NULL);
    lb_graph *g = lb_graph_new();
    lb_node *L = lb__stage_lws_loss(g, p, ce, u, y, N, C);
    ck_assert_msg(L != NULL, "%s", lb_last_error());
    ck_assert_close(L->val[0], lws_ref(s, u, y, N, C), 1e-5);
    lb_params_zero_grad(p);
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    /* central differences in double, step 1e-6, of the double loss; per element
     * |analytic - numeric| <= 1e-5 + 1e-4 |numeric| (the analytic one is float) */
    double gmax = 0.0;
    for (int c = 0; c < C; c++) {
        double h = 1e-6, keep = s[c];
        s[c] = keep + h;
        double lp = lws_ref(s, u, y, N, C);
        s[c] = keep - h;
        double lm = lws_ref(s, u, y, N, C);
        s[c] = keep;
        double num = (lp - lm) / (2 * h), a = p->grad[c];
        ck_assert_msg(fabs(a - num) <= 1e-5 + 1e-4 * fabs(num), "d loss / d s_%d: analytic %.9g, numeric %.9g", c, a, num);
        gmax = fmax(gmax, fabs(a));
    }
    ck_assert_msg(gmax > 1e-3, "the gradient is ~0 everywhere");
    lb_graph_free(g);
    lb_loss_free(ce);
    lb_params_free(p);
}
END_TEST

/* LWS keeps the classifier's direction: each row and its bias are scaled by one s_c. */
START_TEST(test_lws_folds_the_scales)
{
    lb_data *d = open_data("0.2");
    lb_model *m = trained_model(d, "linear", 200, 6);
    float *base = test_logits(m, d);
    double bacc0, min0;
    scores(base, d->split.test_y, d->split.n_test, &bacc0, &min0);
    free(base);
    int F = S * S;
    float W0[NC * S * S], b0[NC];
    memcpy(W0, cls_w(m), sizeof W0);
    memcpy(b0, cls_b(m), sizeof b0);
    lb_train_opts o;
    stage_opts(&o, 1e-2, 32);
    lb_stage_result res;
    ck_assert_msg(run_stage("lws:steps=150", m, d, &o, 2, 0, &res) == LB_OK, "%s", lb_last_error());
    const float *W = cls_w(m), *b = cls_b(m);
    int moved = 0;
    for (int c = 0; c < NC; c++) {
        double sc = (double)b[c] / b0[c];
        ck_assert(isfinite(sc) && sc > 0);
        moved |= fabs(sc - 1.0) > 1e-3;
        for (int j = 0; j < F; j++) ck_assert_close(W[c * F + j], sc * W0[c * F + j], 1e-5 * fabs(W0[c * F + j]) + 1e-7);
    }
    ck_assert_msg(moved, "lws left every scale at 1");
    double bacc, minority;
    scores(res.test_logits, d->split.test_y, d->split.n_test, &bacc, &minority);
    if (getenv("LIBRA_STAGE_VERBOSE"))
        fprintf(stderr, "lws: balanced accuracy %.3f -> %.3f, minority recall %.3f -> %.3f\n", bacc0, bacc, min0, minority);
    /* class-balanced scales move the boundary towards the majority */
    ck_assert_msg(bacc > bacc0 + 0.02 && minority > min0, "lws: balanced accuracy %.3f -> %.3f, minority recall %.3f -> "
                  "%.3f", bacc0, bacc, min0, minority);
    lb_stage_result_free(&res);
    lb_model_free(m);
    lb_data_free(d);
}
END_TEST

/* ---------------------------------------------------------------- tau-norm */

START_TEST(test_taunorm)
{
    lb_data *d = open_data("0.2");
    lb_model *m = trained_model(d, "linear", 200, 8);
    int F = S * S;
    float W0[NC * S * S];
    memcpy(W0, cls_w(m), sizeof W0);
    lb_train_opts o;
    stage_opts(&o, 1e-2, 32);
    lb_stage_result res;
    /* a grid value, and W_c / |W_c|^tau with the bias dropped */
    ck_assert_msg(run_stage("taunorm", m, d, &o, 1, 1000, &res) == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(res.steps, 0);
    double t10 = res.tau * 10.0;
    ck_assert_msg(res.tau >= 0 && res.tau <= 2 && fabs(t10 - round(t10)) < 1e-5, "tau %g is not on the grid", res.tau);
    const float *W = cls_w(m), *b = cls_b(m);
    for (int c = 0; c < NC; c++) {
        double sq = 0;
        for (int j = 0; j < F; j++) sq += (double)W0[c * F + j] * W0[c * F + j];
        double den = pow(sqrt(sq), round(t10) / 10.0);
        ck_assert(b[c] == 0.0f);
        for (int j = 0; j < F; j++) ck_assert_close(W[c * F + j], W0[c * F + j] / den, 1e-6 * fabs(W0[c * F + j] / den));
    }
    lb_stage_result_free(&res);

    /* rows of one norm: every tau predicts alike, so the first of the grid (0) is chosen,
     * which leaves W bitwise as it was (and drops the bias) */
    float *Wm = cls_w(m), *bm = cls_b(m);
    for (int c = 0; c < NC; c++) {
        double sq = 0;
        for (int j = 0; j < F; j++) sq += (double)W0[c * F + j] * W0[c * F + j];
        for (int j = 0; j < F; j++) Wm[c * F + j] = (float)(W0[c * F + j] / sqrt(sq) * 3.0);
        bm[c] = 0.25f * (float)(c + 1);
    }
    float W1[NC * S * S];
    memcpy(W1, Wm, sizeof W1);
    ck_assert_int_eq(run_stage("taunorm", m, d, &o, 1, 1000, &res), LB_OK);
    ck_assert_msg(res.tau == 0.0f, "tau %g", res.tau);
    ck_assert(!memcmp(W1, cls_w(m), sizeof W1));
    for (int c = 0; c < NC; c++) ck_assert(cls_b(m)[c] == 0.0f);
    lb_stage_result_free(&res);
    lb_model_free(m);
    lb_data_free(d);

    /* without a validation split tau is 1 */
    d = open_data("0");
    ck_assert_int_eq(d->split.n_val, 0);
    m = trained_model(d, "linear", 50, 8);
    ck_assert_int_eq(run_stage("taunorm", m, d, &o, 1, 1000, &res), LB_OK);
    ck_assert(res.tau == 1.0f);
    ck_assert_int_eq(res.n_val, 0);
    lb_stage_result_free(&res);
    lb_model_free(m);
    lb_data_free(d);
}
END_TEST

/* ---------------------------------------------------------------- determinism and refusals */

START_TEST(test_deterministic)
{
    lb_data *d = open_data("0.2");
    lb_model *m = trained_model(d, "mlp:hidden=8", 60, 12);
    snapshot s = take(m);
    lb_train_opts o;
    stage_opts(&o, 1e-2, 16);
    static const char *const kinds[] = {"crt:steps=40", "lws:steps=40", "taunorm", "fsmote:k=3,steps=40"};
    for (int k = 0; k < 4; k++) {
        lb_stage_result a, b, c;
        put_back(m, &s);
        ck_assert_int_eq(run_stage(kinds[k], m, d, &o, 21, 0, &a), LB_OK);
        put_back(m, &s);
        ck_assert_int_eq(run_stage(kinds[k], m, d, &o, 21, 0, &b), LB_OK);
        size_t nt = (size_t)a.n_test * NC * sizeof(float), nv = (size_t)a.n_val * NC * sizeof(float);
        ck_assert_msg(!memcmp(a.test_logits, b.test_logits, nt) && !memcmp(a.val_logits, b.val_logits, nv),
                      "%s: the same seed gave other logits", kinds[k]);
        put_back(m, &s);
        ck_assert_int_eq(run_stage(kinds[k], m, d, &o, 22, 0, &c), LB_OK);
        if (k != 2) ck_assert_msg(memcmp(a.test_logits, c.test_logits, nt), "%s: another seed gave the same logits", kinds[k]);
        lb_stage_result_free(&a);
        lb_stage_result_free(&b);
        lb_stage_result_free(&c);
    }
    free(s.params);
    free(s.state);
    lb_model_free(m);
    lb_data_free(d);
}
END_TEST

START_TEST(test_refusals)
{
    lb_data *d = open_data("0.2");
    lb_train_opts o;
    stage_opts(&o, 1e-2, 16);
    lb_stage s;
    lb_stage_result res;
    lb_graph *g = lb_graph_new();
    /* no classifier */
    lb_model *m = lb_model_new(1, S, S);
    ck_assert_int_eq(lb_model_add_flatten(m), LB_OK);
    ck_assert_int_eq(lb_model_add_dense(m, NC, 1), LB_OK);
    ck_assert_int_eq(lb_model_add_relu(m), LB_OK);
    ck_assert_int_eq(lb_stage_parse(&s, "crt"), LB_OK);
    ck_assert_err(lb_stage_run(&s, m, g, d, &o, 1, 5, &res), LB_EINVAL, "relu_1");
    ck_assert_ptr_null(res.test_logits);
    lb_model_free(m);
    /* a classifier of other classes */
    m = lb_model_new_arch("linear", 1, S, S, NC + 1);
    ck_assert_err(lb_stage_run(&s, m, g, d, &o, 1, 5, &res), LB_ESHAPE, "3 classes");
    lb_model_free(m);
    /* no steps */
    m = lb_model_new_arch("linear", 1, S, S, NC);
    ck_assert_err(lb_stage_run(&s, m, g, d, &o, 1, 0, &res), LB_EINVAL, "0 classifier steps");
    ck_assert_int_eq(lb_stage_parse(&s, "taunorm"), LB_OK); /* which tau-norm does not take */
    ck_assert_int_eq(lb_stage_run(&s, m, g, d, &o, 1, 0, &res), LB_OK);
    lb_stage_result_free(&res);
    /* a bad optimizer */
    ck_assert_int_eq(lb_stage_parse(&s, "lws"), LB_OK);
    o.optimizer = "rmsprop";
    ck_assert_err(lb_stage_run(&s, m, g, d, &o, 1, 3, &res), LB_EINVAL, "rmsprop");
    ck_assert_str_eq(res.name, "lws");
    lb_model_free(m);
    lb_graph_free(g);
    lb_data_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stage");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, setup_data, teardown_data);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_parse_list_and_steps);
    tcase_add_test(tc, test_classifier);
    tcase_add_test(tc, test_features_are_the_classifier_input);
    tcase_add_test(tc, test_crt_and_fsmote_rebalance);
    tcase_add_test(tc, test_only_the_classifier_changes);
    tcase_add_test(tc, test_lws_gradient);
    tcase_add_test(tc, test_lws_folds_the_scales);
    tcase_add_test(tc, test_taunorm);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
