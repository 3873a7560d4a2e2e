/* libra metrics: the confusion matrix and every metric computed from it, ranking and
 * calibration metrics from score arrays, and the post-hoc corrections (prior correction,
 * logit adjustment) applied to a trained model's logits.
 *
 * Definitions, including every 0/0 case, are in docs/metrics.md. In short:
 * - precision, recall, F1 of a class with a zero denominator are 0 (sklearn's zero_division=0);
 * - balanced accuracy, G-mean and the many/medium/few-shot accuracies average over the
 *   classes that have at least one test sample; a value with nothing to average is NaN;
 * - ROC-AUC of a class with no positives or no negatives is undefined and left out of the
 *   macro mean (NaN when no class has it).
 * Metric values are stored as float: results files print them with %.9g, which reads back
 * to the same float, so a record survives a write/read round trip bit for bit.
 *
 *   lb_metrics m;
 *   lb_softmax_rows(logits, n, C, probs);
 *   if (lb_metrics_from_scores(&m, probs, labels, n, C, train_counts, NULL) != LB_OK) ...;
 *   for (int i = 0; i < LB_N_METRIC_FIELDS; i++)          // every scalar, by the one table
 *       printf("%s %.4f\n", lb_metric_fields[i].name, lb_metric_get(&m, &lb_metric_fields[i]));
 *   lb_metrics_free(&m);
 */
#ifndef LIBRA_METRICS_H
#define LIBRA_METRICS_H

#include "libra/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Class counts (how many training images each class has) are ints everywhere in libra;
 * confusion-matrix cells, which can add up many evaluations, are int64_t. */

/* ---- confusion matrix: counts[t * C + p], row = true class t, column = predicted p ---- */

/* Adds (+=) n (true, predicted) pairs, so evaluation can accumulate batch by batch.
 * LB_EINVAL if a label is outside [0, C). */
int lb_confusion_add(int64_t *counts, int n_classes, const int *y_true, const int *y_pred,
                     size_t n);
/* pred[i] = index of the largest score in row i (the first one on ties). */
void lb_argmax_rows(const float *scores, size_t n, int n_classes, int *pred);

/* ---- options ---- */

/* How training counts are split into many/medium/few-shot groups. */
typedef enum {
    LB_SHOT_ABSOLUTE = 0, /* thresholds are training-image counts (Kang et al. / Liu et al.) */
    LB_SHOT_RELATIVE = 1  /* thresholds are fractions of the largest training count */
} lb_shot_mode;

typedef struct lb_metrics_opts {
    lb_shot_mode shot_mode; /* default LB_SHOT_ABSOLUTE */
    double many_above;      /* many-shot: train count > many_above (default 100) */
    double few_below;       /* few-shot: train count < few_below (default 20); medium: the rest */
    int ece_bins;           /* equal-width confidence bins for ECE (default 15) */
    int pr_positive;        /* positive class of PR-AUC in binary tasks; -1 (default): the class
                               with the fewest training images (class 1 without train counts) */
} lb_metrics_opts;

void lb_metrics_opts_default(lb_metrics_opts *o);
/* 0 = many, 1 = medium, 2 = few for a class with `count` training images when the largest
 * class has `max_count`. */
int lb_shot_group(int count, int max_count, const lb_metrics_opts *o);

/* ---- the metric set of one evaluation ---- */

typedef struct lb_metrics {
    int n_classes;
    int64_t n; /* test samples counted */
    int n_scored; /* classes with test samples: the averages below except accuracy and
                     weighted F1 are over these; a class without any is left out of them */
    float accuracy;
    float balanced_accuracy; /* mean per-class recall */
    float macro_f1, weighted_f1;
    float g_mean;          /* geometric mean of per-class recall */
    float minority_recall; /* mean recall of the class(es) with the fewest training images
                              among those with test samples */
    float many_shot_accuracy, medium_shot_accuracy, few_shot_accuracy;
    float roc_auc;                  /* one-vs-rest macro ROC-AUC (NaN without scores) */
    float pr_auc;                   /* average precision, binary tasks only (NaN otherwise) */
    float ece;                      /* expected calibration error, top label (NaN without scores) */
    float *precision, *recall, *f1; /* [n_classes] */
    int64_t *confusion;             /* [n_classes * n_classes] */
} lb_metrics;

/* ---- the one table of metric fields ----
 * Every file and display that shows a scalar metric takes its name, its place in lb_metrics
 * and its direction from here: results.json, results.csv, metrics.json, libra-evaluate's
 * output, report.html, the terminal summary and the record reader. */
typedef struct lb_metric_field {
    const char *name;      /* the key everywhere: "balanced_accuracy" */
    const char *label;     /* a short column head: "balanced acc." */
    size_t offset;         /* of the float in lb_metrics */
    const char *format;    /* for the terminal: "%.4f" */
    int higher_is_better;  /* 0 for ECE */
    int in_summary;        /* a column of report.html's summary table */
} lb_metric_field;

