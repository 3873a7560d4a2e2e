/* A dense task's training run (docs/dense.md): a fully convolutional model on generated
 * canvases, a loss per location divided by the batch's foreground count, the head's prior,
 * and average precision over test locations and images. */
#include "train/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *lb_dense_default_trunk(int stride, char *buf, size_t size)
{
    static const int width[] = {8, 16, 32, 32, 64, 64, 64, 64, 64, 64, 64, 64};
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0, s = 1; s < stride && i < 12 && at < size; i++, s *= 2)
        at += (size_t)snprintf(buf + at, size - at, "conv:%d,3;relu;pool:2;", width[i]);
    if (at < size) snprintf(buf + at, size - at, "conv:32,3;relu;conv:32,3;relu");
    return buf;
}

int lb_loss_is_one_vs_all(const char *spec)
{
    char name[64];
    size_t n = strcspn(spec, ":");
    if (n >= sizeof name) return 0;
    memcpy(name, spec, n);
    name[n] = '\0';
    const lb_loss_kind *k = lb_loss_find(name);
    return k && (k->flags & LB_LOSS_ONE_VS_ALL);
}

typedef struct dense_run {
    const lb_train_opts *o;
    const lb_dense_data *dd;
    lb_dense_record *res;
    const lb_train_hooks *hooks;
    int C, K;                /* object classes; outputs per location */
    lb_model *model;
    lb_loss *loss;
    lb_trainer *tr;
    lb_optim_config oc;
    lb_schedule sched;
    lb_graph *eval_g;
    float *x;                /* a batch of canvases, normalised */
    int *y;                  /* its targets [batch, gh, gw] */
    int *order;              /* the training canvases in this epoch's order */
    float *scores;           /* [n eval canvases, K, gh, gw] */
    lb_rng shuffle;
    lb_train_progress prog;  /* what the hooks see */
} dense_run;

static lb_node *dense_loss_adapter(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    return lb_loss_forward_dense(ctx, g, logits, targets, step, total, NULL);
}

/* Canvases idx[0..n) of s into r->x (normalised) and, when y is not NULL, their targets. */
static void fill_batch(const dense_run *r, const lb_dense_set *s, const int *idx, int n, float *x, int *y)
{
    size_t plane = (size_t)s->h * s->w, cells = (size_t)s->grid_h * s->grid_w;
    const float *mean = r->dd->mean, *sd = r->dd->std;
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < s->c; ch++) {
            const uint8_t *p = s->pixels + ((size_t)idx[i] * s->c + ch) * plane;
            float *q = x + ((size_t)i * s->c + ch) * plane, inv = 1.0f / sd[ch];
            for (size_t k = 0; k < plane; k++) q[k] = (p[k] / 255.0f - mean[ch]) * inv;
        }
        if (y) memcpy(y + i * cells, s->targets + (size_t)idx[i] * cells, cells * sizeof(int));
    }
}

static int build(dense_run *r)
{
    const lb_train_opts *o = r->o;
    const lb_dense_set *tr = &r->dd->train;
    const char *spec = o->loss ? o->loss : "sigmoid_focal";
    int ova = lb_loss_is_one_vs_all(spec), *counts = lb_malloc((size_t)(tr->n_classes + 1) * sizeof(int));
    if (!counts) return lb_error(LB_ENOMEM, "dense: out of memory");
    r->C = tr->n_classes;
    r->K = ova ? r->C : r->C + 1;
    r->res->one_vs_all = ova;
    lb_dense_location_counts(tr, counts);
    r->loss = lb_loss_new(spec, r->K, counts);
    lb_free(counts);
    if (!r->loss) return lb_last_status();
    if (!(r->model = lb_model_new_fcn(o->arch, tr->c, tr->h, tr->w, r->K, tr->stride, 3))) return lb_last_status();
    lb_init_kind ik;
    int rc = lb_init_parse(o->init ? o->init : "default", &ik);
    if (rc != LB_OK) return rc;
    lb_rng init;
    lb_rng_derive(&init, o->seed, LB_STREAM_INIT);
    lb_model_init(r->model, ik, &init);
    lb_rng_derive(&r->model->rng, o->seed, LB_STREAM_DROPOUT);
    lb_rng_derive(&r->shuffle, o->seed, LB_STREAM_SAMPLER);
    if (r->res->prior > 0 &&
        (rc = lb_model_prior_bias_dense(r->model, r->res->prior, ova ? LB_PRIOR_SIGMOID : LB_PRIOR_SOFTMAX)) != LB_OK)
        return rc;
    if ((rc = lb__train_optim_config(o, &r->oc)) != LB_OK) return rc;
    if ((rc = lb_schedule_parse(&r->sched, o->schedule, r->oc.lr, r->res->total_steps)) != LB_OK) return rc;
    if (!(r->tr = lb_trainer_new(r->model, &r->oc, &r->sched, dense_loss_adapter, r->loss, r->res->total_steps)))
        return lb_last_status();
    r->tr->nan_check = o->nan_check;
    return LB_OK;
}

