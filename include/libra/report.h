/* libra report: the results of a study (dataset, flags, one record per strategy x seed run)
 * and its writers: results.json, results.csv, a self-contained report.html, plus one run
 * record alone as JSON (written when a run finishes, read back by --resume).
 *
 * Formats: docs/formats.md. Every writer builds the whole file in memory, writes it to a
 * temporary file in the target's directory, fsyncs it and renames it over the target, so a
 * reader never sees a half-written file. Every real number is a float printed with %.9g
 * (which reads back to the same float); NaN and infinities are written as null and read
 * back as NaN. Strings are stored as given (UTF-8 expected) and escaped for each format.
 *
 * Ownership: every char* and array below belongs to its struct and is released by the
 * matching _free (allocated with lb_malloc). Fill the structs with the helpers below or
 * directly with lb_malloc'd memory.
 *
 *   lb_results r;
 *   lb_results_init(&r);
 *   lb_results_set_dataset(&r, "fmnist", "longtail:100", 1, C, names, train, val, test);
 *   lb_results_take_run(&r, &record);                 // one per strategy x seed
 *   lb_report_write_json(&r, "out/results.json");     // and _csv, _html
 *   lb_results_free(&r);
 */
#ifndef LIBRA_REPORT_H
#define LIBRA_REPORT_H

#include "libra/base.h"
#include "libra/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_kv {
    char *key, *value;
} lb_kv;

/* What the models were trained and tested on. */
typedef struct lb_dataset_info {
    char *source;  /* e.g. "idx:/usr/share/datasets/fashion-mnist" */
    char *profile; /* imbalance profile spec, e.g. "exp:ratio=100" */
    uint64_t split_seed;
    int n_classes;
    char **class_names;                               /* [n_classes] */
    int *train_counts, *val_counts, *test_counts; /* [n_classes] */
    lb_notes warnings; /* about the data as loaded (lb_data.warnings) */
    int n_skipped;     /* of those, image files skipped */
} lb_dataset_info;

/* One point of a strategy's tuning grid and its validation balanced accuracy. */
typedef struct lb_grid_point {
    char *spec;
    float val_balanced_accuracy;
} lb_grid_point;

/* Metrics of the same trained model after a post-hoc correction, or after a stage that
 * re-balances its classifier (two-stage: crt, lws, taunorm, fsmote). */
typedef struct lb_posthoc_result {
    char *name; /* e.g. "prior_correction", "logit_adjust", "crt" */
    float tau;  /* the correction's strength (NaN if it has none) */
    int64_t start_step; /* a stage: the training step of the model it started from (-1: not a stage) */
    int64_t steps;      /* a stage: its classifier steps (-1: not a stage) */
    lb_metrics metrics;
} lb_posthoc_result;

/* A run's test predictions, for anyone to re-score (OUT/runs/<run>.predictions.csv, whose
 * columns are index,label,pred,logit_0..logit_{C-1} and one pred_<variant> per post-hoc or
 * stage variant; docs/formats.md). Row i is the i-th image of the test split. */
typedef struct lb_predictions {
    int n, n_classes, n_variants;
    int *label, *pred;  /* [n]; pred: the row-argmax of the logits */
    float *logits;      /* [n * n_classes], the model's */
    char **variant;     /* [n_variants] names, e.g. "logit_adjust", "crt" */
    int *variant_pred;  /* [n_variants][n]: each variant's predicted class */
} lb_predictions;

/* Copies logits [n, C] and labels [n]; pred is their row-argmax. LB_EINVAL, LB_ENOMEM. */
int lb_predictions_set(lb_predictions *p, const float *logits, const int *labels, int n, int C);
/* Adds a variant's predictions: the row-argmax of its scores [n, C] (logits or
 * probabilities). name: printable ASCII without space, comma or quote (e.g. "fsmote:k=3"),
 * not yet used. */
