/* Two-stage re-balancing of the classifier (Kang et al. 2020, "Decoupling representation and
 * classifier for long-tailed recognition"): the network below the classifier is frozen, its
 * penultimate features are computed once per split, and only the last dense layer changes:
 * cRT (re-trained on class-balanced batches), LWS (a learned scale per class), tau-norm
 * (weight norms equalised, tau chosen on validation) or feature-space SMOTE (re-trained on a
 * synthetically balanced feature set). The new classifier is computed aside and written into
 * the model only once everything has succeeded. */
#include "train/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- specs */

static const char *const stage_names[] = {"crt", "lws", "taunorm", "fsmote"};
#define N_STAGE_KINDS 4
#define STAGE_K_DEFAULT 5
#define STAGE_MAX_STEPS 1e12
#define STAGE_MAX_K 1e6

/* The canonical name: the kind, and each key where it differs from its default. */
static void stage_name(lb_stage *s)
{
    int n = snprintf(s->name, sizeof s->name, "%s", stage_names[s->kind]);
    const char *sep = ":";
    if (s->kind == LB_STAGE_FSMOTE && s->k != STAGE_K_DEFAULT) {
        n += snprintf(s->name + n, sizeof s->name - (size_t)n, "%sk=%d", sep, s->k);
        sep = ",";
    }
    if (s->kind != LB_STAGE_TAUNORM && s->steps != 0)
        snprintf(s->name + n, sizeof s->name - (size_t)n, "%ssteps=%ld", sep, s->steps);
}

/* key (when given) as a whole number in [lo, hi]; the error names the spec and the value. */
static int whole_key(const lb_spec *sp, const char *key, double lo, double hi, double *out)
{
    const char *v = lb_spec_get(sp, key);
    if (!v) return LB_OK;
    double x;
    if (lb_parse_double(v, &x) != 0 || x != floor(x) || x < lo || x > hi)
        return lb_error(LB_EINVAL, "stage '%s': %s=%s must be a whole number from %.0f to %.0f", lb_spec_text(sp), key,
                        v, lo, hi);
    *out = x;
    return LB_OK;
}

/* The keys of a parsed spec into s: steps (crt, lws, fsmote) >= 0, k (fsmote) >= 1. */
static int stage_keys(lb_stage *s, const lb_spec *sp)
{
    static const char *const step_keys[] = {"steps", NULL}, *const smote_keys[] = {"k", "steps", NULL};
    const char *const *keys = s->kind == LB_STAGE_TAUNORM ? NULL : s->kind == LB_STAGE_FSMOTE ? smote_keys : step_keys;
    int rc = lb_spec_check(sp, "stage", keys, 0);
    double steps = 0, k = STAGE_K_DEFAULT;
    if (rc == LB_OK) rc = whole_key(sp, "steps", 0, STAGE_MAX_STEPS, &steps);
    if (rc == LB_OK) rc = whole_key(sp, "k", 1, STAGE_MAX_K, &k);
    s->steps = (long)steps;
    s->k = (int)k;
    return rc;
}

int lb_stage_parse(lb_stage *out, const char *spec)
{
    memset(out, 0, sizeof *out);
    out->k = STAGE_K_DEFAULT;
    if (!spec || !*spec) return lb_error(LB_EINVAL, "stage: empty spec (expected crt, lws, taunorm or fsmote)");
    lb_spec *sp = lb_spec_new(spec);
    if (!sp) {
        lb_error_prefix("stage");
        return lb_last_status();
    }
    int kind = -1;
    for (int i = 0; i < N_STAGE_KINDS; i++)
        if (!strcmp(lb_spec_name(sp), stage_names[i])) kind = i;
    int rc = LB_OK;
    if (kind < 0) rc = lb_error(LB_EINVAL, "stage '%s': unknown (expected crt, lws, taunorm or fsmote)", spec);
    else {
        out->kind = (lb_stage_kind)kind;
        rc = stage_keys(out, sp);
    }
    if (rc == LB_OK) stage_name(out);
    lb_spec_free(sp);
    return rc;
}

