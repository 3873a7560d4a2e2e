/* Weight initialisation (explicit RNG) and the prior bias of the last layer. */
#include "libra/layers.h"

#include <math.h>
#include <string.h>

static const char *const init_names[] = {"default", "kaiming-normal", "kaiming-uniform", "xavier-normal",
                                         "xavier-uniform"};

int lb_init_parse(const char *name, lb_init_kind *out)
{
    char buf[32];
    size_t n = name ? strlen(name) : 0;
    if (name && n < sizeof buf) {
        for (size_t i = 0; i <= n; i++) buf[i] = name[i] == '_' ? '-' : name[i];
        if (strcmp(buf, "pytorch") == 0) {
            *out = LB_INIT_DEFAULT;
            return LB_OK;
        }
        for (int k = 0; k < 5; k++)
            if (strcmp(buf, init_names[k]) == 0) {
                *out = (lb_init_kind)k;
                return LB_OK;
            }
    }
    return lb_error(LB_EINVAL,
                    "init '%s' is unknown (choose default, kaiming-normal, kaiming-uniform, xavier-normal or "
                    "xavier-uniform)",
                    name ? name : "(null)");
}

const char *lb_init_name(lb_init_kind kind) { return (unsigned)kind < 5 ? init_names[kind] : "?"; }

static void fill_uniform(float *w, size_t n, double bound, lb_rng *rng)
{
    for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * lb_rng_uniform(rng) - 1.0) * bound);
}

static void fill_normal(float *w, size_t n, double std, lb_rng *rng)
{
    for (size_t i = 0; i < n; i++) w[i] = (float)(lb_rng_normal(rng) * std);
}

void lb_model_init(lb_model *m, lb_init_kind kind, lb_rng *rng)
{
    lb_params *P = m->params;
    for (int i = 0; i < m->n_layers; i++) {
        lb_layer *l = &m->layers[i];
        if (l->kind == LB_LAYER_BATCHNORM2D) {
            int C = l->in_shape[0];
            float *gamma = lb_params_value(P, l->w), *beta = lb_params_value(P, l->b);
            float *rm = m->state + l->state_offset;
            for (int c = 0; c < C; c++) {
                gamma[c] = 1.0f;
                beta[c] = 0.0f;
                rm[c] = 0.0f;
                rm[C + c] = 1.0f;
            }
            continue;
        }
        if (l->kind != LB_LAYER_CONV2D && l->kind != LB_LAYER_DENSE) continue;
        const lb_param_info *wi = &P->info[l->w];
        /* weight [out, in, k, k] or [out, in]: fan_in = in*k*k, fan_out = out*k*k */
        double receptive = wi->ndim == 4 ? (double)wi->shape[2] * wi->shape[3] : 1.0;
        double fan_in = wi->shape[1] * receptive, fan_out = wi->shape[0] * receptive;
        float *w = lb_params_value(P, l->w);
        switch (kind) {
        case LB_INIT_KAIMING_NORMAL: fill_normal(w, wi->size, sqrt(2.0 / fan_in), rng); break;
        case LB_INIT_KAIMING_UNIFORM: fill_uniform(w, wi->size, sqrt(6.0 / fan_in), rng); break;
        case LB_INIT_XAVIER_NORMAL: fill_normal(w, wi->size, sqrt(2.0 / (fan_in + fan_out)), rng); break;
        case LB_INIT_XAVIER_UNIFORM: fill_uniform(w, wi->size, sqrt(6.0 / (fan_in + fan_out)), rng); break;
        case LB_INIT_DEFAULT:
        default: fill_uniform(w, wi->size, 1.0 / sqrt(fan_in), rng); break;
        }
        if (l->b >= 0) {
            float *b = lb_params_value(P, l->b);
            size_t nb = P->info[l->b].size;
            if (kind == LB_INIT_DEFAULT) fill_uniform(b, nb, 1.0 / sqrt(fan_in), rng);
            else memset(b, 0, nb * sizeof(float));
        }
    }
}

int lb_model_prior_bias(lb_model *m, const int *class_counts, int n, lb_prior_mode mode)
{
    const lb_layer *last = NULL;
    for (int i = m->n_layers - 1; i >= 0 && !last; i--)
        if (m->layers[i].kind == LB_LAYER_DENSE) last = &m->layers[i];
    if (!last || last->b < 0) return lb_error(LB_EINVAL, "prior bias: the model has no dense layer with a bias");
    if (n != last->out_shape[0])
        return lb_error(LB_EINVAL, "prior bias: %d class counts for layer %s with %d outputs", n, last->name,
                        last->out_shape[0]);
    double total = 0.0;
    for (int c = 0; c < n; c++) {
        if (class_counts[c] <= 0)
            return lb_error(LB_EINVAL, "prior bias: class %d has %d training images (every prior must be > 0)", c,
                            class_counts[c]);
        total += class_counts[c];
    }
    float *b = lb_params_value(m->params, last->b);
    for (int c = 0; c < n; c++) {
        double pi = class_counts[c] / total;
        /* with one class, pi = 1 and the sigmoid form is infinite: leave 0 */
        if (mode == LB_PRIOR_SIGMOID) b[c] = pi < 1.0 ? (float)-log((1.0 - pi) / pi) : 0.0f;
        else b[c] = (float)log(pi);
    }
    return LB_OK;
}

int lb_model_prior_bias_dense(lb_model *m, double pi, lb_prior_mode mode)
{
    const lb_layer *last = m->n_layers ? &m->layers[m->n_layers - 1] : NULL;
    if (!last || last->kind != LB_LAYER_CONV2D || last->b < 0)
        return lb_error(LB_EINVAL, "prior bias: a dense head must end in a convolution with a bias (the last layer "
                        "is %s)", last ? last->name : "missing");
    if (!(pi > 0.0 && pi < 1.0)) return lb_error(LB_EINVAL, "prior bias: prior=%g must be in (0, 1)", pi);
    int K = last->out_shape[0], C = mode == LB_PRIOR_SIGMOID ? K : K - 1;
    if (mode == LB_PRIOR_SOFTMAX && !(C >= 1 && C * pi < 1.0))
        return lb_error(LB_EINVAL, "prior bias: %d object classes at prior=%g leave no probability for the "
                        "background (need classes * prior < 1)", C, pi);
    float *b = lb_params_value(m->params, last->b);
    for (int c = 0; c < K; c++) {
        if (mode == LB_PRIOR_SIGMOID) b[c] = (float)-log((1.0 - pi) / pi);
        else b[c] = (float)(c < C ? log(pi) : log(1.0 - C * pi));
    }
    return LB_OK;
}
