/* Regression tests from fuzzing: every input in fuzz/regress/<target>/ once crashed, leaked or
 * broke an invariant of a fuzz target; here each goes through the very same entry point
 * (the fuzz targets are compiled in with LIBRA_FUZZ_NO_ENTRY) and must now give the status
 * and message listed below. The seed corpora in fuzz/corpus/<target>/ are replayed too:
 * none may break an invariant, and each target keeps at least one seed its parser accepts,
 * so a format change that leaves the seeds stale shows up here rather than as a fuzzer that
 * quietly stops reaching the success path. docs/reliability.md lists the findings. */
#define LIBRA_FUZZ_NO_ENTRY
#include "../fuzz/fuzz_checkpoint.c"
#include "../fuzz/fuzz_csv.c"
#include "../fuzz/fuzz_folder.c"
#include "../fuzz/fuzz_idx.c"
#include "../fuzz/fuzz_predictions.c"
#include "../fuzz/fuzz_preset.c"
#include "../fuzz/fuzz_record.c"
#include "../fuzz/fuzz_spec.c"

#include "check_util.h"

typedef int (*fz_entry)(const uint8_t *, size_t);

typedef struct {
    const char *name;
    fz_entry fn;
} fz_target;

static const fz_target targets[] = {
    {"checkpoint", libra_fuzz_checkpoint}, {"csv", libra_fuzz_csv},       {"folder", libra_fuzz_folder},
    {"idx", libra_fuzz_idx},               {"preset", libra_fuzz_preset}, {"record", libra_fuzz_record},
    {"spec", libra_fuzz_spec},             {"predictions", libra_fuzz_predictions},
};
#define N_TARGETS (int)(sizeof targets / sizeof targets[0])

/* One finding: the input file, the status the entry point must return now, and a piece of
 * the message it must leave (NULL: any). */
typedef struct {
    const char *target, *file;
    int status;
    const char *message;
} fz_case;

