/* libra-train: trains a model (by default the reference CNN on Fashion-MNIST), printing
 * the model summary, the progress and the test metrics; optionally saves / resumes a
 * checkpoint and writes metrics.json + loss.csv. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/dense.h"
#include "libra/dist.h"
#include "libra/losses.h"
#include "libra/report.h"
#include "libra/train.h"

static const char usage[] =
    "Usage: libra-train [options]\n"
    "Trains a model on an image dataset and reports its test metrics.\n"
    "\n"
    "Training:\n"
    "  --epochs N             epochs to train (default 3)\n"
    "  --steps N              a fixed step budget instead of epochs (with --resume: the total)\n"
    "  --batch N              batch size (default 64)\n"
    "  --loss SPEC            loss (default ce); e.g. wce:weights=inverse, focal:gamma=2\n"
    "  --sampler SPEC         shuffle (default), undersample, oversample, balanced, sqrt, progressive,\n"
    "                         or a synthetic one made once per run: smote[:k=5], borderline_smote[:k=5,m=10],\n"
    "                         adasyn[:k=5], ros_noise[:shrinkage=1] (targets: default every class up to the\n"
    "                         largest; ratio=R for two classes; counts=n0,n1,...)\n"
    "  --mix SPEC             batch mixing: mixup[:alpha=1] or remix[:alpha=1,kappa=3,tau=0.5]\n"
    "  --crop-pad N           augmentation: random crop with N pixels of padding (default 0 = off)\n"
    "  --hflip                augmentation: random horizontal flip\n"
    "  --seed N               seed of initialisation, dropout, sampling and augmentation (default 1)\n"
    "  --threads N            threads for the matrix products (default 1)\n"
    "  --shards S             data-parallel shards of each batch (default 1): a power of two dividing --batch;\n"
    "                         the gradient is the sum of the shards' in a fixed tree, the same bits on any\n"
    "                         number of ranks (mpirun); not with batch norm (docs/distributed.md)\n"
    "  --no-nan-check         do not scan gradients and parameters for NaN/Inf every step\n"
    "                         (--nan-check, the default, stops at the first one; see docs/reliability.md)\n"
    "Model:\n"
    "  --arch SPEC            smallcnn[:bn,dropout=P,c1=32,c2=64,fc=128] (default), mlp[:hidden=N], linear,\n"
    "                         resnet:depth=D[,width=W] (D = 6n+2), or a layer list such as\n"
    "                         'conv:32,3;bn;relu;pool:2;conv:64,3;bn;relu;pool:2;gap;dense'\n"
    "  --init NAME            default (PyTorch's), kaiming-normal, kaiming-uniform, xavier-normal, xavier-uniform\n"
    "  --prior-bias           set the last layer's bias to log(class prior)\n"
    "Dense task (docs/dense.md):\n"
    "  --task classify|dense  dense: --data dense:SOURCE[,canvas=64][,objects=0-3][,scale=0.5-1][,stride=8]\n"
    "                         [,train=6000][,test=1000] (default dense:fmnist); a fully convolutional model\n"
    "                         (--arch: a layer list ending in the stride's grid, default the stride's trunk)\n"
    "                         with a 3x3 head; loss per location divided by the batch's foreground count\n"
    "                         (default sigmoid_focal:gamma=2,alpha=0.25); --steps (default 600), --batch\n"
    "                         (default 32); prints AP per class over test locations and images\n"
    "  --prior P              dense: the head's bias starts every class at probability P (default 0.01;\n"
    "                         0: off)\n"
    "Evaluation and files:\n"
    "  --monitor WHERE        val (default when there is a validation split), none, or test: evaluate\n"
    "                         at each evaluation point (test: shown only, it never chooses anything)\n"
    "  --eval-batch N         batch size of evaluation (default 256)\n"
    "  --save FILE            write a checkpoint at the end (and every --save-every steps)\n"
    "  --save-every N         also write the checkpoint every N steps\n"
    "  --resume FILE          continue a checkpoint; its settings are the defaults\n"
    "  --out DIR              write DIR/metrics.json and DIR/loss.csv\n"
    "  --log-every N          steps per loss-curve point (default 10)\n"
    "  --progress-every N     steps per progress line when stderr is not a terminal (default 100)\n"
    "  --quiet                no header, summary or progress: only the final result line\n"
    "  --help                 this text\n"
    "\n"
    "%s"
    "\n"
    "%s"
    "\n"
    "Exit status: 0 success, 1 runtime error (data, file, numeric), 2 bad flag or value.\n"
    "Ctrl-C stops after the current step, saves the checkpoint (if --save) and evaluates.\n";

enum {
    OPT_EPOCHS = 1, OPT_STEPS, OPT_BATCH, OPT_LOSS, OPT_SAMPLER, OPT_CROP, OPT_HFLIP, OPT_SEED, OPT_THREADS, OPT_ARCH, OPT_INIT,
    OPT_PRIOR, OPT_MONITOR, OPT_EVAL_BATCH, OPT_SAVE, OPT_SAVE_EVERY, OPT_RESUME, OPT_OUT, OPT_LOG_EVERY,
    OPT_PROGRESS_EVERY, OPT_QUIET, OPT_NAN_CHECK, OPT_NO_NAN_CHECK, OPT_MIX, OPT_SHARDS, OPT_TASK, OPT_HEAD_PRIOR
};

static const struct option longopts[] = {
    {"epochs", required_argument, 0, OPT_EPOCHS},
    {"steps", required_argument, 0, OPT_STEPS},
    {"batch", required_argument, 0, OPT_BATCH},
    {"loss", required_argument, 0, OPT_LOSS},
    {"sampler", required_argument, 0, OPT_SAMPLER},
    {"mix", required_argument, 0, OPT_MIX},
    {"crop-pad", required_argument, 0, OPT_CROP},
    {"hflip", no_argument, 0, OPT_HFLIP},
    {"seed", required_argument, 0, OPT_SEED},
    {"threads", required_argument, 0, OPT_THREADS},
    {"shards", required_argument, 0, OPT_SHARDS},
    {"arch", required_argument, 0, OPT_ARCH},
    {"init", required_argument, 0, OPT_INIT},
    {"prior-bias", no_argument, 0, OPT_PRIOR},
    {"task", required_argument, 0, OPT_TASK},
    {"prior", required_argument, 0, OPT_HEAD_PRIOR},
    {"monitor", required_argument, 0, OPT_MONITOR},
    {"eval-batch", required_argument, 0, OPT_EVAL_BATCH},
    {"save", required_argument, 0, OPT_SAVE},
    {"save-every", required_argument, 0, OPT_SAVE_EVERY},
    {"resume", required_argument, 0, OPT_RESUME},
    {"out", required_argument, 0, OPT_OUT},
    {"log-every", required_argument, 0, OPT_LOG_EVERY},
    {"progress-every", required_argument, 0, OPT_PROGRESS_EVERY},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"nan-check", no_argument, 0, OPT_NAN_CHECK},
    {"no-nan-check", no_argument, 0, OPT_NO_NAN_CHECK},
    {"help", no_argument, 0, 'h'},
    CLI_DATA_LONGOPTS,
    CLI_TRAIN_LONGOPTS,
    {0, 0, 0, 0}};

/* ---------------------------------------------------------------- hooks */

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }
static int agreed_stop(void); /* below, with the ranks */

