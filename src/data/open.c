/* Command-line specs, options, presets, and lb_data_new: strings in, dataset + split out. */
#include "data/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- sources ---- */

void lb_source_free(lb_source *s)
{
    if (!s) return;
    for (int i = 0; i < 4; i++) lb_free(s->path[i]);
    memset(s, 0, sizeof *s);
}

#define SOURCE_FORMS "fmnist, fmnist:DIR, folder:PATH or idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS"

/* The positional paths of a source spec into out->path (exactly n of them). */
static int source_paths(const lb_spec *sp, int n, lb_source *out, const char *usage)
{
    if (lb_spec_count(sp) > 0 || lb_spec_n_args(sp) != n)
        return lb_error(LB_EINVAL, "data source '%s': %s", lb_spec_text(sp), usage);
    for (int k = 0; k < n; k++)
        if (!(out->path[k] = lb_strdup(lb_spec_arg(sp, k)))) return lb_error(LB_ENOMEM, "data source '%s': out of memory", lb_spec_text(sp));
    return LB_OK;
}

int lb_source_parse(lb_source *out, const char *spec)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return lb_error(LB_EINVAL, "empty data source (expected " SOURCE_FORMS ")");
    lb_spec *sp = lb_spec_new(spec);
    if (!sp) {
        lb_error_prefix("data source");
        return lb_last_status();
    }
    const char *name = lb_spec_name(sp);
    int rc;
    if (strcmp(name, "fmnist") == 0) {
        out->kind = LB_SOURCE_FMNIST;
        rc = lb_spec_n_args(sp) == 0 && lb_spec_count(sp) == 0 ? LB_OK : source_paths(sp, 1, out, "fmnist takes one folder");
    } else if (strcmp(name, "folder") == 0) {
        out->kind = LB_SOURCE_FOLDER;
        rc = source_paths(sp, 1, out, "folder needs one path, as in folder:PATH");
    } else if (strcmp(name, "idx") == 0) {
        out->kind = LB_SOURCE_IDX;
        rc = source_paths(sp, 4, out, "idx needs four comma-separated files TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS");
    } else {
        rc = lb_error(LB_EINVAL, "data source '%s': unknown (expected " SOURCE_FORMS ")", spec);
    }
    lb_spec_free(sp);
    if (rc != LB_OK) lb_source_free(out);
    return rc;
}

int lb_parse_size(const char *s, int *h, int *w)
{
    if (!s || !*s) return lb_error(LB_EINVAL, "size '': expected HxW, e.g. 28x28");
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *x = strchr(buf, 'x');
    if (!x) x = strchr(buf, 'X');
    int a, b;
    if (x) {
        *x = '\0';
        if (lb_parse_int(buf, &a) || lb_parse_int(x + 1, &b))
            return lb_error(LB_EINVAL, "size '%s': expected HxW, e.g. 28x28", s);
    } else {
        if (lb_parse_int(buf, &a)) return lb_error(LB_EINVAL, "size '%s': expected HxW, e.g. 28x28", s);
        b = a;
    }
    if (a < 1 || b < 1 || a > 4096 || b > 4096)
        return lb_error(LB_EINVAL, "size '%s': each side must be 1..4096", s);
    *h = a;
    *w = b;
    return LB_OK;
}

/* ---- options ---- */

void lb_data_opts_init(lb_data_opts *o)
{
    memset(o, 0, sizeof *o);
    o->test_frac = 0.2;
    o->seed = 1;
}

void lb_data_opts_free(lb_data_opts *o)
{
    lb_free(o->data);
    lb_free(o->imbalance);
    lb_free(o->order);
    lb_free(o->name);
    lb_free(o->description);
    memset(o, 0, sizeof *o);
}

static int set_str(char **slot, const char *v)
{
    char *d = lb_strdup(v);
    if (!d) return lb_error(LB_ENOMEM, "data option '%s': out of memory", v);
    lb_free(*slot);
    *slot = d;
    return LB_OK;
}

