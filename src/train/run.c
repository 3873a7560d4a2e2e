/* A whole training run as a plain-data job: options in, result out. */
#include "train/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lb_train_opts_init(lb_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->arch = "smallcnn";
    o->init = "default";
    o->optimizer = "adam";
    o->lr = -1.0;
    o->momentum = -1.0;
    o->weight_decay = -1.0;
    o->schedule = "constant";
    o->batch = 64;
    o->epochs = 3;
    o->loss = "ce";
    o->sampler = "shuffle";
    o->seed = 1;
    o->eval_batch = 256;
    o->log_every = 10;
    o->nan_check = 1;
    o->shards = 1;
}

void lb_train_result_free(lb_train_result *r)
{
    if (!r) return;
    lb_metrics_free(&r->test);
    lb_free(r->test_logits);
    lb_free(r->test_labels);
    lb_free(r->val_logits);
    lb_free(r->val_labels);
    lb_curve_free(&r->loss);
    lb_curve_free(&r->monitor_acc);
    lb_curve_free(&r->monitor_bacc);
    for (int i = 0; i < r->n_stages; i++) lb_stage_result_free(&r->stages[i]);
    lb_free(r->stages);
    lb_notes_free(&r->warnings);
    memset(r, 0, sizeof *r);
}

/* The loss the trainer calls: the plain loss, or, for a mixed batch, the mixed one with the
 * batch's partners and label weights (set by train_step before each step). */
typedef struct loss_ctx {
    lb_loss *loss;
    int mixed;
    const int *yb;      /* the partner of each sample's label */
    double lambda;
    const float *lam_y; /* Remix: per-sample label weights; mixup: NULL */
} loss_ctx;

static lb_node *loss_adapter(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    const loss_ctx *c = ctx;
    if (c->mixed) return lb_loss_forward_mixed(c->loss, g, logits, targets, c->yb, c->lambda, c->lam_y, step, total);
    return lb_loss_forward(c->loss, g, logits, targets, step, total);
}

/* The loss of one shard (lb_trainer_set_shards): its own terms over the whole batch's
 * denominators (for a mixed batch, the whole batch's partners and weights). */
static lb_node *shard_loss_adapter(void *ctx, lb_graph *g, lb_node *logits, const int *targets, int lo, int n_batch,
                                   long step, long total)
{
    const loss_ctx *c = ctx;
    double den[2];
    if (lb_loss_denominators(c->loss, targets, c->mixed ? c->yb : NULL, c->mixed ? c->lam_y : NULL, n_batch, step,
                             total, den) != LB_OK)
        return NULL;
    if (c->mixed)
        return lb_loss_forward_mixed_denom(c->loss, g, logits, targets + lo, c->yb + lo, c->lambda,
                                           c->lam_y ? c->lam_y + lo : NULL, den, step, total);
    return lb_loss_forward_denom(c->loss, g, logits, targets + lo, den[0], step, total);
}

int lb_train_check_shards(const lb_train_opts *o, const lb_model *m)
{
    int rc = lb__check_shards(o->shards, NULL, NULL); /* a power of two first */
    if (rc != LB_OK) return rc;
    if (o->batch >= 1 && o->batch % o->shards != 0)
        return lb_error(LB_EINVAL, "shards=%d does not divide the batch of %d", o->shards, o->batch);
    return lb__check_shards(o->shards, o->reducer, m);
}

/* The mixing and the stages, canonical, when a run has them (a run without them reads as
 * before they existed, so older checkpoints resume). */
static int mix_and_stages(const lb_train_opts *o, lb_buf *out)
{
    lb_mix mx;
    int rc = lb_mix_parse(&mx, o->mix);
    if (rc != LB_OK) return rc;
    if (mx.kind != LB_MIX_NONE) lb_buf_printf(out, "mix=%s\n", mx.name);
    if (!o->stages || !*o->stages) return LB_OK;
    lb_stage st[LB_MAX_STAGES];
    int n = 0;
    if ((rc = lb_stage_parse_list(o->stages, st, LB_MAX_STAGES, &n)) != LB_OK) return rc;
    lb_buf_puts(out, "stages=");
    for (int i = 0; i < n; i++) lb_buf_printf(out, "%s%s", i ? "+" : "", st[i].name);
    lb_buf_puts(out, "\n");
    return LB_OK;
}

