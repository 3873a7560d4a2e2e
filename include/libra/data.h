/* libra data: datasets (IDX, Fashion-MNIST, image folders), imbalance profiles, splits,
 * samplers and the batcher. Pixels are loaded once as uint8 and never copied: everything
 * after loading works on index lists, and the batcher writes one normalised float batch at
 * a time into a buffer it reuses.
 *
 * The usual path (what every example does):
 *   lb_data_opts o;
 *   lb_data_opts_init(&o);
 *   lb_data_opts_set(&o, "data", "fmnist");         // or a preset: lb_data_preset_load(...)
 *   lb_data_opts_set(&o, "imbalance", "longtail:100");
 *   lb_data_opts_set(&o, "val", "0.1");
 *   lb_data *d = lb_data_new(&o);
 *   if (!d) { puts(lb_last_error()); return lb_last_status(); }
 *   lb_sampler *s = lb_sampler_new("balanced", d->split.train_idx, d->split.train_y,
 *                                  d->split.n_train, d->split.n_classes, seed);
 *   lb_batcher *b = lb_batcher_new(d->train, 128, d->mean, d->std, NULL);
 *   const int *idx, *y;  int n = lb_sampler_next(s, 128, 0, &idx, &y);
 *   lb_batcher_fill(b, idx, y, n, &aug_rng);   // b->x: float [n, c, h, w], b->t: int [n]
 *
 * Errors: every fallible call returns an lb_status (or NULL) and leaves a message in
 * lb_last_error() naming the file, spec or value at fault. Nothing here prints. */
#ifndef LIBRA_DATA_H
#define LIBRA_DATA_H

#include "libra/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== IDX files */

/* The only element type libra reads: unsigned bytes (IDX type code 0x08). */
#define LB_IDX_UBYTE 0x08

/* One IDX file in memory: dims[0] x dims[1] x ... bytes, row-major. */
typedef struct lb_idx {
    int ndim;          /* >= 1 */
    uint32_t *dims;    /* ndim entries */
    size_t count;      /* product of dims = bytes in data */
    uint8_t *data;     /* count bytes (lb_malloc) */
} lb_idx;

/* Reads a raw or gzip-compressed IDX file (detected by its first bytes, not its name).
 * Checks the magic (0 0 0x08 ndim), that the file holds exactly the bytes the header
 * claims, and refuses a header claiming more than the file could hold before allocating
 * (for gzip: more than the deflate limit of 1032:1 allows). Errors: LB_EIO (cannot open /
 * read), LB_EFORMAT (magic, type, size, corrupt or truncated gzip). */
int lb_idx_read(lb_idx *out, const char *path);
/* Writes an IDX ubyte file; gzip != 0 writes it gzip-compressed. */
int lb_idx_write(const char *path, const uint8_t *data, int ndim, const uint32_t *dims, int gzip);
void lb_idx_free(lb_idx *x);

/* ======================================================================== datasets */

/* Images as uint8 [n, c, h, w] (channel-planar), labels in [0, n_classes). */
typedef struct lb_dataset {
    int n, c, h, w;
    uint8_t *pixels;       /* n * c * h * w bytes */
    int *labels;           /* n */
    int n_classes;
    char **class_names;    /* n_classes strings */
    char *source;          /* where it came from, e.g. "idx:/path/a.gz,/path/b.gz" */
    char **paths;          /* image files and CSVs: the file of each image (n); IDX: NULL */
    /* Files skipped while loading (image folders, non-strict mode), one "PATH: problem
     * (skipped)" each. The library never prints them; lb_data collects them for the programs. */
    lb_notes warnings;
    /* What was chosen and done while loading, for the programs to show: the image size and
     * channels when not given, how many images were resized or converted. */
    lb_notes info;
} lb_dataset;

void lb_dataset_free(lb_dataset *ds);
/* Number of images of each class (counts: n_classes ints). */
void lb_dataset_class_counts(const lb_dataset *ds, int *counts);

/* An IDX image file ([n, h, w] -> c = 1; [n, c, h, w] -> NCHW; [n, w] -> h = 1) and an IDX
 * label file ([n], ubyte). n_classes > 0: labels must be below it; 0: n_classes = max label
 * + 1. class_names may be NULL (names "0", "1", ...). Errors name both files when the
 * counts disagree and the image index when a label is out of range. */
lb_dataset *lb_dataset_new_idx(const char *images_path, const char *labels_path, int n_classes,
                               const char *const *class_names);

/* Fashion-MNIST from `dir` (NULL: $LIBRA_FMNIST_DIR, else LB_FMNIST_DEFAULT_DIR).
 * train != 0: the 60,000 training images, else the 10,000 test images. Files are
 * train-images-idx3-ubyte.gz etc. (an uncompressed file without .gz is accepted too). When
 * they are missing, the message names the path and the Debian package that installs them. */
