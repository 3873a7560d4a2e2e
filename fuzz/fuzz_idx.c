/* Fuzz target: the IDX reader (raw and gzip) and lb_dataset_load_idx on an image + label pair.
 *
 * Input layout: byte 0 = flags, bytes 1-2 = little-endian length L of the image file, then L
 * bytes of image file, then the label file (the rest).
 *   flags bit 0: the harness gzips the image file (so mutations reach the IDX content behind
 *                a valid gzip stream; the mutator can still write 1f 8b itself for raw gzip),
 *   flags bit 1: the same for the label file,
 *   flags bit 2: pass n_classes = 10 instead of 0 (labels must then be below 10). */
#include "fuzz_common.h"

#include <libra/data.h>
#include <zlib.h>

static void fz_idx_put(const char *name, const uint8_t *data, size_t n, int gzip, char *path,
                       size_t psize)
{
    if (!gzip) {
        fz_write(path, psize, name, data, n);
        return;
    }
    fz_path(path, psize, name);
    gzFile gz = gzopen(path, "wb");
    if (!gz || (n && gzwrite(gz, data, (unsigned)n) != (int)n) || gzclose(gz) != Z_OK) abort();
}

int libra_fuzz_idx(const uint8_t *data, size_t size)
{
    if (size < 3) return LB_OK;
    int flags = data[0];
    size_t split = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (split > size) split = size;
    char img[512], lab[512];
    fz_idx_put("images.idx", data, split, flags & 1, img, sizeof img);
    fz_idx_put("labels.idx", data + split, size - split, flags & 2, lab, sizeof lab);

    /* The reader alone: what it returns must match the header it accepted. */
    lb_idx x;
    lb_clear_error();
    int rc = lb_idx_read(&x, img);
    if (rc == LB_OK) {
        FZ_CHECK(x.ndim >= 1 && x.dims, "ndim %d", x.ndim);
        size_t count = 1;
        for (int i = 0; i < x.ndim; i++) count *= x.dims[i];
        FZ_CHECK(count == x.count, "count %zu, dims give %zu", x.count, count);
        if (!(flags & 1) && !(split >= 2 && data[0] == 0x1f && data[1] == 0x8b))
            FZ_CHECK(4 + 4 * (size_t)x.ndim + x.count == split, "raw file of %zu bytes, header + data %zu", split,
                     4 + 4 * (size_t)x.ndim + x.count);
        /* Every byte is readable (ASan catches a short buffer). */
        unsigned sum = 0;
        for (size_t i = 0; i < x.count; i++) sum += x.data[i];
        (void)sum;
        lb_idx_free(&x);
    } else {
        FZ_CHECK(lb_last_error()[0] != '\0', "error %d without a message", rc);
        FZ_CHECK(x.data == NULL && x.dims == NULL, "failed read left buffers behind");
    }

    /* The pair as a dataset. */
    int n_classes = (flags & 4) ? 10 : 0;
    lb_dataset *ds = NULL;
    lb_clear_error();
    rc = NEW_OK(ds, lb_dataset_new_idx(img, lab, n_classes, NULL));
    if (rc == LB_OK) {
        FZ_CHECK(ds && ds->n >= 1 && ds->n_classes >= 1, "empty dataset accepted");
        FZ_CHECK(ds->c == 1 || ds->c == 3, "c = %d", ds->c);
        FZ_CHECK(ds->h >= 1 && ds->w >= 1, "h = %d, w = %d", ds->h, ds->w);
        if (n_classes) FZ_CHECK(ds->n_classes == n_classes, "n_classes %d", ds->n_classes);
        for (int i = 0; i < ds->n; i++)
            FZ_CHECK(ds->labels[i] >= 0 && ds->labels[i] < ds->n_classes, "label %d of %d", ds->labels[i], i);
        int *counts = malloc(sizeof(int) * (size_t)ds->n_classes);
        if (!counts) abort();
        lb_dataset_class_counts(ds, counts);
        free(counts);
        /* reads every pixel: ASan catches a buffer shorter than n*c*h*w */
        float mean[3], std[3];
        lb_dataset_stats(ds, NULL, ds->n, mean, std);
        for (int c = 0; c < ds->c; c++) FZ_CHECK(std[c] > 0.0f, "std %g", (double)std[c]);
        lb_dataset_free(ds);
    } else {
        FZ_CHECK(ds == NULL, "failed load returned a dataset");
        FZ_CHECK(lb_last_error()[0] != '\0', "error %d without a message", rc);
    }
    return rc;
}

#ifndef LIBRA_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libra_fuzz_idx(data, size);
    return 0;
}
#endif
