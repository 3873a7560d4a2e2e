/* Helpers shared by the libra-* programs: flag values with clear errors, the data flags,
 * the run header, the progress display and a small JSON writer.
 *
 * Conventions of every program: a bad flag or value prints "PROG: --flag: problem" and
 * exits 2; a runtime error (file, data, numeric) prints "PROG: message" and exits 1;
 * progress goes to stderr, results to stdout. */
#ifndef LIBRA_EXAMPLES_CLI_H
#define LIBRA_EXAMPLES_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "libra/data.h"
#include "libra/metrics.h"
#include "libra/train.h"

#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2

/* The program name used in messages (set once by cli_init from argv[0]). cli_init also
 * restarts the program with OPENBLAS_NUM_THREADS=1 when that is not already set, so that
 * OpenBLAS never starts a thread pool of its own (see cli.c). */
extern const char *cli_prog;
void cli_init(char **argv);

/* exit(status), after the function set by cli_on_exit (one at most; NULL: none). Every exit of
 * the cli_* helpers below goes through it, so a program can act on how it ends (libra-train
 * under mpirun ends the whole job when a failure may leave other ranks waiting). */
void cli_exit(int status) __attribute__((noreturn));
void cli_on_exit(void (*fn)(int status));

/* "PROG: message\nTry 'PROG --help'." on stderr, exit 2. */
void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* "PROG: message" on stderr, exit 1. */
void cli_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The message of the last library error, exit 1. */
void cli_fatal_lib(const char *context) __attribute__((noreturn));

/* Flag values: on a bad value they exit 2 with "--flag: 'x' is not a number" or
 * "--flag: 7 is outside [lo, hi]". `flag` is the flag's name, with or without its dashes. */
long cli_long(const char *flag, const char *s, long lo, long hi);
double cli_double(const char *flag, const char *s, double lo, double hi);
uint64_t cli_u64(const char *flag, const char *s);
/* The error for an option getopt_long refused (unknown flag, missing value): exit 2. */
void cli_bad_option(void) __attribute__((noreturn));

/* ---- data flags, shared by every program that reads a dataset ----
 * --data SPEC, --imbalance SPEC, --order SPEC, --channels N, --size HxW, --preset NAME,
 * --val-fraction F, --test-fraction F, --data-seed N, --strict, --classes LIST. */
enum {
    CLI_OPT_DATA = 1000,
    CLI_OPT_IMBALANCE,
    CLI_OPT_ORDER,
    CLI_OPT_CHANNELS,
    CLI_OPT_SIZE,
    CLI_OPT_PRESET,
    CLI_OPT_VAL,
    CLI_OPT_TEST,
    CLI_OPT_DATA_SEED,
    CLI_OPT_STRICT,
    CLI_OPT_CLASSES,
    CLI_OPT_DATA_END
};
#define CLI_DATA_LONGOPTS                                                                   \
    {"data", required_argument, 0, CLI_OPT_DATA},                                           \
        {"imbalance", required_argument, 0, CLI_OPT_IMBALANCE},                             \
        {"order", required_argument, 0, CLI_OPT_ORDER},                                     \
        {"channels", required_argument, 0, CLI_OPT_CHANNELS},                               \
        {"size", required_argument, 0, CLI_OPT_SIZE},                                       \
        {"preset", required_argument, 0, CLI_OPT_PRESET},                                   \
        {"val-fraction", required_argument, 0, CLI_OPT_VAL},                                \
        {"test-fraction", required_argument, 0, CLI_OPT_TEST},                              \
        {"data-seed", required_argument, 0, CLI_OPT_DATA_SEED},                             \
        {"strict", no_argument, 0, CLI_OPT_STRICT},                                         \
        {"classes", required_argument, 0, CLI_OPT_CLASSES}
extern const char cli_data_help[];

/* Data flags are collected first and applied together, so that a --preset gives defaults
 * that the other flags override whatever their order. */
typedef struct cli_data_flags {
    int n;
    int code[32];
    const char *arg[32];
} cli_data_flags;
/* Records the flag if `code` is a data flag (returns 1), else returns 0. */
int cli_data_flag(cli_data_flags *f, int code, const char *arg);
/* Records a data flag before all others (a default that the given flags override). */
void cli_data_flag_first(cli_data_flags *f, int code, const char *arg);
/* The folder whose datasets/ holds the presets (see cli.c). */
const char *cli_data_dir(void);
/* Applies the recorded flags to o (a --preset first); bad values exit 2 naming the flag. */
void cli_data_apply(const cli_data_flags *f, lb_data_opts *o);
/* The data options recorded in a checkpoint (data, imbalance, order, classes, val, test,
 * channels, size, data seed), as defaults for o; exit 1 if one does not parse. model_input:
 * also the size and channels of the model's input where those were chosen from the data. */
