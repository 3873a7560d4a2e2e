/* Image folders as torchvision's ImageFolder reads them: ROOT/<class>/.../<image>, a class
 * per first-level folder (sorted by name), its images found at any depth below it. */
#include "data/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Folders nested deeper than this below a class folder are not read (a link loop). */
#define MAX_DEPTH 32

typedef struct {
    char **names;
    int n, cap;
} name_list;

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++) lb_free(l->names[i]);
    lb_free(l->names);
    memset(l, 0, sizeof *l);
}

static int names_add(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **nn = lb_realloc(l->names, sizeof(char *) * (size_t)cap);
        if (!nn) return lb_error(LB_ENOMEM, "out of memory listing '%s'", s);
        l->names = nn;
        l->cap = cap;
    }
    if (!(l->names[l->n] = lb_strdup(s))) return lb_error(LB_ENOMEM, "out of memory listing '%s'", s);
    l->n++;
    return LB_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The sorted, non-hidden names in dir (only sub-folders when dirs_only). */
static int list_dir(const char *dir, int dirs_only, name_list *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return lb_error(LB_EIO, "%s: cannot open folder (%s)", dir, strerror(errno));
    int rc = LB_OK;
    struct dirent *e;
    while (rc == LB_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ".", "..", .DS_Store, hidden folders */
        if (dirs_only) {
            char *p = lb_strfmt("%s/%s", dir, e->d_name);
            int keep = p && is_dir(p);
            if (!p) rc = lb_error(LB_ENOMEM, "%s: out of memory", dir);
            lb_free(p);
            if (!keep) continue;
        }
        rc = names_add(out, e->d_name);
    }
    closedir(d);
    if (rc) names_free(out);
    else if (out->n > 1) qsort(out->names, (size_t)out->n, sizeof(char *), cmp_str);
    return rc;
}

/* What a walk of one class folder found besides its images. */
typedef struct {
    int ignored;           /* files that are not images */
    char first_ignored[600];
} walk_counts;

/* Adds the images below dir (at any depth, in sorted order) to l as class `label`. */
static int walk(const char *dir, int depth, int label, int split, lb__image_list *l, walk_counts *wc)
{
    if (depth > MAX_DEPTH)
        return lb_notes_add(&l->warnings, "%s: more than %d folders deep (a link loop?): not read", dir, MAX_DEPTH);
    name_list names;
    int rc = list_dir(dir, 0, &names);
    for (int i = 0; rc == LB_OK && i < names.n; i++) {
        char *p = lb_strfmt("%s/%s", dir, names.names[i]);
        struct stat st;
        if (!p) rc = lb_error(LB_ENOMEM, "%s: out of memory", dir);
        else if (stat(p, &st) != 0) rc = lb_notes_add(&l->warnings, "%s: cannot read it (%s) (file skipped)", p, strerror(errno));
        else if (S_ISDIR(st.st_mode)) rc = walk(p, depth + 1, label, split, l, wc);
        else if (lb__image_kind(names.names[i]) == 1) rc = lb__images_add(l, p, NULL, label, split);
        else if (lb__image_kind(names.names[i]) == 2)
            rc = lb_notes_add(&l->warnings,
                              "%s: TIFF and WebP are formats torchvision reads but stb_image does not; convert it "
                              "(e.g. to PNG) (file skipped)",
                              p);
        else if (wc->ignored++ == 0)
            snprintf(wc->first_ignored, sizeof wc->first_ignored, "%s", p);
        lb_free(p);
    }
    names_free(&names);
    return rc;
}

