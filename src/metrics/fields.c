/* The table of metric fields: one name, place and direction per scalar metric. */
#include "libra/metrics.h"

#include <stddef.h>
#include <string.h>

#define F(name, label, member, higher, summary) {name, label, offsetof(lb_metrics, member), "%.4f", higher, summary}
const lb_metric_field lb_metric_fields[LB_N_METRIC_FIELDS] = {
    F("accuracy", "accuracy", accuracy, 1, 1),
    F("balanced_accuracy", "balanced acc.", balanced_accuracy, 1, 1),
    F("macro_f1", "macro-F1", macro_f1, 1, 1),
    F("weighted_f1", "weighted F1", weighted_f1, 1, 0),
    F("g_mean", "G-mean", g_mean, 1, 1),
    F("minority_recall", "minority recall", minority_recall, 1, 1),
    F("many_shot_accuracy", "many-shot", many_shot_accuracy, 1, 1),
    F("medium_shot_accuracy", "medium-shot", medium_shot_accuracy, 1, 1),
    F("few_shot_accuracy", "few-shot", few_shot_accuracy, 1, 1),
    F("roc_auc", "ROC-AUC", roc_auc, 1, 1),
    F("pr_auc", "PR-AUC", pr_auc, 1, 1),
    F("ece", "ECE", ece, 0, 1),
};
#undef F

float lb_metric_get(const lb_metrics *m, const lb_metric_field *f)
{
    float v;
    memcpy(&v, (const char *)m + f->offset, sizeof v);
    return v;
}

float *lb_metric_ptr(lb_metrics *m, const lb_metric_field *f) { return (float *)(void *)((char *)m + f->offset); }

const lb_metric_field *lb_metric_field_find(const char *name)
{
    for (int i = 0; i < LB_N_METRIC_FIELDS; i++)
        if (strcmp(lb_metric_fields[i].name, name) == 0) return &lb_metric_fields[i];
    return NULL;
}