typedef struct {
    cli_progress bar;
    int quiet;
    long saved_step;   /* step of the last checkpoint written by this run, or -1 */
    int stopped;       /* a signal (to this rank or another) stopped the run */
} ui;

static void hook_start(void *ctx, const lb_model *m, const lb_data *d, const lb_train_progress *p)
{
    ui *u = ctx;
    if (u->quiet) return;
    lb_buf s = {0};
    lb_model_summary(m, &s);
    if (!s.oom) printf("model %s\n%s", m->arch, s.p);
    lb_buf_free(&s);
    (void)d;
    printf("%ld steps per epoch, %ld steps in total", p->steps_per_epoch, p->total_steps);
    if (p->start_step) printf(", resuming at step %ld", p->start_step);
    printf("\n");
    fflush(stdout);
}

static int hook_step(void *ctx, const lb_train_progress *p)
{
    ui *u = ctx;
    cli_progress_step(&u->bar, p);
    return u->stopped = agreed_stop();
}

static int hook_epoch(void *ctx, const lb_train_progress *p)
{
    ui *u = ctx;
    cli_progress_epoch(&u->bar, p);
    return u->stopped = agreed_stop();
}

static void hook_checkpoint(void *ctx, const char *path, long step)
{
    (void)path;
    ((ui *)ctx)->saved_step = step;
}

