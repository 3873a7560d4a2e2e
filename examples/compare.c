/* libra-compare: the imbalance study. Trains the same network under each strategy (a loss,
 * a sampler, post-hoc corrections) on the same imbalanced split, with the same step budget
 * and several seeds, and writes OUT/results.json, OUT/results.csv, OUT/report.html, and
 * each run's record and curves under OUT/runs and OUT/curves. The study itself is the
 * library's (libra/study.h); this program reads the flags, picks a scheduler and prints. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "libra/dist.h"
#include "libra/losses.h"
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
    "  --seeds N              seeds per strategy (default 3; --quick: 2)\n"
    "  --seed N               first seed (default 1); runs use seeds N, N+1, ...\n"
    "  --steps N              step budget of every run (default 1500; --quick: 300)\n"
    "  --epochs N             instead of --steps: N epochs of the plain training set, as steps\n"
    "  --batch N              batch size (default 64)\n"
    "  --arch SPEC            network (default smallcnn; see libra-train --help)\n"
    "  --threads N            threads per run (default 1)\n"
    "  --target-recall R      binary tasks: the rare class's recall each run's operating point is\n"
    "                         chosen for on the validation split (default 0.95)\n"
    "  --jobs N               runs in parallel processes (default: the number of CPUs)\n"
    "  --quick                a study of a few minutes: 2 seeds, 300 steps\n"
    "  --out DIR              output directory (default results/study)\n"
    "  --resume               reuse the runs already finished in OUT (same settings required)\n"
    "  --force                replace a study of other settings in OUT\n"
    "  --quiet                only errors and the final paths\n"
    "  --list                 list the losses and samplers, then exit\n"
    "  --help                 this text\n"
    "\n"
    "%s"
    "  (the study evaluates on validation ten times per run unless --eval-every is given)\n"
    "\n"
    "%s"
    "  (default data: --preset fmnist-lt100, i.e. Fashion-MNIST long-tailed with rho = 100,\n"
    "   10%% of it held out for validation)\n"
    "\n"
    "Exit status: 0 success, 1 runtime error (data, file, a failed run), 2 bad flag or value,\n"
    "130 interrupted (SIGINT; 143: SIGTERM); finished runs are kept for --resume.\n";

enum {
    OPT_STRATEGIES = 1, OPT_SEEDS, OPT_SEED, OPT_STEPS, OPT_EPOCHS, OPT_BATCH, OPT_ARCH, OPT_THREADS,
    OPT_JOBS, OPT_TARGET_RECALL, OPT_QUICK, OPT_OUT, OPT_RESUME, OPT_FORCE, OPT_QUIET, OPT_LIST, OPT_HELP
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
    CLI_DATA_LONGOPTS,
    CLI_TRAIN_LONGOPTS,
    {0, 0, 0, 0}};

typedef struct {
    lb_study_config c;
    cli_data_flags df;
    long jobs, steps, epochs, seeds;
    int quick, quiet, list;
} flags;

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
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_data_flag(&f->df, c, optarg) || cli_train_flag(&f->c.train, c, optarg)) continue;
        switch (c) {
        case OPT_STRATEGIES: f->c.strategies = optarg; break;
        case OPT_SEEDS: f->seeds = cli_long("seeds", optarg, 1, 1000); break;
        case OPT_SEED: f->c.seed0 = cli_u64("seed", optarg); break;
        case OPT_STEPS: f->steps = cli_long("steps", optarg, 1, 100000000L); break;
        case OPT_EPOCHS: f->epochs = cli_long("epochs", optarg, 1, 100000); break;
        case OPT_BATCH: f->c.train.batch = (int)cli_long("batch", optarg, 1, 65536); break;
        case OPT_ARCH: f->c.train.arch = optarg; break;
        case OPT_THREADS: f->c.train.threads = (int)cli_long("threads", optarg, 1, 256); break;
        case OPT_JOBS: f->jobs = cli_long("jobs", optarg, 1, 256); break;
        case OPT_TARGET_RECALL: f->c.target_recall = cli_double("target-recall", optarg, 1e-9, 1.0); break;
        case OPT_QUICK: f->quick = 1; break;
        case OPT_OUT: f->c.out_dir = optarg; break;
        case OPT_RESUME: f->c.resume = 1; break;
        case OPT_FORCE: f->c.force = 1; break;
        case OPT_QUIET: f->quiet = 1; break;
        case OPT_LIST: f->list = 1; break;
        case 'h':
        case OPT_HELP: printf(usage, lb_default_strategy_list(), cli_train_help, cli_data_help); exit(0);
        default: cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (f->steps > 0 && f->epochs > 0) cli_usage_error("--steps and --epochs: give one of them");
    if (f->c.resume && f->c.force) cli_usage_error("--resume and --force: give one of them");
    if (f->list) list_and_exit();
    if (f->jobs < 1) f->jobs = 1;
    f->c.seeds = (int)(f->seeds > 0 ? f->seeds : f->quick ? 2 : 3);
    f->c.train.steps = f->epochs > 0 ? 0 : f->steps > 0 ? f->steps : f->quick ? 300 : 1500;
    f->c.train.epochs = f->epochs > 0 ? (int)f->epochs : 0;
    f->c.train.monitor = LB_MONITOR_VAL; /* what the study does; a split without validation is refused later */
    cli_train_check(&f->c.train);
}