static int alloc_buffers(dense_run *r)
{
    const lb_dense_data *dd = r->dd;
    int B = r->o->batch, E = r->o->eval_batch > 0 ? r->o->eval_batch : 256;
    int n_eval = dd->test.n > dd->val.n ? dd->test.n : dd->val.n, rows = B > E ? B : E;
    size_t cells = (size_t)dd->train.grid_h * dd->train.grid_w;
    r->x = lb_malloc((size_t)rows * dd->train.c * dd->train.h * dd->train.w * sizeof(float));
    r->y = lb_malloc((size_t)B * cells * sizeof(int));
    r->order = lb_malloc((size_t)dd->train.n * sizeof(int));
    r->scores = lb_malloc((size_t)n_eval * r->K * cells * sizeof(float));
    r->res->ap = lb_malloc((size_t)r->C * sizeof(double));
    r->res->image_ap = lb_malloc((size_t)r->C * sizeof(double));
    r->eval_g = lb_graph_new();
    long evals = r->o->eval_every > 0 ? r->res->total_steps / r->o->eval_every + 2 : 2;
    long logs = r->res->total_steps / (r->o->log_every > 0 ? r->o->log_every : 10) + 2;
    int rc = lb_curve_reserve(&r->res->loss, (size_t)logs);
    if (rc == LB_OK) rc = lb_curve_reserve(&r->res->val_map, (size_t)evals);
    if (rc != LB_OK) return rc;
    if (!r->x || !r->y || !r->order || !r->scores || !r->res->ap || !r->res->image_ap || !r->eval_g)
        return lb_error(LB_ENOMEM, "dense: out of memory for a batch of %d canvases", rows);
    for (int i = 0; i < dd->train.n; i++) r->order[i] = i;
    return LB_OK;
}

/* Probabilities of every canvas of s in r->scores: sigmoid of each output (one-vs-all) or the
 * softmax over the K outputs of a location. */
static int score_set(dense_run *r, const lb_dense_set *s)
{
    int E = r->o->eval_batch > 0 ? r->o->eval_batch : 256, rc = LB_OK, K = r->K;
    size_t cells = (size_t)s->grid_h * s->grid_w, per = (size_t)K * cells;
    int idx[1024];
    if (E > 1024) E = 1024;
    lb_graph_set_training(r->eval_g, 0);
    lb_graph_set_grad(r->eval_g, 0);
    for (int at = 0; at < s->n && rc == LB_OK; at += E) {
        int k = s->n - at < E ? s->n - at : E;
        for (int i = 0; i < k; i++) idx[i] = at + i;
        fill_batch(r, s, idx, k, r->x, NULL);
        int shape[4] = {k, s->c, s->h, s->w};
        lb_graph_reset(r->eval_g);
        lb_node *z = lb_model_forward(r->model, r->eval_g, lb_input(r->eval_g, 4, shape, r->x));
        if (!z) return lb_last_status();
        memcpy(r->scores + (size_t)at * per, z->val, (size_t)k * per * sizeof(float));
    }
    lb_graph_reset(r->eval_g);
    for (size_t i = 0; i < (size_t)s->n; i++) {
        float *p = r->scores + i * per;
        if (r->res->one_vs_all) {
            for (size_t j = 0; j < per; j++) p[j] = 1.0f / (1.0f + expf(-p[j]));
            continue;
        }
        for (size_t l = 0; l < cells; l++) {
            float mx = p[l];
            for (int c = 1; c < K; c++) mx = p[c * cells + l] > mx ? p[c * cells + l] : mx;
            double sum = 0;
            for (int c = 0; c < K; c++) sum += (p[c * cells + l] = expf(p[c * cells + l] - mx));
            for (int c = 0; c < K; c++) p[c * cells + l] = (float)(p[c * cells + l] / sum);
        }
    }
    return rc;
}

