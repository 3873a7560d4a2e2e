/* libra losses: a registry of losses named by spec strings ("focal:gamma=2,alpha=0.75,0.25"),
 * each a scalar node on the tape with a closed-form backward.
 *
 * Every loss takes logits [N, C] and integer targets in [0, C), never probabilities. A loss
 * is a per-sample function l(z_i, y_i) with its gradient dl/dz_i; libra multiplies it by the
 * class weight w_{y_i} when the loss has class weights (weights=, alpha=, DRW) and reduces:
 *   mean: sum_i w_{y_i} l_i / sum_i d_i, with d_i = w_{y_i} for losses whose mean follows
 *         PyTorch's weighted mean (wce, ldam, logit_adjust, balanced_softmax, custom losses
 *         that ask for it) and d_i = 1 otherwise (ce, bce, focal, sigmoid_focal, cb_focal);
 *   sum:  sum_i w_{y_i} l_i;
 *   none: the per-sample values w_{y_i} l_i (lb_loss_forward then returns an [N] node).
 * docs/losses.md has every formula, default, reduction and source paper.
 *
 *   lb_loss *L = lb_loss_new("focal:gamma=2,alpha=0.25", C, train_counts);
 *   if (!L) { puts(lb_last_error()); return lb_last_status(); }
 *   lb_node *loss = lb_loss_forward(L, g, logits, targets, step, total_steps);
 *   lb_backward(g, loss);
 *   lb_loss_free(L);
 */
#ifndef LIBRA_LOSSES_H
#define LIBRA_LOSSES_H

#include "libra/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Specs ("name:key=value,...") are parsed by the base layer's lb_spec (libra/base.h). */

/* ---- losses ---- */
typedef struct lb_loss lb_loss;

/* Parses a spec such as "focal:gamma=2,alpha=0.25". class_counts (n_classes ints, the training
 * set's counts) may be NULL only for losses that do not need them; the error names the loss.
 * Unknown names, unknown keys and out-of-range values are errors naming the key.
 * An lb_loss keeps a small scratch buffer: use one from one thread at a time.
 * Same as lb_loss_new_named(spec, n_classes, class_counts, NULL). */
lb_loss *lb_loss_new(const char *spec, int n_classes, const int *class_counts);
/* The same, with the classes' names (n_classes strings, or NULL), so that a per-class list
 * (alpha of focal, weights of wce, cb_focal, ldam, logit_adjust, balanced_softmax and user
 * losses, pos_weight of bce) may be given by class name in any order:
 * "focal:gamma=2,alpha=Diseased:0.75,Healthy:0.25". A list is all positional (class-index
 * order) or all NAME:VALUE, every class exactly once; names match exactly (case-sensitive,
 * may hold blanks or '/', not ',' ':' '=' '|'; blanks around a name are ignored). Errors name
 * an unknown class (listing the known ones), a class given twice, a missing class, or say
 * that class names are not known (class_names NULL). lb_loss_spec then has the positional
 * form, so both ways of writing the list give the same canonical spec. */
lb_loss *lb_loss_new_named(const char *spec, int n_classes, const int *class_counts,
                           const char *const *class_names);
void lb_loss_free(lb_loss *loss);
/* Appends the canonical spec of `spec` (the one lb_loss_spec would give) without making the
 * loss, so no class counts are needed: checks the name and the keys, not their values.
 * Without class names a list by class name cannot be resolved: it is kept, normalised (items
 * sorted by name in strcmp order, numbers in shortest form, "alpha=Diseased:0.75,Healthy:0.25"),
 * so it differs from the positional form; a list mixing both forms or naming a class twice is
 * an error (and nothing is appended). */
int lb_loss_canonical(const char *spec, lb_buf *out);
/* The same with the classes' names (n_classes strings; NULL: as lb_loss_canonical): a list by
 * class name becomes positional, exactly as in lb_loss_spec of lb_loss_new_named, and an
 * unknown, repeated or missing class is an error. */
int lb_loss_canonical_named(const char *spec, int n_classes, const char *const *class_names, lb_buf *out);
/* The canonical spec with every parameter spelled out (defaults resolved, numbers in
 * shortest form, per-class lists positional); lb_loss_new reads it back to the same loss. For
 * result files. */
const char *lb_loss_spec(const lb_loss *loss);
const char *lb_loss_name(const lb_loss *loss);
int lb_loss_classes(const lb_loss *loss);

