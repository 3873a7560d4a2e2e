/* libra-compare: the imbalance study. Trains the same network under each strategy (a loss,
 * a sampler, post-hoc corrections) on the same imbalanced split, with the same step budget
 * and several seeds, and writes OUT/results.json, OUT/results.csv, OUT/report.html, and
 * each run's record and curves under OUT/runs and OUT/curves. The study itself is the
 * library's (libra/study.h); this program reads the flags, picks a scheduler and prints.
 * Under mpirun (an MPI build) the ranks share the study: rank 0 plans, writes every file and
 * prints; the others run the jobs it hands them (docs/distributed.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/dense.h"
#include "libra/dist.h"
#include "libra/losses.h"
#include "libra/data.h"
#include "libra/report.h"
#include "libra/study.h"

static const char usage[] =
    "Usage: libra-compare [options]\n"
    "Trains the same CNN under each strategy on the same imbalanced split (same step budget,\n"
    "several seeds) and reports per-class metrics in OUT/results.json, results.csv and report.html.\n"
    "\n"
    "Study:\n"
    "  --strategies LIST      strategies separated by ';' (or ',' where unambiguous), each\n"
    "                         LOSS[@SAMPLER][~MIX][+STAGE...][+posthoc], e.g.\n"
    "                         'ce;focal:gamma=2;ce@oversample;ce@smote;ldam:drw=0.8~remix;ce+crt';\n"
    "                         MIX: mixup[:alpha=1] | remix[:alpha=1,kappa=3,tau=0.5]; STAGE (re-balances\n"
    "                         the trained model's classifier, scored beside it): crt[:steps=N] |\n"
    "                         lws[:steps=N] | taunorm | fsmote[:k=5] (N: default 10%% of the budget,\n"
    "                         counted in it); a value a|b|c is a grid tuned on the validation split.\n"
    "                         Default: %s\n"
    "  --seeds N              seeds per strategy (default 5; --quick: 2)\n"
    "  --seed N               first seed (default 1); runs use seeds N, N+1, ...\n"
    "  --steps N              step budget of every run (default 1500; --quick: 300)\n"
    "  --epochs N             instead of --steps: N epochs of the plain training set, as steps\n"
    "  --batch N              batch size (default 64)\n"
    "  --arch SPEC            network (default smallcnn; see libra-train --help)\n"
    "  --threads N            threads per run (default 1)\n"
    "  --target-recall R      binary tasks: the rare class's recall each run's operating point is\n"
    "                         chosen for on the validation split (default 0.95)\n"
    "  --jobs N               runs in parallel processes (default: the number of CPUs; 1 under\n"
    "                         mpirun, where each rank runs one at a time)\n"
    "  --quick                a study of a few minutes: 2 seeds, 300 steps\n"
    "  --out DIR              output directory (default results/study)\n"
    "  --resume               reuse the runs already finished in OUT (same settings required)\n"
    "  --force                replace a study of other settings in OUT\n"
    "  --plan                 print the jobs (index, seed, training run, strategies) and exit; a\n"
    "                         grid's other seeds are planned after phase 1, once its point is chosen\n"
    "  --only I/N             run only this share of the study: the jobs whose index %% N is I-1 in\n"
    "                         each phase (1 <= I <= N), for job arrays or machines sharing OUT; no\n"
    "                         results files (see --aggregate). With a grid, a share runs phase 2\n"
    "                         only once every share's phase 1 is stored: else it says so, exits 0,\n"
    "                         and is run again (with --resume) after the others\n"
    "  --aggregate            run nothing: aggregate the records in OUT into the results files (an\n"
    "                         error names the jobs that have no record); implies --resume\n"
    "  --quiet                only errors and the final paths\n"
    "  --imbalance 'A|B|...'  a sweep: the whole study on each profile, each in OUT/<profile>/ with its\n"
    "                         own split from the same data seed ('longtail:10|50|100|200' is four long\n"
    "                         tails; 'longtail:100|step:100,0.5' two profiles); OUT gets the sweep's\n"
    "                         results.json, results.csv, summary.csv and report.html\n"
    "  --list                 list the losses and samplers, then exit\n"
    "\n"
    "Dense task (docs/dense.md): --task dense with --data dense:SOURCE[,canvas=64][,objects=0-3]\n"
    "[,scale=0.5-1][,stride=8][,train=6000][,test=1000] (default dense:fmnist): generated canvases, one\n"
    "label per stride x stride cell, a fully convolutional model, AP over test locations and images.\n"
    "  --task classify|dense  the task (default classify)\n"
    "  --prior P              dense: the head's prior probability for strategies without +noprior\n"
    "                         (default 0.01; Lin et al. 2017, Sec. 3.3)\n"
    "  dense strategies are LOSS or LOSS+noprior, every grid point reported; defaults\n"
    "                         %s\n"
    "  dense defaults: 3 seeds, 600 steps, batch 32, validation every steps/10, the stride's trunk;\n"
    "  --quick: 2 seeds, 200 steps; --out default results/dense; not under mpirun, no sweeps\n"
    "  --help                 this text\n"
    "\n"
    "%s"
    "  (the study evaluates on validation ten times per run unless --eval-every is given)\n"
    "\n"
    "%s"
    "  (default data: --preset fmnist-lt100, i.e. Fashion-MNIST long-tailed with rho = 100,\n"
    "   10%% of it held out for validation)\n"
    "\n"
    "Across machines: mpirun -np K libra-compare ... (a build with MPI): rank 0 hands the runs out\n"
    "and writes every file; see docs/distributed.md.\n"
    "\n"
    "Exit status: 0 success, 1 runtime error (data, file, a failed run), 2 bad flag or value,\n"
    "130 interrupted (SIGINT; 143: SIGTERM); finished runs are kept for --resume.\n";

enum {
    OPT_STRATEGIES = 1, OPT_SEEDS, OPT_SEED, OPT_STEPS, OPT_EPOCHS, OPT_BATCH, OPT_ARCH, OPT_THREADS,
    OPT_JOBS, OPT_TARGET_RECALL, OPT_QUICK, OPT_OUT, OPT_RESUME, OPT_FORCE, OPT_QUIET, OPT_LIST, OPT_HELP,
    OPT_PLAN, OPT_ONLY, OPT_AGGREGATE, OPT_TASK, OPT_PRIOR
};

static const struct option longopts[] = {
    {"strategies", required_argument, 0, OPT_STRATEGIES},
    {"seeds", required_argument, 0, OPT_SEEDS},
    {"seed", required_argument, 0, OPT_SEED},
    {"steps", required_argument, 0, OPT_STEPS},
    {"epochs", required_argument, 0, OPT_EPOCHS},
    {"batch", required_argument, 0, OPT_BATCH},
    {"arch", required_argument, 0, OPT_ARCH},
    {"threads", required_argument, 0, OPT_THREADS},
    {"jobs", required_argument, 0, OPT_JOBS},
    {"target-recall", required_argument, 0, OPT_TARGET_RECALL},
    {"quick", no_argument, 0, OPT_QUICK},
    {"out", required_argument, 0, OPT_OUT},
    {"resume", no_argument, 0, OPT_RESUME},
    {"force", no_argument, 0, OPT_FORCE},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"list", no_argument, 0, OPT_LIST},
    {"help", no_argument, 0, OPT_HELP},
    {"plan", no_argument, 0, OPT_PLAN},
    {"only", required_argument, 0, OPT_ONLY},
    {"aggregate", no_argument, 0, OPT_AGGREGATE},
    {"task", required_argument, 0, OPT_TASK},
    {"prior", required_argument, 0, OPT_PRIOR},
    CLI_DATA_LONGOPTS,
    CLI_TRAIN_LONGOPTS,
    {0, 0, 0, 0}};

typedef struct {
    lb_study_config c;
    cli_data_flags df;
    long jobs, steps, epochs, seeds;
    int quick, quiet, list, jobs_given, plan, aggregate;
    int dense, batch_given, arch_given, out_given, target_given;
    double prior;   /* --prior (dense), < 0: not given */
} flags;