int lb_train_settings(const lb_train_opts *o, const lb_data_opts *dopts, const lb_data *d, int what, lb_buf *out)
{
    lb_optim_config oc;
    int rc = lb__train_optim_config(o, &oc);
    if (rc != LB_OK) return rc;
    lb_buf_printf(out, "init=%s\nprior_bias=%d\n", o->init ? o->init : "default", o->prior_bias);
    lb_buf_printf(out, "optimizer=%s\nlr=%.9g\nmomentum=%.9g\nnesterov=%d\nweight_decay=%.9g\nclip_norm=%.9g\n",
                  lb_optim_kind_name(oc.kind), oc.lr, oc.momentum, oc.nesterov, oc.weight_decay, oc.clip_norm);
    lb_buf_printf(out, "schedule=%s\nbatch=%d\nkeep=%s\npatience=%d\n", o->schedule ? o->schedule : "constant",
                  o->batch, o->keep_best ? "best" : "last", o->patience);
    if (o->shards > 1) lb_buf_printf(out, "shards=%d\n", o->shards); /* absent at 1: older checkpoints resume */
    if (what & LB_SETTINGS_JOB) {
        lb_buf_puts(out, "loss=");
        if ((rc = lb_loss_canonical_named(o->loss ? o->loss : "ce", d ? d->split.n_classes : 0, d ? (const char *const *)d->split.class_names : NULL, out)) != LB_OK) return rc;
        lb_buf_printf(out, "\nsampler=%s\n", o->sampler ? o->sampler : "shuffle");
        if ((rc = mix_and_stages(o, out)) != LB_OK) return rc;
    }
    lb_buf_printf(out, "augment=crop_pad=%d,hflip=%d\n", o->augment.crop_pad, o->augment.hflip);
    if (what & LB_SETTINGS_JOB) lb_buf_printf(out, "seed=%llu\n", (unsigned long long)o->seed);
    if (dopts) {
        /* the source with absolute paths: a checkpoint evaluated or resumed elsewhere finds its data */
        lb_source src;
        if ((rc = lb_source_parse(&src, dopts->data ? dopts->data : "fmnist")) != LB_OK) return rc;
        char *data = lb_source_format(&src, 1);
        lb_source_free(&src);
        if (!data) return lb_error(LB_ENOMEM, "settings: out of memory");
        lb_buf_printf(out, "data=%s\nimbalance=%s\norder=%s\nclasses=%s\n", data,
                      dopts->imbalance ? dopts->imbalance : "none", dopts->order ? dopts->order : "count",
                      dopts->classes ? dopts->classes : "");
        lb_free(data);
        lb_buf_printf(out, "val=%.9g\ntest=%.9g\nchannels=%d\nsize=%dx%d\ndata_seed=%llu\n", dopts->val_frac,
                      dopts->test_frac, dopts->channels, dopts->height, dopts->width,
                      (unsigned long long)dopts->seed);
    } else if (d) {
        lb_buf_printf(out, "data=%s\nimbalance=%s\ndata_seed=%llu\n", d->train->source ? d->train->source : "?",
                      d->split.profile ? d->split.profile : "none", (unsigned long long)d->split.seed);
    }
    if (what & LB_SETTINGS_BUDGET)
        lb_buf_printf(out, "arch=%s\nsteps=%ld\nepochs=%d\neval_every=%ld\nlog_every=%ld\neval_batch=%d\nmonitor=%d\n"
                      "threads=%d\n", o->arch ? o->arch : "smallcnn", o->steps, o->epochs, o->eval_every, o->log_every,
                      o->eval_batch, (int)o->monitor, o->threads);
    return lb_buf_status(out, "settings");
}

/* What identifies a run (everything but its budget and where it writes), as checkpoint
 * meta: a resumed run must agree on all of it to continue bit for bit, down to the class
 * names in order and the data's fingerprint. */
static int describe_run(lb_checkpoint *c, const lb_train_opts *o, const lb_data_opts *dopts, const lb_data *d)
{
    lb_buf b = {0};
    int rc = lb_train_settings(o, dopts, d, LB_SETTINGS_JOB, &b);
    lb_buf_puts(&b, "class_names=");
    for (int k = 0; k < d->split.n_classes; k++) lb_buf_printf(&b, "%s%s", k ? ", " : "", d->split.class_names[k]);
    lb_buf_printf(&b, "\ndata_fingerprint=%016llx\n", (unsigned long long)lb_data_fingerprint(d));
    if (rc == LB_OK) rc = lb_buf_status(&b, "checkpoint");
    for (char *line = b.p; rc == LB_OK && line && *line;) {
        char *nl = strchr(line, '\n'), *eq = strchr(line, '=');
        *nl = '\0';
        *eq = '\0';
        rc = lb_checkpoint_set(c, line, eq + 1);
        line = nl + 1;
    }
    lb_buf_free(&b);
    return rc;
}

/* Meta that describes the data for rebuilding the model and evaluating (not compared). */
static int describe_data(lb_checkpoint *c, const lb_data *d)
{
    const lb_split *sp = &d->split;
    char b[64], *list = lb_malloc((size_t)sp->n_classes * 24 + 64);
    if (!list) return lb_error(LB_ENOMEM, "checkpoint: out of memory");
    int rc = LB_OK;
    snprintf(b, sizeof b, "%d", sp->n_classes);
    rc = lb_checkpoint_set(c, "n_classes", b);
    for (int k = 0; k < sp->n_classes && rc == LB_OK; k++) {
        snprintf(b, sizeof b, "class.%d", k);
        rc = lb_checkpoint_set(c, b, sp->class_names[k]);
    }
    size_t at = 0;
    for (int k = 0; k < sp->n_classes; k++) at += (size_t)sprintf(list + at, "%s%d", k ? "," : "", sp->train_counts[k]);
    if (rc == LB_OK) rc = lb_checkpoint_set(c, "train_counts", list);
    for (int s = 0; s < 2 && rc == LB_OK; s++) {
        const float *v = s ? d->std : d->mean;
        at = 0;
        for (int k = 0; k < d->train->c; k++) at += (size_t)sprintf(list + at, "%s%.9g", k ? "," : "", v[k]);
        rc = lb_checkpoint_set(c, s ? "norm_std" : "norm_mean", list);
    }
    lb_free(list);
    return rc;
}

/* The loaded checkpoint must describe the same run as the options. */
static int check_same_run(const char *path, const lb_checkpoint *ck, const lb_checkpoint *now)
{
    for (int i = 0; i < now->n_meta; i++) {
        const char *v = lb_checkpoint_get(ck, now->meta_key[i]);
        if (!v || strcmp(v, now->meta_val[i]) != 0)
            return lb_error(LB_EINVAL, "%s: the checkpoint was trained with %s '%s', this run asks for '%s'", path,
                            now->meta_key[i], v ? v : "(missing)", now->meta_val[i]);
    }
    return LB_OK;
}

