/* Shared by the files of src/train (not part of the public API). */
#ifndef LIBRA_TRAIN_INTERNAL_H
#define LIBRA_TRAIN_INTERNAL_H

#include "libra/losses.h"
#include "libra/train.h"

/* The optimizer settings of o, the optimizer's defaults resolved (SGD's momentum 0.9 unless
 * given): what lb_train_run and the stages' classifier training use. */
int lb__train_optim_config(const lb_train_opts *o, lb_optim_config *c);

/* The data-parallel checks shared by lb_trainer_set_shards and lb_train_check_shards: shards
 * and the reducer's size powers of two, size <= shards, and (m given) no batch norm layer
 * when shards > 1. */
int lb__check_shards(int shards, const lb_reducer *r, const lb_model *m);

/* lws: the loss of a batch of logits u [n, C] scaled per class by the parameter `scale` [C]
 * (cross-entropy of scale * u), on the tape. Exposed for the gradient test. */
lb_node *lb__stage_lws_loss(lb_graph *g, lb_params *scale, lb_loss *ce, float *u, const int *y, int n, int C);

#endif