#define LB_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define LB_FMNIST_PACKAGE "dataset-fashion-mnist"
lb_dataset *lb_dataset_new_fmnist(const char *dir, int train);
/* The ten Fashion-MNIST class names (T-shirt/top ... Ankle boot). */
extern const char *const lb_fmnist_classes[10];
/* The Fashion-MNIST directory in effect for `dir` (see above); never NULL. */
const char *lb_fmnist_dir(const char *dir);

/* Reads an image-folder tree ROOT/<class>/<image> (classes sorted by name, as torchvision's
 * ImageFolder). Files are taken by extension (png jpg jpeg bmp gif tga pnm ppm pgm psd hdr
 * pic, any case); other files and names starting with '.' are skipped silently. Every image
 * is converted to `channels` (1 = gray, 3 = RGB; 0 = 3) and resized to h x w (0 = the size
 * of the first image read). A file stb_image cannot decode (zero bytes, text named .png,
 * ...) becomes a warning in the dataset (strict == 0) or an LB_EFORMAT error (strict != 0).
 * An empty root, or a class folder with no readable image, is an LB_EINVAL error.
 * class_names_from, if not NULL, is a dataset whose class names the folder's classes must
 * match exactly (used to read a test tree with the training tree's classes). */
lb_dataset *lb_dataset_new_folder(const char *root, int channels, int h, int w, int strict,
                                  const lb_dataset *class_names_from);

/* Image files without labels (labels -1, n_classes 0), at c x h x w (given, > 0); a file
 * that cannot be decoded is a warning (strict: the error). LB_EINVAL if none is readable. */
lb_dataset *lb_dataset_new_files(const char *const *paths, int n, int c, int h, int w, int strict);

/* Converts every image to c channels (1 <-> 3: luma / replicate) and h x w (stb resize), in
 * place (the pixel buffer is reallocated once). No-op if already c x h x w. */
int lb_dataset_convert(lb_dataset *ds, int c, int h, int w);

/* Per-channel mean and standard deviation (population) of the pixels / 255 of the images
 * idx[0..n) (idx NULL: all images). mean, std: ds->c floats. A std of 0 is reported as 1
 * so that normalising never divides by zero. */
void lb_dataset_stats(const lb_dataset *ds, const int *idx, int n, float *mean, float *std);

/* ======================================================================== sources */

typedef enum {
    LB_SOURCE_FMNIST = 0,  /* "fmnist" or "fmnist:DIR" */
    LB_SOURCE_FOLDER,      /* "folder:PATH": ROOT/<class>/..., or ROOT/train|val|test/<class>/... */
    LB_SOURCE_IDX,         /* "idx:DIR" or "idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS[,VAL_IMAGES,VAL_LABELS]" */
    LB_SOURCE_CSV          /* "csv:FILE[,root=DIR][,path=COL][,label=COL][,split=COL]" */
} lb_source_kind;

/* idx:DIR reads DIR/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, test-* (or
 * Fashion-MNIST's t10k-*) and, when both are there, val-* as the validation split as it is
 * (each file also without .gz); DIR/classes.txt, if present, names the classes (one a line).
 * The six-file form's VAL files are the validation split too (libra-resample writes both). */
#define LB_SOURCE_MAX_PATHS 6
typedef struct lb_source {
    lb_source_kind kind;
    char *path[LB_SOURCE_MAX_PATHS]; /* fmnist: [0] = dir or NULL; folder: [0] = root; idx: [0] = DIR
                                        (the rest NULL), or the four or six files in spec order; csv: [0] */
    char *csv[4];    /* csv: root, path, label and split columns (NULL: the defaults) */
} lb_source;

/* Parses a --data spec (see lb_source_kind). Errors name the spec. */
int lb_source_parse(lb_source *out, const char *spec);
void lb_source_free(lb_source *s);
/* The spec of s (the inverse of lb_source_parse); absolute != 0 makes every path absolute
 * (realpath of what exists, else joined to the working directory). NULL when out of memory. */
char *lb_source_format(const lb_source *s, int absolute);
/* Parses "HxW" (or "N" for N x N) as given to --size. */
int lb_parse_size(const char *s, int *h, int *w);

/* ======================================================================== profiles */

typedef enum {
    LB_PROFILE_NONE = 0,   /* "none": every available training image */
    LB_PROFILE_LONGTAIL,   /* "longtail:RHO": n_k = floor(n_max * RHO^(-k/(C-1))) */
    LB_PROFILE_STEP,       /* "step:RHO,MU": the last round(MU*C) ranks keep floor(n_max/RHO) */
    LB_PROFILE_BINARY,     /* "binary:CLASS,RATIO": CLASS (index or name) against the rest */
    LB_PROFILE_COUNTS      /* "counts:n0,n1,...": exactly these counts per rank */
} lb_profile_kind;

