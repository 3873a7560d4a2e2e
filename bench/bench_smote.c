/* libra-bench-smote: how long libra's SMOTE takes to make the class-balanced training set,
 * to be set beside imbalanced-learn's SMOTE().fit_resample on the same rows
 * (bench/smote_ref.py; bench/smote_compare.sh runs both in alternation).
 *
 * The data is loaded and split once, untimed (default: Fashion-MNIST, --imbalance
 * longtail:100, the training split a run trains on). Then each of --repeats rounds, after
 * one untimed warm-up, times one whole synthesis through the library's API, with the
 * default targets (every class up to the largest, as imblearn's sampling_strategy='auto'):
 *   pixels: lb_synth_dataset on the uint8 images, what libra-resample and a training run
 *           with --sampler smote do (neighbours, draws, the new dataset of originals and
 *           synthetic images);
 *   floats: lb_synth_plan_rows + lb_synth_fill_rows on the rows as float32 (converted once,
 *           untimed), the output [n_out, dim] allocated inside the round, as imblearn
 *           returns a new array.
 * Each path prints its median and min-max in ms, one JSON object per line with --json, and a
 * hash of what the last round made (plan and rows): an optimisation must leave it unchanged.
 * --dump DIR writes the very rows and labels timed, DIR/smote_x.npy (uint8 [n, dim]) and
 * DIR/smote_y.npy (int64 [n]), for the reference to read.
 *
 * usage: libra-bench-smote [--sampler smote[:k=5]] [--path pixels|floats|both] [--repeats 7]
 *                          [--threads 1] [--seed 1] [--dump DIR] [--json] [data flags]
 * The machine's load is not controlled here: compare by medians, interleaved with the
 * reference (bench/smote_compare.sh). */
#include "common/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEATS 101

enum { OPT_SAMPLER = 1, OPT_PATH, OPT_REPEATS, OPT_THREADS, OPT_SEED, OPT_DUMP, OPT_JSON };
enum { PATH_PIXELS = 1, PATH_FLOATS = 2 };

typedef struct {
    const char *sampler, *dump;
    int paths, repeats, threads, json;
    uint64_t seed;
    lb_data_opts dopts;
    cli_data_flags df;
} opts;

static const char usage[] =
    "Usage: libra-bench-smote [options] [data flags]\n"
    "Times libra's synthetic oversampling of a training split up to class balance (every class\n"
    "up to the largest), through the library's API, as bench/smote_ref.py times imbalanced-learn.\n\n"
    "  --sampler SPEC   the synthetic sampler (default smote, i.e. smote:k=5)\n"
    "  --path WHICH     pixels (lb_synth_dataset on the uint8 images), floats (lb_synth_plan_rows +\n"
    "                   lb_synth_fill_rows on float32 rows) or both (default)\n"
    "  --repeats N      timed rounds after one warm-up (default 7, at most 101): median and min-max\n"
    "  --threads N      libra's threads (default 1)\n"
    "  --seed N         the synthesis seed (default 1)\n"
    "  --dump DIR       also write the timed rows and labels as DIR/smote_x.npy and DIR/smote_y.npy\n"
    "  --json           one JSON object per path instead of the text lines\n"
    "  --help           this text\n\n"
    "Data flags as libra-train's (default --imbalance longtail:100 on Fashion-MNIST):\n%s\n"
    "Exit status: 0 success, 1 runtime error, 2 bad flag or value.\n";

static int parse_path(const char *s)
{
    if (strcmp(s, "pixels") == 0) return PATH_PIXELS;
    if (strcmp(s, "floats") == 0) return PATH_FLOATS;
    if (strcmp(s, "both") == 0) return PATH_PIXELS | PATH_FLOATS;
    cli_usage_error("--path: '%s' is not pixels, floats or both", s);
}