int lb_predictions_add_variant(lb_predictions *p, const char *name, const float *scores);
void lb_predictions_free(lb_predictions *p);
/* The CSV text; written through a temporary file (lb_buf_write). */
int lb_predictions_to_csv(const lb_predictions *p, lb_buf *out);
int lb_predictions_write_csv(const lb_predictions *p, const char *path);
/* Reads what lb_predictions_to_csv wrote: LB_EFORMAT naming the file, line and cell of what
 * is wrong (a header not index,label,pred,logit_0.., a row with another cell count, an index
 * out of order, a label or prediction outside [0, C), a logit that is not a number). */
int lb_predictions_parse_csv(lb_predictions *p, const char *text, size_t len, const char *name);
int lb_predictions_read_csv(lb_predictions *p, const char *path);

/* One (strategy, seed) run. */
/* A curve of (x, y) points: precision-recall (x recall, y precision) or ROC (x false
 * positive rate, y true positive rate). */
typedef struct lb_xy {
    size_t n;
    float *x, *y;
} lb_xy;

/* A binary task's operating point: the threshold on the rare class's probability that
 * reaches the target recall on the validation split (lb_threshold_for_recall), and what it
 * gives on the validation and test splits. */
typedef struct lb_operating_point {
    int set;
    int positive;  /* the class: the one with fewer training images (a tie: class 1) */
    float target_recall, threshold;
    float val_recall, val_precision, test_recall, test_precision;
} lb_operating_point;

typedef struct lb_run_record {
    char *strategy; /* the full spec, e.g. "focal:gamma=2" */
    uint64_t seed;
    int64_t steps;
    float wall_seconds, images_per_sec;
    lb_metrics metrics; /* on the test split */
    lb_curve loss;      /* training loss at logged steps */
    lb_curve val_bacc;  /* validation balanced accuracy at evaluation points */
    size_t n_grid;
    lb_grid_point *grid; /* the tuning grid, if the strategy has one */
    int grid_chosen;     /* index into grid of the chosen point; -1 if none */
    size_t n_posthoc;
    lb_posthoc_result *posthoc;
    lb_xy pr, roc;              /* binary tasks: the test curves of the rare class (at most 101 points) */
    lb_operating_point op;      /* binary tasks with a validation split */
    lb_notes warnings;          /* what the run could not do as asked (lb_train_result.warnings) */
    int rank;                   /* the MPI rank that trained it (a study across ranks); -1: not recorded */
    char *predictions;          /* its predictions file relative to the study's folder, e.g.
                                   "runs/ce@shuffle_s1.predictions.csv" ("predictions"; NULL: none) */
    lb_predictions pred;        /* the predictions themselves, while the run is in memory (not in
                                   the JSON: the study stores them in that file) */
    char *profile;              /* the imbalance profile of the study it belongs to, e.g. "longtail:100"
                                   ("profile"; NULL: not recorded) */
} lb_run_record;

/* One line of a study's summary: a strategy's model (variant NULL) or one of its variants,
 * over its seeds (docs/metrics.md, "Intervals"). */
typedef struct lb_summary_row {
    char *profile;       /* the imbalance profile of its runs */
    char *strategy;
    char *variant;       /* NULL: the trained model itself */
    int n_seeds;
    double bacc, bacc_lo, bacc_hi; /* balanced accuracy: mean over seeds, 95% t-interval (NaN: 1 seed) */
    double minority_recall, minority_recall_sd, macro_f1; /* means (and the sd) over seeds */
    int has_diff;        /* the paired bootstrap against the baseline ran (every run has predictions) */
    double diff, diff_lo, diff_hi; /* mean difference from the baseline and its 95% bootstrap interval */
    int diff_excludes_zero;
    int best;            /* the highest mean of its profile */
    int same_as_best;    /* not distinguishable from the best: its difference's interval includes 0 */
    double gap_recovered; /* (bacc - baseline) / (oracle - baseline); NaN without an oracle */
} lb_summary_row;