#define LB_N_METRIC_FIELDS 12
extern const lb_metric_field lb_metric_fields[LB_N_METRIC_FIELDS];
/* The field's value in m, and where it lives. */
float lb_metric_get(const lb_metrics *m, const lb_metric_field *f);
float *lb_metric_ptr(lb_metrics *m, const lb_metric_field *f);
/* The field named `name`, or NULL. */
const lb_metric_field *lb_metric_field_find(const char *name);

/* Allocates the arrays (zeroed) and sets every scalar to NaN. */
int lb_metrics_init(lb_metrics *m, int n_classes);
void lb_metrics_free(lb_metrics *m);
/* dst gets its own copy of src's arrays (dst is overwritten, not freed). */
int lb_metrics_copy(lb_metrics *dst, const lb_metrics *src);

/* Every metric from a confusion matrix; ROC-AUC, PR-AUC and ECE are NaN (they need scores).
 * train_counts [C] may be NULL: then minority recall and the shot groups are NaN.
 * opts may be NULL (defaults). m is initialised here; free it with lb_metrics_free. */
int lb_metrics_from_confusion(lb_metrics *m, const int64_t *confusion, int n_classes,
                              const int *train_counts, const lb_metrics_opts *opts);
/* Every metric from class probabilities [n, C] (e.g. softmax outputs; rows in [0,1]):
 * predictions are the row argmax. */
int lb_metrics_from_scores(lb_metrics *m, const float *probs, const int *y_true, size_t n,
                           int n_classes, const int *train_counts, const lb_metrics_opts *opts);

/* ---- ranking and calibration metrics from scores [n, C] ---- */

/* One-vs-rest ROC-AUC of each class (ties count one half) and their macro mean over the
 * classes where it is defined. per_class [C] may be NULL. */
int lb_roc_auc_ovr(const float *scores, const int *y_true, size_t n, int n_classes, double *macro,
                   double *per_class);
/* Average precision of class `positive` against the rest, ranking by scores[:, positive]:
 * sum over distinct thresholds of (R_k - R_{k-1}) * P_k. NaN when there is no positive. */
int lb_average_precision(const float *scores, const int *y_true, size_t n, int n_classes,
                         int positive, double *out);
/* The same for one binary problem: scores[i] ranks sample i, positive[i] != 0 marks it. */
int lb_average_precision_binary(const float *scores, const unsigned char *positive, size_t n, double *out);

/* ---- dense tasks: one score per class per location (docs/dense.md) ----
 * scores [N, K, H, W] (K >= C planes; planes 0..C-1 are the object classes: sigmoid or softmax
 * probabilities, or any scores that rank like them), targets [N, H, W] in [0, C], C = background.
 * Per class c: location AP, the step-wise AP of plane c over all N*H*W locations with the
 * locations whose target is c as positives; image AP, the AP of max over an image's locations of
 * plane c, positive when the image has a location of class c. A class without a positive gets
 * NaN; the means are over the classes that have one (n_used: how many), NaN if none has.
 * location_ap and image_ap: C doubles each (either may be NULL). */
typedef struct lb_dense_ap {
    double mean_ap;        /* mean of location_ap */
    double image_mean_ap;  /* mean of image_ap */
    int n_used, n_used_image;
} lb_dense_ap;
int lb_dense_average_precision(const float *scores, const int *targets, int N, int K, int H, int W, int C,
                               double *location_ap, double *image_ap, lb_dense_ap *out);
/* Top-label expected calibration error with n_bins equal-width bins over (0, 1]:
 * sum_b |B_b|/n * |accuracy(B_b) - mean confidence(B_b)|. */
int lb_expected_calibration_error(const float *probs, const int *y_true, size_t n, int n_classes,
                                  int n_bins, double *out);

/* ---- post-hoc corrections of a trained model's logits [n, C] ---- */

/* Row-wise softmax (max-subtracted). */
int lb_softmax_rows(const float *logits, size_t n, int n_classes, float *probs);
/* Prior correction ("thresholding", Buda et al.): softmax(logits) / pi, renormalised per row
 * to sum to 1; pi = train_counts / sum(train_counts). Every count must be > 0. */
int lb_posthoc_prior_correction(const float *logits, size_t n, int n_classes,
                                const int *train_counts, float *probs);
/* Post-hoc logit adjustment (Menon et al.): softmax(logits - tau * log pi). */
int lb_posthoc_logit_adjust(const float *logits, size_t n, int n_classes,
                            const int *train_counts, double tau, float *probs);