static int average_precision(dense_run *r, const lb_dense_set *s, double *ap, double *image_ap, lb_dense_ap *out)
{
    int rc = score_set(r, s);
    if (rc != LB_OK) return rc;
    return lb_dense_average_precision(r->scores, s->targets, s->n, r->K, s->grid_h, s->grid_w, r->C, ap, image_ap,
                                      out);
}

/* The next batch of the shuffled training canvases (a new order every epoch). */
static void next_batch(dense_run *r, long step, int B)
{
    const lb_dense_set *tr = &r->dd->train;
    int idx[1024], n = tr->n;
    for (int i = 0; i < B; i++) {
        long k = (step * B + i) % n;
        if (k == 0) lb_rng_shuffle(&r->shuffle, r->order, (size_t)n);
        idx[i] = r->order[k];
    }
    fill_batch(r, tr, idx, B, r->x, r->y);
}

static int evaluate_point(dense_run *r, long step)
{
    if (r->dd->val.n == 0) return LB_OK;
    lb_dense_ap m;
    int rc = average_precision(r, &r->dd->val, NULL, NULL, &m);
    if (rc == LB_OK) rc = lb_curve_append(&r->res->val_map, step, (float)m.mean_ap);
    return rc;
}

/* What the hooks see after `step` steps (an epoch is a pass over the training canvases);
 * *ep_sum: the losses of this epoch's steps so far, reset when an epoch begins. */
static const lb_train_progress *progress(dense_run *r, long step, double t0, double *ep_sum)
{
    lb_train_progress *p = &r->prog;
    long per = (r->dd->train.n + r->o->batch - 1) / r->o->batch, total = r->res->total_steps;
    double el = lb_now() - t0;
    int epoch = (int)((step - 1) / per);
    long in_epoch = step - (long)epoch * per;
    *p = (lb_train_progress){.step = step, .total_steps = total, .epoch = epoch, .epochs = (int)((total + per - 1) / per),
                            .steps_per_epoch = per, .loss = r->tr->loss, .loss_avg = *ep_sum / (double)in_epoch,
                            .lr = r->tr->lr, .images_per_second = el > 0 ? (double)step * r->o->batch / el : 0,
                            .elapsed = el, .eta = step > 0 ? el * (double)(total - step) / (double)step : 0,
                            .monitor_acc = NAN, .monitor_bacc = NAN};
    if (in_epoch == per) *ep_sum = 0;
    return p;
}

/* One step, and what it adds to the loss curve; a non-finite loss or gradient ends training
 * there (res->diverged_step), which is a result of the run, not an error. */
static int train_steps(dense_run *r)
{
    const lb_train_opts *o = r->o;
    lb_dense_record *res = r->res;
    long every = o->log_every > 0 ? o->log_every : 10, total = res->total_steps, n_win = 0;
    double win = 0, ep_sum = 0, t0 = lb_now();
    int B = o->batch;
    for (long s = 0; s < total; s++) {
        next_batch(r, s, B);
        int rc = lb_trainer_step(r->tr, r->x, r->y, B);
        if (rc == LB_ENUMERIC) {
            res->diverged_step = s + 1;
            snprintf(res->diverged_reason, sizeof res->diverged_reason, "%s", lb_last_error());
            lb_clear_error();
            break;
        }
        if (rc != LB_OK) return rc;
        res->steps = s + 1;
        win += r->tr->loss;
        if (++n_win == every || s + 1 == total) {
            if ((rc = lb_curve_append(&res->loss, s + 1, (float)(win / n_win))) != LB_OK) return rc;
            win = 0, n_win = 0;
        }
        int eval_now = o->eval_every > 0 && ((s + 1) % o->eval_every == 0 || s + 1 == total);
        if (eval_now && (rc = evaluate_point(r, s + 1)) != LB_OK) return rc;
        ep_sum += r->tr->loss;
        if (r->hooks && r->hooks->on_step && r->hooks->on_step(r->hooks->ctx, progress(r, s + 1, t0, &ep_sum))) break;
    }
    res->train_seconds = lb_now() - t0;
    res->images_per_second = res->train_seconds > 0 ? (double)res->steps * B / res->train_seconds : 0;
    return LB_OK;
}