/* ---- progress ---- */

static void on_reused(void *ctx, int n)
{
    if (!*(int *)ctx) fprintf(stderr, "--resume: %d finished runs reused\n", n);
}

static void on_job(void *ctx, const lb_job *job, const lb_run_record *r, int done, int total, double seconds)
{
    if (*(int *)ctx) return;
    fprintf(stderr, "[%*d/%d] %-28s seed %-3llu bal.acc %.4f  acc %.4f  min.recall %.4f  (%.0f s, %.0f img/s)\n",
            total >= 100 ? 3 : 2, done, total, r->strategy, (unsigned long long)job->seed,
            r->metrics.balanced_accuracy, r->metrics.accuracy, r->metrics.minority_recall,
            seconds > 0 ? seconds : r->wall_seconds, r->images_per_sec);
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

/* The data, the long-tailed Fashion-MNIST preset unless a source is given. */
static lb_data *open_data(flags *f, lb_data_opts *dopts)
{
    int has_source = 0;
    for (int i = 0; i < f->df.n; i++) has_source |= f->df.code[i] == CLI_OPT_PRESET || f->df.code[i] == CLI_OPT_DATA;
    if (!has_source) cli_data_flag_first(&f->df, CLI_OPT_PRESET, "fmnist-lt100");
    cli_data_apply(&f->df, dopts);
    f->c.data = dopts;
    if (lb_arch_check(f->c.train.arch) != LB_OK) cli_usage_error("--arch: %s", lb_last_error());
    if (lb_study_check(&f->c) != LB_OK) cli_usage_error("--strategies: %s", lb_last_error());
    if (lb_check_output_dir(f->c.out_dir) != LB_OK) cli_fatal("--out %s: %s", f->c.out_dir, lb_last_error());
    if (!f->quiet) {
        char **items = NULL, extra[512];
        int n = 0;
        lb_strategy_split(f->c.strategies ? f->c.strategies : lb_default_strategy_list(), &items, &n);
        for (int i = 0; i < n; i++) lb_free(items[i]);
        lb_free(items);
        snprintf(extra, sizeof extra, "%d strategies x %d seeds | jobs %ld | out %s", n, f->c.seeds, f->jobs,
                 f->c.out_dir);
        cli_print_header(stderr, f->c.seed0, f->c.train.threads, extra);
    }
    lb_data *d = cli_data_load(dopts, f->quiet);
    return d;
}

int main(int argc, char **argv)
{
    cli_init(argv);
    flags f;
    memset(&f, 0, sizeof f);
    parse_flags(argc, argv, &f);
    lb_data_opts dopts;
    lb_data_opts_init(&dopts);
    lb_data *data = open_data(&f, &dopts);
    if (lb_set_threads(f.c.train.threads) != LB_OK) cli_fatal("--threads %d: %s", f.c.train.threads, lb_last_error());
    lb_study *st = lb_study_new(&f.c, data);
    if (!st) cli_fatal("%s", lb_last_error());
    lb_study_events ev = {&f.quiet, on_reused, on_job, on_grid, on_note};
    lb_study_set_events(st, &ev);
    lb_study_set_stop(st, &stop_signal);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lb_scheduler sched = lb_scheduler_fork((int)f.jobs);
    int rc = lb_study_execute(st, &sched);
    if (rc == LB_EINTR || stop_signal) {
        fprintf(stderr, "%s: interrupted; finished runs are kept in %s/runs (--resume)\n", cli_prog, f.c.out_dir);
        lb_study_free(st);
        lb_data_free(data);
        lb_data_opts_free(&dopts);
        return 128 + (stop_signal ? stop_signal : SIGINT);
    }
    if (rc == LB_OK) rc = lb_study_write(st);
    if (rc != LB_OK) {
        fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        lb_study_free(st); /* takes away the folders of a study that stored nothing */
        lb_data_free(data);
        lb_data_opts_free(&dopts);
        return CLI_EXIT_RUNTIME;
    }
    if (!f.quiet) {
        lb_buf sum = {0};
        if (lb_study_summary(st, &sum) == LB_OK) fprintf(stderr, "\n%s\n", sum.p);
        lb_buf_free(&sum);
    }
    printf("results: %s/results.json\ntable:   %s/results.csv\nreport:  %s/report.html\n", f.c.out_dir, f.c.out_dir,
           f.c.out_dir);
    lb_study_free(st);
    lb_data_free(data);
    lb_data_opts_free(&dopts);
    return 0;
}