int lb_stage_parse_list(const char *list, lb_stage *out, int max, int *n)
{
    *n = 0;
    if (!list || !*list || !strcmp(list, "none")) return LB_OK;
    int count = 0, rc = LB_OK;
    for (const char *p = list; rc == LB_OK;) {
        const char *e = strchr(p, '+');
        if (!e) e = p + strlen(p);
        char item[256];
        if ((size_t)(e - p) >= sizeof item)
            return lb_error(LB_EINVAL, "stages '%s': the stage '%.40s...' is too long", list, p);
        memcpy(item, p, (size_t)(e - p));
        item[e - p] = '\0';
        if (count == max) return lb_error(LB_EINVAL, "stages '%s': more than %d stages", list, max);
        if ((rc = lb_stage_parse(&out[count], item)) != LB_OK) {
            lb_error_prefix("stages '%s'", list);
            return rc;
        }
        for (int j = 0; j < count; j++)
            if (!strcmp(out[j].name, out[count].name))
                return lb_error(LB_EINVAL, "stages '%s': %s is given twice", list, out[count].name);
        count++;
        if (!*e) break;
        p = e + 1;
    }
    *n = count;
    return rc;
}

long lb_stage_steps(const lb_stage *s, long budget)
{
    if (s->kind == LB_STAGE_TAUNORM) return 0;
    if (s->steps > 0) return s->steps;
    long n = budget / 10;
    return n > 0 ? n : 1;
}

void lb_stage_result_free(lb_stage_result *r)
{
    if (!r) return;
    lb_free(r->test_logits);
    lb_free(r->val_logits);
    lb_notes_free(&r->warnings);
    memset(r, 0, sizeof *r);
    r->tau = NAN;
}

/* ---------------------------------------------------------------- one stage in progress */

/* The penultimate features of one split: rows [n, F] with their labels. */
typedef struct feats {
    int n;
    const int *idx, *y;
    float *f;
} feats;

typedef struct stage_run {
    const lb_stage *s;
    lb_model *m;
    const lb_data *d;
    const lb_train_opts *o;
    int C, F, batch;
    long steps;
    float *W, *b;            /* m's classifier: [C, F] and [C] */
    float *Wn, *bn;          /* the new one, written into W and b at the end */
    feats tr, va, te;
    lb_optim_config oc;
    uint64_t init_seed, sampler_seed, synth_seed;
} stage_run;

static void stage_free(stage_run *r)
{
    lb_free(r->Wn);
    lb_free(r->bn);
    lb_free(r->tr.f);
    lb_free(r->va.f);
    lb_free(r->te.f);
}

/* The model's classifier, which must score the data's classes: W [C, F], b [C]. */
static int find_classifier(stage_run *r)
{
    int layer, rc = lb_model_classifier(r->m, &layer);
    if (rc != LB_OK) return rc;
    const lb_layer *l = &r->m->layers[layer];
    const lb_param_info *wi = &r->m->params->info[l->w], *bi = &r->m->params->info[l->b];
    r->C = r->d->split.n_classes;
    r->F = l->in_shape[0];
    if (wi->ndim != 2 || wi->shape[0] != r->C || wi->shape[1] != r->F || bi->ndim != 1 || bi->shape[0] != r->C)
        return lb_error(LB_ESHAPE, "the classifier %s (%s [%d, %d]) does not score the data's %d classes", l->name,
                        wi->name, wi->shape[0], wi->ndim > 1 ? wi->shape[1] : 0, r->C);
    r->W = lb_params_value(r->m->params, l->w);
    r->b = lb_params_value(r->m->params, l->b);
    return LB_OK;
}

/* Everything checked and resolved before any work: the classifier, the budget, the optimizer,
 * the stage's seeds (one generator on LB_STREAM_STAGE, its draws always in this order). */