/* Accuracy and balanced accuracy of the model on images idx of b->ds with labels y. */
static int quick_eval(lb_model *m, lb_graph *g, lb_batcher *b, const int *idx, const int *y, int n, int C,
                      float *logits, int *pred, int64_t *conf, float *acc, float *bacc)
{
    int rc = lb_predict(m, g, b, idx, n, logits);
    if (rc != LB_OK) return rc;
    lb_argmax_rows(logits, (size_t)n, C, pred);
    memset(conf, 0, (size_t)C * C * sizeof *conf);
    if ((rc = lb_confusion_add(conf, C, y, pred, (size_t)n)) != LB_OK) return rc;
    lb_metrics mt;
    if ((rc = lb_metrics_from_confusion(&mt, conf, C, NULL, NULL)) != LB_OK) return rc;
    *acc = mt.accuracy;
    *bacc = mt.balanced_accuracy;
    lb_metrics_free(&mt);
    return LB_OK;
}

/* One training run in progress: what lb_train_run builds, phase by phase, and frees. */
typedef struct run {
    const lb_train_opts *o;
    const lb_data_opts *dopts;
    const lb_data *data;
    const lb_train_hooks *hooks;
    lb_train_result *res;
    lb_data *owned;
    lb_model *model;
    lb_loss *loss;
    lb_sampler *sampler;
    lb_trainer *tr;
    lb_batcher *batcher, *eval_val, *eval_test;
    lb_optim_config oc;
    lb_schedule sched;
    lb_rng aug;
    int C, n_epochs, eval_batch;
    long len, spe, total, step, log_every;
    double win_sum; /* losses since the last curve point */
    long win_n;
    float *scratch; /* logits or probabilities of an evaluation */
    int *pred;
    int64_t *conf;
    float *best_params, *best_state; /* keep best: the model at the best evaluation point */
    int since_best;                   /* evaluation points since it */
    loss_ctx lctx;                    /* what the trainer's loss sees */
    lb_dataset *synth;                /* a synthetic sampler's resampled training set */
    lb_mix mix;                       /* batch mixing (kind none: off) */
    uint64_t mix_seed;
    int *perm, *yb;                   /* the batch's partners and their labels */
    float *lam_y, *mix_scratch;       /* label weights, a copy of the batch */
    int n_stages;
    lb_stage stages[LB_MAX_STAGES];
    long stage_start[LB_MAX_STAGES];  /* the step each stage starts from (-1: not yet taken) */
    long stage_from[LB_MAX_STAGES];   /* the step of the model taken (the kept one's, with keep best) */
    float *stage_params[LB_MAX_STAGES], *stage_state[LB_MAX_STAGES];
} run;

static const lb_train_hooks no_hooks;

/* The data: given, or opened here; a non-empty training split. */
static int prepare_data(run *r)
{
    if (!r->data) {
        if (!r->dopts) return lb_error(LB_EINVAL, "train: neither data nor data options given");
        if (!(r->owned = lb_data_new(r->dopts))) return lb_last_status();
        r->data = r->owned;
    }
    r->C = r->data->split.n_classes;
    r->res->n_classes = r->C;
    if (r->data->split.n_train < 1) return lb_error(LB_EINVAL, "train: the training split is empty");
    if ((r->o->keep_best || r->o->patience > 0) && r->data->split.n_val < 1)
        return lb_error(LB_EINVAL, "train: keeping the best model and patience need a validation split, and it is "
                                   "empty (val fraction 0?)");
    return LB_OK;
}

/* The model, initialised from its own stream of the seed (dropout from another). */
static int build_model(run *r)
{
    const lb_train_opts *o = r->o;
    const lb_dataset *tds = r->data->train;
    if (!(r->model = lb_model_new_arch(o->arch, tds->c, tds->h, tds->w, r->C))) return lb_last_status();
    lb_init_kind ik;
    int rc = lb_init_parse(o->init ? o->init : "default", &ik);
    if (rc != LB_OK) return rc;
    lb_rng init;
    lb_rng_derive(&init, o->seed, LB_STREAM_INIT);
    lb_model_init(r->model, ik, &init);
    lb_rng_derive(&r->model->rng, o->seed, LB_STREAM_DROPOUT);
    if (o->prior_bias) return lb_model_prior_bias(r->model, r->data->split.train_counts, r->C, LB_PRIOR_SOFTMAX);
    return LB_OK;
}

/* Steps per epoch from the sampler's epoch length (a last partial batch of a single image
 * is dropped: batchnorm cannot train on one sample), the total and the epoch count. */
static int plan_budget(run *r)
{
    const lb_train_opts *o = r->o;
    r->len = lb_sampler_epoch_len(r->sampler);
    r->spe = (r->len + o->batch - 1) / o->batch;
    if (r->spe > 1 && r->len % o->batch == 1) r->spe--;
    r->total = o->steps > 0 ? o->steps : (long)o->epochs * r->spe;
    r->n_epochs = (int)((r->total + r->spe - 1) / r->spe);
    if (lb_sampler_kind_of(r->sampler) == LB_SAMPLER_PROGRESSIVE) return lb_sampler_set_horizon(r->sampler, r->n_epochs);
    return LB_OK;
}

/* Loss, sampler, budget, optimizer, trainer and batcher; the result's curves sized up front,
 * so the loop appends without allocating. */
/* A synthetic sampler's resampled training set (made once, from the run's seed on its own
 * stream; the classes' counts for the loss stay those of the data), then the sampler over
 * it; any other sampler runs over the training split as it is. */
