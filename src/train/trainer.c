/* The training step, its optimizer settings and batched prediction. */
#include "train/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* 1 if x[0..n) holds no NaN or Inf. On the bits (an all-ones exponent is Inf or NaN), with
 * no branch in the loop, so it vectorises: the check costs a small fraction of a step. */
static int all_finite(const float *x, size_t n)
{
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        acc |= (u & 0x7f800000u) + 0x00800000u; /* carries into bit 31 only for 0xff */
    }
    return !(acc & 0x80000000u);
}

/* The error for a non-finite value in buf (the parameters' values or gradients): names the
 * first parameter tensor affected, in model order, and how many are. */
static int non_finite_error(const lb_params *p, const float *buf, long step, const char *what, const char *after)
{
    int first = -1, count = 0;
    for (int i = 0; i < p->count; i++)
        if (!all_finite(buf + p->info[i].offset, p->info[i].size)) {
            if (first < 0) first = i;
            count++;
        }
    const char *name = first >= 0 ? p->info[first].name : "?";
    if (count > 1)
        return lb_error(LB_ENUMERIC, "step %ld: non-finite %s in %s (and %d more of %d parameter tensors)%s", step,
                        what, name, count - 1, p->count, after);
    return lb_error(LB_ENUMERIC, "step %ld: non-finite %s in %s%s", step, what, name, after);
}

/* The parameter tensor whose values x points into, or -1. */
static int param_of(const lb_params *p, const float *x)
{
    for (int i = 0; i < p->count; i++)
        if (x == p->data + p->info[i].offset) return i;
    return -1;
}

/* Where a forward pass first produced a NaN or Inf: the first node on the tape (which is in
 * execution order) with a non-finite value, named by the layer whose parameter it reads.
 * Writes "" if every value is finite. Only runs after a failure, so its cost does not matter. */
static void locate_non_finite(const lb_model *m, const lb_graph *g, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < lb_graph_n_nodes(g); i++) {
        const lb_node *x = lb_graph_node(g, i);
        if (!x->val || all_finite(x->val, x->size)) continue;
        int k = strcmp(x->op, "param") == 0 ? param_of(m->params, x->val) : -1;
        for (int j = 0; j < x->n_in && k < 0; j++)
            if (x->in[j] && strcmp(x->in[j]->op, "param") == 0) k = param_of(m->params, x->in[j]->val);
        if (k >= 0) {
            const char *name = m->params->info[k].name, *dot = strchr(name, '.');
            snprintf(buf, n, "the forward pass is first non-finite at layer %.*s (op %s); ",
                     dot ? (int)(dot - name) : (int)strlen(name), name, x->op);
        } else if (strcmp(x->op, "input") == 0)
            snprintf(buf, n, "the input batch is not finite; ");
        else
            snprintf(buf, n, "the forward pass is first non-finite at op %s (tape node %d); ", x->op, i);
        return;
    }
}

static void free_workers(lb_trainer *t);

lb_trainer *lb_trainer_new(lb_model *m, const lb_optim_config *cfg, const lb_schedule *sched,
                           lb_loss_fn loss_fn, void *loss_ctx, long total_steps)
{
    if (!m || !cfg || !loss_fn) {
        lb_error(LB_EINVAL, "trainer: model, optimizer configuration and loss are required");
        return NULL;
    }
    if (lb_set_threads(lb_get_threads()) != LB_OK) return NULL; /* OpenBLAS's buffers made certain */
    lb_trainer *t = lb_calloc(1, sizeof *t);
    if (!t) {
        lb_error(LB_ENOMEM, "trainer: out of memory");
        return NULL;
    }
    t->model = m;
    t->schedule = sched ? *sched : lb_schedule_constant(cfg->lr);
    t->loss_fn = loss_fn;
    t->loss_ctx = loss_ctx;
    t->total_steps = total_steps;
    t->loss = NAN;
    t->nan_check = 1;
    t->shards = 1;
    if (!(t->optim = lb_optim_new(cfg, m->params->size)) || !(t->graph = lb_graph_new())) {
        lb_trainer_free(t);
        return NULL;
    }
    return t;
}

