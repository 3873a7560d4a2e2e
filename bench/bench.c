/* libra-bench: throughput, per-op breakdown and peak memory of the reference CNN.
 *
 * For each (batch, threads) configuration a child process (fork) loads the Fashion-MNIST
 * training set, builds the network, warms up, then times `repeats` rounds of `steps`
 * training steps (batching + lb_trainer_step, Adam, cross-entropy) and of `steps`
 * evaluation batches (lb_predict). It reports the median and min-max of each, one extra
 * instrumented step per round split by op (forward and backward of each layer, loss,
 * zero-grad, optimizer, batching), the malloc count per steady-state step, and the child's
 * peak RSS, so configurations never inflate each other's memory.
 *
 * usage: libra-bench [--batch 32,64,128] [--threads 1,2] [--steps 60] [--repeats 5]
 *                    [--warmup 10] [--arch smallcnn] [--data DIR] [--json]
 * Timing starts after the data is loaded; the machine's load is not controlled here:
 * compare by medians, interleaved with the reference (bench/compare.sh). */
#include "common/cli.h"
#include "libra/layers.h"
#include "libra/losses.h"
#include "libra/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LIST 8
#define MAX_SLOTS 320

typedef struct {
    int batches[MAX_LIST], n_batches;
    int threads[MAX_LIST], n_threads;
    int steps, repeats, warmup, json;
    const char *arch, *data;
    int c, h, w;   /* the input: Fashion-MNIST converted to c x h x w (default 1x28x28) */
} bench_opts;

/* One timed slot of the breakdown: a layer's forward or backward, or a step phase. */
typedef struct {
    char name[48];
    double seconds;   /* summed over the instrumented steps */
    double flop;      /* per step (0 when not counted) */
} slot;

typedef struct {
    slot s[MAX_SLOTS];
    int n;
} breakdown;

static int slot_of(breakdown *b, const char *name)
{
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->s[i].name, name) == 0) return i;
    if (b->n == MAX_SLOTS) return MAX_SLOTS - 1;
    snprintf(b->s[b->n].name, sizeof b->s[b->n].name, "%s", name);
    b->s[b->n].seconds = b->s[b->n].flop = 0.0;
    return b->n++;
}

static void die(const char *what)
{
    fprintf(stderr, "libra-bench: %s: %s\n", what, lb_last_error());
    exit(1);
}

/* "32,64" -> {32, 64}; anything else exits 2 naming the flag. */
static int parse_list(const char *flag, const char *s, int *out)
{
    int n = 0;
    for (const char *p = s;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char item[32];
        int v;
        if (len == 0 || len >= sizeof item || n == MAX_LIST)
            cli_usage_error("--%s: '%s' is not a list of at most %d positive integers", flag, s, MAX_LIST);
        memcpy(item, p, len);
        item[len] = '\0';
        if (lb_parse_int(item, &v) != 0 || v < 1 || v > 4096)
            cli_usage_error("--%s: '%s' is not a list of integers in [1, 4096]", flag, s);
        out[n++] = v;
        if (!e) return n;
        p = e + 1;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double median, min, max;
} stat3;

static stat3 stats_of(const double *v, int n)
{
    double t[64];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    stat3 s = {n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]), t[0], t[n - 1]};
    return s;
}

/* CPU seconds of this process (all threads): under a loaded machine, a 1-thread run's CPU
 * time per step is steadier than its wall time. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static lb_node *ce_loss(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    return lb_loss_forward(ctx, g, logits, targets, step, total);
}

/* Forward FLOPs of layer l for a batch of n (multiply-add = 2); backward counted as twice
 * that, except a first layer, which needs no input gradient. */
static double layer_flop(const lb_layer *l, int n)
{
    if (l->kind == LB_LAYER_CONV2D) {
        double ckk = (double)l->in_shape[0] * l->k * l->k;
        return 2.0 * n * l->out_shape[0] * ckk * l->out_shape[1] * l->out_shape[2];
    }
    if (l->kind == LB_LAYER_DENSE) return 2.0 * n * l->in_shape[0] * l->out_shape[0];
    return 0.0;
}

/* "conv2d_1+relu+pool", "batchnorm2d_7+add+relu": layer i and the `fused` layers after it that
 * one node computes. */