typedef struct lb_results {
    char *title;    /* NULL: "libra imbalance study" */
    char *baseline; /* strategy the summary table compares against; NULL: "ce" */
    lb_dataset_info dataset;
    lb_metrics_opts metrics_opts; /* the shot-group thresholds the report shows (defaults
                                     from lb_results_init; set them as the metrics used) */
    size_t n_flags;
    lb_kv *flags; /* the command-line flags, in order */
    size_t n_runs;
    lb_run_record *runs;
    size_t n_summary;
    lb_summary_row *summary;   /* per strategy and variant (lb_results_add_summary) */
    int boot_resamples;        /* of the paired bootstrap (0: none ran) */
    uint64_t boot_seed;
    char *oracle_profile;      /* the balanced training set of the `oracle` strategy (NULL: none) */
    char *oracle_note;         /* what it is: the same total size, or the largest the source has */
    char *oracle_full_profile; /* the same for the oracle_full strategy (NULL: none) */
    char *oracle_full_note;
} lb_results;

/* ---- JSON output: the writer of every libra JSON file ----
 *   lb_buf b = {0};  lb_jw w;  lb_jw_init(&w, &b);
 *   lb_jw_object(&w, NULL, 0);                 // a block object: members on lines of their own
 *   lb_jw_string(&w, "program", "libra-train");
 *   lb_jw_metrics(&w, &metrics);               // the metric set's members, keys from the field table
 *   lb_jw_end(&w, '}');  lb_buf_puts(&b, "\n");  lb_buf_write(&b, path);
 * Reals are floats printed %.9g (NaN and infinities as null); keys are NULL inside arrays. */
typedef struct lb_jw {
    lb_buf *out;
    int depth, level;          /* open containers; enclosing block containers */
    int count[32];             /* members written in each open container */
    unsigned char is_inline[32];
} lb_jw;

void lb_jw_init(lb_jw *w, lb_buf *out);
/* Opens an object or array (inline != 0: items on the current line, ", " between them). */
void lb_jw_object(lb_jw *w, const char *key, int inline_);
void lb_jw_array(lb_jw *w, const char *key, int inline_);
void lb_jw_end(lb_jw *w, char close);   /* close: '}' or ']' */
void lb_jw_string(lb_jw *w, const char *key, const char *s);   /* NULL: null */
void lb_jw_float(lb_jw *w, const char *key, double v);
void lb_jw_int(lb_jw *w, const char *key, int64_t v);
void lb_jw_bool(lb_jw *w, const char *key, int v);
void lb_jw_uint(lb_jw *w, const char *key, uint64_t v);
void lb_jw_floats(lb_jw *w, const char *key, const float *v, size_t n);   /* an inline array */
void lb_jw_ints(lb_jw *w, const char *key, const int *v, size_t n);
/* The members of a metric set (n_classes, n, every field of lb_metric_fields, the per-class
 * arrays and the confusion matrix) into the current object. */
void lb_jw_metrics(lb_jw *w, const lb_metrics *m);
/* Warnings as {"count": N, "messages": [...]} (the kept ones). */
void lb_jw_notes(lb_jw *w, const char *key, const lb_notes *n);
/* s as a quoted JSON string with ", \ and control characters escaped. */
void lb_jw_raw_string(lb_buf *b, const char *s);

/* ---- building ---- */
void lb_results_init(lb_results *s);
void lb_results_free(lb_results *s);
/* Copies everything. class_names may be NULL ("0", "1", ...); val/test counts may be NULL (0). */
int lb_results_set_dataset(lb_results *s, const char *source, const char *profile, uint64_t split_seed,
                         int n_classes, const char *const *class_names, const int *train_counts,
                         const int *val_counts, const int *test_counts);
