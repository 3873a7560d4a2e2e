/* libra-resample: the training split of a source resampled by a synthetic sampler (SMOTE
 * family), written with the unchanged validation and test splits as an IDX source that
 * --data idx:DIR reads back, plus where every row came from (provenance.csv) and a picture
 * of a few synthetic images beside the images they were made from (preview.png). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "common/cli.h"

static const char usage[] =
    "Usage: libra-resample --data SRC [--imbalance PROFILE] --sampler SPEC [--seed S] --out DIR [options]\n"
    "Makes the synthetic training images a run with --sampler SPEC --seed S trains on and writes\n"
    "the resampled training split (originals first, then the synthetic images), the validation\n"
    "and test splits as they are, where each row came from and a preview, as a source that\n"
    "--data idx:DIR reads back.\n"
    "\n"
    "  --sampler SPEC         a synthetic sampler: smote[:k=5], borderline_smote[:k=5,m=10], adasyn[:k=5],\n"
    "                         ros_noise[:shrinkage=1]; each with ratio=R or counts=n0,n1,... (default:\n"
    "                         every class up to the largest). Plain samplers (oversample, balanced, ...)\n"
    "                         make no images: give them to libra-train --sampler\n"
    "  --seed N               the run's seed (default 1): the images equal those libra-train --seed N\n"
    "                         --sampler SPEC trains on, with the same data flags\n"
    "  --out DIR              the folder to write (made if missing); it must not already hold these files\n"
    "  --force                replace the files of an earlier libra-resample in DIR\n"
    "  --quiet                no data line and no summary, only errors and warnings\n"
    "  --help                 this text\n"
    "\n"
    "Files in DIR: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, val-* and test-* likewise\n"
    "(RGB images as 4-D IDX [n, c, h, w] under the same names), classes.txt, provenance.csv\n"
    "(row,label,kind,source,neighbour,gap) and preview.png (source | synthetic | neighbour).\n"
    "\n"
    "%s"
    "\n"
    "Exit status: 0 success, 1 runtime error (data, file), 2 bad flag or value, 130 interrupted\n"
    "(nothing is left behind).\n";

enum { OPT_SAMPLER = 1, OPT_SEED, OPT_OUT, OPT_FORCE, OPT_QUIET };

static const struct option longopts[] = {{"sampler", required_argument, 0, OPT_SAMPLER},
                                         {"seed", required_argument, 0, OPT_SEED},
                                         {"out", required_argument, 0, OPT_OUT},
                                         {"force", no_argument, 0, OPT_FORCE},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_DATA_LONGOPTS,
                                         {0, 0, 0, 0}};

/* Every file libra-resample writes, in the order written. */
enum { F_TRAIN_IMG, F_TRAIN_LAB, F_VAL_IMG, F_VAL_LAB, F_TEST_IMG, F_TEST_LAB, F_CLASSES, F_PROVENANCE, F_PREVIEW, F_N };
static const char *const file_names[F_N] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "val-images-idx3-ubyte.gz",
    "val-labels-idx1-ubyte.gz",   "test-images-idx3-ubyte.gz",  "test-labels-idx1-ubyte.gz",
    "classes.txt",                "provenance.csv",             "preview.png"};

#define PREVIEW_MAX 16

typedef struct {
    const char *sampler, *out;
    uint64_t seed;
    int force, quiet;
    lb_data_opts dopts;
    cli_data_flags df;
} flags;

/* ---------------------------------------------------------------- flags */

static void check_sampler(const char *spec)
{
    if (!lb_synth_is(spec)) {
        char canon[128];
        if (lb_sampler_canonical(spec, canon, sizeof canon) == LB_OK)
            cli_usage_error("--sampler: '%s' is a plain sampler: it only chooses which training images each epoch "
                            "sees and never makes an image, so there is nothing to write (train with it directly: "
                            "libra-train --sampler %s); libra-resample takes smote, borderline_smote, adasyn or "
                            "ros_noise", spec, spec);
        cli_usage_error("--sampler: '%s' is not a synthetic sampler (smote, borderline_smote, adasyn or ros_noise)",
                        spec);
    }
    lb_synth_spec s;
    if (lb_synth_parse(&s, spec) != LB_OK) cli_usage_error("--sampler: %s", lb_last_error());
    lb_synth_spec_free(&s);
}

