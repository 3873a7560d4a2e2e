/* The confusion matrix and the metrics that are functions of it alone. */
#include "libra/metrics.h"

#include <math.h>
#include <string.h>

int lb_confusion_add(int64_t *counts, int n_classes, const int *y_true, const int *y_pred, size_t n)
{
    if (!counts || n_classes < 1 || (n && (!y_true || !y_pred)))
        return lb_error(LB_EINVAL, "lb_confusion_add: NULL array or n_classes=%d < 1", n_classes);
    /* validate everything first so a bad label leaves the matrix untouched */
    for (size_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || y_true[i] >= n_classes || y_pred[i] < 0 || y_pred[i] >= n_classes)
            return lb_error(LB_EINVAL,
                            "lb_confusion_add: sample %zu has true=%d pred=%d, outside [0, %d)", i,
                            y_true[i], y_pred[i], n_classes);
    }
    for (size_t i = 0; i < n; i++)
        counts[(size_t)y_true[i] * (size_t)n_classes + (size_t)y_pred[i]]++;
    return LB_OK;
}


void lb_metrics_opts_default(lb_metrics_opts *o)
{
    o->shot_mode = LB_SHOT_ABSOLUTE;
    o->many_above = 100.0;
    o->few_below = 20.0;
    o->ece_bins = 15;
    o->pr_positive = -1;
}

int lb_shot_group(int count, int max_count, const lb_metrics_opts *o)
{
    lb_metrics_opts d;
    if (!o) {
        lb_metrics_opts_default(&d);
        o = &d;
    }
    double scale = o->shot_mode == LB_SHOT_RELATIVE ? (double)max_count : 1.0;
    if ((double)count > o->many_above * scale) return 0;
    if ((double)count < o->few_below * scale) return 2;
    return 1;
}

int lb_metrics_init(lb_metrics *m, int n_classes)
{
    memset(m, 0, sizeof *m);
    if (n_classes < 1) return lb_error(LB_EINVAL, "lb_metrics_init: n_classes=%d < 1", n_classes);
    size_t c = (size_t)n_classes;
    m->n_classes = n_classes;
    m->precision = lb_calloc(c, sizeof(float));
    m->recall = lb_calloc(c, sizeof(float));
    m->f1 = lb_calloc(c, sizeof(float));
    m->confusion = lb_calloc(c * c, sizeof(int64_t));
    if (!m->precision || !m->recall || !m->f1 || !m->confusion) {
        lb_metrics_free(m);
        return lb_error(LB_ENOMEM, "lb_metrics_init: out of memory for %d classes", n_classes);
    }
    float nan = NAN;
    m->accuracy = m->balanced_accuracy = m->macro_f1 = m->weighted_f1 = m->g_mean = nan;
    m->minority_recall = m->many_shot_accuracy = m->medium_shot_accuracy = m->few_shot_accuracy = nan;
    m->roc_auc = m->pr_auc = m->ece = nan;
    return LB_OK;
}

void lb_metrics_free(lb_metrics *m)
{
    if (!m) return;
    lb_free(m->precision);
    lb_free(m->recall);
    lb_free(m->f1);
    lb_free(m->confusion);
    memset(m, 0, sizeof *m);
    m->n_classes = 0;
}

int lb_metrics_copy(lb_metrics *dst, const lb_metrics *src)
{
    lb_metrics t;
    int st = lb_metrics_init(&t, src->n_classes);
    if (st) return st;
    size_t c = (size_t)src->n_classes;
    float *p = t.precision, *r = t.recall, *f = t.f1;
    int64_t *cm = t.confusion;
    t = *src; /* scalars */
    t.precision = p;
    t.recall = r;
    t.f1 = f;
    t.confusion = cm;
    memcpy(p, src->precision, c * sizeof(float));
    memcpy(r, src->recall, c * sizeof(float));
    memcpy(f, src->f1, c * sizeof(float));
    memcpy(cm, src->confusion, c * c * sizeof(int64_t));
    *dst = t;
    return LB_OK;
}

static double ratio0(double num, double den) { return den > 0 ? num / den : 0.0; }

/* Checks that no count is negative; *total is the number of test samples, *max_train the
 * largest of train_counts (when given) and *min_train the smallest among the classes with
 * test images (the minority the metrics can score). */
static int check_counts(const int64_t *confusion, size_t C, const int *train_counts, int64_t *total,
                        int *max_train, int *min_train)
{
    for (size_t i = 0; i < C * C; i++) {
        if (confusion[i] < 0)
            return lb_error(LB_EINVAL,
                            "lb_metrics_from_confusion: negative count %lld at [%zu][%zu]",
                            (long long)confusion[i], i / C, i % C);
        *total += confusion[i];
    }
    if (train_counts) {
        for (size_t c = 0; c < C; c++) {
            if (train_counts[c] < 0)
                return lb_error(LB_EINVAL,
                                "lb_metrics_from_confusion: train count of class %zu is %d", c,
                                train_counts[c]);
            int64_t support = 0;
            for (size_t k = 0; k < C; k++) support += confusion[c * C + k];
            if (train_counts[c] > *max_train) *max_train = train_counts[c];
            if (support > 0 && train_counts[c] < *min_train) *min_train = train_counts[c];
        }
    }
    return LB_OK;
}

/* Sums over the classes, for the averaged metrics; the recall-based ones only over classes
 * with test support. */
typedef struct {
    int64_t correct;
    double sum_f1, wsum_f1, sum_rec, sum_logrec;
    double grp_sum[3], min_sum; /* recall by shot group, and over the rarest training classes */
    int n_present, any_zero_rec, grp_n[3], min_n;
} class_sums;

