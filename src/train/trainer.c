/* The training step and batched prediction. */
#include "libra/train.h"

#include <math.h>
#include <string.h>

lb_trainer *lb_trainer_new(lb_model *m, const lb_optim_config *cfg, const lb_schedule *sched,
                           lb_loss_fn loss_fn, void *loss_ctx, long total_steps)
{
    if (!m || !cfg || !loss_fn) {
        lb_error(LB_EINVAL, "trainer: model, optimizer configuration and loss are required");
        return NULL;
    }
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
    long step = t->optim->step;
    int shape[4] = {n, m->in_c, m->in_h, m->in_w};
    lb_graph_reset(g);
    lb_model_set_training(m, 1);
    lb_node *logits = lb_model_forward(m, g, lb_input(g, 4, shape, x));
    if (!logits) {
        lb_error_prefix("step %ld", step);
        return LB_ESHAPE;
    }
    lb_node *loss = t->loss_fn(t->loss_ctx, g, logits, y, step, t->total_steps);
    if (!loss) {
        lb_error_prefix("step %ld: loss", step);
        return LB_EINVAL;
    }
    if (loss->size != 1) return lb_error(LB_ESHAPE, "step %ld: the loss has %zu values, not 1", step, loss->size);
    float v = loss->val[0];
    t->loss = v;
    if (!isfinite(v))
        return lb_error(LB_ENUMERIC, "step %ld: the loss is %g (lower the learning rate or clip gradients)", step, v);
    lb_params_zero_grad(m->params);
    int rc = lb_backward(g, loss);
    if (rc != LB_OK) return rc;
    t->lr = lb_schedule_lr(&t->schedule, step);
    return lb_optim_step(t->optim, m->params->data, m->params->grad, (float)t->lr);
}

int lb_predict(lb_model *m, lb_graph *g, lb_batcher *b, const int *idx, int n, float *logits)
{
    int was_training = m->training, C = lb_model_n_outputs(m), rc = LB_OK;
    lb_model_set_training(m, 0);
    lb_graph_set_grad(g, 0);
    for (int at = 0; at < n && rc == LB_OK; at += b->max_batch) {
        int k = n - at < b->max_batch ? n - at : b->max_batch;
        rc = lb_batcher_fill(b, idx + at, NULL, k, NULL);
        if (rc != LB_OK) break;
        int shape[4] = {k, b->c, b->h, b->w};
        lb_graph_reset(g);
        lb_node *y = lb_model_forward(m, g, lb_input(g, 4, shape, b->x));
        if (!y) rc = LB_ESHAPE;
        else memcpy(logits + (size_t)at * C, y->val, (size_t)k * C * sizeof(float));
    }
    lb_graph_reset(g);
    lb_graph_set_grad(g, 1);
    lb_model_set_training(m, was_training);
    return rc;
}
