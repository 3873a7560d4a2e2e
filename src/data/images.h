/* Image files listed by a source (an image folder, a CSV), and their decoding into one
 * dataset: the size and channels chosen (or given) and announced, each file that cannot be
 * read a warning (or, strict, an error). Internal to src/data. */
#ifndef LIBRA_DATA_IMAGES_H
#define LIBRA_DATA_IMAGES_H

#include "libra/data.h"
#include "data/csv.h" /* LB__SPLIT_ANY, TRAIN, VAL, TEST: which split a listed image belongs to */

typedef struct lb__image {
    char *path;
    char *origin; /* where it was listed, for messages ("labels.csv:17"); NULL: the path says it */
    int label;    /* class index */
    int split;    /* LB__SPLIT_* */
} lb__image;

typedef struct lb__image_list {
    lb__image *v;
    int n, cap;
    char **classes; /* n_classes names, label = index */
    int n_classes;
    char *source;   /* the dataset's source text, e.g. "folder:/abs/root" */
    lb_notes warnings; /* files listed but not usable (a TIFF, a bad CSV row), one each */
    lb_notes info;     /* what the user should be told (non-image files ignored, ...) */
} lb__image_list;

int lb__images_add(lb__image_list *l, const char *path, const char *origin, int label, int split);
void lb__images_free(lb__image_list *l);

/* ROOT/<class>/... (any depth below the class folder) into l with the given split. The first
 * tree listed into l defines the classes (its sorted folder names, unless l->classes is
 * already set); a later one (validation, test) may only use those. TIFF and WebP files are
 * warnings, other non-image files are counted in l->info. A training tree's class folder
 * without image files is an LB_EINVAL error. */
int lb__folder_list(const char *root, int split, lb__image_list *l);

/* Decodes every listed image into one dataset of channels x h x w: channels 0 = the majority
 * of the training images (split ANY or TRAIN; gray or gray+alpha count as 1, RGB and RGBA as
 * 3, a tie is 3), h = w = 0 = their most common size. Images of another size are resized
 * (an area filter along an axis that shrinks); the choice and the counts go to ds->info. A
 * file that cannot be read is a warning in ds->warnings (strict: an LB_EFORMAT error); a
 * class left with no readable image is an LB_EINVAL error. entry_of[i] (l->n ints, allocated
 * here) is the dataset index of listed image i, or -1 if it was skipped. The dataset takes
 * l's class names and source (copied). */
int lb__images_decode(const lb__image_list *l, int channels, int h, int w, int strict, lb_dataset **out,
                      int **entry_of);

/* Resizes an interleaved uint8 image of c channels from w x h to ow x oh: along an axis that
 * shrinks an area (box) filter, along one that grows stb's default (Catmull-Rom). Returns 0
 * on success. */
int lb__resize_u8(const uint8_t *in, int w, int h, uint8_t *out, int ow, int oh, int c);

/* The image file extensions stb_image decodes (any case), and those torchvision's ImageFolder
 * takes that it does not (tif, tiff, webp): 1, 2, or 0 for neither. */
int lb__image_kind(const char *name);

/* Class names: the list in `order` ("B,A,C": every class exactly once) becomes the class
 * order, relabelling ds (names and labels); NULL or "" keeps it. Errors name the unknown,
 * missing or repeated class and list the dataset's classes. */
int lb__order_classes(lb_dataset *ds, const char *order);

#endif
