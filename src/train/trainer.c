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
    lb_free(t);
}

int lb_trainer_step(lb_trainer *t, float *x, const int *y, int n)
{
    lb_model *m = t->model;
    lb_graph *g = t->graph;
    long step = t->optim->step, nth = step + 1; /* messages count from 1, as progress does */
    int shape[4] = {n, m->in_c, m->in_h, m->in_w};
    lb_graph_reset(g);
    lb_graph_set_training(g, 1);
    lb_node *logits = lb_model_forward(m, g, lb_input(g, 4, shape, x));
    if (!logits) {
        lb_error_prefix("step %ld", nth);
        return lb_last_status();
    }
    lb_node *loss = t->loss_fn(t->loss_ctx, g, logits, y, step, t->total_steps);
    char where[160];
    if (!loss) {
        /* non-finite logits make the loss's refusal a numeric failure, not a bad argument */
        locate_non_finite(m, g, where, sizeof where);
        lb_error_prefix("step %ld: %sloss", nth, where);
        return *where ? LB_ENUMERIC : lb_last_status();
    }
    if (loss->size != 1) return lb_error(LB_ESHAPE, "step %ld: the loss has %zu values, not 1", nth, loss->size);
    float v = loss->val[0];
    t->loss = v;
    if (!isfinite(v)) {
        locate_non_finite(m, g, where, sizeof where);
        return lb_error(LB_ENUMERIC, "step %ld: the loss is %g; %s(lower the learning rate or clip gradients)", nth,
                        v, where);
    }
    lb_params_zero_grad(m->params);
    int rc = lb_backward(g, loss);
    if (rc != LB_OK) return rc;
    lb_params *p = m->params;
    if (t->nan_check && !all_finite(p->grad, p->size))
        return non_finite_error(p, p->grad, nth, "gradient", "; parameters left unchanged");
    t->lr = lb_schedule_lr(&t->schedule, step);
    rc = lb_optim_step(t->optim, p->data, p->grad, (float)t->lr);
    if (rc != LB_OK || !t->nan_check) return rc;
    /* finite gradients can still overflow a parameter (a huge learning rate) */
    if (!all_finite(p->data, p->size))
        return non_finite_error(p, p->data, nth, "parameter", " after the update (lower the learning rate)");
    if (!all_finite(m->state, m->state_size))
        return lb_error(LB_ENUMERIC, "step %ld: non-finite batchnorm running statistics", nth);
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
