/* Metrics: hand-worked small cases (worked out in the comments) and larger cases against
 * tests/ref/metric_refs.h, which tests/ref/make_metric_refs.py generated with scikit-learn
 * and independent numpy code. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "libra/metrics.h"
#include "ref/metric_refs.h"

#define TOL 1e-6

/* ---- hand-worked ---- */

/* 3 classes; class 2 has no test sample but is predicted once.
 *   true 0: [5 1 0]   support 6, column sums 7 4 1
 *   true 1: [2 3 1]   support 6
 *   true 2: [0 0 0]   support 0
 * precision 5/7, 3/4, 0/1=0; recall 5/6, 1/2, 0/0=0; F1 = 2tp/(support+predicted):
 * 10/13, 6/10, 0/1=0. accuracy 8/12; balanced accuracy (5/6+1/2)/2, macro-F1
 * (10/13+0.6)/2 and G-mean sqrt(5/6*1/2) over the 2 classes with test samples; weighted F1
 * (6*10/13 + 6*0.6)/12; the minority among scored classes is class 1 (50 training images). */
START_TEST(test_hand_confusion)
{
    int64_t cm[9] = {5, 1, 0, 2, 3, 1, 0, 0, 0};
    int train[3] = {200, 50, 10};
    lb_metrics m;
    ck_assert_int_eq(lb_metrics_from_confusion(&m, cm, 3, train, NULL), LB_OK);
    ck_assert_int_eq(m.n, 12);
    ck_assert_close(m.precision[0], 5.0 / 7, TOL);
    ck_assert_close(m.precision[1], 0.75, TOL);
    ck_assert_close(m.precision[2], 0.0, 0);
    ck_assert_close(m.recall[0], 5.0 / 6, TOL);
    ck_assert_close(m.recall[1], 0.5, TOL);
    ck_assert_close(m.recall[2], 0.0, 0);
    ck_assert_close(m.f1[0], 10.0 / 13, TOL);
    ck_assert_close(m.f1[1], 0.6, TOL);
    ck_assert_close(m.f1[2], 0.0, 0);
    ck_assert_close(m.accuracy, 8.0 / 12, TOL);
    ck_assert_close(m.balanced_accuracy, (5.0 / 6 + 0.5) / 2, TOL);
    ck_assert_int_eq(m.n_scored, 2);
    ck_assert_close(m.macro_f1, (10.0 / 13 + 0.6) / 2, TOL);
    ck_assert_close(m.weighted_f1, (10.0 / 13 + 0.6) / 2, TOL);
    ck_assert_close(m.g_mean, sqrt(5.0 / 12), TOL);
    /* defaults: many > 100 (class 0), medium 20..100 (class 1), few < 20 (class 2, no test
     * sample: NaN); the rarest class with test samples is class 1 */
    ck_assert_close(m.many_shot_accuracy, 5.0 / 6, TOL);
    ck_assert_close(m.medium_shot_accuracy, 0.5, TOL);
    ck_assert(isnan(m.few_shot_accuracy));
    ck_assert_close(m.minority_recall, 0.5, TOL);
    ck_assert(isnan(m.roc_auc) && isnan(m.pr_auc) && isnan(m.ece));
    ck_assert_int_eq(m.confusion[3], 2);

    lb_metrics c;
    ck_assert_int_eq(lb_metrics_copy(&c, &m), LB_OK);
    ck_assert_ptr_ne(c.recall, m.recall);
    ck_assert_close(c.recall[0], m.recall[0], 0);
    ck_assert_close(c.g_mean, m.g_mean, 0);
    ck_assert_int_eq(c.confusion[4], 3);
    lb_metrics_free(&c);
    lb_metrics_free(&m);
    ck_assert_ptr_null(m.recall);
}
END_TEST