/* ---------------------------------------------------------------- output files */

/* --out DIR must be creatable (it is made when the results are written) and --save FILE's
 * directory must exist and be writable: checked before the data is loaded. */
static void check_outputs(const char *out, const char *save)
{
    if (out && lb_check_output_dir(out) != LB_OK) cli_fatal("--out %s: %s", out, lb_last_error());
    if (save) {
        struct stat st;
        if (stat(save, &st) == 0 && S_ISDIR(st.st_mode)) cli_fatal("--save %s: is a directory", save);
        char *dir = strdup(save);
        if (!dir) cli_fatal("out of memory");
        char *slash = strrchr(dir, '/');
        if (!slash) strcpy(dir, ".");
        else if (slash == dir) dir[1] = '\0';
        else *slash = '\0';
        cli_check_dir_writable("--save", save, dir);
        free(dir);
    }
}

static void write_outputs(const char *dir, const lb_train_opts *o, const lb_data_opts *dopts, const lb_train_result *r,
                          const lb_data *d, const char *loss_spec)
{
    if (lb_make_dirs(dir) != LB_OK) cli_fatal("--out %s: %s", dir, lb_last_error());
    size_t plen = strlen(dir) + 32;
    char *path = malloc(plen);
    if (!path) cli_fatal("out of memory");

    lb_buf b = {0};
    lb_jw j;
    lb_jw_init(&j, &b);
    lb_jw_object(&j, NULL, 0);
    lb_jw_string(&j, "format", "libra-metrics");
    lb_jw_int(&j, "format_version", 2);
    lb_jw_string(&j, "program", "libra-train");
    lb_jw_string(&j, "version", lb_version());
    lb_jw_uint(&j, "seed", r->seed);
    lb_jw_int(&j, "steps", r->steps);
    lb_jw_int(&j, "epochs", r->epochs);
    lb_jw_int(&j, "stopped_early", r->stopped);
    lb_jw_string(&j, "keep", o->keep_best ? "best" : "last");
    lb_jw_int(&j, "best_step", r->best_step);
    lb_jw_float(&j, "best_val_balanced_accuracy", r->best_step >= 0 ? r->best_val_bacc : NAN);
    lb_jw_float(&j, "wall_seconds", r->wall_seconds);
    lb_jw_float(&j, "train_seconds", r->train_seconds);
    lb_jw_float(&j, "images_per_second", r->images_per_second);
    lb_jw_float(&j, "final_loss", r->final_loss);
    lb_jw_int(&j, "threads", lb_get_threads());
    lb_jw_int(&j, "shards", r->shards);
    lb_jw_int(&j, "ranks", r->ranks);
    char hash[20];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r->param_hash);
    lb_jw_string(&j, "param_hash", hash);
    lb_jw_object(&j, "config", 0);
    lb_jw_string(&j, "arch", o->arch);
    lb_jw_string(&j, "init", o->init);
    lb_jw_string(&j, "optimizer", o->optimizer);
    lb_jw_float(&j, "lr", o->lr);
    lb_jw_float(&j, "weight_decay", o->weight_decay);
    lb_jw_int(&j, "patience", o->patience);
    lb_jw_int(&j, "batch", o->batch);
    lb_jw_string(&j, "schedule", o->schedule);
    lb_jw_string(&j, "loss", loss_spec);
    lb_jw_string(&j, "sampler", o->sampler);
    lb_jw_string(&j, "mix", o->mix ? o->mix : "none");
    lb_jw_string(&j, "data", dopts->data ? dopts->data : "fmnist");
    lb_jw_string(&j, "imbalance", dopts->imbalance ? dopts->imbalance : "none");
    lb_jw_float(&j, "val_fraction", dopts->val_frac);
    lb_jw_uint(&j, "data_seed", dopts->seed);
    lb_jw_end(&j, '}');
    const lb_split *sp = &d->split;
    lb_jw_array(&j, "class_names", 1);
    for (int k = 0; k < sp->n_classes; k++) lb_jw_string(&j, NULL, sp->class_names[k]);
    lb_jw_end(&j, ']');
    lb_jw_int(&j, "skipped_files", d->n_skipped);
    lb_jw_notes(&j, "data_warnings", &d->warnings);
    lb_jw_ints(&j, "train_counts", sp->train_counts, (size_t)sp->n_classes);
    lb_jw_floats(&j, "epoch_accuracy", r->monitor_acc.value, r->monitor_acc.n);
    lb_jw_floats(&j, "epoch_balanced_accuracy", r->monitor_bacc.value, r->monitor_bacc.n);
    lb_jw_metrics(&j, &r->test);
    lb_jw_end(&j, '}');
    lb_buf_puts(&b, "\n");
    snprintf(path, plen, "%s/metrics.json", dir);
    if (lb_buf_write(&b, path) != LB_OK) cli_fatal_lib(NULL);
    lb_buf_free(&b);

    lb_buf_puts(&b, "step,loss\n");
    for (size_t i = 0; i < r->loss.n; i++) lb_buf_printf(&b, "%lld,%.9g\n", (long long)r->loss.step[i], r->loss.value[i]);
    snprintf(path, plen, "%s/loss.csv", dir);
    if (lb_buf_write(&b, path) != LB_OK) cli_fatal_lib(NULL);
    lb_buf_free(&b);
    free(path);
}