static void parse_flags(int argc, char **argv, flags *f)
{
    int c;
    memset(f, 0, sizeof *f);
    f->seed = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': printf(usage, cli_data_help); exit(0);
        case OPT_SAMPLER: f->sampler = optarg; break;
        case OPT_SEED: f->seed = cli_u64("seed", optarg); break;
        case OPT_OUT:
            if (!*optarg) cli_usage_error("--out: give a folder name");
            f->out = optarg;
            break;
        case OPT_FORCE: f->force = 1; break;
        case OPT_QUIET: f->quiet = 1; break;
        default:
            if (c == '?' || c == ':' || !cli_data_flag(&f->df, c, optarg)) cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!f->sampler)
        cli_usage_error("--sampler: missing; give the synthetic sampler to resample with (smote, borderline_smote, "
                        "adasyn or ros_noise)");
    check_sampler(f->sampler);
    if (!f->out) cli_usage_error("--out: missing; give the folder to write the resampled source into");
    lb_data_opts_init(&f->dopts);
    cli_data_apply(&f->df, &f->dopts);
}

/* ---------------------------------------------------------------- the output folder */

/* What this run made, so that a failed or interrupted one takes it away again. */
typedef struct {
    const char *dir;
    char *path[F_N];      /* DIR/<file> */
    int written[F_N];
    char *made[64];       /* folders made by lb_make_dirs, outermost first */
    int n_made;
    double bytes;
} output;

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

static void output_free(output *o)
{
    for (int k = 0; k < F_N; k++) free(o->path[k]);
    for (int k = 0; k < o->n_made; k++) free(o->made[k]);
}

/* Removes every file written and every folder made (innermost first). */
static void output_remove(output *o)
{
    for (int k = 0; k < F_N; k++)
        if (o->written[k]) unlink(o->path[k]);
    for (int k = o->n_made - 1; k >= 0; k--) rmdir(o->made[k]);
}

/* The library's last error, after taking away what this run made: exit 1. */
static void output_fail(output *o) __attribute__((noreturn));
static void output_fail(output *o)
{
    output_remove(o);
    cli_fatal("%s", lb_last_error());
}

/* Checked before the data is loaded: DIR can be made or written in, and holds none of the
 * files unless --force. */
static void output_check(output *o, const flags *f)
{
    memset(o, 0, sizeof *o);
    o->dir = f->out;
    if (lb_check_output_dir(f->out) != LB_OK) cli_fatal("--out %s: %s", f->out, lb_last_error());
    for (int k = 0; k < F_N; k++) {
        size_t n = strlen(f->out) + strlen(file_names[k]) + 2;
        if (!(o->path[k] = malloc(n))) cli_fatal("out of memory");
        snprintf(o->path[k], n, "%s/%s", f->out, file_names[k]);
    }
    if (f->force) return;
    for (int k = 0; k < F_N; k++) {
        struct stat st;
        if (lstat(o->path[k], &st) == 0)
            cli_fatal("--out %s: already holds %s (of an earlier libra-resample?); --force replaces its files, or "
                      "give another folder", f->out, file_names[k]);
    }
}

/* Makes DIR, remembering each folder that did not exist (they go again on failure). */
static void output_make(output *o)
{
    char *p = strdup(o->dir);
    if (!p) cli_fatal("out of memory");
    char *missing[64];
    int n = 0;
    for (;;) { /* DIR, then each parent, while it does not exist */
        struct stat st;
        size_t L = strlen(p);
        while (L > 1 && p[L - 1] == '/') p[--L] = '\0';
        if (stat(p, &st) == 0 || n == 64) break;
        if (!(missing[n++] = strdup(p))) cli_fatal("out of memory");
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) break;
        *slash = '\0';
    }
    free(p);
    for (int k = n - 1; k >= 0; k--) o->made[o->n_made++] = missing[k];
    if (lb_make_dirs(o->dir) != LB_OK) {
        lb_error_prefix("--out %s", o->dir);
        output_fail(o);
    }
}

