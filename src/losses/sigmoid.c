/* One-vs-all sigmoid losses: bce, sigmoid_focal (torchvision's semantics) and cb_focal (Cui et
 * al. 2019). Each class c is a binary problem with target t = [c == y]; the per-sample loss
 * is summed over classes and the mean divides by N. */
#include "losses/internal.h"

#include <math.h>
#include <stdlib.h>

static double sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* Per class, with u = z_c for the positive and -z_c for the negatives, p_t = sigmoid(u):
 *   term = a_t (1 - p_t)^gamma L,  L = -log p_t = softplus(-u),
 *   d term / du = -a_t (1 - p_t)^gamma (gamma p_t L + (1 - p_t)),
 * no negative power of (1 - p_t), so every gamma >= 0 is finite at any logit. */
double lb__loss_sigmoid_focal(int C, const float *z, int y, double gamma, double alpha,
                             const double *pos_weight, double *dz)
{
    double loss = 0;
    for (int c = 0; c < C; c++) {
        int t = c == y;
        double u = t ? (double)z[c] : -(double)z[c];
        double L = lb__softplus(-u), pt = sigmoid(u), q = sigmoid(-u);
        double a = alpha < 0 ? 1.0 : (t ? alpha : 1.0 - alpha);
        if (t && pos_weight) a *= pos_weight[c];
        double mod = gamma == 0 ? 1.0 : pow(q, gamma);
        loss += a * mod * L;
        double du = -a * mod * (gamma * pt * L + q);
        dz[c] = t ? du : -du;
    }
    return loss;
}

static void free_state(void *state) { lb_free(state); }

/* ---- bce: alpha (Lin et al.'s alpha-balanced CE: alpha on the positive term, 1 - alpha on the
 * negatives; < 0: off) and pos_weight (one number or one per class) on the positive term ---- */
typedef struct {
    double alpha;
    double pos_weight[];
} bce_state;

static double bce_sample(const void *state, int C, const float *z, int y, double *dz)
{
    const bce_state *s = state;
    return lb__loss_sigmoid_focal(C, z, y, 0.0, s->alpha, s->pos_weight, dz);
}

static int bce_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    (void)counts;
    bce_state *s = lb_malloc(sizeof *s + (size_t)C * sizeof(double));
    if (!s) return lb_error(LB_ENOMEM, "loss: out of memory");
    double *pw = s->pos_weight;
    const char *v = lb_spec_get(spec, "pos_weight");
    int n = 1, rc = lb_spec_number(spec, "alpha", -1e6, 1.0, &s->alpha);
    for (const char *p = v; *p; p++) n += *p == ',';
    if (rc == LB_OK && n != 1 && n != C)
        rc = lb_error(LB_EINVAL, "bce: pos_weight has %d values; give one per class (%d) or one for all", n, C);
    if (rc == LB_OK) rc = lb_spec_numbers(spec, "pos_weight", pw, C, &n);
    for (int c = 0; c < n && rc == LB_OK; c++)
        if (!(pw[c] > 0)) rc = lb_error(LB_EINVAL, "bce: pos_weight value %d (%g) must be > 0", c + 1, pw[c]);
    if (rc != LB_OK) {
        lb_free(s);
        return rc;
    }
    for (int c = n; c < C; c++) pw[c] = pw[0];
    *state = s;
    return LB_OK;
}

static const lb_loss_param bce_params[] = {
    {"alpha", "-1", "alpha-balanced: weight of the positive term (1 - alpha: negatives); < 0 disables"},
    {"pos_weight", "1", "weight of the positive term: one number, or one per class"},
    {NULL, NULL, NULL}};

const lb_loss_kind lb__kind_bce = {
    "one-vs-all binary cross-entropy with logits, summed over classes", bce_params, NULL, NULL, 0,
    LB_LOSS_ONE_VS_ALL,
    bce_init, bce_sample, free_state};

/* ---- sigmoid_focal ---- */
typedef struct {
    double gamma, alpha;
} sf_state;

static double sf_sample(const void *state, int C, const float *z, int y, double *dz)
{
    const sf_state *s = state;
    return lb__loss_sigmoid_focal(C, z, y, s->gamma, s->alpha, NULL, dz);
}

static int sf_read(const lb_spec *spec, int with_alpha, void **state)
{
    sf_state *s = lb_malloc(sizeof *s);
    if (!s) return lb_error(LB_ENOMEM, "loss: out of memory");
    s->alpha = -1.0;
    int rc = lb_spec_number(spec, "gamma", 0.0, 100.0, &s->gamma);
    if (rc == LB_OK && with_alpha) rc = lb_spec_number(spec, "alpha", -1e6, 1.0, &s->alpha);
    if (rc != LB_OK) {
        lb_free(s);
        return rc;
    }
    *state = s;
    return LB_OK;
}

static int sf_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    (void)C;
    (void)counts;
    return sf_read(spec, 1, state);
}

static const lb_loss_param sf_params[] = {
    {"gamma", "2", "focusing parameter"},
    {"alpha", "0.25", "weight of the positive term (1 - alpha: negatives); < 0 disables"},
    {NULL, NULL, NULL}};

const lb_loss_kind lb__kind_sigmoid_focal = {
    "one-vs-all sigmoid focal loss (torchvision's), summed over classes", sf_params, NULL, NULL, 0,
    LB_LOSS_ONE_VS_ALL,
    sf_init, sf_sample, free_state};

/* ---- cb_focal: sigmoid focal (no alpha) times effective-number class weights ---- */
static int cb_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    (void)C;
    (void)counts;
    return sf_read(spec, 0, state);
}

static const lb_loss_param cb_params[] = {
    {"gamma", "1", "focusing parameter"},
    {NULL, NULL, NULL}};

const lb_loss_kind lb__kind_cb_focal = {
    "class-balanced sigmoid focal loss (Cui et al. 2019), mean over N", cb_params, "weights",
    "effective", 0.9999, LB_LOSS_NORMALIZE_LIST | LB_LOSS_ONE_VS_ALL, cb_init, sf_sample, free_state};