/* ---------------------------------------------------------------- ranks (MPI)
 *
 * Data-parallel training across processes (mpirun -np K libra-train --shards S ..., a build
 * with MPI; docs/distributed.md). Every rank reads the same flags and data and runs the same
 * lb_train_run with the reducer of its ranks; the library writes the checkpoint on rank 0 only,
 * and main prints and writes --out on rank 0 only. The ranks wait on each other in blocking
 * reductions from the first step (and in MPI_Comm_dup before it), so a rank that fails for
 * any reason (a bad flag, its data or checkpoint missing, rank 0's save failing) ends the
 * whole job with its exit status (lb_dist_abort), where an orderly end would wait forever. A
 * stop (Ctrl-C, SIGTERM) is agreed by every rank at the same step (lb_dist_any in the hooks),
 * so every rank ends in order after the run's last save and evaluation. */
static lb_dist dist;

static void abort_ranks(int status)
{
    if (status != 0) lb_dist_abort(&dist, status); /* returns at once with one rank */
}

static void end_ranks(void) { lb_dist_finalize(&dist); }

/* MPI when started by a launcher as one of several (nothing otherwise): the reducer of the
 * ranks, or NULL to train in this process alone. */
static const lb_reducer *ranks_open(int *argc, char ***argv)
{
    if (lb_dist_init(argc, argv, &dist) != LB_OK) { /* a build without MPI under mpirun */
        if (dist.rank == 0) fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        exit(CLI_EXIT_USAGE);
    }
    atexit(end_ranks);
    if (dist.size <= 1) return NULL;
    cli_on_exit(abort_ranks);
    const lb_reducer *r = lb_dist_reducer(&dist);
    if (!r) cli_fatal("rank %d of %d: %s", dist.rank, dist.size, lb_last_error());
    return r;
}

/* A stop that every rank takes at the same step: 1 when any rank was signalled. */
static int agreed_stop(void)
{
    int any = lb_dist_any(&dist, stop_signal != 0);
    return any != 0; /* a failed agreement (< 0) stops too: the next reduction reports it */
}

