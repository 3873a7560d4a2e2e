/* libra train: the training step, evaluation, checkpoints, and a whole training run as a
 * plain-data job (options in, result out).
 *
 * Three levels, each usable alone:
 *   lb_trainer_step   one step on a batch you provide (zero grads, forward, loss, backward,
 *                     optimizer step); allocates nothing once the graph's arena is warm.
 *   lb_predict        logits of a list of images, batched, eval mode, no gradient.
 *   lb_train_run      the job: data -> split -> sampler -> model -> loss -> loop ->
 *                     test metrics, with hooks for progress, epoch-end validation and
 *                     checkpoints. The study runner runs many of these.
 *
 * Nothing here prints: progress reaches the caller through hooks. */
#ifndef LIBRA_TRAIN_H
#define LIBRA_TRAIN_H

#include "libra/data.h"
#include "libra/layers.h"
#include "libra/metrics.h"
#include "libra/optim.h"
#include "libra/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== the step */

/* The loss as a callback: a scalar node from logits [N, C] and targets [N]. step and
 * total_steps let a loss change with training (e.g. deferred re-weighting). lb_train_run
 * uses the losses module's lb_loss_forward, which has this shape with ctx = the lb_loss. */
typedef lb_node *(*lb_loss_fn)(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step,
                              long total_steps);

/* The ranks of a data-parallel run (implemented by libra/dist.h's MPI layer; NULL: this
 * process alone). With `size` ranks (a power of two dividing the shards), rank r computes the
 * shards [r S/size, (r+1) S/size), sums them in the pairwise tree of their block, then
 * tree_sum adds the ranks' block sums in the pairwise tree over rank index, so every rank
 * ends with the same total as one process summing all S shards in one tree. */
typedef struct lb_reducer {
    void *ctx;
    int rank, size;
    /* x [n] in place: the sum over ranks, in the fixed pairwise tree over rank index
     * (lb_tree_step's schedule, each node lb_tree_add(x, received)), on every rank. LB_OK, or
     * a status with its message stored (the trainer then stops with it). Every rank calls it
     * once per step, with the same n, even a rank whose own shards failed (it sends NaN). */
    int (*tree_sum)(void *ctx, float *x, size_t n);
    /* 1 when every rank holds the same n bytes (a parameter hash check); 0 otherwise; a
     * negative status (message stored) when it could not tell. Called by every rank at the
     * same points. */
    int (*same_everywhere)(void *ctx, const void *bytes, size_t n);
} lb_reducer;

/* The loss of one shard of a batch, normalised over the whole batch (lb_trainer_set_shards):
 * logits [n, C] of the batch's rows [lo, lo + n), targets the whole batch's n_batch labels.
 * lb_train_run's is lb_loss_forward_denom with the batch's lb_loss_denominators. */
typedef lb_node *(*lb_shard_loss_fn)(void *ctx, lb_graph *g, lb_node *logits, const int *targets, int lo,
                                     int n_batch, long step, long total_steps);

typedef struct lb_trainer {
    lb_model *model;        /* borrowed */
    lb_optim *optim;        /* owned */
    lb_schedule schedule;   /* lr as a function of optim->step */
    lb_loss_fn loss_fn;
    void *loss_ctx;
    lb_graph *graph;        /* owned, reused by every step */
    long total_steps;       /* the run's budget, passed to the loss */
    float loss;             /* loss of the last step */
    double lr;              /* learning rate of the last step */
    int nan_check;          /* 1 (default): refuse non-finite gradients and parameters */
    /* data parallel (lb_trainer_set_shards; shards 1 and no reducer: the plain step) */
    int shards;
    const lb_reducer *reducer;
    lb_shard_loss_fn shard_loss_fn;   /* called with loss_ctx */
    lb_tree_acc acc, acc_loss;        /* this rank's block of shards: gradients and losses */
    float *reduce_buf;                /* [n_params + 1] with ranks: gradient and loss */
    struct lb_shard_worker *workers;  /* the threads' shards (trainer.c) */
    int n_workers;
} lb_trainer;

/* sched NULL: constant at cfg->lr. */
lb_trainer *lb_trainer_new(lb_model *m, const lb_optim_config *cfg, const lb_schedule *sched,
                           lb_loss_fn loss_fn, void *loss_ctx, long total_steps);