/* This process's place among the ranks of an MPI job (one rank of one without mpirun). */
static lb_dist dist;
static void end_dist(void) { lb_dist_finalize(&dist); }

/* --only I/N: shard I - 1 of N. */
static void parse_only(lb_study_config *c, const char *s)
{
    char *end;
    long i = strtol(s, &end, 10), n = *end == '/' ? strtol(end + 1, &end, 10) : 0;
    if (*end || i < 1 || n < 1 || i > n || n > 100000)
        cli_usage_error("--only: '%s' is not I/N with 1 <= I <= N (e.g. --only 2/4)", s);
    c->shard = (int)i - 1;
    c->n_shards = (int)n;
}

static void list_and_exit(void)
{
    const char *names[128];
    int n = lb_loss_list(names, 128);
    printf("losses:");
    for (int i = 0; i < n && i < 128; i++) printf(" %s", names[i]);
    printf("\nsamplers: shuffle undersample oversample balanced sqrt progressive smote borderline_smote adasyn ros_noise\n");
    printf("mixing (~MIX): mixup remix\nstages (+STAGE): crt lws taunorm fsmote (and +posthoc)\n");
    printf("default strategies: %s\n", lb_default_strategy_list());
    exit(0);
}

static void parse_flags(int argc, char **argv, flags *f)
{
    lb_study_config_init(&f->c);
    f->jobs = sysconf(_SC_NPROCESSORS_ONLN);
    f->steps = f->epochs = f->seeds = -1;
    f->prior = -1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_data_flag(&f->df, c, optarg) || cli_train_flag(&f->c.train, c, optarg)) continue;
        switch (c) {
        case OPT_STRATEGIES: f->c.strategies = optarg; break;
        case OPT_SEEDS: f->seeds = cli_long("seeds", optarg, 1, 1000); break;
        case OPT_SEED: f->c.seed0 = cli_u64("seed", optarg); break;
        case OPT_STEPS: f->steps = cli_long("steps", optarg, 1, 100000000L); break;
        case OPT_EPOCHS: f->epochs = cli_long("epochs", optarg, 1, 100000); break;
        case OPT_BATCH:
            f->c.train.batch = (int)cli_long("batch", optarg, 1, 65536);
            f->batch_given = 1;
            break;
        case OPT_ARCH:
            f->c.train.arch = optarg;
            f->arch_given = 1;
            break;
        case OPT_TASK:
            if (strcmp(optarg, "dense") != 0 && strcmp(optarg, "classify") != 0)
                cli_usage_error("--task: '%s' is not a task (classify or dense)", optarg);
            f->dense = strcmp(optarg, "dense") == 0;
            break;
        case OPT_PRIOR: f->prior = cli_double("prior", optarg, 1e-6, 0.5); break;
        case OPT_THREADS: f->c.train.threads = (int)cli_long("threads", optarg, 1, 256); break;
        case OPT_JOBS:
            f->jobs = cli_long("jobs", optarg, 1, 256);
            f->jobs_given = 1;
            break;
        case OPT_TARGET_RECALL:
            f->c.target_recall = cli_double("target-recall", optarg, 1e-9, 1.0);
            f->target_given = 1;
            break;
        case OPT_QUICK: f->quick = 1; break;
        case OPT_OUT:
            f->c.out_dir = optarg;
            f->out_given = 1;
            break;
        case OPT_RESUME: f->c.resume = 1; break;
        case OPT_FORCE: f->c.force = 1; break;
        case OPT_QUIET: f->quiet = 1; break;
        case OPT_LIST: f->list = 1; break;
        case OPT_PLAN: f->plan = 1; break;
        case OPT_ONLY: parse_only(&f->c, optarg); break;
        case OPT_AGGREGATE: f->aggregate = 1; break;
        case 'h':
        case OPT_HELP:
            printf(usage, lb_default_strategy_list(), lb_dense_default_strategy_list(), cli_train_help, cli_data_help);
            exit(0);
        default: cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (f->steps > 0 && f->epochs > 0) cli_usage_error("--steps and --epochs: give one of them");
    if (f->c.resume && f->c.force) cli_usage_error("--resume and --force: give one of them");
    if (f->aggregate && f->c.force) cli_usage_error("--aggregate and --force: give one of them");
    if (f->aggregate && f->c.n_shards > 1) cli_usage_error("--aggregate and --only: aggregate once, after every share");
    if (f->c.n_shards > 1 && f->c.force)
        cli_usage_error("--force and --only: remove the old study from --out (or choose another) before the shares");
    if (f->aggregate) f->c.resume = 1;
    if (!f->dense && f->prior > 0) cli_usage_error("--prior: the head's prior of a dense task (--task dense)");
    if (f->list) list_and_exit();
    if (f->jobs < 1) f->jobs = 1;
    f->c.seeds = (int)(f->seeds > 0 ? f->seeds : f->quick ? 2 : 5);
    f->c.train.steps = f->epochs > 0 ? 0 : f->steps > 0 ? f->steps : f->quick ? 300 : 1500;
    f->c.train.epochs = f->epochs > 0 ? (int)f->epochs : 0;
    f->c.train.monitor = LB_MONITOR_VAL; /* what the study does; a split without validation is refused later */
    cli_train_check(&f->c.train);
}