/* Prior shift (Saerens et al. 2002): the model's probabilities corrected from the training
 * prior pi_train = train_counts / sum to a deployment prior, p'(y|x) proportional to
 * p(y|x) * deploy[y] / pi_train[y], i.e. softmax(logits + log deploy - log pi_train).
 * deploy: n_classes values >= 0 with a positive sum (normalised here); a class of prior 0 is
 * never predicted. Every training count must be > 0. */
int lb_prior_shift(const float *logits, size_t n, int n_classes, const int *train_counts, const double *deploy,
                   float *probs);

/* ---- operating points: one class's score against a threshold ---- */

/* The largest threshold t such that predicting `positive` when scores[i] >= t reaches
 * recall >= target on (scores, y): the k-th largest score among the positives, k =
 * ceil(target * positives) (so the best precision at that recall). *precision and *recall
 * are those at t on the same data. LB_EINVAL if y has no positive or target is outside
 * (0, 1]. scores: one per sample (e.g. the positive column of the probabilities). */
int lb_threshold_for_recall(const float *scores, const int *y, size_t n, int positive, double target,
                            double *threshold, double *precision, double *recall);
/* Precision and recall of predicting `positive` when scores[i] >= t (NaN where nothing is
 * predicted positive, or y has no positive). */
void lb_precision_recall_at(const float *scores, const int *y, size_t n, int positive, double t, double *precision,
                            double *recall);
/* The precision-recall and ROC curves of `scores` for class `positive` (every distinct
 * score a threshold, from the highest), after a first point for "nothing positive" (PR: recall
 * 0, precision 1; ROC: (0, 0)), thinned to at most max_points points (evenly by threshold
 * rank, the lowest kept): pr_x recall, pr_y precision; roc_x false positive rate, roc_y true
 * positive rate. Arrays of max_points floats; *n_points gets the count.
 * LB_EINVAL without a positive or a negative sample. */
int lb_binary_curves(const float *scores, const int *y, size_t n, int positive, int max_points, float *pr_x,
                     float *pr_y, float *roc_x, float *roc_y, int *n_points);
/* Decisions with a threshold on class `positive`: positive when probs[i][positive] >= t,
 * else the most probable other class (ties to the lower index). */
void lb_predict_with_threshold(const float *probs, size_t n, int n_classes, int positive, double t, int *pred);

/* ---- which differences are real (docs/metrics.md, "Intervals") ---- */
/* The 97.5% quantile of Student's t with df >= 1 degrees of freedom (12.706 at df 1, 1.960 as
 * df grows): the factor of a two-sided 95% interval. */
double lb_t975(int df);
/* Mean of x[0..n) and the 95% t-interval mean ± t975(n-1) s / sqrt(n) (s the sample standard
 * deviation); with n = 1 the interval is NaN (one seed says nothing of the spread). */
void lb_mean_ci95(const double *x, int n, double *mean, double *lo, double *hi);

/* The difference in balanced accuracy between strategy a and strategy b, k seeds each (seed j
 * of a paired with seed j of b), on the same n test images (labels y, C classes). */
typedef struct lb_paired_diff {
    double diff;       /* mean over seeds of bacc(a_j) - bacc(b_j) on the whole test set */
    double lo, hi;     /* the 95% percentile interval of the bootstrap */
    int excludes_zero; /* lo > 0 or hi < 0 */
} lb_paired_diff;
/* The paired bootstrap: each of `resamples` rounds draws k seeds and n test images with
 * replacement (the same draws for a and b: paired over images and seeds), and takes the mean
 * over the drawn seeds of bacc(a) - bacc(b) on the drawn images (balanced accuracy over the
 * classes the drawn images hold); lo and hi are the order statistics at floor(0.025)
 * and ceil(0.975) of the R differences. Draws from lb_rng seeded with `seed`. pred_a[j],
 * pred_b[j]: the predicted classes [n] of seed j. LB_EINVAL on bad sizes or classes. */
int lb_paired_bootstrap(const int *const *pred_a, const int *const *pred_b, const int *y, int n, int k, int C,
                        int resamples, uint64_t seed, lb_paired_diff *out);
/* The same resamples for several lines at once (what makes any two of them paired): pred
 * [n_lines * k], line l's seed j at pred[l * k + j]; out [n_lines * resamples] gets, per line
 * and resample, the mean over the drawn seeds of the balanced accuracy on the drawn images. */
int lb_bootstrap_bacc(const int *const *pred, int n_lines, int k, const int *y, int n, int C, int resamples,
                      uint64_t seed, double *out);
/* The interval of a - b from two lines' resamples of lb_bootstrap_bacc; diff: the point
 * estimate to report with it. */
int lb_paired_diff_of(const double *boot_a, const double *boot_b, int resamples, double diff, lb_paired_diff *out);

#ifdef __cplusplus
}
#endif
#endif