static int build_sampler(run *r)
{
    const lb_train_opts *o = r->o;
    const lb_split *sp = &r->data->split;
    const char *spec = o->sampler ? o->sampler : "shuffle";
    lb_rng seeds;
    lb_rng_derive(&seeds, o->seed, LB_STREAM_SAMPLER);
    uint64_t sampler_seed = lb_rng_next(&seeds);
    if (!lb_synth_is(spec)) {
        r->sampler = lb_sampler_new(spec, sp->train_idx, sp->train_y, sp->n_train, r->C, sampler_seed);
        return r->sampler ? LB_OK : lb_last_status();
    }
    lb_rng_derive(&seeds, o->seed, LB_STREAM_SYNTH);
    lb_synth_plan plan;
    r->synth = lb_synth_dataset(spec, r->data->train, sp->train_idx, sp->train_y, sp->n_train, r->C,
                                lb_rng_next(&seeds), &plan);
    int rc = r->synth ? lb_notes_add_all(&r->res->warnings, &plan.warnings) : lb_last_status();
    int *rows = rc == LB_OK ? lb_malloc(((size_t)plan.n + 1) * sizeof *rows) : NULL;
    if (rc == LB_OK && !rows) rc = lb_error(LB_ENOMEM, "train: out of memory for %d resampled rows", plan.n);
    for (int i = 0; rows && i < plan.n; i++) rows[i] = i;
    if (rc == LB_OK && !(r->sampler = lb_sampler_new(spec, rows, plan.y, plan.n, r->C, sampler_seed)))
        rc = lb_last_status();
    lb_free(rows);
    lb_synth_plan_free(&plan);
    return rc;
}

/* Batch mixing: its spec, the seed of its per-step draws, and the batch-sized buffers. */
static int build_mixing(run *r)
{
    const lb_train_opts *o = r->o;
    int rc = lb_mix_parse(&r->mix, o->mix);
    if (rc != LB_OK || r->mix.kind == LB_MIX_NONE) return rc;
    lb_rng seeds;
    lb_rng_derive(&seeds, o->seed, LB_STREAM_MIX);
    r->mix_seed = lb_rng_next(&seeds);
    size_t b = (size_t)o->batch, size = (size_t)r->model->in_c * r->model->in_h * r->model->in_w;
    r->perm = lb_malloc(b * sizeof(int));
    r->yb = lb_malloc(b * sizeof(int));
    r->lam_y = lb_malloc(b * sizeof(float));
    r->mix_scratch = lb_malloc(b * size * sizeof(float));
    if (!r->perm || !r->yb || !r->lam_y || !r->mix_scratch) return lb_error(LB_ENOMEM, "train: out of memory for mixing");
    return LB_OK;
}

/* The stages and the step each starts from (budget - its steps), with room for the model
 * taken there. */
static int build_stages(run *r)
{
    const lb_train_opts *o = r->o;
    if (!o->stages || !*o->stages) return LB_OK;
    int rc = lb_stage_parse_list(o->stages, r->stages, LB_MAX_STAGES, &r->n_stages);
    for (int i = 0; rc == LB_OK && i < r->n_stages; i++) {
        long n = lb_stage_steps(&r->stages[i], r->total);
        if (n >= r->total)
            return lb_error(LB_EINVAL, "stage %s: %ld classifier steps leave none of the %ld-step budget to train the "
                                       "network", r->stages[i].name, n, r->total);
        r->stage_start[i] = r->total - n;
        r->stage_from[i] = -1;
        if (!(r->stage_params[i] = lb_malloc(r->model->params->size * sizeof(float) + 1)) ||
            !(r->stage_state[i] = lb_malloc(r->model->state_size * sizeof(float) + 1)))
            return lb_error(LB_ENOMEM, "train: out of memory for stage %s's model", r->stages[i].name);
    }
    return rc;
}

static int build_training(run *r)
{
    const lb_train_opts *o = r->o;
    const lb_split *sp = &r->data->split;
    if (!(r->loss = lb_loss_new_named(o->loss ? o->loss : "ce", r->C, sp->train_counts, (const char *const *)sp->class_names))) return lb_last_status();
    r->lctx.loss = r->loss;
    int rc = build_sampler(r);
    if (rc == LB_OK) rc = plan_budget(r);
    if (rc == LB_OK) rc = build_mixing(r);
    if (rc == LB_OK) rc = build_stages(r);
    if (rc == LB_OK) rc = lb__train_optim_config(o, &r->oc);
    if (rc == LB_OK) rc = lb_schedule_parse(&r->sched, o->schedule, r->oc.lr, r->total);
    if (rc != LB_OK) return rc;
    if (!(r->tr = lb_trainer_new(r->model, &r->oc, &r->sched, loss_adapter, &r->lctx, r->total))) return lb_last_status();
    r->tr->nan_check = o->nan_check;
    if ((o->shards > 1 || o->reducer) &&
        (rc = lb_trainer_set_shards(r->tr, o->shards, o->reducer, shard_loss_adapter)) != LB_OK)
        return rc;
    if (!(r->batcher = lb_batcher_new(r->synth ? r->synth : r->data->train, o->batch, r->data->mean, r->data->std,
                                      &o->augment)))
        return lb_last_status();
    lb_rng_derive(&r->aug, o->seed, LB_STREAM_AUGMENT);
    r->log_every = o->log_every > 0 ? o->log_every : 10;
    long evals = o->eval_every > 0 ? r->total / o->eval_every + 2 : r->n_epochs + 1;
    if ((rc = lb_curve_reserve(&r->res->loss, (size_t)(r->total / r->log_every + 2))) != LB_OK ||
        (rc = lb_curve_reserve(&r->res->monitor_acc, (size_t)evals)) != LB_OK ||
        (rc = lb_curve_reserve(&r->res->monitor_bacc, (size_t)evals)) != LB_OK)
        return rc;
    r->eval_batch = o->eval_batch > 0 ? o->eval_batch : 256;
    int n_eval = sp->n_test > sp->n_val ? sp->n_test : sp->n_val;
    if (o->keep_best &&
        (!(r->best_params = lb_malloc(r->model->params->size * sizeof(float) + 1)) ||
         !(r->best_state = lb_malloc(r->model->state_size * sizeof(float) + 1))))
        return lb_error(LB_ENOMEM, "train: out of memory for the kept best model");
    r->scratch = lb_malloc(((size_t)n_eval + 1) * r->C * sizeof(float));
    r->pred = lb_malloc(((size_t)n_eval + 1) * sizeof(int));
    r->conf = lb_malloc((size_t)r->C * r->C * sizeof(int64_t));
    return r->scratch && r->pred && r->conf ? LB_OK : lb_error(LB_ENOMEM, "train: out of memory for evaluation");
}