static opts parse(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    o.sampler = "smote";
    o.paths = PATH_PIXELS | PATH_FLOATS;
    o.repeats = 7;
    o.threads = 1;
    o.seed = 1;
    static const struct option longs[] = {
        {"sampler", required_argument, 0, OPT_SAMPLER}, {"path", required_argument, 0, OPT_PATH},
        {"repeats", required_argument, 0, OPT_REPEATS}, {"threads", required_argument, 0, OPT_THREADS},
        {"seed", required_argument, 0, OPT_SEED},       {"dump", required_argument, 0, OPT_DUMP},
        {"json", no_argument, 0, OPT_JSON},             {"help", no_argument, 0, 'h'},
        CLI_DATA_LONGOPTS,                              {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "h", longs, NULL)) != -1;) {
        switch (c) {
        case OPT_SAMPLER: o.sampler = optarg; break;
        case OPT_PATH: o.paths = parse_path(optarg); break;
        case OPT_REPEATS: o.repeats = (int)cli_long("repeats", optarg, 1, MAX_REPEATS); break;
        case OPT_THREADS: o.threads = (int)cli_long("threads", optarg, 1, 64); break;
        case OPT_SEED: o.seed = cli_u64("seed", optarg); break;
        case OPT_DUMP:
            if (!*optarg) cli_usage_error("--dump: give a folder name");
            o.dump = optarg;
            break;
        case OPT_JSON: o.json = 1; break;
        case 'h': printf(usage, cli_data_help); cli_exit(0);
        default:
            if (c == '?' || c == ':' || !cli_data_flag(&o.df, c, optarg)) cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    int profile_given = 0; /* by --imbalance or a --preset; else longtail:100 */
    for (int i = 0; i < o.df.n; i++) profile_given |= o.df.code[i] == CLI_OPT_IMBALANCE || o.df.code[i] == CLI_OPT_PRESET;
    if (!profile_given) cli_data_flag_first(&o.df, CLI_OPT_IMBALANCE, "longtail:100");
    if (!lb_synth_is(o.sampler))
        cli_usage_error("--sampler: '%s' is not a synthetic sampler (smote, borderline_smote, adasyn or ros_noise)",
                        o.sampler);
    lb_synth_spec s;
    if (lb_synth_parse(&s, o.sampler) != LB_OK) cli_usage_error("--sampler: %s", lb_last_error());
    lb_synth_spec_free(&s);
    lb_data_opts_init(&o.dopts);
    cli_data_apply(&o.df, &o.dopts);
    return o;
}

/* ---------------------------------------------------------------- the rows, as .npy */

/* One .npy file (format 1.0): the header dict padded with spaces to a multiple of 64 bytes
 * (the magic and lengths included), then the data. */
static void write_npy(const char *dir, const char *file, const char *descr, int n, int dim, const void *data,
                      size_t bytes)
{
    char shape[64], dict[160], path[4096];
    if (dim > 0) snprintf(shape, sizeof shape, "(%d, %d)", n, dim);
    else snprintf(shape, sizeof shape, "(%d,)", n);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    int pad = 64 - (10 + len + 1) % 64;
    if (pad == 64) pad = 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path) cli_fatal("--dump %s: path too long", dir);
    lb_buf b = {0};
    unsigned hl = (unsigned)(len + pad + 1);
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    lb_buf_put(&b, head, sizeof head);
    lb_buf_put(&b, dict, (size_t)len);
    for (int i = 0; i < pad; i++) lb_buf_put(&b, " ", 1);
    lb_buf_put(&b, "\n", 1);
    lb_buf_put(&b, data, bytes);
    if (lb_buf_write(&b, path) != LB_OK) cli_fatal("--dump %s: %s", dir, lb_last_error());
    lb_buf_free(&b);
}

/* The timed rows (the split's training images, in train_idx order) and their labels. */
static void dump_rows(const char *dir, const lb_data *d)
{
    const lb_split *sp = &d->split;
    const lb_dataset *ds = d->train;
    size_t dim = (size_t)ds->c * ds->h * ds->w, n = (size_t)sp->n_train;
    if (lb_make_dirs(dir) != LB_OK) cli_fatal("--dump %s: %s", dir, lb_last_error());
    uint8_t *x = malloc(n * dim + 1);
    int64_t *y = malloc(n * sizeof(int64_t) + 1);
    if (!x || !y) cli_fatal("--dump %s: out of memory for %zu rows", dir, n);
    for (size_t i = 0; i < n; i++) {
        memcpy(x + i * dim, ds->pixels + (size_t)sp->train_idx[i] * dim, dim);
        y[i] = sp->train_y[i];
    }
    write_npy(dir, "smote_x.npy", "|u1", (int)n, (int)dim, x, n * dim);
    write_npy(dir, "smote_y.npy", "<i8", (int)n, 0, y, n * sizeof(int64_t));
    free(x);
    free(y);
}

/* ---------------------------------------------------------------- timing */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The synthesis seed a training run with --seed derives (as libra-resample does). */
static uint64_t synth_seed(uint64_t seed)
{
    lb_rng r;
    lb_rng_derive(&r, seed, LB_STREAM_SYNTH);
    return lb_rng_next(&r);
}

/* What a round made, to show that a change of the code left it as it was: its row count and
 * a hash of the plan (labels, sources, neighbours, gaps) and of the rows made. */
typedef struct {
    int n_out;
    uint64_t hash;
} made;

static uint64_t plan_hash(const lb_synth_plan *p)
{
    uint64_t h = lb_hash64(p->y, sizeof(int) * (size_t)p->n, LB_HASH_INIT);
    h = lb_hash64(p->source, sizeof(int) * (size_t)p->n, h);
    h = lb_hash64(p->neighbour, sizeof(int) * (size_t)p->n, h);
    return lb_hash64(p->gap + p->n_orig, sizeof(float) * (size_t)(p->n - p->n_orig), h);
}