/* ---------------------------------------------------------------- main */

/* Settings of the checkpoint become the defaults of a resumed run. */
static void defaults_from_checkpoint(const lb_checkpoint *ck, lb_train_opts *o, lb_data_opts *dopts)
{
    const char *v;
    if ((v = lb_checkpoint_get(ck, "arch"))) o->arch = v;
    if ((v = lb_checkpoint_get(ck, "init"))) o->init = v;
    if ((v = lb_checkpoint_get(ck, "prior_bias"))) o->prior_bias = atoi(v);
    if ((v = lb_checkpoint_get(ck, "optimizer"))) o->optimizer = v;
    if ((v = lb_checkpoint_get(ck, "lr"))) o->lr = atof(v);
    if ((v = lb_checkpoint_get(ck, "momentum"))) o->momentum = atof(v);
    if ((v = lb_checkpoint_get(ck, "nesterov"))) o->nesterov = atoi(v);
    if ((v = lb_checkpoint_get(ck, "weight_decay"))) o->weight_decay = atof(v);
    if ((v = lb_checkpoint_get(ck, "clip_norm"))) o->clip_norm = atof(v);
    if ((v = lb_checkpoint_get(ck, "schedule"))) o->schedule = v;
    if ((v = lb_checkpoint_get(ck, "batch"))) o->batch = atoi(v);
    if ((v = lb_checkpoint_get(ck, "loss"))) o->loss = v;
    if ((v = lb_checkpoint_get(ck, "sampler"))) o->sampler = v;
    if ((v = lb_checkpoint_get(ck, "mix"))) o->mix = v;
    if ((v = lb_checkpoint_get(ck, "augment"))) sscanf(v, "crop_pad=%d,hflip=%d", &o->augment.crop_pad, &o->augment.hflip);
    if ((v = lb_checkpoint_get(ck, "seed"))) o->seed = strtoull(v, NULL, 10);
    if ((v = lb_checkpoint_get(ck, "keep"))) o->keep_best = !strcmp(v, "best");
    if ((v = lb_checkpoint_get(ck, "patience"))) o->patience = atoi(v);
    if ((v = lb_checkpoint_get(ck, "shards"))) o->shards = atoi(v);
    cli_data_from_checkpoint(ck, dopts, 0);
}

/* Everything the flags say. */
typedef struct {
    lb_train_opts o;
    lb_data_opts dopts;
    lb_checkpoint ck;   /* of --resume: its settings are the defaults */
    cli_data_flags df;
    const char *out;
    long progress_every;
    int quiet, monitor_set, epochs_set;
    int dense, loss_set, batch_set, prior_set, arch_set; /* --task dense, and which defaults it changes */
    double prior;                                /* --prior (dense) */
} flags;