typedef struct lb_profile {
    lb_profile_kind kind;
    double rho, mu;        /* longtail, step */
    int pos_class;         /* binary: the positive class (source class index) */
    double ratio;          /* binary: negatives per positive */
    int n_counts;          /* counts */
    int *counts;
} lb_profile;

/* Parses a profile spec for a source with n_classes classes (class_names may be NULL; with
 * names, binary's CLASS may be a name). Out-of-range values (RHO < 1, MU outside (0,1),
 * a counts list of the wrong length or with a negative entry, RATIO <= 0, an unknown
 * class) are LB_EINVAL errors naming the value. */
int lb_profile_parse(lb_profile *out, const char *spec, int n_classes, const char *const *class_names);
void lb_profile_free(lb_profile *p);
/* The checks of lb_profile_parse that need no data (kind, numbers and their ranges). */
int lb_profile_check(const char *spec);
/* A sweep's '|' list of profiles into single profiles (*out: n strings, lb_free each, then
 * it). A piece that starts with a letter is a profile of its own; one that starts otherwise
 * continues the piece before it, replacing what follows its last ':' or ',':
 *   "longtail:10|50|100|200"         -> longtail:10, longtail:50, longtail:100, longtail:200
 *   "binary:Shirt,10|50"             -> binary:Shirt,10, binary:Shirt,50
 *   "longtail:100|step:100,0.5|none" -> the three as written.
 * Each is checked (lb_profile_check); an empty piece, a leading continuation and a profile
 * given twice are LB_EINVAL errors naming the list. A spec without '|' gives itself. */
int lb_profile_list(const char *spec, char ***out, int *n);

/* The rank order of the classes: order[k] = the class at rank k (rank 0 = the head).
 * spec NULL, "" or "count": by `available` count, largest first (ties: lower index first;
 * available NULL: as natural); "natural": 0, 1, ..., C-1; "random": a permutation drawn from
 * `seed`; "3,1,...": an explicit permutation of all C classes. */
int lb_order_parse(const char *spec, int n_classes, uint64_t seed, const int *available, int *order);

/* How many training images of each source class a profile keeps, given the available
 * counts per class (pure arithmetic, no data needed). targets: n_classes ints. Longtail and
 * step: n_max is the available count of the head (rank 0); targets are floored, never below
 * 1 and never above what the class has (on balanced data nothing is capped); counts asking
 * more than available are LB_EINVAL;
 * binary: n_pos = min(available[CLASS], floor(neg / RATIO)),
 * negatives = round(n_pos * RATIO), spread over the other classes in proportion to what
 * they have (largest remainder, ties to the lower class index). */
int lb_profile_targets(const lb_profile *p, const int *available, int n_classes,
                       const int *order, int *targets);

/* ======================================================================== splits */

/* Index lists after the profile. train/val index the training dataset, test indexes the
 * test dataset (which may be the same dataset, for a single image-folder tree). The *_y
 * arrays hold the task label of each entry (the source label, or 0/1 under binary). */
typedef struct lb_split {
    int n_classes;            /* task classes: source classes, or 2 under binary */
    char **class_names;       /* n_classes; binary: { "rest", "<CLASS>" } */
    int n_source_classes;
    int *label_map;           /* source class -> task class */
    uint64_t seed;            /* seed of every random choice made here */
    char *profile;            /* the profile spec as given ("none" if none) */
    int *order;               /* n_source_classes: rank -> source class */
    int *available;           /* n_source_classes: training pool before the profile */
    int *kept;                /* n_source_classes: kept by the profile (train + val) */
    int n_train, n_val, n_test;
    int *train_idx, *train_y;
    int *val_idx, *val_y;
    int *test_idx, *test_y;
    int *train_counts, *val_counts, *test_counts;   /* n_classes each */
    lb_notes warnings;        /* what the profile could not do as asked (a class capped at what
                                 it has, an existing imbalance inverted) */
} lb_split;

/* What a split is made from. */
typedef struct lb_split_input {
    const lb_dataset *train;  /* the training (and validation) images */
    const int *pool;          /* indices of train the profile may pick training images from */
    int n_pool;               /* (pool NULL: all of train) */
    const int *val;           /* indices of train that are the validation split as they are */
    int n_val;                /* (val NULL: val_frac of each class the profile keeps) */
    const lb_dataset *test;   /* may be train */
    const int *test_idx;      /* indices of test (NULL: all of test) */
    int n_test;
} lb_split_input;

