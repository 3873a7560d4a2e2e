/* libra-bench-reduce: what the data-parallel step costs (docs/distributed.md).
 *
 * Rank 0 times, in this process, the fixed pairwise tree over S buffers of the network's
 * gradient size (lb_tree_sum, S = 2, 4, 8). Under mpirun -np K (a build with MPI) every rank
 * then times the ranks' reduction of one step's message (the gradient and the loss, P + 1
 * floats, through lb_dist_reducer: the tree over rank index, then rank 0's total to all), and
 * the whole training step of a batch split in --shards S over the K ranks (forward, backward,
 * the tree of the rank's shards, the reduction, Adam). Without MPI the step is timed at
 * --shards 1 and S. The images are random (a step's time does not depend on the pixels).
 * Medians and min-max over --repeats; the machine's load is not controlled here.
 *
 * usage: [mpirun -np K] libra-bench-reduce [--arch smallcnn] [--batch 64] [--shards 4]
 *                                          [--steps 20] [--repeats 7] [--threads 1] */
#include "common/cli.h"
#include "libra/dist.h"
#include "libra/layers.h"
#include "libra/losses.h"
#include "libra/train.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEATS 101

typedef struct {
    const char *arch;
    int batch, shards, steps, repeats, threads;
} opts;

static const char usage[] =
    "Usage: [mpirun -np K] libra-bench-reduce [options]\n"
    "The cost of the data-parallel step: the pairwise tree of S gradients in one process, the\n"
    "reduction of one step's gradient across the K ranks of mpirun, and the training step of a\n"
    "batch split in S shards over them (random 1x28x28 images, 10 classes; rank 0 prints).\n\n"
    "  --arch SPEC    network (default smallcnn)\n"
    "  --batch B      global batch (default 64)\n"
    "  --shards S     shards of each batch, a power of two dividing B, >= K (default 4)\n"
    "  --steps N      timed steps per round (default 20)\n"
    "  --repeats N    rounds (default 7, at most 101): median and min-max\n"
    "  --threads N    threads per rank (default 1)\n"
    "  --help         this text\n\n"
    "Exit status: 0 success, 1 runtime error, 2 bad flag or value.\n";