START_TEST(test_zero_division_cases)
{
    lb_metrics m;
    /* nothing counted: every average is undefined (NaN), per-class values are 0 */
    int64_t empty[4] = {0, 0, 0, 0};
    ck_assert_int_eq(lb_metrics_from_confusion(&m, empty, 2, NULL, NULL), LB_OK);
    ck_assert(isnan(m.accuracy) && isnan(m.balanced_accuracy) && isnan(m.macro_f1));
    ck_assert(isnan(m.g_mean) && isnan(m.weighted_f1) && isnan(m.minority_recall));
    ck_assert_close(m.precision[0], 0.0, 0);
    ck_assert_close(m.recall[1], 0.0, 0);
    lb_metrics_free(&m);

    /* one class never recalled: G-mean 0; the majority-only classifier is the textbook case
     * (accuracy 90%, balanced accuracy 50%) */
    int64_t maj[4] = {90, 0, 10, 0};
    int train[2] = {900, 100};
    ck_assert_int_eq(lb_metrics_from_confusion(&m, maj, 2, train, NULL), LB_OK);
    ck_assert_close(m.accuracy, 0.9, TOL);
    ck_assert_close(m.balanced_accuracy, 0.5, TOL);
    ck_assert_close(m.g_mean, 0.0, 0);
    ck_assert_close(m.minority_recall, 0.0, 0);
    /* F1 of class 1: 0/(10+0) = 0; class 0: 180/(90+100) */
    ck_assert_close(m.macro_f1, (180.0 / 190) / 2, TOL);
    lb_metrics_free(&m);

    int64_t bad[4] = {1, -1, 0, 0};
    ck_assert_int_eq(lb_metrics_from_confusion(&m, bad, 2, NULL, NULL), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "negative count -1 at [0][1]"));
}
END_TEST

START_TEST(test_confusion_add)
{
    int64_t cm[4] = {0};
    int yt[5] = {0, 0, 1, 1, 1}, yp[5] = {0, 1, 1, 1, 0};
    ck_assert_int_eq(lb_confusion_add(cm, 2, yt, yp, 5), LB_OK);
    ck_assert_int_eq(lb_confusion_add(cm, 2, yt, yp, 2), LB_OK); /* accumulates */
    ck_assert_int_eq(cm[0], 2);
    ck_assert_int_eq(cm[1], 2);
    ck_assert_int_eq(cm[2], 1);
    ck_assert_int_eq(cm[3], 2);
    int bad[2] = {0, 2};
    ck_assert_int_eq(lb_confusion_add(cm, 2, yt, bad, 2), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "sample 1 has true=0 pred=2"));
    ck_assert_int_eq(cm[0], 2); /* untouched by the failed call */

    float s[6] = {0.1f, 0.7f, 0.7f, 3, 3, -1};
    int pred[2];
    lb_argmax_rows(s, 2, 3, pred);
    ck_assert_int_eq(pred[0], 1); /* first of the tied maxima */
    ck_assert_int_eq(pred[1], 0);
}
END_TEST

START_TEST(test_shot_groups)
{
    lb_metrics_opts o;
    lb_metrics_opts_default(&o);
    ck_assert_int_eq(o.ece_bins, 15);
    ck_assert_int_eq(lb_shot_group(101, 5000, &o), 0);
    ck_assert_int_eq(lb_shot_group(100, 5000, &o), 1);
    ck_assert_int_eq(lb_shot_group(20, 5000, &o), 1);
    ck_assert_int_eq(lb_shot_group(19, 5000, &o), 2);
    ck_assert_int_eq(lb_shot_group(19, 5000, NULL), 2);
    /* relative: fractions of the largest class (ImageNet-LT's 100/1280 and 20/1280) */
    o.shot_mode = LB_SHOT_RELATIVE;
    o.many_above = 100.0 / 1280;
    o.few_below = 20.0 / 1280;
    ck_assert_int_eq(lb_shot_group(6000, 6000, &o), 0);
    ck_assert_int_eq(lb_shot_group(469, 6000, &o), 0); /* 6000*100/1280 = 468.75 */
    ck_assert_int_eq(lb_shot_group(468, 6000, &o), 1);
    ck_assert_int_eq(lb_shot_group(94, 6000, &o), 1); /* 6000*20/1280 = 93.75 */
    ck_assert_int_eq(lb_shot_group(93, 6000, &o), 2);
}
END_TEST

