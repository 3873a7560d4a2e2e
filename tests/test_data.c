/* Tests of the data module: IDX files, datasets, profiles, splits, samplers, the batcher,
 * image folders, specs and presets, and every bad-input case of issue 4.
 *
 * Where the reference numbers come from: the Fashion-MNIST long-tail counts are those given
 * in issue 4 (Cui et al.'s formula worked out by hand there); every other expected count or
 * value is worked out by hand in the comment next to it. No test needs Python. */
#include "check_util.h"
#include "dataset_fixture.h"
#include "libra/data.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <stb_image_write.h>

#ifndef LIBRA_SOURCE_DIR
#define LIBRA_SOURCE_DIR "."
#endif

/* ------------------------------------------------------------------ helpers */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/libra_test_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void cleanup_tmpdir(void) { rm_rf(tmpdir); }

/* tmpdir/rel, in a rotating set of buffers so several can be live at once. */
static const char *tp(const char *rel)
{
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 1024, "%s/%s", tmpdir, rel);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static size_t read_bytes(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void mkdir_p(const char *path) { mkdir(path, 0755); }


/* A small IDX pair: n images of h x w with pixel (i, p) = (i * 7 + p) & 255, labels i % C. */
static void write_idx_pair(const char *img, const char *lab, int n, int h, int w, int C, int gz)
{
    uint8_t *px = malloc((size_t)n * h * w), *lb = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < h * w; p++) px[i * h * w + p] = (uint8_t)((i * 7 + p) & 255);
        lb[i] = (uint8_t)(i % C);
    }
    uint32_t di[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w}, dl[1] = {(uint32_t)n};
    ck_assert_int_eq(lb_idx_write(img, px, 3, di, gz), LB_OK);
    ck_assert_int_eq(lb_idx_write(lab, lb, 1, dl, gz), LB_OK);
    free(px);
    free(lb);
}

/* ------------------------------------------------------------------ IDX */

START_TEST(test_idx_roundtrip)
{
    make_tmpdir();
    uint8_t data[2 * 3 * 1 * 2 * 2];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 11 + 3);
    uint32_t dims5[5] = {2, 3, 1, 2, 2};
    for (int gz = 0; gz < 2; gz++) {
        const char *p = tp(gz ? "five.idx.gz" : "five.idx");
        ck_assert_int_eq(lb_idx_write(p, data, 5, dims5, gz), LB_OK);
        lb_idx x;
        ck_assert_int_eq(lb_idx_read(&x, p), LB_OK);
        ck_assert_int_eq(x.ndim, 5);
        for (int k = 0; k < 5; k++) ck_assert_uint_eq(x.dims[k], dims5[k]);
        ck_assert_uint_eq(x.count, sizeof data);
        ck_assert_int_eq(memcmp(x.data, data, sizeof data), 0);
        lb_idx_free(&x);
    }
    /* the raw file is exactly header + data: 4 + 5*4 + 24 bytes */
    struct stat st;
    ck_assert_int_eq(stat(tp("five.idx"), &st), 0);
    ck_assert_int_eq((int)st.st_size, 4 + 20 + 24);
    /* a gzip file is detected by content, whatever its name */
    rename(tp("five.idx.gz"), tp("plain-name"));
    lb_idx x;
    ck_assert_int_eq(lb_idx_read(&x, tp("plain-name")), LB_OK);
    ck_assert_int_eq(memcmp(x.data, data, sizeof data), 0);
    lb_idx_free(&x);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_idx_dataset)
{
    make_tmpdir();
    for (int gz = 0; gz < 2; gz++) {
        write_idx_pair(tp("i"), tp("l"), 7, 3, 4, 3, gz);
        lb_dataset *ds;
        ck_assert_int_eq(NEW_OK(ds, lb_dataset_new_idx(tp("i"), tp("l"), 0, NULL)), LB_OK);
        ck_assert_int_eq(ds->n, 7);
        ck_assert_int_eq(ds->c, 1);
        ck_assert_int_eq(ds->h, 3);
        ck_assert_int_eq(ds->w, 4);
        ck_assert_int_eq(ds->n_classes, 3); /* max label 2, + 1 */
        ck_assert_str_eq(ds->class_names[2], "2");
        ck_assert_int_eq(ds->labels[5], 2);
        ck_assert_int_eq(ds->pixels[5 * 12 + 4], (5 * 7 + 4) & 255);
        int counts[3];
        lb_dataset_class_counts(ds, counts);
        ck_assert_int_eq(counts[0], 3); /* labels 0..6 % 3: 0,1,2,0,1,2,0 */
        ck_assert_int_eq(counts[1], 2);
        ck_assert_int_eq(counts[2], 2);
        lb_dataset_free(ds);
    }
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_idx_bad_input)
{
    make_tmpdir();
    unsigned char buf[4096];
    lb_idx x;
    /* missing file */
    ck_assert_err(lb_idx_read(&x, tp("nope")), LB_EIO, "nope");
    /* empty file */
    write_bytes(tp("empty"), "", 0);
    ck_assert_err(lb_idx_read(&x, tp("empty")), LB_EFORMAT, "empty");
    /* wrong magic: a text file */
    write_bytes(tp("text.idx"), "hello world\n", 12);
    ck_assert_err(lb_idx_read(&x, tp("text.idx")), LB_EFORMAT, "magic");
    ck_assert_msg(strstr(lb_last_error(), "text.idx"), "%s", lb_last_error());
    /* element type other than ubyte (0x0D = float) */
    unsigned char fl[12] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    write_bytes(tp("float.idx"), fl, 12);
    ck_assert_err(lb_idx_read(&x, tp("float.idx")), LB_EFORMAT, "0x0d");
    /* zero dims */
    unsigned char z[4] = {0, 0, 8, 0};
    write_bytes(tp("zero.idx"), z, 4);
    ck_assert_err(lb_idx_read(&x, tp("zero.idx")), LB_EFORMAT, "0 dimensions");
    /* dims disagree with the file size: truncated, and trailing bytes */
    write_idx_pair(tp("i"), tp("l"), 10, 4, 4, 2, 0);
    size_t n = read_bytes(tp("i"), buf, sizeof buf);
    ck_assert_uint_eq(n, 16 + 160);
    write_bytes(tp("short"), buf, n - 5);
    ck_assert_err(lb_idx_read(&x, tp("short")), LB_EFORMAT, "truncated");
    ck_assert_msg(strstr(lb_last_error(), "10x4x4"), "%s", lb_last_error());
    write_bytes(tp("long"), buf, n);
    FILE *f = fopen(tp("long"), "ab");
    fputc(1, f);
    fclose(f);
    ck_assert_err(lb_idx_read(&x, tp("long")), LB_EFORMAT, "trailing");
    /* truncated inside the dims */
    write_bytes(tp("dims"), buf, 9);
    ck_assert_err(lb_idx_read(&x, tp("dims")), LB_EFORMAT, "dimensions");
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_idx_bad_gzip)
{
    make_tmpdir();
    unsigned char buf[1 << 16];
    lb_idx x;
    /* 200 images of 8x8 with varied pixels, so the deflate stream is not trivially short */
    uint8_t px[200 * 64];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof px; i++) {
        s = s * 1103515245u + 12345u;
        px[i] = (uint8_t)(s >> 24);
    }
    uint32_t d[3] = {200, 8, 8};
    ck_assert_int_eq(lb_idx_write(tp("g.gz"), px, 3, d, 1), LB_OK);
    size_t n = read_bytes(tp("g.gz"), buf, sizeof buf);
    ck_assert_uint_gt(n, 1000);
    /* truncated gzip: only the first half */
    write_bytes(tp("half.gz"), buf, n / 2);
    ck_assert_err(lb_idx_read(&x, tp("half.gz")), LB_EFORMAT, "half.gz");
    ck_assert_msg(strstr(lb_last_error(), "truncated"), "%s", lb_last_error());
    /* truncated by the last 4 bytes (the length field of the trailer) */
    write_bytes(tp("tail.gz"), buf, n - 4);
    ck_assert_err(lb_idx_read(&x, tp("tail.gz")), LB_EFORMAT, "gzip");
    /* corrupt: flip bytes in the middle of the deflate stream */
    for (size_t i = n / 2; i < n / 2 + 16; i++) buf[i] ^= 0x5A;
    write_bytes(tp("bad.gz"), buf, n);
    ck_assert_err(lb_idx_read(&x, tp("bad.gz")), LB_EFORMAT, "corrupt");
    /* corrupt CRC only: the data decodes but the trailer check fails */
    n = read_bytes(tp("g.gz"), buf, sizeof buf);
    buf[n - 8] ^= 0xFF;
    write_bytes(tp("crc.gz"), buf, n);
    ck_assert_err(lb_idx_read(&x, tp("crc.gz")), LB_EFORMAT, "crc.gz");
    /* gzip whose header claims more images than the stream holds */
    gzFile gz = gzopen(tp("more.gz"), "wb");
    unsigned char head[16] = {0, 0, 8, 3, 0, 0, 1, 0, 0, 0, 0, 8, 0, 0, 0, 8}; /* 256 x 8 x 8 */
    gzwrite(gz, head, 16);
    gzwrite(gz, px, 200 * 64);
    gzclose(gz);
    ck_assert_err(lb_idx_read(&x, tp("more.gz")), LB_EFORMAT, "256x8x8");
    cleanup_tmpdir();
}
END_TEST

/* A header claiming 2^31 images must fail before any large allocation: the claim is
 * checked against the file size (raw) or the deflate limit (gzip) first. */