static void fused_name(const lb_model *m, int i, int fused, const char *phase, char *out, size_t size)
{
    int k = snprintf(out, size, "%s", m->layers[i].name);
    for (int j = i + 1; j <= i + fused && j < m->n_layers && k > 0 && (size_t)k < size; j++) {
        lb_layer_kind kind = m->layers[j].kind;
        const char *part = kind == LB_LAYER_RELU ? "relu" : kind == LB_LAYER_MAXPOOL2D ? "pool"
                           : kind == LB_LAYER_ADD ? "add" : m->layers[j].name;
        k += snprintf(out + k, size - (size_t)k, "+%s", part);
    }
    if (k > 0 && (size_t)k < size) snprintf(out + k, size - (size_t)k, " %s", phase);
}

/* One training step with a timer around each layer's forward, each node's backward
 * (attributed to the layer that recorded it) and each phase; same work as lb_trainer_step. */
static void instrumented_step(lb_trainer *t, lb_batcher *bt, const int *idx, int n, breakdown *bd)
{
    lb_model *m = t->model;
    lb_graph *g = t->graph;
    int owner[4096];   /* node id -> layer index, -1 for input, n_layers for the loss */
    int fused_as[256] = {0}; /* per layer: how many layers after it its node computes */
    double t0 = lb_now();
    if (lb_batcher_fill(bt, idx, NULL, n, NULL) != LB_OK) die("batch");
    bd->s[slot_of(bd, "data batching")].seconds += lb_now() - t0;

    t0 = lb_now();
    lb_graph_reset(g);
    lb_graph_set_training(g, 1);
    int shape[4] = {n, m->in_c, m->in_h, m->in_w};
    lb_node *x = lb_input(g, 4, shape, bt->x);
    owner[0] = -1;
    bd->s[slot_of(bd, "graph reset + input")].seconds += lb_now() - t0;
    lb_params *P = m->params;
    char name[48];
    for (int i = 0; i < m->n_layers && i < 256 && x; i++) {
        lb_layer *l = &m->layers[i];
        int first = lb_graph_n_nodes(g), fused;
        t0 = lb_now();
        int used;
        x = lb_model_forward_layer(m, g, i, x, &used); /* the same (fused) ops as lb_model_forward */
        fused = used - 1;
        double dt = lb_now() - t0;
        fused_name(m, i, fused, "fwd", name, sizeof name);
        int k = slot_of(bd, name);
        bd->s[k].seconds += dt;
        bd->s[k].flop = layer_flop(l, n);
        for (int id = first; id < lb_graph_n_nodes(g) && id < 4096; id++) owner[id] = i;
        fused_as[i] = fused;
        i += fused;
    }
    if (!x) die("forward");
    int first = lb_graph_n_nodes(g);
    t0 = lb_now();
    lb_node *loss = t->loss_fn(t->loss_ctx, g, x, bt->t, t->optim->step, t->total_steps);
    if (!loss) die("loss");
    bd->s[slot_of(bd, "loss fwd")].seconds += lb_now() - t0;
    for (int id = first; id < lb_graph_n_nodes(g) && id < 4096; id++) owner[id] = m->n_layers;

    t0 = lb_now();
    lb_params_zero_grad(P);
    bd->s[slot_of(bd, "zero grad")].seconds += lb_now() - t0;
    /* lb_backward's walk, one node at a time */
    for (size_t i = 0; i < loss->size; i++) loss->grad[i] = 1.0f;
    for (int id = loss->id; id >= 0; id--) {
        lb_node *nd = lb_graph_node(g, id);
        if (!nd->requires_grad || !nd->backward) continue;
        t0 = lb_now();
        nd->backward(nd);
        double dt = lb_now() - t0;
        int o = id < 4096 ? owner[id] : m->n_layers;
        if (o >= 0 && o < m->n_layers) {
            fused_name(m, o, fused_as[o], "bwd", name, sizeof name);
            int k = slot_of(bd, name);
            bd->s[k].seconds += dt;
            bd->s[k].flop = (m->layers[o].kind == LB_LAYER_CONV2D && o == 0 ? 1.0 : 2.0) *
                            layer_flop(&m->layers[o], n);
        } else {
            bd->s[slot_of(bd, "loss bwd")].seconds += dt;
        }
    }
    t0 = lb_now();
    if (lb_optim_step(t->optim, P->data, P->grad, 1e-3f) != LB_OK) die("optimizer");
    bd->s[slot_of(bd, "optimizer")].seconds += lb_now() - t0;
}

static void random_indices(lb_rng *r, int *idx, int n, int n_images)
{
    for (int i = 0; i < n; i++) idx[i] = (int)lb_rng_below(r, (uint64_t)n_images);
}