/* One flag of the training options (the data flags are collected in f->df). */
static void apply_flag(flags *f, int code, const char *a)
{
    lb_train_opts *o = &f->o;
    switch (code) {
    case OPT_EPOCHS: o->epochs = (int)cli_long("epochs", a, 1, 100000); f->epochs_set = 1; break;
    case OPT_STEPS: o->steps = cli_long("steps", a, 1, 1000000000L); break;
    case OPT_BATCH: o->batch = (int)cli_long("batch", a, 1, 65536); f->batch_set = 1; break;
    case OPT_LOSS: o->loss = a; f->loss_set = 1; break;
    case OPT_TASK:
        if (strcmp(a, "dense") != 0 && strcmp(a, "classify") != 0)
            cli_usage_error("--task: '%s' is not a task (classify or dense)", a);
        f->dense = strcmp(a, "dense") == 0;
        break;
    case OPT_HEAD_PRIOR: f->prior = cli_double("prior", a, 0, 0.5); f->prior_set = 1; break;
    case OPT_SAMPLER: o->sampler = a; break;
    case OPT_MIX: o->mix = a; break;
    case OPT_CROP: o->augment.crop_pad = (int)cli_long("crop-pad", a, 0, 64); break;
    case OPT_HFLIP: o->augment.hflip = 1; break;
    case OPT_SEED: o->seed = cli_u64("seed", a); break;
    case OPT_THREADS: o->threads = (int)cli_long("threads", a, 1, 256); break;
    case OPT_SHARDS: o->shards = (int)cli_long("shards", a, 1, 65536); break;
    case OPT_ARCH: o->arch = a; f->arch_set = 1; break;
    case OPT_INIT: {
        lb_init_kind k;
        if (lb_init_parse(a, &k) != LB_OK) cli_usage_error("--init: %s", lb_last_error());
        o->init = a;
        break;
    }
    case OPT_PRIOR: o->prior_bias = 1; break;
    case OPT_MONITOR:
        f->monitor_set = 1;
        if (!strcmp(a, "none")) o->monitor = LB_MONITOR_NONE;
        else if (!strcmp(a, "val")) o->monitor = LB_MONITOR_VAL;
        else if (!strcmp(a, "test")) o->monitor = LB_MONITOR_TEST;
        else cli_usage_error("--monitor: '%s' is not one of val, test, none", a);
        break;
    case OPT_EVAL_BATCH: o->eval_batch = (int)cli_long("eval-batch", a, 1, 65536); break;
    case OPT_SAVE: o->save = a; break;
    case OPT_SAVE_EVERY: o->save_every = cli_long("save-every", a, 1, 1000000000L); break;
    case OPT_RESUME: o->resume = a; break;
    case OPT_OUT: f->out = a; break;
    case OPT_LOG_EVERY: o->log_every = cli_long("log-every", a, 1, 1000000000L); break;
    case OPT_PROGRESS_EVERY: f->progress_every = cli_long("progress-every", a, 1, 1000000000L); break;
    case OPT_QUIET: f->quiet = 1; break;
    case OPT_NAN_CHECK: o->nan_check = 1; break;
    case OPT_NO_NAN_CHECK: o->nan_check = 0; break;
    default:
        if (!cli_train_flag(o, code, a) && !cli_data_flag(&f->df, code, a))
            cli_usage_error("internal: unhandled flag %d", code);
    }
}

/* --shards against --batch and the architecture (a model of it on a 32x32 probe input finds
 * its batch norm layers; a spec that needs the data's shape is checked with the data). */
static void check_shards(const lb_train_opts *o)
{
    lb_model *probe = o->shards > 1 ? lb_model_new_arch(o->arch, 1, 32, 32, 2) : NULL;
    int rc = lb_train_check_shards(o, probe);
    lb_model_free(probe);
    if (rc != LB_OK) cli_usage_error("--shards: %s", lb_last_error());
}

/* The flags, read twice: first to find --resume (whose checkpoint gives the defaults),
 * then applied in order. Every value is checked here, before any data is loaded. */
static void parse_flags(int argc, char **argv, flags *f)
{
    int codes[256], n = 0, c;
    const char *args[256], *resume = NULL;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == '?' || c == ':') cli_bad_option();
        if (c == 'h') {
            printf(usage, cli_train_help, cli_data_help);
            exit(0);
        }
        if (n == 256) cli_usage_error("too many flags");
        codes[n] = c;
        args[n++] = optarg;
        if (c == OPT_RESUME) resume = optarg;
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    lb_train_opts_init(&f->o);
    f->o.threads = 1;
    f->progress_every = 100;
    lb_data_opts_init(&f->dopts);
    lb_checkpoint_init(&f->ck);
    if (resume) {
        if (lb_checkpoint_read(&f->ck, resume) != LB_OK) cli_fatal("--resume: %s", lb_last_error());
        defaults_from_checkpoint(&f->ck, &f->o, &f->dopts);
    }
    for (int i = 0; i < n; i++) apply_flag(f, codes[i], args[i]);
    if (f->o.steps > 0 && f->epochs_set) cli_usage_error("--epochs and --steps: give one budget, not both");
    if (f->o.save_every && !f->o.save) cli_usage_error("--save-every needs --save FILE");
    cli_data_apply(&f->df, &f->dopts);
    /* the test set is evaluated once, at the end; it is monitored only when asked */
    if (!f->monitor_set) f->o.monitor = f->dopts.val_frac > 0 ? LB_MONITOR_VAL : LB_MONITOR_NONE;
    lb_buf b = {0};
    char sampler[128];
    if (lb_loss_canonical(f->o.loss, &b) != LB_OK) cli_usage_error("--loss: %s", lb_last_error());
    lb_buf_free(&b);
    if (lb_sampler_canonical(f->o.sampler, sampler, sizeof sampler) != LB_OK)
        cli_usage_error("--sampler: %s", lb_last_error());
    lb_mix mix;
    if (lb_mix_parse(&mix, f->o.mix) != LB_OK) cli_usage_error("--mix: %s", lb_last_error());
    if (lb_arch_check(f->o.arch) != LB_OK) cli_usage_error("--arch: %s", lb_last_error());
    check_shards(&f->o);
    cli_train_check(&f->o);
}

