/* Listed image files into one dataset: a survey of every file's header, the size and
 * channels chosen from the training images (or given), then one decode per file with the
 * resizing and conversion counted and announced. */
#include "data/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <stb_image.h>
#include <stb_image_resize.h>

/* ---- the list ---- */

int lb__images_add(lb__image_list *l, const char *path, const char *origin, int label, int split)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        lb__image *v = lb_realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return lb_error(LB_ENOMEM, "out of memory listing %d images", l->n + 1);
        l->v = v;
        l->cap = cap;
    }
    lb__image *e = &l->v[l->n];
    e->path = lb_strdup(path);
    e->origin = origin ? lb_strdup(origin) : NULL;
    e->label = label;
    e->split = split;
    if (!e->path || (origin && !e->origin)) {
        lb_free(e->path);
        lb_free(e->origin);
        return lb_error(LB_ENOMEM, "out of memory listing %s", path);
    }
    l->n++;
    return LB_OK;
}

void lb__images_free(lb__image_list *l)
{
    for (int i = 0; i < l->n; i++) {
        lb_free(l->v[i].path);
        lb_free(l->v[i].origin);
    }
    lb_free(l->v);
    lb__free_names(l->classes, l->n_classes);
    lb_free(l->source);
    lb_notes_free(&l->warnings);
    lb_notes_free(&l->info);
    memset(l, 0, sizeof *l);
}

static const char *const decoded_ext[] = {"png", "jpg", "jpeg", "bmp", "gif", "tga", "pnm",
                                          "ppm", "pgm", "psd", "hdr", "pic"};
static const char *const foreign_ext[] = {"tif", "tiff", "webp"};

int lb__image_kind(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof decoded_ext / sizeof *decoded_ext; i++)
        if (strcasecmp(dot + 1, decoded_ext[i]) == 0) return 1;
    for (size_t i = 0; i < sizeof foreign_ext / sizeof *foreign_ext; i++)
        if (strcasecmp(dot + 1, foreign_ext[i]) == 0) return 2;
    return 0;
}

/* ---- resizing and channels ---- */