static void file_written(output *o, int k)
{
    struct stat st;
    o->written[k] = 1;
    if (stat(o->path[k], &st) == 0) o->bytes += (double)st.st_size;
    if (stop_signal) {
        output_remove(o);
        fprintf(stderr, "%s: interrupted by signal %d: what was written in %s is removed\n", cli_prog, (int)stop_signal, o->dir);
        exit(128 + (int)stop_signal);
    }
}

/* ---------------------------------------------------------------- IDX files */

/* Images [n, c, h, w] (c = 1: an IDX [n, h, w]) and their labels as IDX files k, k + 1. */
static void write_split(output *o, int k, const uint8_t *px, const int *y, int n, int c, int h, int w)
{
    uint32_t dims[4] = {(uint32_t)n, (uint32_t)c, (uint32_t)h, (uint32_t)w};
    uint32_t gray[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    if (lb_idx_write(o->path[k], px, c == 1 ? 3 : 4, c == 1 ? gray : dims, 1) != LB_OK) output_fail(o);
    file_written(o, k);
    uint8_t *lab = malloc((size_t)n + 1);
    if (!lab) {
        lb_error(LB_ENOMEM, "%s: out of memory for %d labels", o->path[k + 1], n);
        output_fail(o);
    }
    for (int i = 0; i < n; i++) lab[i] = (uint8_t)y[i];
    uint32_t dl[1] = {(uint32_t)n};
    int rc = lb_idx_write(o->path[k + 1], lab, 1, dl, 1);
    free(lab);
    if (rc != LB_OK) output_fail(o);
    file_written(o, k + 1);
}

/* The images ds[idx[i]], i < n, and labels y as IDX files k, k + 1. */
static void write_subset(output *o, int k, const lb_dataset *ds, const int *idx, const int *y, int n)
{
    size_t size = (size_t)ds->c * ds->h * ds->w;
    uint8_t *px = malloc((size_t)n * size + 1);
    if (!px) {
        lb_error(LB_ENOMEM, "%s: out of memory for %d images", o->path[k], n);
        output_fail(o);
    }
    for (int i = 0; i < n; i++) memcpy(px + (size_t)i * size, ds->pixels + (size_t)idx[i] * size, size);
    write_split(o, k, px, y, n, ds->c, ds->h, ds->w);
    free(px);
}

static void write_buf(output *o, int k, lb_buf *b)
{
    if (lb_buf_write(b, o->path[k]) != LB_OK) output_fail(o);
    lb_buf_free(b);
    file_written(o, k);
}

/* ---------------------------------------------------------------- provenance and preview */

static void write_provenance(output *o, const lb_synth_plan *p)
{
    lb_buf b = {0};
    lb_buf_puts(&b, "row,label,kind,source,neighbour,gap\n");
    for (int i = 0; i < p->n; i++) {
        int orig = i < p->n_orig;
        lb_buf_printf(&b, "%d,%d,%s,", i, p->y[i], orig ? "original" : "synthetic");
        if (!orig && p->source[i] >= 0) lb_buf_printf(&b, "%d", p->source[i]);
        lb_buf_puts(&b, ",");
        if (!orig && p->neighbour[i] >= 0) lb_buf_printf(&b, "%d", p->neighbour[i]);
        lb_buf_puts(&b, ",");
        if (!orig && isfinite(p->gap[i])) lb_buf_printf(&b, "%.9g", (double)p->gap[i]);
        lb_buf_puts(&b, "\n");
    }
    write_buf(o, F_PROVENANCE, &b);
}

/* Up to PREVIEW_MAX synthetic rows, spread over the classes that grew: one per class in turn
 * (class order) while any has rows left, then within a class evenly over its synthetic rows
 * (the middle of each of q equal stretches). Deterministic: a function of the plan alone. */
static int preview_rows(const lb_synth_plan *p, int *rows)
{
    int C = p->n_classes, n_syn = p->n - p->n_orig, total = 0;
    int *made = calloc((size_t)C, sizeof(int)), *quota = calloc((size_t)C, sizeof(int));
    if (!made || !quota) cli_fatal("out of memory");
    for (int i = p->n_orig; i < p->n; i++) made[p->y[i]]++;
    for (int more = 1; more && total < PREVIEW_MAX && total < n_syn;) {
        more = 0;
        for (int c = 0; c < C && total < PREVIEW_MAX; c++)
            if (quota[c] < made[c]) {
                quota[c]++;
                total++;
                more = 1;
            }
    }
    int n = 0;
    for (int c = 0; c < C; c++) {
        int j = 0, pos = 0;
        for (int i = p->n_orig; i < p->n && j < quota[c]; i++) {
            if (p->y[i] != c) continue;
            long want = ((2L * j + 1) * made[c]) / (2L * quota[c]); /* the j-th pick among the class's rows */
            if (pos++ == want) {
                rows[n++] = i;
                j++;
            }
        }
    }
    free(made);
    free(quota);
    return n;
}

static void png_sink(void *ctx, void *data, int size) { lb_buf_put(ctx, data, (size_t)size); }

/* Each picked row a line of the grid: source | synthetic | neighbour (ros_noise, which has no
 * neighbour: source | synthetic), each image scaled up, 2-pixel mid-gray separators. */
static void write_preview(output *o, const lb_synth_plan *p, const lb_dataset *rs)
{
    int rows[PREVIEW_MAX], n = preview_rows(p, rows), cols = 2;
    if (n == 0) return;
    for (int r = 0; r < n; r++)
        if (p->neighbour[rows[r]] >= 0) cols = 3;
    int c = rs->c, h = rs->h, w = rs->w, sep = 2;
    int scale = h <= 16 && w <= 16 ? 4 : h <= 64 && w <= 64 ? 2 : 1;
    int W = cols * w * scale + (cols + 1) * sep, H = n * h * scale + (n + 1) * sep;
    uint8_t *img = malloc((size_t)W * H * c);
    if (!img) {
        lb_error(LB_ENOMEM, "%s: out of memory for a %dx%d picture", o->path[F_PREVIEW], W, H);
        output_fail(o);
    }
    memset(img, 128, (size_t)W * H * c);
    size_t plane = (size_t)h * w;
    for (int r = 0; r < n; r++) {
        int i = rows[r], cell[3] = {p->source[i], i, p->neighbour[i]};
        for (int k = 0; k < cols; k++) {
            int x0 = sep + k * (w * scale + sep), y0 = sep + r * (h * scale + sep);
            const uint8_t *src = cell[k] >= 0 ? rs->pixels + (size_t)cell[k] * c * plane : NULL;
            for (int y = 0; y < h * scale; y++)
                for (int x = 0; x < w * scale; x++)
                    for (int ch = 0; ch < c; ch++)
                        img[((size_t)(y0 + y) * W + x0 + x) * c + ch] =
                            src ? src[ch * plane + (size_t)(y / scale) * w + x / scale] : 0;
        }
    }
    lb_buf b = {0};
    int ok = stbi_write_png_to_func(png_sink, &b, W, H, c, img, W * c);
    free(img);
    if (!ok) {
        lb_buf_free(&b);
        lb_error(LB_EIO, "%s: the PNG encoder failed", o->path[F_PREVIEW]);
        output_fail(o);
    }
    if (b.oom || lb_write_file_atomic(o->path[F_PREVIEW], b.p, b.n) != LB_OK) {
        if (b.oom) lb_error(LB_ENOMEM, "%s: out of memory", o->path[F_PREVIEW]);
        lb_buf_free(&b);
        output_fail(o);
    }
    lb_buf_free(&b);
    file_written(o, F_PREVIEW);
}

/* ---------------------------------------------------------------- summary */

static void print_summary(const flags *f, const lb_data *d, const lb_synth_plan *p, const char *name,
                          double seconds, double write_seconds, const output *o)
{
    const lb_split *sp = &d->split;
    int *after = calloc((size_t)sp->n_classes, sizeof(int));
    if (!after) cli_fatal("out of memory");
    for (int i = 0; i < p->n; i++) after[p->y[i]]++;
    int wname = 5;
    for (int k = 0; k < sp->n_classes; k++)
        if ((int)strlen(sp->class_names[k]) > wname) wname = (int)strlen(sp->class_names[k]);
    printf("%-*s  %8s  %8s  %9s\n", wname, "class", "before", "after", "synthetic");
    for (int k = 0; k < sp->n_classes; k++)
        printf("%-*s  %8d  %8d  %9d\n", wname, sp->class_names[k], sp->train_counts[k], after[k],
               after[k] - sp->train_counts[k]);
    printf("%-*s  %8d  %8d  %9d\n", wname, "total", p->n_orig, p->n, p->n - p->n_orig);
    free(after);
    int files = 0;
    for (int k = 0; k < F_N; k++) files += o->written[k];
    printf("%s: %d synthetic images in %.2f s; %d files, %.2f MB, written to %s in %.2f s\n", name, p->n - p->n_orig,
           seconds, files, o->bytes / 1e6, f->out, write_seconds);
    printf("read it back with --data idx:%s\n", f->out);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    cli_init(argv);
    flags f;
    parse_flags(argc, argv, &f);
    output o;
    output_check(&o, &f);
    if (!f.quiet) {
        char extra[512];
        snprintf(extra, sizeof extra, "data %s | imbalance %s | sampler %s", f.dopts.data ? f.dopts.data : "fmnist",
                 f.dopts.imbalance ? f.dopts.imbalance : "none", f.sampler);
        cli_print_header(stdout, f.seed, 1, extra);
        fflush(stdout);
    }
    lb_data *d = cli_data_load(&f.dopts, f.quiet);
    const lb_split *sp = &d->split;
    if (sp->n_classes > 256)
        cli_fatal("data: %d classes do not fit in IDX labels (bytes, at most 256 classes)", sp->n_classes);

    /* The synthesis seed, exactly as a training run derives it (src/train/run.c, build_sampler):
     * lb_rng_derive(&r, the run's --seed, LB_STREAM_SYNTH), then the first lb_rng_next(&r). With
     * the same data flags the images are those libra-train --sampler SPEC --seed S trains on. */
    lb_rng r;
    lb_rng_derive(&r, f.seed, LB_STREAM_SYNTH);
    uint64_t synth_seed = lb_rng_next(&r);
    double t0 = lb_now();
    lb_synth_plan plan;
    lb_dataset *rs = lb_synth_dataset(f.sampler, d->train, sp->train_idx, sp->train_y, sp->n_train, sp->n_classes,
                                      synth_seed, &plan);
    if (!rs) cli_fatal("--sampler %s: %s", f.sampler, lb_last_error());
    double seconds = lb_now() - t0;
    cli_print_warnings(&plan.warnings, 0);
    if (rs->n != plan.n) cli_fatal("internal: %d resampled images for a plan of %d rows", rs->n, plan.n);
    lb_synth_spec spec;
    char name[160] = "";
    if (lb_synth_parse(&spec, f.sampler) == LB_OK) {
        snprintf(name, sizeof name, "%s", spec.name);
        lb_synth_spec_free(&spec);
    }

    /* Writing: a signal now lets the current file finish, then everything goes again. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the program at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double t1 = lb_now();
    output_make(&o);
    write_split(&o, F_TRAIN_IMG, rs->pixels, plan.y, plan.n, rs->c, rs->h, rs->w);
    if (sp->n_val > 0) write_subset(&o, F_VAL_IMG, d->train, sp->val_idx, sp->val_y, sp->n_val);
    write_subset(&o, F_TEST_IMG, d->test, sp->test_idx, sp->test_y, sp->n_test);
    lb_buf b = {0};
    for (int k = 0; k < sp->n_classes; k++) lb_buf_printf(&b, "%s\n", sp->class_names[k]);
    write_buf(&o, F_CLASSES, &b);
    write_provenance(&o, &plan);
    write_preview(&o, &plan, rs);
    /* --force: files of an earlier run that this one does not write (no validation split, no
     * synthetic image to show) would not match the rest */
    for (int k = 0; k < F_N; k++)
        if (!o.written[k] && unlink(o.path[k]) != 0 && errno != ENOENT) {
            lb_error(LB_EIO, "--out %s: cannot remove %s of an earlier run: %s", f.out, o.path[k], strerror(errno));
            output_fail(&o);
        }
    if (!f.quiet) print_summary(&f, d, &plan, name[0] ? name : f.sampler, seconds, lb_now() - t1, &o);
    lb_synth_plan_free(&plan);
    lb_dataset_free(rs);
    lb_data_free(d);
    lb_data_opts_free(&f.dopts);
    output_free(&o);
    return 0;
}