static const fz_case cases[] = {
    /* stb_image returned a 0x0 image for a PNM header without a width; the loader passed it
     * to stbir_resize_uint8, whose assertion aborted the process. Now a per-file error
     * (non-strict: a skipped file; here class b has no other image). */
    {"folder", "pnm-zero-size", LB_EINVAL, "size 0x0"},
    /* A run record claiming n_classes = 22568 with a 2x2 confusion matrix: the reader
     * allocated the C*C confusion counts (4 GB) before looking at the matrix. Now the
     * matrix's shape is checked first. */
    {"record", "n-classes-huge", LB_EFORMAT, "\"confusion\" has 2 rows, expected 22568"},
    /* 78- and 62-byte BMPs whose headers claim 4 x 16,580,353 and 131072 x 1024 pixels:
     * stb_image decoded them (zero-filled past the end of the file) into ~200 MB and the
     * resize took over 10 s each. Now refused from the header, before decoding. */
    {"folder", "bmp-tall-truncated", LB_EINVAL, "header claims 4x16580353 pixels, more than a 78-byte file"},
    {"folder", "bmp-wide-truncated", LB_EINVAL, "header claims 131072x1024 pixels, more than a 62-byte file"},
    /* A 579-byte JPEG claiming 26120x26473 pixels: stb_image allocated 2 GB for it. */
    {"folder", "jpeg-huge-header", LB_EINVAL, "header claims 26120x26473 pixels, more than a 579-byte file"},
    /* A 16-bit PGM (maxval 5655) read as RGB: stb_image 2.27 converted its channels with the
     * 8-bit converter and then read twice the buffer (SEGV). Now decoded natively and
     * converted by libra; the truncated file loads zero-filled. */
    {"folder", "pgm16-to-rgb", LB_OK, NULL},
    /* A 137-byte BMP claiming 4194308 x 2 pixels (plausible per byte, as 24-bit BMP rows
     * need not be whole) took 5 s to decode and resize, 10 s under the fuzzer: a time-out.
     * Now a side over 65535 is refused from the header. */
    {"folder", "bmp-4m-wide", LB_EINVAL, "a side over 65535"},
    /* A 54-byte top-down BMP claiming 10500 x -65534 pixels: stb_image's header reader gives
     * the height as negative, so the size check (pixels per byte) passed and the decode of
     * 688 million pixels took 13 s, a time-out. The height is now taken as |height|. */
    {"folder", "bmp-negative-height", LB_EINVAL, "more than a 53-byte file can hold"},
    /* A BMP whose height is -2^31: negating it as an int was undefined (UBSan, found by the
     * fuzz smoke run of 2026-12-02). The sides are now taken as long long. */
    {"folder", "bmp-height-int-min", LB_EINVAL, "4x2147483648 pixels, more than a 31-byte file"},
    /* Profile "binary:2,1e-300": negatives / RATIO = 8.55e302 was converted to long long
     * (undefined; on x86 it became LLONG_MIN and the profile was refused as "cannot give"
     * any positive). Now clamped to the positives available, in double, first. */
    {"spec", "binary-tiny-ratio", LB_OK, NULL},
    /* Class weights beyond a float (alpha=.21e308; a weight list scaled up to 1e38) passed
     * creation and gave infinite gradients with LB_OK. Now refused at creation. */
    {"spec", "focal-alpha-beyond-float", LB_EINVAL, "must be in (0, 1e30]"},
    {"spec", "wce-weight-beyond-float", LB_EINVAL, "must be in (0, 1e30]"},
    /* A 187-byte strategy whose grid has 2^24 points: expanded in full (gigabytes, time-out).
     * Now counted first and refused. */
    /* A checkpoint with a section twice leaked the first copy; PARM(50), OPTM(50), PARM(89)
     * loaded and then overran the 50-entry moments when saved or resumed. Now a repeated
     * section is refused, and OPTM must follow PARM with as many entries. */
    {"checkpoint", "dup-parm-leak", LB_EFORMAT, "appears twice"},
    {"checkpoint", "optm-before-parm-overflow", LB_EFORMAT, NULL},
    {"spec", "grid-2pow24-points", LB_OK, "more than 1000 points"}, /* the list parses; its grid is refused */
    /* smote:counts=555555573 on 4 rows: the plan allocated its arrays for 555 million rows
     * (2.2 GB each), an OOM under libFuzzer's malloc limit (CI smoke run, 2026-12-03). The
     * library is right to try; the fuzz target now plans only sets of at most 2^16 rows,
     * and sets beyond INT_MAX rows, which must be refused before anything is allocated. */
    {"spec", "synth-counts-huge", LB_OK, NULL},
    {"spec", "synth-counts-beyond-int", LB_EINVAL, "a resampled set of 4000000000 rows is too large"},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static fz_entry entry_of(const char *target)
{
    for (int i = 0; i < N_TARGETS; i++)
        if (!strcmp(targets[i].name, target)) return targets[i].fn;
    return NULL;
}

static unsigned char *read_input(const char *dir, const char *target, const char *file, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/fuzz/%s/%s/%s", LIBRA_SOURCE_DIR, dir, target, file);
    unsigned char *b = fz_read(path, n);
    ck_assert_msg(b != NULL, "cannot read %s", path);
    return b;
}

START_TEST(regress_case)
{
    const fz_case *c = &cases[_i];
    fz_entry fn = entry_of(c->target);
    ck_assert_msg(fn != NULL, "no fuzz target %s", c->target);
    size_t n = 0;
    unsigned char *b = read_input("regress", c->target, c->file, &n);
    int rc = fn(b, n);
    free(b);
    ck_assert_msg(rc == c->status, "%s/%s: status %d, expected %d (%s)", c->target, c->file, rc, c->status,
                  lb_last_error());
    if (c->message)
        ck_assert_msg(strstr(lb_last_error(), c->message) != NULL, "%s/%s: message '%s' lacks '%s'", c->target,
                      c->file, lb_last_error(), c->message);
}
END_TEST

/* Every file of fuzz/regress/ is listed in cases[] (an input committed without its expected
 * outcome would be replayed by nobody). */
START_TEST(regress_all_listed)
{
    for (int t = 0; t < N_TARGETS; t++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/fuzz/regress/%s", LIBRA_SOURCE_DIR, targets[t].name);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            int listed = 0;
            for (int k = 0; k < N_CASES; k++)
                listed |= !strcmp(cases[k].target, targets[t].name) && !strcmp(cases[k].file, e->d_name);
            ck_assert_msg(listed, "fuzz/regress/%s/%s is not in cases[]", targets[t].name, e->d_name);
        }
        closedir(d);
    }
}
END_TEST

START_TEST(seeds_replay)
{
    const fz_target *t = &targets[_i];
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", LIBRA_SOURCE_DIR, t->name);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no seed corpus %s", dir);
    int n_seeds = 0, n_ok = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t n = 0;
        unsigned char *b = read_input("corpus", t->name, e->d_name, &n);
        n_seeds++;
        n_ok += t->fn(b, n) == LB_OK; /* an invariant broken on the way aborts the test */
        free(b);
    }
    closedir(d);
    ck_assert_msg(n_seeds >= 3, "%s: %d seeds", t->name, n_seeds);
    ck_assert_msg(n_ok >= 1, "%s: none of the %d seeds is accepted any more (stale format?)", t->name, n_seeds);
}
END_TEST

/* A PNG chunk: length, type, data, CRC of type + data. */
static void png_chunk(FILE *f, const char *type, const unsigned char *data, size_t n)
{
    unsigned char be[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                           (unsigned char)n};
    fwrite(be, 1, 4, f);
    fwrite(type, 1, 4, f);
    if (n) fwrite(data, 1, n, f);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, (uInt)n);
    unsigned char c[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
                          (unsigned char)crc};
    fwrite(c, 1, 4, f);
}