int lb__resize_u8(const uint8_t *in, int w, int h, uint8_t *out, int ow, int oh, int c)
{
    stbir_filter fh = ow < w ? STBIR_FILTER_BOX : STBIR_FILTER_DEFAULT;
    stbir_filter fv = oh < h ? STBIR_FILTER_BOX : STBIR_FILTER_DEFAULT;
    return stbir_resize(in, w, h, 0, out, ow, oh, 0, STBIR_TYPE_UINT8, c, STBIR_ALPHA_CHANNEL_NONE, 0,
                        STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, fh, fv, STBIR_COLORSPACE_LINEAR, NULL)
               ? 0
               : -1;
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

/* ---- the survey: every file's header, before anything is decoded ---- */

/* No format stb_image reads packs more than about 8,200 pixels into a byte (a 1-bit PNG at
 * deflate's 1032:1); a header claiming over 8x that is a truncated or crafted file, which
 * stb_image would still decode, zero-filled, into hundreds of MB (fuzz/fuzz_folder.c found a
 * 78-byte BMP claiming 4 x 16,580,353 pixels). */
#define MAX_PIXELS_PER_BYTE 65536.0

typedef struct {
    int w, h, comp; /* from the header; comp 0: the file cannot be used (why says why) */
    char why[200];
} header;

/* The header of one file, or why it cannot be read. */
static void read_header(const char *path, header *hd)
{
    struct stat st;
    hd->comp = 0;
    if (stat(path, &st) != 0) {
        snprintf(hd->why, sizeof hd->why, "cannot read it (%s)", strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(hd->why, sizeof hd->why, "not a regular file");
        return;
    }
    if (st.st_size == 0) {
        snprintf(hd->why, sizeof hd->why, "empty file (0 bytes)");
        return;
    }
    int x, y, comp;
    if (!stbi_info(path, &x, &y, &comp)) {
        const char *r = stbi_failure_reason();
        /* stb_image's reasons are terse: the two a user meets most are said in words */
        const char *plain = !r ? "unknown reason" : !strcmp(r, "outofdata") ? "cut short or corrupt: outofdata"
                                                  : !strcmp(r, "unknown image type") ? "not an image format it reads"
                                                                                     : r;
        snprintf(hd->why, sizeof hd->why, "not a readable image (%s)", plain);
        return;
    }
    /* stb_image 2.27 reports a top-down BMP's height as negative (and then decodes |height|
     * rows): a 54-byte file claiming 10500 x -65534 took 13 s (fuzz/regress/folder/bmp-negative-height);
     * taken as long long, since a height of -2^31 has no int negation (fuzz/regress/folder/bmp-height-int-min) */
    long long w = x < 0 ? -(long long)x : x, h = y < 0 ? -(long long)y : y;
    if (w < 1 || h < 1) {
        snprintf(hd->why, sizeof hd->why, "not a readable image (size %lldx%lld)", w, h);
        return;
    }
    if ((double)w * (double)h > (double)st.st_size * MAX_PIXELS_PER_BYTE) {
        snprintf(hd->why, sizeof hd->why, "header claims %lldx%lld pixels, more than a %lld-byte file can hold", w, h,
                 (long long)st.st_size);
        return;
    }
    /* a side beyond 65535 is no photograph; decoding and resizing one takes seconds (a
     * fuzzer find: a 137-byte BMP of 4194308 x 2 pixels) */
    if (w > 65535 || h > 65535) {
        snprintf(hd->why, sizeof hd->why, "header claims %lldx%lld pixels: a side over 65535", w, h);
        return;
    }
    hd->w = (int)w;
    hd->h = (int)h;
    hd->comp = comp;
}

/* "FILE:LINE: PATH" for a CSV row, "PATH" for a folder's file. */
static void where(const lb__image *e, char *buf, size_t n)
{
    if (e->origin) snprintf(buf, n, "%s: %s", e->origin, e->path);
    else snprintf(buf, n, "%s", e->path);
}

/* A file that cannot be used: a warning, or under strict the error. */
static int bad_file(const lb__image *e, const char *why, int strict, lb_dataset *ds)
{
    char at[1400];
    where(e, at, sizeof at);
    if (strict) return lb_error(LB_EFORMAT, "%s: %s", at, why);
    return lb_notes_add(&ds->warnings, "%s: %s (%s skipped)", at, why, e->origin ? "row" : "file");
}

static int is_training(const lb__image *e) { return e->split == LB__SPLIT_ANY || e->split == LB__SPLIT_TRAIN; }

/* ---- the choices ---- */

/* The majority mode of the readable training images (a tie is RGB), announced. */
static int choose_channels(const lb__image_list *l, const header *hd, lb_dataset *ds)
{
    int gray = 0, colour = 0;
    for (int i = 0; i < l->n; i++)
        if (hd[i].comp && is_training(&l->v[i])) {
            gray += hd[i].comp <= 2;
            colour += hd[i].comp >= 3;
        }
    int c = gray > colour ? 1 : 3;
    int rc = lb_notes_add(&ds->info, "channels %d (%s): %d of the %d training images are %s; --channels sets it", c,
                          c == 1 ? "gray" : "RGB", c == 1 ? gray : colour, gray + colour, c == 1 ? "gray" : "colour");
    return rc == LB_OK ? c : -1;
}

typedef struct {
    int h, w, count, first;
} size_count;

static int cmp_size(const void *a, const void *b)
{
    const size_count *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* The most common size of the readable training images (a tie: the one listed first). */
static int choose_size(const lb__image_list *l, const header *hd, lb_dataset *ds, int *h, int *w)
{
    size_count *s = lb_malloc(sizeof *s * (size_t)(l->n + 1));
    if (!s) return lb_error(LB_ENOMEM, "out of memory choosing the image size of %d images", l->n);
    int n = 0;
    for (int i = 0; i < l->n; i++)
        if (hd[i].comp && is_training(&l->v[i])) s[n++] = (size_count){hd[i].h, hd[i].w, 1, i};
    qsort(s, (size_t)n, sizeof *s, cmp_size);
    int best = -1, best_count = 0, best_first = 0, distinct = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && s[j].h == s[i].h && s[j].w == s[i].w) j++;
        distinct++;
        if (j - i > best_count || (j - i == best_count && s[i].first < best_first)) {
            best = i;
            best_count = j - i;
            best_first = s[i].first;
        }
        i = j;
    }
    int rc = LB_OK;
    if (best < 0) { /* nothing readable: the decode loop says so, file by file */
        *h = *w = 1;
    } else {
        *h = s[best].h;
        *w = s[best].w;
        rc = distinct == 1 ? lb_notes_add(&ds->info, "image size %dx%d: every training image has it", *h, *w)
                           : lb_notes_add(&ds->info,
                                          "image size %dx%d: the most common of %d sizes among the training images "
                                          "(%d of %d); --size HxW sets it",
                                          *h, *w, distinct, best_count, n);
    }
    lb_free(s);
    return rc;
}

/* ---- decoding ---- */

/* Decodes one surveyed file into dst (planar [c, h, w]); *resized / *converted are set when
 * it was. Returns 0, or -1 with `why` filled. */
static int decode_one(const char *path, const header *hd, int c, int h, int w, uint8_t *dst, uint8_t *tmp,
                      int *resized, int *converted, char *why, size_t why_len)
{
    /* stb_image 2.27 converts the channels of a 16-bit PNM with its 8-bit converter and then
     * reads twice the buffer it allocated (a heap overread, found by fuzz/fuzz_folder.c), so
     * 16-bit files are decoded with their own channels and converted here. */
    int native = stbi_is_16_bit(path), x, y, comp;
    unsigned char *img = stbi_load(path, &x, &y, &comp, native ? 0 : c), *conv = NULL;
    if (!img || x != hd->w || y != hd->h) {
        const char *r = img ? "its size changed while it was read" : stbi_failure_reason();
        snprintf(why, why_len, "not a readable image (%s)", r ? r : "unknown reason");
        stbi_image_free(img);
        return -1;
    }
    *converted = (hd->comp <= 2) != (c == 1);
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
    *resized = x != w || y != h;
    if (*resized) {
        if (lb__resize_u8(src, x, y, tmp, w, h, c) != 0) {
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

/* All images of c x h x w must fit the memory libra is willing to hold as bytes. */
#define MAX_PIXEL_BYTES ((double)(1ULL << 32))

/* The dataset shell: room for every listed image, the class names and the source. */
static int alloc_dataset(const lb__image_list *l, int c, int h, int w, lb_dataset **out, uint8_t **tmp)
{
    double bytes = (double)l->n * c * h * w;
    if (bytes > MAX_PIXEL_BYTES)
        return lb_error(LB_EINVAL,
                        "%s: %d images of %dx%dx%d are %.1f GB as bytes, more than the 4.3 GB libra holds: give a "
                        "smaller --size",
                        l->source, l->n, c, h, w, bytes / 1e9);
    lb_dataset *d = *out = lb__dataset_new();
    if (!d) return LB_ENOMEM;
    d->c = c;
    d->h = h;
    d->w = w;
    d->pixels = lb_malloc((size_t)bytes > 0 ? (size_t)bytes : 1);
    d->labels = lb_malloc(sizeof(int) * (size_t)(l->n + 1));
    d->source = lb_strdup(l->source);
    d->class_names = lb__names(l->n_classes, (const char *const *)l->classes);
    if (d->class_names) d->n_classes = l->n_classes;
    d->paths = lb_calloc((size_t)l->n + 1, sizeof(char *));
    *tmp = lb_malloc((size_t)c * h * w);
    if (!d->pixels || !d->labels || !d->source || !d->class_names || !d->paths || !*tmp)
        return lb_error(LB_ENOMEM, "%s: out of memory for %d images of %dx%dx%d", l->source, l->n, c, h, w);
    int rc = lb_notes_add_all(&d->warnings, &l->warnings);
    if (rc == LB_OK) rc = lb_notes_add_all(&d->info, &l->info);
    return rc;
}

/* Every class must keep a readable image; the error says why the first of its files was not. */
static int check_every_class(const lb__image_list *l, const header *hd, const lb_dataset *ds, const int *entry_of)
{
    int *got = lb_calloc((size_t)l->n_classes + 1, sizeof(int));
    if (!got) return lb_error(LB_ENOMEM, "out of memory counting %d classes", l->n_classes);
    for (int i = 0; i < ds->n; i++) got[ds->labels[i]]++;
    int rc = LB_OK;
    for (int k = 0; rc == LB_OK && k < l->n_classes; k++) {
        if (got[k]) continue;
        int listed = 0, first = -1;
        for (int i = 0; i < l->n; i++)
            if (l->v[i].label == k) {
                listed++;
                if (first < 0 && entry_of[i] < 0) first = i;
            }
        if (first < 0)
            rc = lb_error(LB_EINVAL, "%s: class '%s' has no image", l->source, l->classes[k]);
        else
            rc = lb_error(LB_EINVAL, "%s: class '%s' has no readable image (%d file%s, none decoded; first: %s: %s)",
                          l->source, l->classes[k], listed, listed == 1 ? "" : "s", l->v[first].path,
                          hd[first].comp ? "it could not be decoded" : hd[first].why);
    }
    lb_free(got);
    return rc;
}

/* The decode loop: every file that read_header accepted, into ds. */
static int decode_all(const lb__image_list *l, const header *hd, int strict, lb_dataset *ds, uint8_t *tmp,
                      int *entry_of)
{
    size_t img_bytes = (size_t)ds->c * ds->h * ds->w;
    int resized = 0, converted = 0, rc = LB_OK;
    char why[256];
    for (int i = 0; rc == LB_OK && i < l->n; i++) {
        entry_of[i] = -1;
        int rs = 0, cv = 0;
        if (!hd[i].comp) {
            rc = bad_file(&l->v[i], hd[i].why, strict, ds);
        } else if (decode_one(l->v[i].path, &hd[i], ds->c, ds->h, ds->w, ds->pixels + img_bytes * (size_t)ds->n,
                              tmp, &rs, &cv, why, sizeof why) != 0) {
            rc = bad_file(&l->v[i], why, strict, ds);
        } else if (!(ds->paths[ds->n] = lb_strdup(l->v[i].path))) {
            rc = lb_error(LB_ENOMEM, "%s: out of memory", l->v[i].path);
        } else {
            entry_of[i] = ds->n;
            ds->labels[ds->n++] = l->v[i].label;
            resized += rs;
            converted += cv;
        }
    }
    if (rc == LB_OK && resized)
        rc = lb_notes_add(&ds->info, "resized %d of %d images to %dx%d (an area filter where they shrink)", resized,
                          ds->n, ds->h, ds->w);
    if (rc == LB_OK && converted)
        rc = lb_notes_add(&ds->info, "converted %d of %d images to %s", converted, ds->n, ds->c == 1 ? "gray" : "RGB");
    return rc;
}

int lb__images_decode(const lb__image_list *l, int channels, int h, int w, int strict, lb_dataset **out,
                      int **entry_of)
{
    *out = NULL;
    *entry_of = NULL;
    if (l->n == 0) return lb_error(LB_EINVAL, "%s: no image files", l->source);
    header *hd = lb_malloc(sizeof *hd * (size_t)l->n);
    int *map = lb_malloc(sizeof(int) * (size_t)l->n);
    lb_dataset *ds = lb__dataset_new();
    uint8_t *tmp = NULL;
    int rc = hd && map && ds ? LB_OK : lb_error(LB_ENOMEM, "%s: out of memory for %d images", l->source, l->n);
    for (int i = 0; rc == LB_OK && i < l->n; i++) read_header(l->v[i].path, &hd[i]);
    /* the choices are announced on a scratch dataset, then moved to the real one */
    if (rc == LB_OK && channels == 0 && (channels = choose_channels(l, hd, ds)) < 0) rc = LB_ENOMEM;
    if (rc == LB_OK && h == 0) rc = choose_size(l, hd, ds, &h, &w);
    lb_dataset *made = NULL;
    if (rc == LB_OK) rc = alloc_dataset(l, channels, h, w, &made, &tmp);
    if (rc == LB_OK) rc = lb_notes_add_all(&made->info, &ds->info);
    if (rc == LB_OK) rc = decode_all(l, hd, strict, made, tmp, map);
    if (rc == LB_OK) rc = check_every_class(l, hd, made, map);
    if (rc == LB_OK && made->n < l->n) { /* give back the slots of skipped files */
        uint8_t *p = lb_realloc(made->pixels, (size_t)channels * h * w * (size_t)(made->n ? made->n : 1));
        if (p) made->pixels = p;
    }
    lb_free(hd);
    lb_free(tmp);
    lb_dataset_free(ds);
    if (rc != LB_OK) {
        lb_dataset_free(made);
        lb_free(map);
        return rc;
    }
    *out = made;
    *entry_of = map;
    return LB_OK;
}

/* ---- class order ---- */

/* The index of `name` among n names, or -1. */
static int find_name(char *const *names, int n, const char *name, size_t len)
{
    for (int k = 0; k < n; k++)
        if (strlen(names[k]) == len && strncmp(names[k], name, len) == 0) return k;
    return -1;
}

/* "A, B, C" of the dataset's classes, for messages. */
static void name_list(const lb_dataset *ds, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < ds->n_classes && at + 4 < n; k++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s", k ? ", " : "", ds->class_names[k]);
}

/* new_of[old class] from the list "B,A,C"; every class exactly once. */
static int parse_order(const lb_dataset *ds, const char *order, int *new_of)
{
    int C = ds->n_classes, k = 0;
    char known[600];
    for (int c = 0; c < C; c++) new_of[c] = -1;
    for (const char *p = order;; k++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int c = find_name(ds->class_names, C, p, len);
        name_list(ds, known, sizeof known);
        if (c < 0)
            return lb_error(LB_EINVAL, "classes '%s': '%.*s' is not a class of %s (its classes: %s)", order, (int)len,
                            p, ds->source ? ds->source : "the data", known);
        if (new_of[c] >= 0) return lb_error(LB_EINVAL, "classes '%s': '%.*s' is given twice", order, (int)len, p);
        new_of[c] = k;
        if (!end) break;
        p = end + 1;
    }
    for (int c = 0; c < C; c++)
        if (new_of[c] < 0)
            return lb_error(LB_EINVAL, "classes '%s': class '%s' is missing (give every class once: %s)", order,
                            ds->class_names[c], known);
    return LB_OK;
}

int lb__order_classes(lb_dataset *ds, const char *order)
{
    if (!order || !*order) return LB_OK;
    int C = ds->n_classes;
    int *new_of = lb_malloc(sizeof(int) * (size_t)C);
    char **names = lb_calloc((size_t)C, sizeof(char *));
    int rc = new_of && names ? parse_order(ds, order, new_of) : lb_error(LB_ENOMEM, "out of memory ordering classes");
    if (rc == LB_OK) {
        for (int c = 0; c < C; c++) names[new_of[c]] = ds->class_names[c];
        for (int i = 0; i < ds->n; i++) ds->labels[i] = new_of[ds->labels[i]];
        memcpy(ds->class_names, names, sizeof(char *) * (size_t)C);
    }
    lb_free(new_of);
    lb_free(names);
    return rc;
}
