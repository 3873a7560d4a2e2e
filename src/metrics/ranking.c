/* Metrics that need scores, not just predictions: the row argmax, ROC-AUC, average precision, ECE. */
#include "libra/metrics.h"

#include <math.h>
#include <stdlib.h>

void lb_argmax_rows(const float *scores, size_t n, int n_classes, int *pred)
{
    for (size_t i = 0; i < n; i++) {
        const float *row = scores + i * (size_t)n_classes;
        int best = 0;
        for (int c = 1; c < n_classes; c++)
            if (row[c] > row[best]) best = c;
        pred[i] = best;
    }
}

typedef struct {
    float s;
    int pos; /* 1 if the sample belongs to the class being ranked */
} scored;

static int by_score_asc(const void *a, const void *b)
{
    float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

static int check_inputs(const char *fn, const float *scores, const int *y, size_t n, int C)
{
    if (C < 1 || (n && (!scores || !y)))
        return lb_error(LB_EINVAL, "%s: NULL array or n_classes=%d < 1", fn, C);
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= C)
            return lb_error(LB_EINVAL, "%s: label of sample %zu is %d, outside [0, %d)", fn, i,
                            y[i], C);
        for (int c = 0; c < C; c++)
            if (!isfinite(scores[i * (size_t)C + (size_t)c]))
                return lb_error(LB_ENUMERIC, "%s: score [%zu][%d] is not finite", fn, i, c);
    }
    return LB_OK;
}

/* Column c of the scores paired with "is class c", sorted by score. */
static scored *ranked_column(const float *scores, const int *y, size_t n, int C, int c)
{
    scored *v = lb_malloc((n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i].s = scores[i * (size_t)C + (size_t)c];
        v[i].pos = y[i] == c;
    }
    qsort(v, n, sizeof *v, by_score_asc);
    return v;
}

int lb_roc_auc_ovr(const float *scores, const int *y_true, size_t n, int n_classes, double *macro,
                   double *per_class)
{
    int st = check_inputs("lb_roc_auc_ovr", scores, y_true, n, n_classes);
    if (st) return st;
    double sum = 0;
    int defined = 0;
    for (int c = 0; c < n_classes; c++) {
        scored *v = ranked_column(scores, y_true, n, n_classes, c);
        if (!v) return lb_error(LB_ENOMEM, "lb_roc_auc_ovr: out of memory for %zu samples", n);
        /* Mann-Whitney: AUC = (sum of positives' ranks - P(P+1)/2) / (P * N), tied scores
         * sharing their mean rank, which counts a tied (positive, negative) pair as 1/2. */
        double rank_sum = 0, npos = 0;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            double pos_in_tie = 0;
            while (j < n && v[j].s == v[i].s) pos_in_tie += v[j++].pos;
            double mid_rank = 0.5 * (double)(i + 1 + j); /* ranks i+1 .. j */
            rank_sum += pos_in_tie * mid_rank;
            npos += pos_in_tie;
            i = j;
        }
        lb_free(v);
        double nneg = (double)n - npos;
        double auc = NAN;
        if (npos > 0 && nneg > 0) {
            auc = (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
            sum += auc;
            defined++;
        }
        if (per_class) per_class[c] = auc;
    }
    *macro = defined ? sum / defined : NAN;
    return LB_OK;
}

/* Step-wise AP of scores sorted ascending: sum over distinct thresholds, from the highest
 * score down, of (R_k - R_{k-1}) P_k (a group of tied scores is one threshold); NaN without
 * a positive. */
static double ap_of_ranked(const scored *v, size_t n)
{
    double npos = 0;
    for (size_t i = 0; i < n; i++) npos += v[i].pos;
    double ap = 0, tp = 0, seen = 0, prev_recall = 0;
    for (size_t i = n; i > 0;) {
        size_t j = i;
        while (j > 0 && v[j - 1].s == v[i - 1].s) {
            tp += v[j - 1].pos;
            seen += 1;
            j--;
        }
        if (npos > 0) {
            double recall = tp / npos;
            ap += (recall - prev_recall) * (tp / seen);
            prev_recall = recall;
        }
        i = j;
    }
    return npos > 0 ? ap : NAN;
}