START_TEST(test_idx_billions)
{
    make_tmpdir();
    unsigned char raw[16 + 64] = {0, 0, 8, 3, 0x80, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};
    write_bytes(tp("huge.idx"), raw, sizeof raw);
    unsigned char lab[8 + 16] = {0, 0, 8, 1, 0x80, 0, 0, 0};
    gzFile gz = gzopen(tp("huge-labels.gz"), "wb");
    gzwrite(gz, lab, sizeof lab);
    gzclose(gz);
    lb_idx x;
    double t0 = lb_now();
    ck_assert_err(lb_idx_read(&x, tp("huge.idx")), LB_EFORMAT, "2147483648x28x28");
    ck_assert_err(lb_idx_read(&x, tp("huge-labels.gz")), LB_EFORMAT, "more than a");
    ck_assert_msg(lb_now() - t0 < 0.5, "failing took %g s", lb_now() - t0);
    /* an absurd product of dims (2^32-1)^4 overflows and is refused too */
    unsigned char ov[20] = {0, 0, 8, 4, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};
    write_bytes(tp("ov.idx"), ov, 20);
    ck_assert_err(lb_idx_read(&x, tp("ov.idx")), LB_EFORMAT, "more data than any file");
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_idx_dataset_mismatch)
{
    make_tmpdir();
    write_idx_pair(tp("i10"), tp("l10"), 10, 2, 2, 3, 1);
    write_idx_pair(tp("i9"), tp("l9"), 9, 2, 2, 3, 1);
    lb_dataset *ds;
    /* image/label count mismatch: both files and both counts named */
    ck_assert_err(NEW_OK(ds, lb_dataset_new_idx(tp("i10"), tp("l9"), 0, NULL)), LB_EFORMAT, "l9");
    ck_assert_msg(strstr(lb_last_error(), "i10") && strstr(lb_last_error(), "10 images") &&
                      strstr(lb_last_error(), "9 labels"), "%s", lb_last_error());
    ck_assert_ptr_null(ds);
    /* label out of range for the declared number of classes: labels 0..2 with 2 classes */
    ck_assert_err(NEW_OK(ds, lb_dataset_new_idx(tp("i10"), tp("l10"), 2, NULL)), LB_EFORMAT, "out of range");
    ck_assert_msg(strstr(lb_last_error(), "label 2 of item 2"), "%s", lb_last_error());
    /* labels file with 2 dims */
    uint8_t z[4] = {0};
    uint32_t d2[2] = {2, 2};
    ck_assert_int_eq(lb_idx_write(tp("l2d"), z, 2, d2, 0), LB_OK);
    ck_assert_err(NEW_OK(ds, lb_dataset_new_idx(tp("i10"), tp("l2d"), 0, NULL)), LB_EFORMAT, "1 IDX dim");
    /* a zero-image file */
    uint32_t d0[3] = {0, 2, 2}, d01[1] = {0};
    ck_assert_int_eq(lb_idx_write(tp("i0"), z, 3, d0, 0), LB_OK);
    ck_assert_int_eq(lb_idx_write(tp("l0"), z, 1, d01, 0), LB_OK);
    ck_assert_err(NEW_OK(ds, lb_dataset_new_idx(tp("i0"), tp("l0"), 0, NULL)), LB_EFORMAT, "no images");
    cleanup_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ Fashion-MNIST */

START_TEST(test_fmnist_missing_and_env)
{
    make_tmpdir();
    lb_dataset *ds;
    ck_assert_err(NEW_OK(ds, lb_dataset_new_fmnist(tp("nothing-here"), 1)), LB_EIO, LB_FMNIST_PACKAGE);
    ck_assert_msg(strstr(lb_last_error(), "nothing-here/train-images-idx3-ubyte.gz"), "%s", lb_last_error());
    /* a fake Fashion-MNIST folder found through LIBRA_FMNIST_DIR */
    mkdir_p(tp("fm"));
    write_idx_pair(tp("fm/train-images-idx3-ubyte.gz"), tp("fm/train-labels-idx1-ubyte.gz"), 20, 28, 28, 10, 1);
    write_idx_pair(tp("fm/t10k-images-idx3-ubyte"), tp("fm/t10k-labels-idx1-ubyte"), 10, 28, 28, 10, 0);
    setenv("LIBRA_FMNIST_DIR", tp("fm"), 1);
    ck_assert_str_eq(lb_fmnist_dir(NULL), tp("fm"));
    ck_assert_str_eq(lb_fmnist_dir("/x"), "/x");
    ck_assert_int_eq(NEW_OK(ds, lb_dataset_new_fmnist(NULL, 1)), LB_OK);
    ck_assert_int_eq(ds->n, 20);
    ck_assert_int_eq(ds->n_classes, 10);
    ck_assert_str_eq(ds->class_names[0], "T-shirt/top");
    ck_assert_str_eq(ds->class_names[9], "Ankle boot");
    lb_dataset_free(ds);
    /* the test files without .gz are accepted too */
    ck_assert_int_eq(NEW_OK(ds, lb_dataset_new_fmnist(NULL, 0)), LB_OK);
    ck_assert_int_eq(ds->n, 10);
    lb_dataset_free(ds);
    unsetenv("LIBRA_FMNIST_DIR");
    ck_assert_str_eq(lb_fmnist_dir(NULL), LB_FMNIST_DEFAULT_DIR);
    cleanup_tmpdir();
}
END_TEST

static int have_fmnist(void)
{
    return access(LB_FMNIST_DEFAULT_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0 &&
           access(LB_FMNIST_DEFAULT_DIR "/t10k-labels-idx1-ubyte.gz", R_OK) == 0;
}

/* The real data, when the Debian package is installed (skipped, with a note, otherwise). */
START_TEST(test_fmnist_profiles_real)
{
    if (!have_fmnist()) {
        fprintf(stderr, "note: %s not installed; real Fashion-MNIST checks skipped\n", LB_FMNIST_PACKAGE);
        return;
    }
    unsetenv("LIBRA_FMNIST_DIR");
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_int_eq(lb_data_opts_set(&o, "data", "fmnist"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "imbalance", "longtail:100"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "val", "0"), LB_OK); /* the default holds out 10% */
    lb_data *d;
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    ck_assert_int_eq(d->train->n, 60000);
    ck_assert_int_eq(d->test->n, 10000);
    ck_assert_int_eq(d->train->c * d->train->h * d->train->w, 784);
    /* issue 4: 6000 3596 2156 1292 774 464 278 166 100 60 (14,886) */
    const int lt[10] = {6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60};
    for (int c = 0; c < 10; c++) {
        ck_assert_int_eq(d->split.available[c], 6000);
        ck_assert_int_eq(d->split.train_counts[c], lt[c]);
        ck_assert_int_eq(d->split.test_counts[c], 1000);
    }
    ck_assert_int_eq(d->split.n_train, 14886);
    ck_assert_int_eq(d->split.n_test, 10000);
    for (int i = 0; i < d->split.n_train; i++)
        ck_assert_int_eq(d->split.train_y[i], d->train->labels[d->split.train_idx[i]]);
    ck_assert(d->mean[0] > 0.1f && d->mean[0] < 0.5f);
    lb_data_free(d);
    /* binary:Shirt,50: 54,000 negatives available -> 1,080 positives; test relabelled 9000/1000 */
    ck_assert_int_eq(lb_data_opts_set(&o, "imbalance", "binary:Shirt,50"), LB_OK);
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    ck_assert_int_eq(d->split.n_classes, 2);
    ck_assert_str_eq(d->split.class_names[0], "rest");
    ck_assert_str_eq(d->split.class_names[1], "Shirt");
    ck_assert_int_eq(d->split.train_counts[0], 54000);
    ck_assert_int_eq(d->split.train_counts[1], 1080);
    ck_assert_int_eq(d->split.test_counts[0], 9000);
    ck_assert_int_eq(d->split.test_counts[1], 1000);
    lb_data_free(d);
    lb_data_opts_free(&o);
}
END_TEST

/* ------------------------------------------------------------------ profiles */

START_TEST(test_profile_targets_synthetic)
{
    const char *const *names = lb_fmnist_classes;
    int avail[10], order[10], t[10];
    for (int c = 0; c < 10; c++) avail[c] = 6000;
    lb_order_parse(NULL, 10, 0, NULL, order);
    lb_profile p;
    /* longtail:100 on Fashion-MNIST's counts: the list of issue 4 */
    ck_assert_int_eq(lb_profile_parse(&p, "longtail:100", 10, names), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    const int lt[10] = {6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60};
    int sum = 0;
    for (int c = 0; c < 10; c++) {
        ck_assert_int_eq(t[c], lt[c]);
        sum += t[c];
    }
    ck_assert_int_eq(sum, 14886);
    /* reversed order: class 9 is the head */
    ck_assert_int_eq(lb_order_parse("9,8,7,6,5,4,3,2,1,0", 10, 0, NULL, order), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    for (int c = 0; c < 10; c++) ck_assert_int_eq(t[c], lt[9 - c]);
    lb_profile_free(&p);
    lb_order_parse(NULL, 10, 0, NULL, order);
    /* step:100,0.5 -> 5 classes of 6000, 5 of 6000/100 = 60 (hand) */
    ck_assert_int_eq(lb_profile_parse(&p, "step:100,0.5", 10, names), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    for (int c = 0; c < 10; c++) ck_assert_int_eq(t[c], c < 5 ? 6000 : 60);
    lb_profile_free(&p);
    /* step:10,0.2 -> round(0.2*10) = 2 minority classes with 600 */
    ck_assert_int_eq(lb_profile_parse(&p, "step:10,0.2", 10, names), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    for (int c = 0; c < 10; c++) ck_assert_int_eq(t[c], c < 8 ? 6000 : 600);
    lb_profile_free(&p);
    /* binary:6,50 -> 54000/50 = 1080 positives, all 6000 of each negative class */
    ck_assert_int_eq(lb_profile_parse(&p, "binary:6,50", 10, names), LB_OK);
    ck_assert_int_eq(p.pos_class, 6);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    for (int c = 0; c < 10; c++) ck_assert_int_eq(t[c], c == 6 ? 1080 : 6000);
    lb_profile_free(&p);
    /* binary:Bag,4 by name (case-insensitive): min(6000, 54000/4) = 6000 positives, 24000
     * negatives = 24000 * 6000 / 54000 = 2666.67 per class: floors 2666 x 9 = 23994, the 6
     * left go to the 6 lowest classes (equal remainders) -> 2667 for 0,1,2,3,4,5 */
    ck_assert_int_eq(lb_profile_parse(&p, "binary:bag,4", 10, names), LB_OK);
    ck_assert_int_eq(p.pos_class, 8);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    const int bt[10] = {2667, 2667, 2667, 2667, 2667, 2667, 2666, 2666, 6000, 2666};
    for (int c = 0; c < 10; c++) ck_assert_int_eq(t[c], bt[c]);
    lb_profile_free(&p);
    /* counts */
    ck_assert_int_eq(lb_profile_parse(&p, "counts:10,20,30,40,50,60,70,80,90,100", 10, names), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    for (int c = 0; c < 10; c++) ck_assert_int_eq(t[c], 10 * (c + 1));
    lb_profile_free(&p);
    /* none */
    ck_assert_int_eq(lb_profile_parse(&p, "none", 10, names), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, avail, 10, order, t), LB_OK);
    ck_assert_int_eq(t[3], 6000);
}
END_TEST

START_TEST(test_profile_targets_uneven)
{
    int order[4] = {0, 1, 2, 3}, t[4];
    lb_profile p;
    /* longtail:10 with 3 classes, n_max = the head's available count (200): 200,
     * floor(200 * 10^-0.5 = 63.2) = 63 but class 1 has 60: it keeps its 60; 200/10 = 20 (hand) */
    int av3[3] = {200, 60, 20};
    ck_assert_int_eq(lb_profile_parse(&p, "longtail:10", 3, NULL), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, av3, 3, order, t), LB_OK);
    ck_assert_int_eq(t[0], 200);
    ck_assert_int_eq(t[1], 60);
    ck_assert_int_eq(t[2], 20);
    /* the order 2,1,0 makes the 20-image class the head: 20, floor(6.32) = 6, 2 (hand) */
    int rev[3] = {2, 1, 0};
    ck_assert_int_eq(lb_profile_targets(&p, av3, 3, rev, t), LB_OK);
    ck_assert_int_eq(t[2], 20);
    ck_assert_int_eq(t[1], 6);
    ck_assert_int_eq(t[0], 2);
    /* longtail:1000 with the 20-image head would give 20/1000 < 1: clamped to 1, never 0 */
    lb_profile_free(&p);
    ck_assert_int_eq(lb_profile_parse(&p, "longtail:1000", 3, NULL), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, av3, 3, rev, t), LB_OK);
    ck_assert_int_eq(t[0], 1);
    lb_profile_free(&p);
    /* binary:3,2 over {10, 20, 30, 5}: negatives available 60, positives min(5, 60/2) = 5,
     * negatives 10 spread as 10*{10,20,30}/60 = 1.67, 3.33, 5 -> floors 1,3,5 (9); the one
     * left goes to the largest remainder (class 0: 0.67) -> 2, 3, 5 (hand) */
    int av4[4] = {10, 20, 30, 5};
    ck_assert_int_eq(lb_profile_parse(&p, "binary:3,2", 4, NULL), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, av4, 4, order, t), LB_OK);
    ck_assert_int_eq(t[0], 2);
    ck_assert_int_eq(t[1], 3);
    ck_assert_int_eq(t[2], 5);
    ck_assert_int_eq(t[3], 5);
    /* binary:3,0.5 -> positives min(5, 60/0.5 = 120) = 5, negatives round(2.5) = 3 =
     * 3*{10,20,30}/60 = 0.5, 1, 1.5 -> 0,1,1 (2) + 1 to class 0 (remainder 0.5 vs 0.5 for
     * class 2: tie goes to the lower index) -> 1, 1, 1 */
    lb_profile_free(&p);
    ck_assert_int_eq(lb_profile_parse(&p, "binary:3,0.5", 4, NULL), LB_OK);
    ck_assert_int_eq(lb_profile_targets(&p, av4, 4, order, t), LB_OK);
    ck_assert_int_eq(t[0], 1);
    ck_assert_int_eq(t[1], 1);
    ck_assert_int_eq(t[2], 1);
    ck_assert_int_eq(t[3], 5);
    lb_profile_free(&p);
    /* counts larger than available */
    ck_assert_int_eq(lb_profile_parse(&p, "counts:5,5,31,1", 4, NULL), LB_OK);
    ck_assert_err(lb_profile_targets(&p, av4, 4, order, t), LB_EINVAL, "asks 31 images but 30");
    lb_profile_free(&p);
}
END_TEST

START_TEST(test_profile_bad_specs)
{
    const char *const *names = lb_fmnist_classes;
    lb_profile p;
    ck_assert_err(lb_profile_parse(&p, "longtail:0.5", 10, names), LB_EINVAL, "RHO = 0.5 must be >= 1");
    ck_assert_err(lb_profile_parse(&p, "longtail:abc", 10, names), LB_EINVAL, "longtail:abc");
    ck_assert_err(lb_profile_parse(&p, "longtail", 10, names), LB_EINVAL, "longtail needs a number");
    ck_assert_err(lb_profile_parse(&p, "step:100,1", 10, names), LB_EINVAL, "MU = 1 must be in (0, 1)");
    ck_assert_err(lb_profile_parse(&p, "step:100,0", 10, names), LB_EINVAL, "MU = 0");
    ck_assert_err(lb_profile_parse(&p, "step:100,0.01", 10, names), LB_EINVAL, "0 minority classes");
    ck_assert_err(lb_profile_parse(&p, "step:0.5,0.5", 10, names), LB_EINVAL, "RHO = 0.5");
    ck_assert_err(lb_profile_parse(&p, "step:100", 10, names), LB_EINVAL, "RHO,MU");
    ck_assert_err(lb_profile_parse(&p, "counts:1,2,3", 10, names), LB_EINVAL, "3 counts given for 10 classes");
    ck_assert_err(lb_profile_parse(&p, "counts:1,x,3", 3, names), LB_EINVAL, "integers");
    ck_assert_err(lb_profile_parse(&p, "counts:1,0,3", 3, names), LB_EINVAL, "count 0 for rank 1");
    ck_assert_err(lb_profile_parse(&p, "binary:Hat,5", 10, names), LB_EINVAL, "'Hat'");
    ck_assert_err(lb_profile_parse(&p, "binary:12,5", 10, names), LB_EINVAL, "'12'");
    ck_assert_err(lb_profile_parse(&p, "binary:3,0", 10, names), LB_EINVAL, "RATIO = 0");
    ck_assert_err(lb_profile_parse(&p, "zipf:2", 10, names), LB_EINVAL, "unknown profile");
    int order[3];
    ck_assert_err(lb_order_parse("0,1,1", 3, 0, NULL, order), LB_EINVAL, "class 1 appears twice");
    ck_assert_err(lb_order_parse("0,1,5", 3, 0, NULL, order), LB_EINVAL, "'5' is not a class index");
    ck_assert_err(lb_order_parse("0,1", 3, 0, NULL, order), LB_EINVAL, "names 2 classes");
    ck_assert_err(lb_order_parse("sideways", 3, 0, NULL, order), LB_EINVAL, "sideways");
    /* random order: a permutation, the same for the same seed */
    int a[10], b[10], seen[10] = {0};
    ck_assert_int_eq(lb_order_parse("random", 10, 7, NULL, a), LB_OK);
    ck_assert_int_eq(lb_order_parse("random", 10, 7, NULL, b), LB_OK);
    for (int c = 0; c < 10; c++) {
        ck_assert_int_eq(a[c], b[c]);
        seen[a[c]]++;
    }
    for (int c = 0; c < 10; c++) ck_assert_int_eq(seen[c], 1);
}
END_TEST

/* ------------------------------------------------------------------ splits */

/* An in-memory dataset with the given class counts (images 1x2x2, pixel = index & 255). */
static lb_dataset *fake_dataset(const int *counts, int C)
{
    int n = 0;
    for (int c = 0; c < C; c++) n += counts[c];
    lb_dataset *ds = blank_dataset(n, 2, 2, C, "c", "fake");
    /* interleave the classes so that index order is not class order */
    int *left = calloc((size_t)C, sizeof(int)), i = 0;
    memcpy(left, counts, sizeof(int) * (size_t)C);
    while (i < n)
        for (int c = 0; c < C && i < n; c++)
            if (left[c] > 0) {
                left[c]--;
                ds->labels[i] = c;
                for (int p = 0; p < 4; p++) ds->pixels[i * 4 + p] = (uint8_t)(i & 255);
                i++;
            }
    free(left);
    return ds;
}

START_TEST(test_split)
{
    int counts[3] = {300, 200, 100};
    lb_dataset *tr = fake_dataset(counts, 3);
    int tcounts[3] = {10, 10, 10};
    lb_dataset *te = fake_dataset(tcounts, 3);
    lb_split s, s2, s3;
    /* counts:100,40,3 with val 0.1: val = round(10) = 10, round(4) = 4, round(0.3) = 0 -> 1 */
    ck_assert_int_eq(lb_split_init(&s, &(lb_split_input){tr, NULL, 0, NULL, 0, te, NULL, 0}, "counts:100,40,3", NULL, 0.1, 42), LB_OK);
    ck_assert_int_eq(s.seed, 42);
    ck_assert_str_eq(s.profile, "counts:100,40,3");
    ck_assert_int_eq(s.kept[0], 100);
    ck_assert_int_eq(s.kept[2], 3);
    ck_assert_int_eq(s.val_counts[0], 10);
    ck_assert_int_eq(s.val_counts[1], 4);
    ck_assert_int_eq(s.val_counts[2], 1);
    ck_assert_int_eq(s.train_counts[0], 90);
    ck_assert_int_eq(s.train_counts[1], 36);
    ck_assert_int_eq(s.train_counts[2], 2);
    ck_assert_int_eq(s.n_train + s.n_val, 143);
    ck_assert_int_eq(s.n_test, 30);
    ck_assert_int_eq(s.test_counts[1], 10);
    /* sorted, disjoint, and each entry's label is its image's class */
    for (int i = 0; i < s.n_train; i++) {
        if (i) ck_assert_int_lt(s.train_idx[i - 1], s.train_idx[i]);
        ck_assert_int_eq(s.train_y[i], tr->labels[s.train_idx[i]]);
        for (int j = 0; j < s.n_val; j++) ck_assert_int_ne(s.train_idx[i], s.val_idx[j]);
    }
    for (int j = 0; j < s.n_val; j++) ck_assert_int_eq(s.val_y[j], tr->labels[s.val_idx[j]]);
    /* the same seed gives the same split, another seed another one */
    ck_assert_int_eq(lb_split_init(&s2, &(lb_split_input){tr, NULL, 0, NULL, 0, te, NULL, 0}, "counts:100,40,3", NULL, 0.1, 42), LB_OK);
    ck_assert_int_eq(lb_split_init(&s3, &(lb_split_input){tr, NULL, 0, NULL, 0, te, NULL, 0}, "counts:100,40,3", NULL, 0.1, 43), LB_OK);
    ck_assert_int_eq(memcmp(s.train_idx, s2.train_idx, sizeof(int) * (size_t)s.n_train), 0);
    ck_assert_int_eq(memcmp(s.val_idx, s2.val_idx, sizeof(int) * (size_t)s.n_val), 0);
    ck_assert_int_ne(memcmp(s.train_idx, s3.train_idx, sizeof(int) * (size_t)s.n_train), 0);
    lb_split_free(&s);
    lb_split_free(&s2);
    lb_split_free(&s3);
    /* binary:2,10 -> positives min(100, 500/10) = 50, negatives 500 (300 + 200: all);
     * the test set is relabelled: 20 rest, 10 positive */
    ck_assert_int_eq(lb_split_init(&s, &(lb_split_input){tr, NULL, 0, NULL, 0, te, NULL, 0}, "binary:c2,10", NULL, 0.0, 1), LB_OK);
    ck_assert_int_eq(s.n_classes, 2);
    ck_assert_str_eq(s.class_names[1], "c2");
    ck_assert_int_eq(s.train_counts[0], 500);
    ck_assert_int_eq(s.train_counts[1], 50);
    ck_assert_int_eq(s.n_val, 0);
    ck_assert_int_eq(s.test_counts[0], 20);
    ck_assert_int_eq(s.test_counts[1], 10);
    for (int i = 0; i < s.n_test; i++) ck_assert_int_eq(s.test_y[i], te->labels[s.test_idx[i]] == 2);
    lb_split_free(&s);
    /* a pool restricts what training can use */
    int pool[6];
    for (int i = 0; i < 6; i++) pool[i] = i; /* labels 0,1,2,0,1,2 */
    ck_assert_int_eq(lb_split_init(&s, &(lb_split_input){tr, pool, 6, NULL, 0, te, NULL, 0}, "none", NULL, 0.5, 1), LB_OK);
    ck_assert_int_eq(s.available[0], 2);
    ck_assert_int_eq(s.val_counts[0], 1);
    ck_assert_int_eq(s.train_counts[0], 1);
    lb_split_free(&s);
    /* errors */
    ck_assert_err(lb_split_init(&s, &(lb_split_input){tr, NULL, 0, NULL, 0, te, NULL, 0}, "counts:301,1,1", NULL, 0, 1), LB_EINVAL, "asks 301");
    ck_assert_err(lb_split_init(&s, &(lb_split_input){tr, NULL, 0, NULL, 0, te, NULL, 0}, "none", NULL, 1.0, 1), LB_EINVAL, "validation fraction");
    ck_assert_err(lb_split_init(&s, &(lb_split_input){tr, NULL, 0, NULL, 0, te, NULL, 0}, "longtail:10", "2,2,2", 0, 1), LB_EINVAL, "twice");
    lb_dataset_free(tr);
    lb_dataset_free(te);
}
END_TEST

START_TEST(test_stratified_rule)
{
    /* classes of 1, 2 and 25 entries at frac 0.1: 0 (never all), 1 (at least 1), round(2.5) = 3 */
    int idx[28], y[28], a[28], b[28], na, nb;
    for (int i = 0; i < 28; i++) {
        idx[i] = 100 + i;
        y[i] = i == 0 ? 0 : i < 3 ? 1 : 2;
    }
    lb_rng r;
    lb_rng_seed(&r, 5);
    ck_assert_int_eq(lb_stratified_split(idx, y, 28, 3, 0.1, &r, a, &na, b, &nb), LB_OK);
    ck_assert_int_eq(nb, 4);
    ck_assert_int_eq(na, 24);
    int cb[3] = {0};
    for (int i = 0; i < nb; i++) cb[y[b[i] - 100]]++;
    ck_assert_int_eq(cb[0], 0);
    ck_assert_int_eq(cb[1], 1);
    ck_assert_int_eq(cb[2], 3);
    /* frac 0 moves nothing */
    ck_assert_int_eq(lb_stratified_split(idx, y, 28, 3, 0.0, &r, a, &na, b, &nb), LB_OK);
    ck_assert_int_eq(nb, 0);
    ck_assert_int_eq(na, 28);
}
END_TEST

/* ------------------------------------------------------------------ samplers */

/* Entries 1000 + i with class counts {50, 20, 5}. */
static void small_entries(int *idx, int *y)
{
    for (int i = 0; i < 75; i++) {
        idx[i] = 1000 + i;
        y[i] = i < 50 ? 0 : i < 70 ? 1 : 2;
    }
}

static void check_epoch_consistent(const int *ei, const int *ey, int len)
{
    for (int k = 0; k < len; k++) {
        int i = ei[k] - 1000;
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, 75);
        ck_assert_int_eq(ey[k], i < 50 ? 0 : i < 70 ? 1 : 2);
    }
}

START_TEST(test_sampler_resampling)
{
    int idx[75], y[75];
    small_entries(idx, y);
    lb_sampler *s;
    const int *ei, *ey;
    int seen[75];
    /* shuffle: each entry once */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("shuffle", idx, y, 75, 3, 9)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch_len(s), 75);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    check_epoch_consistent(ei, ey, 75);
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < 75; k++) seen[ei[k] - 1000]++;
    for (int i = 0; i < 75; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(lb_sampler_counts(s)[0], 50);
    ck_assert_int_eq(lb_sampler_counts(s)[2], 5);
    int in_order = 1;
    for (int k = 0; k < 75; k++) in_order &= ei[k] == 1000 + k;
    ck_assert(!in_order);
    lb_sampler_free(s);
    /* undersample: every class down to the smallest (5): 15 distinct entries */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("undersample", idx, y, 75, 3, 9)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch_len(s), 15);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    check_epoch_consistent(ei, ey, 15);
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < 15; k++) ck_assert_int_eq(seen[ei[k] - 1000]++, 0);
    for (int c = 0; c < 3; c++) ck_assert_int_eq(lb_sampler_counts(s)[c], 5);
    lb_sampler_free(s);
    /* undersample:ratio=2: at most 2 x 5 = 10 per class -> 10, 10, 5 */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("undersample:ratio=2", idx, y, 75, 3, 9)), LB_OK);
    ck_assert_str_eq(lb_sampler_name(s), "undersample:ratio=2");
    ck_assert_int_eq(lb_sampler_epoch(s, 3, &ei, &ey), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch_len(s), 25);
    ck_assert_int_eq(lb_sampler_counts(s)[0], 10);
    ck_assert_int_eq(lb_sampler_counts(s)[1], 10);
    ck_assert_int_eq(lb_sampler_counts(s)[2], 5);
    lb_sampler_free(s);
    /* oversample: every class up to the largest (50), each original entry at least once */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("oversample", idx, y, 75, 3, 9)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch_len(s), 150);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    check_epoch_consistent(ei, ey, 150);
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < 150; k++) seen[ei[k] - 1000]++;
    for (int i = 0; i < 75; i++) ck_assert_int_ge(seen[i], 1);
    for (int c = 0; c < 3; c++) ck_assert_int_eq(lb_sampler_counts(s)[c], 50);
    lb_sampler_free(s);
    /* oversample:ratio=2: up to ceil(50 / 2) = 25 -> 50, 25, 25 */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("oversample:ratio=2", idx, y, 75, 3, 9)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    ck_assert_int_eq(lb_sampler_counts(s)[0], 50);
    ck_assert_int_eq(lb_sampler_counts(s)[1], 25);
    ck_assert_int_eq(lb_sampler_counts(s)[2], 25);
    lb_sampler_free(s);
}
END_TEST

