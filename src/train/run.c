/* A whole training run as a plain-data job: options in, result out. */
#include "libra/losses.h"
#include "libra/train.h"

#include <math.h>
#include <stdio.h>
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
}

void lb_train_result_free(lb_train_result *r)
{
    if (!r) return;
    lb_metrics_free(&r->test);
    lb_free(r->test_logits);
    lb_free(r->test_labels);
    lb_free(r->val_logits);
    lb_free(r->val_labels);
    lb_free(r->curve_step);
    lb_free(r->curve_loss);
    lb_free(r->epoch_acc);
    lb_free(r->epoch_bacc);
    memset(r, 0, sizeof *r);
}

static lb_node *loss_adapter(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    return lb_loss_forward((lb_loss *)ctx, g, logits, targets, step, total);
}

static int optim_config(const lb_train_opts *o, lb_optim_config *c)
{
    lb_optim_kind kind;
    int rc = lb_optim_kind_parse(o->optimizer ? o->optimizer : "adam", &kind);
    if (rc != LB_OK) return rc;
    *c = lb_optim_defaults(kind);
    if (o->lr >= 0) c->lr = (float)o->lr;
    if (kind == LB_OPTIM_SGD) c->momentum = o->momentum >= 0 ? (float)o->momentum : 0.9f;
    c->nesterov = o->nesterov;
    if (o->weight_decay >= 0) c->weight_decay = (float)o->weight_decay;
    c->clip_norm = (float)o->clip_norm;
    return LB_OK;
}

/* What identifies a run (everything but its budget and where it writes), as checkpoint
 * meta: a resumed run must agree on all of it to continue bit for bit. */