/* Copies the warnings about the data (call after lb_results_set_dataset). */
int lb_results_set_warnings(lb_results *s, const lb_notes *warnings, int n_skipped);
/* Sets (or replaces) a flag. */
int lb_results_set_flag(lb_results *s, const char *key, const char *value);
/* Moves *r into the study (r is left initialised and empty). */
int lb_results_take_run(lb_results *s, lb_run_record *r);
/* Appends a copy of *row (its strings copied). */
int lb_results_add_summary(lb_results *s, const lb_summary_row *row);
void lb_summary_row_free(lb_summary_row *row);
/* The row of (profile, strategy, variant), or NULL (profile NULL: any). */
const lb_summary_row *lb_results_summary_row(const lb_results *s, const char *profile, const char *strategy,
                                             const char *variant);

void lb_run_record_init(lb_run_record *r);
void lb_run_record_free(lb_run_record *r);
int lb_run_record_set_strategy(lb_run_record *r, const char *spec);
int lb_run_record_add_grid(lb_run_record *r, const char *spec, float val_balanced_accuracy);
/* Moves *m into the record (m is left empty). */
int lb_run_record_add_posthoc(lb_run_record *r, const char *name, float tau, lb_metrics *m);
/* The same for a stage's variant, with where it started and its classifier steps. */
int lb_run_record_add_stage(lb_run_record *r, const char *name, float tau, int64_t start_step, int64_t steps,
                            lb_metrics *m);
/* The variant of that name, or NULL. */
const lb_posthoc_result *lb_run_record_variant(const lb_run_record *r, const char *name);

/* ---- one run record as JSON (for --resume, and as the message of a study across ranks) ---- */
int lb_run_record_write_json(const lb_run_record *r, const char *path);
/* The same text appended to out (what lb_run_record_write_json writes). */
int lb_run_record_to_json(const lb_run_record *r, lb_buf *out);
/* Reads what lb_run_record_write_json wrote, exactly. r is initialised here; on error it is
 * left empty and the message names the file, line and column. */
int lb_run_record_read_json(lb_run_record *r, const char *path);
/* The same from text[0..n) (what lb_run_record_to_json made); `name` stands for the file in
 * messages. */
int lb_run_record_parse_json(lb_run_record *r, const char *text, size_t n, const char *name);

/* The summary rows as a terminal table, grouped by profile: balanced accuracy's mean over
 * seeds with its 95% t-interval, minority recall's mean and sd, macro-F1, the difference from
 * the baseline with its bootstrap interval ('*': it excludes 0), gap_recovered when there is
 * an oracle, "(best)", and "= best" for the lines not distinguishable from the best. */
int lb_results_summary_text(const lb_results *s, lb_buf *out);

/* ---- the study's files ---- */
int lb_report_write_json(const lb_results *s, const char *path);
/* One row per run and variant: the raw metrics ("raw") and each post-hoc correction, the
 * run's profile first. */
int lb_report_write_csv(const lb_results *s, const char *path);
/* summary.csv: one row per summary line (lb_summary_row), the profile first. */
int lb_report_write_summary_csv(const lb_results *const *parts, int n, const char *path);
int lb_report_write_html(const lb_results *s, const char *path);

/* ---- a sweep: one study per imbalance profile, each in its own folder ----
 * parts[i] is profile i's results, dirs[i] its folder relative to the sweep's (e.g.
 * "longtail-100"). results.json holds every record (its "profile", and its predictions path
 * relative to the sweep's folder) and every summary line; results.csv every run of every
 * profile; report.html the balanced accuracy against the profile's ratio per strategy, the
 * table of every profile, and a link to each profile's own report. */
int lb_sweep_write_json(const lb_results *const *parts, const char *const *dirs, int n, const char *path);
int lb_sweep_write_csv(const lb_results *const *parts, int n, const char *path);
/* The sweep's terminal table: per strategy and variant, each profile's balanced accuracy and
 * (with an oracle) gap_recovered. */