static int stage_prepare(stage_run *r, const lb_stage *s, lb_model *m, const lb_data *d, const lb_train_opts *o,
                         uint64_t seed, long steps)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->m = m;
    r->d = d;
    r->o = o;
    r->steps = s->kind == LB_STAGE_TAUNORM ? 0 : steps;
    r->batch = o->batch;
    int rc = find_classifier(r);
    if (rc != LB_OK) return rc;
    if (d->split.n_train < 1) return lb_error(LB_EINVAL, "the training split is empty");
    if (s->kind != LB_STAGE_TAUNORM && steps < 1)
        return lb_error(LB_EINVAL, "%ld classifier steps: at least 1 is needed", steps);
    if (s->kind != LB_STAGE_TAUNORM && r->batch < 1) return lb_error(LB_EINVAL, "batch %d must be positive", r->batch);
    if ((rc = lb__train_optim_config(o, &r->oc)) != LB_OK) return rc;
    lb_rng st;
    lb_rng_derive(&st, seed, LB_STREAM_STAGE);
    r->init_seed = lb_rng_next(&st);
    r->sampler_seed = lb_rng_next(&st);
    r->synth_seed = lb_rng_next(&st);
    r->Wn = lb_malloc((size_t)r->C * r->F * sizeof(float));
    r->bn = lb_malloc((size_t)r->C * sizeof(float));
    if (!r->Wn || !r->bn) return lb_error(LB_ENOMEM, "out of memory for the new classifier");
    memcpy(r->Wn, r->W, (size_t)r->C * r->F * sizeof(float));
    memcpy(r->bn, r->b, (size_t)r->C * sizeof(float));
    r->tr = (feats){d->split.n_train, d->split.train_idx, d->split.train_y, NULL};
    r->va = (feats){d->split.n_val, d->split.val_idx, d->split.val_y, NULL};
    r->te = (feats){d->split.n_test, d->split.test_idx, d->split.test_y, NULL};
    return LB_OK;
}

/* ---------------------------------------------------------------- features */

/* The features of the images fs->idx of b->ds, in batches of b->max_batch (g in evaluation
 * mode with gradients off, set by the caller). */
static int split_features(stage_run *r, lb_graph *g, lb_batcher *b, feats *fs)
{
    fs->f = lb_malloc(((size_t)fs->n + 1) * r->F * sizeof(float));
    if (!fs->f) return lb_error(LB_ENOMEM, "out of memory for %d x %d features", fs->n, r->F);
    for (int at = 0; at < fs->n; at += b->max_batch) {
        int k = fs->n - at < b->max_batch ? fs->n - at : b->max_batch;
        int rc = lb_batcher_fill(b, fs->idx + at, fs->y + at, k, NULL);
        if (rc != LB_OK) return rc;
        int shape[4] = {k, b->c, b->h, b->w};
        lb_graph_reset(g);
        lb_node *f = lb_model_features(r->m, g, lb_input(g, 4, shape, b->x));
        if (!f) return lb_last_status();
        if (f->size != (size_t)k * r->F)
            return lb_error(LB_ESHAPE, "the features of %d images are %zu values, not %d x %d", k, f->size, k, r->F);
        memcpy(fs->f + (size_t)at * r->F, f->val, f->size * sizeof(float));
    }
    return LB_OK;
}

/* The features of the three splits, once each, with the network frozen: evaluation mode, no
 * gradient, no augmentation, normalised by the training statistics. g's mode is restored. */
static int all_features(stage_run *r, lb_graph *g)
{
    const lb_data *d = r->d;
    int eb = r->o->eval_batch > 0 ? r->o->eval_batch : 256, rc = lb_set_threads(lb_get_threads());
    if (rc != LB_OK) return rc;
    lb_batcher *btr = lb_batcher_new(d->train, eb, d->mean, d->std, NULL), *bte = NULL;
    if (btr) bte = d->test == d->train ? btr : lb_batcher_new(d->test, eb, d->mean, d->std, NULL);
    if (!btr || !bte) rc = lb_last_status();
    int was_training = lb_graph_training(g);
    lb_graph_set_training(g, 0);
    lb_graph_set_grad(g, 0);
    if (rc == LB_OK) rc = split_features(r, g, btr, &r->tr);
    if (rc == LB_OK) rc = split_features(r, g, btr, &r->va);
    if (rc == LB_OK) rc = split_features(r, g, bte, &r->te);
    lb_graph_reset(g);
    lb_graph_set_grad(g, 1);
    lb_graph_set_training(g, was_training);
    if (bte != btr) lb_batcher_free(bte);
    lb_batcher_free(btr);
    return rc;
}