static int describe_run(lb_checkpoint *c, const lb_train_opts *o, const lb_optim_config *oc, const lb_loss *loss,
                        const lb_data_opts *dopts, const lb_data *d)
{
    char b[512];
    int rc = LB_OK;
#define SET(k, ...) \
    do { snprintf(b, sizeof b, __VA_ARGS__); if (rc == LB_OK) rc = lb_checkpoint_set(c, k, b); } while (0)
    SET("init", "%s", o->init ? o->init : "default");
    SET("prior_bias", "%d", o->prior_bias);
    SET("optimizer", "%s", lb_optim_kind_name(oc->kind));
    SET("lr", "%.9g", oc->lr);
    SET("momentum", "%.9g", oc->momentum);
    SET("nesterov", "%d", oc->nesterov);
    SET("weight_decay", "%.9g", oc->weight_decay);
    SET("clip_norm", "%.9g", oc->clip_norm);
    SET("schedule", "%s", o->schedule ? o->schedule : "constant");
    SET("batch", "%d", o->batch);
    SET("loss", "%s", lb_loss_spec(loss));
    SET("sampler", "%s", o->sampler ? o->sampler : "shuffle");
    SET("augment", "crop_pad=%d,hflip=%d", o->augment.crop_pad, o->augment.hflip);
    SET("seed", "%llu", (unsigned long long)o->seed);
    if (dopts) {
        SET("data", "%s", dopts->data ? dopts->data : "fmnist");
        SET("imbalance", "%s", dopts->imbalance ? dopts->imbalance : "none");
        SET("order", "%s", dopts->order ? dopts->order : "natural");
        SET("val", "%.9g", dopts->val_frac);
        SET("test", "%.9g", dopts->test_frac);
        SET("channels", "%d", dopts->channels);
        SET("size", "%dx%d", dopts->height, dopts->width);
        SET("data_seed", "%llu", (unsigned long long)dopts->seed);
    } else {
        SET("data", "%s", d->train->source ? d->train->source : "?");
        SET("imbalance", "%s", d->split.profile ? d->split.profile : "none");
        SET("data_seed", "%llu", (unsigned long long)d->split.seed);
    }
#undef SET
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

/* The checkpoint of the run's current state. */
static int save_checkpoint(const char *path, const lb_train_opts *o, const lb_optim_config *oc, const lb_loss *loss,
                           const lb_data_opts *dopts, const lb_data *d, const lb_trainer *tr, long step,
                           const lb_rng *aug, const lb_train_result *res, double win_sum, long win_n)
{
    lb_checkpoint c;
    lb_checkpoint_init(&c);
    int rc = describe_run(&c, o, oc, loss, dopts, d);
    if (rc == LB_OK) rc = describe_data(&c, d);
    if (rc == LB_OK) rc = lb_checkpoint_capture(&c, tr->model, tr->optim, step);
    if (rc == LB_OK) {
        c.data_rng = *aug;
        /* the curve arrays are the result's, borrowed for the write */
        c.n_curve = res->n_curve;
        c.curve_step = res->curve_step;
        c.curve_loss = res->curve_loss;
        c.window_sum = win_sum;
        c.window_n = win_n;
        rc = lb_checkpoint_save(path, &c);
        c.curve_step = NULL;
        c.curve_loss = NULL;
    }
    lb_checkpoint_free(&c);
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

int lb_train_run(const lb_train_opts *o, const lb_data_opts *dopts, const lb_data *data, const lb_train_hooks *hooks,
                 lb_train_result *res)
{
    double t0 = lb_now();
    memset(res, 0, sizeof *res);
    res->seed = o->seed;
    static const lb_train_hooks no_hooks;
    if (!hooks) hooks = &no_hooks;
    if (o->batch < 1) return lb_error(LB_EINVAL, "batch size %d must be >= 1", o->batch);
    if (o->steps <= 0 && o->epochs < 1) return lb_error(LB_EINVAL, "give a step budget or at least one epoch");
    if (o->threads > 0) lb_set_threads(o->threads);

    lb_data *owned = NULL;
    lb_model *model = NULL;
    lb_loss *loss = NULL;
    lb_sampler *sampler = NULL;
    lb_trainer *tr = NULL;
    lb_batcher *batcher = NULL, *eval_train = NULL, *eval_test = NULL;
    lb_graph *eval_g = NULL;
    lb_checkpoint ck;
    lb_checkpoint_init(&ck);
    float *scratch = NULL;
    int *pred = NULL;
    int64_t *conf = NULL, *counts64 = NULL;
    int rc = LB_OK;
#define TRY(expr)                      \
    do {                               \
        if ((rc = (expr)) != LB_OK) goto done; \
    } while (0)
#define NEED(ptr)                          \
    do {                                   \
        if (!(ptr)) {                      \
            rc = LB_ENOMEM;                \
            if (!*lb_last_error()) lb_error(rc, "train: out of memory"); \
            goto done;                     \
        }                                  \
    } while (0)

    lb_clear_error();
    if (!data) {
        if (!dopts) return lb_error(LB_EINVAL, "train: neither data nor data options given");
        TRY(lb_data_open(dopts, &owned));
        data = owned;
    }
    const lb_split *sp = &data->split;
    const lb_dataset *tds = data->train;
    int C = sp->n_classes;
    res->n_classes = C;
    if (sp->n_train < 1) {
        rc = lb_error(LB_EINVAL, "train: the training split is empty");
        goto done;
    }

    /* model, initialised from its own stream of the seed */
    if (!(model = lb_model_build(o->arch, tds->c, tds->h, tds->w, C))) {
        rc = LB_EINVAL;
        goto done;
    }
    lb_init_kind ik;
    TRY(lb_init_parse(o->init ? o->init : "default", &ik));
    lb_rng r;
    lb_rng_derive(&r, o->seed, LB_STREAM_INIT);
    lb_model_init(model, ik, &r);
    lb_rng_derive(&model->rng, o->seed, LB_STREAM_DROPOUT);
    if (o->prior_bias) TRY(lb_model_prior_bias(model, sp->train_counts, C, LB_PRIOR_SOFTMAX));

    if (!(loss = lb_loss_create(o->loss ? o->loss : "ce", C, sp->train_counts))) {
        rc = LB_EINVAL;
        goto done;
    }
    lb_rng_derive(&r, o->seed, LB_STREAM_SAMPLER);
    TRY(lb_sampler_create(o->sampler ? o->sampler : "shuffle", sp->train_idx, sp->train_y, sp->n_train, C,
                          lb_rng_next(&r), &sampler));

    /* the budget: steps per epoch from the sampler's epoch length; a last partial batch
     * of a single image is dropped (batchnorm cannot train on one sample) */
    long len = lb_sampler_epoch_len(sampler);
    long spe = (len + o->batch - 1) / o->batch;
    if (spe > 1 && len % o->batch == 1) spe--;
    long total = o->steps > 0 ? o->steps : (long)o->epochs * spe;
    int n_epochs = (int)((total + spe - 1) / spe);
    if (lb_sampler_kind_of(sampler) == LB_SAMPLER_PROGRESSIVE) TRY(lb_sampler_set_horizon(sampler, n_epochs));

    lb_optim_config oc;
    TRY(optim_config(o, &oc));
    lb_schedule sched;
    TRY(lb_schedule_parse(o->schedule, oc.lr, total, &sched));
    NEED(tr = lb_trainer_new(model, &oc, &sched, loss_adapter, loss, total));
    tr->nan_check = o->nan_check;
    NEED(batcher = lb_batcher_create(tds, o->batch, data->mean, data->std, &o->augment));
    lb_rng aug;
    lb_rng_derive(&aug, o->seed, LB_STREAM_AUGMENT);

    /* result arrays sized up front: the loop appends without allocating */
    long log_every = o->log_every > 0 ? o->log_every : 10;
    long cap_curve = total / log_every + 2;
    NEED(res->curve_step = lb_malloc((size_t)cap_curve * sizeof(long)));
    NEED(res->curve_loss = lb_malloc((size_t)cap_curve * sizeof(float)));
    long cap_evals = o->eval_every > 0 ? total / o->eval_every + 2 : n_epochs;
    NEED(res->epoch_acc = lb_malloc((size_t)cap_evals * sizeof(float)));
    NEED(res->epoch_bacc = lb_malloc((size_t)cap_evals * sizeof(float)));

    long step = 0, win_n = 0;
    double win_sum = 0.0;
    if (o->resume) {
        lb_checkpoint now;
        lb_checkpoint_init(&now);
        TRY(lb_checkpoint_load(o->resume, &ck));
        rc = describe_run(&now, o, &oc, loss, dopts, data);
        if (rc == LB_OK) rc = check_same_run(o->resume, &ck, &now);
        lb_checkpoint_free(&now);
        if (rc != LB_OK) goto done;
        if ((rc = lb_checkpoint_restore(&ck, model, tr->optim)) != LB_OK) {
            lb_error_prefix("%s", o->resume);
            goto done;
        }
        step = ck.step;
        aug = ck.data_rng;
        if (step > total || ck.n_curve > cap_curve) {
            rc = lb_error(LB_EINVAL, "%s: the checkpoint is at step %ld, past this run's budget of %ld steps", o->resume,
                          step, total);
            goto done;
        }
        memcpy(res->curve_step, ck.curve_step, (size_t)ck.n_curve * sizeof(long));
        memcpy(res->curve_loss, ck.curve_loss, (size_t)ck.n_curve * sizeof(float));
        res->n_curve = ck.n_curve;
        win_sum = ck.window_sum;
        win_n = ck.window_n;
        lb_checkpoint_free(&ck);
    }
    res->start_step = step;

    int monitor = o->monitor;
    if (monitor == LB_MONITOR_VAL && sp->n_val == 0) monitor = LB_MONITOR_NONE;
    int eval_batch = o->eval_batch > 0 ? o->eval_batch : 256;
    int n_eval_max = sp->n_test > sp->n_val ? sp->n_test : sp->n_val;
    /* evaluation records on the trainer's graph: one arena (sized by the larger of a step and
     * an evaluation batch) instead of two; every step resets the graph anyway */
    eval_g = tr->graph;
    NEED(scratch = lb_malloc(((size_t)n_eval_max + 1) * C * sizeof(float)));
    NEED(pred = lb_malloc(((size_t)n_eval_max + 1) * sizeof(int)));
    NEED(conf = lb_malloc((size_t)C * C * sizeof(int64_t)));

    lb_train_progress p;
    memset(&p, 0, sizeof p);
    p.total_steps = total;
    p.start_step = step;
    p.step = step;
    p.epochs = n_epochs;
    p.steps_per_epoch = spe;
    p.loss = NAN;
    p.monitor_acc = p.monitor_bacc = NAN;
    p.lr = lb_schedule_lr(&sched, step);
    if (hooks->on_start) hooks->on_start(hooks->ctx, model, data, &p);

    const int *eidx = NULL, *ey = NULL;
    int cur_epoch = -1;
    double epoch_sum = 0.0, train_time = 0.0;
    long epoch_n = 0, images = 0;
    while (step < total) {
        double ts = lb_now();
        int e = (int)(step / spe);
        long b = step % spe;
        if (e != cur_epoch) {
            TRY(lb_sampler_epoch(sampler, e, &eidx, &ey));
            cur_epoch = e;
            epoch_sum = 0.0;
            epoch_n = 0;
        }
        long off = b * o->batch;
        int n = (int)(len - off < o->batch ? len - off : o->batch);
        TRY(lb_batcher_fill(batcher, eidx + off, ey + off, n, &aug));
        TRY(lb_trainer_step(tr, batcher->x, batcher->t, n));
        step++;
        images += n;
        train_time += lb_now() - ts;

        epoch_sum += tr->loss;
        epoch_n++;
        win_sum += tr->loss;
        win_n++;
        if (step % log_every == 0 || step == total) {
            res->curve_step[res->n_curve] = step;
            res->curve_loss[res->n_curve++] = (float)(win_sum / win_n);
            win_sum = 0.0;
            win_n = 0;
        }
        p.step = step;
        p.epoch = e;
        p.loss = tr->loss;
        p.loss_avg = epoch_sum / epoch_n;
        p.lr = tr->lr;
        p.elapsed = train_time;
        p.images_per_second = train_time > 0 ? images / train_time : 0.0;
        p.eta = (double)(total - step) * train_time / (double)(step - res->start_step);
        p.monitor_acc = p.monitor_bacc = NAN;
        int stop = hooks->on_step ? hooks->on_step(hooks->ctx, &p) : 0;

        if (o->save && o->save_every > 0 && step % o->save_every == 0 && step < total) {
            TRY(save_checkpoint(o->save, o, &oc, loss, dopts, data, tr, step, &aug, res, win_sum, win_n));
            if (hooks->on_checkpoint) hooks->on_checkpoint(hooks->ctx, o->save, step);
        }
        int at_eval = o->eval_every > 0 ? step % o->eval_every == 0 : b == spe - 1;
        if (at_eval || step == total) {
            if (monitor != LB_MONITOR_NONE) {
                int val = monitor == LB_MONITOR_VAL;
                lb_batcher **eb = val ? &eval_train : &eval_test;
                if (!*eb) NEED(*eb = lb_batcher_create(val ? tds : data->test, eval_batch, data->mean, data->std, NULL));
                TRY(quick_eval(model, eval_g, *eb, val ? sp->val_idx : sp->test_idx, val ? sp->val_y : sp->test_y,
                               val ? sp->n_val : sp->n_test, C, scratch, pred, conf, &p.monitor_acc, &p.monitor_bacc));
                res->epoch_acc[res->n_epoch_evals] = p.monitor_acc;
                res->epoch_bacc[res->n_epoch_evals++] = p.monitor_bacc;
            }
            if (hooks->on_epoch) stop |= hooks->on_epoch(hooks->ctx, &p);
        }
        if (stop) {
            res->stopped = 1;
            break;
        }
    }
    res->steps = step;
    res->epochs = cur_epoch + 1;
    res->train_seconds = train_time;
    res->images_per_second = train_time > 0 ? images / train_time : 0.0;
    res->final_loss = res->n_curve ? res->curve_loss[res->n_curve - 1] : NAN;
    if (o->save) {
        TRY(save_checkpoint(o->save, o, &oc, loss, dopts, data, tr, step, &aug, res, win_sum, win_n));
        if (hooks->on_checkpoint) hooks->on_checkpoint(hooks->ctx, o->save, step);
    }

    /* the test split: logits, probabilities, every metric */
    res->n_test = sp->n_test;
    if (sp->n_test > 0) {
        NEED(eval_test || (eval_test = lb_batcher_create(data->test, eval_batch, data->mean, data->std, NULL)));
        NEED(res->test_logits = lb_malloc((size_t)sp->n_test * C * sizeof(float)));
        NEED(res->test_labels = lb_malloc((size_t)sp->n_test * sizeof(int)));
        memcpy(res->test_labels, sp->test_y, (size_t)sp->n_test * sizeof(int));
        TRY(lb_predict(model, eval_g, eval_test, sp->test_idx, sp->n_test, res->test_logits));
        TRY(lb_softmax_rows(res->test_logits, (size_t)sp->n_test, C, scratch));
        NEED(counts64 = lb_malloc((size_t)C * sizeof(int64_t)));
        for (int k = 0; k < C; k++) counts64[k] = sp->train_counts[k];
        TRY(lb_metrics_from_scores(&res->test, scratch, sp->test_y, (size_t)sp->n_test, C, counts64, NULL));
    }
    /* the validation split's logits, for choosing post-hoc corrections without the test set */
    res->n_val = sp->n_val;
    if (sp->n_val > 0) {
        NEED(eval_train || (eval_train = lb_batcher_create(tds, eval_batch, data->mean, data->std, NULL)));
        NEED(res->val_logits = lb_malloc((size_t)sp->n_val * C * sizeof(float)));
        NEED(res->val_labels = lb_malloc((size_t)sp->n_val * sizeof(int)));
        memcpy(res->val_labels, sp->val_y, (size_t)sp->n_val * sizeof(int));
        TRY(lb_predict(model, eval_g, eval_train, sp->val_idx, sp->n_val, res->val_logits));
    }

done:
#undef TRY
#undef NEED
    res->wall_seconds = lb_now() - t0;
    lb_checkpoint_free(&ck);
    lb_free(scratch);
    lb_free(pred);
    lb_free(conf);
    lb_free(counts64);
    /* eval_g is the trainer's graph, freed with it */
    lb_batcher_free(batcher);
    lb_batcher_free(eval_train);
    lb_batcher_free(eval_test);
    lb_trainer_free(tr);
    lb_sampler_free(sampler);
    lb_loss_free(loss);
    lb_model_free(model);
    lb_data_free(owned);
    return rc;
}
