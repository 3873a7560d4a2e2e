/* Fuzz target: the image decoding path of the image-folder loader. The input becomes
 * ROOT/a/x.png and ROOT/b/y.png (the loader picks files by extension and stb_image decodes
 * by content, so PNG, BMP, JPEG, GIF, ... all arrive through the same name) and
 * lb_dataset_load_folder reads ROOT.
 *
 * Byte 0 = flags, the rest = the image file.
 *   bit 0: strict (an undecodable file is an error, not a warning),
 *   bit 1: channels 1 instead of 3,
 *   bit 2: size 5x3 instead of 8x8 (a non-square resize),
 *   bit 3: also put a valid 2x2 PGM in class a, so a non-strict load can succeed around a
 *          bad file and report it as a warning. */
#include "fuzz_common.h"

#include <libra/data.h>

/* 2x2 8-bit binary PGM: a file every stb_image build decodes. */
static const unsigned char fz_folder_pgm[] = "P5\n2 2\n255\n\x00\x40\x80\xff";

int libra_fuzz_folder(const uint8_t *data, size_t size)
{
    if (size < 1) return LB_OK;
    int flags = data[0];
    data++;
    size--;
    char root[512], p[512];
    fz_mkdir("folder");
    fz_mkdir("folder/a");
    fz_mkdir("folder/b");
    fz_path(root, sizeof root, "folder");
    fz_write(p, sizeof p, "folder/a/x.png", data, size);
    fz_write(p, sizeof p, "folder/b/y.png", data, size);
    int n_files = 2;
    if (flags & 8) {
        fz_write(p, sizeof p, "folder/a/ok.pgm", fz_folder_pgm, sizeof fz_folder_pgm - 1);
        n_files++;
    } else {
        unlink(fz_path(p, sizeof p, "folder/a/ok.pgm"));
    }

    int strict = flags & 1, channels = (flags & 2) ? 1 : 3;
    int h = (flags & 4) ? 5 : 8, w = (flags & 4) ? 3 : 8;
    lb_dataset *ds = NULL;
    lb_clear_error();
    int rc = NEW_OK(ds, lb_dataset_new_folder(root, channels, h, w, strict, NULL));
    if (rc == LB_OK) {
        FZ_CHECK(ds && ds->n >= 2 && ds->n_classes == 2, "n %d, classes %d", ds ? ds->n : -1,
                 ds ? ds->n_classes : -1);
        FZ_CHECK(!strcmp(ds->class_names[0], "a") && !strcmp(ds->class_names[1], "b"), "class names");
        FZ_CHECK(ds->c == channels && ds->h == h && ds->w == w, "%dx%dx%d", ds->c, ds->h, ds->w);
        FZ_CHECK(ds->n + ds->warnings.n == n_files, "%d images + %d warnings for %d files", ds->n,
                 ds->warnings.n, n_files);
        if (strict) FZ_CHECK(ds->warnings.n == 0, "strict load with %d warnings", ds->warnings.n);
        for (int i = 0; i < ds->n; i++) FZ_CHECK(ds->labels[i] == 0 || ds->labels[i] == 1, "label %d", ds->labels[i]);
        for (int i = 0; i < ds->warnings.n_kept; i++) FZ_CHECK(ds->warnings.msg[i] != NULL, "warning %d", i);
        /* reads every pixel: ASan catches a short buffer */
        float mean[3], std[3];
        lb_dataset_stats(ds, NULL, ds->n, mean, std);
        /* and the conversion the data options apply afterwards */
        rc = lb_dataset_convert(ds, 4 - channels, 4, 4);
        FZ_CHECK(rc == LB_OK, "convert: %s", lb_last_error());
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
    libra_fuzz_folder(data, size);
    return 0;
}
#endif