/* z [n, C] = f [n, F] W^T + b (b NULL: no bias), accumulated in double. */
static void classify(const float *f, int n, int F, const float *W, const float *b, int C, float *z)
{
    for (int i = 0; i < n; i++) {
        const float *x = f + (size_t)i * F;
        for (int c = 0; c < C; c++) {
            const float *w = W + (size_t)c * F;
            double acc = b ? b[c] : 0.0;
            for (int j = 0; j < F; j++) acc += (double)x[j] * w[j];
            z[(size_t)i * C + c] = (float)acc;
        }
    }
}

/* Rows idx[0..k) of x [*, dim] into out [k, dim]. */
static void gather_rows(const float *x, int dim, const int *idx, int k, float *out)
{
    for (int i = 0; i < k; i++) memcpy(out + (size_t)i * dim, x + (size_t)idx[i] * dim, (size_t)dim * sizeof(float));
}

/* A sampler over the rows 0..n-1 with labels y. */
static lb_sampler *row_sampler(const char *spec, const int *y, int n, int C, uint64_t seed)
{
    int *rows = lb_malloc(((size_t)n + 1) * sizeof(int));
    if (!rows) {
        lb_error(LB_ENOMEM, "out of memory for the classifier's sampler");
        return NULL;
    }
    for (int i = 0; i < n; i++) rows[i] = i;
    lb_sampler *s = lb_sampler_new(spec, rows, y, n, C, seed);
    lb_free(rows);
    return s;
}

/* ---------------------------------------------------------------- crt (and fsmote's re-training) */

static lb_node *ce_adapter(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    return lb_loss_forward((lb_loss *)ctx, g, logits, targets, step, total);
}

/* A linear classifier over F features ([F, 1, 1] -> flatten -> dense C with a bias),
 * initialised as PyTorch's Linear from the stage's init seed. */
static lb_model *linear_model(const stage_run *r)
{
    lb_model *lin = lb_model_new(r->F, 1, 1);
    if (!lin) return NULL;
    int rc = lb_model_add_flatten(lin);
    if (rc == LB_OK) rc = lb_model_add_dense(lin, r->C, 1);
    if (rc != LB_OK) {
        lb_model_free(lin);
        return NULL;
    }
    lb_rng init;
    lb_rng_seed(&init, r->init_seed);
    lb_model_init(lin, LB_INIT_DEFAULT, &init);
    return lin;
}

/* r->steps steps of the trainer on batches of feature rows drawn by smp (full batches). */
static int linear_steps(stage_run *r, lb_trainer *t, lb_sampler *smp, const float *x, float *xb)
{
    for (long s = 0; s < r->steps; s++) {
        const int *idx, *y;
        int k = lb_sampler_next(smp, r->batch, 1, &idx, &y);
        if (k < 0) return k;
        gather_rows(x, r->F, idx, k, xb);
        int rc = lb_trainer_step(t, xb, y, k);
        if (rc != LB_OK) return rc;
    }
    return LB_OK;
}

/* The classifier re-trained alone on feature rows x [n, F] with labels y: a fresh linear
 * layer, plain cross-entropy, batches drawn by `sampler` over the rows, the run's optimizer at
 * a constant rate. The result goes to r->Wn, r->bn. */
static int fit_linear(stage_run *r, const float *x, const int *y, int n, const char *sampler)
{
    lb_model *lin = linear_model(r);
    lb_sampler *smp = lin ? row_sampler(sampler, y, n, r->C, r->sampler_seed) : NULL;
    lb_loss *ce = smp ? lb_loss_new("ce", r->C, NULL) : NULL;
    lb_trainer *t = ce ? lb_trainer_new(lin, &r->oc, NULL, ce_adapter, ce, r->steps) : NULL;
    float *xb = t ? lb_malloc((size_t)r->batch * r->F * sizeof(float)) : NULL;
    int rc = xb ? LB_OK : t ? lb_error(LB_ENOMEM, "out of memory for a batch of features") : lb_last_status();
    if (rc == LB_OK) {
        t->nan_check = r->o->nan_check;
        rc = linear_steps(r, t, smp, x, xb);
    }
    if (rc == LB_OK) {
        const lb_layer *l = &lin->layers[lin->n_layers - 1];
        memcpy(r->Wn, lb_params_value(lin->params, l->w), (size_t)r->C * r->F * sizeof(float));
        memcpy(r->bn, lb_params_value(lin->params, l->b), (size_t)r->C * sizeof(float));
    }
    lb_free(xb);
    lb_trainer_free(t);
    lb_loss_free(ce);
    lb_sampler_free(smp);
    lb_model_free(lin);
    return rc;
}

