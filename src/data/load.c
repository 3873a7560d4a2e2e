/* lb_data_new: a source into datasets, a split and its normalisation, with what the user
 * must be told (warnings) and should see (info). */
#include "data/internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void lb_data_free(lb_data *d)
{
    if (!d) return;
    if (d->test != d->train) lb_dataset_free(d->test);
    lb_dataset_free(d->train);
    lb_split_free(&d->split);
    lb_notes_free(&d->warnings);
    lb_notes_free(&d->info);
    lb__dense_data_free(d->dense);
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

/* The index lists a split is made from, owned here. */
typedef struct {
    int *pool, n_pool;
    int *val, n_val, has_val;
    int *test, n_test, has_test;
} split_lists;

static void split_lists_free(split_lists *s)
{
    lb_free(s->pool);
    lb_free(s->val);
    lb_free(s->test);
    memset(s, 0, sizeof *s);
}

/* ---- Fashion-MNIST and IDX files: a training and a test dataset ---- */

/* The channels and size of o where it gives them (the dataset's own where it does not). */
static int convert_as_asked(lb_dataset *ds, const lb_data_opts *o)
{
    if (!o->channels && !o->height) return LB_OK;
    return lb_dataset_convert(ds, o->channels ? o->channels : ds->c, o->height ? o->height : ds->h,
                              o->height ? o->width : ds->w);
}

/* The files of an IDX source: part 0 training, 1 test, 2 validation (NULL: none), the class
 * names file (NULL: none) and, for idx:DIR, the source's text with the folder made absolute. */
enum { IDX_TRAIN = 0, IDX_TEST, IDX_VAL };
typedef struct {
    char *img[3], *lab[3];
    char *classes;
    char *source;
} idx_files;

static void idx_files_free(idx_files *f)
{
    for (int k = 0; k < 3; k++) {
        lb_free(f->img[k]);
        lb_free(f->lab[k]);
    }
    lb_free(f->classes);
    lb_free(f->source);
    memset(f, 0, sizeof *f);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* DIR/NAME.gz, else DIR/NAME; *out NULL when neither is a file. */
static int find_in_dir(const char *dir, const char *name, char **out)
{
    *out = NULL;
    for (int gz = 1; gz >= 0; gz--) {
        char *p = lb_strfmt("%s/%s%s", dir, name, gz ? ".gz" : "");
        if (!p) return lb_error(LB_ENOMEM, "%s: out of memory", dir);
        if (is_file(p)) {
            *out = p;
            return LB_OK;
        }
        lb_free(p);
    }
    return LB_OK;
}

/* PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte of dir (each .gz or not) into part k;
 * *found: how many of the two are there. */
static int find_part(const char *dir, const char *prefix, idx_files *f, int k, int *found)
{
    char img[64], lab[64];
    snprintf(img, sizeof img, "%s-images-idx3-ubyte", prefix);
    snprintf(lab, sizeof lab, "%s-labels-idx1-ubyte", prefix);
    int rc = find_in_dir(dir, img, &f->img[k]);
    if (rc == LB_OK) rc = find_in_dir(dir, lab, &f->lab[k]);
    *found = (f->img[k] != NULL) + (f->lab[k] != NULL);
    if (rc == LB_OK && *found == 1)
        rc = lb_error(LB_EIO, "idx:%s: %s is there but not %s (nor it with .gz)", dir,
                      f->img[k] ? f->img[k] : f->lab[k], f->img[k] ? lab : img);
    return rc;
}

/* idx:DIR: train-*, test-* (or Fashion-MNIST's t10k-*), val-* if both its files are there,
 * and classes.txt if it is. */
static int idx_dir_files(const lb_source *src, idx_files *f)
{
    const char *dir = src->path[0];
    if (!is_dir(dir))
        return lb_error(LB_EIO, "idx:%s: not a folder (idx takes a folder holding train-*, test-* and optionally "
                                "val-* IDX files, or the files themselves: TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,"
                                "TEST_LABELS[,VAL_IMAGES,VAL_LABELS])", dir);
    int found = 0, rc = find_part(dir, "train", f, IDX_TRAIN, &found);
    if (rc == LB_OK && !found)
        rc = lb_error(LB_EIO, "idx:%s: no train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz in the folder", dir);
    if (rc == LB_OK) rc = find_part(dir, "test", f, IDX_TEST, &found);
    if (rc == LB_OK && !found) rc = find_part(dir, "t10k", f, IDX_TEST, &found);
    if (rc == LB_OK && !found)
        rc = lb_error(LB_EIO, "idx:%s: no test-images-idx3-ubyte.gz and test-labels-idx1-ubyte.gz (or t10k-*) in "
                              "the folder", dir);
    if (rc == LB_OK) rc = find_part(dir, "val", f, IDX_VAL, &found);
    if (rc == LB_OK) {
        char *p = lb_strfmt("%s/classes.txt", dir);
        if (!p) return lb_error(LB_ENOMEM, "%s: out of memory", dir);
        if (is_file(p)) f->classes = p;
        else lb_free(p);
    }
    if (rc == LB_OK && !(f->source = lb_source_format(src, 1))) rc = lb_error(LB_ENOMEM, "%s: out of memory", dir);
    return rc;
}

/* The files of an IDX source: those of the folder, or the four or six given. */
static int idx_source_files(const lb_source *src, idx_files *f)
{
    memset(f, 0, sizeof *f);
    if (!src->path[1]) return idx_dir_files(src, f);
    for (int k = 0; k < 3 && src->path[2 * k]; k++) {
        f->img[k] = lb_strdup(src->path[2 * k]);
        f->lab[k] = lb_strdup(src->path[2 * k + 1]);
        if (!f->img[k] || !f->lab[k]) return lb_error(LB_ENOMEM, "%s: out of memory", src->path[0]);
    }
    return LB_OK;
}

/* The class names of a classes.txt: one a line, none empty or repeated, at most 256 (IDX
 * labels are bytes); a last line without its newline counts, blank lines at the end do not. */
static int read_class_names(const char *path, char ***names, int *n)
{
    char *text = NULL;
    size_t len = 0;
    *names = NULL;
    *n = 0;
    int rc = lb_read_file(path, 1 << 20, &text, &len);
    if (rc != LB_OK) return rc;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = '\0';
    char *lines[256];
    int k = 0, line = 1;
    for (char *p = text; rc == LB_OK && len > 0; line++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        size_t L = strlen(p);
        if (L > 0 && p[L - 1] == '\r') p[--L] = '\0';
        if (!*p) rc = lb_error(LB_EFORMAT, "%s:%d: empty class name", path, line);
        else if (k == 256) rc = lb_error(LB_EFORMAT, "%s: more than 256 class names (IDX labels are bytes)", path);
        for (int j = 0; rc == LB_OK && j < k; j++)
            if (!strcmp(lines[j], p)) rc = lb_error(LB_EFORMAT, "%s:%d: class '%s' is named twice", path, line, p);
        if (rc == LB_OK) lines[k++] = p;
        if (!nl) break;
        p = nl + 1;
    }
    if (rc == LB_OK && k == 0) rc = lb_error(LB_EFORMAT, "%s: no class names", path);
    if (rc == LB_OK && !(*names = lb__names(k, (const char *const *)lines)))
        rc = lb_error(LB_ENOMEM, "%s: out of memory for %d class names", path, k);
    if (rc == LB_OK) *n = k;
    lb_free(text);
    return rc;
}

/* One part of an IDX source, with the classes of classes.txt (n_classes 0 and names NULL:
 * the labels' own, or those of n_classes). */
static int idx_part(const idx_files *f, int k, int n_classes, char **names, lb_dataset **out)
{
    int rc = got(lb_dataset_new_idx(f->img[k], f->lab[k], n_classes, (const char *const *)names), out);
    if (rc == LB_OK && f->source) {
        char *s = lb_strdup(f->source);
        if (!s) return lb_error(LB_ENOMEM, "%s: out of memory", f->img[k]);
        lb_free((*out)->source);
        (*out)->source = s;
    }
    return rc;
}

static int same_shape(const lb_dataset *a, const char *a_path, const lb_dataset *b, const char *b_path)
{
    if (a->c == b->c && a->h == b->h && a->w == b->w) return LB_OK;
    return lb_error(LB_EFORMAT, "%s holds %dx%dx%d images but %s holds %dx%dx%d", a_path, a->c, a->h, a->w, b_path,
                    b->c, b->h, b->w);
}

/* The validation images appended to the training dataset, as an image folder's own val/
 * tree is: the pool is the training files' images, the validation split the appended ones. */
static int append_val(lb_dataset *train, const lb_dataset *val, split_lists *s)
{
    size_t size = (size_t)train->c * train->h * train->w;
    int n = train->n + val->n;
    if (val->n > INT_MAX - train->n) return lb_error(LB_EFORMAT, "%s: too many images with the validation files", train->source);
    uint8_t *px = lb_realloc(train->pixels, (size_t)n * size);
    if (px) train->pixels = px;
    int *lab = px ? lb_realloc(train->labels, sizeof(int) * (size_t)n) : NULL;
    if (lab) train->labels = lab;
    s->pool = lb_malloc(sizeof(int) * (size_t)train->n + 1);
    s->val = lb_malloc(sizeof(int) * (size_t)val->n + 1);
    if (!px || !lab || !s->pool || !s->val)
        return lb_error(LB_ENOMEM, "out of memory for %d training and validation images", n);
    memcpy(px + (size_t)train->n * size, val->pixels, (size_t)val->n * size);
    memcpy(lab + train->n, val->labels, sizeof(int) * (size_t)val->n);
    for (int i = 0; i < train->n; i++) s->pool[i] = i;
    for (int i = 0; i < val->n; i++) s->val[i] = train->n + i;
    s->n_pool = train->n;
    s->n_val = val->n;
    s->has_val = 1;
    train->n = n;
    return LB_OK;
}

/* IDX files: the training part (with the validation part appended, if there is one) and
 * the test part. */
static int open_idx_files(lb_data *d, const lb_source *src, split_lists *s)
{
    idx_files f;
    char **names = NULL;
    int C = 0, rc = idx_source_files(src, &f);
    if (rc == LB_OK && f.classes) rc = read_class_names(f.classes, &names, &C);
    if (rc == LB_OK) rc = idx_part(&f, IDX_TRAIN, C, names, &d->train);
    if (rc == LB_OK) rc = idx_part(&f, IDX_TEST, d->train->n_classes, names, &d->test);
    if (rc == LB_OK) rc = same_shape(d->train, f.img[IDX_TRAIN], d->test, f.img[IDX_TEST]);
    if (rc == LB_OK && f.img[IDX_VAL]) {
        lb_dataset *val = NULL;
        rc = idx_part(&f, IDX_VAL, d->train->n_classes, names, &val);
        if (rc == LB_OK) rc = same_shape(d->train, f.img[IDX_TRAIN], val, f.img[IDX_VAL]);
        if (rc == LB_OK) rc = append_val(d->train, val, s);
        lb_dataset_free(val);
    }
    lb__free_names(names, C);
    idx_files_free(&f);
    return rc;
}

/* Where the validation split comes from, said once. */
static int note_validation(lb_data *d, const split_lists *s, const lb_data_opts *o)
{
    if (s->has_val)
        return lb_notes_add(&d->info, "validation: the %d images the source marks as validation (the validation "
                                      "fraction is not used)", s->n_val);
    if (o->val_frac > 0) return LB_OK;
    return lb_notes_add(&d->info, "validation: none (validation fraction 0): nothing can be tuned or monitored");
}

static int open_idx_source(lb_data *d, const lb_source *src, const lb_data_opts *o, split_lists *s)
{
    int rc;
    if (src->kind == LB_SOURCE_FMNIST) {
        rc = got(lb_dataset_new_fmnist(src->path[0], 1), &d->train);
        if (!rc) rc = got(lb_dataset_new_fmnist(src->path[0], 0), &d->test);
    } else {
        rc = open_idx_files(d, src, s);
    }
    if (!rc) rc = convert_as_asked(d->train, o);
    if (!rc) rc = convert_as_asked(d->test, o);
    if (!rc) rc = lb__order_classes(d->train, o->classes);
    if (!rc) rc = lb__order_classes(d->test, o->classes);
    if (!rc && s->has_val) rc = note_validation(d, s, o);
    return rc;
}

/* ---- image folders and CSVs: one list of files, one dataset ---- */

/* ROOT/train with at least one of ROOT/val (valid, validation) and ROOT/test: the splits
 * are the folders'. Returns the validation folder's name in *val ("" if none). */
static int split_layout(const char *root, const char **val, int *has_test)
{
    static const char *const vals[] = {"val", "valid", "validation"};
    char p[4200];
    *val = "";
    snprintf(p, sizeof p, "%s/train", root);
    if (!is_dir(p)) return 0;
    for (int i = 0; i < 3 && !**val; i++) {
        snprintf(p, sizeof p, "%s/%s", root, vals[i]);
        if (is_dir(p)) *val = vals[i];
    }
    snprintf(p, sizeof p, "%s/test", root);
    *has_test = is_dir(p);
    return **val || *has_test;
}

static int list_folder(const lb_source *src, lb__image_list *l)
{
    const char *root = src->path[0], *val;
    int has_test = 0, rc;
    if (!split_layout(root, &val, &has_test)) return lb__folder_list(root, LB__SPLIT_ANY, l);
    char *p = lb_strfmt("%s/train", root);
    rc = p ? lb__folder_list(p, LB__SPLIT_TRAIN, l) : lb_error(LB_ENOMEM, "%s: out of memory", root);
    lb_free(p);
    if (rc == LB_OK && *val) {
        p = lb_strfmt("%s/%s", root, val);
        rc = p ? lb__folder_list(p, LB__SPLIT_VAL, l) : lb_error(LB_ENOMEM, "%s: out of memory", root);
        lb_free(p);
    }
    if (rc == LB_OK && has_test) {
        p = lb_strfmt("%s/test", root);
        rc = p ? lb__folder_list(p, LB__SPLIT_TEST, l) : lb_error(LB_ENOMEM, "%s: out of memory", root);
        lb_free(p);
    }
    return rc;
}

static int all_integers(char *const *labels, int n)
{
    for (int i = 0; i < n; i++) {
        int v;
        if (lb_parse_int(labels[i], &v) != 0) return 0;
    }
    return 1;
}

static int cmp_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* by value, then as text ("07" after "7"), so equal strings stay together */
static int cmp_number(const void *a, const void *b)
{
    long u = strtol(*(char *const *)a, NULL, 10), v = strtol(*(char *const *)b, NULL, 10);
    return u != v ? (u < v ? -1 : 1) : cmp_text(a, b);
}

/* The distinct labels of the rows, sorted (by value when every one is an integer), as l's
 * classes; *cmp is the order they are sorted in. */
static int csv_classes(const lb__csv_table *t, lb__image_list *l, int (**cmp)(const void *, const void *))
{
    char **lab = lb_malloc(sizeof(char *) * (size_t)t->n);
    if (!lab) return lb_error(LB_ENOMEM, "out of memory for %d labels", t->n);
    for (int i = 0; i < t->n; i++) lab[i] = t->rows[i].label;
    *cmp = all_integers(lab, t->n) ? cmp_number : cmp_text;
    qsort(lab, (size_t)t->n, sizeof(char *), *cmp);
    int k = 0;
    for (int i = 0; i < t->n; i++)
        if (k == 0 || strcmp(lab[k - 1], lab[i]) != 0) lab[k++] = lab[i];
    l->classes = lb__names(k, (const char *const *)lab);
    l->n_classes = l->classes ? k : 0;
    lb_free(lab);
    return l->classes ? LB_OK : lb_error(LB_ENOMEM, "out of memory for %d class names", k);
}

/* A CSV's rows into the list; each row's origin is "FILE:LINE". */
static int list_csv(const lb_source *src, int strict, lb__image_list *l)
{
    lb__csv_table t = {0};
    int rc = lb__csv_read(src->path[0], src->csv[0], src->csv[1], src->csv[2], src->csv[3], strict, &l->warnings, &t);
    int (*cmp)(const void *, const void *) = cmp_text;
    if (rc == LB_OK) rc = csv_classes(&t, l, &cmp);
    for (int i = 0; rc == LB_OK && i < t.n; i++) {
        const lb__csv_row *r = &t.rows[i];
        char **at = bsearch(&r->label, l->classes, (size_t)l->n_classes, sizeof(char *), cmp);
        int label = (int)(at - l->classes); /* every row's label is among the classes */
        char origin[4200];
        snprintf(origin, sizeof origin, "%s:%d", src->path[0], r->line);
        rc = lb__images_add(l, r->path, origin, label, r->split);
    }
    lb__csv_free(&t);
    return rc;
}

/* The decoded images' index lists by split: the pool (ANY, TRAIN), the validation images
 * (VAL) and the test images (TEST); has_val / has_test say whether the source listed any. */
static int lists_by_split(const lb__image_list *l, const int *entry_of, split_lists *s)
{
    s->pool = lb_malloc(sizeof(int) * (size_t)(l->n + 1));
    s->val = lb_malloc(sizeof(int) * (size_t)(l->n + 1));
    s->test = lb_malloc(sizeof(int) * (size_t)(l->n + 1));
    if (!s->pool || !s->val || !s->test) return lb_error(LB_ENOMEM, "out of memory splitting %d images", l->n);
    for (int i = 0; i < l->n; i++) {
        int sp = l->v[i].split, k = entry_of[i];
        s->has_val |= sp == LB__SPLIT_VAL;
        s->has_test |= sp == LB__SPLIT_TEST;
        if (k < 0) continue;
        if (sp == LB__SPLIT_VAL) s->val[s->n_val++] = k;
        else if (sp == LB__SPLIT_TEST) s->test[s->n_test++] = k;
        else s->pool[s->n_pool++] = k;
    }
    return LB_OK;
}

/* Without test images of its own, a seeded, stratified test fraction of the pool. */
static int split_off_test(const lb_dataset *ds, const lb_data_opts *o, split_lists *s)
{
    int *y = lb_malloc(sizeof(int) * (size_t)(s->n_pool + 1)), *rest = lb_malloc(sizeof(int) * (size_t)(s->n_pool + 1));
    int rc = y && rest ? LB_OK : lb_error(LB_ENOMEM, "out of memory splitting %d images into train and test", s->n_pool);
    for (int i = 0; rc == LB_OK && i < s->n_pool; i++) y[i] = ds->labels[s->pool[i]];
    lb_rng r;
    lb_rng_derive(&r, o->seed, LB_STREAM_TEST);
    int n_rest = 0;
    if (rc == LB_OK)
        rc = lb_stratified_split(s->pool, y, s->n_pool, ds->n_classes, o->test_frac, &r, rest, &n_rest, s->test,
                                 &s->n_test);
    if (rc == LB_OK) {
        lb_free(s->pool);
        s->pool = rest;
        s->n_pool = n_rest;
        rest = NULL;
    }
    lb_free(y);
    lb_free(rest);
    return rc;
}

static int open_image_source(lb_data *d, const lb_source *src, const lb_data_opts *o, split_lists *s)
{
    lb__image_list l = {0};
    int rc = src->kind == LB_SOURCE_CSV ? list_csv(src, o->strict, &l) : list_folder(src, &l);
    if (rc == LB_OK && !l.source && !(l.source = lb_source_format(src, 1)))
        rc = lb_error(LB_ENOMEM, "%s: out of memory", src->path[0]);
    int *entry_of = NULL;
    lb_dataset *ds = NULL;
    if (rc == LB_OK) rc = lb__images_decode(&l, o->channels, o->height, o->width, o->strict, &ds, &entry_of);
    d->train = d->test = ds;
    if (rc == LB_OK) rc = lb__order_classes(ds, o->classes); /* before anything is drawn by class */
    if (rc == LB_OK) rc = lists_by_split(&l, entry_of, s);
    if (rc == LB_OK && !s->has_test) rc = split_off_test(ds, o, s);
    if (rc == LB_OK) rc = note_validation(d, s, o);
    lb_free(entry_of);
    lb__images_free(&l);
    return rc;
}

/* ---- the split and what to say about it ---- */

/* Every class must keep at least one training image. */
static int check_classes(const lb_data *d)
{
    for (int c = 0; c < d->split.n_classes; c++)
        if (d->split.train_counts[c] == 0)
            return lb_error(LB_EINVAL, "%s: class '%s' has no training image after the split", d->train->source,
                            d->split.class_names[c]);
    return LB_OK;
}

/* The classes a split leaves without test or validation images, what the profile could not
 * do, then the skipped files; and what loading chose. */
static int collect_notes(lb_data *d)
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
    if (rc == LB_OK) rc = lb_notes_add_all(&d->warnings, &sp->warnings);
    int before = d->warnings.n;
    if (rc == LB_OK) rc = lb_notes_add_all(&d->warnings, &d->train->warnings);
    if (rc == LB_OK && d->test != d->train) rc = lb_notes_add_all(&d->warnings, &d->test->warnings);
    d->n_skipped = d->warnings.n - before;
    if (rc == LB_OK) rc = lb_notes_add_all(&d->info, &d->train->info);
    return rc;
}

lb_data *lb_data_new(const lb_data_opts *o)
{
    if (o->data && strncmp(o->data, "dense:", 6) == 0) return lb__data_new_dense(o);
    lb_source src;
    if (lb_source_parse(&src, o->data ? o->data : "fmnist") != LB_OK) return NULL;
    lb_data *d = lb_calloc(1, sizeof *d);
    split_lists s = {0};
    int rc = d ? LB_OK : lb_error(LB_ENOMEM, "out of memory for the data of '%s'", o->data ? o->data : "fmnist");
    if (rc == LB_OK) {
        d->seed = o->seed;
        rc = src.kind == LB_SOURCE_FOLDER || src.kind == LB_SOURCE_CSV ? open_image_source(d, &src, o, &s)
                                                                       : open_idx_source(d, &src, o, &s);
    }
    if (!rc) {
        lb_split_input in = {d->train, s.pool, s.n_pool, s.has_val ? s.val : NULL, s.n_val, d->test,
                             d->test == d->train ? s.test : NULL, s.n_test};
        rc = lb_split_init(&d->split, &in, o->imbalance, o->order, o->val_frac, o->seed);
    }
    if (!rc) rc = check_classes(d);
    if (!rc) rc = collect_notes(d);
    if (!rc) lb_dataset_stats(d->train, d->split.train_idx, d->split.n_train, d->mean, d->std);
    split_lists_free(&s);
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
    h = lb_hash64(sp->test_idx, sizeof(int) * (size_t)sp->n_test, h);
    return d->dense ? lb__dense_data_hash(d->dense, h) : h;
}

/* ---- every image of a source, for prediction ---- */

/* One part of an IDX source, converted as asked. The test part's classes are those of the
 * folder's classes.txt, or its own labels ("0", "1", ...: a caller matches them by name), so
 * the training files are not read. */
static int open_idx_part(const lb_source *src, const lb_data_opts *o, int train, lb_dataset **out)
{
    int rc;
    if (src->kind == LB_SOURCE_FMNIST) {
        rc = got(lb_dataset_new_fmnist(src->path[0], train), out);
    } else {
        idx_files f;
        char **names = NULL;
        int C = 0;
        rc = idx_source_files(src, &f);
        if (rc == LB_OK && f.classes) rc = read_class_names(f.classes, &names, &C);
        if (rc == LB_OK) rc = idx_part(&f, train ? IDX_TRAIN : IDX_TEST, C, names, out);
        lb__free_names(names, C);
        idx_files_free(&f);
    }
    return rc ? rc : convert_as_asked(*out, o);
}

lb_dataset *lb_dataset_open(const lb_data_opts *o, int idx_train)
{
    lb_source src;
    if (lb_source_parse(&src, o->data ? o->data : "fmnist") != LB_OK) return NULL;
    lb_dataset *ds = NULL;
    int rc;
    if (src.kind == LB_SOURCE_FOLDER || src.kind == LB_SOURCE_CSV) {
        lb__image_list l = {0};
        rc = src.kind == LB_SOURCE_CSV ? list_csv(&src, o->strict, &l) : list_folder(&src, &l);
        if (rc == LB_OK && !l.source && !(l.source = lb_source_format(&src, 1)))
            rc = lb_error(LB_ENOMEM, "%s: out of memory", src.path[0]);
        int *entry_of = NULL;
        if (rc == LB_OK) rc = lb__images_decode(&l, o->channels, o->height, o->width, o->strict, &ds, &entry_of);
        lb_free(entry_of);
        lb__images_free(&l);
    } else {
        rc = open_idx_part(&src, o, idx_train, &ds);
    }
    if (rc == LB_OK) rc = lb__order_classes(ds, o->classes);
    lb_source_free(&src);
    if (rc != LB_OK) {
        lb_dataset_free(ds);
        return NULL;
    }
    return ds;
}
