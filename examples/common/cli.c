/* Flag values, errors and the data flags of the libra-* programs. */
#include "common/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cli_prog = "libra";

void cli_init(char **argv)
{
    const char *argv0 = argv[0], *slash = argv0 ? strrchr(argv0, '/') : NULL;
    cli_prog = slash ? slash + 1 : argv0 ? argv0 : "libra";
    /* OpenBLAS starts a pool of threads when it is loaded, before main, unless
     * OPENBLAS_NUM_THREADS=1; libra uses its own threads, and a pool thread that cannot map its
     * buffer (under ulimit -v) spins forever and hangs the program at exit. So the program
     * starts again with the variable set: the new image has no pool (docs/reliability.md). */
    const char *v = getenv("OPENBLAS_NUM_THREADS");
    if (!v || strcmp(v, "1") != 0) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv); /* returns only if it failed: carry on with the pool */
    }
}

static void (*before_exit)(int status);

void cli_on_exit(void (*fn)(int status)) { before_exit = fn; }

void cli_exit(int status)
{
    if (before_exit) before_exit(status);
    exit(status);
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cli_prog);
    cli_exit(CLI_EXIT_USAGE);
}

void cli_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_exit(CLI_EXIT_RUNTIME);
}

void cli_fatal_lib(const char *context)
{
    if (context) cli_fatal("%s: %s", context, lb_last_error());
    cli_fatal("%s", lb_last_error());
}

/* "steps" or "--steps" -> "steps": messages put the dashes in front themselves. */
static const char *bare(const char *flag)
{
    while (*flag == '-') flag++;
    return flag;
}

long cli_long(const char *flag, const char *s, long lo, long hi)
{
    flag = bare(flag);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE) cli_usage_error("--%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi) cli_usage_error("--%s: %ld is outside [%ld, %ld]", flag, v, lo, hi);
    return v;
}

double cli_double(const char *flag, const char *s, double lo, double hi)
{
    flag = bare(flag);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) cli_usage_error("--%s: '%s' is not a number", flag, s);
    if (v < lo || v > hi) cli_usage_error("--%s: %g is outside [%g, %g]", flag, v, lo, hi);
    return v;
}

uint64_t cli_u64(const char *flag, const char *s)
{
    flag = bare(flag);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno == ERANGE || s[0] == '-')
        cli_usage_error("--%s: '%s' is not a non-negative integer", flag, s);
    return (uint64_t)v;
}

void cli_bad_option(void)
{
    /* getopt_long has already named the flag and the problem on stderr */
    fprintf(stderr, "Try '%s --help'.\n", cli_prog);
    cli_exit(CLI_EXIT_USAGE);
}

const char cli_data_help[] =
    "Data:\n"
    "  --data SPEC            fmnist[:DIR] (default), folder:PATH (ROOT/<class>/... or ROOT/train|val|test/<class>/...),\n"
    "                         csv:FILE[,root=DIR][,path=COL][,label=COL][,split=COL], or\n"
    "                         idx:TRAIN_IMG,TRAIN_LBL,TEST_IMG,TEST_LBL[,VAL_IMG,VAL_LBL], or idx:DIR (a folder of\n"
    "                         train-*, test-* [and val-*] IDX files, as libra-resample writes)\n"
    "  --preset NAME          a dataset preset (datasets/NAME.ini); other data flags override it\n"
    "  --classes A,B,...      the class order by name (default: sorted names; fixes what class 0 is)\n"
    "  --imbalance SPEC       none (default), longtail:RHO, step:RHO,MU, binary:CLASS,RATIO, counts:n0,n1,...\n"
    "  --order SPEC           the rank order a profile follows: count (default: most images first), natural,\n"
    "                         random, or 3,1,...\n"
    "  --val-fraction F       share of the training images kept for validation where the source has no\n"
    "                         validation split (default 0.1; 0: none, and nothing can be tuned)\n"
    "  --test-fraction F      test share of an image folder or CSV without test images (default 0.2)\n"
    "  --channels N           1 (gray) or 3 (RGB); default: the source's own (folders, CSVs: the majority)\n"
    "  --size HxW             resize images to HxW; default: the source's own (folders, CSVs: the most common)\n"
    "  --data-seed N          seed of the imbalance subset and the splits (default 1)\n"
    "  --strict               unreadable image files and bad CSV rows are errors instead of warnings\n";