/* What one configuration's run works with. */
typedef struct {
    lb_dataset *ds;
    float mean[3], std[3];
    lb_model *m;
    lb_rng r;        /* model init, then every sampled batch */
    lb_loss *loss;
    lb_trainer *t;
    lb_batcher *bt;
    lb_graph *eg;    /* the evaluation graph */
    int n_eval;      /* images per evaluation round */
    int *idx;
    float *logits;
} bench_env;

/* The measurements of the timed rounds. */
typedef struct {
    double tr[64], ev[64], cpu[64]; /* per round: training images/s, eval images/s, CPU ms per step */
    breakdown bd;
    uint64_t allocs; /* over the `counted` timed training steps */
    long counted;
} bench_times;

/* The measurements as reported. */
typedef struct {
    stat3 ts, es, cs;   /* training images/s, eval images/s, CPU ms per step */
    double rss_mb;
    int n_inst;         /* instrumented steps */
    double total;       /* seconds of the breakdown */
    double per_step;    /* allocations per training step */
} bench_summary;

/* Loads the data and builds the network, trainer, batcher and buffers for batches of B. */
static void bench_setup(const bench_opts *o, int B, bench_env *e)
{
    if (!(e->ds = lb_dataset_new_fmnist(o->data, 1))) die("loading Fashion-MNIST");
    if (lb_dataset_convert(e->ds, o->c, o->h, o->w) != LB_OK) die("converting the images");
    lb_dataset_stats(e->ds, NULL, 0, e->mean, e->std);
    e->m = lb_model_new_arch(o->arch, o->c, o->h, o->w, 10);
    if (!e->m) die("model");
    lb_rng_seed(&e->r, 1);
    lb_model_init(e->m, LB_INIT_DEFAULT, &e->r);
    e->loss = lb_loss_new("ce", 10, NULL);
    if (!e->loss) die("loss");
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    e->t = lb_trainer_new(e->m, &oc, NULL, ce_loss, e->loss, 0);
    e->bt = lb_batcher_new(e->ds, B, e->mean, e->std, NULL);
    e->eg = lb_graph_new();
    e->n_eval = o->steps * B;
    e->idx = malloc(sizeof(int) * (size_t)e->n_eval);
    e->logits = malloc(sizeof(float) * (size_t)e->n_eval * 10);
    if (!e->t || !e->bt || !e->eg || !e->idx || !e->logits) die("setup");
}

/* One round (rep < 0: the warm-up): training steps, an evaluation pass, then (when timed) a
 * few instrumented steps, so the breakdown sees the same load. */
static void bench_round(const bench_opts *o, int B, bench_env *e, int rep, bench_times *bt)
{
    int steps = rep < 0 ? o->warmup : o->steps;
    /* training: sampling + batching + step, as a training loop does */
    uint64_t a0 = lb_alloc_count();
    double c0 = cpu_seconds(), t0 = lb_now();
    for (int s = 0; s < steps; s++) {
        random_indices(&e->r, e->idx, B, e->ds->n);
        if (lb_batcher_fill(e->bt, e->idx, NULL, B, NULL) != LB_OK) die("batch");
        if (lb_trainer_step(e->t, e->bt->x, e->bt->t, B) != LB_OK) die("training step");
    }
    double dt = lb_now() - t0;
    if (rep >= 0) {
        bt->tr[rep] = steps * (double)B / dt;
        bt->cpu[rep] = 1e3 * (cpu_seconds() - c0) / steps;
        bt->allocs += lb_alloc_count() - a0;
        bt->counted += steps;
    }
    random_indices(&e->r, e->idx, e->n_eval, e->ds->n);
    t0 = lb_now();
    int n_pred = rep < 0 && o->warmup < o->steps ? o->warmup * B : e->n_eval;
    if (lb_predict(e->m, e->eg, e->bt, e->idx, n_pred, e->logits) != LB_OK) die("evaluation");
    dt = lb_now() - t0;
    if (rep >= 0) bt->ev[rep] = (double)e->n_eval / dt;
    for (int s = 0; rep >= 0 && s < 4; s++) {
        random_indices(&e->r, e->idx, B, e->ds->n);
        instrumented_step(e->t, e->bt, e->idx, B, &bt->bd);
    }
}

