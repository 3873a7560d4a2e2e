/* Fuzz target: the checkpoint loader (lb_checkpoint_load), then, for a file it accepts, the
 * model it describes (lb_checkpoint_model) and a save/load round trip.
 *
 * Byte 0 = flags, the rest = the file. A checkpoint's payload is covered by a CRC32, which
 * random mutations almost never keep right, so the harness can repair the header first:
 *   bit 0: set the header's payload size to the file's (size - 32),
 *   bit 1: set the header's CRC to that of the payload.
 * With neither bit the file is loaded exactly as given (the header checks themselves). */
#include "fuzz_common.h"

#include <libra/train.h>
#include <zlib.h>

static void fz_put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int libra_fuzz_checkpoint(const uint8_t *data, size_t size)
{
    if (size < 1) return LB_OK;
    int flags = data[0];
    data++;
    size--;
    unsigned char *file = malloc(size ? size : 1);
    if (!file) abort();
    if (size) memcpy(file, data, size);
    if (size >= 32) {
        if (flags & 1) fz_put_le(file + 16, (uint64_t)(size - 32), 8);
        if (flags & 2) fz_put_le(file + 24, (uint64_t)crc32(crc32(0L, Z_NULL, 0), file + 32, (uInt)(size - 32)), 4);
    }
    char path[512], again[512];
    fz_write(path, sizeof path, "model.ckpt", file, size);
    free(file);

    lb_checkpoint c;
    lb_clear_error();
    int rc = lb_checkpoint_read(&c, path);
    if (rc != LB_OK) {
        FZ_CHECK(lb_last_error()[0] != '\0', "error %d without a message", rc);
        FZ_CHECK(c.params == NULL && c.n_meta == 0, "failed load left data behind");
        return rc;
    }
    FZ_CHECK(c.params != NULL, "accepted without parameters");
    for (int i = 0; i < c.n_meta; i++) FZ_CHECK(c.meta_key[i] && c.meta_val[i], "meta %d", i);

    /* What the loader accepted, the writer writes and the loader reads back the same. */
    fz_path(again, sizeof again, "again.ckpt");
    lb_checkpoint d;
    int rc2 = lb_checkpoint_write(&c, again);
    FZ_CHECK(rc2 == LB_OK, "save of a loaded checkpoint: %s", lb_last_error());
    rc2 = lb_checkpoint_read(&d, again);
    FZ_CHECK(rc2 == LB_OK, "reload: %s", lb_last_error());
    FZ_CHECK(d.n_meta == c.n_meta && d.n_params == c.n_params && d.n_state == c.n_state &&
                 d.has_optim == c.has_optim && d.step == c.step && d.loss.n == c.loss.n,
             "round trip changed the checkpoint");
    FZ_CHECK(!memcmp(d.params, c.params, c.n_params * sizeof(float)), "parameters changed");
    for (int i = 0; i < c.n_meta; i++)
        FZ_CHECK(!strcmp(c.meta_val[i], lb_checkpoint_get(&d, c.meta_key[i]) ? lb_checkpoint_get(&d, c.meta_key[i]) : ""),
                 "meta %s changed", c.meta_key[i]);
    lb_checkpoint_free(&d);

    lb_model *m = lb_model_new_checkpoint(&c);
    if (m) {
        FZ_CHECK(m->params->size == c.n_params, "model has %zu parameters, checkpoint %zu", m->params->size,
                 c.n_params);
        lb_model_free(m);
    } else {
        FZ_CHECK(lb_last_error()[0] != '\0', "lb_checkpoint_model failed without a message");
    }
    lb_checkpoint_free(&c);
    return rc;
}

#ifndef LIBRA_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libra_fuzz_checkpoint(data, size);
    return 0;
}
#endif