/* y = [1 0 1 0], score of class 1 = [.9 .8 .4 .4]. Positive/negative pairs: (.9,.8)=1,
 * (.9,.4)=1, (.4,.8)=0, (.4,.4)=1/2 -> AUC 2.5/4. Class 0 with scores [.1 .2 .6 .6]:
 * positives .2,.6 vs negatives .1,.6 -> 1+0+1+1/2 -> 2.5/4.
 * AP of class 1: thresholds .9 (P=1, R=.5), .8 (P=.5, R=.5), .4 (P=.5, R=1):
 * .5*1 + 0 + .5*.5 = .75. */
START_TEST(test_hand_ranking)
{
    float s[8] = {0.1f, 0.9f, 0.2f, 0.8f, 0.6f, 0.4f, 0.6f, 0.4f};
    int y[4] = {1, 0, 1, 0};
    double macro, per[2], ap;
    ck_assert_int_eq(lb_roc_auc_ovr(s, y, 4, 2, &macro, per), LB_OK);
    ck_assert_close(per[0], 0.625, 1e-12);
    ck_assert_close(per[1], 0.625, 1e-12);
    ck_assert_close(macro, 0.625, 1e-12);
    ck_assert_int_eq(lb_average_precision(s, y, 4, 2, 1, &ap), LB_OK);
    ck_assert_close(ap, 0.75, 1e-12);

    /* a class without negatives (or positives) has no AUC and leaves the macro mean */
    int y3[4] = {1, 1, 1, 1};
    ck_assert_int_eq(lb_roc_auc_ovr(s, y3, 4, 2, &macro, per), LB_OK);
    ck_assert(isnan(per[0]) && isnan(per[1]) && isnan(macro));
    ck_assert_int_eq(lb_average_precision(s, y3, 4, 2, 0, &ap), LB_OK);
    ck_assert(isnan(ap));

    float bad[8] = {0.1f, NAN, 0, 0, 0, 0, 0, 0};
    ck_assert_int_eq(lb_roc_auc_ovr(bad, y, 4, 2, &macro, NULL), LB_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "score [0][1]"));
    ck_assert_int_eq(lb_average_precision(s, y, 4, 2, 2, &ap), LB_EINVAL);
}
END_TEST

/* Confidences .9 (right) and .88 (wrong) share bin 13 = (13/15, 14/15]: accuracy .5,
 * mean confidence .89; .75 (wrong) is alone in bin 11; .65 (right) alone in bin 9.
 * ECE = (2*|.5-.89| + |0-.75| + |1-.65|) / 4 = (.78 + .75 + .35) / 4 = .47. */
START_TEST(test_hand_ece)
{
    float p[8] = {0.9f, 0.1f, 0.12f, 0.88f, 0.25f, 0.75f, 0.65f, 0.35f};
    int y[4] = {0, 0, 0, 0};
    double e;
    ck_assert_int_eq(lb_expected_calibration_error(p, y, 4, 2, 15, &e), LB_OK);
    ck_assert_close(e, 0.47, 1e-6);
    /* one bin: |accuracy - mean confidence| over everything = |.5 - (.9+.88+.75+.65)/4| */
    ck_assert_int_eq(lb_expected_calibration_error(p, y, 4, 2, 1, &e), LB_OK);
    ck_assert_close(e, fabs(0.5 - 3.18 / 4), 1e-6);
    float logits[4] = {2.5f, -1, 0, 1};
    ck_assert_int_eq(lb_expected_calibration_error(logits, y, 2, 2, 15, &e), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "not a probability"));
}
END_TEST

/* logits [0 0], counts [3 1]: pi = [.75 .25]. Prior correction: [.5 .5]/pi = [2/3 2],
 * renormalised [.25 .75]. Logit adjustment with tau = 2: exp(-2 log pi) ~ [16/9 16],
 * renormalised [.1 .9]; tau = 0 leaves the softmax [.5 .5]. */