/* Medians and ranges of the rounds, the peak RSS so far, and the per-step figures. */
static bench_summary summarize(const bench_opts *o, const bench_times *bt)
{
    bench_summary su;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    su.rss_mb = ru.ru_maxrss / 1024.0;
    su.ts = stats_of(bt->tr, o->repeats);
    su.es = stats_of(bt->ev, o->repeats);
    su.cs = stats_of(bt->cpu, o->repeats);
    su.n_inst = 4 * o->repeats;
    su.total = 0.0;
    for (int i = 0; i < bt->bd.n; i++) su.total += bt->bd.s[i].seconds;
    su.per_step = (double)bt->allocs / (double)bt->counted;
    return su;
}

/* The result as one line of JSON. */
static void print_json(const bench_opts *o, int B, int threads, const bench_env *e, const breakdown *bd,
                       const bench_summary *su)
{
    printf("{\"impl\": \"libra\", \"version\": \"%s\", \"arch\": \"%s\", \"batch\": %d, \"threads\": %d, "
           "\"steps\": %d, \"repeats\": %d, ",
           lb_version(), e->m->arch, B, threads, o->steps, o->repeats);
    printf("\"train_images_per_s\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}, ", su->ts.median, su->ts.min,
           su->ts.max);
    printf("\"eval_images_per_s\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}, ", su->es.median, su->es.min,
           su->es.max);
    printf("\"train_ms_per_step\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}, ", 1e3 * B / su->ts.median,
           1e3 * B / su->ts.max, 1e3 * B / su->ts.min);
    printf("\"train_cpu_ms_per_step\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}, ", su->cs.median,
           su->cs.min, su->cs.max);
    printf("\"peak_rss_mb\": %.1f, \"arena_mb\": %.2f, \"arena_used_mb\": %.2f, \"allocs_per_step\": %.3f, "
           "\"breakdown_ms\": {",
           su->rss_mb, lb_graph_arena_reserved(e->t->graph) / 1048576.0,
           lb_graph_arena_peak(e->t->graph) / 1048576.0, su->per_step);
    for (int i = 0; i < bd->n; i++)
        printf("%s\"%s\": %.4f", i ? ", " : "", bd->s[i].name, 1e3 * bd->s[i].seconds / su->n_inst);
    printf("}}\n");
}

/* The result as a table for people. */
static void print_table(const bench_opts *o, int B, int threads, const bench_env *e, const breakdown *bd,
                        const bench_summary *su)
{
    printf("batch %d, threads %d (%s, %d x %d steps after %d warm-up)\n", B, threads, e->m->arch, o->repeats,
           o->steps, o->warmup);
    printf("  train: %8.0f images/s (min %.0f, max %.0f)  %.2f ms/step\n", su->ts.median, su->ts.min, su->ts.max,
           1e3 * B / su->ts.median);
    printf("         CPU %.2f ms/step (min %.2f, max %.2f; all threads)\n", su->cs.median, su->cs.min, su->cs.max);
    printf("  eval:  %8.0f images/s (min %.0f, max %.0f)  %.2f ms/batch\n", su->es.median, su->es.min, su->es.max,
           1e3 * B / su->es.median);
    printf("  peak RSS %.1f MB (training set %.1f MB as uint8), arena %.2f MB reserved, %.2f MB used "
           "(eval: %.2f MB), %.3f mallocs/step\n",
           su->rss_mb, (double)e->ds->n * 784 / 1048576.0, lb_graph_arena_reserved(e->t->graph) / 1048576.0,
           lb_graph_arena_peak(e->t->graph) / 1048576.0, lb_graph_arena_peak(e->eg) / 1048576.0, su->per_step);
    printf("  %-22s %9s %6s %9s\n", "breakdown (mean step)", "ms", "%", "GFLOP/s");
    for (int i = 0; i < bd->n; i++) {
        double ms = 1e3 * bd->s[i].seconds / su->n_inst;
        printf("  %-22s %9.3f %5.1f%%", bd->s[i].name, ms, 100.0 * bd->s[i].seconds / su->total);
        if (bd->s[i].flop > 0) printf(" %9.1f", bd->s[i].flop / (ms * 1e-3) / 1e9);
        printf("\n");
    }
    printf("  %-22s %9.3f\n", "total", 1e3 * su->total / su->n_inst);
}

/* Frees what bench_setup made. */
static void bench_teardown(bench_env *e)
{
    free(e->idx);
    free(e->logits);
    lb_graph_free(e->eg);
    lb_batcher_free(e->bt);
    lb_trainer_free(e->t);
    lb_loss_free(e->loss);
    lb_model_free(e->m);
    lb_dataset_free(e->ds);
}