void lb_trainer_free(lb_trainer *t)
{
    if (!t) return;
    lb_optim_free(t->optim);
    lb_graph_free(t->graph);
    lb_tree_acc_free(&t->acc);
    lb_tree_acc_free(&t->acc_loss);
    lb_free(t->reduce_buf);
    free_workers(t);
    lb_free(t);
}

/* Forward, loss and backward of the images x [n] into the zeroed gradient buffer; *loss_out
 * gets the loss's value once there is one. at names the step (and shard) in messages. With
 * the shard loss (sharded), y is the whole batch's n_batch targets and x its rows [lo, lo+n). */
static int forward_backward(lb_trainer *t, lb_model *m, lb_graph *g, float *x, const int *y, int lo, int n,
                            int n_batch, int sharded, const char *at, float *loss_out)
{
    long step = t->optim->step;
    int shape[4] = {n, m->in_c, m->in_h, m->in_w};
    lb_graph_reset(g);
    lb_graph_set_training(g, 1);
    lb_node *logits = lb_model_forward(m, g, lb_input(g, 4, shape, x));
    if (!logits) {
        lb_error_prefix("%s", at);
        return lb_last_status();
    }
    lb_node *loss = sharded ? t->shard_loss_fn(t->loss_ctx, g, logits, y, lo, n_batch, step, t->total_steps)
                            : t->loss_fn(t->loss_ctx, g, logits, y, step, t->total_steps);
    char where[160];
    if (!loss) {
        /* non-finite logits make the loss's refusal a numeric failure, not a bad argument */
        locate_non_finite(m, g, where, sizeof where);
        lb_error_prefix("%s: %sloss", at, where);
        return *where ? LB_ENUMERIC : lb_last_status();
    }
    if (loss->size != 1) return lb_error(LB_ESHAPE, "%s: the loss has %zu values, not 1", at, loss->size);
    float v = loss->val[0];
    *loss_out = v;
    if (!isfinite(v)) {
        locate_non_finite(m, g, where, sizeof where);
        return lb_error(LB_ENUMERIC, "%s: the loss is %g; %s(lower the learning rate or clip gradients)", at, v,
                        where);
    }
    lb_params_zero_grad(m->params);
    return lb_backward(g, loss);
}

/* The update from the gradient in the parameters' buffer: checks, learning rate, optimizer. */
static int apply_update(lb_trainer *t, long nth)
{
    lb_model *m = t->model;
    lb_params *p = m->params;
    long step = t->optim->step;
    if (t->nan_check && !all_finite(p->grad, p->size))
        return non_finite_error(p, p->grad, nth, "gradient", "; parameters left unchanged");
    t->lr = lb_schedule_lr(&t->schedule, step);
    int rc = lb_optim_step(t->optim, p->data, p->grad, (float)t->lr);
    if (rc != LB_OK || !t->nan_check) return rc;
    /* finite gradients can still overflow a parameter (a huge learning rate) */
    if (!all_finite(p->data, p->size))
        return non_finite_error(p, p->data, nth, "parameter", " after the update (lower the learning rate)");
    if (!all_finite(m->state, m->state_size))
        return lb_error(LB_ENUMERIC, "step %ld: non-finite batchnorm running statistics", nth);
    return LB_OK;
}

/* The ranks this trainer's steps are shared with (1 without a reducer). */
static int n_ranks(const lb_trainer *t) { return t->reducer ? t->reducer->size : 1; }

/* Shard s of the batch of n on model view m and graph g: its gradient in m->params->grad and
 * its loss in *v (an empty shard: zeros). */
static int shard_gradient(lb_trainer *t, lb_model *m, lb_graph *g, float *x, const int *y, int n, int s, long nth,
                          float *v)
{
    int lo, hi;
    lb_split_range(n, s, t->shards, &lo, &hi);
    *v = 0.0f;
    if (hi == lo) {
        lb_params_zero_grad(m->params);
        return LB_OK;
    }
    char at[64];
    snprintf(at, sizeof at, "step %ld, shard %d of %d", nth, s + 1, t->shards);
    size_t image = (size_t)m->in_c * m->in_h * m->in_w;
    return forward_backward(t, m, g, x + (size_t)lo * image, y, lo, hi - lo, n, 1, at, v);
}