/* Test AP, and the heat maps of the first n_maps test canvases. */
static int test_metrics(dense_run *r, int n_maps)
{
    lb_dense_record *res = r->res;
    const lb_dense_set *te = &r->dd->test;
    lb_dense_ap m;
    int rc = average_precision(r, te, res->ap, res->image_ap, &m);
    if (rc != LB_OK) return rc;
    res->mean_ap = m.mean_ap;
    res->image_mean_ap = m.image_mean_ap;
    res->n_maps = n_maps < te->n ? n_maps : te->n;
    size_t cells = (size_t)te->grid_h * te->grid_w, per = (size_t)r->K * cells;
    if (res->n_maps <= 0) return LB_OK;
    if (!(res->maps = lb_malloc((size_t)res->n_maps * r->C * cells * sizeof(float))))
        return lb_error(LB_ENOMEM, "dense: out of memory for heat maps");
    for (int i = 0; i < res->n_maps; i++)
        memcpy(res->maps + (size_t)i * r->C * cells, r->scores + i * per, (size_t)r->C * cells * sizeof(float));
    return LB_OK;
}

static void dense_run_free(dense_run *r)
{
    lb_trainer_free(r->tr);
    lb_loss_free(r->loss);
    lb_model_free(r->model);
    lb_graph_free(r->eval_g);
    lb_free(r->x);
    lb_free(r->y);
    lb_free(r->order);
    lb_free(r->scores);
}

static int check_opts(const lb_train_opts *o, const lb_data *d)
{
    if (!d || !d->dense) return lb_error(LB_EINVAL, "dense: the data is not a dense task (give --data dense:SOURCE,...)");
    if (o->batch < 1 || o->batch > 1024) return lb_error(LB_EINVAL, "dense: batch %d must be in [1, 1024]", o->batch);
    if (o->steps <= 0) return lb_error(LB_EINVAL, "dense: give a step budget (steps > 0)");
    if (o->mix || o->stages || o->keep_best || o->patience > 0 || o->shards > 1 || o->reducer || o->resume ||
        o->save || (o->sampler && strcmp(o->sampler, "shuffle") != 0) || o->augment.crop_pad || o->augment.hflip)
        return lb_error(LB_EINVAL, "dense: samplers, mixing, stages, augmentation, keep best, patience, shards, "
                                   "checkpoints and resume are for classification; a dense run takes none of them");
    return LB_OK;
}

int lb_dense_train(const lb_train_opts *o, const lb_data *d, double prior, int n_maps, const lb_train_hooks *hooks,
                   lb_dense_record *res)
{
    double t0 = lb_now();
    memset(res, 0, sizeof *res);
    int rc = check_opts(o, d);
    if (rc != LB_OK) return rc;
    if (!(prior >= 0 && prior < 1)) return lb_error(LB_EINVAL, "dense: prior %g must be in [0, 1) (0: off)", prior);
    if (o->threads > 0 && lb_set_threads(o->threads) != LB_OK) return lb_last_status();
    res->seed = o->seed;
    res->prior = prior;
    lb_buf canon = {0};
    rc = lb_loss_canonical(o->loss ? o->loss : "sigmoid_focal", &canon);
    if (rc != LB_OK) return rc;
    res->loss_spec = canon.p;
    res->total_steps = o->steps;
    res->foreground_share = d->dense->train.foreground_share;
    res->test_foreground_share = d->dense->test.foreground_share;
    res->grid_h = d->dense->test.grid_h, res->grid_w = d->dense->test.grid_w;
    res->mean_ap = res->image_mean_ap = NAN;
    dense_run r = {.o = o, .dd = d->dense, .res = res, .hooks = hooks};
    rc = build(&r);
    res->n_classes = r.C;
    if (rc == LB_OK) rc = alloc_buffers(&r);
    if (rc == LB_OK) rc = train_steps(&r);
    if (rc == LB_OK && !res->diverged_step) rc = test_metrics(&r, n_maps);
    if (rc == LB_OK && res->diverged_step)
        for (int c = 0; c < r.C; c++) res->ap[c] = res->image_ap[c] = NAN;
    if (rc == LB_OK) res->param_hash = lb_model_hash(r.model);
    res->final_loss = res->loss.n ? res->loss.value[res->loss.n - 1] : NAN;
    res->wall_seconds = lb_now() - t0;
    dense_run_free(&r);
    return rc;
}
