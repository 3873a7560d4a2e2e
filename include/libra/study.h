/* libra study: the imbalance study, as a library. A study trains the same network under
 * each strategy on the same split, with the same budget and several seeds, and reports what
 * each strategy bought. It is three things:
 *   a plan     the list of jobs (a loss, a sampler, a seed: a grid point of a strategy),
 *              each a plain value; grids are tuned on the first seed, then the chosen point
 *              runs on the others (phase 1, choice, phase 2);
 *   one job    run in isolation: job in, run record out (lb_study_run_job); no globals, no
 *              terminal; the record is stored as OUT/runs/<job>.json (and its curve as
 *              OUT/curves/<job>.csv), which --resume reads back;
 *   the result the records aggregated into OUT/results.json, results.csv and report.html.
 * Where jobs run is a scheduler's business (libra/dist.h: in-process, forked, MPI).
 *
 *   lb_study_config c;
 *   lb_study_config_init(&c);
 *   c.strategies = "ce;focal:gamma=1|2;ce@oversample";  c.out_dir = "results/x";
 *   c.data = &data_opts;  c.train.steps = 300;
 *   if (lb_study_check(&c) != LB_OK) ...           // bad usage, found before data is loaded
 *   lb_data *d = lb_data_new(&data_opts);
 *   lb_study *st = lb_study_new(&c, d);            // the plan; the output folder checked
 *   lb_scheduler sched = lb_scheduler_fork(2);     // libra/dist.h
 *   int rc = lb_study_execute(st, &sched);         // every job, grids chosen on validation
 *   if (rc == LB_OK) rc = lb_study_write(st);      // results.json, results.csv, report.html
 *   lb_study_free(st);
 *
 * A strategy is LOSS[@SAMPLER][~MIX][+STAGE...][+posthoc]:
 *   ce, wce:weights=inverse, focal:gamma=2, ce@oversample, ce@smote, ldam:drw=0.8~remix,
 *   ce@balanced~mixup, ce+crt, ce+taunorm, ce+posthoc
 * (the mix may come before the sampler too: ce~mixup@balanced is ce@balanced~mixup),
 * and `oracle`: ce on a class-balanced training set of the same total size drawn from the
 * same source (the ceiling; each strategy's gap_recovered is measured against it)
 * and the aliases `undersample` / `oversample` / `balanced` / `sqrt` / `progressive` / `smote`
 * / `borderline_smote` / `adasyn` / `ros_noise` mean ce with that sampler. Stages (lb_stage,
 * libra/train.h) and +posthoc are variants of the same trained model: each is scored beside
 * it, and they share its training run. A loss value written with '|' is a grid: focal:gamma=0.5|1|2 has three
 * points, each trained and judged by validation balanced accuracy. Strategies that differ
 * only in how they are written (ce and ce@shuffle, focal and focal:gamma=2) are the same
 * strategy and are refused as duplicates. A job is identified by its training key
 * LOSS@SAMPLER[~MIX] and seed: `+posthoc` and the stages only add variants of the same model. */
#ifndef LIBRA_STUDY_H
#define LIBRA_STUDY_H

#include <signal.h>

#include "libra/report.h"
#include "libra/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== strategies */

typedef struct lb_strategy {
    char *spec;       /* as written, aliases expanded: "ce@oversample" */
    char *loss;       /* the loss part, possibly a grid: "focal:gamma=1|2" */
    char *sampler;    /* the sampler part: "shuffle" when none is given */
    char *mix;        /* the mixing part (~mixup, ~remix): canonical, NULL when none */
    char *stages;     /* the stages (+crt, +taunorm, ...): canonical names joined by '+', NULL when none */
    int posthoc;      /* +posthoc: report prior correction and logit adjustment too */
    int n_points;     /* grid points of the loss (1 without a grid) */
    char **points;    /* each point's loss spec, in order */
    int oracle;       /* 1 "oracle": ce trained on a class-balanced training set of the same total size
                         from the same source (lb_balanced_profile), the ceiling every strategy's
                         gap_recovered is measured against; 2 "oracle_full": ce on the largest
                         balanced set the source has (lb_full_balanced_profile) */
} lb_strategy;

/* Parses one strategy. Errors (empty parts, an unknown suffix, a malformed grid) name the
 * strategy. The loss and sampler specs themselves are checked by lb_strategy_check. */
int lb_strategy_parse(lb_strategy *out, const char *text);
void lb_strategy_free(lb_strategy *s);
/* The strategy in canonical form (every grid point's loss canonical, the sampler canonical,
 * +posthoc): two strategies are the same exactly when their keys are equal. Checks the loss
 * and sampler names and keys (no data needed). */