/* ---------------------------------------------------------------- lws */

/* The LWS loss of one batch on g: cross-entropy of z = s * u, u [n, C] the classifier's
 * logits (W f + b), s the [C] scales (scale's parameter 0), broadcast over the rows. Private
 * (lb__, declared in src/train/internal.h for the finite-difference test). */
lb_node *lb__stage_lws_loss(lb_graph *g, lb_params *scale, lb_loss *ce, float *u, const int *y, int n, int C)
{
    int shape[2] = {n, C};
    lb_node *z = lb_mul(g, lb_input(g, 2, shape, u), lb_param(g, scale, 0));
    return z ? lb_loss_forward(ce, g, z, y, 0, 0) : NULL;
}

/* One LWS step on the logit rows ub [k, C]: loss, gradient, update, each checked finite. */
static int lws_step(stage_run *r, lb_graph *g, lb_params *p, lb_optim *opt, lb_loss *ce, float *ub, const int *y,
                    int k)
{
    long nth = opt->step + 1;
    lb_graph_reset(g);
    lb_node *loss = lb__stage_lws_loss(g, p, ce, ub, y, k, r->C);
    if (!loss) {
        lb_error_prefix("step %ld", nth);
        return lb_last_status();
    }
    if (!isfinite(loss->val[0])) return lb_error(LB_ENUMERIC, "step %ld: the loss is %g", nth, loss->val[0]);
    lb_params_zero_grad(p);
    int rc = lb_backward(g, loss);
    if (rc != LB_OK) return rc;
    for (int c = 0; c < r->C && r->o->nan_check; c++)
        if (!isfinite(p->grad[c])) return lb_error(LB_ENUMERIC, "step %ld: non-finite gradient of scale %d", nth, c);
    if ((rc = lb_optim_step(opt, p->data, p->grad, r->oc.lr)) != LB_OK) return rc;
    for (int c = 0; c < r->C && r->o->nan_check; c++)
        if (!isfinite(p->data[c])) return lb_error(LB_ENUMERIC, "step %ld: scale %d is not finite after the update", nth, c);
    return LB_OK;
}

/* The scales s [C] (from 1) learned on the training logits u [n_train, C], class-balanced. */
static int lws_fit(stage_run *r, float *u, float *s)
{
    int C = r->C;
    lb_params *p = lb_params_new();
    int rc = p ? (lb_params_add(p, "lws.scale", 1, &C) == 0 ? LB_OK : lb_last_status()) : lb_last_status();
    lb_optim *opt = rc == LB_OK ? lb_optim_new(&r->oc, (size_t)C) : NULL;
    lb_graph *g = opt ? lb_graph_new() : NULL;
    lb_loss *ce = g ? lb_loss_new("ce", C, NULL) : NULL;
    lb_sampler *smp = ce ? row_sampler("balanced", r->tr.y, r->tr.n, C, r->sampler_seed) : NULL;
    float *ub = smp ? lb_malloc((size_t)r->batch * C * sizeof(float)) : NULL;
    if (rc == LB_OK && !ub) rc = smp ? lb_error(LB_ENOMEM, "out of memory for a batch of logits") : lb_last_status();
    if (rc == LB_OK) {
        for (int c = 0; c < C; c++) p->data[c] = 1.0f;
        for (long st = 0; st < r->steps && rc == LB_OK; st++) {
            const int *idx, *y;
            int k = lb_sampler_next(smp, r->batch, 1, &idx, &y);
            if (k < 0) rc = k;
            else {
                gather_rows(u, C, idx, k, ub);
                rc = lws_step(r, g, p, opt, ce, ub, y, k);
            }
        }
    }
    if (rc == LB_OK) memcpy(s, p->data, (size_t)C * sizeof(float));
    lb_free(ub);
    lb_sampler_free(smp);
    lb_loss_free(ce);
    lb_graph_free(g);
    lb_optim_free(opt);
    lb_params_free(p);
    return rc;
}