static const char *const data_flag_names[] = {"data",          "imbalance",     "order",     "channels",
                                              "size",          "preset",        "val-fraction", "test-fraction",
                                              "data-seed",     "strict",        "classes"};
static const char *const data_keys[] = {"data", "imbalance", "order", "channels", "size",   NULL,
                                        "val",  "test",      "seed",  "strict",   "classes"};

/* The folder holding datasets/ (presets, the sample folder): $LIBRA_DATA_DIR, else the
 * source tree the program was built from, else the installed copy. */
const char *cli_data_dir(void)
{
    const char *env = getenv("LIBRA_DATA_DIR");
    if (env && *env) return env;
#ifdef LIBRA_SOURCE_DIR
    struct stat st;
    if (stat(LIBRA_SOURCE_DIR "/datasets", &st) == 0 && S_ISDIR(st.st_mode)) return LIBRA_SOURCE_DIR;
#endif
#ifdef LIBRA_INSTALL_DATA_DIR
    return LIBRA_INSTALL_DATA_DIR;
#else
    return NULL;
#endif
}

const char cli_train_help[] =
    "Optimizer and model kept:\n"
    "  --optimizer NAME       sgd, adam (default) or adamw\n"
    "  --lr X                 learning rate (default: sgd 0.01, adam/adamw 0.001)\n"
    "  --momentum X           sgd momentum (default 0.9)\n"
    "  --nesterov             sgd with Nesterov momentum\n"
    "  --weight-decay X       L2 (sgd, adam) or decoupled (adamw, default 0.01) weight decay\n"
    "  --clip X               clip the gradient to this global norm (default off)\n"
    "  --schedule SPEC        constant (default), step[:every=N,gamma=G], step:at=N1,N2,...[,gamma=G]\n"
    "                         (milestones in steps), cosine[:min=LR], each with ,warmup=N\n"
    "  --eval-every N         evaluate on the validation split every N steps (default: each epoch end)\n"
    "  --keep WHICH           last (default) or best: the parameters of the evaluation point with the best\n"
    "                         validation balanced accuracy are the model scored, saved and used\n"
    "  --patience N           stop after N evaluation points without a better validation balanced accuracy\n";

int cli_train_flag(lb_train_opts *o, int code, const char *a)
{
    switch (code) {
    case CLI_OPT_OPTIMIZER: {
        lb_optim_kind k;
        if (lb_optim_kind_parse(a, &k) != LB_OK) cli_usage_error("--optimizer: %s", lb_last_error());
        o->optimizer = a;
        return 1;
    }
    case CLI_OPT_LR: o->lr = cli_double("lr", a, 0.0, 100.0); return 1;
    case CLI_OPT_MOMENTUM: o->momentum = cli_double("momentum", a, 0.0, 0.999999); return 1;
    case CLI_OPT_NESTEROV: o->nesterov = 1; return 1;
    case CLI_OPT_WD: o->weight_decay = cli_double("weight-decay", a, 0.0, 10.0); return 1;
    case CLI_OPT_CLIP: o->clip_norm = cli_double("clip", a, 0.0, 1e9); return 1;
    case CLI_OPT_SCHEDULE: {
        lb_schedule s;
        if (lb_schedule_parse(&s, a, 1.0, 1000) != LB_OK) cli_usage_error("--schedule: %s", lb_last_error());
        o->schedule = a;
        return 1;
    }
    case CLI_OPT_KEEP:
        if (strcmp(a, "best") && strcmp(a, "last")) cli_usage_error("--keep: '%s' is not best or last", a);
        o->keep_best = !strcmp(a, "best");
        return 1;
    case CLI_OPT_PATIENCE: o->patience = (int)cli_long("patience", a, 1, 1000000); return 1;
    case CLI_OPT_EVAL_EVERY: o->eval_every = cli_long("eval-every", a, 1, 1000000000L); return 1;
    }
    return 0;
}

void cli_train_check(lb_train_opts *o)
{
    if ((o->keep_best || o->patience > 0) && o->monitor != LB_MONITOR_VAL)
        cli_usage_error("--keep best and --patience choose on the validation split; they need --monitor val (and "
                        "--val-fraction > 0)");
    if (o->lr < 0) { /* the optimizer's default, so the header and the outputs show it */
        lb_optim_kind k;
        lb_optim_kind_parse(o->optimizer, &k);
        o->lr = lb_optim_defaults(k).lr;
    }
}