int lb_sweep_summary_text(const lb_results *const *parts, int n, lb_buf *out);
int lb_sweep_write_html(const lb_results *const *parts, const char *const *dirs, int n, const char *path);

/* ======================================================================== dense tasks */

/* One run of a dense task (lb_dense_train, libra/train.h; docs/dense.md), as stored by a dense
 * study in OUT/runs/<name>.json. */
typedef struct lb_dense_record {
    char *strategy;               /* the study's name for it: LOSS, or LOSS+noprior (NULL outside a study) */
    char *loss_spec;              /* the loss spec, canonical */
    uint64_t seed;
    double prior;                 /* as given (0: off) */
    int n_classes;                /* object classes C */
    int one_vs_all;               /* K = C sigmoid outputs (else a softmax over C + 1) */
    long total_steps, steps;      /* the budget, and the steps done */
    long diverged_step;           /* 0, or the step at which training stopped on a non-finite value */
    char diverged_reason[256];
    double train_seconds, wall_seconds, images_per_second;
    double foreground_share;      /* of the training canvases' locations */
    double test_foreground_share;
    double mean_ap, image_mean_ap;   /* on the test canvases (NaN when diverged) */
    double *ap, *image_ap;        /* [n_classes]: per class, location and image level */
    float final_loss;             /* mean of the last log window */
    lb_curve loss;                /* mean training loss of each log window (o->log_every) */
    lb_curve val_map;             /* validation mean AP at each evaluation point */
    int n_maps, grid_h, grid_w;
    float *maps;                  /* [n_maps, n_classes, grid_h, grid_w]: probabilities */
    uint64_t param_hash;
} lb_dense_record;

void lb_dense_record_free(lb_dense_record *r);
/* The record as JSON (docs/formats.md), and back; reading checks every field's type and names
 * the file, line and field of a problem. */
int lb_dense_record_to_json(const lb_dense_record *r, lb_buf *out);
int lb_dense_record_write_json(const lb_dense_record *r, const char *path);
int lb_dense_record_read_json(lb_dense_record *r, const char *path);

/* What a dense study's results files say besides the records (borrowed). */
typedef struct lb_dense_report_info {
    const char *data, *settings, *trunk;
    int n_classes;
    const char *const *class_names;
    int seeds;
    double foreground_share, test_foreground_share;
    int n_maps, c, h, w, grid_h, grid_w;   /* the first n_maps test canvases, for the heat maps: */
    const uint8_t *pixels;                 /* [n_maps, c, h, w] */
    const int *targets;                    /* [n_maps, grid_h, grid_w] in [0, n_classes] */
} lb_dense_report_info;

/* One strategy over its runs (the records with its name, in order of first appearance):
 * the means and 95% t-intervals (lb_mean_ci95) of mean AP and image mean AP over the runs that
 * did not diverge, how many did. */
typedef struct lb_dense_summary_row {
    const char *strategy, *loss;   /* borrowed from the first record */
    double prior;
    int runs, diverged;
    double map, map_lo, map_hi, image_map, image_map_lo, image_map_hi, final_loss, images_per_second;
} lb_dense_summary_row;
/* rows: room for n; *n_rows gets how many strategies there are. */
int lb_dense_summarise(const lb_dense_record *recs, int n, lb_dense_summary_row *rows, int *n_rows);
/* DIR/results.json, DIR/results.csv (one row per run) and DIR/report.html (summary table, mean
 * AP with intervals, loss and validation curves, heat maps of the best strategy's first run
 * beside the truth), each written atomically. */
int lb_dense_report_write(const lb_dense_record *recs, int n, const lb_dense_report_info *info, const char *dir);
/* The terminal table: per strategy mean AP and image mean AP with intervals, diverged runs. */
int lb_dense_summary_text(const lb_dense_record *recs, int n, lb_buf *out);

#ifdef __cplusplus
}
#endif
#endif