/* Under mpirun with K > 1 ranks: the ranks share the study, one job at a time each. */
static void check_ranks(flags *f)
{
    if (dist.size <= 1) return;
    if (f->jobs_given && f->jobs > 1)
        cli_usage_error("--jobs %ld: under mpirun (%d ranks) each rank runs one job at a time; start more ranks "
                        "(mpirun -np) instead", f->jobs, dist.size);
    if (f->plan) cli_usage_error("--plan: print the plan without mpirun");
    if (f->c.n_shards > 1)
        cli_usage_error("--only: a share of the study for runs without MPI; under mpirun the %d ranks share it", dist.size);
    if (f->aggregate) cli_usage_error("--aggregate: run it without mpirun");
    f->jobs = 1;
}

/* A rank other than 0 says nothing until it serves (rank 0 reports for all; a rank's own
 * failure reaches rank 0's message through lb_dist_finalize): stdout and stderr to
 * /dev/null, or back (saved: the descriptors kept). */
static void silence(int on, int saved[2])
{
    if (on) {
        int null = open("/dev/null", O_WRONLY);
        saved[0] = dup(1);
        saved[1] = dup(2);
        if (null >= 0 && saved[0] >= 0 && saved[1] >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        if (null >= 0) close(null);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < 2; k++)
        if (saved[k] >= 0) {
            dup2(saved[k], k + 1);
            close(saved[k]);
            saved[k] = -1; /* once: a sweep's rank serves several studies */
        }
}

/* ---- progress ---- */

static void on_reused(void *ctx, int n)
{
    if (!*(int *)ctx) fprintf(stderr, "--resume: %d finished runs reused\n", n);
}

static void on_job(void *ctx, const lb_job *job, const lb_run_record *r, int done, int total, double seconds)
{
    if (*(int *)ctx) return;
    char rank[24] = "";
    if (r->rank >= 0) snprintf(rank, sizeof rank, ", rank %d", r->rank);
    fprintf(stderr, "[%*d/%d] %-28s seed %-3llu balanced acc %.4f  acc %.4f  minority recall %.4f  (%.0f s, %.0f img/s%s)\n",
            total >= 100 ? 3 : 2, done, total, r->strategy, (unsigned long long)job->seed,
            r->metrics.balanced_accuracy, r->metrics.accuracy, r->metrics.minority_recall,
            seconds > 0 ? seconds : r->wall_seconds, r->images_per_sec, rank);
}

static void on_grid(void *ctx, const lb_strategy *s, int chosen, float val)
{
    if (!*(int *)ctx)
        fprintf(stderr, "grid %s: chose %s (validation balanced accuracy %.4f)\n", s->spec, s->points[chosen], val);
}

static void on_note(void *ctx, const char *message)
{
    if (!*(int *)ctx) fprintf(stderr, "%s\n", message);
}

/* ---- main ---- */

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

/* The data options, the long-tailed Fashion-MNIST preset unless a source is given. */
static void data_options(flags *f, lb_data_opts *dopts)
{
    int has_source = 0;
    for (int i = 0; i < f->df.n; i++) has_source |= f->df.code[i] == CLI_OPT_PRESET || f->df.code[i] == CLI_OPT_DATA;
    if (!has_source) cli_data_flag_first(&f->df, f->dense ? CLI_OPT_DATA : CLI_OPT_PRESET, f->dense ? "dense:fmnist" : "fmnist-lt100");
    cli_data_apply(&f->df, dopts);
    f->c.data = dopts;
}

/* The data of one profile (options set), after the checks that need none. */
static lb_data *open_data(flags *f, lb_data_opts *dopts)
{
    if (lb_arch_check(f->c.train.arch) != LB_OK) cli_usage_error("--arch: %s", lb_last_error());
    if (lb_study_check(&f->c) != LB_OK) cli_usage_error("--strategies: %s", lb_last_error());
    if (dist.rank == 0 && lb_check_output_dir(f->c.out_dir) != LB_OK)
        cli_fatal("--out %s: %s", f->c.out_dir, lb_last_error());
    if (!f->quiet) {
        char **items = NULL, extra[512];
        int n = 0;
        lb_strategy_split(f->c.strategies ? f->c.strategies : lb_default_strategy_list(), &items, &n);
        for (int i = 0; i < n; i++) lb_free(items[i]);
        lb_free(items);
        char how[160];
        if (dist.size > 1) snprintf(how, sizeof how, "ranks %d (%s)", dist.size, lb_dist_mpi_library());
        else if (f->c.n_shards > 1) snprintf(how, sizeof how, "jobs %ld | share %d/%d", f->jobs, f->c.shard + 1, f->c.n_shards);
        else snprintf(how, sizeof how, "jobs %ld", f->jobs);
        snprintf(extra, sizeof extra, "%d strategies x %d seeds | %s | out %s", n, f->c.seeds, how, f->c.out_dir);
        cli_print_header(stderr, f->c.seed0, f->c.train.threads, extra);
    }
    lb_data *d = cli_data_load(dopts, f->quiet);
    return d;
}

/* --aggregate: a scheduler that runs nothing; a job without a record is an error naming it. */
static int refuse_to_run(void *ctx, lb_study *st, lb_job *const *todo, int n)
{
    (void)ctx;
    lb_buf b = {0};
    for (int i = 0; i < n && i < 8; i++) lb_buf_printf(&b, "%s%s (job %d)", i ? ", " : "", todo[i]->name, todo[i]->index);
    int rc = lb_error(LB_ESTATE, "--aggregate: %d run%s of the study %s no record in %s/runs: %s%s; run %s first "
                      "(--only I/N, --resume)", n, n > 1 ? "s" : "", n > 1 ? "have" : "has", lb_study_out_dir(st),
                      b.p ? b.p : "", n > 8 ? ", ..." : "", n > 1 ? "them" : "it");
    lb_buf_free(&b);
    return rc;
}

/* Where the jobs run: across the ranks, nowhere (--aggregate), or in --jobs processes. */
static lb_scheduler pick_scheduler(const flags *f)
{
    if (dist.size > 1) return lb_scheduler_mpi(&dist);
    if (f->aggregate) return (lb_scheduler){"aggregate", 1, NULL, refuse_to_run};
    return lb_scheduler_fork((int)f->jobs);
}

static void free_all(lb_study *st, lb_data *data, lb_data_opts *dopts)
{
    lb_study_free(st); /* takes away the folders of a study that stored nothing */
    lb_data_free(data);
    if (dopts) lb_data_opts_free(dopts);
}

/* The end of a study that ran on rank 0 (or alone): its files and summary, or a share's note. */
static int finish(const flags *f, lb_study *st)
{
    int waits = lb_study_deferred(st);
    if (f->c.n_shards > 1 && waits) /* a note said which; printed even with --quiet */
        fprintf(stderr, "%s: share %d/%d ran its phase-1 jobs; phase 2 needs %d grid record%s of the other shares: "
                "run this share again with --resume once they are stored, then --aggregate\n", cli_prog,
                f->c.shard + 1, f->c.n_shards, waits, waits > 1 ? "s" : "");
    else if (f->c.n_shards > 1)
        fprintf(stderr, "%s: share %d/%d is done; once every share is, the same flags with --aggregate (instead of "
                "--only) write the results\n", cli_prog, f->c.shard + 1, f->c.n_shards);
    if (f->c.n_shards > 1) return 0;
    if (lb_study_write(st) != LB_OK) {
        fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        return CLI_EXIT_RUNTIME;
    }
    if (!f->quiet) {
        lb_buf sum = {0};
        if (lb_study_summary(st, &sum) == LB_OK) fprintf(stderr, "\n%s\n", sum.p);
        lb_buf_free(&sum);
    }
    printf("results: %s/results.json\ntable:   %s/results.csv\nreport:  %s/report.html\n", f->c.out_dir, f->c.out_dir,
           f->c.out_dir);
    return 0;
}

/* Rank 0, or the one process: the plan, the jobs, the files. */
static int run_study(flags *f, lb_study *st)
{
    char ranks[16];
    snprintf(ranks, sizeof ranks, "%d", dist.size);
    if (lb_study_set_flag(st, "ranks", ranks) != LB_OK) cli_fatal("%s", lb_last_error());
    if (f->plan) {
        lb_buf b = {0};
        if (lb_study_plan(st, &b) != LB_OK) cli_fatal("--plan: %s", lb_last_error());
        fputs(b.p, stdout);
        lb_buf_free(&b);
        return 0;
    }
    lb_study_events ev = {&f->quiet, on_reused, on_job, on_grid, on_note};
    lb_study_set_events(st, &ev);
    lb_scheduler sched = pick_scheduler(f);
    int rc = lb_study_execute(st, &sched);
    if (rc == LB_EINTR || stop_signal) {
        fprintf(stderr, "%s: interrupted; finished runs are kept in %s/runs (--resume)\n", cli_prog, f->c.out_dir);
        return 128 + (stop_signal ? stop_signal : SIGINT);
    }
    if (rc != LB_OK) {
        fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        return CLI_EXIT_RUNTIME;
    }
    return finish(f, st);
}

/* A rank other than 0: the jobs rank 0 hands out, until it says stop. */
static int serve(lb_study *st, int saved[2])
{
    silence(0, saved);
    int rc = lb_dist_serve(&dist, st);
    if (rc == LB_EINTR || stop_signal) return 128 + (stop_signal ? stop_signal : SIGTERM);
    if (rc != LB_OK) {
        fprintf(stderr, "%s (rank %d): %s\n", cli_prog, dist.rank, lb_last_error());
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

/* ---- a sweep: the study once per profile ---- */

typedef struct {
    int n;
    char **profile; /* as given */
    char **dir;     /* OUT/<slug> */
    char **rel;     /* <slug>, relative to OUT */
} sweep;

/* The profiles of --imbalance 'A|B|...' (n = 0: not a sweep), as lb_profile_list spells them. */
static void sweep_parse(const char *spec, const char *out, sweep *w)
{
    memset(w, 0, sizeof *w);
    if (!spec || !strchr(spec, '|')) return;
    if (lb_profile_list(spec, &w->profile, &w->n) != LB_OK) cli_usage_error("--imbalance: %s", lb_last_error());
    w->dir = calloc((size_t)w->n, sizeof *w->dir);
    w->rel = calloc((size_t)w->n, sizeof *w->rel);
    if (!w->dir || !w->rel) cli_fatal("out of memory");
    for (int i = 0; i < w->n; i++) {
        char slug[160];
        w->rel[i] = lb_strdup(lb_slug(w->profile[i], slug, sizeof slug));
        w->dir[i] = lb_strfmt("%s/%s", out, w->rel[i]);
        if (!w->rel[i] || !w->dir[i]) cli_fatal("out of memory");
    }
}

static void sweep_free(sweep *w)
{
    for (int i = 0; i < w->n; i++) {
        lb_free(w->profile[i]);
        lb_free(w->dir[i]);
        lb_free(w->rel[i]);
    }
    lb_free(w->profile);
    free(w->dir);
    free(w->rel);
}

/* The sweep's own files in OUT, from every profile's results, and its table. */
static int sweep_finish(const flags *f, const sweep *w, lb_study **st, const char *out)
{
    const lb_results **parts = lb_calloc((size_t)w->n, sizeof *parts);
    if (!parts) cli_fatal("out of memory");
    int rc = LB_OK;
    for (int i = 0; i < w->n && rc == LB_OK; i++)
        if (!(parts[i] = lb_study_results(st[i]))) rc = lb_last_status();
    static const char *const names[] = {"results.json", "results.csv", "summary.csv", "report.html"};
    for (int k = 0; k < 4 && rc == LB_OK; k++) {
        char *path = lb_strfmt("%s/%s", out, names[k]);
        if (!path) cli_fatal("out of memory");
        const char *const *rel = (const char *const *)w->rel;
        rc = k == 0   ? lb_sweep_write_json(parts, rel, w->n, path)
             : k == 1 ? lb_sweep_write_csv(parts, w->n, path)
             : k == 2 ? lb_report_write_summary_csv(parts, w->n, path)
                      : lb_sweep_write_html(parts, rel, w->n, path);
        lb_free(path);
    }
    if (rc == LB_OK && !f->quiet) {
        lb_buf b = {0};
        if (lb_sweep_summary_text(parts, w->n, &b) == LB_OK) fprintf(stderr, "\n%s\n", b.p);
        lb_buf_free(&b);
    }
    lb_free(parts);
    if (rc != LB_OK) {
        fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        return CLI_EXIT_RUNTIME;
    }
    printf("sweep:   %s/results.json\ntable:   %s/results.csv\nreport:  %s/report.html\n", out, out, out);
    return 0;
}

/* Under mpirun, between two studies of a sweep: rank 0 tells the others that this one is
 * over (they then serve the next); a rank other than 0 goes on unless rank 0 said stop. */
static int next_study(const flags *f, lb_study *st, int *go_on)
{
    *go_on = 1;
    if (dist.size <= 1) return 0;
    if (dist.rank > 0) {
        *go_on = !lb_dist_stopped(&dist);
        return 0;
    }
    int rc = lb_dist_next_study(&dist, st);
    if (rc == LB_EINTR || stop_signal) {
        fprintf(stderr, "%s: interrupted; finished runs are kept in %s/runs (--resume)\n", cli_prog, f->c.out_dir);
        return 128 + (stop_signal ? stop_signal : SIGINT);
    }
    if (rc != LB_OK) {
        fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

/* Every profile's study in its folder, one after another; the sweep's files once all are
 * done. Under mpirun every rank goes through the profiles in the same order: rank 0 runs each
 * study, the others serve it. */
static int run_sweep(flags *f, lb_data_opts *dopts, const sweep *w, int saved[2])
{
    const char *out = f->c.out_dir, *all = dopts->imbalance;
    lb_study **st = lb_calloc((size_t)w->n, sizeof *st);
    lb_data **data = lb_calloc((size_t)w->n, sizeof *data);
    if (!st || !data) cli_fatal("out of memory");
    int status = 0, go_on = 1;
    for (int i = 0; i < w->n && status == 0 && go_on; i++) {
        dopts->imbalance = w->profile[i];
        f->c.out_dir = w->dir[i];
        if (!f->quiet) fprintf(stderr, "\n== imbalance %s (%d of %d) -> %s\n", w->profile[i], i + 1, w->n, w->dir[i]);
        if (dist.rank > 0 && i > 0) silence(1, saved); /* quiet again until it serves (rank 0 reports) */
        data[i] = open_data(f, dopts);
        if (!(st[i] = lb_study_new(&f->c, data[i]))) cli_fatal("%s", lb_last_error());
        lb_study_set_stop(st[i], &stop_signal);
        if (lb_study_set_flag(st[i], "sweep", all) != LB_OK) cli_fatal("%s", lb_last_error());
        status = dist.rank > 0 ? serve(st[i], saved) : run_study(f, st[i]);
        if (status == 0 && i + 1 < w->n) status = next_study(f, st[i], &go_on);
    }
    dopts->imbalance = (char *)all;
    f->c.out_dir = out;
    if (status == 0 && go_on && dist.rank == 0 && !f->plan && f->c.n_shards <= 1) status = sweep_finish(f, w, st, out);
    for (int i = w->n - 1; i >= 0; i--) free_all(st[i], data[i], NULL); /* the last made folder first */
    lb_free(st);
    lb_free(data);
    return status;
}

/* --task dense: the flags of a classification study that mean nothing here are refused. */
static void check_dense_flags(const flags *f, const lb_data_opts *dopts)
{
    if (!dopts->data || strncmp(dopts->data, "dense:", 6) != 0)
        cli_usage_error("--task dense: give --data dense:SOURCE,... (got '%s')", dopts->data ? dopts->data : "");
    if (dist.size > 1) cli_usage_error("--task dense: a dense study runs without mpirun (--jobs, --only)");
    if (dopts->imbalance && strchr(dopts->imbalance, '|')) cli_usage_error("--imbalance: sweeps are for classification");
    if (f->epochs > 0) cli_usage_error("--epochs: a dense study counts steps (--steps)");
    if (f->plan) cli_usage_error("--plan: not for a dense study (its plan is strategies x seeds)");
    if (f->target_given) cli_usage_error("--target-recall: for binary classification, not for a dense study");
    if (f->c.train.keep_best || f->c.train.patience > 0)
        cli_usage_error("--keep best / --patience: not for a dense study (every run trains its whole budget)");
}

static int run_dense(flags *f, lb_data_opts *dopts)
{
    check_dense_flags(f, dopts);
    cli_dense_compare a;
    memset(&a, 0, sizeof a);
    lb_dense_study_config_init(&a.c);
    lb_train_opts t = f->c.train;
    t.arch = f->arch_given ? f->c.train.arch : NULL;
    t.batch = f->batch_given ? f->c.train.batch : 32;
    t.steps = f->steps > 0 ? f->steps : f->quick ? 200 : 600;
    t.eval_every = t.eval_every > 0 ? t.eval_every : (t.steps / 10 > 0 ? t.steps / 10 : 1);
    t.log_every = 5;
    t.monitor = LB_MONITOR_NONE;
    t.loss = NULL;
    a.c.train = t;
    a.c.strategies = f->c.strategies;
    a.c.seeds = (int)(f->seeds > 0 ? f->seeds : f->quick ? 2 : 3);
    a.c.seed0 = f->c.seed0;
    if (f->prior > 0) a.c.prior = f->prior;
    a.c.data = dopts;
    if (f->out_given) a.c.out_dir = f->c.out_dir;
    a.c.resume = f->c.resume, a.c.force = f->c.force;
    a.c.shard = f->c.shard, a.c.n_shards = f->c.n_shards;
    a.jobs = f->jobs, a.quiet = f->quiet, a.aggregate = f->aggregate;
    if (lb_dense_study_check(&a.c) != LB_OK) cli_usage_error("--strategies: %s", lb_last_error());
    cli_dense_check_arch(t.arch, dopts->data);
    if (lb_check_output_dir(a.c.out_dir) != LB_OK) cli_fatal("--out %s: %s", a.c.out_dir, lb_last_error());
    if (!f->quiet) cli_print_header(stderr, a.c.seed0, t.threads, "task dense");
    lb_data *d = cli_data_load(dopts, f->quiet);
    if (lb_dense_study_check_data(&a.c, d) != LB_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", lb_last_error());
        lb_data_free(d); /* nothing is left allocated when the program stops on the usage error */
        cli_usage_error("--strategies: %s", why);
    }
    int status = cli_dense_compare_run(&a, d, &stop_signal);
    lb_data_free(d);
    lb_data_opts_free(dopts);
    return status;
}

int main(int argc, char **argv)
{
    cli_init(argv);
    if (lb_dist_init(&argc, &argv, &dist) != LB_OK) { /* e.g. a build without MPI under mpirun */
        if (dist.rank == 0) fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        return CLI_EXIT_USAGE;
    }
    atexit(end_dist);
    int saved[2] = {-1, -1};
    if (dist.rank > 0) silence(1, saved);
    flags f;
    memset(&f, 0, sizeof f);
    parse_flags(argc, argv, &f);
    check_ranks(&f);
    f.quiet |= dist.rank > 0;
    f.c.worker = dist.rank > 0;
    lb_data_opts dopts;
    lb_data_opts_init(&dopts);
    data_options(&f, &dopts);
    if (lb_set_threads(f.c.train.threads) != LB_OK) cli_fatal("--threads %d: %s", f.c.train.threads, lb_last_error());
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (f.dense) return run_dense(&f, &dopts);
    sweep w;
    sweep_parse(dopts.imbalance, f.c.out_dir, &w);
    if (w.n > 0) {
        int status = run_sweep(&f, &dopts, &w, saved);
        sweep_free(&w);
        lb_data_opts_free(&dopts);
        return status;
    }
    lb_data *data = open_data(&f, &dopts);
    lb_study *st = lb_study_new(&f.c, data);
    if (!st) cli_fatal("%s", lb_last_error());
    lb_study_set_stop(st, &stop_signal);
    int status = dist.rank > 0 ? serve(st, saved) : run_study(&f, st);
    free_all(st, data, &dopts);
    return status;
}
