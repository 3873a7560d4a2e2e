/* Image folders as torchvision's ImageFolder: ROOT/<class>/<image>, classes sorted by name. */
#include "data/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <stb_image.h>
#include <stb_image_resize.h>

/* Extensions stb_image decodes. Anything else is not an image and is skipped silently. */
static const char *const image_ext[] = {"png", "jpg", "jpeg", "bmp", "gif", "tga", "pnm",
                                        "ppm", "pgm", "psd", "hdr", "pic"};

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof image_ext / sizeof *image_ext; i++)
        if (strcasecmp(dot + 1, image_ext[i]) == 0) return 1;
    return 0;
}

typedef struct {
    char **names;
    int n;
} name_list;

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++) lb_free(l->names[i]);
    lb_free(l->names);
    l->names = NULL;
    l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted non-hidden entries of `dir` that are directories (want_dirs) or regular image
 * files (!want_dirs). */
static int list_dir(const char *dir, int want_dirs, name_list *out)
{
    out->names = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (!d) return lb_error(LB_EIO, "%s: cannot open folder (%s)", dir, strerror(errno));
    int cap = 0, rc = LB_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ".", "..", .DS_Store, hidden folders */
        char *path = lb_strfmt("%s/%s", dir, e->d_name);
        if (!path) {
            rc = lb_error(LB_ENOMEM, "%s: out of memory", dir);
            break;
        }
        struct stat st;
        int ok = stat(path, &st) == 0;
        lb_free(path);
        if (!ok) continue; /* dangling link: nothing to read */
        if (want_dirs ? !S_ISDIR(st.st_mode) : (!S_ISREG(st.st_mode) || !is_image_name(e->d_name)))
            continue;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = lb_realloc(out->names, sizeof(char *) * (size_t)cap);
            if (!nn) {
                rc = lb_error(LB_ENOMEM, "%s: out of memory", dir);
                break;
            }
            out->names = nn;
        }
        if (!(out->names[out->n] = lb_strdup(e->d_name))) {
            rc = lb_error(LB_ENOMEM, "%s: out of memory", dir);
            break;
        }
        out->n++;
    }
    closedir(d);
    if (rc) {
        names_free(out);
        return rc;
    }
    if (out->n > 1) qsort(out->names, (size_t)out->n, sizeof(char *), cmp_str);
    return LB_OK;
}

/* No format stb_image reads packs more than about 8,200 pixels into a byte (a 1-bit PNG at
 * deflate's 1032:1); a header claiming over 8x that is a truncated or crafted file, which
 * stb_image would still decode, zero-filled, into hundreds of MB (fuzz/fuzz_folder.c found a
 * 78-byte BMP claiming 4 x 16,580,353 pixels). */
#define MAX_PIXELS_PER_BYTE 65536.0

/* 1 if the header of `path` (file_size bytes) claims more pixels than the file can hold. */
static int implausible_size(const char *path, long long file_size, int *x, int *y)
{
    int comp;
    if (!stbi_info(path, x, y, &comp)) return 0; /* stbi_load will report what is wrong */
    /* stb_image 2.27 reports a top-down BMP's height as negative (and then decodes |height|
     * rows): a 54-byte file claiming 10500 x -65534 took 13 s (fuzz/regress/folder/bmp-negative-height) */
    if (*x < 0) *x = -*x;
    if (*y < 0) *y = -*y;
    return (double)*x * *y > (double)file_size * MAX_PIXELS_PER_BYTE;
}

/* comp -> c (1 or 3) interleaved channels the way stb_image's own converter does it (luma
 * weights 77/150/29 out of 256, alpha dropped). */
static void convert_channels(const unsigned char *in, int comp, unsigned char *out, int c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = in + i * (size_t)comp;
        unsigned char g = comp >= 3 ? (unsigned char)((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8) : p[0];
        if (c == 1) out[i] = g;
        else
            for (int k = 0; k < 3; k++) out[i * 3 + k] = comp >= 3 ? p[k] : g;
    }
}