void lb_trainer_free(lb_trainer *t);
/* One step on x [n, in_c, in_h, in_w] with targets y [n] (both read, not kept past the
 * call): graph reset, forward in training mode, loss, zero grads, backward, optimizer step
 * at lr = schedule(optim->step). Messages count steps from 1 ("step N" is the N-th step).
 * A non-finite loss is LB_ENUMERIC and leaves the parameters and optimizer untouched
 * (batchnorm's running statistics have moved). With t->nan_check (the default), so is a
 * NaN or Inf in the gradient, checked before the update, naming the first parameter tensor
 * affected in model order ("step 7: non-finite gradient in conv2d_1.weight"); an update
 * that makes a parameter or running statistic non-finite is LB_ENUMERIC too, but the
 * parameters have changed by then. */
int lb_trainer_step(lb_trainer *t, float *x, const int *y, int n);
/* Data-parallel steps (docs/distributed.md): each batch of n is split into `shards` shards,
 * shard s the images [floor(s n / S), floor((s+1) n / S)) (B/S each when S divides n; an empty
 * shard adds a zero gradient); this rank (r of K = reducer->size, or 0 of 1 without one)
 * computes the gradients of shards [r S/K, (r+1) S/K) (forward, loss_fn over the whole batch's
 * denominator, backward), T = min(lb_get_threads(), S/K) at a time, each on one thread (so the
 * bits do not depend on the thread count; a rank with one shard uses one core), sums them in
 * shard order in the fixed pairwise tree (lb_tree_acc),
 * then reducer->tree_sum adds the K block sums (and the shards' losses, in the same tree) on
 * every rank, so the gradient and loss are bitwise those of one process with the same S.
 * Dropout: each step takes one draw k from the model's RNG, and shard s draws its masks from
 * lb_rng_derive(k, s) (keyed by the shard, not the rank). Then the step goes on as
 * lb_trainer_step's (non-finite checks, clipping, the optimizer). shards must be a power of two;
 * K a power of two <= shards; loss_fn is required unless shards = K = 1, which restores the
 * plain step (bitwise lb_trainer_step's). A model with batch norm is refused (LB_EINVAL naming
 * the layer) with shards > 1: its statistics are of the whole batch, until synchronised batch
 * norm exists. Memory: log2(S/K) gradient-sized buffers (none for one shard per rank), one
 * more with K > 1, and T - 1 more graphs (one shard's activations each) and gradient buffers;
 * a step allocates nothing once warm (below 257 classes). On failure (LB_EINVAL, LB_ENOMEM) the
 * trainer is left taking plain steps. */
int lb_trainer_set_shards(lb_trainer *t, int shards, const lb_reducer *reducer, lb_shard_loss_fn loss_fn);
/* With a reducer of K > 1 ranks: LB_OK when every rank holds the same parameters and
 * buffers (a hash compared by reducer->same_everywhere), else LB_ESTATE naming the step. */
int lb_trainer_check_ranks(lb_trainer *t);

/* ======================================================================== evaluation */

/* Logits of the images idx[0..n) of b->ds, in batches of b->max_batch, in evaluation mode
 * with gradients off (g is reset before each batch; afterwards the model's mode is
 * restored and g records gradients again). logits: n * lb_model_n_outputs(m) floats. */
int lb_predict(lb_model *m, lb_graph *g, lb_batcher *b, const int *idx, int n, float *logits);

/* ======================================================================== checkpoints */

/* Everything needed to resume a run or rebuild its model. File format (docs/training.md):
 * a 32-byte header (magic "LIBRACKP", version, payload size, CRC32 of the payload), then
 * tagged little-endian sections. Strings describing the run are key/value pairs (meta). */
