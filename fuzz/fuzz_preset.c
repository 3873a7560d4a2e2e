/* Fuzz target: the preset parser. The input is written as SCRATCH/preset/p.ini and read with
 * lb_data_preset_load; the values it accepted then go through the parsers lb_data_open would
 * hand them to (source, imbalance profile, order), as a preset's values always do. */
#include "fuzz_common.h"

#include <libra/data.h>
#include <string.h>

int libra_fuzz_preset(const uint8_t *data, size_t size)
{
    char path[512];
    fz_mkdir("preset");
    fz_write(path, sizeof path, "preset/p.ini", data, size);
    lb_data_opts o;
    lb_data_opts_init(&o);
    lb_clear_error();
    int rc = lb_data_preset_load(&o, path, NULL);
    if (rc != LB_OK) {
        FZ_CHECK(lb_last_error()[0] != '\0', "error %d without a message", rc);
        lb_data_opts_free(&o);
        return rc;
    }
    FZ_CHECK(o.name != NULL, "a loaded preset has no name");
    FZ_CHECK(o.val_frac >= 0.0 && o.val_frac < 1.0, "val %g", o.val_frac);
    FZ_CHECK(o.test_frac > 0.0 && o.test_frac < 1.0, "test %g", o.test_frac);
    FZ_CHECK(o.channels == 0 || o.channels == 1 || o.channels == 3, "channels %d", o.channels);
    if (o.data) { /* a dense source's own source parses too */
        lb_dense_spec ds = {0};
        int dense = strncmp(o.data, "dense:", 6) == 0;
        int rd = dense ? lb_dense_spec_parse(&ds, o.data) : LB_OK;
        FZ_CHECK(rd == LB_OK, "accepted data = '%s' is no dense spec: %s", o.data, lb_last_error());
        lb_source s;
        int rs = lb_source_parse(&s, dense ? ds.source : o.data);
        FZ_CHECK(rs == LB_OK, "accepted data = '%s' does not parse: %s", o.data, lb_last_error());
        lb_source_free(&s);
        lb_dense_spec_free(&ds);
    }
    lb_profile pr;
    if (lb_profile_parse(&pr, o.imbalance, 10, lb_fmnist_classes) == LB_OK) lb_profile_free(&pr);
    int order[10];
    lb_order_parse(o.order, 10, o.seed, NULL, order);
    lb_data_opts_free(&o);
    return rc;
}

#ifndef LIBRA_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libra_fuzz_preset(data, size);
    return 0;
}
#endif
