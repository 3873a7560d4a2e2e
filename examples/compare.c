/* libra-compare: the imbalance study. Trains the same network under each strategy (a loss,
 * a sampler, post-hoc corrections) on the same imbalanced split, with the same step budget
 * and several seeds, and writes OUT/results.json, OUT/results.csv, OUT/report.html, and
 * each run's record and curves under OUT/runs and OUT/curves.
 *
 * Every (training key, seed) run is an independent job: with --jobs N they run in N forked
 * processes (the dataset is loaded once, before forking, and shared copy-on-write); each
 * finished run is saved at once as OUT/runs/<run>.json, which --resume reuses. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cli.h"
#include "libra/losses.h"
#include "libra/study.h"

static const char usage[] =
    "Usage: libra-compare [options]\n"
    "Trains the same CNN under each strategy on the same imbalanced split (same step budget,\n"
    "several seeds) and reports per-class metrics in OUT/results.json, results.csv and report.html.\n"
    "\n"
    "Study:\n"
    "  --strategies LIST      strategies separated by ';' (or ',' where unambiguous), each\n"
    "                         LOSS[@SAMPLER][+posthoc], e.g. 'ce;focal:gamma=2;ce@oversample';\n"
    "                         a value a|b|c is a grid tuned on the validation split.\n"
    "                         Default: %s\n"
    "  --seeds N              seeds per strategy (default 3; --quick: 2)\n"
    "  --seed N               first seed (default 1); runs use seeds N, N+1, ...\n"
    "  --steps N              step budget of every run (default 1500; --quick: 300)\n"
    "  --epochs N             instead of --steps: N epochs of the plain training set, as steps\n"
    "  --batch N              batch size (default 64)\n"
    "  --lr X                 Adam learning rate (default 0.001)\n"
    "  --arch SPEC            network (default smallcnn)\n"
    "  --threads N            BLAS threads per run (default 1)\n"
    "  --jobs N               runs in parallel processes (default: the number of CPUs)\n"
    "  --quick                a study of a few minutes: 2 seeds, 300 steps\n"
    "  --out DIR              output directory (default results/study)\n"
    "  --resume               reuse the runs already finished in OUT (same settings required)\n"
    "  --quiet                only errors and the final paths\n"
    "  --list                 list the losses and samplers, then exit\n"
    "  --help                 this text\n"
    "\n"
    "%s"
    "  (default data: --preset fmnist-lt100, i.e. Fashion-MNIST long-tailed with rho = 100,\n"
    "   10%% of it held out for validation)\n"
    "\n"
    "Exit status: 0 success, 1 runtime error (data, file, a failed run), 2 bad flag or value.\n";

enum {
    OPT_STRATEGIES = 1, OPT_SEEDS, OPT_SEED, OPT_STEPS, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_ARCH, OPT_THREADS,
    OPT_JOBS, OPT_QUICK, OPT_OUT, OPT_RESUME, OPT_QUIET, OPT_LIST, OPT_HELP
};

static const struct option longopts[] = {
    {"strategies", required_argument, 0, OPT_STRATEGIES},
    {"seeds", required_argument, 0, OPT_SEEDS},
    {"seed", required_argument, 0, OPT_SEED},
    {"steps", required_argument, 0, OPT_STEPS},
    {"epochs", required_argument, 0, OPT_EPOCHS},
    {"batch", required_argument, 0, OPT_BATCH},
    {"lr", required_argument, 0, OPT_LR},
    {"arch", required_argument, 0, OPT_ARCH},
    {"threads", required_argument, 0, OPT_THREADS},
    {"jobs", required_argument, 0, OPT_JOBS},
    {"quick", no_argument, 0, OPT_QUICK},
    {"out", required_argument, 0, OPT_OUT},
    {"resume", no_argument, 0, OPT_RESUME},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"list", no_argument, 0, OPT_LIST},
    {"help", no_argument, 0, OPT_HELP},
    CLI_DATA_LONGOPTS,
    {0, 0, 0, 0}};

/* One training job: a loss point, a sampler, a seed. */
typedef struct job {
    char *loss, *sampler;
    uint64_t seed;
    char path[1024];   /* OUT/runs/<slug>.json */
    int done;          /* record file complete */
    pid_t pid;
} job;

