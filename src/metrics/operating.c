/* Operating points: the decision threshold on one class's score for a target recall. */
#include "libra/metrics.h"

#include <math.h>
#include <stdlib.h>

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int lb_threshold_for_recall(const float *scores, const int *y, size_t n, int positive, double target,
                            double *threshold, double *precision, double *recall)
{
    if (!(target > 0 && target <= 1))
        return lb_error(LB_EINVAL, "threshold: the target recall %g must be in (0, 1]", target);
    size_t P = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(scores[i])) return lb_error(LB_ENUMERIC, "threshold: score %zu is not finite", i);
        P += y[i] == positive;
    }
    if (P == 0) return lb_error(LB_EINVAL, "threshold: no sample of the class to reach a recall on");
    float *pos = lb_malloc(P * sizeof(float));
    if (!pos) return lb_error(LB_ENOMEM, "threshold: out of memory for %zu scores", P);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (y[i] == positive) pos[k++] = scores[i];
    qsort(pos, P, sizeof(float), cmp_desc);
    /* k positives at or above the threshold; the 1e-9 keeps 0.95 * 20 from becoming 20 */
    k = (size_t)ceil(target * (double)P - 1e-9);
    if (k < 1) k = 1;
    float t = pos[k - 1];
    lb_free(pos);
    size_t tp = 0, at_or_above = 0;
    for (size_t i = 0; i < n; i++)
        if (scores[i] >= t) {
            at_or_above++;
            tp += y[i] == positive;
        }
    *threshold = t;
    *recall = (double)tp / (double)P;
    *precision = (double)tp / (double)at_or_above;
    return LB_OK;
}

void lb_predict_with_threshold(const float *probs, size_t n, int n_classes, int positive, double t, int *pred)
{
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * (size_t)n_classes;
        if (p[positive] >= t) {
            pred[i] = positive;
            continue;
        }
        int best = -1;
        for (int c = 0; c < n_classes; c++)
            if (c != positive && (best < 0 || p[c] > p[best])) best = c;
        pred[i] = best < 0 ? positive : best;
    }
}