/* Class counts {900, 90, 10}, N = 1000: probability samplers checked against the expected
 * count N p_c within 4 standard deviations sqrt(N p (1 - p)) (fixed seed, so deterministic). */
static void big_entries(int *idx, int *y)
{
    for (int i = 0; i < 1000; i++) {
        idx[i] = i;
        y[i] = i < 900 ? 0 : i < 990 ? 1 : 2;
    }
}

static void check_probs(const int *counts, const double *p)
{
    for (int c = 0; c < 3; c++) {
        double e = 1000 * p[c], sd = sqrt(1000 * p[c] * (1 - p[c]));
        ck_assert_msg(fabs(counts[c] - e) <= 4 * sd + 1, "class %d: %d drawn, expected %.1f +- %.1f", c,
                      counts[c], e, 4 * sd);
    }
}

START_TEST(test_sampler_probabilities)
{
    static int idx[1000], y[1000];
    big_entries(idx, y);
    lb_sampler *s;
    const int *ei, *ey;
    /* balanced: 1/3 each */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("balanced", idx, y, 1000, 3, 4)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch_len(s), 1000);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    const double pb[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    check_probs(lb_sampler_counts(s), pb);
    for (int k = 0; k < 1000; k++) ck_assert_int_eq(ey[k], y[ei[k]]);
    lb_sampler_free(s);
    /* sqrt: p ~ sqrt(n): 30, 9.4868, 3.1623 over 42.6491 -> 0.70342, 0.22244, 0.07415 (hand) */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("sqrt", idx, y, 1000, 3, 4)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    const double ps[3] = {0.70342, 0.22244, 0.07415};
    check_probs(lb_sampler_counts(s), ps);
    lb_sampler_free(s);
    /* sqrt:q=0 is class-balanced, q=1 instance-balanced */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("sqrt:q=1", idx, y, 1000, 3, 4)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    const double pi[3] = {0.9, 0.09, 0.01};
    check_probs(lb_sampler_counts(s), pi);
    lb_sampler_free(s);
    /* progressive over T = 10 epochs: epoch 0 instance-balanced; epoch 5: 0.5 p_IB + 0.5/3 =
     * 0.61667, 0.21167, 0.17167 (hand); epoch 10 and later: 1/3 each */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("progressive:epochs=10", idx, y, 1000, 3, 4)), LB_OK);
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    check_probs(lb_sampler_counts(s), pi);
    ck_assert_int_eq(lb_sampler_epoch(s, 5, &ei, &ey), LB_OK);
    const double p5[3] = {0.61667, 0.21167, 0.17167};
    check_probs(lb_sampler_counts(s), p5);
    ck_assert_int_eq(lb_sampler_epoch(s, 12, &ei, &ey), LB_OK);
    check_probs(lb_sampler_counts(s), pb);
    lb_sampler_free(s);
    /* progressive without a horizon refuses to run; set_horizon fixes it */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("progressive", idx, y, 1000, 3, 4)), LB_OK);
    ck_assert_err(lb_sampler_epoch(s, 0, &ei, &ey), LB_ESTATE, "horizon");
    ck_assert_int_eq(lb_sampler_set_horizon(s, 2), LB_OK);
    ck_assert_str_eq(lb_sampler_name(s), "progressive:epochs=2");
    ck_assert_int_eq(lb_sampler_epoch(s, 2, &ei, &ey), LB_OK);
    check_probs(lb_sampler_counts(s), pb);
    lb_sampler_free(s);
}
END_TEST