/* Builds a split from `in`. The profile picks, per class, a seeded random subset of the
 * pool; then either in->val is the validation split as it is, or val_frac of each kept class
 * (rounded, at least 1 if the class has >= 2 images and val_frac > 0, never all of it) goes
 * to validation. The validation and test sets are only relabelled (binary), never
 * subsampled. Index lists are sorted ascending. */
int lb_split_init(lb_split *out, const lb_split_input *in, const char *profile_spec, const char *order_spec,
                  double val_frac, uint64_t seed);
void lb_split_free(lb_split *s);

/* The profile of the class-balanced training set that matches split sp (the ceiling a study
 * measures strategies against), into spec, and what it is into note (both appended):
 *   binary:CLASS,R  ->  binary:CLASS,1: every image of CLASS the pool has and as many of the
 *                       rest, the largest balanced set (the same total size would need more of
 *                       CLASS than there are);
 *   otherwise       ->  counts:n,...,n with n = (images the profile kept) / C: the same total
 *                       size, each class capped at what it has (the note names the capped ones).
 * source_names: the source's class names (for the note; NULL: indices). */
int lb_balanced_profile(const lb_split *sp, const char *const *source_names, lb_buf *spec, lb_buf *note);
/* The largest class-balanced training set the source has: counts:m,...,m with m the fewest
 * images any class has in the pool (binary: as lb_balanced_profile). */
int lb_full_balanced_profile(const lb_split *sp, const char *const *source_names, lb_buf *spec, lb_buf *note);

/* Seeded stratified split of the entries idx[0..n) with labels y (n_classes classes):
 * round(frac * n_c) of each class go to `b` (at least 1 when n_c >= 2 and frac > 0,
 * never all n_c), the rest to `a`. a and b must hold n ints each; both come out sorted. */
int lb_stratified_split(const int *idx, const int *y, int n, int n_classes, double frac,
                        lb_rng *rng, int *a, int *na, int *b, int *nb);

/* ======================================================================== samplers */

typedef enum {
    LB_SAMPLER_SHUFFLE = 0,  /* "shuffle": every entry once, in random order */
    LB_SAMPLER_UNDERSAMPLE,  /* "undersample[:ratio=R]": each class to min(n_c, floor(R * n_min)), R >= 1, default 1 */
    LB_SAMPLER_OVERSAMPLE,   /* "oversample[:ratio=R]": each class up to max(n_c, ceil(n_max / R)), R >= 1, default 1 (with replacement) */
    LB_SAMPLER_BALANCED,     /* "balanced": N draws: class uniform, then an image uniform in it */
    LB_SAMPLER_SQRT,         /* "sqrt[:q=Q]": N draws with p_c proportional to n_c^Q, Q in [0,1], default 0.5 */
    LB_SAMPLER_PROGRESSIVE,  /* "progressive[:epochs=T]": p_c(t) = (1 - t/T) n_c/N + (t/T)/C */
    LB_SAMPLER_SYNTHETIC     /* smote, borderline_smote, adasyn, ros_noise (see "synthetic oversampling"): a plain
                                shuffle of the entries given, which are the resampled set's rows */
} lb_sampler_kind;

typedef struct lb_sampler lb_sampler;

/* A sampler over entries (idx[i], y[i]), i < n, y in [0, n_classes). idx and y are copied.
 * Epoch e's list depends only on (spec, seed, e), so runs are reproducible and any epoch
 * can be regenerated. Unknown sampler names or parameters, and values out of range, are
 * LB_EINVAL errors naming them. All buffers are allocated here, none per epoch. */
lb_sampler *lb_sampler_new(const char *spec, const int *idx, const int *y, int n, int n_classes,
                           uint64_t seed);
void lb_sampler_free(lb_sampler *s);
/* The canonical name of a sampler spec (as lb_sampler_name would give) into buf, checking
 * the spec without any data. */
int lb_sampler_canonical(const char *spec, char *buf, size_t size);
lb_sampler_kind lb_sampler_kind_of(const lb_sampler *s);
/* The sampler's name with its parameters, e.g. "undersample:ratio=2". */
const char *lb_sampler_name(const lb_sampler *s);
/* progressive: the number of epochs T over which it moves from instance-balanced to
 * class-balanced (t >= T: class-balanced). Overrides epochs=T of the spec. T >= 1. */
int lb_sampler_set_horizon(lb_sampler *s, int total_epochs);
/* The number of entries an epoch of this sampler has (fixed per sampler). */
int lb_sampler_epoch_len(const lb_sampler *s);
/* Generates epoch `epoch` (0-based): *idx and *y point at lb_sampler_epoch_len() entries,
 * valid until the next call. Returns LB_OK or an error (progressive without a horizon). */