int lb_data_opts_set(lb_data_opts *o, const char *key, const char *value)
{
    if (!key || !value) return lb_error(LB_EINVAL, "data option: missing key or value");
    double d;
    int i;
    if (strcmp(key, "data") == 0 || strcmp(key, "source") == 0) {
        lb_source s;
        int rc = lb_source_parse(&s, value);
        lb_source_free(&s);
        return rc ? rc : set_str(&o->data, value);
    }
    if (strcmp(key, "imbalance") == 0 || strcmp(key, "profile") == 0) {
        int rc = lb_profile_check(value);
        return rc ? rc : set_str(&o->imbalance, value);
    }
    if (strcmp(key, "order") == 0) return set_str(&o->order, value);
    if (strcmp(key, "name") == 0) return set_str(&o->name, value);
    if (strcmp(key, "description") == 0) return set_str(&o->description, value);
    if (strcmp(key, "val") == 0) {
        if (lb_parse_double(value, &d) || !(d >= 0.0 && d < 1.0))
            return lb_error(LB_EINVAL, "val = '%s': the validation fraction must be a number in [0, 1)", value);
        o->val_frac = d;
        return LB_OK;
    }
    if (strcmp(key, "test") == 0) {
        if (lb_parse_double(value, &d) || !(d > 0.0 && d < 1.0))
            return lb_error(LB_EINVAL, "test = '%s': the test fraction must be a number in (0, 1)", value);
        o->test_frac = d;
        return LB_OK;
    }
    if (strcmp(key, "channels") == 0) {
        if (lb_parse_int(value, &i) || (i != 0 && i != 1 && i != 3))
            return lb_error(LB_EINVAL, "channels = '%s': must be 1 (gray) or 3 (RGB)", value);
        o->channels = i;
        return LB_OK;
    }
    if (strcmp(key, "size") == 0) return lb_parse_size(value, &o->height, &o->width);
    if (strcmp(key, "strict") == 0) {
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes")) o->strict = 1;
        else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no")) o->strict = 0;
        else return lb_error(LB_EINVAL, "strict = '%s': must be 0/1, true/false or yes/no", value);
        return LB_OK;
    }
    if (strcmp(key, "seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (!*value || *end || errno || value[0] == '-')
            return lb_error(LB_EINVAL, "seed = '%s': must be a non-negative integer", value);
        o->seed = (uint64_t)v;
        return LB_OK;
    }
    return lb_error(LB_EINVAL,
                    "unknown data option '%s' (known: data, imbalance, order, val, test, channels, size, "
                    "strict, seed, name, description)", key);
}

/* ---- presets ---- */

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Rewrites the relative paths of a source spec as relative to `dir`. */
static char *rebase_source(const char *spec, const char *dir)
{
    lb_source s;
    if (lb_source_parse(&s, spec) != LB_OK) return NULL;
    for (int k = 0; k < 4; k++) {
        if (!s.path[k] || s.path[k][0] == '/') continue;
        char *p = lb_strfmt("%s/%s", dir, s.path[k]);
        if (!p) {
            lb_source_free(&s);
            return NULL;
        }
        lb_free(s.path[k]);
        s.path[k] = p;
    }
    char *out = NULL;
    if (s.kind == LB_SOURCE_FMNIST) out = s.path[0] ? lb_strfmt("fmnist:%s", s.path[0]) : lb_strdup("fmnist");
    else if (s.kind == LB_SOURCE_FOLDER) out = lb_strfmt("folder:%s", s.path[0]);
    else out = lb_strfmt("idx:%s,%s,%s,%s", s.path[0], s.path[1], s.path[2], s.path[3]);
    lb_source_free(&s);
    return out;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* The file of preset `name` into *path: name itself when it looks like a path, else the
 * first of SEARCH_DIR/datasets/NAME.ini and datasets/NAME.ini that exists. */
static int find_preset(const char *name, const char *search_dir, char **path)
{
    *path = NULL;
    int looks_like_path = strchr(name, '/') != NULL ||
                          (strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".ini") == 0);
    if (looks_like_path) {
        if (!file_exists(name)) return lb_error(LB_EIO, "preset '%s': file not found", name);
        *path = lb_strdup(name);
    } else {
        char *tried1 = NULL, *tried2 = NULL;
        int rc = LB_OK;
        if (search_dir) tried1 = lb_strfmt("%s/datasets/%s.ini", search_dir, name);
        tried2 = lb_strfmt("datasets/%s.ini", name);
        if (tried1 && file_exists(tried1)) *path = lb_strdup(tried1);
        else if (tried2 && file_exists(tried2)) *path = lb_strdup(tried2);
        else
            rc = lb_error(LB_EIO, "preset '%s' not found (looked for %s%s%s)", name, tried1 ? tried1 : "",
                          tried1 ? " and " : "", tried2 ? tried2 : "");
        lb_free(tried1);
        lb_free(tried2);
        if (rc) return rc;
    }
    if (!*path) return lb_error(LB_ENOMEM, "preset '%s': out of memory", name);
    return LB_OK;
}

/* Applies one line of a preset ("key = value", # comments, blank lines) to o; the source
 * paths are taken relative to the preset's folder dir. Sets *have_name on a name key. */
static int apply_preset_line(lb_data_opts *o, char *line, const char *path, int line_no, const char *dir,
                             int *have_name)
{
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = trim(line);
    if (!*s) return LB_OK;
    char *eq = strchr(s, '=');
    if (!eq) return lb_error(LB_EINVAL, "%s:%d: expected 'key = value', got '%s'", path, line_no, s);
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    char *rebased = NULL;
    if (strcmp(key, "data") == 0 || strcmp(key, "source") == 0) {
        rebased = rebase_source(val, dir);
        if (rebased) val = rebased;
    }
    int rc = lb_data_opts_set(o, key, val);
    lb_free(rebased);
    if (rc) {
        if (strncmp(lb_last_error(), "unknown data option", 19) == 0)
            lb_error(LB_EINVAL, "%s:%d: unknown key '%s' (known: data, imbalance, order, val, test, channels, "
                                "size, strict, seed, name, description)", path, line_no, key);
        else
            lb_error_prefix("%s:%d", path, line_no);
    }
    if (strcmp(key, "name") == 0) *have_name = 1;
    return rc;
}

/* Applies every line of the open preset file f (at path, in folder dir) to o. */
static int read_preset(lb_data_opts *o, FILE *f, const char *path, const char *dir, int *have_name)
{
    int rc = LB_OK, line_no = 0;
    char line[1024];
    while (rc == LB_OK && fgets(line, sizeof line, f)) {
        line_no++;
        if (!strchr(line, '\n') && !feof(f))
            return lb_error(LB_EINVAL, "%s:%d: line longer than %d characters", path, line_no, (int)sizeof line - 2);
        rc = apply_preset_line(o, line, path, line_no, dir, have_name);
    }
    if (rc == LB_OK && ferror(f)) rc = lb_error(LB_EIO, "%s: read error", path);
    return rc;
}

/* Names the preset after its file, without .ini (left unnamed when out of memory). */
static void default_preset_name(lb_data_opts *o, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *nm = lb_strdup(base);
    if (nm) {
        size_t L = strlen(nm);
        if (L > 4 && strcmp(nm + L - 4, ".ini") == 0) nm[L - 4] = '\0';
        lb_free(o->name);
        o->name = nm;
    }
}

int lb_data_preset_load(lb_data_opts *o, const char *name, const char *search_dir)
{
    if (!name || !*name) return lb_error(LB_EINVAL, "empty preset name");
    char *path;
    int rc = find_preset(name, search_dir, &path);
    if (rc) return rc;
    FILE *f = fopen(path, "r");
    if (!f) {
        rc = lb_error(LB_EIO, "preset %s: cannot open (%s)", path, strerror(errno));
        lb_free(path);
        return rc;
    }
    /* The preset's folder, for its relative source paths. */
    char *dir = lb_strdup(path);
    if (!dir) {
        fclose(f);
        rc = lb_error(LB_ENOMEM, "preset %s: out of memory", path);
        lb_free(path);
        return rc;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");

    int have_name = 0;
    rc = read_preset(o, f, path, dir, &have_name);
    fclose(f);
    /* The preset's name defaults to its file name without .ini. */
    if (rc == LB_OK && !have_name) default_preset_name(o, path);
    lb_free(dir);
    lb_free(path);
    return rc;
}

/* ---- one call ---- */

void lb_data_free(lb_data *d)
{
    if (!d) return;
    if (d->test != d->train) lb_dataset_free(d->test);
    lb_dataset_free(d->train);
    lb_split_free(&d->split);
    lb_notes_free(&d->warnings);
    lb_free(d);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sets *ds from a constructor's result: LB_OK, or the stored status of its failure. */
static int got(lb_dataset *made, lb_dataset **ds)
{
    *ds = made;
    return made ? LB_OK : lb_last_status();
}

/* Fashion-MNIST or four IDX files: a training and a test dataset, converted if asked. */
static int open_idx_source(lb_data *d, const lb_source *src, const lb_data_opts *o)
{
    int rc;
    if (src->kind == LB_SOURCE_FMNIST) {
        rc = got(lb_dataset_new_fmnist(src->path[0], 1), &d->train);
        if (!rc) rc = got(lb_dataset_new_fmnist(src->path[0], 0), &d->test);
    } else {
        rc = got(lb_dataset_new_idx(src->path[0], src->path[1], 0, NULL), &d->train);
        if (!rc) rc = got(lb_dataset_new_idx(src->path[2], src->path[3], d->train->n_classes, NULL), &d->test);
        if (!rc && (d->test->c != d->train->c || d->test->h != d->train->h || d->test->w != d->train->w))
            rc = lb_error(LB_EFORMAT, "%s holds %dx%dx%d images but %s holds %dx%dx%d", src->path[0], d->train->c,
                          d->train->h, d->train->w, src->path[2], d->test->c, d->test->h, d->test->w);
    }
    if (!rc && (o->channels || o->height)) {
        int c = o->channels ? o->channels : d->train->c;
        int h = o->height ? o->height : d->train->h, w = o->height ? o->width : d->train->w;
        rc = lb_dataset_convert(d->train, c, h, w);
        if (!rc) rc = lb_dataset_convert(d->test, c, h, w);
    }
    return rc;
}

/* One image tree: a seeded, stratified test fraction of it (*pool: the rest). */
static int split_off_test(lb_data *d, const lb_data_opts *o, int **pool, int *n_pool, int **test_idx, int *n_test)
{
    int n = d->train->n;
    int *all = lb_malloc(sizeof(int) * (size_t)n);
    *pool = lb_malloc(sizeof(int) * (size_t)n);
    *test_idx = lb_malloc(sizeof(int) * (size_t)n);
    int rc = all && *pool && *test_idx ? LB_OK : lb_error(LB_ENOMEM, "out of memory splitting %d images into train and test", n);
    if (rc == LB_OK) {
        for (int i = 0; i < n; i++) all[i] = i;
        lb_rng r;
        lb_rng_derive(&r, o->seed, LB_STREAM_TEST);
        rc = lb_stratified_split(all, d->train->labels, n, d->train->n_classes, o->test_frac, &r, *pool, n_pool,
                                 *test_idx, n_test);
    }
    lb_free(all);
    return rc;
}

/* An image folder: ROOT/train/<class> + ROOT/test/<class> (the test tree must have the same
 * classes and is read at the training tree's size), or one tree split here. */
static int open_folder_source(lb_data *d, const lb_source *src, const lb_data_opts *o, int **pool, int *n_pool,
                              int **test_idx, int *n_test)
{
    const char *root = src->path[0];
    char *tr = lb_strfmt("%s/train", root), *te = lb_strfmt("%s/test", root);
    int rc = tr && te ? LB_OK : lb_error(LB_ENOMEM, "%s: out of memory", root);
    if (rc == LB_OK && is_dir(tr) && is_dir(te)) {
        rc = got(lb_dataset_new_folder(tr, o->channels, o->height, o->width, o->strict, NULL), &d->train);
        if (!rc)
            rc = got(lb_dataset_new_folder(te, d->train->c, d->train->h, d->train->w, o->strict, d->train), &d->test);
    } else if (rc == LB_OK) {
        rc = got(lb_dataset_new_folder(root, o->channels, o->height, o->width, o->strict, NULL), &d->train);
        if (!rc) {
            d->test = d->train;
            rc = split_off_test(d, o, pool, n_pool, test_idx, n_test);
        }
    }
    lb_free(tr);
    lb_free(te);
    return rc;
}

/* Every class must keep at least one training image. */
static int check_classes(const lb_data *d)
{
    for (int c = 0; c < d->split.n_classes; c++)
        if (d->split.train_counts[c] == 0)
            return lb_error(LB_EINVAL, "%s: class '%s' has no training image after the split", d->train->source,
                            d->split.class_names[c]);
    return LB_OK;
}

/* The classes a split leaves without test or validation images, then the skipped files. */
static int collect_warnings(lb_data *d)
{
    const lb_split *sp = &d->split;
    int C = sp->n_classes, no_test = 0, no_val = 0, rc = LB_OK;
    for (int c = 0; c < C; c++) {
        no_test += sp->test_counts[c] == 0;
        no_val += sp->n_val > 0 && sp->val_counts[c] == 0;
    }
    for (int c = 0; rc == LB_OK && c < C; c++) {
        if (sp->test_counts[c] == 0)
            rc = lb_notes_add(&d->warnings,
                              "class '%s' has no test image: balanced accuracy, macro-F1, G-mean and the group and "
                              "minority recalls are over the %d classes that have test images",
                              sp->class_names[c], C - no_test);
        if (rc == LB_OK && sp->n_val > 0 && sp->val_counts[c] == 0)
            rc = lb_notes_add(&d->warnings,
                              "class '%s' has no validation image: validation balanced accuracy (checkpoint, grid "
                              "and post-hoc choices) is over the other %d classes",
                              sp->class_names[c], C - no_val);
    }
    if (rc == LB_OK) rc = lb_notes_add_all(&d->warnings, &d->train->warnings);
    if (rc == LB_OK && d->test != d->train) rc = lb_notes_add_all(&d->warnings, &d->test->warnings);
    d->n_skipped = d->train->warnings.n + (d->test != d->train ? d->test->warnings.n : 0);
    return rc;
}

lb_data *lb_data_new(const lb_data_opts *o)
{
    lb_source src;
    if (lb_source_parse(&src, o->data ? o->data : "fmnist") != LB_OK) return NULL;
    lb_data *d = lb_calloc(1, sizeof *d);
    int *pool = NULL, *test_idx = NULL, n_pool = 0, n_test = 0;
    int rc = d ? LB_OK : lb_error(LB_ENOMEM, "out of memory for the data of '%s'", o->data ? o->data : "fmnist");
    if (rc == LB_OK) {
        d->seed = o->seed;
        rc = src.kind == LB_SOURCE_FOLDER ? open_folder_source(d, &src, o, &pool, &n_pool, &test_idx, &n_test)
                                          : open_idx_source(d, &src, o);
    }
    if (!rc)
        rc = lb_split_init(&d->split, d->train, pool, n_pool, d->test, test_idx, n_test, o->imbalance, o->order,
                           o->val_frac, o->seed);
    if (!rc) rc = check_classes(d);
    if (!rc) rc = collect_warnings(d);
    if (!rc) lb_dataset_stats(d->train, d->split.train_idx, d->split.n_train, d->mean, d->std);
    lb_free(pool);
    lb_free(test_idx);
    lb_source_free(&src);
    if (rc) {
        lb_data_free(d);
        return NULL;
    }
    return d;
}

/* The hash of one dataset: its shape, class names, labels and pixels. */
static uint64_t dataset_hash(const lb_dataset *ds, uint64_t h)
{
    int dims[5] = {ds->n, ds->c, ds->h, ds->w, ds->n_classes};
    h = lb_hash64(dims, sizeof dims, h);
    for (int c = 0; c < ds->n_classes; c++) h = lb_hash64(ds->class_names[c], strlen(ds->class_names[c]) + 1, h);
    h = lb_hash64(ds->labels, sizeof(int) * (size_t)ds->n, h);
    return lb_hash64(ds->pixels, (size_t)ds->n * ds->c * ds->h * ds->w, h);
}

uint64_t lb_data_fingerprint(const lb_data *d)
{
    uint64_t h = dataset_hash(d->train, LB_HASH_INIT);
    if (d->test != d->train) h = dataset_hash(d->test, h);
    const lb_split *sp = &d->split;
    h = lb_hash64(sp->train_idx, sizeof(int) * (size_t)sp->n_train, h);
    h = lb_hash64(sp->val_idx, sizeof(int) * (size_t)sp->n_val, h);
    return lb_hash64(sp->test_idx, sizeof(int) * (size_t)sp->n_test, h);
}
