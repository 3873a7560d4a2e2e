/* The softmax cross-entropy family: ce (with label smoothing), wce, ldam, logit_adjust and
 * balanced_softmax. All are cross-entropy on adjusted logits
 *   a_c = scale * (z_c + offset_c - [c == y] margin_y),
 * so one closed-form function computes them: dl/dz_c = scale * (softmax(a)_c - q_c). */
#include "losses/internal.h"

#include <math.h>

double lb__softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }

double lb__loss_softmax_ce(int C, const float *z, int y, const double *offset,
                          const double *margin, double scale, double eps, double *dz)
{
#define ADJ(c) (scale * ((double)z[c] + (offset ? offset[c] : 0.0) - ((c) == y && margin ? margin[y] : 0.0)))
    int am = 0;
    double m = ADJ(0);
    for (int c = 1; c < C; c++) {
        double a = ADJ(c);
        if (a > m) m = a, am = c;
    }
    /* log-sum-exp as m + log1p(sum of the others) keeps log p_y accurate when p_y -> 1 */
    double s = 0;
    for (int c = 0; c < C; c++)
        if (c != am) s += exp(ADJ(c) - m);
    double lse = m + log1p(s);
    double loss = -(1.0 - eps) * (ADJ(y) - lse);
    if (eps > 0) {
        double t = 0;
        for (int c = 0; c < C; c++) t += ADJ(c) - lse;
        loss -= eps / C * t;
    }
    for (int c = 0; c < C; c++) {
        double p = c == am ? 1.0 / (1.0 + s) : exp(ADJ(c) - lse);
        double q = (c == y ? 1.0 - eps : 0.0) + eps / C;
        dz[c] = scale * (p - q);
    }
    return loss;
#undef ADJ
}

typedef struct {
    double scale, eps;
    double *offset, *margin; /* C each, or NULL */
} sce_state;

static double sce_sample(const void *state, int C, const float *z, int y, double *dz)
{
    const sce_state *s = state;
    if (!s) return lb__loss_softmax_ce(C, z, y, NULL, NULL, 1.0, 0.0, dz);
    return lb__loss_softmax_ce(C, z, y, s->offset, s->margin, s->scale, s->eps, dz);
}

static void sce_destroy(void *state) { lb_free(state); }

/* One block: the state and room for offset and margin. */
static sce_state *sce_new(int C)
{
    sce_state *s = lb_calloc(1, sizeof *s + 2 * (size_t)C * sizeof(double));
    if (!s) {
        lb_error(LB_ENOMEM, "loss: out of memory");
        return NULL;
    }
    s->scale = 1.0;
    return s;
}

static double *sce_extra(sce_state *s, int C, int which) { return (double *)(s + 1) + (size_t)which * C; }

/* ---- ce ---- */
static int ce_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    (void)counts;
    double eps;
    int rc = lb_spec_number(spec, "smoothing", 0.0, 1.0, &eps);
    if (rc != LB_OK) return rc;
    if (eps >= 1.0) return lb_error(LB_EINVAL, "ce: smoothing=1 is out of range [0, 1)");
    sce_state *s = sce_new(C);
    if (!s) return LB_ENOMEM;
    s->eps = eps;
    *state = s;
    return LB_OK;
}

static const lb_loss_param ce_params[] = {
    {"smoothing", "0", "label smoothing: target (1-e) on the true class plus e/C on every class"},
    {NULL, NULL, NULL}};

const lb_loss_kind lb__kind_ce = {
    "softmax cross-entropy, optional label smoothing", ce_params, NULL, NULL, 0, 0,
    ce_init, sce_sample, sce_destroy};

/* ---- wce: the weights are libra's class weights ---- */
static const lb_loss_param no_params[] = {{NULL, NULL, NULL}};

const lb_loss_kind lb__kind_wce = {
    "class-weighted cross-entropy (PyTorch weighted mean)", no_params, "weights", "inverse", 0.999,
    LB_LOSS_WEIGHTED_MEAN | LB_LOSS_NORMALIZE_LIST, NULL, sce_sample, NULL};

/* ---- ldam (Cao et al. 2019): margin m_c proportional to n_c^(-1/4), largest = max_m ---- */
static int ldam_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    double max_m, scale;
    int rc = lb_spec_number(spec, "max_m", 0.0, 1e6, &max_m);
    if (rc == LB_OK) rc = lb_spec_number(spec, "s", 0.0, 1e6, &scale);
    if (rc != LB_OK) return rc;
    if (scale <= 0) return lb_error(LB_EINVAL, "ldam: s=%g must be > 0", scale);
    sce_state *s = sce_new(C);
    if (!s) return LB_ENOMEM;
    s->scale = scale;
    s->margin = sce_extra(s, C, 1);
    double largest = 0;
    for (int c = 0; c < C; c++) {
        s->margin[c] = pow((double)counts[c], -0.25);
        if (s->margin[c] > largest) largest = s->margin[c];
    }
    for (int c = 0; c < C; c++) s->margin[c] *= max_m / largest;
    *state = s;
    return LB_OK;
}

static const lb_loss_param ldam_params[] = {
    {"max_m", "0.5", "largest margin (the rarest class's); m_c = max_m * (n_min / n_c)^(1/4)"},
    {"s", "30", "scale applied to the logits after the margin"},
    {NULL, NULL, NULL}};

const lb_loss_kind lb__kind_ldam = {
    "label-distribution-aware margin loss (Cao et al. 2019); with drw, effective-number weights",
    ldam_params, "weights", "none", 0.9999,
    LB_LOSS_NEEDS_COUNTS | LB_LOSS_WEIGHTED_MEAN | LB_LOSS_NORMALIZE_LIST, ldam_init, sce_sample,
    sce_destroy};

/* ---- logit_adjust (Menon et al. 2021) and balanced_softmax (Ren et al. 2020) ---- */
static int offset_init(double tau, int C, const int *counts, void **state)
{
    sce_state *s = sce_new(C);
    if (!s) return LB_ENOMEM;
    s->offset = sce_extra(s, C, 0);
    double total = 0;
    for (int c = 0; c < C; c++) total += counts[c];
    for (int c = 0; c < C; c++) s->offset[c] = tau * log(counts[c] / total);
    *state = s;
    return LB_OK;
}

static int logit_adjust_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    double tau;
    int rc = lb_spec_number(spec, "tau", 0.0, 100.0, &tau);
    return rc != LB_OK ? rc : offset_init(tau, C, counts, state);
}

static const lb_loss_param logit_adjust_params[] = {
    {"tau", "1", "temperature: logits get tau * log(prior_c) added before the softmax"},
    {NULL, NULL, NULL}};

const lb_loss_kind lb__kind_logit_adjust = {
    "logit-adjusted cross-entropy (Menon et al. 2021)", logit_adjust_params, "weights", "none", 0.9999,
    LB_LOSS_NEEDS_COUNTS | LB_LOSS_WEIGHTED_MEAN | LB_LOSS_NORMALIZE_LIST, logit_adjust_init,
    sce_sample, sce_destroy};

/* log n_c and log prior_c differ by a constant, which the softmax ignores */
static int balanced_softmax_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    (void)spec;
    return offset_init(1.0, C, counts, state);
}

const lb_loss_kind lb__kind_balanced_softmax = {
    "balanced softmax: logits + log n_c (Ren et al. 2020)", no_params, "weights", "none", 0.9999,
    LB_LOSS_NEEDS_COUNTS | LB_LOSS_WEIGHTED_MEAN | LB_LOSS_NORMALIZE_LIST, balanced_softmax_init,
    sce_sample, sce_destroy};