/* Keep best / patience: where the search stands, so a resumed run goes on exactly. */
static int keep_meta(lb_checkpoint *c, const run *r)
{
    char v[64];
    snprintf(v, sizeof v, "%ld", r->res->best_step);
    int rc = lb_checkpoint_set(c, "best_step", v);
    snprintf(v, sizeof v, "%.9g", r->res->best_val_bacc);
    if (rc == LB_OK) rc = lb_checkpoint_set(c, "best_val_balanced_accuracy", v);
    snprintf(v, sizeof v, "%d", r->since_best);
    if (rc == LB_OK) rc = lb_checkpoint_set(c, "evals_since_best", v);
    return rc;
}

/* How the run was spread: shards (also a setting when > 1) and ranks (not a setting: a run
 * resumes at any number of ranks to the same bits). */
static int describe_ranks(lb_checkpoint *c, const lb_train_opts *o)
{
    char v[32];
    snprintf(v, sizeof v, "%d", o->shards);
    int rc = lb_checkpoint_set(c, "shards", v);
    snprintf(v, sizeof v, "%d", o->reducer ? o->reducer->size : 1);
    return rc == LB_OK ? lb_checkpoint_set(c, "ranks", v) : rc;
}

/* The checkpoint of the run's current state. */
static int save_checkpoint(run *r)
{
    if (r->o->reducer && r->o->reducer->rank != 0) return LB_OK; /* rank 0 writes for every rank */
    lb_checkpoint c;
    lb_checkpoint_init(&c);
    int rc = describe_run(&c, r->o, r->dopts, r->data);
    if (rc == LB_OK) rc = describe_data(&c, r->data);
    if (rc == LB_OK) rc = describe_ranks(&c, r->o);
    if (rc == LB_OK) rc = lb_checkpoint_capture(&c, r->model, r->tr->optim, r->step);
    if (rc == LB_OK) {
        c.data_rng = r->aug;
        c.loss = r->res->loss; /* borrowed for the write */
        c.window_sum = r->win_sum;
        c.window_n = r->win_n;
        if (r->res->best_step >= 0 && r->best_params) { /* borrowed too */
            c.best_step = r->res->best_step;
            c.best_params = r->best_params;
            c.best_state = r->best_state;
        }
        if (r->res->val_logits) { /* at the end: the validation scores of the model for use */
            c.n_val = r->res->n_val;
            c.val_classes = r->C;
            c.val_labels = r->res->val_labels;
            c.val_logits = r->res->val_logits;
        }
        if (r->o->keep_best || r->o->patience > 0) rc = keep_meta(&c, r);
        if (rc == LB_OK) rc = lb_checkpoint_write(&c, r->o->save);
        memset(&c.loss, 0, sizeof c.loss);
        c.best_params = c.best_state = NULL;
        c.val_labels = NULL;
        c.val_logits = NULL;
    }
    lb_checkpoint_free(&c);
    if (rc == LB_OK && r->hooks->on_checkpoint) r->hooks->on_checkpoint(r->hooks->ctx, r->o->save, r->step);
    return rc;
}

/* The kept best model and the patience count of a resumed checkpoint. */
static int resume_best(run *r, const lb_checkpoint *ck, const char *path)
{
    const char *bs = lb_checkpoint_get(ck, "best_step"), *bv = lb_checkpoint_get(ck, "best_val_balanced_accuracy"),
               *since = lb_checkpoint_get(ck, "evals_since_best");
    if (!bs) return LB_OK; /* written before keep best existed: nothing kept */
    r->res->best_step = atol(bs);
    r->res->best_val_bacc = bv ? strtof(bv, NULL) : -1.0f;
    r->since_best = since ? atoi(since) : 0;
    if (!r->best_params || r->res->best_step < 0) return LB_OK;
    if (!ck->best_params || ck->best_step != r->res->best_step)
        return lb_error(LB_EFORMAT, "%s: best_step %ld but no kept model for it", path, r->res->best_step);
    memcpy(r->best_params, ck->best_params, ck->n_params * sizeof(float));
    if (ck->n_state) memcpy(r->best_state, ck->best_state, ck->n_state * sizeof(float));
    return LB_OK;
}

/* Continues from o->resume: the same run (every setting agrees), its state and curve. */
static int resume_checkpoint(run *r)
{
    const char *path = r->o->resume;
    lb_checkpoint ck, now;
    lb_checkpoint_init(&now);
    int rc = lb_checkpoint_read(&ck, path);
    if (rc != LB_OK) return rc;
    rc = describe_run(&now, r->o, r->dopts, r->data);
    if (rc == LB_OK) rc = check_same_run(path, &ck, &now);
    const char *sh = lb_checkpoint_get(&ck, "shards"); /* absent: 1 (and written at 1 since shards exist) */
    if (rc == LB_OK && (sh ? atoi(sh) : 1) != r->o->shards)
        rc = lb_error(LB_EINVAL, "%s: the checkpoint was trained with shards '%s', this run asks for '%d'", path,
                      sh ? sh : "1", r->o->shards);
    if (rc == LB_OK && (rc = lb_checkpoint_restore(&ck, r->model, r->tr->optim)) != LB_OK) lb_error_prefix("%s", path);
    if (rc == LB_OK && (ck.step > r->total || ck.loss.n > r->res->loss.cap))
        rc = lb_error(LB_EINVAL, "%s: the checkpoint is at step %ld, past this run's budget of %ld steps", path, ck.step,
                      r->total);
    if (rc == LB_OK) {
        r->step = ck.step;
        r->aug = ck.data_rng;
        memcpy(r->res->loss.step, ck.loss.step, ck.loss.n * sizeof *ck.loss.step);
        memcpy(r->res->loss.value, ck.loss.value, ck.loss.n * sizeof *ck.loss.value);
        r->res->loss.n = ck.loss.n;
        r->win_sum = ck.window_sum;
        r->win_n = ck.window_n;
        rc = resume_best(r, &ck, path);
    }
    lb_checkpoint_free(&now);
    lb_checkpoint_free(&ck);
    return rc;
}