START_TEST(test_sampler_determinism)
{
    static int idx[1000], y[1000], first[3000]; /* oversample: 3 x 900 */
    big_entries(idx, y);
    const char *specs[] = {"shuffle", "undersample", "oversample", "balanced", "sqrt", "progressive:epochs=4"};
    for (int k = 0; k < 6; k++) {
        lb_sampler *a, *b, *c;
        const int *ei, *ey, *fi, *fy;
        ck_assert_msg(NEW_OK(a, lb_sampler_new(specs[k], idx, y, 1000, 3, 77)) == LB_OK, "%s", lb_last_error());
        ck_assert_int_eq(NEW_OK(b, lb_sampler_new(specs[k], idx, y, 1000, 3, 77)), LB_OK);
        ck_assert_int_eq(NEW_OK(c, lb_sampler_new(specs[k], idx, y, 1000, 3, 78)), LB_OK);
        int len = lb_sampler_epoch_len(a);
        ck_assert_int_eq(lb_sampler_epoch(a, 1, &ei, &ey), LB_OK);
        memcpy(first, ei, sizeof(int) * (size_t)len);
        ck_assert_int_eq(lb_sampler_epoch(b, 1, &fi, &fy), LB_OK);
        ck_assert_msg(memcmp(first, fi, sizeof(int) * (size_t)len) == 0, "%s: same seed, different epoch", specs[k]);
        ck_assert_int_eq(lb_sampler_epoch(c, 1, &fi, &fy), LB_OK);
        ck_assert_msg(memcmp(first, fi, sizeof(int) * (size_t)len) != 0, "%s: seed ignored", specs[k]);
        /* another epoch differs; regenerating epoch 1 after it gives epoch 1 again */
        ck_assert_int_eq(lb_sampler_epoch(a, 2, &ei, &ey), LB_OK);
        ck_assert_msg(memcmp(first, ei, sizeof(int) * (size_t)len) != 0, "%s: epochs repeat", specs[k]);
        ck_assert_int_eq(lb_sampler_epoch(a, 1, &ei, &ey), LB_OK);
        ck_assert_int_eq(memcmp(first, ei, sizeof(int) * (size_t)len), 0);
        lb_sampler_free(a);
        lb_sampler_free(b);
        lb_sampler_free(c);
    }
}
END_TEST

START_TEST(test_sampler_next_and_errors)
{
    int idx[75], y[75];
    small_entries(idx, y);
    lb_sampler *s;
    const int *bi, *by;
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new(NULL, idx, y, 75, 3, 1)), LB_OK); /* NULL = shuffle */
    ck_assert_int_eq(lb_sampler_current_epoch(s), -1);
    /* 75 entries in batches of 32: 32, 32, 11, then epoch 1 */
    ck_assert_int_eq(lb_sampler_next(s, 32, 0, &bi, &by), 32);
    ck_assert_int_eq(lb_sampler_current_epoch(s), 0);
    ck_assert_int_eq(lb_sampler_next(s, 32, 0, &bi, &by), 32);
    ck_assert_int_eq(lb_sampler_next(s, 32, 0, &bi, &by), 11);
    ck_assert_int_eq(lb_sampler_next(s, 32, 0, &bi, &by), 32);
    ck_assert_int_eq(lb_sampler_current_epoch(s), 1);
    lb_sampler_free(s);
    /* drop_last: 32, 32, then the next epoch */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("shuffle", idx, y, 75, 3, 1)), LB_OK);
    ck_assert_int_eq(lb_sampler_next(s, 32, 1, &bi, &by), 32);
    ck_assert_int_eq(lb_sampler_next(s, 32, 1, &bi, &by), 32);
    ck_assert_int_eq(lb_sampler_next(s, 32, 1, &bi, &by), 32);
    ck_assert_int_eq(lb_sampler_current_epoch(s), 1);
    ck_assert_int_eq(lb_sampler_next(s, 0, 0, &bi, &by), LB_EINVAL);
    lb_sampler_free(s);
    /* an epoch shorter than the batch is still served whole, even with drop_last */
    ck_assert_int_eq(NEW_OK(s, lb_sampler_new("shuffle", idx, y, 75, 3, 1)), LB_OK);
    ck_assert_int_eq(lb_sampler_next(s, 100, 1, &bi, &by), 75);
    ck_assert_int_eq(lb_sampler_next(s, 100, 1, &bi, &by), 75);
    ck_assert_int_eq(lb_sampler_current_epoch(s), 1);
    /* epoch lists are made without allocating */
    uint64_t a0 = lb_alloc_count();
    for (int k = 0; k < 20; k++) ck_assert_int_gt(lb_sampler_next(s, 16, 0, &bi, &by), 0);
    ck_assert_int_eq((int)(lb_alloc_count() - a0), 0);
    lb_sampler_free(s);
    ck_assert_err(NEW_OK(s, lb_sampler_new("sorted", idx, y, 75, 3, 1)), LB_EINVAL, "'sorted': unknown");
    ck_assert_err(NEW_OK(s, lb_sampler_new("undersample:ratio=0.5", idx, y, 75, 3, 1)), LB_EINVAL, "ratio=0.5");
    ck_assert_err(NEW_OK(s, lb_sampler_new("sqrt:q=2", idx, y, 75, 3, 1)), LB_EINVAL, "q=2");
    ck_assert_err(NEW_OK(s, lb_sampler_new("shuffle:ratio=2", idx, y, 75, 3, 1)), LB_EINVAL, "unknown key 'ratio'");
    ck_assert_err(NEW_OK(s, lb_sampler_new("undersample:ratio", idx, y, 75, 3, 1)), LB_EINVAL, "key=value");
    ck_assert_err(NEW_OK(s, lb_sampler_new("progressive:epochs=2.5", idx, y, 75, 3, 1)), LB_EINVAL, "whole number");
    ck_assert_err(NEW_OK(s, lb_sampler_new("shuffle", idx, y, 75, 2, 1)), LB_EINVAL, "label 2");
    ck_assert_err(NEW_OK(s, lb_sampler_new("shuffle", idx, y, 0, 3, 1)), LB_EINVAL, "no training entries");
}
END_TEST

/* ------------------------------------------------------------------ batcher */