int lb_sampler_epoch(lb_sampler *s, int epoch, const int **idx, const int **y);
/* Per-class counts of the last generated epoch (n_classes ints). */
const int *lb_sampler_counts(const lb_sampler *s);
/* The next batch of at most `batch` entries; when the current epoch runs out the next
 * epoch is generated (the first call makes epoch 0). drop_last != 0 skips an epoch's last
 * partial batch (unless the whole epoch is shorter than one batch). Returns the batch size
 * (> 0) or a negative lb_status. */
int lb_sampler_next(lb_sampler *s, int batch, int drop_last, const int **idx, const int **y);
/* The epoch that lb_sampler_next is in (-1 before the first call). */
int lb_sampler_current_epoch(const lb_sampler *s);

/* ======================================================================== synthetic oversampling */

/* The one exception to "samplers never touch pixels": the SMOTE family makes new training
 * images, once per run, from the run's seed (stream LB_STREAM_SYNTH), from the training split
 * only. The run then trains on the resampled set (originals + synthetic images) with a plain
 * shuffle each epoch. Specs (all keys optional):
 *   smote[:k=5]                  base uniform with replacement among the class's images, one
 *                                of its k nearest same-class neighbours uniform, gap u ~ U[0,1):
 *                                x + u (x_nn - x), rounded to the nearest uint8
 *   borderline_smote[:k=5,m=10]  Borderline-1: bases only among "danger" points (of their m
 *                                nearest neighbours over all classes, m/2 <= n_other < m)
 *   adasyn[:k=5]                 per-base counts proportional to the share of other-class
 *                                points among its k nearest over all classes
 *   ros_noise[:shrinkage=1]      a repeated image plus Gaussian noise (imblearn's smoothed
 *                                bootstrap)
 * and the target counts, as imbalanced-learn's sampling_strategy: by default every class up
 * to the largest ('auto'); ratio=R (two classes only, R in (0, 1] as imblearn's float): the
 * minority grows to floor(R * N_maj) (an error if that is fewer than it has);
 * counts=n0,n1,... : each class to exactly that many (never fewer than it has). Distances are
 * Euclidean on the pixel values 0..255, computed exactly (in double, through dgemm as
 * |a|^2 + |b|^2 - 2 a.b); ties between neighbours go to the lower index. */
typedef enum {
    LB_SYNTH_SMOTE = 0,
    LB_SYNTH_BORDERLINE,
    LB_SYNTH_ADASYN,
    LB_SYNTH_ROS_NOISE
} lb_synth_kind;

#define LB_SYNTH_MAX_CLASSES 1024

typedef struct lb_synth_spec {
    lb_synth_kind kind;
    int k;               /* neighbours of the same class (smote, borderline, adasyn); default 5 */
    int m;               /* borderline: neighbours over all classes for the danger set; default 10 */
    double shrinkage;    /* ros_noise; default 1 */
    double ratio;        /* > 0: ratio=R was given */
    int n_counts;        /* > 0: counts=... was given (then counts[0..n_counts)) */
    int *counts;
    char name[160];      /* canonical: the kind and every key that differs from its default */
} lb_synth_spec;

/* 1 when spec names a synthetic sampler (smote, borderline_smote, adasyn, ros_noise). */
int lb_synth_is(const char *spec);
/* Parses a synthetic sampler spec; unknown keys and values out of range are LB_EINVAL naming
 * them. Free with lb_synth_spec_free. */
int lb_synth_parse(lb_synth_spec *out, const char *spec);
void lb_synth_spec_free(lb_synth_spec *s);
/* Per-class counts after resampling (targets: n_classes ints) from the counts now. Errors:
 * ratio with more than two classes, a ratio or count that would remove images, a counts list
 * of the wrong length. */
int lb_synth_targets(const lb_synth_spec *s, const int *counts, int n_classes, int *targets);

/* What was made: rows 0..n_orig-1 are the original entries (in the order given), the rest
 * synthetic. source and neighbour are rows of this set (-1 where they do not apply: an
 * original row; ros_noise has no neighbour), gap is u (NaN where it does not apply). */
typedef struct lb_synth_plan {
    int n, n_orig, n_classes;
    int *y;              /* [n] labels */
    int *source;         /* [n] */
    int *neighbour;      /* [n] */
    float *gap;          /* [n] */
    int *targets;        /* [n_classes] counts after resampling */
    lb_notes warnings;   /* classes with <= k images (all their images used), k = 0 (nothing
                            made), a class without a danger point, ADASYN without any
                            other-class neighbour */
} lb_synth_plan;

void lb_synth_plan_free(lb_synth_plan *p);

/* Plans the synthesis over float rows x [n, dim] with labels y (the core, for pixels and for
 * features): neighbours, bases, gaps, from rng (the order of the draws is documented in
 * src/data/synth.c). out->targets are the counts the plan reaches: lb_synth_targets', except
 * for a class that made nothing with a warning (k=0, no danger point, ADASYN without any
 * other-class neighbour). out is zeroed on failure. */
