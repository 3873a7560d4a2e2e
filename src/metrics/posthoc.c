/* Post-hoc corrections: the same trained model's logits, re-weighted by the training prior. */
#include "libra/metrics.h"

#include <math.h>

/* Writes softmax(row + shift) for one row, in double, into out. */
static void softmax_row(const float *row, const double *shift, int C, float *out)
{
    double mx = -INFINITY, sum = 0;
    for (int c = 0; c < C; c++) {
        double z = (double)row[c] + (shift ? shift[c] : 0.0);
        if (z > mx) mx = z;
    }
    for (int c = 0; c < C; c++) sum += exp((double)row[c] + (shift ? shift[c] : 0.0) - mx);
    for (int c = 0; c < C; c++)
        out[c] = (float)(exp((double)row[c] + (shift ? shift[c] : 0.0) - mx) / sum);
}

static int check_logits(const char *fn, const float *logits, size_t n, int C, const float *out)
{
    if (C < 1 || (n && (!logits || !out)))
        return lb_error(LB_EINVAL, "%s: NULL array or n_classes=%d < 1", fn, C);
    for (size_t i = 0; i < n * (size_t)C; i++)
        if (!isfinite(logits[i]))
            return lb_error(LB_ENUMERIC, "%s: logit [%zu][%zu] is not finite", fn, i / (size_t)C,
                            i % (size_t)C);
    return LB_OK;
}

int lb_softmax_rows(const float *logits, size_t n, int n_classes, float *probs)
{
    int st = check_logits("lb_softmax_rows", logits, n, n_classes, probs);
    if (st) return st;
    for (size_t i = 0; i < n; i++)
        softmax_row(logits + i * (size_t)n_classes, NULL, n_classes, probs + i * (size_t)n_classes);
    return LB_OK;
}

/* shift[c] = -tau * log(pi_c). Dividing softmax by pi and renormalising equals
 * softmax(logits - log pi), so prior correction is the tau = 1 case. */
static int adjusted(const char *fn, const float *logits, size_t n, int C, const int *counts,
                    double tau, float *probs)
{
    int st = check_logits(fn, logits, n, C, probs);
    if (st) return st;
    if (!counts) return lb_error(LB_EINVAL, "%s: NULL training counts", fn);
    if (!isfinite(tau)) return lb_error(LB_EINVAL, "%s: tau=%g is not finite", fn, tau);
    double total = 0;
    for (int c = 0; c < C; c++) {
        if (counts[c] <= 0)
            return lb_error(LB_EINVAL,
                            "%s: training count of class %d is %lld; the prior needs > 0", fn, c,
                            (long long)counts[c]);
        total += (double)counts[c];
    }
    double *shift = lb_malloc((size_t)C * sizeof(double));
    if (!shift) return lb_error(LB_ENOMEM, "%s: out of memory", fn);
    for (int c = 0; c < C; c++) shift[c] = -tau * log((double)counts[c] / total);
    for (size_t i = 0; i < n; i++)
        softmax_row(logits + i * (size_t)C, shift, C, probs + i * (size_t)C);
    lb_free(shift);
    return LB_OK;
}

int lb_posthoc_prior_correction(const float *logits, size_t n, int n_classes,
                                const int *train_counts, float *probs)
{
    return adjusted("lb_posthoc_prior_correction", logits, n, n_classes, train_counts, 1.0, probs);
}

int lb_posthoc_logit_adjust(const float *logits, size_t n, int n_classes,
                            const int *train_counts, double tau, float *probs)
{
    return adjusted("lb_posthoc_logit_adjust", logits, n, n_classes, train_counts, tau, probs);
}

int lb_prior_shift(const float *logits, size_t n, int n_classes, const int *train_counts, const double *deploy,
                   float *probs)
{
    const char *fn = "lb_prior_shift";
    int st = check_logits(fn, logits, n, n_classes, probs);
    if (st) return st;
    if (!train_counts || !deploy) return lb_error(LB_EINVAL, "%s: NULL training counts or deployment prior", fn);
    double total = 0, dsum = 0;
    for (int c = 0; c < n_classes; c++) {
        if (train_counts[c] <= 0)
            return lb_error(LB_EINVAL, "%s: training count of class %d is %d; the prior needs > 0", fn, c,
                            train_counts[c]);
        if (!(deploy[c] >= 0) || !isfinite(deploy[c]))
            return lb_error(LB_EINVAL, "%s: deployment prior of class %d is %g; it must be >= 0", fn, c, deploy[c]);
        total += train_counts[c];
        dsum += deploy[c];
    }
    if (!(dsum > 0)) return lb_error(LB_EINVAL, "%s: the deployment prior sums to 0", fn);
    double *shift = lb_malloc((size_t)n_classes * sizeof(double));
    if (!shift) return lb_error(LB_ENOMEM, "%s: out of memory for %d classes", fn, n_classes);
    for (int c = 0; c < n_classes; c++) shift[c] = log(deploy[c] / dsum) - log(train_counts[c] / total);
    for (size_t i = 0; i < n; i++)
        softmax_row(logits + i * (size_t)n_classes, shift, n_classes, probs + i * (size_t)n_classes);
    lb_free(shift);
    return LB_OK;
}