/* Runs one configuration and prints its result; called in a child process. */
static void run_config(const bench_opts *o, int B, int threads)
{
    if (lb_set_threads(threads) != LB_OK) die("--threads");
    bench_env e;
    bench_setup(o, B, &e);
    bench_times times = {.bd = {.n = 0}, .allocs = 0, .counted = 0};
    for (int rep = -1; rep < o->repeats; rep++) bench_round(o, B, &e, rep, &times);
    bench_summary su = summarize(o, &times);
    if (o->json) print_json(o, B, threads, &e, &times.bd, &su);
    else print_table(o, B, threads, &e, &times.bd, &su);
    fflush(stdout);
    bench_teardown(&e);
}

static const char usage[] =
    "Usage: libra-bench [options]\n"
    "Training and evaluation throughput, a per-op breakdown and the peak memory of a network on\n"
    "Fashion-MNIST, each (batch, threads) configuration in a process of its own.\n"
    "\n"
    "  --batch LIST           batch sizes (default 32,64,128)\n"
    "  --threads LIST         thread counts (default 1,2)\n"
    "  --steps N              timed steps per round (default 60)\n"
    "  --repeats N            rounds; the median and min-max are reported (default 5, at most 64)\n"
    "  --warmup N             steps before timing (default 10)\n"
    "  --arch SPEC            network (default smallcnn)\n"
    "  --input CxHxW          the images converted to C channels of H x W (default 1x28x28; e.g.\n"
    "                         3x32x32 for resnet:depth=20 as on CIFAR)\n"
    "  --data DIR             the Fashion-MNIST folder (default: the Debian package's)\n"
    "  --json                 one JSON object per configuration instead of the table\n"
    "  --help                 this text\n"
    "\n"
    "Exit status: 0 success, 1 runtime error, 2 bad flag or value.\n";

enum { OPT_BATCH = 1, OPT_THREADS, OPT_STEPS, OPT_REPEATS, OPT_WARMUP, OPT_ARCH, OPT_DATA, OPT_JSON, OPT_INPUT };

static void parse_flags(int argc, char **argv, bench_opts *o)
{
    static const struct option longopts[] = {
        {"batch", required_argument, 0, OPT_BATCH},     {"threads", required_argument, 0, OPT_THREADS},
        {"steps", required_argument, 0, OPT_STEPS},     {"repeats", required_argument, 0, OPT_REPEATS},
        {"warmup", required_argument, 0, OPT_WARMUP},   {"arch", required_argument, 0, OPT_ARCH},
        {"data", required_argument, 0, OPT_DATA},       {"json", no_argument, 0, OPT_JSON},
        {"input", required_argument, 0, OPT_INPUT},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BATCH: o->n_batches = parse_list("batch", optarg, o->batches); break;
        case OPT_THREADS: o->n_threads = parse_list("threads", optarg, o->threads); break;
        case OPT_STEPS: o->steps = (int)cli_long("steps", optarg, 1, 1000000); break;
        case OPT_REPEATS: o->repeats = (int)cli_long("repeats", optarg, 1, 64); break;
        case OPT_WARMUP: o->warmup = (int)cli_long("warmup", optarg, 1, 1000000); break;
        case OPT_ARCH: o->arch = optarg; break;
        case OPT_DATA: o->data = optarg; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_INPUT: {
            char tail;
            if (sscanf(optarg, "%dx%dx%d%c", &o->c, &o->h, &o->w, &tail) != 3 || (o->c != 1 && o->c != 3) || o->h < 4 ||
                o->w < 4 || o->h > 1024 || o->w > 1024)
                cli_usage_error("--input: '%s' is not CxHxW with C 1 or 3 and sides in [4, 1024]", optarg);
            break;
        }
        case 'h': fputs(usage, stdout); exit(0);
        default: cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (lb_arch_check(o->arch) != LB_OK) cli_usage_error("--arch: %s", lb_last_error());
}

int main(int argc, char **argv)
{
    cli_init(argv);
    bench_opts o = {{32, 64, 128}, 3, {1, 2}, 2, 60, 5, 10, 0, "smallcnn", NULL, 1, 28, 28};
    parse_flags(argc, argv, &o);
    for (int bi = 0; bi < o.n_batches; bi++)
        for (int ti = 0; ti < o.n_threads; ti++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                perror("libra-bench: fork");
                return 1;
            }
            if (pid == 0) {
                run_config(&o, o.batches[bi], o.threads[ti]);
                _exit(0);
            }
            int st;
            if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "libra-bench: batch %d, threads %d failed\n", o.batches[bi], o.threads[ti]);
                return 1;
            }
        }
    return 0;
}