int lb_strategy_key(const lb_strategy *s, lb_buf *out);
/* Creates (and frees) every grid point's loss and the sampler once, so a misspelt value is
 * reported before hours of training rather than in the middle. Same as
 * lb_strategy_check_named(s, n_classes, class_counts, NULL). */
int lb_strategy_check(const lb_strategy *s, int n_classes, const int *class_counts);
/* The same with the classes' names (n_classes strings, or NULL), so that a loss's per-class
 * list may be given by class name (lb_loss_new_named). */
int lb_strategy_check_named(const lb_strategy *s, int n_classes, const int *class_counts,
                            const char *const *class_names);

/* Splits a --strategies list into strategies. ';' always separates. A ',' separates only
 * where the next part starts a strategy: it begins with a letter and has no '=' before a
 * ':' (so "focal:gamma=2,alpha=0.25,ce@oversample" is two strategies, and the commas inside
 * "wce:weights=1,2,4" stay in it). *items is an array of n strings (lb_free each, then it). */
int lb_strategy_split(const char *list, char ***items, int *n);

/* Expands '|' alternatives in the values of a spec "name:k1=a|b,k2=c|d" into the cartesian
 * product, in order (the last key varies fastest). A spec without '|' gives itself. */
int lb_grid_expand(const char *spec, char ***points, int *n);

/* The default strategies of a study (a NULL-terminated list), and them joined by ';'. */
extern const char *const lb_default_strategies[];
const char *lb_default_strategy_list(void);

/* "focal:gamma=2@shuffle" -> a file-name-safe slug; buf of size >= 8. */
const char *lb_slug(const char *s, char *buf, size_t size);

/* ======================================================================== one job */

/* Trains one model (o with loss, sampler and seed set by the caller; o->monitor should be
 * LB_MONITOR_VAL so the record has its validation curve) on `data`, then fills rec:
 * strategy = "LOSS@SAMPLER", seed, steps, wall seconds, images/s, the test metrics,
 * the loss and validation curves, and both post-hoc variants computed from the same model's
 * test logits: "prior_correction" (softmax / prior, renormalised: the same as logit
 * adjustment with tau = 1) and "logit_adjust" with tau chosen from {0, 0.25, ..., 3} by
 * validation balanced accuracy (tau = 1 when there is no validation split).
 * hooks (may be NULL) are passed through to lb_train_run. */
int lb_study_run_one(const lb_train_opts *o, const lb_data *data, const lb_train_hooks *hooks, double target_recall,
                     lb_run_record *rec);

/* Binary tasks: the default recall of the rare class whose operating point (the threshold
 * chosen on the validation split) each record carries, and the report marks. */
#define LB_STUDY_TARGET_RECALL 0.95

/* The validation balanced accuracy of a record's model: the last point of its val curve, or
 * with keep_best the best point (the kept model's); NaN if it has none. */
float lb_run_record_val_bacc(const lb_run_record *rec, int keep_best);

/* ======================================================================== the study */

/* What a study is: strategies, seeds, the training options every run shares, the data it
 * was opened from, and where it writes. Strings are borrowed. */
typedef struct lb_study_config {
    const char *strategies;       /* NULL: the default strategies */
    int seeds;                    /* seeds per strategy (default 5) */
    uint64_t seed0;               /* runs use seeds seed0, seed0 + 1, ... (default 1) */
    lb_train_opts train;          /* shared options (loss, sampler and seed are set per job);
                                     defaults: steps 1500, eval every steps/10, Adam 1e-3,
                                     threads 1, monitor on validation */
    const lb_data_opts *data;     /* what the data was opened from (settings, flags) */
    const char *out_dir;          /* default results/study */
    int resume;                   /* reuse the finished runs in out_dir (same settings) */
    int force;                    /* replace a study of other settings in out_dir */
    double target_recall;         /* binary tasks: the rare class's recall of each run's operating
                                     point, chosen on validation (default LB_STUDY_TARGET_RECALL) */
    int shard, n_shards;          /* a share of the study (--only I/N: shard = I - 1, n_shards = N):
                                     only the jobs with index % n_shards == shard run here; the
                                     other shards' records are read from the shared output folder,
                                     which this study never empties (n_shards <= 1: every job) */
    int worker;                   /* a rank of a study across ranks that only runs the jobs handed
                                     to it (lb_dist_serve): the output folder is never touched, and
                                     lb_study_store refuses (rank 0 writes every file) */
} lb_study_config;

void lb_study_config_init(lb_study_config *c);
/* Everything that can be checked without data: the strategy list (parse, names and keys of
 * every loss and sampler, duplicates), the architecture spec, the budget. LB_EINVAL with a
 * message naming the strategy or option. */
int lb_study_check(const lb_study_config *c);