START_TEST(test_batcher)
{
    /* two 1x2x3 images with pixels 0, 51, 102, 153, 204, 255 (= 0, .2, .4, .6, .8, 1) */
    lb_dataset ds = {0};
    uint8_t px[12] = {0, 51, 102, 153, 204, 255, 255, 204, 153, 102, 51, 0};
    int labels[2] = {1, 0};
    ds.n = 2;
    ds.c = 1;
    ds.h = 2;
    ds.w = 3;
    ds.pixels = px;
    ds.labels = labels;
    ds.n_classes = 2;
    /* mean/std of all 12 pixels / 255: the values are 0, .2, .4, .6, .8, 1 twice, so the mean
     * is 0.5 and the variance (0.25 + 0.09 + 0.01) * 2 / 6 = 0.116667, std 0.341565 (hand) */
    float mean, sd;
    lb_dataset_stats(&ds, NULL, 0, &mean, &sd);
    ck_assert_close(mean, 0.5, 1e-6);
    ck_assert_close(sd, 0.341565, 1e-5);
    int one = 1;
    lb_dataset_stats(&ds, &one, 1, &mean, &sd);
    ck_assert_close(mean, 0.5, 1e-6);
    /* normalising with mean 0.5, std 0.25: (v - 0.5) / 0.25 = -2, -1.2, -0.4, 0.4, 1.2, 2 */
    float m = 0.5f, s = 0.25f;
    lb_batcher *b = lb_batcher_new(&ds, 4, &m, &s, NULL);
    ck_assert_ptr_nonnull(b);
    int idx[3] = {0, 1, 0};
    int y[3] = {7, 8, 9};
    uint64_t a0 = lb_alloc_count();
    ck_assert_int_eq(lb_batcher_fill(b, idx, NULL, 3, NULL), LB_OK);
    ck_assert_int_eq((int)(lb_alloc_count() - a0), 0);
    const float want0[6] = {-2, -1.2f, -0.4f, 0.4f, 1.2f, 2};
    for (int p = 0; p < 6; p++) {
        ck_assert_close(b->x[p], want0[p], 1e-5);
        ck_assert_close(b->x[6 + p], want0[5 - p], 1e-5);
        ck_assert_close(b->x[12 + p], want0[p], 1e-5);
    }
    ck_assert_int_eq(b->t[0], 1);
    ck_assert_int_eq(b->t[1], 0);
    ck_assert_int_eq(lb_batcher_fill(b, idx, y, 3, NULL), LB_OK);
    ck_assert_int_eq(b->t[2], 9);
    /* errors: too many, bad index */
    ck_assert_err(lb_batcher_fill(b, idx, NULL, 5, NULL), LB_EINVAL, "holds 4");
    int bad[1] = {2};
    ck_assert_err(lb_batcher_fill(b, bad, NULL, 1, NULL), LB_EINVAL, "index 2");
    lb_batcher_free(b);

    /* flip only: the output row is the source row mirrored, or not (one rng draw in [0, 2)) */
    lb_augment aug = {0, 1};
    b = lb_batcher_new(&ds, 1, NULL, NULL, &aug);
    lb_rng r, copy;
    lb_rng_seed(&r, 3);
    int flips = 0;
    for (int k = 0; k < 40; k++) {
        copy = r;
        int flip = (int)lb_rng_below(&copy, 2);
        ck_assert_int_eq(lb_batcher_fill(b, idx, NULL, 1, &r), LB_OK);
        for (int row = 0; row < 2; row++)
            for (int q = 0; q < 3; q++)
                ck_assert_close(b->x[row * 3 + q], px[row * 3 + (flip ? 2 - q : q)] / 255.0, 1e-6);
        flips += flip;
    }
    ck_assert(flips > 5 && flips < 35);
    ck_assert_err(lb_batcher_fill(b, idx, NULL, 1, NULL), LB_EINVAL, "rng");
    lb_batcher_free(b);

    /* crop with 1 pixel of zero padding: output (r, q) = source (r + dy, q + dx) or 0 */
    aug.crop_pad = 1;
    aug.hflip = 0;
    b = lb_batcher_new(&ds, 1, NULL, NULL, &aug);
    int shifted = 0;
    for (int k = 0; k < 40; k++) {
        copy = r;
        int dy = (int)lb_rng_below(&copy, 3) - 1, dx = (int)lb_rng_below(&copy, 3) - 1;
        ck_assert_int_eq(lb_batcher_fill(b, idx, NULL, 1, &r), LB_OK);
        for (int row = 0; row < 2; row++)
            for (int q = 0; q < 3; q++) {
                int sr = row + dy, sq = q + dx;
                double want = (sr < 0 || sr >= 2 || sq < 0 || sq >= 3) ? 0.0 : px[sr * 3 + sq] / 255.0;
                ck_assert_close(b->x[row * 3 + q], want, 1e-6);
            }
        shifted += dy != 0 || dx != 0;
    }
    ck_assert(shifted > 10);
    lb_batcher_free(b);
    aug.crop_pad = 5;
    ck_assert_ptr_null(lb_batcher_new(&ds, 1, NULL, NULL, &aug));
    float zero = 0.0f;
    ck_assert_ptr_null(lb_batcher_new(&ds, 1, &m, &zero, NULL));
}
END_TEST

/* ------------------------------------------------------------------ image folders */

/* A w x h image of one colour (RGB), written as PNG, BMP or JPEG with 1 or 3 channels. */
static void write_image(const char *path, const char *fmt, int comp, int w, int h, const uint8_t rgb[3])
{
    uint8_t *buf = malloc((size_t)w * h * comp);
    for (int p = 0; p < w * h; p++)
        for (int k = 0; k < comp; k++) buf[p * comp + k] = comp == 1 ? rgb[0] : rgb[k];
    int ok = 0;
    if (!strcmp(fmt, "png")) ok = stbi_write_png(path, w, h, comp, buf, w * comp);
    else if (!strcmp(fmt, "bmp")) ok = stbi_write_bmp(path, w, h, comp, buf);
    else ok = stbi_write_jpg(path, w, h, comp, buf, 95);
    ck_assert_msg(ok, "writing %s", path);
    free(buf);
}

START_TEST(test_folder_formats)
{
    make_tmpdir();
    /* classes (sorted): "apple" and "berry"; a hidden folder and a stray file are ignored */
    mkdir_p(tp("root"));
    mkdir_p(tp("root/berry"));
    mkdir_p(tp("root/apple"));
    mkdir_p(tp("root/.cache"));
    write_bytes(tp("root/README.txt"), "x", 1);
    const uint8_t red[3] = {200, 100, 50}, gray[3] = {90, 90, 90};
    write_image(tp("root/apple/a1.png"), "png", 3, 8, 8, red);
    write_image(tp("root/apple/a2.BMP"), "bmp", 3, 16, 12, red);
    write_image(tp("root/apple/a3.jpg"), "jpg", 3, 8, 8, red);
    write_image(tp("root/berry/b1.png"), "png", 1, 8, 8, gray);
    write_image(tp("root/berry/b2.bmp"), "bmp", 1, 5, 7, gray);
    write_image(tp("root/berry/b3.jpeg"), "jpg", 1, 8, 8, gray);
    write_bytes(tp("root/berry/notes.txt"), "not an image", 12);
    write_bytes(tp("root/berry/.DS_Store"), "\0\0\0\1Bud1", 8);
    write_image(tp("root/.cache/c.png"), "png", 3, 8, 8, red);

    lb_dataset *ds;
    /* RGB, resized to 4x4 */
    ck_assert_int_eq(NEW_OK(ds, lb_dataset_new_folder(tp("root"), 3, 4, 4, 1, NULL)), LB_OK);
    ck_assert_int_eq(ds->n, 6);
    ck_assert_int_eq(ds->n_classes, 2);
    ck_assert_str_eq(ds->class_names[0], "apple");
    ck_assert_str_eq(ds->class_names[1], "berry");
    ck_assert_int_eq(ds->c, 3);
    ck_assert_int_eq(ds->h, 4);
    ck_assert_int_eq(ds->w, 4);
    ck_assert_int_eq(ds->warnings.n, 0);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(ds->labels[i], i < 3 ? 0 : 1);
        /* a constant image stays constant through the resize; JPEG (i = 2, 5) within a few levels */
        int tol = (i == 2 || i == 5) ? 4 : 0;
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 16; p++) {
                int v = ds->pixels[(i * 3 + ch) * 16 + p];
                int want = i < 3 ? red[ch] : gray[0];
                ck_assert_msg(abs(v - want) <= tol, "image %d ch %d: %d vs %d", i, ch, v, want);
            }
    }
    lb_dataset_free(ds);
    /* gray at the first image's size (8x8): red -> (200*77 + 100*150 + 50*29) >> 8 = 124 */
    ck_assert_int_eq(NEW_OK(ds, lb_dataset_new_folder(tp("root"), 1, 0, 0, 1, NULL)), LB_OK);
    ck_assert_int_eq(ds->c, 1);
    ck_assert_int_eq(ds->h, 8);
    ck_assert_int_eq(ds->w, 8);
    ck_assert_int_eq(ds->pixels[0], 124);
    ck_assert_int_eq(ds->pixels[64 + 10], 124); /* the 16x12 BMP, resized */
    ck_assert_int_eq(ds->pixels[3 * 64 + 5], 90);
    ck_assert_int_eq(ds->pixels[4 * 64 + 63], 90); /* the 5x7 BMP, resized up */
    lb_dataset_free(ds);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_folder_bad_input)
{
    make_tmpdir();
    const uint8_t c1[3] = {10, 20, 30};
    mkdir_p(tp("r"));
    mkdir_p(tp("r/a"));
    mkdir_p(tp("r/b"));
    write_image(tp("r/a/1.png"), "png", 3, 6, 6, c1);
    write_image(tp("r/a/2.png"), "png", 3, 6, 6, c1);
    write_image(tp("r/b/1.png"), "png", 3, 6, 6, c1);
    write_bytes(tp("r/b/zero.png"), "", 0);                        /* zero-byte image */
    write_bytes(tp("r/b/text.png"), "this is not a png\n", 18);   /* text named .png */
    lb_dataset *ds;
    /* non-strict: two warnings naming the files, three images loaded */
    ck_assert_int_eq(NEW_OK(ds, lb_dataset_new_folder(tp("r"), 3, 0, 0, 0, NULL)), LB_OK);
    ck_assert_int_eq(ds->n, 3);
    ck_assert_int_eq(ds->warnings.n, 2);
    ck_assert_int_eq(ds->warnings.n_kept, 2);
    ck_assert_msg(strstr(ds->warnings.msg[0], "text.png") && strstr(ds->warnings.msg[0], "not a readable image"),
                  "%s", ds->warnings.msg[0]);
    ck_assert_msg(strstr(ds->warnings.msg[1], "zero.png") && strstr(ds->warnings.msg[1], "0 bytes"), "%s", ds->warnings.msg[1]);
    lb_dataset_free(ds);
    /* strict: an error naming the first bad file */
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("r"), 3, 0, 0, 1, NULL)), LB_EFORMAT, "text.png");
    ck_assert_ptr_null(ds);
    /* a class whose every file is unreadable */
    unlink(tp("r/b/1.png"));
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("r"), 3, 0, 0, 0, NULL)), LB_EINVAL, "no readable image");
    /* an empty class folder, and one with only non-image files */
    unlink(tp("r/b/zero.png"));
    unlink(tp("r/b/text.png"));
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("r"), 3, 0, 0, 0, NULL)), LB_EINVAL, "'b' holds no image files");
    write_bytes(tp("r/b/list.txt"), "a\n", 2);
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("r"), 3, 0, 0, 0, NULL)), LB_EINVAL, "'b' holds no image files");
    /* an empty root; a root that does not exist; a file as root */
    mkdir_p(tp("empty"));
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("empty"), 3, 0, 0, 0, NULL)), LB_EINVAL, "no class folders");
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("missing"), 3, 0, 0, 0, NULL)), LB_EIO, "missing");
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("r/b/list.txt"), 3, 0, 0, 0, NULL)), LB_EINVAL, "not a folder");
    ck_assert_err(NEW_OK(ds, lb_dataset_new_folder(tp("r"), 2, 0, 0, 0, NULL)), LB_EINVAL, "channels 2");
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_folder_open_trees)
{
    make_tmpdir();
    const uint8_t c1[3] = {10, 20, 30}, c2[3] = {200, 200, 10};
    /* ROOT/train/<class> and ROOT/test/<class> */
    mkdir_p(tp("t"));
    mkdir_p(tp("t/train"));
    mkdir_p(tp("t/test"));
    const char *cls[2] = {"cat", "dog"};
    char p[512];
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "t/train/%s", cls[k]);
        mkdir_p(tp(p));
        snprintf(p, sizeof p, "t/test/%s", cls[k]);
        mkdir_p(tp(p));
        for (int i = 0; i < (k ? 4 : 8); i++) {
            snprintf(p, sizeof p, "t/train/%s/%d.png", cls[k], i);
            write_image(tp(p), "png", 3, 10, 10, k ? c2 : c1);
        }
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "t/test/%s/%d.bmp", cls[k], i);
            write_image(tp(p), "bmp", 3, 20, 20, k ? c2 : c1); /* read at the training size */
        }
    }
    lb_data_opts o;
    lb_data_opts_init(&o);
    snprintf(p, sizeof p, "folder:%s", tp("t"));
    ck_assert_int_eq(lb_data_opts_set(&o, "data", p), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "channels", "1"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "val", "0"), LB_OK);
    lb_data *d;
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    /* one dataset holds both trees; the split's lists say which image is which */
    ck_assert_ptr_eq(d->train, d->test);
    ck_assert_int_eq(d->train->n, 18);
    ck_assert_int_eq(d->split.n_train, 12);
    ck_assert_int_eq(d->split.n_test, 6);
    ck_assert_int_eq(d->test->h, 10); /* the most common size: the test tree's 20x20 are resized */
    ck_assert_int_eq(d->test->c, 1);
    ck_assert_int_eq(d->split.train_counts[0], 8);
    ck_assert_int_eq(d->split.test_counts[1], 3);
    lb_data_free(d);
    /* a test tree with a class the training tree does not have */
    rename(tp("t/test/dog"), tp("t/test/wolf"));
    ck_assert_err(NEW_OK(d, lb_data_new(&o)), LB_EINVAL, "class folder 'wolf' is not a class of the training images");
    rename(tp("t/test/wolf"), tp("t/test/dog"));

    /* one tree: a stratified test fraction (0.25 of 8 -> 2, of 4 -> 1) */
    snprintf(p, sizeof p, "folder:%s", tp("t/train"));
    ck_assert_int_eq(lb_data_opts_set(&o, "data", p), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "test", "0.25"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "size", "6x5"), LB_OK);
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    ck_assert_ptr_eq(d->train, d->test);
    ck_assert_int_eq(d->train->h, 6);
    ck_assert_int_eq(d->train->w, 5);
    ck_assert_int_eq(d->split.test_counts[0], 2);
    ck_assert_int_eq(d->split.test_counts[1], 1);
    ck_assert_int_eq(d->split.train_counts[0], 6);
    ck_assert_int_eq(d->split.train_counts[1], 3);
    for (int i = 0; i < d->split.n_train; i++)
        for (int j = 0; j < d->split.n_test; j++) ck_assert_int_ne(d->split.train_idx[i], d->split.test_idx[j]);
    lb_data_free(d);
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ specs, presets, open */