typedef struct plan {
    job *jobs;
    int n, cap;
} plan;

static const char *out_dir = "results/study";
static int quiet = 0;

/* The job for (loss, sampler, seed), added if new. */
static job *plan_job(plan *p, const char *loss, const char *sampler, uint64_t seed)
{
    for (int i = 0; i < p->n; i++)
        if (p->jobs[i].seed == seed && !strcmp(p->jobs[i].loss, loss) && !strcmp(p->jobs[i].sampler, sampler))
            return &p->jobs[i];
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 32;
        p->jobs = realloc(p->jobs, (size_t)p->cap * sizeof *p->jobs);
        if (!p->jobs) cli_fatal("out of memory");
    }
    job *j = &p->jobs[p->n++];
    memset(j, 0, sizeof *j);
    j->loss = strdup(loss);
    j->sampler = strdup(sampler);
    j->seed = seed;
    char key[600], slug[600];
    snprintf(key, sizeof key, "%s@%s", loss, sampler);
    snprintf(j->path, sizeof j->path, "%s/runs/%s-s%llu.json", out_dir, lb_slug(key, slug, sizeof slug),
             (unsigned long long)seed);
    return j;
}

/* The output directory must be writable before hours of training, not after. */
static void check_out_dir(void)
{
    char p[1100];
    cli_make_output_dir("--out", out_dir);
    snprintf(p, sizeof p, "%s/runs", out_dir);
    cli_make_output_dir("--out", p);
    snprintf(p, sizeof p, "%s/curves", out_dir);
    cli_make_output_dir("--out", p);
}

/* Settings a resumed study must share with the runs it reuses. */
static void settings_text(char *buf, size_t n, const lb_data_opts *d, const lb_train_opts *o)
{
    snprintf(buf, n,
             "data=%s\nimbalance=%s\norder=%s\nval=%.9g\ntest=%.9g\nchannels=%d\nsize=%dx%d\ndata_seed=%llu\n"
             "arch=%s\nsteps=%ld\nbatch=%d\nlr=%.9g\nthreads=%d\nlibra=%s\n",
             d->data ? d->data : "fmnist", d->imbalance ? d->imbalance : "none", d->order ? d->order : "natural",
             d->val_frac, d->test_frac, d->channels, d->height, d->width, (unsigned long long)d->seed, o->arch,
             o->steps, o->batch, o->lr, o->threads, lb_version());
}

static void check_settings(const char *text, int resume)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/runs/settings.txt", out_dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        char old[4096];
        size_t n = fread(old, 1, sizeof old - 1, f);
        old[n] = '\0';
        fclose(f);
        if (strcmp(old, text) != 0) {
            if (resume)
                cli_fatal("--resume: the runs in %s/runs were made with other settings (see %s); "
                          "use another --out or the same flags",
                          out_dir, path);
        }
    }
    if (lb_write_file_atomic(path, text, strlen(text)) != LB_OK) cli_fatal("%s", lb_last_error());
}

