/* Datasets in memory: shared helpers, IDX datasets, Fashion-MNIST, conversion, statistics. */
#include "data/internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image_resize.h>

const char *const lb_fmnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* ---- helpers shared by src/data ---- */

lb_dataset *lb__dataset_new(void)
{
    lb_dataset *ds = lb_calloc(1, sizeof *ds);
    if (!ds) lb_error(LB_ENOMEM, "out of memory for a dataset");
    return ds;
}

char **lb__names(int n, const char *const *names)
{
    char **out = lb_calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        out[i] = names ? lb_strdup(names[i]) : lb_strfmt("%d", i);
        if (!out[i]) {
            lb__free_names(out, i);
            return NULL;
        }
    }
    return out;
}

void lb__free_names(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) lb_free(names[i]);
    lb_free(names);
}

int lb__cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* ---- datasets ---- */

void lb_dataset_free(lb_dataset *ds)
{
    if (!ds) return;
    lb_free(ds->pixels);
    lb_free(ds->labels);
    lb__free_names(ds->class_names, ds->n_classes);
    lb_free(ds->source);
    if (ds->paths)
        for (int i = 0; i < ds->n; i++) lb_free(ds->paths[i]);
    lb_free(ds->paths);
    lb_notes_free(&ds->warnings);
    lb_notes_free(&ds->info);
    lb_free(ds);
}

void lb_dataset_class_counts(const lb_dataset *ds, int *counts)
{
    for (int c = 0; c < ds->n_classes; c++) counts[c] = 0;
    for (int i = 0; i < ds->n; i++) counts[ds->labels[i]]++;
}

/* The image shape c x h x w of an IDX image file ([n,w], [n,h,w] or [n,c,h,w]), refusing
 * shapes libra cannot hold. */
static int idx_image_shape(const lb_idx *img, const char *images_path, int *c, int *h, int *w)
{
    *c = *h = *w = 1;
    if (img->ndim == 2) {
        *w = (int)img->dims[1];
    } else if (img->ndim == 3) {
        *h = (int)img->dims[1];
        *w = (int)img->dims[2];
    } else if (img->ndim == 4) {
        *c = (int)img->dims[1];
        *h = (int)img->dims[2];
        *w = (int)img->dims[3];
    } else {
        return lb_error(LB_EFORMAT, "%s: images need 2 to 4 IDX dims ([n,w], [n,h,w] or [n,c,h,w]), the file has %d",
                        images_path, img->ndim);
    }
    if (img->dims[0] > INT_MAX || img->dims[1] > 65535 || (img->ndim > 2 && img->dims[2] > 65535) ||
        (img->ndim > 3 && img->dims[3] > 65535))
        return lb_error(LB_EFORMAT, "%s: IDX dims too large for an image dataset", images_path);
    if (img->dims[0] == 0 || *c == 0 || *h == 0 || *w == 0)
        return lb_error(LB_EFORMAT, "%s: holds no images (a dimension is 0)", images_path);
    if (*c != 1 && *c != 3) return lb_error(LB_EFORMAT, "%s: %d channels; images must have 1 or 3", images_path, *c);
    return LB_OK;
}

/* Checks the IDX labels: one per image, each below n_classes if that is given; *maxl is
 * the largest. */
static int check_idx_labels(const lb_idx *lab, const lb_idx *img, const char *labels_path, const char *images_path,
                            int n_classes, int *maxl)
{
    if (lab->ndim != 1)
        return lb_error(LB_EFORMAT, "%s: labels need 1 IDX dim, the file has %d", labels_path, lab->ndim);
    if (lab->dims[0] != img->dims[0])
        return lb_error(LB_EFORMAT, "%s holds %u images but %s holds %u labels", images_path,
                        (unsigned)img->dims[0], labels_path, (unsigned)lab->dims[0]);
    int n = (int)img->dims[0];
    *maxl = 0;
    for (int i = 0; i < n; i++) {
        if (n_classes > 0 && lab->data[i] >= n_classes)
            return lb_error(LB_EFORMAT, "%s: label %d of item %d is out of range [0, %d)", labels_path,
                            lab->data[i], i, n_classes);
        if (lab->data[i] > *maxl) *maxl = lab->data[i];
    }
    return LB_OK;
}