typedef struct lb_checkpoint {
    int n_meta, cap_meta;
    char **meta_key, **meta_val;
    size_t n_params;
    float *params;          /* model->params->data */
    size_t n_state;
    float *state;           /* model->state (batchnorm running statistics) */
    int has_optim;
    int optim_kind;         /* lb_optim_kind */
    int optim_k;            /* state floats per parameter: 0, 1 (m) or 2 (m, v) */
    long optim_step;
    float *optim_m, *optim_v;
    long step;              /* training steps done */
    lb_rng model_rng;       /* the model's dropout RNG */
    lb_rng data_rng;        /* the run's augmentation RNG */
    lb_curve loss;          /* the loss curve so far */
    double window_sum;      /* losses of the steps after the last curve point, */
    long window_n;          /* so a resumed curve continues exactly */
    long best_step;         /* keep best: the step of the kept parameters (-1: none) */
    float *best_params;     /* [n_params] and [n_state]: the kept model, which */
    float *best_state;      /* lb_model_new_checkpoint builds (the others resume) */
    int n_val, val_classes; /* the validation split's labels and logits of the model for */
    int *val_labels;        /* use (the kept one under keep best), written at the end of a */
    float *val_logits;      /* run: libra-predict chooses operating points on them */
} lb_checkpoint;

void lb_checkpoint_init(lb_checkpoint *c);
void lb_checkpoint_free(lb_checkpoint *c);
/* Sets (or replaces) a meta value; a value may not contain a NUL. */
int lb_checkpoint_set(lb_checkpoint *c, const char *key, const char *value);
/* The value of key, or NULL. */
const char *lb_checkpoint_get(const lb_checkpoint *c, const char *key);
/* Copies the model's parameters and buffers (and the optimizer's state if o is not NULL)
 * into c, and records meta "arch", "input" (CxHxW), "n_outputs" and "layout". */
int lb_checkpoint_capture(lb_checkpoint *c, const lb_model *m, const lb_optim *o, long step);
/* Copies c back into the model (and optimizer, if both have one). Refuses, naming both
 * values, a checkpoint of another architecture (arch, input, outputs or parameter layout)
 * or of another optimizer kind. */
int lb_checkpoint_restore(const lb_checkpoint *c, lb_model *m, lb_optim *o);
/* A new model built from c's meta with c's parameters (the kept best ones when c has
 * them), in evaluation mode. */
lb_model *lb_model_new_checkpoint(const lb_checkpoint *c);
/* Writes c to path through a temporary file in the same directory (fsync, rename). */
int lb_checkpoint_write(const lb_checkpoint *c, const char *path);
/* Reads path into c (initialised here). Errors (LB_EIO, LB_EFORMAT) name the file and
 * say what is wrong: not a checkpoint (magic), unsupported version, truncated, CRC
 * mismatch, or a malformed section. */
int lb_checkpoint_read(lb_checkpoint *c, const char *path);


/* ======================================================================== the job */

typedef enum { LB_MONITOR_NONE = 0, LB_MONITOR_VAL, LB_MONITOR_TEST } lb_monitor;

/* Options of one run. Strings are borrowed (not freed by libra); NULL means the default
 * given in brackets. lb_train_opts_init sets every default. */
typedef struct lb_train_opts {
    const char *arch;        /* [smallcnn] lb_model_build spec */
    const char *init;        /* [default] lb_init_parse name */
    int prior_bias;          /* [0] set the last bias to log(prior) from the training counts */
    const char *optimizer;   /* [adam] sgd | adam | adamw */
    double lr;               /* [< 0: the optimizer's default] */
    double momentum;         /* [0.9 for sgd when < 0] */
    int nesterov;            /* [0] */
    double weight_decay;     /* [< 0: the optimizer's default] */
    double clip_norm;        /* [0 = off] */
    const char *schedule;    /* [constant] lb_schedule_parse spec */
    int batch;               /* [64] */
    int epochs;              /* [3] used when steps == 0 */
    long steps;              /* [0] total step budget; > 0 overrides epochs */
    const char *loss;        /* [ce] losses module spec */
    const char *sampler;     /* [shuffle] data module sampler spec */
    lb_augment augment;      /* [off] */
    uint64_t seed;           /* [1] init, dropout, sampling order, augmentation */
    int threads;             /* [0 = leave as is] lb_set_threads */
    int eval_batch;          /* [256] */
    lb_monitor monitor;      /* [none] evaluate at each epoch end on val or test */
    long log_every;          /* [10] a loss-curve point (mean of the window) every N steps */
    long eval_every;         /* [0] monitor (and on_epoch) at each epoch end; > 0: every N steps
                                and at the last step instead (undersampled epochs are short) */
    const char *save;        /* [none] checkpoint written at the end (and every save_every) */
    long save_every;         /* [0 = only at the end] */
    const char *resume;      /* [none] checkpoint to continue; steps/epochs are the total */
    int nan_check;           /* [1] stop at a non-finite gradient or parameter (lb_trainer_step) */
    int keep_best;           /* [0] keep the parameters of the evaluation point with the best
                                validation balanced accuracy (needs monitor = val); the test
                                metrics, val logits and checkpoint's BEST section are of them */
    int patience;            /* [0 = off] stop after this many evaluation points without a
                                better validation balanced accuracy (needs monitor = val) */
    const char *mix;         /* [none] batch mixing: lb_mix_parse spec ("mixup:alpha=1", "remix") */
    const char *stages;      /* [none] two-stage re-balancing of the classifier after training,
                                '+'-separated lb_stage_parse specs ("crt+taunorm"); each starts
                                from the trained model and is scored beside it (result->stages) */
    int shards;              /* [1] data-parallel shards of each batch (divides batch): the
                                gradient is the sum of the shards' gradients in a fixed pairwise
                                tree over the shard index, so the result depends on shards, never
                                on how many ranks or threads computed them (docs/distributed.md) */
    const struct lb_reducer *reducer;  /* [NULL: one rank] the ranks sharing the shards */
} lb_train_opts;