/* Precision, recall and F1 of every class into m, added up into *s. */
static void per_class(lb_metrics *m, const int64_t *confusion, size_t C, const int *train_counts, int max_train,
                      int min_train, const lb_metrics_opts *opts, class_sums *s)
{
    for (size_t c = 0; c < C; c++) {
        int64_t tp = confusion[c * C + c], support = 0, predicted = 0;
        for (size_t k = 0; k < C; k++) {
            support += confusion[c * C + k];
            predicted += confusion[k * C + c];
        }
        s->correct += tp;
        double prec = ratio0((double)tp, (double)predicted);
        double rec = ratio0((double)tp, (double)support);
        /* F1 = 2tp / (2tp + fp + fn): same as the harmonic mean, with 0/0 = 0 */
        double f1 = ratio0(2.0 * (double)tp, (double)(support + predicted));
        m->precision[c] = (float)prec;
        m->recall[c] = (float)rec;
        m->f1[c] = (float)f1;
        s->wsum_f1 += f1 * (double)support;
        if (support == 0) continue;
        s->sum_f1 += f1;
        s->n_present++;
        s->sum_rec += rec;
        if (rec > 0)
            s->sum_logrec += log(rec);
        else
            s->any_zero_rec = 1;
        if (train_counts) {
            int g = lb_shot_group(train_counts[c], max_train, opts);
            s->grp_sum[g] += rec;
            s->grp_n[g]++;
            if (train_counts[c] == min_train) {
                s->min_sum += rec;
                s->min_n++;
            }
        }
    }
}

/* The averaged metrics from the sums; those with nothing to average over stay NaN. */
static void averages(lb_metrics *m, const class_sums *s, int64_t total, const int *train_counts)
{
    m->n_scored = s->n_present;
    if (total > 0) {
        m->macro_f1 = (float)(s->sum_f1 / s->n_present);
        m->accuracy = (float)((double)s->correct / (double)total);
        m->weighted_f1 = (float)(s->wsum_f1 / (double)total);
    }
    if (s->n_present > 0) {
        m->balanced_accuracy = (float)(s->sum_rec / s->n_present);
        m->g_mean = s->any_zero_rec ? 0.0f : (float)exp(s->sum_logrec / s->n_present);
    }
    if (train_counts) {
        if (s->min_n) m->minority_recall = (float)(s->min_sum / s->min_n);
        float *grp[3] = {&m->many_shot_accuracy, &m->medium_shot_accuracy, &m->few_shot_accuracy};
        for (int g = 0; g < 3; g++)
            if (s->grp_n[g]) *grp[g] = (float)(s->grp_sum[g] / s->grp_n[g]);
    }
}

int lb_metrics_from_confusion(lb_metrics *m, const int64_t *confusion, int n_classes,
                              const int *train_counts, const lb_metrics_opts *opts)
{
    lb_metrics_opts d;
    if (!opts) {
        lb_metrics_opts_default(&d);
        opts = &d;
    }
    if (!confusion) return lb_error(LB_EINVAL, "lb_metrics_from_confusion: NULL confusion matrix");
    int st = lb_metrics_init(m, n_classes);
    if (st) return st;
    size_t C = (size_t)n_classes;
    int64_t total = 0;
    int max_train = 0, min_train = INT32_MAX;
    st = check_counts(confusion, C, train_counts, &total, &max_train, &min_train);
    if (st) {
        lb_metrics_free(m);
        return st;
    }
    memcpy(m->confusion, confusion, C * C * sizeof(int64_t));
    m->n = total;
    class_sums s = {0};
    per_class(m, confusion, C, train_counts, max_train, min_train, opts, &s);
    averages(m, &s, total, train_counts);
    return LB_OK;
}

int lb_metrics_from_scores(lb_metrics *m, const float *probs, const int *y_true, size_t n,
                           int n_classes, const int *train_counts, const lb_metrics_opts *opts)
{
    lb_metrics_opts d;
    if (!opts) {
        lb_metrics_opts_default(&d);
        opts = &d;
    }
    if (n_classes < 1 || (n && (!probs || !y_true)))
        return lb_error(LB_EINVAL, "lb_metrics_from_scores: NULL array or n_classes=%d < 1",
                        n_classes);
    size_t C = (size_t)n_classes;
    int *pred = lb_malloc((n ? n : 1) * sizeof(int));
    int64_t *cm = lb_calloc(C * C, sizeof(int64_t));
    if (!pred || !cm) {
        lb_free(pred);
        lb_free(cm);
        return lb_error(LB_ENOMEM, "lb_metrics_from_scores: out of memory for %zu samples", n);
    }
    double auc = NAN, ap = NAN, ece = NAN;
    lb_argmax_rows(probs, n, n_classes, pred);
    int st = lb_confusion_add(cm, n_classes, y_true, pred, n);
    if (!st) st = lb_roc_auc_ovr(probs, y_true, n, n_classes, &auc, NULL);
    if (!st && n_classes == 2) {
        int pos = opts->pr_positive;
        if (pos < 0) /* the minority class; class 1 on a tie or without counts */
            pos = (train_counts && train_counts[0] < train_counts[1]) ? 0 : 1;
        if (pos >= n_classes)
            st = lb_error(LB_EINVAL, "lb_metrics_from_scores: pr_positive=%d but 2 classes", pos);
        else
            st = lb_average_precision(probs, y_true, n, n_classes, pos, &ap);
    }
    if (!st) st = lb_expected_calibration_error(probs, y_true, n, n_classes, opts->ece_bins, &ece);
    if (!st) st = lb_metrics_from_confusion(m, cm, n_classes, train_counts, opts);
    lb_free(pred);
    lb_free(cm);
    if (st) return st;
    m->roc_auc = (float)auc;
    m->pr_auc = (float)ap;
    m->ece = (float)ece;
    return LB_OK;
}