/* One thread's share of a rank's shards (lb_parallel part w computes one shard per round).
 * Worker 0 is the trainer's own model and graph; the others own a graph, a gradient buffer
 * and a view of the model: its layers and parameter values, their own gradient, layer
 * outputs and dropout RNG. */
typedef struct lb_shard_worker lb_shard_worker;
struct lb_shard_worker {
    lb_model *m;
    lb_graph *g;
    lb_model view;
    lb_params params;
    lb_node **outs;
    float *grad;
    int rc;
    float v;
    char msg[1024];
};

static void free_workers(lb_trainer *t)
{
    for (int i = 1; i < t->n_workers; i++) {
        lb_graph_free(t->workers[i].g);
        lb_free(t->workers[i].outs);
        lb_free(t->workers[i].grad);
    }
    lb_free(t->workers);
    t->workers = NULL;
    t->n_workers = 0;
}

/* n workers (at least), views refreshed from the model; LB_ENOMEM names what was missing. */
static int ready_workers(lb_trainer *t, int n)
{
    lb_model *m = t->model;
    if (t->n_workers < n) {
        free_workers(t);
        if (!(t->workers = lb_calloc((size_t)n, sizeof *t->workers)))
            return lb_error(LB_ENOMEM, "trainer: out of memory for %d shard workers", n);
        t->n_workers = n;
        for (int i = 1; i < n; i++) {
            lb_shard_worker *w = &t->workers[i];
            w->g = lb_graph_new();
            w->outs = lb_calloc((size_t)m->cap_layers + 1, sizeof *w->outs);
            w->grad = lb_malloc(m->params->size * sizeof(float) + 1);
            if (!w->g || !w->outs || !w->grad) {
                free_workers(t);
                return lb_error(LB_ENOMEM, "trainer: out of memory for a shard worker (%zu gradient floats)",
                                m->params->size);
            }
            lb_graph_set_training(w->g, 1);
        }
    }
    t->workers[0].m = m;
    t->workers[0].g = t->graph;
    for (int i = 1; i < t->n_workers; i++) {
        lb_shard_worker *w = &t->workers[i];
        w->params = *m->params;
        w->params.grad = w->grad;
        w->view = *m;
        w->view.params = &w->params;
        w->view.outs = w->outs;
        w->m = &w->view;
    }
    return LB_OK;
}

typedef struct {
    lb_trainer *t;
    float *x;
    const int *y;
    int n, first; /* the batch size; the round's first shard */
    long nth;
    uint64_t key; /* the step's dropout draw */
} shard_round;

static void shard_part(void *arg, int part, int n_parts)
{
    (void)n_parts;
    const shard_round *r = arg;
    lb_shard_worker *w = &r->t->workers[part];
    int s = r->first + part;
    lb_rng_derive(&w->m->rng, r->key, (uint64_t)s);
    w->rc = shard_gradient(r->t, w->m, w->g, r->x, r->y, r->n, s, r->nth, &w->v);
    if (w->rc != LB_OK) snprintf(w->msg, sizeof w->msg, "%s", lb_last_error());
}

/* This rank's block of shards into the tree, in rounds of one shard per thread (each shard
 * on one thread, so the bits do not depend on the thread count): afterwards p->grad holds
 * the block's gradient and *loss its loss. Dropout draws from a stream keyed by the shard. */
