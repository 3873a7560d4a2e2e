/* Softmax focal loss (Lin et al. 2017): FL = -(1 - p_y)^gamma log p_y, times the class weight
 * alpha_y that libra applies (alpha=A for every class, a list per class, or inverse|sqrt|
 * effective). The mean divides by N, as torchvision and kornia do. */
#include "losses/internal.h"

#include <math.h>
#include <string.h>

/* With p = p_y, r = -log(p) / (1 - p):
 *   dFL/dz_c = g * ([c == y] - p_c),  g = -(1 - p)^gamma * (1 + gamma * p * r),
 * which is gamma (1-p)^(gamma-1) p log p - (1-p)^gamma rewritten without a negative power of
 * (1 - p), so gamma < 1 stays finite as p -> 1 (the limit there is 0; r -> 1). */
double lb__loss_softmax_focal(int C, const float *z, int y, double gamma, double *dz)
{
    int am = 0;
    for (int c = 1; c < C; c++)
        if (z[c] > z[am]) am = c;
    double m = z[am], s = 0;
    for (int c = 0; c < C; c++)
        if (c != am) s += exp((double)z[c] - m);
    double lse = m + log1p(s);
    double lp = (double)z[y] - lse;
    /* 1 - p_y accurately, also when p_y rounds to 1 */
    double omp = y == am ? s / (1.0 + s) : -expm1(lp);
    double p = y == am ? 1.0 / (1.0 + s) : exp(lp);
    double mod = pow(omp, gamma); /* pow(0, 0) = 1: gamma = 0 is plain CE */
    double r = omp > 0 ? -lp / omp : 1.0;
    double g = -mod * (1.0 + gamma * p * r);
    for (int c = 0; c < C; c++) {
        double d = c == y ? omp : -(c == am ? 1.0 / (1.0 + s) : exp((double)z[c] - lse));
        dz[c] = g * d;
    }
    return -mod * lp;
}

/* gamma, and Lin et al.'s alpha_t for two classes: alpha_pos for class 1, 1 - alpha_pos for
 * class 0 (alpha_pos < 0: off). */
typedef struct {
    double gamma, alpha_pos;
} focal_state;

static int focal_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    (void)counts;
    focal_state *s = lb_malloc(sizeof *s);
    if (!s) return lb_error(LB_ENOMEM, "loss: out of memory");
    int rc = lb_spec_number(spec, "gamma", 0.0, 100.0, &s->gamma);
    if (rc == LB_OK) rc = lb_spec_number(spec, "alpha_pos", -1e6, 1.0, &s->alpha_pos);
    if (rc == LB_OK && s->alpha_pos >= 0 && C != 2)
        rc = lb_error(LB_EINVAL, "focal: alpha_pos (alpha for class 1, 1 - alpha for class 0) needs two classes, "
                                 "not %d: give per-class weights with alpha=a0,a1,...", C);
    if (rc == LB_OK && s->alpha_pos >= 0 && lb_spec_get(spec, "alpha") && strcmp(lb_spec_get(spec, "alpha"), "none"))
        rc = lb_error(LB_EINVAL, "focal: give alpha or alpha_pos, not both");
    if (rc != LB_OK) {
        lb_free(s);
        return rc;
    }
    *state = s;
    return LB_OK;
}

static double focal_sample(const void *state, int C, const float *z, int y, double *dz)
{
    const focal_state *s = state;
    double l = lb__loss_softmax_focal(C, z, y, s->gamma, dz);
    if (s->alpha_pos < 0) return l;
    double a = y == 1 ? s->alpha_pos : 1.0 - s->alpha_pos;
    for (int c = 0; c < C; c++) dz[c] *= a;
    return a * l;
}

static void free_state(void *state) { lb_free(state); }

static const lb_loss_param focal_params[] = {
    {"gamma", "2", "focusing parameter: (1 - p_t)^gamma down-weights easy samples"},
    {"alpha_pos", "-1", "two classes: Lin et al.'s alpha_t, this for class 1 and 1 - this for class 0; < 0: off"},
    {NULL, NULL, NULL}};

const lb_loss_kind lb__kind_focal = {
    "softmax focal loss (Lin et al. 2017); alpha = class weights, mean over N", focal_params, "alpha",
    "none", 0.999, 0, focal_init, focal_sample, free_state};
