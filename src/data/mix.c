/* Batch mixing: mixup (Zhang et al. 2018) and Remix (Chou et al. 2020). The images of a
 * batch are mixed here; the loss of the mixed batch is lb_loss_forward_mixed. */
#include "data/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const mix_names[] = {"none", "mixup", "remix"};

/* The canonical name: the kind, and each key where it differs from its default. */
static void mix_name(lb_mix *m)
{
    char a[32], k[32], t[32];
    int n = snprintf(m->name, sizeof m->name, "%s", mix_names[m->kind]);
    const char *sep = ":";
    if (m->kind != LB_MIX_NONE && m->alpha != 1.0) {
        n += snprintf(m->name + n, sizeof m->name - (size_t)n, "%salpha=%s", sep, lb_format_number(m->alpha, a, sizeof a));
        sep = ",";
    }
    if (m->kind == LB_MIX_REMIX && m->kappa != 3.0) {
        n += snprintf(m->name + n, sizeof m->name - (size_t)n, "%skappa=%s", sep, lb_format_number(m->kappa, k, sizeof k));
        sep = ",";
    }
    if (m->kind == LB_MIX_REMIX && m->tau != 0.5)
        snprintf(m->name + n, sizeof m->name - (size_t)n, "%stau=%s", sep, lb_format_number(m->tau, t, sizeof t));
}

/* The keys of a parsed spec into m (alpha > 0; kappa >= 1; tau in [0, 1]). */
static int mix_keys(lb_mix *m, const lb_spec *sp)
{
    static const char *const mixup_keys[] = {"alpha", NULL}, *const remix_keys[] = {"alpha", "kappa", "tau", NULL};
    int rc = lb_spec_check(sp, "mix", m->kind == LB_MIX_REMIX ? remix_keys : mixup_keys, 0);
    if (rc == LB_OK && lb_spec_get(sp, "alpha")) rc = lb_spec_number(sp, "alpha", 1e-6, 1e6, &m->alpha);
    if (rc == LB_OK && lb_spec_get(sp, "kappa")) rc = lb_spec_number(sp, "kappa", 1.0, 1e12, &m->kappa);
    if (rc == LB_OK && lb_spec_get(sp, "tau")) rc = lb_spec_number(sp, "tau", 0.0, 1.0, &m->tau);
    return rc;
}

int lb_mix_parse(lb_mix *out, const char *spec)
{
    memset(out, 0, sizeof *out);
    out->alpha = 1.0;
    out->kappa = 3.0;
    out->tau = 0.5;
    if (!spec || !*spec || !strcmp(spec, "none")) {
        mix_name(out);
        return LB_OK;
    }
    lb_spec *sp = lb_spec_new(spec);
    if (!sp) {
        lb_error_prefix("mix");
        return lb_last_status();
    }
    int rc = LB_OK;
    if (!strcmp(lb_spec_name(sp), "mixup")) out->kind = LB_MIX_MIXUP;
    else if (!strcmp(lb_spec_name(sp), "remix")) out->kind = LB_MIX_REMIX;
    else rc = lb_error(LB_EINVAL, "mix '%s': unknown (expected mixup or remix)", spec);
    if (rc == LB_OK) rc = mix_keys(out, sp);
    if (rc == LB_OK) mix_name(out);
    lb_spec_free(sp);
    return rc;
}

/* Gamma(a, 1) for a >= 1 (Marsaglia and Tsang 2000, "A simple method for generating gamma
 * variables"): d = a - 1/3, c = 1/sqrt(9d); accept v = (1 + c x)^3 when
 * log u < x^2/2 + d - d v + d log v. */
static double gamma_ge1(lb_rng *r, double a)
{
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = lb_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = lb_rng_uniform(r);
        if (u > 0.0 && log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

/* Gamma(a, 1) for any a > 0: for a < 1, Gamma(a + 1) U^(1/a) (the same paper). */
static double gamma_draw(lb_rng *r, double a)
{
    if (a >= 1.0) return gamma_ge1(r, a);
    double g = gamma_ge1(r, a + 1.0), u = lb_rng_uniform(r);
    return g * pow(u > 0.0 ? u : 0x1p-53, 1.0 / a);
}

double lb_rng_beta(lb_rng *r, double a, double b)
{
    if (a == 1.0 && b == 1.0) return lb_rng_uniform(r); /* Beta(1, 1) is U[0, 1) */
    double x = gamma_draw(r, a), y = gamma_draw(r, b);
    return x + y > 0.0 ? x / (x + y) : 0.5;
}

/* Remix's label weight of a pair with training counts ni (sample i's class) and nj. */
static float remix_weight(const lb_mix *m, double lambda, double ni, double nj)
{
    if (ni >= m->kappa * nj && lambda < m->tau) return 0.0f;
    if (ni * m->kappa <= nj && 1.0 - lambda < m->tau) return 1.0f;
    return (float)lambda;
}

void lb_mix_draw(const lb_mix *m, lb_rng *r, int n, const int *y, const int *counts, double *lambda, int *perm,
                 float *lam_y)
{
    double lam = lb_rng_beta(r, m->alpha, m->alpha);
    for (int i = 0; i < n; i++) perm[i] = i;
    lb_rng_shuffle(r, perm, (size_t)n);
    for (int i = 0; i < n; i++)
        lam_y[i] = m->kind == LB_MIX_REMIX ? remix_weight(m, lam, counts[y[i]], counts[y[perm[i]]]) : (float)lam;
    *lambda = lam;
}

void lb_mix_images(float *x, int n, size_t size, double lambda, const int *perm, float *scratch)
{
    memcpy(scratch, x, (size_t)n * size * sizeof(float));
    float a = (float)lambda, b = (float)(1.0 - lambda);
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * size;
        const float *xj = scratch + (size_t)perm[i] * size;
        for (size_t k = 0; k < size; k++) xi[k] = a * xi[k] + b * xj[k];
    }
}