/* --task dense: defaults of its own, and the classification flags refused. */
static void dense_flags(flags *f, const lb_reducer *ranks)
{
    lb_train_opts *o = &f->o;
    int has_source = 0;
    for (int i = 0; i < f->df.n; i++) has_source |= f->df.code[i] == CLI_OPT_PRESET || f->df.code[i] == CLI_OPT_DATA;
    if (!has_source) {
        lb_data_opts_free(&f->dopts);
        lb_data_opts_init(&f->dopts);
        cli_data_flag_first(&f->df, CLI_OPT_DATA, "dense:fmnist");
        cli_data_apply(&f->df, &f->dopts);
    }
    if (strncmp(f->dopts.data, "dense:", 6) != 0)
        cli_usage_error("--task dense: give --data dense:SOURCE,... (got '%s')", f->dopts.data);
    const char *bad = ranks ? "mpirun" : o->save ? "--save" : o->resume ? "--resume" : o->shards > 1 ? "--shards"
                    : f->epochs_set ? "--epochs (a dense run counts --steps)" : o->keep_best ? "--keep best"
                    : o->patience > 0 ? "--patience" : strcmp(o->sampler, "shuffle") ? "--sampler" : o->mix ? "--mix"
                    : o->augment.crop_pad || o->augment.hflip ? "--crop-pad / --hflip"
                    : o->prior_bias ? "--prior-bias (a dense head takes --prior P)" : NULL;
    if (bad) cli_usage_error("--task dense: %s is not for a dense run", bad);
    if (!f->loss_set) o->loss = "sigmoid_focal:gamma=2,alpha=0.25";
    if (!f->arch_set) o->arch = NULL; /* the stride's default trunk */
    cli_dense_check_arch(o->arch, f->dopts.data);
    if (!f->batch_set) o->batch = 32;
    if (o->steps <= 0) o->steps = 600;
    if (o->eval_every <= 0) o->eval_every = o->steps / 10 > 0 ? o->steps / 10 : 1;
    if (!f->prior_set) f->prior = 0.01;
}

static void print_result(const flags *f, const lb_train_result *r, const lb_data *data)
{
    const lb_metrics *m = &r->test;
    if (!f->quiet && r->n_test > 0) {
        printf("per-class recall:\n");
        for (int k = 0; k < m->n_classes; k++)
            printf("  %-16s %6d train  recall %.4f\n", data->split.class_names[k], data->split.train_counts[k],
                   m->recall[k]);
    }
    if (f->o.keep_best && r->best_step >= 0)
        printf("kept the model of step %ld (validation balanced accuracy %.4f)\n", r->best_step, r->best_val_bacc);
    if (r->stopped_patience)
        printf("stopped at step %ld: no better validation balanced accuracy in %d evaluations\n", r->steps,
               f->o.patience);
    printf("test accuracy %.4f | balanced accuracy %.4f | macro F1 %.4f | %ld steps%s in %.1f s (%.0f img/s)\n",
           m->accuracy, m->balanced_accuracy, m->macro_f1, r->steps, r->stopped ? " (stopped early)" : "",
           r->wall_seconds, r->images_per_second);
    if (f->o.save && !f->quiet) printf("checkpoint: %s\n", f->o.save);
    if (f->out && !f->quiet) printf("results: %s/metrics.json, %s/loss.csv\n", f->out, f->out);
}