/* One job of the plan. */
typedef struct lb_job {
    int index;           /* position in the plan */
    char *loss;          /* a grid point's loss spec */
    char *sampler;
    char *mix;           /* NULL: none */
    char *stages;        /* every stage any strategy of this training run asks for ('+'-joined), or NULL */
    uint64_t seed;
    int oracle;          /* trained on a balanced training set: 1 oracle, 2 oracle_full (0: the study's) */
    char *name;          /* file stem: <slug of LOSS@SAMPLER>-s<seed>, or oracle-s<seed> */
    int done;            /* its record is stored */
} lb_job;

typedef struct lb_study lb_study;

/* The study's plan for `data` (which it borrows): strategies parsed and checked against the
 * data's classes, the settings every run shares (including a fingerprint of the data), and
 * the output folder: created (and removed again by lb_study_free if nothing was stored in
 * it), and refused when it holds a study of other settings unless c->force (which removes
 * that study's files) or c->resume with the same settings. NULL with the status stored. */
lb_study *lb_study_new(const lb_study_config *c, const lb_data *data);
void lb_study_free(lb_study *st);

/* Progress, for a program to print (any may be NULL). */
typedef struct lb_study_events {
    void *ctx;
    /* jobs reused from an earlier run of the study (--resume) */
    void (*on_reused)(void *ctx, int n);
    /* a job finished: its record, how many are done of how many planned so far */
    void (*on_job)(void *ctx, const lb_job *job, const lb_run_record *rec, int done, int total, double seconds);
    /* a grid's point was chosen by validation balanced accuracy */
    void (*on_grid)(void *ctx, const lb_strategy *s, int chosen, float val_bacc);
    /* something worth saying that is not an error (a record unreadable, so run again) */
    void (*on_note)(void *ctx, const char *message);
} lb_study_events;

void lb_study_set_events(lb_study *st, const lb_study_events *ev);
/* A flag (set by a signal handler) that stops the study: no job starts once it is set, and
 * lb_study_execute returns LB_EINTR; finished jobs stay stored. */
void lb_study_set_stop(lb_study *st, volatile sig_atomic_t *flag);
int lb_study_stopping(const lb_study *st);
/* An extra flag recorded in results.json (e.g. how the study was scheduled). */
int lb_study_set_flag(lb_study *st, const char *key, const char *value);

/* The settings every run of the study shares (as written to OUT/runs/settings.txt). */
const char *lb_study_settings(const lb_study *st);
/* 1 if `settings` are the study's; else 0 with the first difference in diff ("steps: '40'
 * there, '41' here"). */
int lb_study_same_settings(const lb_study *st, const char *settings, char *diff, size_t size);
/* The plan, for a program to print: phase 1's jobs (index, seed, training run, stages, the
 * strategies it serves, whether its record is stored, and with shards the shard that runs
 * it), then a line saying what phase 2 adds once the grids are chosen. */
int lb_study_plan(const lb_study *st, lb_buf *out);
/* A shard (n_shards > 1) that could not plan phase 2: how many of the grids' phase-1 records
 * (other shards' jobs) were missing when lb_study_execute ended (0: none, phase 2 ran). */
int lb_study_deferred(const lb_study *st);

int lb_study_n_strategies(const lb_study *st);
const lb_strategy *lb_study_strategy(const lb_study *st, int i);
const lb_data *lb_study_data(const lb_study *st);
const char *lb_study_out_dir(const lb_study *st);

/* ---- schedulers: where the jobs of a phase run ---- */
typedef struct lb_scheduler {
    const char *name;    /* "serial", "fork", ... */
    int width;           /* jobs at once */
    void *ctx;
    /* Runs todo[0..n): each job's lb_study_run_job and lb_study_store somewhere, then, in
     * this process, lb_study_job_done. Starts no job once lb_study_stopping(st). Returns
     * LB_OK, LB_EINTR when stopped, or the first failure (with its message). */
    int (*run)(void *ctx, lb_study *st, lb_job *const *todo, int n);
} lb_scheduler;

/* One job in this process: job in, record out (initialised here). */
int lb_study_run_job(const lb_study *st, const lb_job *job, lb_run_record *rec);
/* The same with training hooks (NULL: none), e.g. a scheduler that answers other ranks
 * between steps; a hook that stops the run leaves a record of a shortened run, which the
 * caller must not store. */
int lb_study_run_job_hooked(const lb_study *st, const lb_job *job, const lb_train_hooks *hooks,
                            lb_run_record *rec);
/* Stores a job's record and curve under the output folder (atomically). */
int lb_study_store(lb_study *st, const lb_job *job, const lb_run_record *rec);
/* Marks a stored job done and reports it (the record is read back for the event). */
int lb_study_job_done(lb_study *st, lb_job *job, double seconds);

