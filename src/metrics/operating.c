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
    *threshold = pos[k - 1];
    lb_free(pos);
    lb_precision_recall_at(scores, y, n, positive, *threshold, precision, recall);
    return LB_OK;
}

void lb_precision_recall_at(const float *scores, const int *y, size_t n, int positive, double t, double *precision,
                            double *recall)
{
    size_t tp = 0, at_or_above = 0, P = 0;
    for (size_t i = 0; i < n; i++) {
        P += y[i] == positive;
        at_or_above += scores[i] >= t;
        tp += scores[i] >= t && y[i] == positive;
    }
    *recall = P ? (double)tp / (double)P : NAN;
    *precision = at_or_above ? (double)tp / (double)at_or_above : NAN;
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

typedef struct {
    float s;
    int pos;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return x->s < y->s ? 1 : x->s > y->s ? -1 : 0;
}

/* The cumulative true and false positives at each distinct score, highest first, into
 * tp[k], fp[k] (k < *K). v is sorted here. */
static void cumulative(scored *v, size_t n, size_t *tp, size_t *fp, size_t *K)
{
    qsort(v, n, sizeof *v, cmp_scored);
    size_t t = 0, f = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        t += (size_t)v[i].pos;
        f += (size_t)!v[i].pos;
        if (i + 1 == n || v[i + 1].s != v[i].s) {
            tp[k] = t;
            fp[k++] = f;
        }
    }
    *K = k;
}

int lb_binary_curves(const float *scores, const int *y, size_t n, int positive, int max_points, float *pr_x,
                     float *pr_y, float *roc_x, float *roc_y, int *n_points)
{
    *n_points = 0;
    if (max_points < 2) return lb_error(LB_EINVAL, "curves: max_points %d < 2", max_points);
    scored *v = lb_malloc(sizeof *v * (n + 1));
    size_t *tp = lb_malloc(sizeof *tp * (n + 1)), *fp = lb_malloc(sizeof *fp * (n + 1));
    int rc = v && tp && fp ? LB_OK : lb_error(LB_ENOMEM, "curves: out of memory for %zu scores", n);
    size_t P = 0, K = 0;
    for (size_t i = 0; rc == LB_OK && i < n; i++) {
        v[i].s = scores[i];
        v[i].pos = y[i] == positive;
        P += (size_t)v[i].pos;
    }
    if (rc == LB_OK && (P == 0 || P == n))
        rc = lb_error(LB_EINVAL, "curves: the labels need both a positive and a negative sample");
    if (rc == LB_OK) cumulative(v, n, tp, fp, &K);
    /* the start (nothing predicted positive: recall 0, precision 1 by sklearn's convention),
     * then m thresholds evenly by rank, the lowest (everything positive) last */
    size_t m = K < (size_t)max_points - 1 ? K : (size_t)max_points - 1;
    for (size_t j = 0; rc == LB_OK && j <= m; j++) {
        if (j == 0) {
            pr_x[0] = 0.0f, pr_y[0] = 1.0f, roc_x[0] = 0.0f, roc_y[0] = 0.0f;
            continue;
        }
        size_t k = m == 1 ? K - 1 : (size_t)llround((double)(j - 1) * (double)(K - 1) / (double)(m - 1));
        pr_x[j] = roc_y[j] = (float)((double)tp[k] / (double)P);
        pr_y[j] = (float)((double)tp[k] / (double)(tp[k] + fp[k]));
        roc_x[j] = (float)((double)fp[k] / (double)(n - P));
    }
    if (rc == LB_OK) *n_points = (int)m + 1;
    lb_free(v);
    lb_free(tp);
    lb_free(fp);
    return rc;
}