static int load_idx(const char *images_path, const char *labels_path, int n_classes, const char *const *class_names,
                    lb_dataset **out)
{
    *out = NULL;
    lb_idx img, lab;
    int rc = lb_idx_read(&img, images_path);
    if (rc) return rc;
    rc = lb_idx_read(&lab, labels_path);
    if (rc) {
        lb_idx_free(&img);
        return rc;
    }
    lb_dataset *ds = NULL;
    int c = 1, h = 1, w = 1, maxl = 0;
    rc = idx_image_shape(&img, images_path, &c, &h, &w);
    if (rc == LB_OK) rc = check_idx_labels(&lab, &img, labels_path, images_path, n_classes, &maxl);
    if (rc) goto fail;
    int n = (int)img.dims[0];
    ds = lb__dataset_new();
    if (!ds) {
        rc = LB_ENOMEM;
        goto fail;
    }
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->n_classes = n_classes > 0 ? n_classes : maxl + 1;
    ds->labels = lb_malloc(sizeof(int) * (size_t)n);
    ds->class_names = lb__names(ds->n_classes, class_names);
    ds->source = lb_strfmt("idx:%s,%s", images_path, labels_path);
    if (!ds->labels || !ds->class_names || !ds->source) {
        if (!ds->class_names) ds->n_classes = 0;
        rc = lb_error(LB_ENOMEM, "%s: out of memory", images_path);
        goto fail;
    }
    for (int i = 0; i < n; i++) ds->labels[i] = lab.data[i];
    ds->pixels = img.data;  /* the IDX buffer is exactly [n, c, h, w]: keep it, no copy */
    img.data = NULL;
    lb_idx_free(&img);
    lb_idx_free(&lab);
    *out = ds;
    return LB_OK;
fail:
    lb_dataset_free(ds);
    lb_idx_free(&img);
    lb_idx_free(&lab);
    return rc;
}

const char *lb_fmnist_dir(const char *dir)
{
    if (dir && *dir) return dir;
    const char *env = getenv("LIBRA_FMNIST_DIR");
    if (env && *env) return env;
    return LB_FMNIST_DEFAULT_DIR;
}

/* DIR/NAME.gz, else DIR/NAME if that exists; NULL (with the message) when neither does. */
static char *fmnist_file(const char *dir, const char *name)
{
    char *gz = lb_strfmt("%s/%s.gz", dir, name);
    if (!gz) return NULL;
    if (access(gz, R_OK) == 0) return gz;
    char *raw = lb_strfmt("%s/%s", dir, name);
    if (raw && access(raw, R_OK) == 0) {
        lb_free(gz);
        return raw;
    }
    lb_free(raw);
    lb_error(LB_EIO,
             "Fashion-MNIST file not found: %s (install the Debian package %s, or point "
             "LIBRA_FMNIST_DIR or --data fmnist:DIR at a folder holding the four IDX files)",
             gz, LB_FMNIST_PACKAGE);
    lb_free(gz);
    return NULL;
}

lb_dataset *lb_dataset_new_idx(const char *images_path, const char *labels_path, int n_classes,
                               const char *const *class_names)
{
    lb_dataset *ds = NULL;
    return load_idx(images_path, labels_path, n_classes, class_names, &ds) == LB_OK ? ds : NULL;
}

static int load_fmnist(const char *dir, int train, lb_dataset **out)
{
    *out = NULL;
    dir = lb_fmnist_dir(dir);
    const char *prefix = train ? "train" : "t10k";
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    char *img = fmnist_file(dir, name);
    if (!img) return LB_EIO;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    char *lab = fmnist_file(dir, name);
    if (!lab) {
        lb_free(img);
        return LB_EIO;
    }
    int rc = load_idx(img, lab, 10, lb_fmnist_classes, out);
    if (rc == LB_OK) {
        lb_free((*out)->source);
        (*out)->source = lb_strfmt("fmnist:%s", dir);
    }
    lb_free(img);
    lb_free(lab);
    return rc;
}

lb_dataset *lb_dataset_new_fmnist(const char *dir, int train)
{
    lb_dataset *ds = NULL;
    return load_fmnist(dir, train, &ds) == LB_OK ? ds : NULL;
}