/* The size guard of the folder loader (at most 65536 pixels per file byte) must not refuse
 * the densest real image: a 1-bit all-black PNG, whose deflate stream reaches about 8200
 * pixels per byte (zlib level 9: 4096x4096 pixels in ~2 KB). */
START_TEST(folder_guard_keeps_dense_png)
{
    const int n = 4096;
    size_t row = 1 + (size_t)n / 8, raw_len = row * (size_t)n; /* filter byte + 1 bit per pixel */
    unsigned char *raw = calloc(raw_len, 1);
    uLongf zlen = compressBound((uLong)raw_len);
    unsigned char *z = malloc(zlen);
    ck_assert(raw && z && compress2(z, &zlen, raw, (uLong)raw_len, 9) == Z_OK);
    char dir[512], p[600];
    fz_mkdir("dense");
    fz_mkdir("dense/a");
    fz_path(dir, sizeof dir, "dense");
    snprintf(p, sizeof p, "%s/a/black.png", dir);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    unsigned char ihdr[13] = {0, 0, (unsigned char)(n >> 8), (unsigned char)n, 0, 0, (unsigned char)(n >> 8),
                              (unsigned char)n, 1 /* bit depth */, 0 /* gray */, 0, 0, 0};
    png_chunk(f, "IHDR", ihdr, sizeof ihdr);
    png_chunk(f, "IDAT", z, zlen);
    png_chunk(f, "IEND", NULL, 0);
    long size = ftell(f);
    fclose(f);
    free(raw);
    free(z);
    ck_assert_msg((double)n * n / (double)size > 4000.0, "only %.0f pixels per byte", (double)n * n / size);
    lb_dataset *ds = NULL;
    ck_assert_msg(NEW_OK(ds, lb_dataset_new_folder(dir, 1, 8, 8, 1, NULL)) == LB_OK, "%s", lb_last_error());
    ck_assert_int_eq(ds->n, 1);
    for (int i = 0; i < 64; i++) ck_assert_int_eq(ds->pixels[i], 0);
    lb_dataset_free(ds);
}
END_TEST

/* Writes a binary 16-bit PNM (P5 gray or P6 RGB) of n x n pixels, every sample `v`. */
static void write_pnm16(const char *path, int rgb, int n, const unsigned v[3])
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "P%d\n%d %d\n65535\n", rgb ? 6 : 5, n, n);
    for (long i = 0; i < (long)n * n; i++)
        for (int k = 0; k < (rgb ? 3 : 1); k++) {
            fputc((int)(v[k] >> 8), f);
            fputc((int)(v[k] & 0xff), f);
        }
    fclose(f);
}

/* 16-bit PNMs whose channels differ from the request, large enough that stb_image 2.27's
 * overread (reading 2x its buffer) faults rather than reading neighbouring heap. The
 * expected bytes: stb reduces 16 bits to 8 by v >> 8 (0xABAB -> 0xAB = 171); gray from RGB
 * is (77 r + 150 g + 29 b) >> 8 = (77*16 + 150*128 + 29*240) >> 8 = 27392 >> 8 = 107. A
 * uniform image stays uniform through the resize. */
START_TEST(folder_16bit_pnm_channels)
{
    const unsigned gray[3] = {0xABAB, 0, 0}, rgb[3] = {0x1010, 0x8080, 0xF0F0};
    char dir[512], p[600];
    fz_mkdir("pnm16");
    fz_mkdir("pnm16/a");
    fz_path(dir, sizeof dir, "pnm16");
    snprintf(p, sizeof p, "%s/a/x.pgm", dir);
    write_pnm16(p, 0, 1024, gray);
    lb_dataset *ds = NULL;
    ck_assert_msg(NEW_OK(ds, lb_dataset_new_folder(dir, 3, 8, 8, 1, NULL)) == LB_OK, "%s", lb_last_error());
    for (int i = 0; i < 3 * 64; i++) ck_assert_int_eq(ds->pixels[i], 171);
    lb_dataset_free(ds);
    unlink(p);
    snprintf(p, sizeof p, "%s/a/x.ppm", dir);
    write_pnm16(p, 1, 1024, rgb);
    ck_assert_msg(NEW_OK(ds, lb_dataset_new_folder(dir, 1, 8, 8, 1, NULL)) == LB_OK, "%s", lb_last_error());
    for (int i = 0; i < 64; i++) ck_assert_int_eq(ds->pixels[i], 107);
    lb_dataset_free(ds);
    unlink(p);
}
END_TEST

static Suite *fuzz_regress_suite(void)
{
    Suite *s = suite_create("fuzz_regress");
    TCase *tc = tcase_create("regress");
    tcase_add_loop_test(tc, regress_case, 0, N_CASES);
    tcase_add_test(tc, regress_all_listed);
    tcase_add_test(tc, folder_guard_keeps_dense_png);
    tcase_add_test(tc, folder_16bit_pnm_channels);
    tcase_add_loop_test(tc, seeds_replay, 0, N_TARGETS);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lb_run_suite(fuzz_regress_suite()); }