static void write_curves(const job *j, const lb_run_record *r)
{
    char path[1200], slug[600], key[600];
    snprintf(key, sizeof key, "%s@%s", j->loss, j->sampler);
    snprintf(path, sizeof path, "%s/curves/%s-s%llu.csv", out_dir, lb_slug(key, slug, sizeof slug),
             (unsigned long long)j->seed);
    size_t cap = 64 + (r->loss.n + r->val_bacc.n) * 48, k = 0;
    char *b = malloc(cap);
    if (!b) cli_fatal("out of memory");
    k += (size_t)snprintf(b + k, cap - k, "step,loss,val_balanced_accuracy\n");
    size_t v = 0;
    for (size_t i = 0; i < r->loss.n; i++) {
        /* the validation points fall on logged steps or between them: merge by step */
        while (v < r->val_bacc.n && r->val_bacc.step[v] < r->loss.step[i]) {
            k += (size_t)snprintf(b + k, cap - k, "%lld,,%.9g\n", (long long)r->val_bacc.step[v], r->val_bacc.value[v]);
            v++;
        }
        if (v < r->val_bacc.n && r->val_bacc.step[v] == r->loss.step[i]) {
            k += (size_t)snprintf(b + k, cap - k, "%lld,%.9g,%.9g\n", (long long)r->loss.step[i], r->loss.value[i],
                                  r->val_bacc.value[v]);
            v++;
        } else
            k += (size_t)snprintf(b + k, cap - k, "%lld,%.9g,\n", (long long)r->loss.step[i], r->loss.value[i]);
    }
    for (; v < r->val_bacc.n; v++)
        k += (size_t)snprintf(b + k, cap - k, "%lld,,%.9g\n", (long long)r->val_bacc.step[v], r->val_bacc.value[v]);
    if (lb_write_file_atomic(path, b, k) != LB_OK) cli_fatal("%s", lb_last_error());
    free(b);
}

/* Runs one job in this process and saves its record; returns 0 on success. */
static int run_job(const job *j, const lb_train_opts *base, const lb_data *data)
{
    lb_train_opts o = *base;
    o.loss = j->loss;
    o.sampler = j->sampler;
    o.seed = j->seed;
    lb_run_record r;
    if (lb_study_run_one(&o, data, NULL, &r) != LB_OK) {
        fprintf(stderr, "%s: run %s@%s seed %llu failed: %s\n", cli_prog, j->loss, j->sampler,
                (unsigned long long)j->seed, lb_last_error());
        return 1;
    }
    int rc = lb_run_record_write_json(&r, j->path);
    if (rc != LB_OK) fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
    else write_curves(j, &r);
    lb_run_record_free(&r);
    return rc != LB_OK;
}

static int finished_runs, total_runs;

static void report_done(const job *j, double seconds)
{
    finished_runs++;
    if (quiet) return;
    lb_run_record r;
    if (lb_run_record_read_json(&r, j->path) != LB_OK) cli_fatal("%s", lb_last_error());
    fprintf(stderr, "[%*d/%d] %-28s seed %-3llu bal.acc %.4f  acc %.4f  min.recall %.4f  (%.0f s, %.0f img/s)\n",
            total_runs >= 100 ? 3 : 2, finished_runs, total_runs, r.strategy, (unsigned long long)j->seed,
            r.metrics.balanced_accuracy, r.metrics.accuracy, r.metrics.minority_recall,
            seconds > 0 ? seconds : r.wall_seconds, r.images_per_sec);
    lb_run_record_free(&r);
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Runs the jobs that are not done, at most n_proc at a time. */
static void run_jobs(job **todo, int n, int n_proc, const lb_train_opts *base, const lb_data *data)
{
    if (n_proc <= 1) {
        for (int i = 0; i < n && !interrupted; i++) {
            double t0 = lb_now();
            if (run_job(todo[i], base, data)) cli_fatal("the study stopped; finished runs are kept (--resume)");
            todo[i]->done = 1;
            report_done(todo[i], lb_now() - t0);
        }
        if (interrupted) cli_fatal("interrupted; finished runs are kept in %s/runs (--resume)", out_dir);
        return;
    }
    int next = 0, running = 0, failed = 0;
    double *start = calloc((size_t)n, sizeof *start);
    while ((next < n && !failed && !interrupted) || running > 0) {
        while (running < n_proc && next < n && !failed && !interrupted) {
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) cli_fatal("fork: %s", strerror(errno));
            if (pid == 0) {
                signal(SIGINT, SIG_DFL);
                _exit(run_job(todo[next], base, data));
            }
            todo[next]->pid = pid;
            start[next] = lb_now();
            next++;
            running++;
        }
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < next; i++)
            if (todo[i]->pid == pid) {
                running--;
                todo[i]->pid = 0;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                    todo[i]->done = 1;
                    report_done(todo[i], lb_now() - start[i]);
                } else {
                    failed = 1;
                    if (WIFSIGNALED(status))
                        fprintf(stderr, "%s: run %s@%s seed %llu was killed by signal %d\n", cli_prog, todo[i]->loss,
                                todo[i]->sampler, (unsigned long long)todo[i]->seed, WTERMSIG(status));
                }
            }
    }
    free(start);
    if (failed) cli_fatal("the study stopped after a failed run; finished runs are kept (--resume)");
    if (interrupted) cli_fatal("interrupted; finished runs are kept in %s/runs (--resume)", out_dir);
}

