/* The update rules (SGD as torch.optim.SGD with dampening 0; Adam and AdamW, Kingma & Ba 2015
 * and Loshchilov & Hutter 2019, bias-corrected, in the arithmetic order torch.optim uses so
 * results agree to float rounding), the optimizer object (rule + hyper-parameters + state)
 * and gradient clipping. */
#include "libra/optim.h"
#include "libra/tensor.h"   /* lb_parallel */

#include <math.h>
#include <string.h>

void lb_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum,
                   int nesterov, float weight_decay)
{
    if (momentum == 0.0f || !buf) {
        for (size_t i = 0; i < n; i++) w[i] -= lr * (g[i] + weight_decay * w[i]);
        return;
    }
    /* buf starts at zero, so its first value is the gradient itself, as in torch. */
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * w[i];
        float b = momentum * buf[i] + gi;
        buf[i] = b;
        w[i] -= lr * (nesterov ? gi + momentum * b : b);
    }
}

void lb_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int decoupled,
                    long t)
{
    /* Bias corrections in double: beta2^t near 1 loses digits in float. */
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float sqrt_bc2 = (float)sqrt(bc2);
    float l2 = decoupled ? 0.0f : weight_decay;
    float shrink = decoupled ? 1.0f - lr * weight_decay : 1.0f;
    float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * shrink;
        float gi = g[i] + l2 * w[i];
        float mi = beta1 * m[i] + a1 * gi;
        float vi = beta2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

double lb_grad_norm(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double lb_clip_grad_norm(float *g, size_t n, double max_norm)
{
    double norm = lb_grad_norm(g, n);
    if (!isfinite(norm)) return norm;
    double coef = max_norm / (norm + 1e-6);   /* torch's epsilon, so results match */
    if (coef < 1.0) {
        float c = (float)coef;
        for (size_t i = 0; i < n; i++) g[i] *= c;
    }
    return norm;
}

lb_optim_config lb_optim_defaults(lb_optim_kind kind)
{
    lb_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    switch (kind) {
    case LB_OPTIM_SGD: c.lr = 0.01f; break;
    case LB_OPTIM_ADAM: c.lr = 1e-3f; break;
    case LB_OPTIM_ADAMW: c.lr = 1e-3f; c.weight_decay = 0.01f; break;
    }
    return c;
}

static const char *const kind_names[] = {"sgd", "adam", "adamw"};

int lb_optim_kind_parse(const char *name, lb_optim_kind *out)
{
    for (int k = 0; k < 3; k++)
        if (name && strcmp(name, kind_names[k]) == 0) {
            *out = (lb_optim_kind)k;
            return LB_OK;
        }
    return lb_error(LB_EINVAL, "optimizer '%s' is unknown (choose sgd, adam or adamw)",
                    name ? name : "(null)");
}

const char *lb_optim_kind_name(lb_optim_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "?";
}

static int check_config(const lb_optim_config *c)
{
    if ((unsigned)c->kind > LB_OPTIM_ADAMW) return lb_error(LB_EINVAL, "optimizer: unknown kind %d", (int)c->kind);
    if (!(c->lr >= 0.0f) || !isfinite(c->lr)) return lb_error(LB_EINVAL, "optimizer: learning rate %g must be >= 0", c->lr);
    if (!(c->weight_decay >= 0.0f)) return lb_error(LB_EINVAL, "optimizer: weight decay %g must be >= 0", c->weight_decay);
    if (!(c->clip_norm >= 0.0f)) return lb_error(LB_EINVAL, "optimizer: clip norm %g must be >= 0 (0 = off)", c->clip_norm);
    if (c->kind == LB_OPTIM_SGD) {
        if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
            return lb_error(LB_EINVAL, "sgd: momentum %g must be in [0, 1)", c->momentum);
        if (c->nesterov && c->momentum == 0.0f)
            return lb_error(LB_EINVAL, "sgd: nesterov needs momentum > 0");
    } else {
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
            return lb_error(LB_EINVAL, "%s: betas (%g, %g) must be in [0, 1)", lb_optim_kind_name(c->kind),
                            c->beta1, c->beta2);
        if (!(c->eps > 0.0f)) return lb_error(LB_EINVAL, "%s: eps %g must be > 0", lb_optim_kind_name(c->kind), c->eps);
    }
    return LB_OK;
}

int lb_optim_state_per_param(const lb_optim *o)
{
    if (o->cfg.kind != LB_OPTIM_SGD) return 2;
    return o->cfg.momentum > 0.0f ? 1 : 0;
}

lb_optim *lb_optim_new(const lb_optim_config *cfg, size_t n)
{
    if (check_config(cfg) != LB_OK) return NULL;
    lb_optim *o = lb_calloc(1, sizeof *o);
    if (!o) goto oom;
    o->cfg = *cfg;
    o->n = n;
    int k = lb_optim_state_per_param(o);
    if (k >= 1 && !(o->m = lb_calloc(n, sizeof(float)))) goto oom;
    if (k >= 2 && !(o->v = lb_calloc(n, sizeof(float)))) goto oom;
    return o;
oom:
    lb_optim_free(o);
    lb_error(LB_ENOMEM, "optimizer: out of memory for %zu parameters", n);
    return NULL;
}

void lb_optim_free(lb_optim *o)
{
    if (!o) return;
    lb_free(o->m);
    lb_free(o->v);
    lb_free(o);
}

void lb_optim_reset(lb_optim *o)
{
    if (o->m) memset(o->m, 0, o->n * sizeof(float));
    if (o->v) memset(o->v, 0, o->n * sizeof(float));
    o->step = 0;
    o->last_grad_norm = 0.0;
}

typedef struct {
    lb_optim *o;
    float *w, *g;
    float lr;
} update_job;

/* The update rule on parameters [lo, hi) of the flat buffers. */
static void update_part(void *arg, int part, int n_parts)
{
    const update_job *j = arg;
    const lb_optim *o = j->o;
    const lb_optim_config *c = &o->cfg;
    size_t lo = o->n * (size_t)part / (size_t)n_parts, hi = o->n * (size_t)(part + 1) / (size_t)n_parts;
    if (c->kind == LB_OPTIM_SGD)
        lb_sgd_update(j->w + lo, j->g + lo, o->m ? o->m + lo : NULL, hi - lo, j->lr, c->momentum, c->nesterov,
                      c->weight_decay);
    else
        lb_adam_update(j->w + lo, j->g + lo, o->m + lo, o->v + lo, hi - lo, j->lr, c->beta1, c->beta2, c->eps,
                       c->weight_decay, c->kind == LB_OPTIM_ADAMW, o->step);
}

int lb_optim_step(lb_optim *o, float *w, float *g, float lr)
{
    const lb_optim_config *c = &o->cfg;
    if (c->clip_norm > 0.0f) {
        double norm = lb_clip_grad_norm(g, o->n, c->clip_norm);
        o->last_grad_norm = norm;
        if (!isfinite(norm))
            return lb_error(LB_ENUMERIC, "optimizer: gradient norm is %g at step %ld; parameters left unchanged",
                            norm, o->step);
    }
    o->step++;
    update_job j = {o, w, g, lr};
    /* elementwise, so the split changes nothing in the result; below ~64k parameters one
     * thread is faster than starting another */
    int parts = o->n >= 65536 ? lb_get_threads() : 1;
    lb_parallel(parts, update_part, &j);
    return LB_OK;
}