int lb_dataset_convert(lb_dataset *ds, int c, int h, int w)
{
    if (c != 1 && c != 3) return lb_error(LB_EINVAL, "channels %d: must be 1 or 3", c);
    if (h < 1 || w < 1 || h > 65535 || w > 65535)
        return lb_error(LB_EINVAL, "image size %dx%d: each side must be 1..65535", h, w);
    if (c == ds->c && h == ds->h && w == ds->w) return LB_OK;
    size_t in_hw = (size_t)ds->h * ds->w, out_hw = (size_t)h * w;
    uint8_t *pix = lb_malloc((size_t)ds->n * c * out_hw);
    uint8_t *hwc = lb_malloc(in_hw * ds->c);      /* interleaved input, for stb resize */
    uint8_t *rs = lb_malloc(out_hw * ds->c);      /* resized, interleaved */
    if (!pix || !hwc || !rs) {
        lb_free(pix);
        lb_free(hwc);
        lb_free(rs);
        return lb_error(LB_ENOMEM, "out of memory converting %d images to %dx%dx%d", ds->n, c, h, w);
    }
    for (int i = 0; i < ds->n; i++) {
        const uint8_t *src = ds->pixels + (size_t)i * ds->c * in_hw;
        for (int ch = 0; ch < ds->c; ch++)
            for (size_t p = 0; p < in_hw; p++) hwc[p * ds->c + ch] = src[ch * in_hw + p];
        const uint8_t *img = hwc;
        if (h != ds->h || w != ds->w) {
            if (!stbir_resize_uint8(hwc, ds->w, ds->h, 0, rs, w, h, 0, ds->c)) {
                lb_free(pix);
                lb_free(hwc);
                lb_free(rs);
                return lb_error(LB_ENOMEM, "resizing image %d from %dx%d to %dx%d failed", i, ds->h,
                                ds->w, h, w);
            }
            img = rs;
        }
        uint8_t *dst = pix + (size_t)i * c * out_hw;
        for (size_t p = 0; p < out_hw; p++) {
            const uint8_t *px = img + p * ds->c;
            if (c == ds->c) {
                for (int ch = 0; ch < c; ch++) dst[ch * out_hw + p] = px[ch];
            } else if (c == 3) { /* gray -> RGB: replicate */
                dst[p] = dst[out_hw + p] = dst[2 * out_hw + p] = px[0];
            } else { /* RGB -> gray: the same integer luma as stb_image uses */
                dst[p] = (uint8_t)((px[0] * 77 + px[1] * 150 + px[2] * 29) >> 8);
            }
        }
    }
    lb_free(hwc);
    lb_free(rs);
    lb_free(ds->pixels);
    ds->pixels = pix;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    return LB_OK;
}

void lb_dataset_stats(const lb_dataset *ds, const int *idx, int n, float *mean, float *std)
{
    size_t hw = (size_t)ds->h * ds->w;
    if (!idx) n = ds->n;
    for (int ch = 0; ch < ds->c; ch++) {
        /* Exact integer sums: 255^2 * 2^40 pixels still fit in 64 bits. */
        uint64_t s = 0, ss = 0;
        for (int k = 0; k < n; k++) {
            int i = idx ? idx[k] : k;
            const uint8_t *p = ds->pixels + ((size_t)i * ds->c + ch) * hw;
            uint32_t s1 = 0, s2 = 0; /* 32-bit partial sums, flushed every 1024 pixels */
            for (size_t q = 0; q < hw; q++) {
                s1 += p[q];
                s2 += (uint32_t)p[q] * p[q];
                if ((q & 1023) == 1023) {
                    s += s1;
                    ss += s2;
                    s1 = s2 = 0;
                }
            }
            s += s1;
            ss += s2;
        }
        double cnt = (double)n * (double)hw;
        if (cnt <= 0) {
            mean[ch] = 0.0f;
            std[ch] = 1.0f;
            continue;
        }
        double m = (double)s / cnt / 255.0;
        double var = (double)ss / cnt / (255.0 * 255.0) - m * m;
        double sd = var > 0 ? sqrt(var) : 0.0;
        mean[ch] = (float)m;
        std[ch] = sd > 1e-12 ? (float)sd : 1.0f;
    }
}