/* After a validation evaluation: a better balanced accuracy (strictly: ties keep the
 * earlier point) becomes the best, and its parameters are kept. */
static void track_best(run *r, float bacc)
{
    lb_train_result *res = r->res;
    if (res->best_step >= 0 && !(bacc > res->best_val_bacc)) {
        r->since_best++;
        return;
    }
    res->best_step = r->step;
    res->best_val_bacc = bacc;
    r->since_best = 0;
    if (r->best_params) {
        memcpy(r->best_params, r->model->params->data, r->model->params->size * sizeof(float));
        if (r->model->state_size) memcpy(r->best_state, r->model->state, r->model->state_size * sizeof(float));
    }
}

/* The monitor's evaluation at this point (on validation or test), into the result's curves. */
static int monitor_eval(run *r, int monitor, lb_train_progress *p)
{
    const lb_split *sp = &r->data->split;
    int val = monitor == LB_MONITOR_VAL;
    lb_batcher **eb = val ? &r->eval_val : &r->eval_test;
    if (!*eb && !(*eb = lb_batcher_new(val ? r->data->train : r->data->test, r->eval_batch, r->data->mean,
                                          r->data->std, NULL)))
        return lb_last_status();
    int rc = quick_eval(r->model, r->tr->graph, *eb, val ? sp->val_idx : sp->test_idx, val ? sp->val_y : sp->test_y,
                        val ? sp->n_val : sp->n_test, r->C, r->scratch, r->pred, r->conf, &p->monitor_acc,
                        &p->monitor_bacc);
    if (rc != LB_OK) return rc;
    lb_curve_append(&r->res->monitor_acc, r->step, p->monitor_acc); /* reserved: cannot fail */
    lb_curve_append(&r->res->monitor_bacc, r->step, p->monitor_bacc);
    if (val) track_best(r, p->monitor_bacc);
    return LB_OK;
}

/* The progress a hook sees after a step. */
static void progress_after_step(const run *r, int epoch, double epoch_mean, double train_time, long images,
                                lb_train_progress *p)
{
    p->step = r->step;
    p->epoch = epoch;
    p->loss = r->tr->loss;
    p->loss_avg = epoch_mean;
    p->lr = r->tr->lr;
    p->elapsed = train_time;
    p->images_per_second = train_time > 0 ? images / train_time : 0.0;
    p->eta = (double)(r->total - r->step) * train_time / (double)(r->step - r->res->start_step);
    p->monitor_acc = p->monitor_bacc = NAN;
}

/* Mixes the batch in place (images, and the partners' labels and weights the loss sees),
 * from this step's own draws. */
static void mix_batch(run *r, int n)
{
    lb_rng mr;
    lb_rng_derive(&mr, r->mix_seed, (uint64_t)r->step);
    lb_mix_draw(&r->mix, &mr, n, r->batcher->t, r->data->split.train_counts, &r->lctx.lambda, r->perm, r->lam_y);
    size_t size = (size_t)r->batcher->c * r->batcher->h * r->batcher->w;
    lb_mix_images(r->batcher->x, n, size, r->lctx.lambda, r->perm, r->mix_scratch);
    for (int i = 0; i < n; i++) r->yb[i] = r->batcher->t[r->perm[i]];
    r->lctx.mixed = 1;
    r->lctx.yb = r->yb;
    r->lctx.lam_y = r->mix.kind == LB_MIX_REMIX ? r->lam_y : NULL;
}

/* One step on the next batch of the sampler's epoch, and its loss-curve bookkeeping. */
static int train_step(run *r, const int *eidx, const int *ey, long b)
{
    long off = b * r->o->batch;
    int n = (int)(r->len - off < r->o->batch ? r->len - off : r->o->batch);
    int rc = lb_batcher_fill(r->batcher, eidx + off, ey + off, n, &r->aug);
    if (rc == LB_OK && r->mix.kind != LB_MIX_NONE) mix_batch(r, n);
    if (rc == LB_OK) rc = lb_trainer_step(r->tr, r->batcher->x, r->batcher->t, n);
    if (rc != LB_OK) return rc;
    r->step++;
    r->win_sum += r->tr->loss;
    r->win_n++;
    if (r->step % r->log_every == 0 || r->step == r->total) {
        lb_curve_append(&r->res->loss, r->step, (float)(r->win_sum / r->win_n)); /* reserved */
        r->win_sum = 0.0;
        r->win_n = 0;
    }
    return n;
}

/* Each stage's starting model, taken when the run reaches its step (or, with `now`, for
 * stages not yet taken: a run stopped early): the current model, or with keep best the best
 * one evaluated so far. */
static void take_stage_models(run *r, int now)
{
    for (int i = 0; i < r->n_stages; i++) {
        if (r->stage_from[i] >= 0 || (!now && r->step != r->stage_start[i])) continue;
        int kept = r->best_params && r->res->best_step >= 0;
        memcpy(r->stage_params[i], kept ? r->best_params : r->model->params->data, r->model->params->size * sizeof(float));
        if (r->model->state_size) /* (a model without buffers has no state array) */
            memcpy(r->stage_state[i], kept ? r->best_state : r->model->state, r->model->state_size * sizeof(float));
        r->stage_from[i] = kept ? r->res->best_step : r->step;
    }
}