void lb_train_opts_init(lb_train_opts *o);
/* The data-parallel options of o (checked again, with the data's model, by lb_train_run):
 * shards a power of two dividing o->batch, o->reducer's size a power of two <= shards, and,
 * when m is given (any model of o->arch), no batch norm layer when shards > 1. LB_EINVAL
 * names the value at fault. */
int lb_train_check_shards(const lb_train_opts *o, const lb_model *m);

/* Every setting of o (and of the data options; without them, of the opened data) that
 * changes what a run computes, as "key=value" lines, the optimizer's defaults resolved and
 * the loss in its canonical form. A checkpoint records them with LB_SETTINGS_JOB (loss,
 * sampler, seed) and a resumed run must match each; a study's runs share them with
 * LB_SETTINGS_BUDGET (architecture, step budget, evaluation points, threads). */
enum { LB_SETTINGS_JOB = 1, LB_SETTINGS_BUDGET = 2 };
int lb_train_settings(const lb_train_opts *o, const lb_data_opts *dopts, const lb_data *d, int what, lb_buf *out);

/* Passed to every hook. */
typedef struct lb_train_progress {
    long step;              /* steps done so far */
    long total_steps;
    long start_step;        /* > 0 when resumed */
    int epoch;              /* 0-based epoch of the last step */
    int epochs;             /* total epochs (the last may be partial under a step budget) */
    long steps_per_epoch;
    float loss;             /* of the last step */
    double loss_avg;        /* mean loss since the epoch began */
    double lr;
    double images_per_second;  /* over this run's steps so far */
    double elapsed;         /* seconds of training so far in this run */
    double eta;             /* seconds to the end of the budget, estimated */
    float monitor_acc;      /* on_epoch with a monitor: accuracy and balanced accuracy */
    float monitor_bacc;     /* (NaN otherwise) */
} lb_train_progress;

/* Optional callbacks (any may be NULL). A nonzero return from on_step or on_epoch stops
 * the run early (it still saves and evaluates, and result->stopped is set). */
typedef struct lb_train_hooks {
    void *ctx;
    /* Before the first step: the model (for its summary) and the data. */
    void (*on_start)(void *ctx, const lb_model *m, const lb_data *d, const lb_train_progress *p);
    int (*on_step)(void *ctx, const lb_train_progress *p);
    int (*on_epoch)(void *ctx, const lb_train_progress *p);   /* see eval_every */
    void (*on_checkpoint)(void *ctx, const char *path, long step);
} lb_train_hooks;