START_TEST(test_source_and_size_specs)
{
    lb_source s;
    ck_assert_int_eq(lb_source_parse(&s, "fmnist"), LB_OK);
    ck_assert_int_eq(s.kind, LB_SOURCE_FMNIST);
    ck_assert_ptr_null(s.path[0]);
    lb_source_free(&s);
    ck_assert_int_eq(lb_source_parse(&s, "fmnist:/data/fm"), LB_OK);
    ck_assert_str_eq(s.path[0], "/data/fm");
    lb_source_free(&s);
    ck_assert_int_eq(lb_source_parse(&s, "folder:my/pics"), LB_OK);
    ck_assert_int_eq(s.kind, LB_SOURCE_FOLDER);
    ck_assert_str_eq(s.path[0], "my/pics");
    lb_source_free(&s);
    ck_assert_int_eq(lb_source_parse(&s, "idx:a,b,c,d"), LB_OK);
    ck_assert_int_eq(s.kind, LB_SOURCE_IDX);
    ck_assert_str_eq(s.path[3], "d");
    lb_source_free(&s);
    ck_assert_err(lb_source_parse(&s, "idx:a,b,c"), LB_EINVAL, "four");
    ck_assert_err(lb_source_parse(&s, "idx:a,b,c,d,e"), LB_EINVAL, "four");
    ck_assert_err(lb_source_parse(&s, "idx:a,,c,d"), LB_EINVAL, "empty item");
    ck_assert_err(lb_source_parse(&s, "folder:"), LB_EINVAL, "nothing after ':'");
    ck_assert_err(lb_source_parse(&s, "mnist"), LB_EINVAL, "'mnist': unknown");
    int h, w;
    ck_assert_int_eq(lb_parse_size("32x24", &h, &w), LB_OK);
    ck_assert_int_eq(h, 32);
    ck_assert_int_eq(w, 24);
    ck_assert_int_eq(lb_parse_size("28", &h, &w), LB_OK);
    ck_assert_int_eq(w, 28);
    ck_assert_err(lb_parse_size("0x5", &h, &w), LB_EINVAL, "0x5");
    ck_assert_err(lb_parse_size("axb", &h, &w), LB_EINVAL, "HxW");
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_err(lb_data_opts_set(&o, "val", "1.5"), LB_EINVAL, "[0, 1)");
    ck_assert_err(lb_data_opts_set(&o, "channels", "2"), LB_EINVAL, "1 (gray) or 3");
    ck_assert_err(lb_data_opts_set(&o, "seed", "-3"), LB_EINVAL, "seed");
    ck_assert_err(lb_data_opts_set(&o, "colour", "red"), LB_EINVAL, "'colour'");
    ck_assert_int_eq(lb_data_opts_set(&o, "seed", "18446744073709551615"), LB_OK);
    ck_assert(o.seed == UINT64_MAX);
    lb_data_opts_free(&o);
}
END_TEST

START_TEST(test_presets)
{
    /* the shipped presets */
    const char *names[4] = {"fmnist-lt100", "fmnist-step100", "fmnist-binary", "sample-folder"};
    const char *prof[4] = {"longtail:100", "step:100,0.5", "binary:Shirt,50", "none"};
    for (int k = 0; k < 4; k++) {
        lb_data_opts o;
        lb_data_opts_init(&o);
        ck_assert_msg(lb_data_preset_load(&o, names[k], LIBRA_SOURCE_DIR) == LB_OK, "%s", lb_last_error());
        ck_assert_str_eq(o.name, names[k]);
        ck_assert_str_eq(o.imbalance, prof[k]);
        ck_assert_close(o.val_frac, 0.1, 1e-12);
        ck_assert(o.seed == 1);
        ck_assert_ptr_nonnull(o.description);
        lb_data_opts_free(&o);
    }
    make_tmpdir();
    lb_data_opts o;
    lb_data_opts_init(&o);
    /* relative paths are taken from the preset's folder; comments and blanks are skipped */
    const char *good = "# a comment\n\nname = mine  # trailing comment\ndata = folder:pics\nimbalance = longtail:10\n"
                       "order = 2,1,0\nval=0.2\nsize = 16x16\nchannels = 1\nstrict = yes\nseed = 99\n";
    write_bytes(tp("mine.ini"), good, strlen(good));
    ck_assert_int_eq(lb_data_preset_load(&o, tp("mine.ini"), NULL), LB_OK);
    ck_assert_str_eq(o.name, "mine");
    char want[512];
    snprintf(want, sizeof want, "folder:%s/pics", tmpdir);
    ck_assert_str_eq(o.data, want);
    ck_assert_str_eq(o.order, "2,1,0");
    ck_assert_close(o.val_frac, 0.2, 1e-12);
    ck_assert_int_eq(o.height, 16);
    ck_assert_int_eq(o.channels, 1);
    ck_assert_int_eq(o.strict, 1);
    ck_assert(o.seed == 99);
    /* unknown key: named with file and line */
    const char *bad = "data = fmnist\n\n# x\nbatch = 12\n";
    write_bytes(tp("bad.ini"), bad, strlen(bad));
    ck_assert_err(lb_data_preset_load(&o, tp("bad.ini"), NULL), LB_EINVAL, "bad.ini:4: unknown key 'batch'");
    const char *noeq = "data fmnist\n";
    write_bytes(tp("noeq.ini"), noeq, strlen(noeq));
    ck_assert_err(lb_data_preset_load(&o, tp("noeq.ini"), NULL), LB_EINVAL, "noeq.ini:1: expected 'key = value'");
    const char *badval = "val = 0.1\nval = 2\n";
    write_bytes(tp("badval.ini"), badval, strlen(badval));
    ck_assert_err(lb_data_preset_load(&o, tp("badval.ini"), NULL), LB_EINVAL, "badval.ini:2");
    ck_assert_err(lb_data_preset_load(&o, "no-such-preset", tmpdir), LB_EIO, "no-such-preset");
    ck_assert_err(lb_data_preset_load(&o, tp("nope.ini"), NULL), LB_EIO, "not found");
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_open_idx)
{
    make_tmpdir();
    /* 40 training images 4x4 in 4 classes (10 each), 8 test images */
    write_idx_pair(tp("tri.gz"), tp("trl.gz"), 40, 4, 4, 4, 1);
    write_idx_pair(tp("tei"), tp("tel"), 8, 4, 4, 4, 0);
    char spec[1024];
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", tp("tri.gz"), tp("trl.gz"), tp("tei"), tp("tel"));
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_int_eq(lb_data_opts_set(&o, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "imbalance", "counts:10,6,3,2"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "order", "3,2,1,0"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "val", "0.5"), LB_OK);
    lb_data *d;
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    /* order 3,2,1,0: class 3 keeps 10, class 0 keeps 2; val = round(half), >= 1, never all:
     * kept 2,3,6,10 -> val 1, round(1.5) = 2, 3, 5 */
    ck_assert_int_eq(d->split.kept[3], 10);
    ck_assert_int_eq(d->split.kept[0], 2);
    ck_assert_int_eq(d->split.val_counts[0], 1);
    ck_assert_int_eq(d->split.val_counts[1], 2);
    ck_assert_int_eq(d->split.val_counts[3], 5);
    ck_assert_int_eq(d->split.train_counts[0], 1);
    ck_assert_int_eq(d->split.n_test, 8);
    ck_assert_int_eq(d->train->n_classes, 4);
    lb_data_free(d);
    /* channel and size conversion of IDX images: gray replicated to 3 channels, 4x4 -> 8x8 */
    ck_assert_int_eq(lb_data_opts_set(&o, "channels", "3"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "size", "8x8"), LB_OK);
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    ck_assert_int_eq(d->train->c, 3);
    ck_assert_int_eq(d->test->h, 8);
    for (int p = 0; p < 64; p++) {
        ck_assert_int_eq(d->train->pixels[p], d->train->pixels[64 + p]);
        ck_assert_int_eq(d->train->pixels[p], d->train->pixels[128 + p]);
    }
    ck_assert_close(d->mean[0], d->mean[2], 1e-7);
    lb_data_free(d);
    /* a test label beyond the training classes: labels 0..4 with 4 classes */
    write_idx_pair(tp("tei5"), tp("tel5"), 8, 4, 4, 5, 0);
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", tp("tri.gz"), tp("trl.gz"), tp("tei5"), tp("tel5"));
    ck_assert_int_eq(lb_data_opts_set(&o, "data", spec), LB_OK);
    ck_assert_err(NEW_OK(d, lb_data_new(&o)), LB_EFORMAT, "label 4 of item 4 is out of range [0, 4)");
    /* an unknown profile is refused as the option is set, before any data is read */
    ck_assert_err(lb_data_opts_set(&o, "imbalance", "pareto:3"), LB_EINVAL, "pareto:3");
    /* one that needs the data to be refused: 2 counts for 4 classes */
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", tp("tri.gz"), tp("trl.gz"), tp("tei"), tp("tel"));
    ck_assert_int_eq(lb_data_opts_set(&o, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "imbalance", "counts:3,2"), LB_OK);
    ck_assert_err(NEW_OK(d, lb_data_new(&o)), LB_EINVAL, "2 counts given for 4 classes");
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_sample_folder_preset)
{
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_int_eq(lb_data_preset_load(&o, "sample-folder", LIBRA_SOURCE_DIR), LB_OK);
    lb_data *d;
    ck_assert_msg(NEW_OK(d, lb_data_new(&o)) == LB_OK, "%s", lb_last_error());
    /* 200 / 60 / 20 images (scripts/make_sample_folder.py); test 0.2 -> 40 / 12 / 4; of the
     * remaining 160 / 48 / 16, val 0.1 -> 16 / round(4.8) = 5 / round(1.6) = 2 (hand) */
    ck_assert_int_eq(d->train->n, 280);
    ck_assert_int_eq(d->train->warnings.n, 0);
    ck_assert_str_eq(d->split.class_names[0], "circle");
    ck_assert_str_eq(d->split.class_names[2], "triangle");
    const int te[3] = {40, 12, 4}, va[3] = {16, 5, 2}, tr[3] = {144, 43, 14};
    for (int c = 0; c < 3; c++) {
        ck_assert_int_eq(d->split.test_counts[c], te[c]);
        ck_assert_int_eq(d->split.val_counts[c], va[c]);
        ck_assert_int_eq(d->split.train_counts[c], tr[c]);
    }
    ck_assert_int_eq(d->train->c, 3);
    ck_assert_int_eq(d->train->h, 32);
    lb_data_free(d);
    lb_data_opts_free(&o);
}
END_TEST

/* ------------------------------------------------------------------ your own data */

static int has_note(const lb_notes *n, const char *needle)
{
    for (int i = 0; i < n->n_kept; i++)
        if (strstr(n->msg[i], needle)) return 1;
    return 0;
}

