/* One study job: a training run and its record, with the post-hoc corrections of the same
 * model's logits. */
#include "libra/study.h"

#include <math.h>
#include <string.h>

/* Balanced accuracy of the row-argmax predictions of probs (only the confusion-matrix
 * metrics: cheap enough to call for every tau of a search). */
static int val_metrics(const float *probs, const int *y, size_t n, int C, lb_metrics *m)
{
    int64_t *conf = lb_calloc((size_t)C * C, sizeof *conf);
    int *pred = lb_malloc(n * sizeof *pred);
    int rc = conf && pred ? LB_OK : lb_error(LB_ENOMEM, "study: out of memory");
    if (rc == LB_OK) {
        lb_argmax_rows(probs, n, C, pred);
        rc = lb_confusion_add(conf, C, y, pred, n);
    }
    if (rc == LB_OK) rc = lb_metrics_from_confusion(m, conf, C, NULL, NULL);
    lb_free(conf);
    lb_free(pred);
    return rc;
}

/* The logit-adjustment tau from {0, 0.25, ..., 3} with the best validation balanced
 * accuracy (the first of equals; 1 without a validation split). */
static int choose_tau(const lb_train_result *res, const int *counts, float *probs, double *tau)
{
    static const double taus[] = {0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0};
    double best = -1.0;
    *tau = 1.0;
    for (size_t t = 0; res->n_val > 0 && t < sizeof taus / sizeof taus[0]; t++) {
        lb_metrics m;
        memset(&m, 0, sizeof m);
        int rc = lb_posthoc_logit_adjust(res->val_logits, (size_t)res->n_val, res->n_classes, counts, taus[t], probs);
        if (rc == LB_OK) rc = val_metrics(probs, res->val_labels, (size_t)res->n_val, res->n_classes, &m);
        if (rc != LB_OK) return rc;
        if (m.balanced_accuracy > best) {
            best = m.balanced_accuracy;
            *tau = taus[t];
        }
        lb_metrics_free(&m);
    }
    return LB_OK;
}

/* Both post-hoc variants of the same model's test logits: prior correction, and logit
 * adjustment with tau chosen on the validation split. */
static int add_posthoc(lb_run_record *rec, const lb_train_result *res, const int *counts)
{
    int C = res->n_classes, n = res->n_test;
    size_t rows = (size_t)(n > res->n_val ? n : res->n_val);
    float *probs = lb_malloc(rows * C * sizeof(float));
    if (!probs) return lb_error(LB_ENOMEM, "study: out of memory for post-hoc scores");
    double tau = 1.0;
    int rc = choose_tau(res, counts, probs, &tau);
    for (int v = 0; rc == LB_OK && v < 2; v++) {
        rc = v == 0 ? lb_posthoc_prior_correction(res->test_logits, (size_t)n, C, counts, probs)
                    : lb_posthoc_logit_adjust(res->test_logits, (size_t)n, C, counts, tau, probs);
        lb_metrics m;
        memset(&m, 0, sizeof m);
        if (rc == LB_OK) rc = lb_metrics_from_scores(&m, probs, res->test_labels, (size_t)n, C, counts, NULL);
        const char *name = v == 0 ? "prior_correction" : "logit_adjust";
        if (rc == LB_OK) rc = lb_run_record_add_posthoc(rec, name, v == 0 ? NAN : (float)tau, &m);
        if (rc == LB_OK) rc = lb_predictions_add_variant(&rec->pred, name, probs);
        lb_metrics_free(&m);
    }
    lb_free(probs);
    return rc;
}

/* Class k's probability of each row of logits [n, 2], into s. */
static int positive_scores(const float *logits, int n, int k, float *probs, float *s)
{
    int rc = lb_softmax_rows(logits, (size_t)n, 2, probs);
    for (int i = 0; rc == LB_OK && i < n; i++) s[i] = probs[2 * i + k];
    return rc;
}

/* A binary task: the test PR and ROC curves of the rare class (fewer training images; a tie:
 * class 1), and the operating point for the target recall chosen on the validation split
 * (when it has an image of that class). */
