/* Shared inside src/losses: the built-in kinds and the per-sample math (plain functions over
 * float logits, computed in double, used by the loss nodes, lb_loss_eval and libra-losses). */
#ifndef LIBRA_LOSSES_INTERNAL_H
#define LIBRA_LOSSES_INTERNAL_H

#include "libra/losses.h"

/* Cross-entropy of softmax(a) against the target (label-smoothed by eps), where the adjusted
 * logits are a_c = scale * (z_c + offset_c - [c == y] margin_y) (offset, margin may be NULL).
 * dz gets dl/dz. ce, wce, ldam, logit_adjust and balanced_softmax are all this function. */
double lb__loss_softmax_ce(int C, const float *z, int y, const double *offset,
                          const double *margin, double scale, double eps, double *dz);
/* Softmax focal loss -(1 - p_y)^gamma log p_y (Lin et al.), unweighted. */
double lb__loss_softmax_focal(int C, const float *z, int y, double gamma, double *dz);
/* One-vs-all sigmoid focal loss summed over classes (torchvision's per-element term):
 * sum_c a_t pw_t (1 - p_t)^gamma (-log p_t), p_t = sigmoid(z_c) for c == y, else
 * 1 - sigmoid(z_c); a_t = alpha / 1 - alpha (alpha < 0: 1); pw_t = pos_weight[c] for the
 * positive term (pos_weight NULL: 1). gamma = 0, alpha < 0 is BCE with logits. */
double lb__loss_sigmoid_focal(int C, const float *z, int y, double gamma, double alpha,
                             const double *pos_weight, double *dz);

/* log(1 + e^x) without overflow. */
double lb__softplus(double x);

/* A loss: its kind, state, class weights and reduction (made by lb_loss_new_named). */
struct lb_loss {
    char name[32];
    const char *op;     /* the registry's copy of the name: outlives the loss, for tape nodes */
    const lb_loss_kind *kind;
    void *state;
    int C;
    lb_reduction reduction;
    double *weights;    /* C class weights, or NULL when the loss has none */
    double drw_frac;    /* switch weights on at this fraction of total_steps; < 0: not set */
    long drw_step;      /* ... or at this step; < 0: not set */
    char *spec;         /* canonical */
};

/* Whether the class weights are in force at this step (DRW switches them on late). */
int lb__loss_weights_on(const lb_loss *L, long step, long total, int *on);

/* The built-in kinds (one file per family). */
extern const lb_loss_kind lb__kind_ce, lb__kind_wce, lb__kind_ldam, lb__kind_logit_adjust,
    lb__kind_balanced_softmax;
extern const lb_loss_kind lb__kind_focal;
extern const lb_loss_kind lb__kind_bce, lb__kind_sigmoid_focal, lb__kind_cb_focal;

/* Counts must all be > 0 for losses that take logs or inverses of them. */
int lb__loss_check_counts(const lb_spec *spec, int n_classes, const int *counts);

/* What is known about the classes when a spec is made canonical: names (n_classes strings)
 * or NULL; need: a named list must be resolved (lb_loss_new*), else without names it is
 * kept, normalised (lb_loss_canonical). */
typedef struct {
    int n_classes;
    const char *const *names;
    int need;
} lb__class_names;

/* A per-class list given by class name ("Diseased:0.75,Healthy:0.25"): *named = 0 when value
 * is positional (nothing appended: use it as given). Otherwise appends to out the values in
 * class-index order ("0.75,0.25") when cn has names, or the items sorted by name with their
 * numbers in shortest form when it has none and need is 0. Errors (loss: key: ...) for a
 * list mixing both forms, an unknown class, a class given twice or missing, no names. */
int lb__loss_named_list(const char *loss, const char *key, const char *value, const lb__class_names *cn,
                        lb_buf *out, int *named);

#endif