START_TEST(test_hand_posthoc)
{
    float z[2] = {0, 0}, q[2];
    int counts[2] = {3, 1};
    ck_assert_int_eq(lb_posthoc_prior_correction(z, 1, 2, counts, q), LB_OK);
    ck_assert_close(q[0], 0.25, 1e-7);
    ck_assert_close(q[1], 0.75, 1e-7);
    ck_assert_int_eq(lb_posthoc_logit_adjust(z, 1, 2, counts, 2.0, q), LB_OK);
    ck_assert_close(q[0], 0.1, 1e-7);
    ck_assert_close(q[1], 0.9, 1e-7);
    ck_assert_int_eq(lb_posthoc_logit_adjust(z, 1, 2, counts, 0.0, q), LB_OK);
    ck_assert_close(q[0], 0.5, 1e-7);
    /* softmax stays finite for large logits (max-subtracted) */
    float big[2] = {1000, 999};
    ck_assert_int_eq(lb_softmax_rows(big, 1, 2, q), LB_OK);
    ck_assert_close(q[0], 1 / (1 + exp(-1.0)), 1e-7);

    int zero[2] = {3, 0};
    ck_assert_int_eq(lb_posthoc_prior_correction(z, 1, 2, zero, q), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "class 1 is 0"));
    float inf[2] = {INFINITY, 0};
    ck_assert_int_eq(lb_softmax_rows(inf, 1, 2, q), LB_ENUMERIC);
}
END_TEST

/* ---- against the independent reference (scikit-learn / numpy) ---- */