/* Decodes one file into dst (planar [c, h, w]). Returns 0, or -1 with `why` filled. */
static int load_one(const char *path, int c, int h, int w, uint8_t *dst, uint8_t *tmp,
                    char *why, size_t why_len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, why_len, "cannot stat (%s)", strerror(errno));
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(why, why_len, "empty file (0 bytes)");
        return -1;
    }
    int x, y, comp;
    if (implausible_size(path, (long long)st.st_size, &x, &y)) {
        snprintf(why, why_len, "header claims %dx%d pixels, more than a %lld-byte file can hold", x, y,
                 (long long)st.st_size);
        return -1;
    }
    /* a side beyond 65535 is no photograph; decoding and resizing one takes seconds (a
     * fuzzer find: a 137-byte BMP of 4194308 x 2 pixels) */
    if (x > 65535 || y > 65535) {
        snprintf(why, why_len, "header claims %dx%d pixels: a side over 65535", x, y);
        return -1;
    }
    /* stb_image 2.27 converts the channels of a 16-bit PNM with its 8-bit converter and then
     * reads twice the buffer it allocated (a heap overread, found by fuzz/fuzz_folder.c), so
     * 16-bit files are decoded with their own channels and converted here. */
    int native = stbi_is_16_bit(path);
    unsigned char *img = stbi_load(path, &x, &y, &comp, native ? 0 : c), *conv = NULL;
    if (!img) {
        const char *r = stbi_failure_reason();
        /* stb_image's reasons are terse: the two a user meets most are said in words */
        const char *plain = !r ? "unknown reason" : !strcmp(r, "outofdata") ? "cut short or corrupt: outofdata"
                                                  : !strcmp(r, "unknown image type") ? "not an image format it reads"
                                                                                     : r;
        snprintf(why, why_len, "not a readable image (%s)", plain);
        return -1;
    }
    /* stb_image 2.27 returns a 0x0 image for some malformed PNM headers; resizing it
     * would trip an assertion inside stb_image_resize (found by fuzz/fuzz_folder.c). */
    if (x < 1 || y < 1) {
        stbi_image_free(img);
        snprintf(why, why_len, "not a readable image (size %dx%d)", x, y);
        return -1;
    }
    const unsigned char *src = img;
    if (native && comp != c) {
        if (!(conv = lb_malloc((size_t)x * y * c))) {
            stbi_image_free(img);
            snprintf(why, why_len, "out of memory for a %dx%d image", y, x);
            return -1;
        }
        convert_channels(img, comp, conv, c, (size_t)x * y);
        src = conv;
    }
    if (x != w || y != h) {
        if (!stbir_resize_uint8(src, x, y, 0, tmp, w, h, 0, c)) {
            stbi_image_free(img);
            lb_free(conv);
            snprintf(why, why_len, "resize from %dx%d to %dx%d failed", y, x, h, w);
            return -1;
        }
        src = tmp;
    }
    size_t hw = (size_t)h * w;
    for (size_t p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) dst[ch * hw + p] = src[p * c + ch];
    stbi_image_free(img);
    lb_free(conv);
    return 0;
}