void cli_data_from_checkpoint(const lb_checkpoint *ck, lb_data_opts *o, int model_input);
/* The normalisation a checkpoint's model was trained with (norm_mean, norm_std: c floats
 * each); 0 if the checkpoint lacks them. */
int cli_checkpoint_norm(const lb_checkpoint *ck, int c, float *mean, float *std);
/* The training counts a checkpoint records (train_counts) into counts[0..n); 0 (counts
 * untouched) if it records none. */
int cli_checkpoint_counts(const lb_checkpoint *ck, int *counts, int n);
/* The checkpoint's class names (class.0 ...) into names[0..n) (borrowed), n = n_classes;
 * exit 1 if they are missing. */
int cli_checkpoint_classes(const lb_checkpoint *ck, const char **names, int max);
/* Exit 1 unless the checkpoint's classes (names, in order) are the split's, naming both lists. */
void cli_check_classes(const lb_checkpoint *ck, const lb_split *sp, const char *what);

/* Loads the data (exit 1 with "data: message" on failure) and prints on stderr, even with
 * --quiet, what the user must know about it: each class without test or validation
 * images, what an imbalance profile could not do, and the count of skipped image files with
 * the first few and their reasons. Unless quiet, then what loading chose (size, channels,
 * resizing, the validation split) and the data line: source, profile, image shape, and
 * every split's counts by class name. */
lb_data *cli_data_load(const lb_data_opts *o, int quiet);
/* On stderr: the warnings of w, the last n_skipped of which are skipped files (counted, the
 * first few named). */
void cli_print_warnings(const lb_notes *w, int n_skipped);
/* The data line(s) of cli_data_load. */
void cli_print_data(FILE *out, const lb_data *d);

/* ---- optimizer and model-keeping flags, shared by libra-train and libra-compare ----
 * --optimizer NAME, --lr X, --momentum X, --nesterov, --weight-decay X, --clip X,
 * --schedule SPEC, --keep best|last, --patience N, --eval-every N. */
enum {
    CLI_OPT_OPTIMIZER = 1100,
    CLI_OPT_LR,
    CLI_OPT_MOMENTUM,
    CLI_OPT_NESTEROV,
    CLI_OPT_WD,
    CLI_OPT_CLIP,
    CLI_OPT_SCHEDULE,
    CLI_OPT_KEEP,
    CLI_OPT_PATIENCE,
    CLI_OPT_EVAL_EVERY
};
#define CLI_TRAIN_LONGOPTS                                                                   \
    {"optimizer", required_argument, 0, CLI_OPT_OPTIMIZER},                                 \
        {"lr", required_argument, 0, CLI_OPT_LR},                                           \
        {"momentum", required_argument, 0, CLI_OPT_MOMENTUM},                               \
        {"nesterov", no_argument, 0, CLI_OPT_NESTEROV},                                     \
        {"weight-decay", required_argument, 0, CLI_OPT_WD},                                 \
        {"clip", required_argument, 0, CLI_OPT_CLIP},                                       \
        {"schedule", required_argument, 0, CLI_OPT_SCHEDULE},                               \
        {"keep", required_argument, 0, CLI_OPT_KEEP},                                       \
        {"patience", required_argument, 0, CLI_OPT_PATIENCE},                               \
        {"eval-every", required_argument, 0, CLI_OPT_EVAL_EVERY}
extern const char cli_train_help[];
/* Applies the flag to o if `code` is one of these (returns 1), else returns 0; a bad
 * value exits 2 naming the flag. */
int cli_train_flag(lb_train_opts *o, int code, const char *arg);
/* After every flag: exit 2 if --keep best / --patience cannot choose (no validation
 * monitor) ; fills the optimizer's default learning rate in for the header. */
void cli_train_check(lb_train_opts *o);

/* ---- output ---- */
/* "libra-train 0.1.0 | seed 42 | threads 1 | <extra>" */
void cli_print_header(FILE *out, uint64_t seed, int threads, const char *extra);

/* Progress of a training run on stderr: on a terminal a one-line bar redrawn in place
 * (at most ~10 times a second), otherwise a plain line every `every` steps; nothing
 * when quiet. */
typedef struct cli_progress {
    int quiet, tty;
    long every;
    double last_draw;
    int drawn;   /* a bar is on screen (needs a newline before other output) */
} cli_progress;
void cli_progress_init(cli_progress *p, int quiet, long every);
void cli_progress_step(cli_progress *p, const lb_train_progress *t);
/* Ends the bar's line and prints the epoch summary line. */
void cli_progress_epoch(cli_progress *p, const lb_train_progress *t);
void cli_progress_clear(cli_progress *p);

/* ---- output directories: checked before any training, so a typo costs seconds ---- */
/* Exits 1 ("FLAG VALUE: cannot write in 'DIR': ...") unless a file can be written in dir
 * (missing, not a directory, no permission, read-only or full file system). */
void cli_check_dir_writable(const char *flag, const char *value, const char *dir);

#endif