/* Adds the records of strategy s for every seed to the study, from the job files. */
static void add_records(lb_results *st, const lb_strategy *s, int chosen, const float *grid_vals, plan *p,
                        uint64_t seed0, int seeds)
{
    for (int k = 0; k < seeds; k++) {
        job *j = plan_job(p, s->points[chosen], s->sampler, seed0 + (uint64_t)k);
        lb_run_record r;
        if (lb_run_record_read_json(&r, j->path) != LB_OK) cli_fatal("%s", lb_last_error());
        if (lb_run_record_set_strategy(&r, s->spec) != LB_OK) cli_fatal("%s", lb_last_error());
        if (!s->posthoc) { /* the corrections belong to +posthoc strategies only */
            for (size_t i = 0; i < r.n_posthoc; i++) {
                lb_free(r.posthoc[i].name);
                lb_metrics_free(&r.posthoc[i].metrics);
            }
            r.n_posthoc = 0;
        }
        if (s->n_points > 1) {
            for (int g = 0; g < s->n_points; g++)
                if (lb_run_record_add_grid(&r, s->points[g], grid_vals[g]) != LB_OK) cli_fatal("%s", lb_last_error());
            r.grid_chosen = chosen;
        }
        if (lb_results_take_run(st, &r) != LB_OK) cli_fatal("%s", lb_last_error());
        lb_run_record_free(&r);
    }
}

