/* Fuzz target: the predictions CSV reader (lb_predictions_parse_csv, what a study's
 * OUT/runs/<run>.predictions.csv is read back with). An accepted file is written again
 * (lb_predictions_to_csv), read and written once more: the two texts must be the same, and
 * every label and prediction must lie in [0, C). */
#include "fuzz_common.h"

#include <libra/report.h>

int libra_fuzz_predictions(const uint8_t *data, size_t size)
{
    lb_predictions p;
    lb_clear_error();
    int rc = lb_predictions_parse_csv(&p, (const char *)data, size, "predictions.csv");
    if (rc != LB_OK) {
        FZ_CHECK(lb_last_error()[0] != '\0', "error %d without a message", rc);
        FZ_CHECK(p.n == 0 && p.n_variants == 0 && !p.logits, "failed read left the predictions filled");
        return rc;
    }
    FZ_CHECK(p.n_classes >= 1, "accepted a file without classes");
    for (int i = 0; i < p.n; i++) {
        FZ_CHECK(p.label[i] >= 0 && p.label[i] < p.n_classes && p.pred[i] >= 0 && p.pred[i] < p.n_classes,
                 "row %d: label %d, pred %d of %d classes", i, p.label[i], p.pred[i], p.n_classes);
        for (int v = 0; v < p.n_variants; v++) {
            int q = p.variant_pred[(size_t)v * p.n + i];
            FZ_CHECK(q >= 0 && q < p.n_classes, "row %d: pred_%s %d", i, p.variant[v], q);
        }
    }
    lb_buf a = {0}, b = {0};
    FZ_CHECK(lb_predictions_to_csv(&p, &a) == LB_OK, "writing accepted predictions: %s", lb_last_error());
    lb_predictions q;
    FZ_CHECK(lb_predictions_parse_csv(&q, a.p, a.n, "again.csv") == LB_OK, "reading back what was written: %s",
             lb_last_error());
    FZ_CHECK(lb_predictions_to_csv(&q, &b) == LB_OK, "writing the re-read predictions: %s", lb_last_error());
    FZ_CHECK(a.n == b.n && !memcmp(a.p, b.p, a.n), "write -> read -> write changed the text");
    lb_buf_free(&a);
    lb_buf_free(&b);
    lb_predictions_free(&q);
    lb_predictions_free(&p);
    return rc;
}

#ifndef LIBRA_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libra_fuzz_predictions(data, size);
    return 0;
}
#endif