typedef struct lb_train_result {
    uint64_t seed;
    int shards, ranks;      /* o->shards, and the reducer's size (1 without one) */
    uint64_t param_hash;    /* lb_model_hash of the model scored (the kept one under keep best) */
    long steps;             /* total steps done (including those before a resume) */
    long start_step;        /* where this run began (0, or the checkpoint's step) */
    int epochs;             /* epochs begun */
    int stopped;            /* a hook asked to stop, or patience ran out */
    int stopped_patience;   /* patience ran out */
    long best_step;         /* the step of the best validation balanced accuracy (-1: none) */
    float best_val_bacc;    /* and that balanced accuracy */
    double wall_seconds;    /* the whole job: data, training, evaluation */
    double train_seconds;   /* the steps of this run only */
    double images_per_second;  /* training images per train_seconds */
    float final_loss;       /* mean loss over the last log window */
    int n_classes;
    lb_metrics test;        /* on the test split */
    int n_test;
    float *test_logits;     /* [n_test, n_classes], for post-hoc corrections */
    int *test_labels;       /* [n_test] */
    int n_val;
    float *val_logits;      /* [n_val, n_classes]: for choosing post-hoc corrections */
    int *val_labels;        /* [n_val] */
    lb_curve loss;          /* mean training loss of each log window */
    lb_curve monitor_acc;   /* accuracy and balanced accuracy at each evaluation point */
    lb_curve monitor_bacc;  /* (with a monitor; see eval_every) */
    int n_stages;           /* o->stages: one result per stage, in order */
    struct lb_stage_result *stages;
    lb_notes warnings;      /* what the run could not do as asked (a synthetic sampler's class
                               with too few images to find k neighbours, ...); never printed here */
} lb_train_result;

void lb_train_result_free(lb_train_result *r);

/* ======================================================================== two-stage */

/* Re-balancing only the classifier (Kang et al. 2020, "Decoupling representation and
 * classifier"): the model's last layer must be a dense layer (the classifier) reading the
 * penultimate features [F]. Features are computed once per split with the network frozen
 * (evaluation mode, no augmentation); only the classifier changes, every other parameter and
 * buffer is left bitwise as it was.
 *   crt[:steps=N]    re-initialise the classifier (PyTorch's Linear init) and train it alone
 *                    with plain cross-entropy on the training features, class-balanced
 *                    sampler, N full batches of the run's batch size, the run's optimizer
 *                    (kind, lr, momentum, weight decay, clipping) at a constant learning rate
 *   lws[:steps=N]    keep the classifier, learn one scale s_c per class of its logits
 *                    (s * (W f + b), s from 1) the same way, then fold it in: W_c, b_c *= s_c
 *   taunorm          w_c / |w_c|^tau, bias dropped, tau chosen on validation balanced accuracy
 *                    from {0, 0.1, ..., 2}, the first of equals (no validation split: tau = 1);
 *                    tau = 0 leaves W bitwise as it was (the bias is still dropped)
 *   fsmote[:k=5,steps=N]  SMOTE (lb_synth_plan_rows, "smote:k=K") on the training features,
 *                    every class up to the largest, then the classifier re-trained as crt
 *                    does, on that balanced set with a plain shuffle
 * N = 0 (the default) is 10% of the run's step budget (at least 1). The steps are counted in
 * the budget: lb_train_run starts the stage from the model as it was at step budget - N (the
 * kept best one up to that step, with keep best), so base + stage = the budget. */
typedef enum { LB_STAGE_CRT = 0, LB_STAGE_LWS, LB_STAGE_TAUNORM, LB_STAGE_FSMOTE } lb_stage_kind;

/* The most stages one run takes. */
#define LB_MAX_STAGES 8

typedef struct lb_stage {
    lb_stage_kind kind;
    long steps;          /* crt, lws, fsmote: classifier steps (0: 10% of the budget) */
    int k;               /* fsmote: neighbours (default 5) */
    char name[64];       /* canonical: the kind and every key that differs from its default */
} lb_stage;

/* Parses one stage spec ("crt", "crt:steps=200", "taunorm", "fsmote:k=3"); LB_EINVAL names
 * an unknown stage, key or value (steps: a whole number >= 0; k: a whole number >= 1). */
int lb_stage_parse(lb_stage *out, const char *spec);
/* Splits a '+'-separated list into stages (at most max; *n gets how many). Duplicates (the
 * same canonical name twice), an empty item and more than max stages are LB_EINVAL (*n = 0).
 * NULL, "" and "none" are no stages. */
int lb_stage_parse_list(const char *list, lb_stage *out, int max, int *n);
/* The classifier steps of s in a run of `budget` steps: s->steps, or 10% of the budget (at
 * least 1) when it is 0; 0 for taunorm, which takes no steps. */
long lb_stage_steps(const lb_stage *s, long budget);