int main(int argc, char **argv)
{
    cli_init(argv[0]);
    cli_data_flags df = {0};
    const char *strategies = NULL, *arch = "smallcnn";
    long seeds = -1, steps = -1, epochs = -1, batch = 64, threads = 1, jobs = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t seed0 = 1;
    double lr = 1e-3;
    int quick = 0, resume = 0, list = 0, c;
    if (jobs < 1) jobs = 1;
    char defaults[1024] = "";
    for (int i = 0; lb_default_strategies[i]; i++) {
        strcat(defaults, i ? ";" : "");
        strcat(defaults, lb_default_strategies[i]);
    }
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_data_flag(&df, c, optarg)) continue;
        switch (c) {
        case OPT_STRATEGIES: strategies = optarg; break;
        case OPT_SEEDS: seeds = cli_long("--seeds", optarg, 1, 1000); break;
        case OPT_SEED: seed0 = cli_u64("--seed", optarg); break;
        case OPT_STEPS: steps = cli_long("--steps", optarg, 1, 100000000L); break;
        case OPT_EPOCHS: epochs = cli_long("--epochs", optarg, 1, 100000); break;
        case OPT_BATCH: batch = cli_long("--batch", optarg, 1, 65536); break;
        case OPT_LR: lr = cli_double("--lr", optarg, 0.0, 100.0); break;
        case OPT_ARCH: arch = optarg; break;
        case OPT_THREADS: threads = cli_long("--threads", optarg, 1, 256); break;
        case OPT_JOBS: jobs = cli_long("--jobs", optarg, 1, 256); break;
        case OPT_QUICK: quick = 1; break;
        case OPT_OUT: out_dir = optarg; break;
        case OPT_RESUME: resume = 1; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_LIST: list = 1; break;
        case 'h':
        case OPT_HELP: printf(usage, defaults, cli_data_help); return 0;
        default: cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (steps > 0 && epochs > 0) cli_usage_error("--steps and --epochs: give one of them");
    if (list) {
        const char *names[128];
        int n = lb_loss_list(names, 128);
        printf("losses:");
        for (int i = 0; i < n && i < 128; i++) printf(" %s", names[i]);
        printf("\nsamplers: shuffle undersample oversample balanced sqrt progressive\n");
        printf("default strategies: %s\n", defaults);
        return 0;
    }
    if (seeds < 0) seeds = quick ? 2 : 3;
    if (steps < 0 && epochs < 0) steps = quick ? 300 : 1500;

    /* the dataset: the long-tailed Fashion-MNIST preset unless told otherwise */
    lb_data_opts dopts;
    lb_data_opts_init(&dopts);
    int has_source = 0;
    for (int i = 0; i < df.n; i++)
        if (df.code[i] == CLI_OPT_PRESET || df.code[i] == CLI_OPT_DATA) has_source = 1;
    if (!has_source && df.n < 32) {
        memmove(df.code + 1, df.code, (size_t)df.n * sizeof df.code[0]);
        memmove(df.arg + 1, df.arg, (size_t)df.n * sizeof df.arg[0]);
        df.code[0] = CLI_OPT_PRESET;
        df.arg[0] = "fmnist-lt100";
        df.n++;
    }
    cli_data_apply(&df, &dopts);

    /* strategies */
    char **items = NULL;
    int n_items = 0;
    if (lb_strategy_split(strategies ? strategies : defaults, &items, &n_items) != LB_OK)
        cli_usage_error("--strategies: %s", lb_last_error());
    lb_strategy *strat = calloc((size_t)n_items, sizeof *strat);
    for (int i = 0; i < n_items; i++)
        if (lb_strategy_parse(&strat[i], items[i]) != LB_OK) cli_usage_error("--strategies: %s", lb_last_error());

    check_out_dir();
    lb_set_threads((int)threads);
    if (!quiet) {
        char extra[256];
        snprintf(extra, sizeof extra, "%d strategies x %ld seeds | jobs %ld | out %s", n_items, seeds, jobs, out_dir);
        cli_print_header(stderr, seed0, (int)threads, extra);
    }
    lb_data *data = NULL;
    if (!(data = lb_data_new(&dopts))) cli_fatal("data: %s", lb_last_error());
    const lb_split *sp = &data->split;
    for (int i = 0; i < n_items; i++)
        if (lb_strategy_check(&strat[i], sp->n_classes, sp->train_counts) != LB_OK)
            cli_usage_error("--strategies: %s", lb_last_error());
    if (epochs > 0) steps = epochs * ((sp->n_train + batch - 1) / batch);
    if (!quiet) {
        fprintf(stderr, "data: %s, %s; train", data->train->source, sp->profile);
        for (int k = 0; k < sp->n_classes; k++) fprintf(stderr, " %d", sp->train_counts[k]);
        fprintf(stderr, " (%d), val %d, test %d; split seed %llu\n", sp->n_train, sp->n_val, sp->n_test,
                (unsigned long long)sp->seed);
    }

    lb_train_opts base;
    lb_train_opts_init(&base);
    base.arch = arch;
    base.steps = steps;
    base.batch = (int)batch;
    base.lr = lr;
    base.threads = (int)threads;
    base.monitor = sp->n_val > 0 ? LB_MONITOR_VAL : LB_MONITOR_NONE;
    /* ten validation points per run, whatever the sampler's epoch length */
    base.eval_every = steps >= 10 ? steps / 10 : 1;
    char settings[4096];
    settings_text(settings, sizeof settings, &dopts, &base);
    check_settings(settings, resume);

    /* phase 1: every strategy's first grid point... or all its points for the first seed */
    plan p = {0};
    for (int i = 0; i < n_items; i++) {
        lb_strategy *s = &strat[i];
        if (s->n_points > 1)
            for (int g = 0; g < s->n_points; g++) plan_job(&p, s->points[g], s->sampler, seed0);
        else
            for (long k = 0; k < seeds; k++) plan_job(&p, s->points[0], s->sampler, seed0 + (uint64_t)k);
    }
    int *chosen = calloc((size_t)n_items, sizeof *chosen);
    float **grid_vals = calloc((size_t)n_items, sizeof *grid_vals);
    signal(SIGINT, on_sigint);
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) { /* choose each grid's point by validation balanced accuracy, then its other seeds */
            for (int i = 0; i < n_items; i++) {
                lb_strategy *s = &strat[i];
                if (s->n_points == 1) continue;
                grid_vals[i] = calloc((size_t)s->n_points, sizeof(float));
                float best = -1.0f;
                for (int g = 0; g < s->n_points; g++) {
                    lb_run_record r;
                    if (lb_run_record_read_json(&r, plan_job(&p, s->points[g], s->sampler, seed0)->path) != LB_OK)
                        cli_fatal("%s", lb_last_error());
                    grid_vals[i][g] = lb_run_record_val_bacc(&r);
                    if (grid_vals[i][g] > best) {
                        best = grid_vals[i][g];
                        chosen[i] = g;
                    }
                    lb_run_record_free(&r);
                }
                if (!quiet)
                    fprintf(stderr, "grid %s: chose %s (validation balanced accuracy %.4f)\n", s->spec,
                            s->points[chosen[i]], best);
                for (long k = 1; k < seeds; k++) plan_job(&p, s->points[chosen[i]], s->sampler, seed0 + (uint64_t)k);
            }
        }
        job **todo = malloc((size_t)(p.n + 1) * sizeof *todo);
        int n_todo = 0, reused = 0;
        for (int i = 0; i < p.n; i++) {
            job *j = &p.jobs[i];
            if (j->done) continue;
            lb_run_record r;
            if (resume && access(j->path, F_OK) == 0) {
                if (lb_run_record_read_json(&r, j->path) == LB_OK) {
                    lb_run_record_free(&r);
                    j->done = 1;
                    reused++;
                    continue;
                }
                if (!quiet) fprintf(stderr, "--resume: %s is unreadable (%s); running it again\n", j->path, lb_last_error());
            }
            todo[n_todo++] = j;
        }
        total_runs = finished_runs + reused + n_todo;
        finished_runs += reused;
        if (!quiet && reused) fprintf(stderr, "--resume: %d finished runs reused\n", reused);
        run_jobs(todo, n_todo, (int)jobs, &base, data);
        free(todo);
    }

    /* the study: dataset, flags, one record per strategy x seed */
    lb_results st;
    lb_results_init(&st);
    if (lb_results_set_dataset(&st, data->train->source, sp->profile, sp->seed, sp->n_classes,
                               (const char *const *)sp->class_names, sp->train_counts, sp->val_counts,
                               sp->test_counts) != LB_OK)
        cli_fatal("%s", lb_last_error());
    char v[64];
    lb_results_set_flag(&st, "strategies", strategies ? strategies : defaults);
    snprintf(v, sizeof v, "%ld", seeds);
    lb_results_set_flag(&st, "seeds", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)seed0);
    lb_results_set_flag(&st, "seed", v);
    snprintf(v, sizeof v, "%ld", steps);
    lb_results_set_flag(&st, "steps", v);
    snprintf(v, sizeof v, "%ld", batch);
    lb_results_set_flag(&st, "batch", v);
    snprintf(v, sizeof v, "%.9g", lr);
    lb_results_set_flag(&st, "lr", v);
    lb_results_set_flag(&st, "arch", arch);
    lb_results_set_flag(&st, "optimizer", "adam");
    snprintf(v, sizeof v, "%ld", threads);
    lb_results_set_flag(&st, "threads", v);
    snprintf(v, sizeof v, "%ld", jobs);
    lb_results_set_flag(&st, "jobs", v);
    lb_results_set_flag(&st, "data", dopts.data ? dopts.data : "fmnist");
    lb_results_set_flag(&st, "imbalance", dopts.imbalance ? dopts.imbalance : "none");
    if (dopts.name) lb_results_set_flag(&st, "preset", dopts.name);
    snprintf(v, sizeof v, "%.9g", dopts.val_frac);
    lb_results_set_flag(&st, "val_fraction", v);
    for (int i = 0; i < n_items; i++) add_records(&st, &strat[i], chosen[i], grid_vals[i], &p, seed0, (int)seeds);

    char path[1100];
    snprintf(path, sizeof path, "%s/results.json", out_dir);
    if (lb_report_write_json(&st, path) != LB_OK) cli_fatal("%s", lb_last_error());
    snprintf(path, sizeof path, "%s/results.csv", out_dir);
    if (lb_report_write_csv(&st, path) != LB_OK) cli_fatal("%s", lb_last_error());
    snprintf(path, sizeof path, "%s/report.html", out_dir);
    if (lb_report_write_html(&st, path) != LB_OK) cli_fatal("%s", lb_last_error());

    if (!quiet) {
        /* the summary: mean balanced accuracy and minority recall per strategy (and per
         * post-hoc variant of the +posthoc ones) */
        fprintf(stderr, "\n%-40s %-17s %-17s %s\n", "strategy", "balanced acc", "minority recall", "macro F1");
        for (int i = 0; i < n_items; i++)
            for (int v = -1; v < (strat[i].posthoc ? 2 : 0); v++) {
                double s1 = 0, s2 = 0, m1 = 0, m2 = 0, f1 = 0;
                int n = 0;
                const char *vname = NULL;
                for (size_t r = 0; r < st.n_runs; r++) {
                    const lb_run_record *rec = &st.runs[r];
                    if (strcmp(rec->strategy, strat[i].spec) || (v >= 0 && (size_t)v >= rec->n_posthoc)) continue;
                    const lb_metrics *m = v < 0 ? &rec->metrics : &rec->posthoc[v].metrics;
                    if (v >= 0) vname = rec->posthoc[v].name;
                    s1 += m->balanced_accuracy;
                    s2 += (double)m->balanced_accuracy * m->balanced_accuracy;
                    m1 += m->minority_recall;
                    m2 += (double)m->minority_recall * m->minority_recall;
                    f1 += m->macro_f1;
                    n++;
                }
                if (!n) continue;
                double mb = s1 / n, mm = m1 / n;
                double sb = n > 1 ? sqrt(fmax(0, (s2 - n * mb * mb) / (n - 1))) : 0;
                double sm = n > 1 ? sqrt(fmax(0, (m2 - n * mm * mm) / (n - 1))) : 0;
                char label[200];
                snprintf(label, sizeof label, "%s%s%s", strat[i].spec, vname ? " / " : "", vname ? vname : "");
                fprintf(stderr, "%-40s %.4f ± %.4f   %.4f ± %.4f   %.4f\n", label, mb, sb, mm, sm, f1 / n);
            }
        fprintf(stderr, "(mean ± standard deviation over %ld seeds, test set)\n\n", seeds);
    }
    printf("results: %s/results.json\n", out_dir);
    printf("table:   %s/results.csv\n", out_dir);
    printf("report:  %s/report.html\n", out_dir);

    lb_results_free(&st);
    for (int i = 0; i < n_items; i++) {
        lb_strategy_free(&strat[i]);
        free(grid_vals[i]);
        lb_free(items[i]);
    }
    lb_free(items);
    free(strat);
    free(chosen);
    free(grid_vals);
    for (int i = 0; i < p.n; i++) {
        free(p.jobs[i].loss);
        free(p.jobs[i].sampler);
    }
    free(p.jobs);
    lb_data_free(data);
    lb_data_opts_free(&dopts);
    return 0;
}