static int block_gradient(lb_trainer *t, float *x, const int *y, int n, long nth, float *loss)
{
    lb_model *m = t->model;
    int per = t->shards / n_ranks(t), first = (t->reducer ? t->reducer->rank : 0) * per;
    int W = lb_get_threads() < per ? lb_get_threads() : per, rc = ready_workers(t, W);
    lb_rng stream = m->rng;
    shard_round r = {t, x, y, n, first, nth, lb_rng_next(&stream)};
    for (int done = 0; done < per && rc == LB_OK; done += W) {
        int parts = per - done < W ? per - done : W;
        r.first = first + done;
        lb_parallel(parts, shard_part, &r);
        for (int i = 0; i < parts && rc == LB_OK; i++) /* the lowest failing shard's message */
            if ((rc = t->workers[i].rc) != LB_OK) lb_error(rc, "%s", t->workers[i].msg);
        for (int i = 0; i < parts && rc == LB_OK; i++) {
            lb_shard_worker *w = &t->workers[i];
            float *grad = w->m->params->grad;
            if (lb_tree_acc_push(&t->acc, grad) && grad != m->params->grad) /* the total, in worker i's */
                memcpy(m->params->grad, grad, m->params->size * sizeof(float));
            lb_tree_acc_push(&t->acc_loss, &w->v);
            *loss = w->v;
        }
    }
    m->rng = stream;
    t->acc.count = t->acc_loss.count = 0; /* a failed block starts over at the next step */
    return rc;
}

/* The block sums of every rank, gradient and loss in one message, through the reducer's
 * tree. A rank whose block failed sends NaN, so every rank stops at this step (it with its
 * own message, the others on the non-finite loss). */
static int reduce_ranks(lb_trainer *t, int failed, float *loss)
{
    lb_params *p = t->model->params;
    float *b = t->reduce_buf;
    if (failed)
        for (size_t i = 0; i <= p->size; i++) b[i] = NAN;
    else {
        memcpy(b, p->grad, p->size * sizeof(float));
        b[p->size] = *loss;
    }
    int rc = t->reducer->tree_sum(t->reducer->ctx, b, p->size + 1);
    if (rc != LB_OK) return rc;
    memcpy(p->grad, b, p->size * sizeof(float));
    *loss = b[p->size];
    return LB_OK;
}

/* The data-parallel step (lb_trainer_set_shards). */
static int sharded_step(lb_trainer *t, float *x, const int *y, int n)
{
    long nth = t->optim->step + 1;
    float loss = NAN;
    if (n < 1) return lb_error(LB_ESHAPE, "step %ld: a batch of %d images", nth, n);
    int rc = block_gradient(t, x, y, n, nth, &loss);
    if (n_ranks(t) > 1) {
        char mine[1024];
        snprintf(mine, sizeof mine, "%s", lb_last_error());
        int red = reduce_ranks(t, rc != LB_OK, &loss);
        if (rc != LB_OK) return lb_error(rc, "%s", mine);
        if (red != LB_OK) return red;
    }
    if (rc != LB_OK) return rc;
    t->loss = loss;
    if (!isfinite(loss))
        return lb_error(LB_ENUMERIC, "step %ld: the loss of the batch is %g%s; parameters left unchanged", nth, loss,
                        n_ranks(t) > 1 ? " (when a rank's shard failed, that rank's message says why)" : "");
    return apply_update(t, nth);
}

int lb_trainer_step(lb_trainer *t, float *x, const int *y, int n)
{
    if (t->shards > 1 || n_ranks(t) > 1) return sharded_step(t, x, y, n);
    long nth = t->optim->step + 1; /* messages count from 1, as progress does */
    char at[32];
    snprintf(at, sizeof at, "step %ld", nth);
    int rc = forward_backward(t, t->model, t->graph, x, y, 0, n, n, 0, at, &t->loss);
    return rc == LB_OK ? apply_update(t, nth) : rc;
}

/* Powers of two (shards, ranks), the reducer's parts, and no batch norm with shards > 1. */
int lb__check_shards(int shards, const lb_reducer *r, const lb_model *m)
{
    if (shards < 1 || (shards & (shards - 1)))
        return lb_error(LB_EINVAL, "shards=%d is not a power of two (1, 2, 4, 8, ...)", shards);
    if (r) {
        if (r->size < 1 || (r->size & (r->size - 1)))
            return lb_error(LB_EINVAL, "%d ranks: data-parallel training needs a power of two", r->size);
        if (r->size > shards)
            return lb_error(LB_EINVAL, "%d ranks but shards=%d: each rank needs at least one shard (shards >= ranks)",
                            r->size, shards);
        if (r->rank < 0 || r->rank >= r->size || !r->tree_sum || !r->same_everywhere)
            return lb_error(LB_EINVAL, "reducer: rank %d of %d, or a missing tree_sum / same_everywhere", r->rank,
                            r->size);
    }
    for (int i = 0; m && shards > 1 && i < m->n_layers; i++)
        if (m->layers[i].kind == LB_LAYER_BATCHNORM2D)
            return lb_error(LB_EINVAL, "shards=%d: layer %s is a batch norm, whose statistics are the whole batch's: "
                                       "refused with shards > 1 until synchronised batch norm exists", shards,
                            m->layers[i].name);
    return LB_OK;
}