int lb_synth_plan_rows(const lb_synth_spec *s, const float *x, const int *y, int n, int dim, int n_classes,
                       lb_rng *rng, lb_synth_plan *out);
/* The rows of a plan as floats: out [plan->n, dim] (originals copied); a synthetic row is
 * x_src + gap (x_nn - x_src) worked out in double, a copy of x_src when it has no neighbour,
 * or (ros_noise) x_src plus the noise, drawn value by value from lb_rng_derive(seed, row), so
 * that the fill does not depend on the order rows are filled in. */
int lb_synth_fill_rows(const lb_synth_spec *s, const lb_synth_plan *p, const float *x, int dim, uint64_t seed,
                       float *out);

/* The resampled training split of a dataset: a new dataset holding the images ds[idx[i]]
 * (i < n, labels y[i]: task labels, n_classes the task's count) and then the synthetic images
 * (rounded to the nearest uint8, halves up, and clamped to 0..255), with the class names of
 * ds when it has n_classes classes ("0", "1", ... otherwise), source "<ds source> resampled by
 * <canonical name>", paths NULL; *plan says where each row came from (always initialised:
 * zeroed on failure, free it with lb_synth_plan_free either way). seed: the run's synthesis
 * seed; the plan draws from lb_rng_seed(seed), ros_noise's noise of row r from
 * lb_rng_derive(seed, r). Memory: the new dataset's pixels (n_total * c*h*w bytes) and the
 * plan (17 bytes a row), plus, while it is made, two blocks of rows in double and their
 * distances (about 8.5 MB at 784 values a row; see src/data/synth.c) and the neighbour lists
 * of one class (its rows x k ints, x m for borderline); no float copy of the images. */
lb_dataset *lb_synth_dataset(const char *spec, const lb_dataset *ds, const int *idx, const int *y, int n,
                             int n_classes, uint64_t seed, lb_synth_plan *plan);

/* ======================================================================== batches */

/* Augmentation, off by default (zeroed struct): random crop of the image padded by
 * crop_pad pixels of value 0 on each side (as torchvision's RandomCrop(padding=P)), and a
 * horizontal flip with probability 1/2. */
typedef struct lb_augment {
    int crop_pad;
    int hflip;
} lb_augment;

typedef struct lb_batcher {
    const lb_dataset *ds;
    int max_batch, c, h, w;
    float mean[3], std[3];
    lb_augment aug;
    float *x;     /* [max_batch, c, h, w], reused */
    int *t;       /* [max_batch] targets */
    float *lut;   /* [c, 256]: (v/255 - mean[c]) / std[c], so a pixel costs one lookup */
} lb_batcher;

/* A batcher over `ds` writing at most max_batch images per batch. mean/std: ds->c floats
 * each (NULL: 0 and 1); aug NULL: no augmentation. The two buffers are allocated here. */
lb_batcher *lb_batcher_new(const lb_dataset *ds, int max_batch, const float *mean,
                              const float *std, const lb_augment *aug);
void lb_batcher_free(lb_batcher *b);
/* Writes images idx[0..n) (n <= max_batch) into b->x as (pixel/255 - mean) / std and
 * y[0..n) into b->t (y NULL: the dataset labels). rng drives the augmentation (may be NULL
 * when there is none). Allocates nothing. */
int lb_batcher_fill(lb_batcher *b, const int *idx, const int *y, int n, lb_rng *rng);
/* The same into caller-owned buffers x ([n, c, h, w]) and t ([n], may be NULL). */
int lb_batcher_fill_into(const lb_batcher *b, const int *idx, const int *y, int n,
                         lb_rng *rng, float *x, int *t);

/* ======================================================================== mixing */

/* Batch-level mixing, for any loss that takes hard labels:
 *   mixup[:alpha=1]                   (Zhang et al. 2018) one lambda ~ Beta(alpha, alpha) per
 *                                     batch; image i becomes lambda x_i + (1 - lambda) x_j,
 *                                     j = perm(i) a uniform permutation of the batch, and the
 *                                     loss is lambda L(z, y_i) + (1 - lambda) L(z, y_j)
 *   remix[:alpha=1,kappa=3,tau=0.5]   (Chou et al. 2020) images as mixup; sample i's label
 *                                     weight is 0 when n_{y_i}/n_{y_j} >= kappa and lambda <
 *                                     tau, 1 when n_{y_i}/n_{y_j} <= 1/kappa and 1 - lambda <
 *                                     tau, else lambda (n: training counts per class)
 * Step t's draws come from lb_rng_derive(seed, t): a resumed run mixes as the original did. */
