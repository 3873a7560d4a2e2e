/* libra optim: SGD, Adam, AdamW, gradient clipping and learning-rate schedules, all over
 * the flat parameter and gradient buffers (lb_params: data, grad, size).
 *
 * Every update is one pass over the buffers and allocates nothing; the optimizer's state
 * (momentum, moments) is allocated once in lb_optim_new. The update rules follow
 * torch.optim (SGD with dampening 0, Adam/AdamW with bias correction), so the same
 * hyper-parameters mean the same thing; docs/training.md has the formulas.
 *
 *   lb_optim_config c = lb_optim_defaults(LB_OPTIM_ADAM);
 *   c.lr = 1e-3f;
 *   lb_optim *o = lb_optim_new(&c, params->size);
 *   ... backward ...
 *   lb_optim_step(o, params->data, params->grad, lb_schedule_lr(&sched, o->step));
 */
#ifndef LIBRA_OPTIM_H
#define LIBRA_OPTIM_H

#include "libra/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the update rules as plain functions (t = 1 for the first update) ---- */

/* SGD as torch.optim.SGD (dampening 0): g' = g + wd*w; buf = momentum*buf + g'
 * (buf starts at 0, so the first buf is g'); d = nesterov ? g' + momentum*buf : buf
 * (d = g' when momentum is 0); w -= lr*d. buf may be NULL when momentum is 0. */
void lb_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum,
                   int nesterov, float weight_decay);

/* Adam (Kingma & Ba) with bias correction, as torch.optim.Adam / AdamW:
 * decoupled == 0 (Adam):  g' = g + wd*w  (L2 penalty through the gradient)
 * decoupled != 0 (AdamW): w *= 1 - lr*wd before the update, g' = g
 * m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2;
 * w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
void lb_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int decoupled,
                    long t);

/* Euclidean norm of g over all n entries (accumulated in double). */
double lb_grad_norm(const float *g, size_t n);
/* Clipping by global norm as torch.nn.utils.clip_grad_norm_: when the norm exceeds
 * max_norm, g is scaled by max_norm / (norm + 1e-6). Returns the norm before clipping
 * (NaN/Inf if the gradient is not finite, in which case g is left alone). */
double lb_clip_grad_norm(float *g, size_t n, double max_norm);

/* ---- an optimizer object: rule + hyper-parameters + state ---- */

typedef enum { LB_OPTIM_SGD = 0, LB_OPTIM_ADAM = 1, LB_OPTIM_ADAMW = 2 } lb_optim_kind;

typedef struct lb_optim_config {
    lb_optim_kind kind;
    float lr;            /* base learning rate (a schedule may change it per step) */
    float momentum;      /* SGD */
    int nesterov;        /* SGD, needs momentum > 0 */
    float beta1, beta2;  /* Adam/AdamW */
    float eps;           /* Adam/AdamW */
    float weight_decay;  /* SGD/Adam: L2 via the gradient; AdamW: decoupled */
    float clip_norm;     /* > 0: clip the gradient to this global norm before each step */
} lb_optim_config;

/* torch's defaults for each kind: SGD lr 0.01 momentum 0; Adam lr 1e-3, betas (0.9,
 * 0.999), eps 1e-8, wd 0; AdamW the same with wd 0.01. No clipping. */
lb_optim_config lb_optim_defaults(lb_optim_kind kind);
/* "sgd", "adam", "adamw" -> kind; unknown names are LB_EINVAL naming the value. */
int lb_optim_kind_parse(const char *name, lb_optim_kind *out);
const char *lb_optim_kind_name(lb_optim_kind kind);

typedef struct lb_optim {
    lb_optim_config cfg;
    size_t n;        /* parameters updated */
    long step;       /* updates done so far */
    float *m;        /* SGD momentum buffer / Adam first moment (NULL for plain SGD) */
    float *v;        /* Adam second moment (NULL for SGD) */
    double last_grad_norm;  /* norm before clipping at the last step (0 without clipping) */
} lb_optim;

/* Checks the configuration (lr >= 0, betas in [0,1), eps > 0, nesterov needs momentum,
 * ...) and allocates the state for n parameters, zeroed. NULL + message on error. */
lb_optim *lb_optim_new(const lb_optim_config *cfg, size_t n);
void lb_optim_free(lb_optim *o);
/* One update of w (n floats) with gradient g at learning rate lr; increments o->step.
 * With clipping on, g is clipped in place first, and a non-finite gradient norm is
 * refused (LB_ENUMERIC, nothing changed). Allocates nothing. */
int lb_optim_step(lb_optim *o, float *w, float *g, float lr);
/* Number of state floats per parameter (0, 1 or 2): the checkpoint stores m and v. */
int lb_optim_state_per_param(const lb_optim *o);
/* Forgets the state (moments to zero, step to 0). */
void lb_optim_reset(lb_optim *o);

/* ---- learning-rate schedules, functions of the step counter ---- */

typedef enum {
    LB_SCHED_CONSTANT = 0,
    LB_SCHED_STEP,     /* lr * gamma^floor(t' / every), or with milestones lr * gamma^(milestones <= t) */
    LB_SCHED_COSINE    /* min + (lr - min) * (1 + cos(pi * t' / T')) / 2, t' <= T' */
} lb_sched_kind;

/* lr(t) for update t = 0, 1, ...: the decay is applied to t' = t - warmup (from the end of
 * the warmup), over T' = total - warmup steps; during the warmup (t < warmup) the rate
 * rises linearly as lr * (t + 1) / warmup, reaching lr at the first step after it. */
typedef struct lb_schedule {
    lb_sched_kind kind;
    double lr;         /* base rate */
    long warmup;       /* steps of linear warmup, 0 = none */
    long every;        /* step decay: period in steps */
    double gamma;      /* step decay: factor */
    long at[8];        /* step decay at these steps instead (PyTorch's MultiStepLR: counted from */
    int n_at;          /* step 0, the warmup included), increasing; n_at = 0: every */
    double min_lr;     /* cosine: final rate */
    long total;        /* cosine: total steps (including the warmup) */
} lb_schedule;

/* A constant schedule at lr. */
lb_schedule lb_schedule_constant(double lr);
/* Parses "constant", "step[:every=N][,gamma=G]", "step:at=N1,N2,...[,gamma=G]" (at most 8
 * increasing milestones), "cosine[:min=LR]" optionally followed by
 * ",warmup=N" (or "warmup=N" alone for constant + warmup), e.g. "cosine:min=1e-5,warmup=500".
 * Missing values: every = total/3, gamma = 0.1, min = 0. total is the run's step budget
 * (needed by cosine and the default period). Errors name the spec and the bad part. */
int lb_schedule_parse(lb_schedule *out, const char *spec, double lr, long total);
double lb_schedule_lr(const lb_schedule *s, long t);
/* The spec that lb_schedule_parse would read back, into buf; returns buf. */
const char *lb_schedule_str(const lb_schedule *s, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