static opts parse(int argc, char **argv)
{
    opts o = {"smallcnn", 64, 4, 20, 7, 1};
    static const struct option longs[] = {{"arch", required_argument, 0, 'a'},    {"batch", required_argument, 0, 'b'},
                                           {"shards", required_argument, 0, 's'},  {"steps", required_argument, 0, 'n'},
                                           {"repeats", required_argument, 0, 'r'}, {"threads", required_argument, 0, 't'},
                                           {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        switch (c) {
        case 'a': o.arch = optarg; break;
        case 'b': o.batch = (int)cli_long("batch", optarg, 1, 65536); break;
        case 's': o.shards = (int)cli_long("shards", optarg, 1, 65536); break;
        case 'n': o.steps = (int)cli_long("steps", optarg, 1, 1000000); break;
        case 'r': o.repeats = (int)cli_long("repeats", optarg, 1, MAX_REPEATS); break;
        case 't': o.threads = (int)cli_long("threads", optarg, 1, 64); break;
        case 'h': fputs(usage, stdout); cli_exit(0);
        default: cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    return o;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* "median ms (min-max)" of n timings in seconds (sorted in place). */
static const char *summary(double *t, int n, char *buf, size_t size)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    snprintf(buf, size, "%.3f ms (%.3f-%.3f)", 1e3 * t[n / 2], 1e3 * t[0], 1e3 * t[n - 1]);
    return buf;
}

/* The in-process tree over S gradients of P floats. */
static void time_trees(const opts *o, size_t P)
{
    float *pool = lb_malloc(8 * P * sizeof(float) + 1), *x[8];
    if (!pool) cli_fatal("out of memory for 8 buffers of %zu floats", P);
    for (int i = 0; i < 8; i++) x[i] = pool + (size_t)i * P;
    for (int S = 2; S <= 8; S *= 2) {
        double t[MAX_REPEATS];
        for (int r = 0; r < o->repeats; r++) {
            for (size_t i = 0; i < 8 * P; i++) pool[i] = (float)(i % 1000) * 1e-3f;
            double t0 = lb_now();
            lb_tree_sum(x, S, P);
            t[r] = lb_now() - t0;
        }
        char b[64];
        printf("tree of %d gradients (%zu floats), one process: %s\n", S, P, summary(t, o->repeats, b, sizeof b));
    }
    lb_free(pool);
}

/* The ranks' reduction of one step's message (P + 1 floats), synchronised before each. */
static void time_reduction(const opts *o, const lb_reducer *red, size_t n)
{
    float *b = lb_malloc(n * sizeof(float));
    if (!b) cli_fatal("out of memory for %zu floats", n);
    double t[MAX_REPEATS];
    for (int r = 0; r < o->repeats; r++) {
        for (size_t i = 0; i < n; i++) b[i] = (float)((i + (size_t)red->rank) % 1000) * 1e-3f;
        int one = 1;
        if (red->same_everywhere(red->ctx, &one, sizeof one) < 0) cli_fatal_lib("synchronising the ranks");
        double t0 = lb_now();
        if (red->tree_sum(red->ctx, b, n) != LB_OK) cli_fatal_lib("the reduction");
        t[r] = lb_now() - t0;
    }
    char s[64];
    if (red->rank == 0) printf("reduction of %zu floats over %d ranks: %s\n", n, red->size, summary(t, o->repeats, s, sizeof s));
    lb_free(b);
}

static lb_node *whole_loss(void *ctx, lb_graph *g, lb_node *z, const int *y, long step, long total)
{
    return lb_loss_forward(ctx, g, z, y, step, total);
}

static lb_node *shard_loss(void *ctx, lb_graph *g, lb_node *z, const int *y, int lo, int n, long step, long total)
{
    double den[2];
    if (lb_loss_denominators(ctx, y, NULL, NULL, n, step, total, den) != LB_OK) return NULL;
    return lb_loss_forward_denom(ctx, g, z, y + lo, den[0], step, total);
}

/* Rounds of o->steps training steps at `shards` (over red's ranks, or alone). */
static void time_steps(const opts *o, int shards, const lb_reducer *red, const float *x, const int *y)
{
    lb_model *m = lb_model_new_arch(o->arch, 1, 28, 28, 10);
    lb_loss *L = lb_loss_new("ce", 10, NULL);
    if (!m || !L) cli_fatal_lib(o->arch);
    lb_rng rng;
    lb_rng_seed(&rng, 1);
    lb_model_init(m, LB_INIT_DEFAULT, &rng);
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    lb_trainer *t = lb_trainer_new(m, &oc, NULL, whole_loss, L, 1000000);
    if (!t || lb_trainer_set_shards(t, shards, red, shard_loss) != LB_OK) cli_fatal_lib("--shards");
    double per[MAX_REPEATS];
    for (int r = -1; r < o->repeats; r++) { /* round -1 warms up */
        double t0 = lb_now();
        for (int s = 0; s < o->steps; s++)
            if (lb_trainer_step(t, (float *)x, y, o->batch) != LB_OK) cli_fatal_lib("a training step");
        if (r >= 0) per[r] = (lb_now() - t0) / o->steps;
    }
    char b[64];
    if (!red || red->rank == 0)
        printf("training step, batch %d, shards %d, %d rank%s, %d thread%s: %s\n", o->batch, shards,
               red ? red->size : 1, red && red->size > 1 ? "s" : "", o->threads, o->threads > 1 ? "s" : "",
               summary(per, o->repeats, b, sizeof b));
    lb_trainer_free(t);
    lb_loss_free(L);
    lb_model_free(m);
}

static lb_dist dist;
static void end_ranks(void) { lb_dist_finalize(&dist); }
static void abort_ranks(int status) { lb_dist_abort(&dist, status); }

int main(int argc, char **argv)
{
    cli_init(argv);
    if (lb_dist_init(&argc, &argv, &dist) != LB_OK) cli_usage_error("%s", lb_last_error());
    atexit(end_ranks);
    if (dist.size > 1) cli_on_exit(abort_ranks);
    opts o = parse(argc, argv);
    const lb_reducer *red = dist.size > 1 ? lb_dist_reducer(&dist) : NULL;
    if (dist.size > 1 && !red) cli_fatal_lib("the ranks' reducer");
    lb_train_opts to;
    lb_train_opts_init(&to);
    to.batch = o.batch;
    to.shards = o.shards;
    to.reducer = red;
    if (lb_train_check_shards(&to, NULL) != LB_OK) cli_usage_error("--shards: %s", lb_last_error());
    if (lb_set_threads(o.threads) != LB_OK) cli_fatal_lib("--threads");
    size_t image = 28 * 28;
    float *x = lb_malloc((size_t)o.batch * image * sizeof(float));
    int *y = lb_malloc((size_t)o.batch * sizeof(int));
    if (!x || !y) cli_fatal("out of memory for a batch of %d", o.batch);
    lb_rng rng;
    lb_rng_seed(&rng, 7);
    for (size_t i = 0; i < (size_t)o.batch * image; i++) x[i] = (float)lb_rng_normal(&rng);
    for (int i = 0; i < o.batch; i++) y[i] = i % 10;
    lb_model *probe = lb_model_new_arch(o.arch, 1, 28, 28, 10);
    if (!probe) cli_usage_error("--arch: %s", lb_last_error());
    size_t P = probe->params->size;
    lb_model_free(probe);
    if (dist.rank == 0) time_trees(&o, P);
    if (red) time_reduction(&o, red, P + 1);
    if (!red) time_steps(&o, 1, NULL, x, y);
    time_steps(&o, o.shards, red, x, y);
    lb_free(x);
    lb_free(y);
    return 0;
}