#define CHECK_SET(m, P, C)                                                                         \
    do {                                                                                           \
        for (int c_ = 0; c_ < (C); c_++) {                                                         \
            ck_assert_close((m).precision[c_], P##_precision[c_], TOL);                            \
            ck_assert_close((m).recall[c_], P##_recall[c_], TOL);                                  \
            ck_assert_close((m).f1[c_], P##_f1[c_], TOL);                                          \
        }                                                                                          \
        for (int k_ = 0; k_ < (C) * (C); k_++)                                                     \
            ck_assert_int_eq((m).confusion[k_], P##_confusion[k_]);                                \
        ck_assert_close((m).accuracy, P##_accuracy, TOL);                                          \
        ck_assert_close((m).balanced_accuracy, P##_balanced_accuracy, TOL);                        \
        ck_assert_close((m).macro_f1, P##_macro_f1, TOL);                                          \
        ck_assert_close((m).weighted_f1, P##_weighted_f1, TOL);                                    \
        ck_assert_close((m).g_mean, P##_g_mean, TOL);                                              \
        ck_assert_close((m).minority_recall, P##_minority_recall, TOL);                            \
        ck_assert_close((m).many_shot_accuracy, P##_many_acc, TOL);                                     \
        ck_assert_close((m).medium_shot_accuracy, P##_medium_acc, TOL);                                 \
        if (isnan(P##_few_acc))                                                                    \
            ck_assert(isnan((m).few_shot_accuracy));                                                    \
        else                                                                                       \
            ck_assert_close((m).few_shot_accuracy, P##_few_acc, TOL);                                   \
        ck_assert_close((m).roc_auc, P##_roc_auc, TOL);                                            \
        ck_assert_close((m).ece, P##_ece, TOL);                                                    \
        ck_assert_int_eq((m).n_scored, P##_n_scored);                                              \
    } while (0)

START_TEST(test_ref_multiclass)
{
    lb_metrics m;
    ck_assert_int_eq(
        lb_metrics_from_scores(&m, ref_a_probs, ref_a_y, REF_A_N, REF_A_C, ref_a_train, NULL),
        LB_OK);
    ck_assert_int_eq(m.n, REF_A_N);
    CHECK_SET(m, ref_a, REF_A_C);
    ck_assert(isnan(m.pr_auc)); /* binary tasks only */
    lb_metrics_free(&m);

    double macro, per[REF_A_C];
    ck_assert_int_eq(lb_roc_auc_ovr(ref_a_probs, ref_a_y, REF_A_N, REF_A_C, &macro, per), LB_OK);
    for (int c = 0; c < REF_A_C; c++) ck_assert_close(per[c], ref_a_auc_per_class[c], 1e-12);
}
END_TEST

START_TEST(test_ref_posthoc)
{
    static float q[REF_A_N * REF_A_C];
    lb_metrics m;
    ck_assert_int_eq(lb_posthoc_prior_correction(ref_a_logits, REF_A_N, REF_A_C, ref_a_train, q),
                     LB_OK);
    for (int i = 0; i < REF_A_N * REF_A_C; i++) ck_assert_close(q[i], ref_a_prior_probs[i], 1e-6);
    ck_assert_int_eq(lb_metrics_from_scores(&m, q, ref_a_y, REF_A_N, REF_A_C, ref_a_train, NULL),
                     LB_OK);
    CHECK_SET(m, ref_a_prior, REF_A_C);
    lb_metrics_free(&m);

    ck_assert_int_eq(
        lb_posthoc_logit_adjust(ref_a_logits, REF_A_N, REF_A_C, ref_a_train, ref_a_tau, q), LB_OK);
    for (int i = 0; i < REF_A_N * REF_A_C; i++) ck_assert_close(q[i], ref_a_la_probs[i], 1e-6);
    ck_assert_int_eq(lb_metrics_from_scores(&m, q, ref_a_y, REF_A_N, REF_A_C, ref_a_train, NULL),
                     LB_OK);
    CHECK_SET(m, ref_a_la, REF_A_C);
    lb_metrics_free(&m);
}
END_TEST

START_TEST(test_ref_ties)
{
    double macro, per[3], ap;
    ck_assert_int_eq(lb_roc_auc_ovr(ref_b_scores, ref_b_y, REF_B_N, 3, &macro, per), LB_OK);
    for (int c = 0; c < 3; c++) {
        ck_assert_close(per[c], ref_b_auc_per_class[c], 1e-12);
        ck_assert_int_eq(lb_average_precision(ref_b_scores, ref_b_y, REF_B_N, 3, c, &ap), LB_OK);
        ck_assert_close(ap, ref_b_ap_per_class[c], 1e-12);
    }
}
END_TEST

/* Class 2, the rarest in training, has no test sample but is predicted: macro-F1 is
 * scikit-learn's f1_score(labels=[0, 1, 3], average="macro"), the minority recall is class
 * 3's, balanced accuracy and G-mean are over the same three classes. */
START_TEST(test_ref_untested_class)
{
    lb_metrics m;
    ck_assert_int_eq(lb_metrics_from_scores(&m, ref_d_probs, ref_d_y, REF_D_N, 4, ref_d_train, NULL), LB_OK);
    CHECK_SET(m, ref_d, 4);
    lb_metrics_free(&m);
}
END_TEST

START_TEST(test_ref_binary)
{
    lb_metrics m;
    ck_assert_int_eq(
        lb_metrics_from_scores(&m, ref_c_probs, ref_c_y, REF_C_N, 2, ref_c_train, NULL), LB_OK);
    CHECK_SET(m, ref_c, 2);
    ck_assert_close(m.pr_auc, ref_c_pr_auc, TOL); /* positive = minority class 1 */
    lb_metrics_free(&m);
}
END_TEST

/* Prior shift, worked by hand. (a) logits 0, 0 (p = 1/2, 1/2), trained on 90:10, deployed
 * at 1/2:1/2: p' is proportional to (1/2)(1/2)/0.9 and (1/2)(1/2)/0.1, i.e. 1/9 : 1 -> 0.1,
 * 0.9. (b) logits ln 3, 0 (p = 3/4, 1/4), trained 50:50, deployed 0.2:0.8: 0.75 * 0.2 / 0.5 =
 * 0.3 and 0.25 * 0.8 / 0.5 = 0.4 -> 3/7, 4/7. The prior 1:4 (not normalised) is the same. */
START_TEST(test_prior_shift)
{
    float logits[4] = {0.0f, 0.0f, (float)log(3.0), 0.0f}, p[4];
    int c90[2] = {90, 10}, c50[2] = {50, 50};
    double half[2] = {0.5, 0.5}, d28[2] = {0.2, 0.8}, d14[2] = {1, 4};
    ck_assert_int_eq(lb_prior_shift(logits, 1, 2, c90, half, p), LB_OK);
    ck_assert_float_eq_tol(p[0], 0.1f, 1e-6f);
    ck_assert_float_eq_tol(p[1], 0.9f, 1e-6f);
    ck_assert_int_eq(lb_prior_shift(logits + 2, 1, 2, c50, d28, p), LB_OK);
    ck_assert_float_eq_tol(p[0], 3.0f / 7.0f, 1e-6f);
    ck_assert_float_eq_tol(p[1], 4.0f / 7.0f, 1e-6f);
    ck_assert_int_eq(lb_prior_shift(logits + 2, 1, 2, c50, d14, p), LB_OK);
    ck_assert_float_eq_tol(p[0], 3.0f / 7.0f, 1e-6f);
    double bad[2] = {-0.1, 1.1}, zero[2] = {0, 0};
    ck_assert_err(lb_prior_shift(logits, 1, 2, c50, bad, p), LB_EINVAL, "deployment prior of class 0 is -0.1");
    ck_assert_err(lb_prior_shift(logits, 1, 2, c50, zero, p), LB_EINVAL, "sums to 0");
    /* a class of prior 0 is never predicted */
    double only1[2] = {0, 1};
    ck_assert_int_eq(lb_prior_shift(logits + 2, 1, 2, c50, only1, p), LB_OK);
    ck_assert(p[0] == 0.0f && p[1] == 1.0f);
}
END_TEST

/* The threshold for a target recall, on a fixture worked by hand. Positives score 0.9, 0.8,
 * 0.7, 0.6, 0.3; negatives 0.85, 0.5, 0.4, 0.2, 0.1. Recall 0.8 needs 4 of the 5 positives:
 * t = 0.6, where 4 positives and 1 negative (0.85) are at or above: precision 0.8. Recall 1
 * needs all 5: t = 0.3, with 3 negatives above: precision 5/8. */
START_TEST(test_threshold_for_recall)
{
    float s[10] = {0.9f, 0.85f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f};
    int y[10] = {1, 0, 1, 1, 1, 0, 0, 1, 0, 0};
    double t, prec, rec;
    ck_assert_int_eq(lb_threshold_for_recall(s, y, 10, 1, 0.8, &t, &prec, &rec), LB_OK);
    ck_assert(t == 0.6f);
    ck_assert_double_eq_tol(prec, 0.8, 1e-12);
    ck_assert_double_eq_tol(rec, 0.8, 1e-12);
    ck_assert_int_eq(lb_threshold_for_recall(s, y, 10, 1, 1.0, &t, &prec, &rec), LB_OK);
    ck_assert(t == 0.3f);
    ck_assert_double_eq_tol(prec, 5.0 / 8.0, 1e-12);
    ck_assert_double_eq_tol(rec, 1.0, 1e-12);
    /* 0.79: still 4 of 5 (ceil(3.95)) */
    ck_assert_int_eq(lb_threshold_for_recall(s, y, 10, 1, 0.79, &t, &prec, &rec), LB_OK);
    ck_assert(t == 0.6f);
    /* 20 positives scoring 1/20 .. 20/20: 0.95 x 20 = 19 positives, t = 2/20 (not 1/20, which
     * 0.95 * 20 = 19.000000000000004 in floating point would give with a bare ceil) */
    float s20[20];
    int y20[20];
    for (int i = 0; i < 20; i++) {
        s20[i] = (float)(i + 1) / 20.0f;
        y20[i] = 1;
    }
    ck_assert_int_eq(lb_threshold_for_recall(s20, y20, 20, 1, 0.95, &t, &prec, &rec), LB_OK);
    ck_assert(t == 2.0f / 20.0f);
    ck_assert_double_eq_tol(rec, 0.95, 1e-12);
    ck_assert_err(lb_threshold_for_recall(s, y, 10, 2, 0.9, &t, &prec, &rec), LB_EINVAL, "no sample of the class");
    ck_assert_err(lb_threshold_for_recall(s, y, 10, 1, 1.5, &t, &prec, &rec), LB_EINVAL, "(0, 1]");
    /* decisions: class 1 at p >= 0.3, otherwise the more probable of the others */
    float probs[9] = {0.5f, 0.3f, 0.2f, 0.1f, 0.2f, 0.7f, 0.6f, 0.29f, 0.11f};
    int pred[3];
    lb_predict_with_threshold(probs, 3, 3, 1, 0.3, pred);
    ck_assert_int_eq(pred[0], 1);
    ck_assert_int_eq(pred[1], 2);
    ck_assert_int_eq(pred[2], 0);
}
END_TEST

/* Precision-recall and ROC points, by hand: scores 0.9 (positive), 0.8 (negative), 0.7
 * (positive), 0.6 (negative). Thresholds from the top: (tp, fp) = (1, 0), (1, 1), (2, 1),
 * (2, 2); after the start point, PR (recall, precision) = (0.5, 1), (0.5, 0.5), (1, 2/3),
 * (1, 0.5) and ROC (fpr, tpr) = (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1). Thinned to 3 points:
 * the start, the first threshold and the last. */
START_TEST(test_binary_curves)
{
    float s[4] = {0.6f, 0.9f, 0.7f, 0.8f};
    int y[4] = {0, 1, 1, 0};
    float px[8], py[8], rx[8], ry[8];
    int n;
    ck_assert_int_eq(lb_binary_curves(s, y, 4, 1, 8, px, py, rx, ry, &n), LB_OK);
    ck_assert_int_eq(n, 5);
    const float wpx[5] = {0, 0.5f, 0.5f, 1, 1}, wpy[5] = {1, 1, 0.5f, 2.0f / 3.0f, 0.5f};
    const float wrx[5] = {0, 0, 0.5f, 0.5f, 1}, wry[5] = {0, 0.5f, 0.5f, 1, 1};
    for (int i = 0; i < 5; i++) {
        ck_assert_float_eq_tol(px[i], wpx[i], 1e-7f);
        ck_assert_float_eq_tol(py[i], wpy[i], 1e-7f);
        ck_assert_float_eq_tol(rx[i], wrx[i], 1e-7f);
        ck_assert_float_eq_tol(ry[i], wry[i], 1e-7f);
    }
    ck_assert_int_eq(lb_binary_curves(s, y, 4, 1, 3, px, py, rx, ry, &n), LB_OK);
    ck_assert_int_eq(n, 3);
    ck_assert(px[1] == 0.5f && py[1] == 1.0f && px[2] == 1.0f && py[2] == 0.5f);
    ck_assert(rx[2] == 1.0f && ry[2] == 1.0f);
    int all1[4] = {1, 1, 1, 1};
    ck_assert_err(lb_binary_curves(s, all1, 4, 1, 8, px, py, rx, ry, &n), LB_EINVAL, "both a positive and a negative");
}
END_TEST

/* lb_t975 against scipy.stats.t.ppf(0.975, df) (Debian's python3-scipy, computed once when
 * this test was written); lb_mean_ci95 on a hand-worked fixture. */
START_TEST(test_t_interval)
{
    static const struct {
        int df;
        double t;
    } ref[] = {{1, 12.706205}, {2, 4.302653}, {3, 3.182446}, {4, 2.776445}, {5, 2.570582},
               {9, 2.262157}, {10, 2.228139}, {29, 2.045230}, {30, 2.042272}, {40, 2.021075},
               {60, 2.000298}, {120, 1.979930}};
    for (size_t i = 0; i < sizeof ref / sizeof *ref; i++)
        ck_assert_msg(fabs(lb_t975(ref[i].df) - ref[i].t) < 2e-6, "df %d: %.7f, scipy %.6f", ref[i].df,
                      lb_t975(ref[i].df), ref[i].t);
    ck_assert(isnan(lb_t975(0)));
    /* 0.80, 0.82, 0.84, 0.86, 0.88: mean 0.84, s = sqrt(0.001) = 0.0316228, half = 2.776445 s / sqrt 5 */
    const double x[] = {0.80, 0.82, 0.84, 0.86, 0.88};
    double m, lo, hi;
    lb_mean_ci95(x, 5, &m, &lo, &hi);
    ck_assert_close(m, 0.84, 1e-12);
    ck_assert_close(hi - m, 2.776445 * sqrt(0.001) / sqrt(5.0), 1e-7);
    ck_assert_close(m - lo, hi - m, 1e-12);
    lb_mean_ci95(x, 1, &m, &lo, &hi);
    ck_assert(m == 0.80 && isnan(lo) && isnan(hi));
}
END_TEST

/* The paired bootstrap on fixtures with a known answer: the same predictions differ by
 * exactly 0; a perfect classifier against one always wrong by exactly 1; and two classifiers
 * on 2,000 balanced binary images, a right where b is on 50% of them and on 10% more, never
 * the reverse: the difference is 0.1, and its per-image differences are 0/1 with p = 0.1, so
 * the normal theory says 0.1 +- 1.96 sqrt(0.1 * 0.9 / 2000) = [0.0869, 0.1131]; the bootstrap
 * must agree to its own resampling noise (+-0.003 here). Fixed seed: the same bits twice. */
START_TEST(test_paired_bootstrap)
{
    enum { N = 2000, K = 3 };
    static int y[N], a[N], b[N], wrong[N];
    for (int i = 0; i < N; i++) {
        y[i] = i % 2;
        int right_b = (i / 2) % 10 < 5, right_a = (i / 2) % 10 < 6;
        a[i] = right_a ? y[i] : 1 - y[i];
        b[i] = right_b ? y[i] : 1 - y[i];
        wrong[i] = 1 - y[i];
    }
    const int *pa[K] = {a, a, a}, *pb[K] = {b, b, b}, *py[K] = {y, y, y}, *pw[K] = {wrong, wrong, wrong};
    lb_paired_diff d, e;
    ck_assert_int_eq(lb_paired_bootstrap(pa, pa, y, N, K, 2, 1000, 7, &d), LB_OK);
    ck_assert(d.diff == 0 && d.lo == 0 && d.hi == 0 && !d.excludes_zero);
    ck_assert_int_eq(lb_paired_bootstrap(py, pw, y, N, K, 2, 1000, 7, &d), LB_OK);
    ck_assert(d.diff == 1 && d.lo == 1 && d.hi == 1 && d.excludes_zero);
    ck_assert_int_eq(lb_paired_bootstrap(pa, pb, y, N, K, 2, 10000, 7, &d), LB_OK);
    ck_assert_close(d.diff, 0.1, 1e-12);
    ck_assert_msg(fabs(d.lo - 0.0869) < 0.003 && fabs(d.hi - 0.1131) < 0.003, "interval [%g, %g]", d.lo, d.hi);
    ck_assert(d.excludes_zero);
    ck_assert_int_eq(lb_paired_bootstrap(pa, pb, y, N, K, 2, 10000, 7, &e), LB_OK);
    ck_assert(d.diff == e.diff && d.lo == e.lo && d.hi == e.hi && d.excludes_zero == e.excludes_zero);
    ck_assert_err(lb_paired_bootstrap(pa, pb, y, N, K, 1, 10, 7, &d), LB_EINVAL, "label 1 of image 1");
    ck_assert_err(lb_paired_bootstrap(pa, pb, y, 0, K, 2, 10, 7, &d), LB_EINVAL, "0 images");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_hand_confusion);
    tcase_add_test(tc, test_zero_division_cases);
    tcase_add_test(tc, test_confusion_add);
    tcase_add_test(tc, test_shot_groups);
    tcase_add_test(tc, test_hand_ranking);
    tcase_add_test(tc, test_hand_ece);
    tcase_add_test(tc, test_hand_posthoc);
    tcase_add_test(tc, test_ref_multiclass);
    tcase_add_test(tc, test_ref_posthoc);
    tcase_add_test(tc, test_ref_ties);
    tcase_add_test(tc, test_ref_binary);
    tcase_add_test(tc, test_ref_untested_class);
    tcase_add_test(tc, test_prior_shift);
    tcase_add_test(tc, test_threshold_for_recall);
    tcase_add_test(tc, test_binary_curves);
    tcase_add_test(tc, test_t_interval);
    tcase_add_test(tc, test_paired_bootstrap);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