/* The classes of a tree: its sorted first-level folders. */
static int tree_classes(const char *root, name_list *classes)
{
    struct stat st;
    if (stat(root, &st) != 0) return lb_error(LB_EIO, "%s: image folder not found (%s)", root, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return lb_error(LB_EINVAL, "%s: not a folder", root);
    int rc = list_dir(root, 1, classes);
    if (rc == LB_OK && classes->n == 0) {
        names_free(classes);
        rc = lb_error(LB_EINVAL, "%s: no class folders in the image folder (expected ROOT/<class>/<image>)", root);
    }
    return rc;
}

/* The class index of each of this tree's class folders: a first tree (l->n_classes == 0)
 * defines the classes, a later one (validation, test) must use only those. */
static int map_classes(const char *root, const name_list *classes, lb__image_list *l, int *label_of)
{
    if (l->n_classes == 0) {
        if (!(l->classes = lb__names(classes->n, (const char *const *)classes->names)))
            return lb_error(LB_ENOMEM, "%s: out of memory for %d class names", root, classes->n);
        l->n_classes = classes->n;
    }
    for (int k = 0; k < classes->n; k++) {
        label_of[k] = -1;
        for (int c = 0; c < l->n_classes; c++)
            if (strcmp(l->classes[c], classes->names[k]) == 0) label_of[k] = c;
        if (label_of[k] < 0)
            return lb_error(LB_EINVAL, "%s: class folder '%s' is not a class of the training images", root,
                            classes->names[k]);
    }
    return LB_OK;
}

int lb__folder_list(const char *root, int split, lb__image_list *l)
{
    name_list classes;
    int rc = tree_classes(root, &classes);
    if (rc) return rc;
    int *label_of = lb_malloc(sizeof(int) * (size_t)classes.n);
    rc = label_of ? map_classes(root, &classes, l, label_of) : lb_error(LB_ENOMEM, "%s: out of memory", root);
    walk_counts wc = {0, ""};
    for (int k = 0; rc == LB_OK && k < classes.n; k++) {
        char *cdir = lb_strfmt("%s/%s", root, classes.names[k]);
        int before = l->n;
        rc = cdir ? walk(cdir, 0, label_of[k], split, l, &wc) : lb_error(LB_ENOMEM, "%s: out of memory", root);
        if (rc == LB_OK && l->n == before && (split == LB__SPLIT_ANY || split == LB__SPLIT_TRAIN))
            rc = lb_error(LB_EINVAL, "%s: class folder '%s' holds no image files", cdir, classes.names[k]);
        lb_free(cdir);
    }
    if (rc == LB_OK && wc.ignored)
        rc = lb_notes_add(&l->info, "%s: ignored %d file%s that %s not an image (first: %s)", root, wc.ignored,
                          wc.ignored == 1 ? "" : "s", wc.ignored == 1 ? "is" : "are", wc.first_ignored);
    lb_free(label_of);
    names_free(&classes);
    return rc;
}

lb_dataset *lb_dataset_new_folder(const char *root, int channels, int h, int w, int strict,
                                  const lb_dataset *class_names_from)
{
    if (channels != 0 && channels != 1 && channels != 3) {
        lb_error(LB_EINVAL, "channels %d: must be 1 or 3", channels);
        return NULL;
    }
    if (h < 0 || w < 0 || h > 65535 || w > 65535 || (h == 0) != (w == 0)) {
        lb_error(LB_EINVAL, "image size %dx%d: give both sides (1..65535) or neither", h, w);
        return NULL;
    }
    lb__image_list l = {0};
    int rc = LB_OK;
    if (class_names_from) { /* the given classes, in their order: the tree must have exactly them */
        if (!(l.classes = lb__names(class_names_from->n_classes, (const char *const *)class_names_from->class_names)))
            rc = lb_error(LB_ENOMEM, "%s: out of memory", root);
        else
            l.n_classes = class_names_from->n_classes;
    }
    if (rc == LB_OK) rc = lb__folder_list(root, LB__SPLIT_ANY, &l);
    if (rc == LB_OK && !(l.source = lb_strfmt("folder:%s", root))) rc = lb_error(LB_ENOMEM, "%s: out of memory", root);
    lb_dataset *ds = NULL;
    int *entry_of = NULL;
    if (rc == LB_OK) rc = lb__images_decode(&l, channels, h, w, strict, &ds, &entry_of);
    lb_free(entry_of);
    lb__images_free(&l);
    return rc == LB_OK ? ds : NULL;
}

lb_dataset *lb_dataset_new_files(const char *const *paths, int n, int c, int h, int w, int strict)
{
    if ((c != 1 && c != 3) || h < 1 || w < 1 || h > 65535 || w > 65535) {
        lb_error(LB_EINVAL, "image files: %dx%dx%d is not a channel count of 1 or 3 and a size", c, h, w);
        return NULL;
    }
    if (n < 1) {
        lb_error(LB_EINVAL, "no image files given");
        return NULL;
    }
    static const char *const unlabelled[1] = {"(unlabelled)"};
    lb__image_list l = {0};
    int rc = (l.classes = lb__names(1, unlabelled)) ? LB_OK : lb_error(LB_ENOMEM, "image files: out of memory");
    l.n_classes = l.classes ? 1 : 0;
    for (int i = 0; rc == LB_OK && i < n; i++) rc = lb__images_add(&l, paths[i], NULL, 0, LB__SPLIT_ANY);
    if (rc == LB_OK && !(l.source = lb_strfmt("%d image file%s", n, n == 1 ? "" : "s")))
        rc = lb_error(LB_ENOMEM, "image files: out of memory");
    lb_dataset *ds = NULL;
    int *entry_of = NULL;
    if (rc == LB_OK) rc = lb__images_decode(&l, c, h, w, strict, &ds, &entry_of);
    lb_free(entry_of);
    lb__images_free(&l);
    if (rc != LB_OK) return NULL;
    for (int i = 0; i < ds->n; i++) ds->labels[i] = -1;
    lb__free_names(ds->class_names, ds->n_classes);
    ds->class_names = NULL;
    ds->n_classes = 0;
    return ds;
}