/* Each stage from its starting model (the model is put back as it was after each). */
static int run_stages(run *r)
{
    if (!r->n_stages) return LB_OK;
    take_stage_models(r, 1);
    lb_train_result *res = r->res;
    size_t np = r->model->params->size, ns = r->model->state_size;
    float *keep_p = lb_malloc(np * sizeof(float) + 1), *keep_s = lb_malloc(ns * sizeof(float) + 1);
    res->stages = lb_calloc((size_t)r->n_stages, sizeof *res->stages);
    int rc = keep_p && keep_s && res->stages ? LB_OK : lb_error(LB_ENOMEM, "train: out of memory for the stages");
    if (rc == LB_OK) {
        memcpy(keep_p, r->model->params->data, np * sizeof(float));
        if (ns) memcpy(keep_s, r->model->state, ns * sizeof(float));
    }
    for (int i = 0; rc == LB_OK && i < r->n_stages; i++) {
        memcpy(r->model->params->data, r->stage_params[i], np * sizeof(float));
        if (ns) memcpy(r->model->state, r->stage_state[i], ns * sizeof(float));
        rc = lb_stage_run(&r->stages[i], r->model, r->tr->graph, r->data, r->o, r->o->seed,
                          lb_stage_steps(&r->stages[i], r->total), &res->stages[i]);
        if (rc == LB_OK) {
            res->n_stages = i + 1; /* its result is the run's to free from here on */
            res->stages[i].start_step = r->stage_from[i];
            rc = lb_notes_add_all(&res->warnings, &res->stages[i].warnings);
        } /* (a failure's message names the stage already) */
        memcpy(r->model->params->data, keep_p, np * sizeof(float));
        if (ns) memcpy(r->model->state, keep_s, ns * sizeof(float));
    }
    lb_free(keep_p);
    lb_free(keep_s);
    return rc;
}

/* A resumed run with stages: the checkpoint must not be past a stage's starting step (its
 * model is not in the checkpoint); at that very step it is taken now. */
static int check_stage_resume(run *r)
{
    for (int i = 0; i < r->n_stages; i++)
        if (r->step > r->stage_start[i])
            return lb_error(LB_EINVAL, "%s: the checkpoint is at step %ld, past step %ld where stage %s starts (its "
                                       "model is not in the checkpoint): resume from an earlier checkpoint or run "
                                       "again", r->o->resume, r->step, r->stage_start[i], r->stages[i].name);
    take_stage_models(r, 0);
    return LB_OK;
}

/* The loop: steps until the budget is spent or a hook asks to stop, with checkpoints and
 * evaluations at their points. */
static int train_loop(run *r)
{
    const lb_train_opts *o = r->o;
    const lb_split *sp = &r->data->split;
    int monitor = o->monitor == LB_MONITOR_VAL && sp->n_val == 0 ? LB_MONITOR_NONE : (int)o->monitor;
    lb_train_progress p = {.total_steps = r->total, .start_step = r->step, .step = r->step, .epochs = r->n_epochs,
                           .steps_per_epoch = r->spe, .loss = NAN, .monitor_acc = NAN, .monitor_bacc = NAN};
    p.lr = lb_schedule_lr(&r->sched, r->step);
    if (r->hooks->on_start) r->hooks->on_start(r->hooks->ctx, r->model, r->data, &p);
    const int *eidx = NULL, *ey = NULL;
    int cur_epoch = -1, rc = LB_OK;
    double epoch_sum = 0.0, train_time = 0.0;
    long epoch_n = 0, images = 0;
    while (r->step < r->total) {
        double ts = lb_now();
        int e = (int)(r->step / r->spe);
        long b = r->step % r->spe;
        if (e != cur_epoch) {
            if ((rc = lb_sampler_epoch(r->sampler, e, &eidx, &ey)) != LB_OK) return rc;
            cur_epoch = e;
            epoch_sum = 0.0;
            epoch_n = 0;
        }
        int n = train_step(r, eidx, ey, b);
        if (n < 0) return n;
        images += n;
        train_time += lb_now() - ts;
        epoch_sum += r->tr->loss;
        epoch_n++;
        progress_after_step(r, e, epoch_sum / epoch_n, train_time, images, &p);
        int stop = r->hooks->on_step ? r->hooks->on_step(r->hooks->ctx, &p) : 0;
        if (o->save && o->save_every > 0 && r->step % o->save_every == 0 && r->step < r->total &&
            (rc = save_checkpoint(r)) != LB_OK)
            return rc;
        int at_eval = o->eval_every > 0 ? r->step % o->eval_every == 0 : b == r->spe - 1;
        if (at_eval || r->step == r->total) {
            if ((rc = lb_trainer_check_ranks(r->tr)) != LB_OK) return rc;
            if (monitor != LB_MONITOR_NONE && (rc = monitor_eval(r, monitor, &p)) != LB_OK) return rc;
            if (r->hooks->on_epoch) stop |= r->hooks->on_epoch(r->hooks->ctx, &p);
            if (o->patience > 0 && monitor == LB_MONITOR_VAL && r->since_best >= o->patience && r->step < r->total)
                stop = r->res->stopped_patience = 1;
        }
        take_stage_models(r, 0);
        if (stop) {
            r->res->stopped = 1;
            break;
        }
    }
    r->res->epochs = cur_epoch + 1;
    r->res->train_seconds = train_time;
    r->res->images_per_second = train_time > 0 ? images / train_time : 0.0;
    return LB_OK;
}