/* LWS: the scales learned on the classifier's training logits, then folded into it
 * (W_c *= s_c, b_c *= s_c), so the model scores s * (W f + b). */
static int stage_lws(stage_run *r)
{
    float *u = lb_malloc(((size_t)r->tr.n + 1) * r->C * sizeof(float));
    float *s = lb_malloc((size_t)r->C * sizeof(float));
    int rc = u && s ? LB_OK : lb_error(LB_ENOMEM, "out of memory for the training logits");
    if (rc == LB_OK) {
        classify(r->tr.f, r->tr.n, r->F, r->W, r->b, r->C, u);
        rc = lws_fit(r, u, s);
    }
    for (int c = 0; rc == LB_OK && c < r->C; c++) {
        for (int j = 0; j < r->F; j++) r->Wn[(size_t)c * r->F + j] = r->W[(size_t)c * r->F + j] * s[c];
        r->bn[c] = r->b[c] * s[c];
    }
    lb_free(u);
    lb_free(s);
    return rc;
}

/* ---------------------------------------------------------------- tau-norm */

#define TAU_GRID 21 /* tau = 0, 0.1, ..., 2 */

/* out [C, F] = W_c / |W_c|^tau (a zero row stays zero; tau = 0 copies W exactly). */
static void tau_weights(const float *W, int C, int F, double tau, float *out)
{
    for (int c = 0; c < C; c++) {
        const float *w = W + (size_t)c * F;
        double sq = 0.0;
        for (int j = 0; j < F; j++) sq += (double)w[j] * w[j];
        double den = tau == 0.0 || sq == 0.0 ? 1.0 : pow(sqrt(sq), tau);
        for (int j = 0; j < F; j++) out[(size_t)c * F + j] = (float)(w[j] / den);
    }
}

/* Balanced accuracy of logits z [n, C] against y. */
static int balanced_accuracy(const float *z, const int *y, int n, int C, int *pred, int64_t *conf, float *bacc)
{
    lb_argmax_rows(z, (size_t)n, C, pred);
    memset(conf, 0, (size_t)C * C * sizeof *conf);
    int rc = lb_confusion_add(conf, C, y, pred, (size_t)n);
    lb_metrics mt;
    if (rc == LB_OK && (rc = lb_metrics_from_confusion(&mt, conf, C, NULL, NULL)) == LB_OK) {
        *bacc = mt.balanced_accuracy;
        lb_metrics_free(&mt);
    }
    return rc;
}

/* The grid index of the tau with the best validation balanced accuracy (the first of equals). */
static int tau_choose(stage_run *r, int *best)
{
    int C = r->C, n = r->va.n;
    float *z = lb_malloc(((size_t)n + 1) * C * sizeof(float));
    int *pred = lb_malloc(((size_t)n + 1) * sizeof(int));
    int64_t *conf = lb_malloc((size_t)C * C * sizeof(int64_t));
    int rc = z && pred && conf ? LB_OK : lb_error(LB_ENOMEM, "out of memory for choosing tau");
    float best_bacc = 0.0f;
    *best = 0;
    for (int i = 0; i < TAU_GRID && rc == LB_OK; i++) {
        float bacc = NAN;
        tau_weights(r->W, C, r->F, i / 10.0, r->Wn);
        classify(r->va.f, n, r->F, r->Wn, NULL, C, z);
        rc = balanced_accuracy(z, r->va.y, n, C, pred, conf, &bacc);
        if (rc == LB_OK && (i == 0 || bacc > best_bacc)) {
            *best = i;
            best_bacc = bacc;
        }
    }
    lb_free(z);
    lb_free(pred);
    lb_free(conf);
    return rc;
}

/* tau-norm: W_c / |W_c|^tau, the bias dropped; tau from the validation split (1 without one). */
static int stage_taunorm(stage_run *r, float *tau)
{
    int best = 10, rc = r->va.n > 0 ? tau_choose(r, &best) : LB_OK;
    if (rc != LB_OK) return rc;
    tau_weights(r->W, r->C, r->F, best / 10.0, r->Wn);
    memset(r->bn, 0, (size_t)r->C * sizeof(float));
    *tau = (float)(best / 10.0);
    return LB_OK;
}

/* ---------------------------------------------------------------- fsmote */