int main(int argc, char **argv)
{
    cli_init(argv);
    const lb_reducer *ranks = ranks_open(&argc, &argv);
    int rank0 = !ranks || ranks->rank == 0;
    flags f;
    memset(&f, 0, sizeof f);
    parse_flags(argc, argv, &f);
    f.o.reducer = ranks;
    if (ranks) check_shards(&f.o);
    if (f.dense) dense_flags(&f, ranks);
    else if (f.prior_set) cli_usage_error("--prior: the head's prior of a dense task (--task dense)");
    f.quiet |= !rank0; /* only rank 0 talks */
    if (lb_set_threads(f.o.threads) != LB_OK) cli_fatal("--threads %d: %s", f.o.threads, lb_last_error());
    if (!f.quiet) {
        char extra[512];
        snprintf(extra, sizeof extra, "data %s | imbalance %s | loss %s | sampler %s | %s lr %g | batch %d",
                 f.dopts.data ? f.dopts.data : "fmnist", f.dopts.imbalance ? f.dopts.imbalance : "none", f.o.loss,
                 f.o.sampler, f.o.optimizer, f.o.lr, f.o.batch);
        cli_print_header(stdout, f.o.seed, f.o.threads, extra);
        fflush(stdout);
    }
    check_outputs(f.out, f.o.save);
    lb_data *data = cli_data_load(&f.dopts, f.quiet);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the program at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (f.dense) {
        int status = cli_dense_train_run(&f.o, f.prior, data, f.out, f.quiet, f.progress_every, &stop_signal);
        lb_data_free(data);
        lb_data_opts_free(&f.dopts);
        lb_checkpoint_free(&f.ck);
        return status;
    }
    ui u = {.quiet = f.quiet, .saved_step = -1};
    cli_progress_init(&u.bar, f.quiet, f.progress_every);
    lb_train_hooks hooks = {&u, hook_start, hook_step, hook_epoch, hook_checkpoint};
    lb_train_result r;
    int rc = lb_train_run(&f.o, &f.dopts, data, &hooks, &r);
    cli_progress_clear(&u.bar);
    if (rc != LB_OK) {
        fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        /* a failed step or save never overwrites the checkpoint: say which one is good */
        if (f.o.save && u.saved_step >= 0)
            fprintf(stderr, "%s: the last checkpoint written, %s, is of step %ld\n", cli_prog, f.o.save, u.saved_step);
        cli_exit(CLI_EXIT_RUNTIME);
    }
    if (rank0) cli_print_warnings(&r.warnings, 0);
    if (f.out && rank0) {
        lb_loss *l = lb_loss_new_named(f.o.loss, data->split.n_classes, data->split.train_counts, (const char *const *)data->split.class_names);
        write_outputs(f.out, &f.o, &f.dopts, &r, data, l ? lb_loss_spec(l) : f.o.loss);
        lb_loss_free(l);
    }
    if (rank0) print_result(&f, &r, data);
    int sig = stop_signal ? (int)stop_signal : u.stopped ? SIGTERM : 0; /* SIGTERM: another rank's */
    if (sig && rank0)
        fprintf(stderr, "%s: stopped by signal %d%s after step %ld%s\n", cli_prog, sig,
                stop_signal ? "" : " to another rank", r.steps,
                f.o.save ? "; the checkpoint is of that step (--resume)" : "");
    lb_train_result_free(&r);
    lb_data_free(data);
    lb_data_opts_free(&f.dopts);
    lb_checkpoint_free(&f.ck);
    return sig ? 128 + sig : 0; /* end_ranks, at exit, ends MPI */
}