typedef enum { LB_MIX_NONE = 0, LB_MIX_MIXUP, LB_MIX_REMIX } lb_mix_kind;

typedef struct lb_mix {
    lb_mix_kind kind;
    double alpha, kappa, tau;
    char name[96];       /* canonical: the kind and every key that differs from its default */
} lb_mix;

/* Parses a mix spec (NULL, "" or "none": no mixing); LB_EINVAL names the key or value. */
int lb_mix_parse(lb_mix *out, const char *spec);
/* One draw from Beta(a, b) (a, b > 0), through two Gamma draws (Marsaglia and Tsang). */
double lb_rng_beta(lb_rng *r, double a, double b);
/* One batch's mixing: lambda, the permutation perm[0..n) and each sample's label weight
 * lam_y[0..n) (mixup: lambda for every sample). y: the batch's labels, counts: the training
 * counts per class (remix). */
void lb_mix_draw(const lb_mix *m, lb_rng *r, int n, const int *y, const int *counts, double *lambda, int *perm,
                 float *lam_y);
/* x [n, size] in place: x_i = lambda x_i + (1 - lambda) x_perm(i) (every row read before it
 * is written; scratch: n * size floats). */
void lb_mix_images(float *x, int n, size_t size, double lambda, const int *perm, float *scratch);

/* ======================================================================== dense canvases */

/* A dense task's data, generated from an image source (docs/dense.md): canvases holding a few
 * scaled objects on a textured background, one label per stride x stride cell.
 *   dense:SOURCE[,canvas=64][,objects=0-3][,scale=0.5-1][,stride=8][,train=6000][,test=1000]
 * SOURCE is any --data source (its own commas kept: the pieces whose key is one of the six
 * above are the dense options, the rest, rejoined, the source). canvas: N or HxW (<= 4096);
 * objects: how many objects a canvas gets, uniform in [A, B]; scale: an object is its source
 * image resized by s ~ U[A, B]; stride: the output grid has (H/stride) x (W/stride) cells (the
 * canvas must be a multiple of it); train, test: how many canvases of each. */
typedef struct lb_dense_spec {
    char *source;
    int canvas_h, canvas_w;
    int obj_min, obj_max;
    double scale_min, scale_max;
    int stride;
    int n_train, n_test;
} lb_dense_spec;

/* Parses a dense spec; errors name the key and value (or the missing source). */
int lb_dense_spec_parse(lb_dense_spec *out, const char *spec);
void lb_dense_spec_free(lb_dense_spec *s);

/* A set of generated canvases. A cell's target is the class of the object whose centre (the
 * middle pixel of its resized box) lies in it, else background = n_classes. */
typedef struct lb_dense_set {
    int n, c, h, w;            /* canvases [n, c, h, w] */
    uint8_t *pixels;
    int grid_h, grid_w, stride;
    int n_classes;             /* object classes (the source's); background = n_classes */
    int *targets;              /* [n, grid_h, grid_w] */
    int *objects;              /* [n] objects placed on each canvas */
    long n_objects, n_dropped; /* placed; dropped because 8 tries found no free centre cell */
    int *object_source;        /* [n_objects] the source image of each object placed */
    int *object_class;         /* [n_objects] its class */
    long *object_cell;         /* [n_objects] its cell: canvas * grid_h * grid_w + row * grid_w + col */
    long n_foreground;         /* cells that are not background (= n_objects) */
    double foreground_share;   /* n_foreground / (n * grid_h * grid_w) */
} lb_dense_set;

/* Makes n canvases from the source images pool[0..n_pool) (pool NULL: every image of src;
 * the test set's canvases take the source's test images only). Canvas i: background level,
 * grating and noise, then k ~ U{A..B} objects, each an image drawn uniformly from the pool,
 * resized (lb_data's resizer), placed uniformly where it fits and pasted by per-pixel max; an
 * object whose centre cell is taken is placed again (up to 8 tries), else dropped (counted).
 * Every draw of canvas i comes from lb_rng_derive(seed, i): same seed, same canvases, in any
 * order. Errors: objects larger than the canvas at the largest scale, an empty source. */
int lb_dense_make(const lb_dense_spec *s, const lb_dataset *src, const int *pool, int n_pool, int n, uint64_t seed,
                  lb_dense_set *out);
void lb_dense_set_free(lb_dense_set *d);
/* The locations of each target over the set: counts[0..n_classes) the object classes, then the
 * background; a class with none counts 1 (the class counts a loss's weights are made from). */
void lb_dense_location_counts(const lb_dense_set *s, int *counts);