int lb_average_precision(const float *scores, const int *y_true, size_t n, int n_classes,
                         int positive, double *out)
{
    int st = check_inputs("lb_average_precision", scores, y_true, n, n_classes);
    if (st) return st;
    if (positive < 0 || positive >= n_classes)
        return lb_error(LB_EINVAL, "lb_average_precision: positive class %d outside [0, %d)",
                        positive, n_classes);
    scored *v = ranked_column(scores, y_true, n, n_classes, positive);
    if (!v) return lb_error(LB_ENOMEM, "lb_average_precision: out of memory for %zu samples", n);
    *out = ap_of_ranked(v, n);
    lb_free(v);
    return LB_OK;
}

int lb_average_precision_binary(const float *scores, const unsigned char *positive, size_t n, double *out)
{
    if (n && (!scores || !positive)) return lb_error(LB_EINVAL, "lb_average_precision_binary: NULL array");
    scored *v = lb_malloc((n ? n : 1) * sizeof *v);
    if (!v) return lb_error(LB_ENOMEM, "lb_average_precision_binary: out of memory for %zu samples", n);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(scores[i])) {
            lb_free(v);
            return lb_error(LB_ENUMERIC, "lb_average_precision_binary: score %zu is not finite", i);
        }
        v[i].s = scores[i];
        v[i].pos = positive[i] != 0;
    }
    qsort(v, n, sizeof *v, by_score_asc);
    *out = ap_of_ranked(v, n);
    lb_free(v);
    return LB_OK;
}

int lb_expected_calibration_error(const float *probs, const int *y_true, size_t n, int n_classes,
                                  int n_bins, double *out)
{
    int st = check_inputs("lb_expected_calibration_error", probs, y_true, n, n_classes);
    if (st) return st;
    if (n_bins < 1 || n_bins > 100000)
        return lb_error(LB_EINVAL, "lb_expected_calibration_error: n_bins=%d outside [1, 100000]",
                        n_bins);
    double *acc = lb_calloc(2 * (size_t)n_bins, sizeof(double));
    size_t *cnt = lb_calloc((size_t)n_bins, sizeof(size_t));
    if (!acc || !cnt) {
        lb_free(acc);
        lb_free(cnt);
        return lb_error(LB_ENOMEM, "lb_expected_calibration_error: out of memory");
    }
    double *conf_sum = acc + n_bins;
    for (size_t i = 0; i < n; i++) {
        int pred;
        lb_argmax_rows(probs + i * (size_t)n_classes, 1, n_classes, &pred);
        double conf = probs[i * (size_t)n_classes + (size_t)pred];
        if (conf < 0 || conf > 1) {
            lb_free(acc);
            lb_free(cnt);
            return lb_error(LB_EINVAL,
                            "lb_expected_calibration_error: top score of sample %zu is %g, "
                            "not a probability (pass softmax outputs, not logits)",
                            i, conf);
        }
        /* bin b holds confidences in (b/B, (b+1)/B]; 0 goes to the first bin */
        int b = (int)ceil(conf * n_bins) - 1;
        if (b < 0) b = 0;
        if (b >= n_bins) b = n_bins - 1;
        cnt[b]++;
        conf_sum[b] += conf;
        acc[b] += pred == y_true[i];
    }
    double ece = 0;
    for (int b = 0; b < n_bins; b++)
        if (cnt[b]) ece += fabs(acc[b] - conf_sum[b]) / (double)n; /* = |B|/n * |acc - conf| */
    lb_free(acc);
    lb_free(cnt);
    *out = n ? ece : NAN;
    return LB_OK;
}