/* Runs the plan with `sched`: the jobs not already stored (with resume), then each grid's
 * choice and the chosen points' other seeds. A shard runs only its own jobs of each phase,
 * and plans phase 2 only if every grid's phase-1 records are stored (its own and the other
 * shards'); otherwise it reports the missing ones (on_note, lb_study_deferred) and returns
 * LB_OK without results: run the shard again once the others' phase 1 is done. */
int lb_study_execute(lb_study *st, const lb_scheduler *sched);

/* ---- the result ---- */
/* The records of every strategy and seed, aggregated (valid once lb_study_execute
 * succeeded; built on first use). */
const lb_results *lb_study_results(lb_study *st);
/* results.json, results.csv and report.html in the output folder. */
int lb_study_write(lb_study *st);
/* Appends the terminal summary: per strategy (and post-hoc variant) balanced accuracy's mean
 * over seeds with its 95% t-interval, minority recall's mean and standard deviation, macro-F1,
 * and, when every run has its predictions file, the difference from the baseline with its
 * paired-bootstrap interval (10,000 resamples over test images and seeds, seed 2026) and which
 * lines are not distinguishable from the best (docs/metrics.md). */
int lb_study_summary(lb_study *st, lb_buf *out);

/* ======================================================================== dense studies */

/* A dense study (docs/dense.md): each strategy trained on the same generated canvases
 * (lb_data of a "dense:" source) with the same budget and seeds; records in OUT/runs/<name>.json
 * (lb_dense_record), then OUT/results.json, results.csv and report.html (lb_dense_report_write).
 * A strategy is LOSS or LOSS+noprior (the head's bias left at zero instead of the prior); a loss
 * value written a|b|c gives one strategy per point, every point reported (a reproduction study
 * reads the whole table; nothing is chosen). One-vs-all losses (bce, sigmoid_focal, cb_focal)
 * get C sigmoid outputs; every other loss a softmax over C + 1 with the background last. */
typedef struct lb_dense_study_config {
    const char *strategies;   /* NULL: lb_dense_default_strategies */
    int seeds;                /* [3] */
    uint64_t seed0;           /* [1] runs use seeds seed0, seed0 + 1, ... */
    lb_train_opts train;      /* shared options; loss and seed are set per job. arch [NULL: the
                                 stride's lb_dense_default_trunk], batch [32], steps [600], threads [1] */
    double prior;             /* [0.01] pi of the head's prior for the strategies without +noprior */
    int n_maps;               /* [4] test canvases whose heat maps each record keeps and the report shows */
    const lb_data_opts *data; /* what the data was opened from (settings) */
    const char *out_dir;      /* [results/dense] */
    int resume, force;        /* reuse the stored runs (same settings); replace another study's */
    int shard, n_shards;      /* run only the jobs with index % n_shards == shard (n_shards <= 1: all) */
} lb_dense_study_config;

typedef struct lb_dense_study lb_dense_study;

typedef struct lb_dense_study_events {
    void *ctx;
    void (*on_job)(void *ctx, const char *name, const lb_dense_record *rec, int done, int total, double seconds);
} lb_dense_study_events;

extern const char *const lb_dense_default_strategies[];
const char *lb_dense_default_strategy_list(void);
void lb_dense_study_config_init(lb_dense_study_config *c);
/* The strategies (parsed, every loss canonical, duplicates refused), seeds, budget, prior. */
int lb_dense_study_check(const lb_dense_study_config *c);
/* The same, and every strategy's loss made with d's classes and training-location counts (a
 * value a loss refuses, a per-class list of the wrong length). */
int lb_dense_study_check_data(const lb_dense_study_config *c, const lb_data *d);
/* The plan for d (borrowed) and the output folder: created; refused when it holds an earlier
 * study, unless resume or a share (n_shards > 1) with the same settings (its records are
 * reused) or force (its run records are removed). NULL with the status stored. */
lb_dense_study *lb_dense_study_new(const lb_dense_study_config *c, const lb_data *d);
void lb_dense_study_free(lb_dense_study *st);
int lb_dense_study_n_jobs(const lb_dense_study *st);
/* Which jobs lb_dense_study_run runs: index % n_shards == shard (n_shards <= 1: all). */
void lb_dense_study_set_share(lb_dense_study *st, int shard, int n_shards);
int lb_dense_study_n_strategies(const lb_dense_study *st);
const char *lb_dense_study_trunk(const lb_dense_study *st);
/* Runs this share's jobs that have no record, storing each (atomically) as it ends. Stops
 * before the next job once *stop is set (LB_EINTR); stored runs stay. */
int lb_dense_study_run(lb_dense_study *st, const lb_dense_study_events *ev, volatile sig_atomic_t *stop);
/* Reads every job's record (an error names a missing one) and writes the results files;
 * summary (may be NULL) gets the terminal table (lb_dense_summary_text). */
int lb_dense_study_write(lb_dense_study *st, lb_buf *summary);

#ifdef __cplusplus
}
#endif
#endif