/* Back to the plain step, with nothing of the shards kept. */
static void plain_steps(lb_trainer *t)
{
    lb_tree_acc_free(&t->acc);
    lb_tree_acc_free(&t->acc_loss);
    lb_free(t->reduce_buf);
    t->reduce_buf = NULL;
    free_workers(t);
    t->shards = 1;
    t->reducer = NULL;
    t->shard_loss_fn = NULL;
}

int lb_trainer_set_shards(lb_trainer *t, int shards, const lb_reducer *r, lb_shard_loss_fn loss_fn)
{
    int rc = lb__check_shards(shards, r, t->model), K = r ? r->size : 1;
    if (rc != LB_OK) return rc;
    if ((shards > 1 || K > 1) && !loss_fn)
        return lb_error(LB_EINVAL, "shards=%d: the shards need a loss normalised over the whole batch (loss_fn)", shards);
    plain_steps(t);
    size_t P = t->model->params->size;
    if ((rc = lb_tree_acc_init(&t->acc, shards / K, P)) == LB_OK) rc = lb_tree_acc_init(&t->acc_loss, shards / K, 1);
    if (rc == LB_OK && K > 1 && !(t->reduce_buf = lb_malloc((P + 1) * sizeof(float))))
        rc = lb_error(LB_ENOMEM, "trainer: out of memory for the ranks' gradient (%zu floats)", P + 1);
    if (rc != LB_OK) {
        plain_steps(t); /* a failure leaves the plain step */
        return rc;
    }
    t->shards = shards;
    t->reducer = r;
    t->shard_loss_fn = loss_fn;
    return LB_OK;
}

int lb_trainer_check_ranks(lb_trainer *t)
{
    const lb_reducer *r = t->reducer;
    if (!r || r->size <= 1) return LB_OK;
    uint64_t h = lb_model_hash(t->model);
    int same = r->same_everywhere(r->ctx, &h, sizeof h);
    if (same < 0) return same;
    if (!same)
        return lb_error(LB_ESTATE, "step %ld: the parameters differ across the %d ranks (hash %016llx on rank %d): "
                                   "the ranks no longer train one model", t->optim->step, r->size,
                        (unsigned long long)h, r->rank);
    return LB_OK;
}

int lb_predict(lb_model *m, lb_graph *g, lb_batcher *b, const int *idx, int n, float *logits)
{
    int was_training = lb_graph_training(g), C = lb_model_n_outputs(m), rc = lb_set_threads(lb_get_threads());
    lb_graph_set_training(g, 0);
    lb_graph_set_grad(g, 0);
    for (int at = 0; at < n && rc == LB_OK; at += b->max_batch) {
        int k = n - at < b->max_batch ? n - at : b->max_batch;
        rc = lb_batcher_fill(b, idx + at, NULL, k, NULL);
        if (rc != LB_OK) break;
        int shape[4] = {k, b->c, b->h, b->w};
        lb_graph_reset(g);
        lb_node *y = lb_model_forward(m, g, lb_input(g, 4, shape, b->x));
        if (!y) rc = lb_last_status();
        else memcpy(logits + (size_t)at * C, y->val, (size_t)k * C * sizeof(float));
    }
    lb_graph_reset(g);
    lb_graph_set_grad(g, 1);
    lb_graph_set_training(g, was_training);
    return rc;
}

int lb__train_optim_config(const lb_train_opts *o, lb_optim_config *c)
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