int cli_data_flag(cli_data_flags *f, int code, const char *arg)
{
    if (code < CLI_OPT_DATA || code >= CLI_OPT_DATA_END) return 0;
    if (f->n == (int)(sizeof f->code / sizeof f->code[0])) cli_usage_error("too many data flags");
    f->code[f->n] = code;
    f->arg[f->n++] = code == CLI_OPT_STRICT ? "1" : arg;
    return 1;
}

void cli_data_flag_first(cli_data_flags *f, int code, const char *arg)
{
    if (f->n == (int)(sizeof f->code / sizeof f->code[0])) cli_usage_error("too many data flags");
    memmove(f->code + 1, f->code, (size_t)f->n * sizeof f->code[0]);
    memmove(f->arg + 1, f->arg, (size_t)f->n * sizeof f->arg[0]);
    f->code[0] = code;
    f->arg[0] = arg;
    f->n++;
}

void cli_data_apply(const cli_data_flags *f, lb_data_opts *o)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < f->n; i++) {
            int k = f->code[i] - CLI_OPT_DATA;
            int is_preset = f->code[i] == CLI_OPT_PRESET;
            if (is_preset != (pass == 0)) continue;
            int rc = is_preset ? lb_data_preset_load(o, f->arg[i], cli_data_dir())
                               : lb_data_opts_set(o, data_keys[k], f->arg[i]);
            if (rc != LB_OK) {
                /* a preset file that cannot be read is a runtime error, a bad value a usage one */
                if (is_preset && rc == LB_EIO) cli_fatal("--preset: %s", lb_last_error());
                cli_usage_error("--%s: %s", data_flag_names[k], lb_last_error());
            }
        }
}

