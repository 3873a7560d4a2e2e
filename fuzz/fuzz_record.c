/* Fuzz target: the run-record JSON reader (lb_run_record_read_json). A record it accepts is
 * written back with lb_run_record_write_json, read again and written again: the two written
 * files must be byte for byte the same ("reads what the writer wrote, exactly"). */
#include "fuzz_common.h"

#include <libra/report.h>

int libra_fuzz_record(const uint8_t *data, size_t size)
{
    char path[512], out1[512], out2[512];
    fz_write(path, sizeof path, "record.json", data, size);
    lb_run_record r;
    lb_clear_error();
    int rc = lb_run_record_read_json(&r, path);
    if (rc != LB_OK) {
        FZ_CHECK(lb_last_error()[0] != '\0', "error %d without a message", rc);
        FZ_CHECK(r.strategy == NULL && r.n_posthoc == 0 && r.n_grid == 0 && r.metrics.n_classes == 0,
                 "failed read left the record filled");
        lb_run_record_free(&r);
        return rc;
    }
    FZ_CHECK(r.metrics.n_classes >= 1, "accepted a record without metrics");
    FZ_CHECK(r.grid_chosen >= -1 && (r.grid_chosen < 0 || (size_t)r.grid_chosen < r.n_grid), "grid_chosen %d of %zu",
             r.grid_chosen, r.n_grid);
    fz_path(out1, sizeof out1, "record1.json");
    fz_path(out2, sizeof out2, "record2.json");
    int w = lb_run_record_write_json(&r, out1);
    FZ_CHECK(w == LB_OK, "writing an accepted record: %s", lb_last_error());
    lb_run_record r2;
    w = lb_run_record_read_json(&r2, out1);
    FZ_CHECK(w == LB_OK, "reading back what was written: %s", lb_last_error());
    w = lb_run_record_write_json(&r2, out2);
    FZ_CHECK(w == LB_OK, "writing the re-read record: %s", lb_last_error());
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = fz_read(out1, &n1), *b2 = fz_read(out2, &n2);
    FZ_CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1), "write -> read -> write changed the file");
    free(b1);
    free(b2);
    lb_run_record_free(&r2);
    lb_run_record_free(&r);
    return rc;
}

#ifndef LIBRA_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libra_fuzz_record(data, size);
    return 0;
}
#endif