/* Logits of the images idx[0..n) of ds, into a new array. */
static int logits_of(run *r, lb_batcher **b, const lb_dataset *ds, const int *idx, int n, float **out)
{
    if (!*b && !(*b = lb_batcher_new(ds, r->eval_batch, r->data->mean, r->data->std, NULL))) return lb_last_status();
    if (!(*out = lb_malloc(((size_t)n + 1) * r->C * sizeof(float)))) return lb_error(LB_ENOMEM, "train: out of memory");
    return lb_predict(r->model, r->tr->graph, *b, idx, n, *out);
}

static int *copy_labels(const int *y, int n)
{
    int *c = lb_malloc(((size_t)n + 1) * sizeof(int));
    if (c) memcpy(c, y, (size_t)n * sizeof(int));
    else lb_error(LB_ENOMEM, "train: out of memory");
    return c;
}

/* The test split's logits, probabilities and every metric; the validation split's logits
 * (for choosing post-hoc corrections without the test set). */
static int evaluate(run *r)
{
    const lb_split *sp = &r->data->split;
    lb_train_result *res = r->res;
    int rc = LB_OK;
    res->n_test = sp->n_test;
    if (sp->n_test > 0) {
        if ((rc = logits_of(r, &r->eval_test, r->data->test, sp->test_idx, sp->n_test, &res->test_logits)) != LB_OK)
            return rc;
        if (!(res->test_labels = copy_labels(sp->test_y, sp->n_test))) return LB_ENOMEM;
        if ((rc = lb_softmax_rows(res->test_logits, (size_t)sp->n_test, r->C, r->scratch)) != LB_OK) return rc;
        rc = lb_metrics_from_scores(&res->test, r->scratch, sp->test_y, (size_t)sp->n_test, r->C, sp->train_counts,
                                    NULL);
        if (rc != LB_OK) return rc;
    }
    res->n_val = sp->n_val;
    if (sp->n_val > 0) {
        if ((rc = logits_of(r, &r->eval_val, r->data->train, sp->val_idx, sp->n_val, &res->val_logits)) != LB_OK)
            return rc;
        if (!(res->val_labels = copy_labels(sp->val_y, sp->n_val))) return LB_ENOMEM;
    }
    return LB_OK;
}

/* Keep best: exchanges the model's parameters and buffers with the kept ones (so the model
 * evaluated is the kept one, and the checkpoint then holds the last state again). */
static void swap_floats(float *a, float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

static int swap_best(run *r)
{
    swap_floats(r->model->params->data, r->best_params, r->model->params->size);
    swap_floats(r->model->state, r->best_state, r->model->state_size);
    return LB_OK;
}

static void run_free(run *r)
{
    for (int i = 0; i < r->n_stages; i++) {
        lb_free(r->stage_params[i]);
        lb_free(r->stage_state[i]);
    }
    lb_free(r->perm);
    lb_free(r->yb);
    lb_free(r->lam_y);
    lb_free(r->mix_scratch);
    lb_free(r->best_params);
    lb_free(r->best_state);
    lb_free(r->scratch);
    lb_free(r->pred);
    lb_free(r->conf);
    lb_batcher_free(r->batcher);
    lb_batcher_free(r->eval_val);
    lb_batcher_free(r->eval_test);
    lb_trainer_free(r->tr); /* evaluation used the trainer's graph: one arena, freed with it */
    lb_sampler_free(r->sampler);
    lb_loss_free(r->loss);
    lb_model_free(r->model);
    lb_dataset_free(r->synth);
    lb_data_free(r->owned);
}

int lb_train_run(const lb_train_opts *o, const lb_data_opts *dopts, const lb_data *data, const lb_train_hooks *hooks,
                 lb_train_result *res)
{
    double t0 = lb_now();
    memset(res, 0, sizeof *res);
    res->seed = o->seed;
    res->best_step = -1;
    res->best_val_bacc = -1.0f;
    if ((o->keep_best || o->patience > 0) && o->monitor != LB_MONITOR_VAL)
        return lb_error(LB_EINVAL, "keeping the best model and patience choose on the validation split: they need "
                                   "monitor = val (the test set never chooses)");
    if (o->batch < 1) return lb_error(LB_EINVAL, "batch size %d must be >= 1", o->batch);
    res->shards = o->shards;
    res->ranks = o->reducer ? o->reducer->size : 1;
    if (lb_train_check_shards(o, NULL) != LB_OK) return lb_last_status();
    if (o->steps <= 0 && o->epochs < 1) return lb_error(LB_EINVAL, "give a step budget or at least one epoch");
    if (o->threads > 0 && lb_set_threads(o->threads) != LB_OK) return lb_last_status();
    lb_clear_error();
    run r = {.o = o, .dopts = dopts, .data = data, .hooks = hooks ? hooks : &no_hooks, .res = res};
    int rc = prepare_data(&r);
    if (rc == LB_OK) rc = build_model(&r);
    if (rc == LB_OK) rc = build_training(&r);
    if (rc == LB_OK && o->resume) rc = resume_checkpoint(&r);
    if (rc == LB_OK && o->resume) rc = check_stage_resume(&r);
    res->start_step = r.step;
    if (rc == LB_OK) rc = train_loop(&r);
    res->steps = r.step;
    res->final_loss = res->loss.n ? res->loss.value[res->loss.n - 1] : NAN;
    /* the model for use (the kept one under keep best) is scored, then the checkpoint is
     * written with the last state, the kept model and its validation scores */
    if (rc == LB_OK && r.best_params && res->best_step >= 0) rc = swap_best(&r);
    if (rc == LB_OK) rc = evaluate(&r);
    if (rc == LB_OK) res->param_hash = lb_model_hash(r.model);
    if (rc == LB_OK && r.best_params && res->best_step >= 0) rc = swap_best(&r);
    if (rc == LB_OK) rc = run_stages(&r);
    if (rc == LB_OK && o->save) rc = save_checkpoint(&r);
    res->wall_seconds = lb_now() - t0;
    run_free(&r);
    return rc;
}