/* One round of the pixels path: seconds; *m = what it made. */
static double round_pixels(const opts *o, const lb_data *d, made *m)
{
    const lb_split *sp = &d->split;
    lb_synth_plan plan;
    double t0 = lb_now();
    lb_dataset *rs = lb_synth_dataset(o->sampler, d->train, sp->train_idx, sp->train_y, sp->n_train, sp->n_classes,
                                      synth_seed(o->seed), &plan);
    double t = lb_now() - t0;
    if (!rs) cli_fatal("--sampler %s: %s", o->sampler, lb_last_error());
    size_t dim = (size_t)rs->c * rs->h * rs->w;
    m->n_out = rs->n;
    m->hash = lb_hash64(rs->pixels, (size_t)rs->n * dim, plan_hash(&plan));
    lb_dataset_free(rs);
    lb_synth_plan_free(&plan);
    return t;
}

/* One round of the floats path over x [n, dim] (float32): seconds; *m as above. */
static double round_floats(const opts *o, const lb_data *d, const float *x, int dim, made *m)
{
    const lb_split *sp = &d->split;
    lb_synth_spec s;
    if (lb_synth_parse(&s, o->sampler) != LB_OK) cli_fatal("--sampler %s: %s", o->sampler, lb_last_error());
    uint64_t seed = synth_seed(o->seed);
    lb_rng rng;
    lb_synth_plan plan;
    double t0 = lb_now();
    lb_rng_seed(&rng, seed);
    if (lb_synth_plan_rows(&s, x, sp->train_y, sp->n_train, dim, sp->n_classes, &rng, &plan) != LB_OK)
        cli_fatal("--sampler %s: %s", o->sampler, lb_last_error());
    float *out = lb_malloc(sizeof(float) * (size_t)plan.n * (size_t)dim + 1);
    if (!out) cli_fatal("out of memory for %d rows of %d floats", plan.n, dim);
    if (lb_synth_fill_rows(&s, &plan, x, dim, seed, out) != LB_OK)
        cli_fatal("--sampler %s: %s", o->sampler, lb_last_error());
    double t = lb_now() - t0;
    m->n_out = plan.n;
    m->hash = lb_hash64(out, sizeof(float) * (size_t)plan.n * (size_t)dim, plan_hash(&plan));
    lb_free(out);
    lb_synth_plan_free(&plan);
    lb_synth_spec_free(&s);
    return t;
}

/* The training rows as float32 [n_train, dim] (lb_malloc). */
static float *float_rows(const lb_data *d, int dim)
{
    const lb_split *sp = &d->split;
    float *x = lb_malloc(sizeof(float) * (size_t)sp->n_train * (size_t)dim + 1);
    if (!x) cli_fatal("out of memory for %d rows of %d floats", sp->n_train, dim);
    for (int i = 0; i < sp->n_train; i++) {
        const uint8_t *p = d->train->pixels + (size_t)sp->train_idx[i] * (size_t)dim;
        for (int j = 0; j < dim; j++) x[(size_t)i * (size_t)dim + (size_t)j] = p[j];
    }
    return x;
}

/* Median and min-max of t[0..n) in ms (sorted in place), printed for one path. */
static void report(const opts *o, const lb_data *d, const char *path, double *t, int n, const made *m, int dim)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    if (o->json)
        printf("{\"bench\": \"smote\", \"impl\": \"libra\", \"version\": \"%s\", \"path\": \"%s\", \"sampler\": \"%s\", "
               "\"threads\": %d, \"rows\": %d, \"dim\": %d, \"rows_out\": %d, \"hash\": \"%016llx\", "
               "\"repeats\": %d, \"ms\": {\"median\": %.2f, \"min\": %.2f, \"max\": %.2f}}\n",
               lb_version(), path, o->sampler, o->threads, d->split.n_train, dim, m->n_out, (unsigned long long)m->hash,
               n, 1e3 * med, 1e3 * t[0], 1e3 * t[n - 1]);
    else
        printf("%-6s %s, %d thread%s: %d rows -> %d in %.1f ms (min %.1f, max %.1f; %d rounds); hash %016llx\n",
               path, o->sampler, o->threads, o->threads > 1 ? "s" : "", d->split.n_train, m->n_out, 1e3 * med,
               1e3 * t[0], 1e3 * t[n - 1], n, (unsigned long long)m->hash);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    cli_init(argv);
    opts o = parse(argc, argv);
    if (lb_set_threads(o.threads) != LB_OK) cli_fatal_lib("--threads");
    lb_data *d = cli_data_load(&o.dopts, 1);
    int dim = d->train->c * d->train->h * d->train->w;
    if (o.dump) dump_rows(o.dump, d);
    double t[MAX_REPEATS];
    made m;
    if (o.paths & PATH_PIXELS) {
        round_pixels(&o, d, &m); /* warm-up */
        for (int r = 0; r < o.repeats; r++) t[r] = round_pixels(&o, d, &m);
        report(&o, d, "pixels", t, o.repeats, &m, dim);
    }
    if (o.paths & PATH_FLOATS) {
        float *x = float_rows(d, dim);
        round_floats(&o, d, x, dim, &m);
        for (int r = 0; r < o.repeats; r++) t[r] = round_floats(&o, d, x, dim, &m);
        report(&o, d, "floats", t, o.repeats, &m, dim);
        lb_free(x);
    }
    lb_data_free(d);
    lb_data_opts_free(&o.dopts);
    return 0;
}