typedef enum { LB_REDUCE_MEAN = 0, LB_REDUCE_SUM = 1, LB_REDUCE_NONE = 2 } lb_reduction;
lb_reduction lb_loss_reduction(const lb_loss *loss);
/* Whether the mean divides by sum_i w_{y_i} (1) or by N (0). */
int lb_loss_weighted_mean(const lb_loss *loss);
/* Class weight w_c in force at this step (1 for every class when the loss has no class
 * weights, or before a DRW switch). */
double lb_loss_class_weight(const lb_loss *loss, int c, long step, long total_steps);

/* Loss node on the tape: a scalar [1] for reduction mean or sum, [N] for none. logits must
 * be [N, C]; targets N ints in [0, C) (an out-of-range target is an error naming its index).
 * step/total_steps drive schedules such as DRW (deferred re-weighting); pass 0, 0 when the
 * loss has none. Memory comes from the graph's arena: no malloc per step. A non-finite loss
 * or gradient is reported as LB_ENUMERIC naming the sample. */
lb_node *lb_loss_forward(lb_loss *loss, lb_graph *g, lb_node *logits, const int *targets,
                         long step, long total_steps);
/* The loss of a mixed batch (mixup, Remix: libra/data.h) on the tape. lam_y NULL (mixup):
 * lambda L(z, ya) + (1 - lambda) L(z, yb), each L with its own reduction. lam_y given (Remix,
 * a weight per sample): the loss's reduction over the mixed per-sample terms
 * m_i w_{ya_i} l(z_i, ya_i) + (1 - m_i) w_{yb_i} l(z_i, yb_i), whose mean divides by
 * sum_i m_i d(ya_i) + (1 - m_i) d(yb_i) (d as for the plain mean). With lambda = 1 (every m_i
 * = 1) both give the plain loss bitwise. */
lb_node *lb_loss_forward_mixed(lb_loss *loss, lb_graph *g, lb_node *logits, const int *ya, const int *yb,
                               double lambda, const float *lam_y, long step, long total_steps);
/* A shard of a larger batch (data-parallel training, docs/distributed.md): its loss is its
 * own numerator over the whole batch's denominator, so the shards' losses and gradients add
 * up to the whole batch's. lb_loss_denominators gives the denominators of the n samples of
 * the whole batch as the forwards divide by: den[0] = sum_i m_i d(ya_i) and, with yb (a mixed
 * batch), den[1] = sum_i (1 - m_i) d(yb_i) (m_i = lam_y[i]; 1 in both sums without lam_y;
 * den[1] = 0 without yb), d as for the plain mean, summed in sample order in double. The
 * _denom forwards then take them instead of the shard's own: den > 0 (LB_EINVAL naming the
 * value otherwise; for Remix their sum > 0), used by the mean reduction only (sum and none
 * ignore it). Given the batch's own denominators, both are bitwise the plain forwards. */
int lb_loss_denominators(lb_loss *loss, const int *ya, const int *yb, const float *lam_y, int n, long step,
                         long total_steps, double den[2]);
lb_node *lb_loss_forward_denom(lb_loss *loss, lb_graph *g, lb_node *logits, const int *targets, double den,
                               long step, long total_steps);
lb_node *lb_loss_forward_mixed_denom(lb_loss *loss, lb_graph *g, lb_node *logits, const int *ya, const int *yb,
                                     double lambda, const float *lam_y, const double den[2], long step,
                                     long total_steps);
/* Unreduced per-sample losses w_{y_i} l_i and their gradients with respect to each sample's
 * logits (n*C, same layout as logits); either output may be NULL. *mean_out (may be NULL)
 * gets the loss reduced by the loss's mean convention, whatever its reduction= key. */
int lb_loss_eval(lb_loss *loss, const float *logits, const int *targets, int n,
                 float *loss_per_sample, float *dlogits, double *mean_out, long step,
                 long total_steps);
/* The same, with the numerator sum_i w_{y_i} l_i and denominator sum_i d_i in double
 * (mean = *sum_out / *denom_out). Finite-difference checks use *sum_out. */
int lb_loss_eval_ex(lb_loss *loss, const float *logits, const int *targets, int n,
                    float *loss_per_sample, float *dlogits, double *sum_out, double *denom_out,
                    long step, long total_steps);

/* ---- dense tasks: one prediction per location (docs/dense.md) ----
 * Logits [N, K, H, W] (a fully convolutional head), targets [N, H, W] (row-major, N*H*W ints).
 * Two ways to say "background" (no object at a location):
 *   one-vs-all losses (LB_LOSS_ONE_VS_ALL: bce, sigmoid_focal, cb_focal) have K = C outputs, one
 *     per object class, and the target C (lb_loss_dense_background) is negative for every class;
 *   every other loss is a softmax over K = C + 1 outputs whose last class, C, is background.
 * The loss is summed over locations (and, for one-vs-all, classes), class weights where the loss
 * has them (the background's weight is 1 for one-vs-all losses), and divided by the number of
 * foreground locations of the batch (targets other than background; Lin et al. 2017, Sec. 4.1),
 * not by N*H*W. A batch without any foreground location divides by 1, as Detectron's
 * max(1, n_fg): its loss is then the plain sum of its background terms. Only the mean reduction
 * (the default) has this meaning: a loss made with reduction=sum or none is refused. */