void cli_data_from_checkpoint(const lb_checkpoint *ck, lb_data_opts *o, int model_input)
{
    static const char *const keys[][2] = {{"data", "data"}, {"imbalance", "imbalance"}, {"order", "order"},
                                          {"classes", "classes"}, {"val", "val"}, {"test", "test"},
                                          {"channels", "channels"}, {"size", "size"}, {"data_seed", "seed"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = lb_checkpoint_get(ck, keys[i][0]);
        /* 0 channels / 0x0 size / no classes mean "the source's own" and are not values to set */
        if (!v || !*v || !strcmp(v, "0x0") || (!strcmp(keys[i][0], "channels") && !strcmp(v, "0"))) continue;
        if (lb_data_opts_set(o, keys[i][1], v) != LB_OK) cli_fatal("checkpoint's data options: %s", lb_last_error());
    }
    /* the size and channels the model was built for, when they were chosen from the data (a
     * resumed run makes the same choices itself, and compares its options as they were given) */
    int c, h, w;
    const char *in = lb_checkpoint_get(ck, "input");
    if (model_input && in && sscanf(in, "%dx%dx%d", &c, &h, &w) == 3) {
        if (!o->channels) o->channels = c;
        if (!o->height) {
            o->height = h;
            o->width = w;
        }
    }
}

/* "0.286,0.1" -> up to max floats; returns how many were read (0 on a bad number). */
static int parse_floats(const char *s, float *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        out[n++] = strtof(s, &end);
        if (end == s) return 0;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int cli_checkpoint_norm(const lb_checkpoint *ck, int c, float *mean, float *std)
{
    return parse_floats(lb_checkpoint_get(ck, "norm_mean"), mean, 3) == c &&
           parse_floats(lb_checkpoint_get(ck, "norm_std"), std, 3) == c;
}

int cli_checkpoint_counts(const lb_checkpoint *ck, int *counts, int n)
{
    const char *tc = lb_checkpoint_get(ck, "train_counts");
    for (int k = 0; k < n && tc; k++) {
        counts[k] = (int)strtol(tc, (char **)&tc, 10);
        if (*tc == ',') tc++;
    }
    return tc != NULL;
}

int cli_checkpoint_classes(const lb_checkpoint *ck, const char **names, int max)
{
    const char *n = lb_checkpoint_get(ck, "n_classes");
    int C = n ? atoi(n) : 0;
    if (C < 1 || C > max) cli_fatal("the checkpoint does not record its classes (n_classes '%s')", n ? n : "");
    for (int k = 0; k < C; k++) {
        char key[32];
        snprintf(key, sizeof key, "class.%d", k);
        if (!(names[k] = lb_checkpoint_get(ck, key))) cli_fatal("the checkpoint does not record class %d's name", k);
    }
    return C;
}

void cli_check_classes(const lb_checkpoint *ck, const lb_split *sp, const char *what)
{
    int same = 1;
    for (int k = 0; k < sp->n_classes && same; k++) {
        char key[32];
        snprintf(key, sizeof key, "class.%d", k);
        const char *v = lb_checkpoint_get(ck, key);
        same = v && !strcmp(v, sp->class_names[k]);
    }
    const char *n = lb_checkpoint_get(ck, "n_classes");
    if (same && n && atoi(n) == sp->n_classes) return;
    fprintf(stderr, "%s: %s: the model was trained on the classes", cli_prog, what);
    int C = n ? atoi(n) : 0;
    for (int k = 0; k < C && k < 10000; k++) {
        char key[32];
        snprintf(key, sizeof key, "class.%d", k);
        const char *v = lb_checkpoint_get(ck, key);
        fprintf(stderr, "%s %s", k ? "," : "", v ? v : "?");
    }
    fprintf(stderr, " but the data has");
    for (int k = 0; k < sp->n_classes; k++) fprintf(stderr, "%s %s", k ? "," : "", sp->class_names[k]);
    fprintf(stderr, " (see --classes)\n");
    cli_exit(CLI_EXIT_RUNTIME);
}

void cli_print_header(FILE *out, uint64_t seed, int threads, const char *extra)
{
    fprintf(out, "%s %s | seed %llu | threads %d%s%s\n", cli_prog, lb_version(), (unsigned long long)seed, threads,
            extra && *extra ? " | " : "", extra ? extra : "");
}

/* ---- output directories ---- */

/* How many skipped files are named on the terminal; the rest are counted (and the first 64
 * are in the program's JSON output). */
#define CLI_SKIPPED_SHOWN 5

/* "  train  Healthy 160, Diseased 8 (168)" */
static void split_line(FILE *out, const char *what, const lb_split *sp, const int *counts, int total)
{
    fprintf(out, "  %-5s", what);
    for (int k = 0; k < sp->n_classes; k++) fprintf(out, "%s %s %d", k ? "," : "", sp->class_names[k], counts[k]);
    fprintf(out, " (%d)\n", total);
}

void cli_print_data(FILE *out, const lb_data *d)
{
    const lb_split *sp = &d->split;
    fprintf(out, "data: %s | %d classes, images %dx%dx%d | imbalance %s | split seed %llu\n", d->train->source,
            sp->n_classes, d->train->c, d->train->h, d->train->w, sp->profile, (unsigned long long)sp->seed);
    split_line(out, "train", sp, sp->train_counts, sp->n_train);
    split_line(out, "val", sp, sp->val_counts, sp->n_val);
    split_line(out, "test", sp, sp->test_counts, sp->n_test);
}

lb_data *cli_data_load(const lb_data_opts *o, int quiet)
{
    lb_data *d = lb_data_new(o);
    if (!d) cli_fatal("data: %s", lb_last_error());
    if (!quiet) {
        for (int i = 0; i < d->info.n_kept; i++) fprintf(stderr, "%s: %s\n", cli_prog, d->info.msg[i]);
        cli_print_data(stderr, d);
    }
    cli_print_warnings(&d->warnings, d->n_skipped);
    return d;
}

void cli_print_warnings(const lb_notes *w, int n_skipped)
{
    int n_other = w->n - n_skipped, shown = 0;
    for (int i = 0; i < w->n_kept && i < n_other; i++) fprintf(stderr, "%s: warning: %s\n", cli_prog, w->msg[i]);
    if (n_skipped > 0) {
        fprintf(stderr, "%s: warning: %d image file%s skipped (--strict makes this an error):\n", cli_prog, n_skipped,
                n_skipped == 1 ? "" : "s");
        for (int i = n_other; i < w->n_kept && shown < CLI_SKIPPED_SHOWN; i++, shown++)
            fprintf(stderr, "  %s\n", w->msg[i]);
        if (n_skipped > shown) fprintf(stderr, "  and %d more\n", n_skipped - shown);
    }
}

void cli_check_dir_writable(const char *flag, const char *value, const char *dir)
{
    size_t n = strlen(dir) + 64;
    char *p = malloc(n);
    if (!p) cli_fatal("out of memory");
    snprintf(p, n, "%s/.libra-write-test-%ld", dir, (long)getpid());
    if (lb_write_file_atomic(p, "ok\n", 3) != LB_OK)
        cli_fatal("%s %s: cannot write in '%s': %s", flag, value, dir, lb_last_error());
    unlink(p);
    free(p);
}