/* Refuses a channel count other than 1 or 3, a bad image size, or a root that is not a folder. */
static int check_args(const char *root, int channels, int h, int w)
{
    if (channels != 1 && channels != 3)
        return lb_error(LB_EINVAL, "channels %d: must be 1 or 3", channels);
    if (h < 0 || w < 0 || h > 65535 || w > 65535 || (h == 0) != (w == 0))
        return lb_error(LB_EINVAL, "image size %dx%d: give both sides (1..65535) or neither", h, w);
    struct stat st;
    if (stat(root, &st) != 0)
        return lb_error(LB_EIO, "%s: image folder not found (%s)", root, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return lb_error(LB_EINVAL, "%s: not a folder", root);
    return LB_OK;
}

/* Refuses class folders that differ from the class names of `from`, naming the first difference. */
static int check_same_classes(const char *root, const name_list *classes, const lb_dataset *from)
{
    int same = from->n_classes == classes->n;
    for (int k = 0; same && k < classes->n; k++)
        same = strcmp(from->class_names[k], classes->names[k]) == 0;
    if (same) return LB_OK;
    int k = 0;
    while (k < classes->n && k < from->n_classes && strcmp(from->class_names[k], classes->names[k]) == 0)
        k++;
    return lb_error(LB_EINVAL, "%s: its %d class folders differ from the %d of %s (first difference: '%s' vs '%s')",
                    root, classes->n, from->n_classes, from->source ? from->source : "the training set",
                    k < classes->n ? classes->names[k] : "(none)",
                    k < from->n_classes ? from->class_names[k] : "(none)");
}

/* The sorted class folders of root: at least one, and the same as those of class_names_from if given. */
static int list_classes(const char *root, const lb_dataset *class_names_from, name_list *classes)
{
    int rc = list_dir(root, 1, classes);
    if (rc) return rc;
    if (classes->n == 0) {
        names_free(classes);
        return lb_error(LB_EINVAL, "%s: no class folders in the image folder (expected ROOT/<class>/<image>)",
                        root);
    }
    if (class_names_from) {
        rc = check_same_classes(root, classes, class_names_from);
        if (rc) names_free(classes);
    }
    return rc;
}

/* Every class's image files into files[k] (none may be empty); *total is their sum. */
static int list_files(const char *root, const name_list *classes, name_list *files, long *total)
{
    for (int k = 0; k < classes->n; k++) {
        char *cdir = lb_strfmt("%s/%s", root, classes->names[k]);
        if (!cdir) return lb_error(LB_ENOMEM, "%s: out of memory", root);
        int rc = list_dir(cdir, 0, &files[k]);
        if (rc == LB_OK && files[k].n == 0)
            rc = lb_error(LB_EINVAL, "%s: class folder '%s' holds no image files", cdir, classes->names[k]);
        lb_free(cdir);
        if (rc) return rc;
        *total += files[k].n;
    }
    if (*total > 0x7fffffffL) return lb_error(LB_EINVAL, "%s: %ld images, more than libra can index", root, *total);
    return LB_OK;
}

/* When no size is given (*h == 0): that of the first file stb_image can read, else 1x1. */
static void default_size(const char *root, const name_list *classes, const name_list *files, int *h, int *w)
{
    for (int k = 0; *h == 0 && k < classes->n; k++)
        for (int i = 0; *h == 0 && i < files[k].n; i++) {
            char *p = lb_strfmt("%s/%s/%s", root, classes->names[k], files[k].names[i]);
            int x, y, comp;
            struct stat fst;
            if (p && stat(p, &fst) == 0 && stbi_info(p, &x, &y, &comp) && x > 0 && y > 0 && x <= 65535 &&
                y <= 65535 && !implausible_size(p, (long long)fst.st_size, &x, &y)) {
                *h = y;
                *w = x;
            }
            lb_free(p);
        }
    if (*h == 0) *h = *w = 1; /* nothing decodes: the per-file loop reports it */
}

/* A dataset with room for `total` images of channels x h x w, plus one image of scratch in
 * *tmp. On failure *ds may still be set (without class names) for the caller to free. */
static int alloc_dataset(const char *root, int channels, int h, int w, int n_classes, long total,
                         lb_dataset **ds, uint8_t **tmp)
{
    lb_dataset *d = *ds = lb__dataset_new();
    if (!d) return LB_ENOMEM;
    size_t img_bytes = (size_t)channels * h * w;
    d->c = channels;
    d->h = h;
    d->w = w;
    d->n_classes = n_classes;
    d->pixels = lb_malloc(img_bytes * (size_t)total);
    d->labels = lb_malloc(sizeof(int) * (size_t)total);
    d->source = lb_strfmt("folder:%s", root);
    *tmp = lb_malloc(img_bytes);
    if (!d->pixels || !d->labels || !d->source || !*tmp)
        return lb_error(LB_ENOMEM, "%s: out of memory for %ld images of %dx%dx%d", root, total, channels, h, w);
    return LB_OK;
}

/* Appends the images of class k (folder cname) to ds. An unreadable file is refused when
 * strict, else skipped with a warning; a class left with no image is refused either way. */
static int decode_class(const char *root, const char *cname, int k, const name_list *files, int strict,
                        lb_dataset *ds, uint8_t *tmp)
{
    size_t img_bytes = (size_t)ds->c * ds->h * ds->w;
    char why[256], first_bad[512];
    int got = 0, rc = LB_OK;
    first_bad[0] = '\0';
    for (int i = 0; rc == LB_OK && i < files->n; i++) {
        char *path = lb_strfmt("%s/%s/%s", root, cname, files->names[i]);
        if (!path) return lb_error(LB_ENOMEM, "%s: out of memory", root);
        int bad = load_one(path, ds->c, ds->h, ds->w, ds->pixels + img_bytes * (size_t)ds->n, tmp, why, sizeof why);
        if (!bad) {
            ds->labels[ds->n++] = k;
            got++;
        } else if (strict) {
            rc = lb_error(LB_EFORMAT, "%s: %s", path, why);
        } else {
            rc = lb_notes_add(&ds->warnings, "%s: %s (skipped)", path, why);
            if (!first_bad[0]) snprintf(first_bad, sizeof first_bad, "%s: %s", files->names[i], why);
        }
        lb_free(path);
    }
    if (rc) return rc;
    if (got == 0)
        return lb_error(LB_EINVAL, "%s/%s: class folder '%s' has no readable image (%d file%s could not be decoded; first: %s)",
                        root, cname, cname, files->n, files->n == 1 ? "" : "s", first_bad);
    return LB_OK;
}

/* Frees what load_folder allocated (files[] has nc lists); a dataset here does not own the
 * class names yet. */
static void free_folder_parts(name_list *classes, int nc, name_list *files, lb_dataset *ds, uint8_t *tmp)
{
    lb_free(tmp);
    if (files)
        for (int k = 0; k < nc; k++) names_free(&files[k]);
    lb_free(files);
    names_free(classes);
    if (ds) {
        ds->n_classes = 0; /* class names are still owned by `classes` */
        lb_dataset_free(ds);
    }
}

static int load_folder(const char *root, int channels, int h, int w, int strict, const lb_dataset *class_names_from,
                       lb_dataset **out)
{
    *out = NULL;
    if (channels == 0) channels = 3;
    int rc = check_args(root, channels, h, w);
    if (rc) return rc;
    name_list classes;
    rc = list_classes(root, class_names_from, &classes);
    if (rc) return rc;

    /* Every class's file list, then one allocation for all images. */
    const int nc = classes.n;
    name_list *files = lb_calloc((size_t)classes.n, sizeof *files);
    if (!files) {
        names_free(&classes);
        return lb_error(LB_ENOMEM, "%s: out of memory", root);
    }
    lb_dataset *ds = NULL;
    uint8_t *tmp = NULL;
    long total = 0;
    rc = list_files(root, &classes, files, &total);
    if (rc == LB_OK) {
        default_size(root, &classes, files, &h, &w);
        rc = alloc_dataset(root, channels, h, w, classes.n, total, &ds, &tmp);
    }
    for (int k = 0; rc == LB_OK && k < classes.n; k++)
        rc = decode_class(root, classes.names[k], k, &files[k], strict, ds, tmp);
    if (rc == LB_OK) {
        if (ds->n < total) { /* give back the slots of skipped files */
            uint8_t *p = lb_realloc(ds->pixels, (size_t)channels * h * w * (size_t)ds->n);
            if (p) ds->pixels = p;
        }
        ds->class_names = classes.names; /* the sorted folder names are the class names */
        classes.names = NULL;
        classes.n = 0;
        *out = ds;
        ds = NULL;
    }
    free_folder_parts(&classes, nc, files, ds, tmp);
    return rc;
}

lb_dataset *lb_dataset_new_folder(const char *root, int channels, int h, int w, int strict,
                                  const lb_dataset *class_names_from)
{
    lb_dataset *ds = NULL;
    return load_folder(root, channels, h, w, strict, class_names_from, &ds) == LB_OK ? ds : NULL;
}