static int add_binary(lb_run_record *rec, const lb_train_result *res, const int *counts, double target)
{
    int k = counts[0] < counts[1] ? 0 : 1;
    enum { POINTS = 101 };
    int n = res->n_test, nv = res->n_val, rows = n > nv ? n : nv, np = 0;
    float *probs = lb_malloc(sizeof(float) * 2 * ((size_t)rows + 1)), *st = lb_malloc(sizeof(float) * ((size_t)n + 1)),
          *sv = lb_malloc(sizeof(float) * ((size_t)nv + 1));
    lb_xy *pr = &rec->pr, *roc = &rec->roc;
    pr->x = lb_malloc(sizeof(float) * POINTS), pr->y = lb_malloc(sizeof(float) * POINTS);
    roc->x = lb_malloc(sizeof(float) * POINTS), roc->y = lb_malloc(sizeof(float) * POINTS);
    int rc = probs && st && sv && pr->x && pr->y && roc->x && roc->y ? LB_OK
                                                                      : lb_error(LB_ENOMEM, "study: out of memory for curves");
    if (rc == LB_OK) rc = positive_scores(res->test_logits, n, k, probs, st);
    if (rc == LB_OK && lb_binary_curves(st, res->test_labels, (size_t)n, k, POINTS, pr->x, pr->y, roc->x, roc->y, &np) ==
                           LB_OK)
        pr->n = roc->n = (size_t)np; /* (no curve when the test split lacks a class) */
    double t, vp, vr;
    if (rc == LB_OK && nv > 0) rc = positive_scores(res->val_logits, nv, k, probs, sv);
    if (rc == LB_OK && nv > 0 &&
        lb_threshold_for_recall(sv, res->val_labels, (size_t)nv, k, target, &t, &vp, &vr) == LB_OK) {
        double test_p, test_r;
        lb_precision_recall_at(st, res->test_labels, (size_t)n, k, t, &test_p, &test_r);
        rec->op = (lb_operating_point){1, k, (float)target, (float)t, (float)vr, (float)vp, (float)test_r, (float)test_p};
    }
    lb_clear_error();
    lb_free(probs);
    lb_free(st);
    lb_free(sv);
    return rc;
}

/* Each stage's variant: the metrics of its re-balanced model on the test split. */
static int add_stages(lb_run_record *rec, const lb_train_result *res, const int *counts)
{
    int C = res->n_classes, n = res->n_test;
    float *probs = lb_malloc(((size_t)n + 1) * C * sizeof(float));
    int rc = probs ? LB_OK : lb_error(LB_ENOMEM, "study: out of memory for stage scores");
    for (int i = 0; rc == LB_OK && i < res->n_stages; i++) {
        const lb_stage_result *sr = &res->stages[i];
        lb_metrics m;
        memset(&m, 0, sizeof m);
        rc = lb_softmax_rows(sr->test_logits, (size_t)n, C, probs);
        if (rc == LB_OK) rc = lb_metrics_from_scores(&m, probs, res->test_labels, (size_t)n, C, counts, NULL);
        if (rc == LB_OK) rc = lb_run_record_add_stage(rec, sr->name, sr->tau, sr->start_step, sr->steps, &m);
        if (rc == LB_OK) rc = lb_predictions_add_variant(&rec->pred, sr->name, probs);
        lb_metrics_free(&m);
    }
    lb_free(probs);
    return rc;
}

/* "LOSS@SAMPLER[~MIX]": the training run a record is of. */
static char *training_key(const lb_train_opts *o)
{
    lb_mix m;
    if (lb_mix_parse(&m, o->mix) != LB_OK) return NULL;
    return lb_strfmt("%s@%s%s%s", o->loss ? o->loss : "ce", o->sampler ? o->sampler : "shuffle",
                     m.kind != LB_MIX_NONE ? "~" : "", m.kind != LB_MIX_NONE ? m.name : "");
}

int lb_study_run_one(const lb_train_opts *o, const lb_data *data, const lb_train_hooks *hooks, double target_recall,
                     lb_run_record *rec)
{
    lb_run_record_init(rec);
    lb_train_result res;
    int rc = lb_train_run(o, NULL, data, hooks, &res);
    char *spec = rc == LB_OK ? training_key(o) : NULL;
    if (rc == LB_OK) rc = spec ? lb_run_record_set_strategy(rec, spec) : lb_error(LB_ENOMEM, "study: out of memory");
    if (rc == LB_OK) rc = lb_notes_add_all(&rec->warnings, &res.warnings);
    lb_free(spec);
    if (rc == LB_OK) {
        rec->seed = o->seed;
        rec->steps = res.steps;
        rec->wall_seconds = (float)res.wall_seconds;
        rec->images_per_sec = (float)res.images_per_second;
        lb_metrics_free(&rec->metrics);
        rec->metrics = res.test; /* moved */
        memset(&res.test, 0, sizeof res.test);
        rc = lb_curve_copy(&rec->loss, &res.loss);
        if (rc == LB_OK) rc = lb_curve_copy(&rec->val_bacc, &res.monitor_bacc);
    }
    if (rc == LB_OK && res.n_test > 0)
        rc = lb_predictions_set(&rec->pred, res.test_logits, res.test_labels, res.n_test, res.n_classes);
    if (rc == LB_OK && res.n_test > 0) rc = add_posthoc(rec, &res, data->split.train_counts);
    if (rc == LB_OK && res.n_test > 0) rc = add_stages(rec, &res, data->split.train_counts);
    if (rc == LB_OK && res.n_test > 0 && res.n_classes == 2) rc = add_binary(rec, &res, data->split.train_counts, target_recall);
    lb_train_result_free(&res);
    if (rc != LB_OK) lb_run_record_free(rec);
    return rc;
}

float lb_run_record_val_bacc(const lb_run_record *rec, int keep_best)
{
    const lb_curve *c = &rec->val_bacc;
    if (!c->n) return NAN;
    float v = c->value[c->n - 1];
    for (size_t i = 0; keep_best && i < c->n; i++)
        if (i == 0 || c->value[i] > v) v = c->value[i];
    return v;
}