/* The background target of a dense task for this loss: lb_loss_classes(L) for one-vs-all
 * losses, lb_loss_classes(L) - 1 for the others. */
int lb_loss_dense_background(const lb_loss *loss);
/* The number of foreground locations among targets[0..n) (targets other than background). */
long lb_dense_foreground(const int *targets, size_t n, int background);
/* The dense loss node (scalar [1]); *n_fg (may be NULL) gets the foreground count it divided by
 * before the max(1, .). Errors: logits not [N, K, H, W] with K = lb_loss_classes(L) (both shapes
 * named), a target outside [0, background] (its location named), a reduction other than mean. */
lb_node *lb_loss_forward_dense(lb_loss *loss, lb_graph *g, lb_node *logits, const int *targets, long step,
                               long total_steps, long *n_fg);
/* The same without a tape, on logits [N, K, H, W]: *loss (may be NULL) in double, dlogits (may be
 * NULL; the logits' layout) the gradient of *loss. Finite-difference checks use it. */
int lb_loss_eval_dense(lb_loss *loss, const float *logits, int N, int K, int H, int W, const int *targets,
                       float *dlogits, double *loss_out, long *n_fg, long step, long total_steps);

/* ---- user-defined losses ---- */
typedef struct lb_loss_param {
    const char *key;
    const char *default_value;   /* text, as it would appear in a spec */
    const char *help;
} lb_loss_param;

enum {
    LB_LOSS_NEEDS_COUNTS = 1,    /* lb_loss_new refuses class_counts == NULL */
    LB_LOSS_WEIGHTED_MEAN = 2,   /* mean divides by sum_i w_{y_i} (PyTorch) instead of N */
    LB_LOSS_NORMALIZE_LIST = 4,  /* an explicit weight list is scaled to sum to C */
    LB_LOSS_ONE_VS_ALL = 8       /* one binary problem per class (bce, sigmoid_focal, cb_focal): the
                                    target C (no class) is a sample negative for every class */
};

/* What a loss is. The loss itself computes the unweighted per-sample value and gradient;
 * class weights (the key weight_key: "none", one number for every class, a list of C
 * numbers, or inverse|sqrt|effective from the class counts, normalised to sum to C), the
 * keys beta (effective number), drw and drw_step (deferred re-weighting) and reduction are
 * parsed and applied by libra for every loss whose weight_key is not NULL. */
typedef struct lb_loss_kind {
    const char *summary;            /* one line, for --help listings */
    const lb_loss_param *params;    /* the loss's own keys, ending with {NULL, NULL, NULL} */
    const char *weight_key;         /* "weights", "alpha", ...; NULL: no class weights */
    const char *weight_default;     /* e.g. "none" or "inverse" */
    double beta_default;            /* for weights=effective, e.g. 0.999 */
    int flags;                      /* LB_LOSS_* */
    /* Reads the loss's own parameters from `spec` (every key of params present, defaults
     * filled in) into a state; returns LB_OK or an error naming the key. May be NULL. */
    int (*init)(const lb_spec *spec, int n_classes, const int *class_counts, void **state);
    /* One sample: returns l(z, y) and writes dl/dz (n_classes doubles). Required. May run on
     * several threads at once (a data-parallel step's shards): read state, never write it. */
    double (*sample)(const void *state, int n_classes, const float *logits, int target,
                     double *dlogits);
    void (*destroy)(void *state);   /* may be NULL */
} lb_loss_kind;

/* Adds a loss under `name` ([a-z0-9_], at most 31 chars, not yet taken); the kind is copied,
 * its strings and params are not (keep them alive, e.g. static). Every spec parser then
 * knows it: --loss name:key=value works like a built-in loss. Not thread-safe: register at
 * start-up. */
int lb_loss_register(const char *name, const lb_loss_kind *kind);
/* Number of registered losses; names[0..min(count,max)-1] get their names (built-ins first). */
int lb_loss_list(const char **names, int max);
const lb_loss_kind *lb_loss_find(const char *name);   /* NULL if unknown (no error set) */

#ifdef __cplusplus
}
#endif
#endif