/* What one stage made: the re-balanced model's logits on the test and validation splits. */
typedef struct lb_stage_result {
    char name[64];       /* the stage's canonical name */
    long start_step;     /* the training step of the model it started from (lb_stage_run
                            leaves 0: lb_train_run sets it) */
    long steps;          /* classifier steps it took */
    float tau;           /* taunorm: the chosen tau (1 without a validation split); NaN
                            for the other stages */
    int n_test, n_val;
    float *test_logits;  /* [n_test, C]: W f + b of the re-balanced classifier on the */
    float *val_logits;   /* [n_val, C]    features (accumulated in double) */
    lb_notes warnings;   /* what it could not do as asked (fsmote: a class of <= k rows) */
} lb_stage_result;

void lb_stage_result_free(lb_stage_result *r);

/* Runs stage s on model m (its classifier is changed in place; the caller restores it if it
 * needs the model again): features of d's training, validation and test splits through g
 * (in batches of o->eval_batch; g's training mode is restored and g reset afterwards), then
 * the stage. o gives the batch size, optimizer settings, nan_check and eval batch; seed the
 * stage's random choices (stream LB_STREAM_STAGE: the classifier's init, its sampler and
 * SMOTE's draws); steps the classifier steps (lb_stage_steps(s, budget); at least 1 but for
 * taunorm, which ignores it). out is initialised here; on failure it is empty and m is
 * unchanged (the new classifier is written only once everything has succeeded). Memory: the
 * features of the three splits ((n_train + n_val + n_test) x F floats) and, for fsmote, the
 * resampled training features. */
int lb_stage_run(const lb_stage *s, lb_model *m, lb_graph *g, const lb_data *d, const lb_train_opts *o,
                 uint64_t seed, long steps, lb_stage_result *out);

/* Runs one job. data: an opened dataset to train on (NULL: opened here from data_opts);
 * data_opts: the specs it came from (recorded in checkpoints; may be NULL if data is
 * given). hooks may be NULL. result is initialised here and filled even when a step
 * fails halfway (steps done so far); free it with lb_train_result_free. */
int lb_train_run(const lb_train_opts *o, const lb_data_opts *data_opts, const lb_data *data,
                 const lb_train_hooks *hooks, lb_train_result *result);

/* ======================================================================== dense tasks */

/* One training run of a dense task (docs/dense.md) on d->dense (lb_data_new of a "dense:"
 * source): an FCN of trunk o->arch (a layer list ending in the stride's grid; see
 * lb_dense_default_trunk) with a 3x3 head (lb_model_new_fcn), K = C sigmoid outputs for a
 * one-vs-all loss (bce, sigmoid_focal, cb_focal), else a softmax over C + 1 with the background
 * last; the loss o->loss per location, divided by the batch's foreground count
 * (lb_loss_forward_dense); prior > 0 sets the head's bias so that every class starts at
 * probability prior (lb_model_prior_bias_dense; 0: the initialiser's zero bias). Batches of
 * o->batch canvases in a new shuffled order each epoch (from o->seed's sampler stream); Adam (or
 * o->optimizer) for o->steps steps; validation mean AP every o->eval_every steps; then AP on the
 * test canvases and the class probabilities of the first n_maps of them. A non-finite loss or
 * gradient ends training at that step (diverged_step, and the metrics are NaN): a result of
 * the run, not an error. res (libra/report.h) gets everything but the strategy, which is the
 * caller's. Options for classification only (samplers, mixing, stages, keep best,
 * shards, checkpoints) are refused. Errors name the option or the shapes at fault. */

int lb_dense_train(const lb_train_opts *o, const lb_data *d, double prior, int n_maps, const lb_train_hooks *hooks,
                   lb_dense_record *res);
/* The default trunk for a stride (a power of two): log2(stride) blocks conv 3x3 + ReLU + 2x2
 * pool of 8, 16, 32, 32, 64... channels, then two conv 3x3 + ReLU of 32 channels at the grid
 * (with the 3x3 head, a receptive field of 34 pixels at stride 4: a whole 28-pixel object).
 * Returns buf. */
const char *lb_dense_default_trunk(int stride, char *buf, size_t size);
/* 1 when the loss named by spec is one-vs-all (LB_LOSS_ONE_VS_ALL), else 0. */
int lb_loss_is_one_vs_all(const char *spec);

#ifdef __cplusplus
}
#endif
#endif