/* The data of a dense task: what lb_data_new makes of a "dense:" source. The source is opened
 * as any --data source (with the same imbalance profile, order, validation fraction and seed:
 * the profile shapes which objects exist), then the training canvases take objects from the
 * split's training images only, the validation canvases (n_train * val_frac of them, none
 * without a validation split) from its validation images only, the test canvases from its
 * test images only. Canvas seeds: lb_hash64 of the data seed and the set (1 train, 2 val,
 * 3 test). Classes are the source dataset's (names in the lb_data's train->class_names). */
typedef struct lb_dense_data {
    lb_dense_spec spec;
    lb_dense_set train, val, test;
    float mean[3], std[3];   /* of the training canvases' pixels / 255, per channel */
} lb_dense_data;

/* ======================================================================== one call */

/* Everything that selects the data of a run; the keys of lb_data_opts_set and of a preset
 * are in brackets. Strings are owned (lb_data_opts_free). */
#define LB_VAL_DEFAULT 0.1
typedef struct lb_data_opts {
    char *data;          /* [data] source spec, default "fmnist" */
    char *imbalance;     /* [imbalance] profile spec, default "none" */
    char *order;         /* [order] rank order: "count" (default: most images first), "natural"
                            (class index order), "random", "3,1,..." */
    char *classes;       /* [classes] the class order by name, "Healthy,Diseased" (default: sorted
                            names for folders and CSVs, the file's order for IDX) */
    double val_frac;     /* [val] validation fraction of the training set where the source has
                            no validation split of its own, default LB_VAL_DEFAULT (0.1) */
    double test_frac;    /* [test] test fraction for a single image-folder tree, default 0.2 */
    int channels;        /* [channels] 1 or 3; 0 = the source's own (folder: 3) */
    int height, width;   /* [size] HxW; 0 = the source's own */
    int strict;          /* [strict] unreadable image files are errors, default 0 */
    uint64_t seed;       /* [seed] data seed (profile, order, val and test splits), default 1 */
    char *name;          /* [name] preset name, if any */
    char *description;   /* [description] preset description, if any */
} lb_data_opts;

void lb_data_opts_init(lb_data_opts *o);
void lb_data_opts_free(lb_data_opts *o);
/* Sets one option from strings (a command-line flag or a preset line). Unknown keys and
 * bad values are LB_EINVAL errors naming the key and value. */
int lb_data_opts_set(lb_data_opts *o, const char *key, const char *value);

/* Loads a preset into o: key = value lines, # comments, blank lines. `name` is a path to
 * an existing file, or a NAME looked up as DIR/datasets/NAME.ini (DIR = search_dir, if not
 * NULL) and then ./datasets/NAME.ini. Relative source paths in a preset are taken
 * relative to the preset file's directory. Unknown keys are errors naming key, file and
 * line. */
int lb_data_preset_load(lb_data_opts *o, const char *name, const char *search_dir);

/* A ready dataset + split. test may equal train (single image-folder tree). */
typedef struct lb_data {
    lb_dataset *train;
    lb_dataset *test;
    lb_split split;
    float mean[3], std[3];   /* of the split's training images (train_idx) */
    uint64_t seed;
    /* What a user must be told about this data (the library never prints it): first each
     * class with no test image (it is left out of the averaged metrics) and each class with
     * no validation image (when there is a validation split), then every image file skipped
     * while loading, of both trees. */
    lb_notes warnings;
    int n_skipped;           /* of those, the skipped files */
    /* What was chosen or done that the user should see (the library never prints it): the
     * image size and channels when not given, images resized or converted, files that are not
     * images, where the validation split came from. */
    lb_notes info;
    /* A dense task (a "dense:" source; NULL otherwise): the canvases, made from train, test and
     * the split above, which stay the source's. */
    lb_dense_data *dense;
} lb_data;

/* Loads the source, applies channel/size conversion, builds the split and computes the
 * normalisation statistics; a "dense:SOURCE,..." source also makes its canvases (d->dense).
 * NULL (message and status stored) on failure. */
lb_data *lb_data_new(const lb_data_opts *o);
/* Every image of o's source as one dataset, for prediction (no split, no profile): a folder
 * (any layout: train, val and test trees together) or a CSV with all its rows, each image's
 * file in ds->paths; IDX and Fashion-MNIST: the test files, or the training files with
 * idx_train. Channels and size as in o (0: chosen as lb_data_new chooses), classes ordered
 * by o->classes; skipped files are ds->warnings. */
lb_dataset *lb_dataset_open(const lb_data_opts *o, int idx_train);
void lb_data_free(lb_data *d);
/* A 64-bit fingerprint of what a run sees: both datasets' shapes, class names, labels and
 * pixels, and the split's index lists. Changing one image of a folder changes it. */
uint64_t lb_data_fingerprint(const lb_data *d);

#ifdef __cplusplus
}
#endif
#endif