static lb_data *open_opts(lb_data_opts *o, const char *spec, const char *k1, const char *v1, const char *k2,
                          const char *v2)
{
    lb_data_opts_init(o);
    ck_assert_int_eq(lb_data_opts_set(o, "data", spec), LB_OK);
    if (k1) ck_assert_int_eq(lb_data_opts_set(o, k1, v1), LB_OK);
    if (k2) ck_assert_int_eq(lb_data_opts_set(o, k2, v2), LB_OK);
    return lb_data_new(o);
}

/* ImageFolder's reading: a class per first-level folder, images at any depth below it;
 * TIFF/WebP are warnings, other files are counted; the most common size and the majority
 * mode of the training images are chosen and said. */
START_TEST(test_folder_nested_sizes_modes)
{
    make_tmpdir();
    mkdir_p(tp("r"));
    mkdir_p(tp("r/a"));
    mkdir_p(tp("r/a/x"));
    mkdir_p(tp("r/a/x/y"));
    mkdir_p(tp("r/b"));
    const uint8_t c1[3] = {200, 10, 10}, g[3] = {80, 80, 80};
    /* a: 3 RGB 8x6 (two nested), 1 gray 4x4; b: 2 gray 8x6, 1 RGB 8x6: 8x6 is the most common
     * size (5 of 7), and RGB the majority (4 of 7) */
    write_image(tp("r/a/top.png"), "png", 3, 8, 6, c1);
    write_image(tp("r/a/x/mid.png"), "png", 3, 8, 6, c1);
    write_image(tp("r/a/x/y/deep.png"), "png", 3, 8, 6, c1);
    write_image(tp("r/a/x/small.png"), "png", 1, 4, 4, g);
    write_image(tp("r/b/b1.png"), "png", 1, 8, 6, g);
    write_image(tp("r/b/b2.png"), "png", 1, 8, 6, g);
    write_image(tp("r/b/b3.png"), "png", 3, 8, 6, c1);
    write_bytes(tp("r/b/scan.TIF"), "II*\0", 4);
    write_bytes(tp("r/b/notes.txt"), "n", 1);
    lb_data_opts o;
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", tp("r"));
    lb_data *d = open_opts(&o, spec, "val", "0", NULL, NULL);
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_int_eq(d->train->n, 7);
    ck_assert_int_eq(d->train->c, 3);
    ck_assert_int_eq(d->train->h, 6);
    ck_assert_int_eq(d->train->w, 8);
    ck_assert(has_note(&d->info, "image size 6x8: the most common of 2 sizes among the training images (6 of 7)"));
    ck_assert(has_note(&d->info, "channels 3 (RGB): 4 of the 7 training images are colour"));
    ck_assert(has_note(&d->info, "resized 1 of 7 images to 6x8"));
    ck_assert(has_note(&d->info, "converted 3 of 7 images to RGB"));
    ck_assert(has_note(&d->info, "ignored 1 file that is not an image"));
    ck_assert_int_eq(d->n_skipped, 1);
    ck_assert(has_note(&d->warnings, "scan.TIF: TIFF and WebP are formats torchvision reads but stb_image does not"));
    lb_data_free(d);
    /* given size and channels: no choice to announce */
    lb_data_opts_free(&o);
    d = open_opts(&o, spec, "size", "4x4", "channels", "1");
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_int_eq(d->train->c * d->train->h * d->train->w, 16);
    ck_assert(!has_note(&d->info, "most common") && !has_note(&d->info, "majority"));
    lb_data_free(d);
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

/* ROOT/train + ROOT/val (+ ROOT/test): the folders are the splits. */
START_TEST(test_folder_split_layouts)
{
    make_tmpdir();
    const char *dirs[] = {"L", "L/train", "L/train/cat", "L/train/dog", "L/val", "L/val/cat", "L/val/dog"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdir_p(tp(dirs[i]));
    const uint8_t c[3] = {9, 99, 199};
    char p[512];
    for (int i = 0; i < 10; i++) {
        snprintf(p, sizeof p, "L/train/%s/%d.png", i % 2 ? "dog" : "cat", i);
        write_image(tp(p), "png", 3, 4, 4, c);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "L/val/%s/%d.png", i % 2 ? "dog" : "cat", i);
        write_image(tp(p), "png", 3, 4, 4, c);
    }
    lb_data_opts o;
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", tp("L"));
    /* train + val: val is the validation split as it is; no test tree: 0.2 of train is split off */
    lb_data *d = open_opts(&o, spec, NULL, NULL, NULL, NULL);
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_int_eq(d->split.n_val, 3);
    ck_assert_int_eq(d->split.val_counts[0], 2);
    ck_assert_int_eq(d->split.n_test, 2); /* 0.2 of 5 cats and 5 dogs: 1 each */
    ck_assert_int_eq(d->split.n_train, 8);
    ck_assert(has_note(&d->info, "validation: the 3 images the source marks as validation"));
    ck_assert_str_eq(d->split.class_names[0], "cat");
    lb_data_free(d);
    lb_data_opts_free(&o);
    /* + test: every split from its folder */
    mkdir_p(tp("L/test"));
    mkdir_p(tp("L/test/dog"));
    write_image(tp("L/test/dog/t.png"), "png", 3, 4, 4, c);
    d = open_opts(&o, spec, NULL, NULL, NULL, NULL);
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_int_eq(d->split.n_train, 10);
    ck_assert_int_eq(d->split.n_test, 1);
    ck_assert(has_note(&d->warnings, "class 'cat' has no test image"));
    lb_data_free(d);
    lb_data_opts_free(&o);
    /* a val class the training tree does not have */
    mkdir_p(tp("L/val/fox"));
    write_image(tp("L/val/fox/f.png"), "png", 3, 4, 4, c);
    ck_assert_err(NEW_OK(d, open_opts(&o, spec, NULL, NULL, NULL, NULL)), LB_EINVAL,
                  "class folder 'fox' is not a class of the training images");
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

/* tp("hd"): Healthy/ and Diseased/ folders of 4x4 gray PNGs (0.png, 1.png, ...). */
static void make_healthy_diseased(int healthy, int diseased)
{
    mkdir_p(tp("hd"));
    mkdir_p(tp("hd/Healthy"));
    mkdir_p(tp("hd/Diseased"));
    const uint8_t c[3] = {50, 60, 70};
    char p[512];
    for (int i = 0; i < healthy + diseased; i++) {
        snprintf(p, sizeof p, "hd/%s/%d.png", i < healthy ? "Healthy" : "Diseased", i);
        write_image(tp(p), "png", 1, 4, 4, c);
    }
}

/* --classes fixes the order (and so what class 0 is); the validation default is 10%. */
START_TEST(test_classes_order_and_val_default)
{
    make_tmpdir();
    make_healthy_diseased(30, 10);
    lb_data_opts o;
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", tp("hd"));
    lb_data *d = open_opts(&o, spec, NULL, NULL, NULL, NULL);
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_str_eq(d->split.class_names[0], "Diseased"); /* sorted */
    /* test 0.2: Diseased 2 of 10, Healthy 6 of 30; val 0.1 of the rest: 1 of 8, 2 of 24 (hand) */
    ck_assert_int_eq(d->split.test_counts[0], 2);
    ck_assert_int_eq(d->split.val_counts[0], 1);
    ck_assert_int_eq(d->split.val_counts[1], 2);
    ck_assert_int_eq(d->split.train_counts[1], 22);
    lb_data_free(d);
    lb_data_opts_free(&o);
    d = open_opts(&o, spec, "classes", "Healthy,Diseased", NULL, NULL);
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_str_eq(d->split.class_names[0], "Healthy");
    ck_assert_int_eq(d->split.train_counts[0], 22);
    for (int i = 0; i < d->split.n_train; i++)
        ck_assert_int_eq(d->split.train_y[i], d->train->labels[d->split.train_idx[i]]);
    lb_data_free(d);
    lb_data_opts_free(&o);
    ck_assert_err(NEW_OK(d, open_opts(&o, spec, "classes", "Healthy,Sick", NULL, NULL)), LB_EINVAL,
                  "'Sick' is not a class of");
    lb_data_opts_free(&o);
    ck_assert_err(NEW_OK(d, open_opts(&o, spec, "classes", "Healthy", NULL, NULL)), LB_EINVAL,
                  "class 'Diseased' is missing");
    lb_data_opts_free(&o);
    ck_assert_err(NEW_OK(d, open_opts(&o, spec, "classes", "Healthy,Healthy", NULL, NULL)), LB_EINVAL, "given twice");
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

/* longtail on data that is already imbalanced: ranked by count, never above what a class has,
 * and an order that inverts the imbalance is said. */
START_TEST(test_profile_on_imbalanced_folder)
{
    make_tmpdir();
    make_healthy_diseased(100, 10);
    lb_data_opts o;
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", tp("hd"));
    /* pool after test 0.2: Healthy 80, Diseased 8. longtail:4 by count: Healthy 80, Diseased
     * floor(80/4) = 20 but it has 8: it keeps 8 (hand) */
    lb_data *d = open_opts(&o, spec, "imbalance", "longtail:4", "val", "0");
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_int_eq(d->split.train_counts[1], 80);
    ck_assert_int_eq(d->split.train_counts[0], 8);
    ck_assert(has_note(&d->warnings, "class 'Diseased' keeps all its 8 training images (the profile asks 20)"));
    lb_data_free(d);
    lb_data_opts_free(&o);
    /* --order natural makes Diseased (8) the head: Healthy gets floor(8/4) = 2, inverted */
    d = open_opts(&o, spec, "imbalance", "longtail:4", "order", "natural");
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert(has_note(&d->warnings, "inverts the existing imbalance"));
    lb_data_free(d);
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

/* csv:FILE through lb_data_new: labels as classes (sorted), the split column, a bad row and
 * a missing file as warnings naming the row. */
START_TEST(test_csv_source)
{
    make_tmpdir();
    mkdir_p(tp("img"));
    const uint8_t c[3] = {50, 60, 70};
    char p[512];
    FILE *f = fopen(tp("labels.csv"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("file,diagnosis,fold\n", f);
    for (int i = 0; i < 24; i++) {
        snprintf(p, sizeof p, "img/%d.png", i);
        write_image(tp(p), "png", 3, 6, 6, c);
        fprintf(f, "%s,%s,%s\n", p + 4, i % 4 == 0 ? "Diseased" : "Healthy", i < 16 ? "train" : i < 20 ? "val" : "test");
    }
    fputs("missing.png,Healthy,train\n", f); /* line 26 */
    fputs("24.png,,train\n", f);             /* line 27: no label */
    fclose(f);
    lb_data_opts o;
    char spec[800];
    snprintf(spec, sizeof spec, "csv:%s,root=%s,path=file,label=diagnosis,split=fold", tp("labels.csv"), tp("img"));
    lb_data *d = open_opts(&o, spec, NULL, NULL, NULL, NULL);
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_int_eq(d->split.n_classes, 2);
    ck_assert_str_eq(d->split.class_names[0], "Diseased");
    ck_assert_int_eq(d->split.n_train, 16);
    ck_assert_int_eq(d->split.n_val, 4);
    ck_assert_int_eq(d->split.n_test, 4);
    ck_assert_int_eq(d->split.train_counts[0], 4); /* rows 0, 4, 8, 12 */
    ck_assert_msg(has_note(&d->warnings, "labels.csv:26: ") && has_note(&d->warnings, "missing.png"), "no warning for line 26");
    ck_assert(has_note(&d->warnings, "labels.csv:27"));
    ck_assert_int_eq(d->n_skipped, 2);
    lb_data_free(d);
    lb_data_opts_free(&o);
    /* strict: the first bad row is the error */
    ck_assert_err(NEW_OK(d, open_opts(&o, spec, "strict", "1", NULL, NULL)), LB_EINVAL, "labels.csv:27");
    lb_data_opts_free(&o);
    cleanup_tmpdir();
}
END_TEST

/* idx:DIR and the six-file form: parsing and formatting round trip, and a folder as
 * libra-resample writes it (train-*, val-*, test-*, classes.txt) read with its own val split. */
START_TEST(test_open_idx_dir)
{
    const char *specs[] = {"idx:some/dir", "idx:a,b,c,d", "idx:a,b,c,d,e,f"};
    for (int k = 0; k < 3; k++) {
        lb_source s;
        ck_assert_int_eq(lb_source_parse(&s, specs[k]), LB_OK);
        ck_assert_int_eq(s.kind, LB_SOURCE_IDX);
        char *back = lb_source_format(&s, 0);
        ck_assert_str_eq(back, specs[k]);
        lb_free(back);
        if (k == 0) {
            ck_assert_str_eq(s.path[0], "some/dir");
            ck_assert_ptr_null(s.path[1]);
            back = lb_source_format(&s, 1); /* absolute: joined to the working directory */
            ck_assert_ptr_nonnull(strstr(back, "/some/dir"));
            ck_assert_int_eq(back[4], '/');
            lb_free(back);
        }
        if (k == 2) ck_assert_str_eq(s.path[5], "f");
        lb_source_free(&s);
    }
    lb_source s;
    ck_assert_err(lb_source_parse(&s, "idx:a,b"), LB_EINVAL, "four");
    ck_assert_err(lb_source_parse(&s, "idx:a,b,c,d,e,f,g"), LB_EINVAL, "six");
    ck_assert_err(lb_source_parse(&s, "idx:d,key=1"), LB_EINVAL, "idx needs a folder");

    make_tmpdir();
    /* 30 training images in 3 classes (10 each), 9 validation (3 each), 6 test */
    write_idx_pair(tp("train-images-idx3-ubyte.gz"), tp("train-labels-idx1-ubyte.gz"), 30, 4, 4, 3, 1);
    write_idx_pair(tp("val-images-idx3-ubyte"), tp("val-labels-idx1-ubyte"), 9, 4, 4, 3, 0);
    write_idx_pair(tp("test-images-idx3-ubyte.gz"), tp("test-labels-idx1-ubyte.gz"), 6, 4, 4, 3, 1);
    const char *names = "cat\ndog\r\nemu\n\n";
    write_bytes(tp("classes.txt"), names, strlen(names));
    char spec[1024];
    snprintf(spec, sizeof spec, "idx:%s", tmpdir);
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_int_eq(lb_data_opts_set(&o, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "val", "0.5"), LB_OK); /* not used: the folder has val files */
    lb_data *d;
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    ck_assert_int_eq(d->split.n_train, 30);
    ck_assert_int_eq(d->split.n_val, 9);
    ck_assert_int_eq(d->split.n_test, 6);
    ck_assert_int_eq(d->split.val_counts[1], 3);
    ck_assert_str_eq(d->split.class_names[0], "cat");
    ck_assert_str_eq(d->split.class_names[1], "dog");
    ck_assert_str_eq(d->test->class_names[2], "emu");
    ck_assert(has_note(&d->info, "validation: the 9 images the source marks as validation"));
    /* the validation images are the val file's, appended after the training ones */
    for (int i = 0; i < d->split.n_val; i++) ck_assert_int_ge(d->split.val_idx[i], 30);
    ck_assert_int_eq(d->train->pixels[30 * 16 + 5], 5); /* val image 0, pixel 5: (0 * 7 + 5) & 255 */
    lb_data_free(d);
    /* the six-file form: the same split; without val files: val_frac of the training files */
    char six[2048];
    snprintf(six, sizeof six, "idx:%s,%s,%s,%s,%s,%s", tp("train-images-idx3-ubyte.gz"),
             tp("train-labels-idx1-ubyte.gz"), tp("test-images-idx3-ubyte.gz"), tp("test-labels-idx1-ubyte.gz"),
             tp("val-images-idx3-ubyte"), tp("val-labels-idx1-ubyte"));
    ck_assert_int_eq(lb_data_opts_set(&o, "data", six), LB_OK);
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    ck_assert_int_eq(d->split.n_val, 9);
    ck_assert_str_eq(d->split.class_names[0], "0"); /* classes.txt is read for idx:DIR only */
    lb_data_free(d);
    unlink(tp("val-images-idx3-ubyte"));
    unlink(tp("val-labels-idx1-ubyte"));
    ck_assert_int_eq(lb_data_opts_set(&o, "data", spec), LB_OK);
    ck_assert_int_eq(NEW_OK(d, lb_data_new(&o)), LB_OK);
    ck_assert_int_eq(d->split.n_val + d->split.n_train, 30);
    ck_assert_int_eq(d->split.n_val, 15);
    lb_data_free(d);
    /* prediction opens the test part alone, named by classes.txt */
    lb_dataset *ds;
    ck_assert_int_eq(NEW_OK(ds, lb_dataset_open(&o, 0)), LB_OK);
    ck_assert_int_eq(ds->n, 6);
    ck_assert_str_eq(ds->class_names[1], "dog");
    lb_dataset_free(ds);
    /* half a part, a missing test part, a repeated class name, a missing folder */
    write_bytes(tp("val-images-idx3-ubyte"), "x", 1);
    ck_assert_err(NEW_OK(d, lb_data_new(&o)), LB_EIO, "is there but not val-labels-idx1-ubyte");
    unlink(tp("val-images-idx3-ubyte"));
    write_bytes(tp("classes.txt"), "cat\ncat\nemu\n", strlen("cat\ncat\nemu\n"));
    ck_assert_err(NEW_OK(d, lb_data_new(&o)), LB_EFORMAT, "classes.txt:2: class 'cat' is named twice");
    unlink(tp("classes.txt"));
    unlink(tp("test-images-idx3-ubyte.gz"));
    unlink(tp("test-labels-idx1-ubyte.gz"));
    ck_assert_err(NEW_OK(d, lb_data_new(&o)), LB_EIO, "no test-images-idx3-ubyte.gz");
    cleanup_tmpdir();
    ck_assert_err(NEW_OK(d, lb_data_new(&o)), LB_EIO, "not a folder");
    lb_data_opts_free(&o);
}
END_TEST

/* The oracle's balanced profile, worked by hand: the kept images divided evenly over the
 * classes, per rank in the split's order; capped where a class has fewer; binary gives the
 * largest balanced set. */
/* A sweep's list: pieces that start with a letter are profiles, the others continue the one
 * before them after its last ':' or ','. */
START_TEST(test_profile_list)
{
    static const struct {
        const char *in, *out; /* out: the profiles joined by ' ' */
    } ok[] = {{"longtail:10|50|100|200", "longtail:10 longtail:50 longtail:100 longtail:200"},
              {"binary:Shirt,10|50", "binary:Shirt,10 binary:Shirt,50"},
              {"longtail:100|step:100,0.5|none", "longtail:100 step:100,0.5 none"},
              {"longtail:100", "longtail:100"}};
    for (size_t t = 0; t < sizeof ok / sizeof ok[0]; t++) {
        char **v = NULL, joined[256] = "";
        int n = 0;
        ck_assert_msg(lb_profile_list(ok[t].in, &v, &n) == LB_OK, "%s: %s", ok[t].in, lb_last_error());
        for (int i = 0; i < n; i++) {
            if (i) strcat(joined, " ");
            strcat(joined, v[i]);
            lb_free(v[i]);
        }
        lb_free(v);
        ck_assert_str_eq(joined, ok[t].out);
    }
    static const struct {
        const char *in, *mention;
    } bad[] = {{"longtail:10|10", "given twice"}, {"longtail:10|", "empty"}, {"|none", "empty"},
               {"50|longtail:10", "continues no profile"}, {"longtail:10|0.5", "longtail"}, {"longtail:10|sqrt:2", "sqrt"}};
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        char **v = (char **)1;
        int n = 7;
        ck_assert_int_eq(lb_profile_list(bad[t].in, &v, &n), LB_EINVAL);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(n, 0);
        ck_assert_msg(strstr(lb_last_error(), bad[t].mention) && strstr(lb_last_error(), bad[t].in), "%s: %s", bad[t].in,
                      lb_last_error());
    }
}
END_TEST

START_TEST(test_balanced_profile)
{
    static const char *const names[3] = {"a", "b", "c"};
    int order[3] = {0, 1, 2}, avail[3] = {100, 100, 100}, kept[3] = {100, 50, 10};
    lb_split sp = {.n_source_classes = 3, .n_classes = 3, .order = order, .available = avail, .kept = kept,
                   .profile = "longtail:10", .n_train = 144, .n_val = 16};
    lb_buf spec = {0}, note = {0};
    ck_assert_int_eq(lb_balanced_profile(&sp, names, &spec, &note), LB_OK);
    ck_assert_str_eq(spec.p, "counts:53,53,53"); /* 160 / 3 = 53 */
    ck_assert_str_eq(note.p, "53 images per class (159 in all): the same total size as the 160 images longtail:10 kept");
    lb_buf_free(&spec);
    lb_buf_free(&note);
    /* ranks follow the order: c (rank 1) has all it needs, b (rank 2) only 30 */
    int order2[3] = {0, 2, 1}, avail2[3] = {100, 30, 100}, kept2[3] = {100, 30, 20};
    sp.order = order2;
    sp.available = avail2;
    sp.kept = kept2;
    ck_assert_int_eq(lb_balanced_profile(&sp, names, &spec, &note), LB_OK);
    ck_assert_str_eq(spec.p, "counts:50,50,30");
    ck_assert_str_eq(note.p, "50 images per class where the source has them (130 in all, against the 150 images "
                             "longtail:10 kept); capped where the source has fewer: 'b' has only 30");
    lb_buf_free(&spec);
    lb_buf_free(&note);
    /* the largest balanced set: the fewest any class has, 30 of b, for every class */
    ck_assert_int_eq(lb_full_balanced_profile(&sp, names, &spec, &note), LB_OK);
    ck_assert_str_eq(spec.p, "counts:30,30,30");
    ck_assert_str_eq(note.p, "the largest balanced set the source has: 30 images per class (90 in all; 'b' has 30), "
                             "against the 160 images longtail:10 kept");
    lb_buf_free(&spec);
    lb_buf_free(&note);
    /* binary: all 40 positives of b and 40 of the rest */
    int avail3[3] = {100, 40, 100}, kept3[3] = {30, 6, 0};
    sp.available = avail3;
    sp.kept = kept3;
    sp.profile = "binary:b,5";
    sp.n_train = 32;
    sp.n_val = 4;
    ck_assert_int_eq(lb_balanced_profile(&sp, names, &spec, &note), LB_OK);
    ck_assert_str_eq(spec.p, "binary:1,1");
    ck_assert_str_eq(note.p, "the largest balanced set the source has: 40 images of 'b' and 40 of the rest (80 in all, "
                             "against 36 kept by binary:b,5)");
    lb_buf_free(&spec);
    lb_buf_free(&note);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idx_roundtrip);
    tcase_add_test(tc, test_idx_dataset);
    tcase_add_test(tc, test_idx_bad_input);
    tcase_add_test(tc, test_idx_bad_gzip);
    tcase_add_test(tc, test_idx_billions);
    tcase_add_test(tc, test_idx_dataset_mismatch);
    tcase_add_test(tc, test_fmnist_missing_and_env);
    tcase_add_test(tc, test_fmnist_profiles_real);
    tcase_add_test(tc, test_profile_targets_synthetic);
    tcase_add_test(tc, test_profile_targets_uneven);
    tcase_add_test(tc, test_profile_bad_specs);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_stratified_rule);
    tcase_add_test(tc, test_sampler_resampling);
    tcase_add_test(tc, test_sampler_probabilities);
    tcase_add_test(tc, test_sampler_determinism);
    tcase_add_test(tc, test_sampler_next_and_errors);
    tcase_add_test(tc, test_batcher);
    tcase_add_test(tc, test_folder_formats);
    tcase_add_test(tc, test_folder_bad_input);
    tcase_add_test(tc, test_folder_open_trees);
    tcase_add_test(tc, test_source_and_size_specs);
    tcase_add_test(tc, test_presets);
    tcase_add_test(tc, test_open_idx);
    tcase_add_test(tc, test_open_idx_dir);
    tcase_add_test(tc, test_sample_folder_preset);
    tcase_add_test(tc, test_folder_nested_sizes_modes);
    tcase_add_test(tc, test_folder_split_layouts);
    tcase_add_test(tc, test_classes_order_and_val_default);
    tcase_add_test(tc, test_profile_on_imbalanced_folder);
    tcase_add_test(tc, test_csv_source);
    tcase_add_test(tc, test_balanced_profile);
    tcase_add_test(tc, test_profile_list);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lb_run_suite(data_suite()); }