/* Feature-space SMOTE: every class of the training features up to the largest (k nearest
 * same-class neighbours, from the stage's synthesis seed), then the classifier re-trained as
 * crt does on that balanced set, shuffled. The plan's warnings (a class of <= k rows) go to
 * the result's. */
static int stage_fsmote(stage_run *r, lb_notes *warnings)
{
    char text[48];
    snprintf(text, sizeof text, "smote:k=%d", r->s->k);
    lb_synth_spec sp;
    lb_synth_plan plan;
    memset(&plan, 0, sizeof plan);
    float *x = NULL;
    int rc = lb_synth_parse(&sp, text);
    if (rc == LB_OK) {
        lb_rng g;
        lb_rng_seed(&g, r->synth_seed);
        rc = lb_synth_plan_rows(&sp, r->tr.f, r->tr.y, r->tr.n, r->F, r->C, &g, &plan);
    }
    if (rc == LB_OK && !(x = lb_malloc(((size_t)plan.n + 1) * r->F * sizeof(float))))
        rc = lb_error(LB_ENOMEM, "out of memory for %d x %d resampled features", plan.n, r->F);
    if (rc == LB_OK) rc = lb_notes_add_all(warnings, &plan.warnings);
    if (rc == LB_OK) rc = lb_synth_fill_rows(&sp, &plan, r->tr.f, r->F, r->synth_seed, x);
    if (rc == LB_OK) rc = fit_linear(r, x, plan.y, plan.n, "shuffle");
    lb_free(x);
    lb_synth_plan_free(&plan);
    lb_synth_spec_free(&sp);
    return rc;
}

/* ---------------------------------------------------------------- the stage */

/* The new classifier of the stage's kind into r->Wn, r->bn. */
static int stage_classifier(stage_run *r, lb_stage_result *out)
{
    switch (r->s->kind) {
    case LB_STAGE_CRT: return fit_linear(r, r->tr.f, r->tr.y, r->tr.n, "balanced");
    case LB_STAGE_LWS: return stage_lws(r);
    case LB_STAGE_TAUNORM: return stage_taunorm(r, &out->tau);
    case LB_STAGE_FSMOTE: return stage_fsmote(r, &out->warnings);
    }
    return lb_error(LB_EINVAL, "unknown stage kind %d", (int)r->s->kind);
}

/* The new classifier into the model, and its logits on the test and validation features. */
static int stage_results(stage_run *r, lb_stage_result *out)
{
    int C = r->C;
    out->test_logits = lb_malloc(((size_t)r->te.n + 1) * C * sizeof(float));
    out->val_logits = lb_malloc(((size_t)r->va.n + 1) * C * sizeof(float));
    if (!out->test_logits || !out->val_logits) return lb_error(LB_ENOMEM, "out of memory for the stage's logits");
    memcpy(r->W, r->Wn, (size_t)C * r->F * sizeof(float));
    memcpy(r->b, r->bn, (size_t)C * sizeof(float));
    out->n_test = r->te.n;
    out->n_val = r->va.n;
    classify(r->te.f, r->te.n, r->F, r->W, r->b, C, out->test_logits);
    classify(r->va.f, r->va.n, r->F, r->W, r->b, C, out->val_logits);
    out->steps = r->steps;
    return LB_OK;
}

int lb_stage_run(const lb_stage *s, lb_model *m, lb_graph *g, const lb_data *d, const lb_train_opts *o,
                 uint64_t seed, long steps, lb_stage_result *out)
{
    memset(out, 0, sizeof *out);
    out->tau = NAN;
    if (!s || !m || !g || !d || !o) return lb_error(LB_EINVAL, "stage: stage, model, graph, data and options are required");
    snprintf(out->name, sizeof out->name, "%s", s->name);
    stage_run r;
    int rc = stage_prepare(&r, s, m, d, o, seed, steps);
    if (rc == LB_OK) rc = all_features(&r, g);
    if (rc == LB_OK) rc = stage_classifier(&r, out);
    if (rc == LB_OK) rc = stage_results(&r, out);
    stage_free(&r);
    if (rc != LB_OK) {
        lb_error_prefix("stage %s", s->name);
        lb_stage_result_free(out);
        snprintf(out->name, sizeof out->name, "%s", s->name);
    }
    return rc;
}
