/* Data-parallel training: the fixed pairwise tree, the shards of a step, and a run spread over
 * simulated ranks. A simulated rank is a forked process joined to the others by socket pairs
 * (libra's thread count and OpenBLAS's buffers are per process, as under MPI); its reducer
 * follows lb_tree_step's schedule, as the MPI one does. */
#include "check_util.h"
#include "libra/losses.h"
#include "libra/train.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the tree */

/* The tree as the definition reads, recursively: split at the largest power of two below n. */
static void ref_tree(float *const *x, int n, size_t len, float *out)
{
    if (n == 1) {
        memcpy(out, x[0], len * sizeof(float));
        return;
    }
    int h = 1;
    while (2 * h < n) h *= 2;
    float *right = malloc(len * sizeof(float));
    ref_tree(x, h, len, out);
    ref_tree(x + h, n - h, len, right);
    for (size_t i = 0; i < len; i++) out[i] = out[i] + right[i];
    free(right);
}

enum { LEN = 257, MAXN = 24 };

/* Leaves over a wide range of magnitudes, so that any other order of the sum shows. */
static void fill_leaves(float **x, int n, uint64_t seed)
{
    lb_rng r;
    lb_rng_seed(&r, seed);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < LEN; i++)
            x[k][i] = (float)((lb_rng_uniform(&r) - 0.5) * ldexp(1.0, (int)lb_rng_below(&r, 40) - 20));
}

static float **leaves(int n)
{
    float **x = malloc((size_t)n * sizeof *x);
    for (int k = 0; k < n; k++) x[k] = malloc(LEN * sizeof(float));
    return x;
}

static void free_leaves(float **x, int n)
{
    for (int k = 0; k < n; k++) free(x[k]);
    free(x);
}

START_TEST(test_tree_sum_matches_definition)
{
    static const int sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 16, 24};
    int order_matters = 0;
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        int n = sizes[t];
        float **x = leaves(n), **y = leaves(n), ref[LEN], serial[LEN] = {0}, acc_out[LEN];
        fill_leaves(x, n, 100 + (uint64_t)n);
        fill_leaves(y, n, 100 + (uint64_t)n);
        ref_tree(x, n, LEN, ref);
        for (int k = 0; k < n; k++)
            for (int i = 0; i < LEN; i++) serial[i] += x[k][i];
        order_matters |= memcmp(serial, ref, sizeof ref) != 0;
        /* in place by the schedule */
        lb_tree_sum(y, n, LEN);
        ck_assert_msg(memcmp(y[0], ref, sizeof ref) == 0, "lb_tree_sum of %d leaves", n);
        /* leaf by leaf, twice (the accumulator starts over after the n-th leaf) */
        lb_tree_acc a;
        ck_assert_int_eq(lb_tree_acc_init(&a, n, LEN), LB_OK);
        for (int rep = 0; rep < 2; rep++)
            for (int k = 0; k < n; k++) {
                memcpy(acc_out, x[k], sizeof acc_out);
                ck_assert_int_eq(lb_tree_acc_push(&a, acc_out), k == n - 1);
            }
        ck_assert_msg(memcmp(acc_out, ref, sizeof ref) == 0, "lb_tree_acc of %d leaves", n);
        lb_tree_acc_free(&a);
        free_leaves(x, n);
        free_leaves(y, n);
    }
    ck_assert_msg(order_matters, "the leaves are too tame: every order gives the same sum");
}
END_TEST

/* K simulated ranks of m = 2^j leaves each (K odd too): each sums its block leaf by leaf,
 * then the block sums go through the rank schedule as messages; the total is the serial
 * tree's over all K m leaves, bit for bit. */
START_TEST(test_tree_on_simulated_ranks)
{
    static const int ranks[] = {1, 2, 3, 4, 5, 6, 8}, blocks[] = {1, 2, 4};
    for (size_t a = 0; a < sizeof ranks / sizeof *ranks; a++)
        for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
            int K = ranks[a], m = blocks[b], n = K * m;
            if (n > MAXN) continue;
            float **x = leaves(n), **block = leaves(K), ref[LEN];
            fill_leaves(x, n, 7 * (uint64_t)n + (uint64_t)K);
            ref_tree(x, n, LEN, ref);
            for (int r = 0; r < K; r++) {
                lb_tree_acc acc;
                ck_assert_int_eq(lb_tree_acc_init(&acc, m, LEN), LB_OK);
                for (int k = 0; k < m; k++) {
                    memcpy(block[r], x[r * m + k], LEN * sizeof(float));
                    lb_tree_acc_push(&acc, block[r]);
                }
                lb_tree_acc_free(&acc);
            }
            /* the schedule: every rank but 0 sends exactly once, after its receives */
            int sent[MAXN] = {0};
            for (int level = 1; level < K; level *= 2)
                for (int r = 0; r < K; r++) {
                    int peer, role = lb_tree_step(r, K, level, &peer);
                    ck_assert(!sent[r] || role == LB_TREE_IDLE);
                    if (role == LB_TREE_RECV) {
                        ck_assert_int_eq(lb_tree_step(peer, K, level, &(int){0}), LB_TREE_SEND);
                        lb_tree_add(block[r], block[peer], LEN);
                    }
                    if (role == LB_TREE_SEND) sent[r] = 1;
                }
            for (int r = 1; r < K; r++) ck_assert_msg(sent[r], "rank %d of %d never sent", r, K);
            ck_assert_msg(memcmp(block[0], ref, sizeof ref) == 0, "%d ranks of %d leaves", K, m);
            free_leaves(x, n);
            free_leaves(block, K);
        }
}
END_TEST

/* ---------------------------------------------------------------- synthetic data */

/* 4 classes of 12x12 images: class k is a bright square in quadrant k on noise. */
enum { SZ = 12, NCLS = 4, NTRAIN = 256, NTEST = 64 };
static char tmpdir[256];
static char spec[1400];
static lb_data *data;
static lb_data_opts dopts;

static void make_images(lb_rng *r, int n, uint8_t *px, uint8_t *lab)
{
    for (int i = 0; i < n; i++) {
        int k = (int)lb_rng_below(r, NCLS);
        if (i % 3 == 0) k = 0; /* imbalanced: class 0 is the largest */
        lab[i] = (uint8_t)k;
        uint8_t *im = px + (size_t)i * SZ * SZ;
        for (int j = 0; j < SZ * SZ; j++) im[j] = (uint8_t)lb_rng_below(r, 60);
        int y0 = (k / 2) * 6 + (int)lb_rng_below(r, 2), x0 = (k % 2) * 6 + (int)lb_rng_below(r, 2);
        for (int y = y0; y < y0 + 4; y++)
            for (int x = x0; x < x0 + 4; x++) im[y * SZ + x] = (uint8_t)(180 + lb_rng_below(r, 70));
    }
}

static void setup_data(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/libra_test_shards_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    lb_rng r;
    lb_rng_seed(&r, 77);
    static uint8_t px[NTRAIN * SZ * SZ], lab[NTRAIN];
    const char *names[4] = {"tri", "trl", "tei", "tel"};
    char paths[4][300];
    for (int f = 0; f < 4; f++) snprintf(paths[f], sizeof paths[f], "%s/%s.idx", tmpdir, names[f]);
    for (int part = 0; part < 2; part++) {
        int n = part ? NTEST : NTRAIN;
        make_images(&r, n, px, lab);
        uint32_t dims[3] = {(uint32_t)n, SZ, SZ};
        ck_assert_int_eq(lb_idx_write(paths[2 * part], px, 3, dims, 1), LB_OK);
        ck_assert_int_eq(lb_idx_write(paths[2 * part + 1], lab, 1, dims, 0), LB_OK);
    }
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", paths[0], paths[1], paths[2], paths[3]);
    lb_data_opts_init(&dopts);
    ck_assert_int_eq(lb_data_opts_set(&dopts, "data", spec), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&dopts, "val", "0.125"), LB_OK);
    ck_assert_msg(NEW_OK(data, lb_data_new(&dopts)) == LB_OK, "%s", lb_last_error());
}

static void teardown_data(void)
{
    lb_data_free(data);
    lb_data_opts_free(&dopts);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---------------------------------------------------------------- simulated ranks */

enum { MAXK = 8 };

/* One rank's ends of the socket pairs to every other rank, and a receive buffer. */
typedef struct sim_rank {
    int rank, size;
    int fd[MAXK];
    float *buf;
    size_t cap;
} sim_rank;

static int io_all(int fd, void *p, size_t n, int writing)
{
    char *c = p;
    while (n > 0) {
        ssize_t k = writing ? write(fd, c, n) : read(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return lb_error(LB_EIO, "simulated rank: a peer hung up (%s)", k < 0 ? strerror(errno) : "EOF");
        c += k;
        n -= (size_t)k;
    }
    return LB_OK;
}

/* The tree over ranks by lb_tree_step's schedule, then rank 0 sends the total to each rank. */
static int sim_tree_sum(void *ctx, float *x, size_t n)
{
    sim_rank *s = ctx;
    if (s->cap < n) {
        free(s->buf);
        if (!(s->buf = malloc(n * sizeof(float)))) return lb_error(LB_ENOMEM, "simulated rank: out of memory");
        s->cap = n;
    }
    int rc = LB_OK;
    for (int level = 1; level < s->size && rc == LB_OK; level *= 2) {
        int peer, role = lb_tree_step(s->rank, s->size, level, &peer);
        if (role == LB_TREE_RECV && (rc = io_all(s->fd[peer], s->buf, n * sizeof(float), 0)) == LB_OK)
            lb_tree_add(x, s->buf, n);
        if (role == LB_TREE_SEND) {
            rc = io_all(s->fd[peer], x, n * sizeof(float), 1);
            break;
        }
    }
    if (s->rank != 0) return rc == LB_OK ? io_all(s->fd[0], x, n * sizeof(float), 0) : rc;
    for (int r = 1; r < s->size && rc == LB_OK; r++) rc = io_all(s->fd[r], x, n * sizeof(float), 1);
    return rc;
}

/* Rank 0 compares every rank's bytes with its own and tells them. */
static int sim_same(void *ctx, const void *bytes, size_t n)
{
    sim_rank *s = ctx;
    unsigned char other[64];
    int same = 1, rc = LB_OK;
    if (n > sizeof other) return lb_error(LB_EINVAL, "simulated rank: %zu bytes to compare", n);
    if (s->rank != 0) {
        if ((rc = io_all(s->fd[0], (void *)bytes, n, 1)) != LB_OK || (rc = io_all(s->fd[0], &same, sizeof same, 0)) != LB_OK)
            return rc;
        return same;
    }
    for (int r = 1; r < s->size && rc == LB_OK; r++)
        if ((rc = io_all(s->fd[r], other, n, 0)) == LB_OK) same &= memcmp(other, bytes, n) == 0;
    for (int r = 1; r < s->size && rc == LB_OK; r++) rc = io_all(s->fd[r], &same, sizeof same, 1);
    return rc == LB_OK ? same : rc;
}

/* A run's settings: a tiny smallcnn with dropout, augmentation, clipping, a test monitor
 * every 3 steps (so the ranks compare their parameters at steps 3, 6, ...). */
typedef struct cfg {
    const char *arch, *mix, *save, *resume;
    int shards, threads, nudge_rank;
    long steps;
} cfg;

static void opts_of(const cfg *c, lb_train_opts *o)
{
    lb_train_opts_init(o);
    o->arch = c->arch ? c->arch : "smallcnn:dropout=0.25,c1=4,c2=8,fc=16";
    o->batch = 32;
    o->shards = c->shards;
    o->steps = c->steps;
    o->lr = 3e-3;
    o->clip_norm = 1.0;
    o->seed = 5;
    o->threads = c->threads;
    o->augment.crop_pad = 1;
    o->augment.hflip = 1;
    o->monitor = LB_MONITOR_TEST;
    o->eval_every = 3;
    o->log_every = 2;
    o->loss = "wce:weights=inverse"; /* a weighted mean: its denominator is the sum of the class weights */
    o->mix = c->mix;
    o->save = c->save;
    o->resume = c->resume;
}

/* What a rank reports: its status, the message, the hash of its final parameters. */
typedef struct rank_out {
    int rc;
    uint64_t hash;
    char msg[240];
} rank_out;

typedef struct hook_ctx {
    const lb_model *m;
    int rank, nudge_rank;
    uint64_t hash;
} hook_ctx;

static void on_start(void *ctx, const lb_model *m, const lb_data *d, const lb_train_progress *p)
{
    hook_ctx *h = ctx;
    (void)d, (void)p;
    h->m = m;
    if (h->rank == h->nudge_rank) { /* one rank's model drifts by one ulp */
        float *w = m->params->data;
        w[0] = nextafterf(w[0], INFINITY);
    }
}

static int on_epoch(void *ctx, const lb_train_progress *p)
{
    hook_ctx *h = ctx;
    if (p->step == p->total_steps)
        h->hash = lb_hash64(h->m->params->data, h->m->params->size * sizeof(float), LB_HASH_INIT);
    return 0;
}

static rank_out run_one(const cfg *c, const lb_reducer *red)
{
    lb_train_opts o;
    opts_of(c, &o);
    o.reducer = red;
    hook_ctx h = {.rank = red ? red->rank : 0, .nudge_rank = c->nudge_rank};
    lb_train_hooks hooks = {.ctx = &h, .on_start = on_start, .on_epoch = on_epoch};
    lb_train_result res;
    rank_out out = {0};
    out.rc = lb_train_run(&o, &dopts, data, &hooks, &res);
    snprintf(out.msg, sizeof out.msg, "%s", out.rc == LB_OK ? "" : lb_last_error());
    out.hash = h.hash;
    lb_train_result_free(&res);
    return out;
}

/* K ranks (K = 0: this process alone, no reducer); out[r] for each. */
static void run_ranks(const cfg *c, int K, rank_out *out)
{
    if (K == 0) {
        out[0] = run_one(c, NULL);
        return;
    }
    int fd[MAXK][MAXK], pipes[MAXK][2];
    pid_t pid[MAXK];
    for (int i = 0; i < K; i++)
        for (int j = i + 1; j < K; j++) {
            int sv[2];
            ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
            fd[i][j] = sv[0];
            fd[j][i] = sv[1];
        }
    for (int r = 0; r < K; r++) {
        ck_assert_int_eq(pipe(pipes[r]), 0);
        ck_assert_int_ne(pid[r] = fork(), -1);
        if (pid[r] == 0) {
            sim_rank s = {.rank = r, .size = K};
            for (int i = 0; i < K; i++)
                for (int j = 0; j < K; j++)
                    if (i != j && i != r) close(fd[i][j]);
            for (int j = 0; j < K; j++) s.fd[j] = j == r ? -1 : fd[r][j];
            lb_reducer red = {&s, r, K, sim_tree_sum, sim_same};
            rank_out o = run_one(c, &red);
            free(s.buf);
            _exit(write(pipes[r][1], &o, sizeof o) == (ssize_t)sizeof o ? 0 : 3);
        }
        close(pipes[r][1]);
    }
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            if (i != j) close(fd[i][j]);
    for (int r = 0; r < K; r++) {
        int st;
        ck_assert_int_eq(read(pipes[r][0], &out[r], sizeof out[r]), (ssize_t)sizeof out[r]);
        close(pipes[r][0]);
        ck_assert_int_eq(waitpid(pid[r], &st, 0), pid[r]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank %d ended with status %d", r, st);
    }
}

static void ck_read(lb_checkpoint *c, const char *path)
{
    ck_assert_msg(lb_checkpoint_read(c, path) == LB_OK, "%s", lb_last_error());
}

/* Same parameters, buffers, optimizer state, RNG states and loss curve. */
static void ck_same_state(const char *pa, const char *pb)
{
    lb_checkpoint a, b;
    ck_read(&a, pa);
    ck_read(&b, pb);
    ck_assert_int_eq(a.n_params, b.n_params);
    ck_assert_int_eq(a.step, b.step);
    ck_assert_msg(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "%s and %s: parameters differ", pa, pb);
    ck_assert(memcmp(a.optim_m, b.optim_m, a.n_params * sizeof(float)) == 0);
    ck_assert(memcmp(a.optim_v, b.optim_v, a.n_params * sizeof(float)) == 0);
    ck_assert(memcmp(&a.model_rng, &b.model_rng, sizeof a.model_rng) == 0);
    ck_assert(memcmp(&a.data_rng, &b.data_rng, sizeof a.data_rng) == 0);
    ck_assert_int_eq(a.loss.n, b.loss.n);
    ck_assert(memcmp(a.loss.value, b.loss.value, a.loss.n * sizeof(float)) == 0);
    lb_checkpoint_free(&a);
    lb_checkpoint_free(&b);
}

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* S = 4 at 1, 2 and 4 ranks (and with no reducer) gives the same bits at 1 and 2 threads;
 * so does a run with Remix, whose partners are drawn over the whole batch. */
START_TEST(test_ranks_give_the_same_bits)
{
    uint64_t at_one_thread[2] = {0, 0};
    for (int threads = 1; threads <= 2; threads++)
        for (int mixed = 0; mixed < 2; mixed++) {
            char ref[300];
            path_of(ref, sizeof ref, "ref.ckpt");
            cfg c = {.shards = 4, .threads = threads, .steps = 6, .nudge_rank = -1, .save = ref,
                     .mix = mixed ? "remix" : NULL};
            rank_out alone, out[4];
            run_ranks(&c, 0, &alone);
            ck_assert_msg(alone.rc == LB_OK, "%s", alone.msg);
            ck_assert(alone.hash != 0); /* hashed at the last step */
            if (threads == 1) at_one_thread[mixed] = alone.hash;
            ck_assert_msg(alone.hash == at_one_thread[mixed], "2 threads: the parameters differ from 1 thread's");
            if (threads == 1 && !mixed) { /* the shards change the rounding of the run (not much) */
                cfg one = c;
                one.shards = 1;
                one.save = NULL;
                rank_out o1;
                run_ranks(&one, 0, &o1);
                ck_assert_msg(o1.rc == LB_OK && o1.hash != alone.hash, "%s", o1.msg);
            }
            for (int K = 1; K <= 4; K *= 2) {
                if (mixed && K == 2) continue; /* Remix: 1 and 4 ranks */
                char mine[300];
                snprintf(mine, sizeof mine, "%s/k%d.ckpt", tmpdir, K);
                c.save = mine;
                run_ranks(&c, K, out);
                for (int r = 0; r < K; r++) {
                    ck_assert_msg(out[r].rc == LB_OK, "rank %d of %d: %s", r, K, out[r].msg);
                    ck_assert_msg(out[r].hash == alone.hash, "threads %d, %d ranks: rank %d's parameters differ",
                                  threads, K, r);
                }
                ck_same_state(ref, mine);
                lb_checkpoint ck;
                ck_read(&ck, mine);
                char k[16];
                snprintf(k, sizeof k, "%d", K);
                ck_assert_str_eq(lb_checkpoint_get(&ck, "ranks"), k);
                ck_assert_str_eq(lb_checkpoint_get(&ck, "shards"), "4");
                lb_checkpoint_free(&ck);
                c.save = ref;
            }
        }
}
END_TEST

/* Only rank 0 writes, and a checkpoint of 2 ranks resumes at 1 (and one of 1 at 4) to the
 * bits of a run that never stopped. */
START_TEST(test_resume_at_other_ranks)
{
    char full[300], half[300], res[300];
    path_of(full, sizeof full, "full.ckpt");
    path_of(half, sizeof half, "half.ckpt");
    path_of(res, sizeof res, "resumed.ckpt");
    rank_out out[4];
    cfg c = {.shards = 4, .threads = 1, .steps = 8, .nudge_rank = -1, .save = full};
    run_ranks(&c, 0, out);
    ck_assert_msg(out[0].rc == LB_OK, "%s", out[0].msg);
    for (int pair = 0; pair < 2; pair++) {
        int first = pair ? 0 : 2, second = pair ? 4 : 0;
        unlink(half);
        c = (cfg){.shards = 4, .threads = 1, .steps = 4, .nudge_rank = -1, .save = half};
        run_ranks(&c, first, out);
        ck_assert_msg(out[0].rc == LB_OK, "%s", out[0].msg);
        c = (cfg){.shards = 4, .threads = 1, .steps = 8, .nudge_rank = -1, .save = res, .resume = half};
        run_ranks(&c, second, out);
        ck_assert_msg(out[0].rc == LB_OK, "%s", out[0].msg);
        ck_same_state(full, res);
    }
    /* another number of shards is another run */
    c = (cfg){.shards = 2, .threads = 1, .steps = 8, .nudge_rank = -1, .resume = half};
    run_ranks(&c, 0, out);
    ck_assert_int_eq(out[0].rc, LB_EINVAL);
    ck_assert_msg(strstr(out[0].msg, "shards '4'") && strstr(out[0].msg, "'2'"), "%s", out[0].msg);
    c.shards = 1;
    run_ranks(&c, 0, out);
    ck_assert_msg(out[0].rc == LB_EINVAL && strstr(out[0].msg, "shards '4'"), "%s", out[0].msg);
}
END_TEST

/* A rank whose parameters drift by one ulp stops every rank at the first comparison, step 3. */
START_TEST(test_drift_stops_the_run)
{
    rank_out out[2];
    cfg c = {.shards = 2, .threads = 1, .steps = 6, .nudge_rank = 1};
    run_ranks(&c, 2, out);
    for (int r = 0; r < 2; r++) {
        ck_assert_msg(out[r].rc == LB_ESTATE, "rank %d: %d %s", r, out[r].rc, out[r].msg);
        ck_assert_msg(strstr(out[r].msg, "step 3: the parameters differ across the 2 ranks"), "%s", out[r].msg);
    }
}
END_TEST

/* ---------------------------------------------------------------- the step */

static lb_model *tiny_model(const char *arch)
{
    lb_model *m = lb_model_new_arch(arch, 1, SZ, SZ, NCLS);
    ck_assert_ptr_nonnull(m);
    lb_rng r;
    lb_rng_seed(&r, 3);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    lb_rng_seed(&m->rng, 4);
    return m;
}

typedef struct {
    lb_loss *loss;
} lctx;

static lb_node *whole_loss(void *ctx, lb_graph *g, lb_node *z, const int *y, long step, long total)
{
    return lb_loss_forward(((lctx *)ctx)->loss, g, z, y, step, total);
}

static lb_node *shard_loss(void *ctx, lb_graph *g, lb_node *z, const int *y, int lo, int n, long step, long total)
{
    lb_loss *L = ((lctx *)ctx)->loss;
    double den[2];
    if (lb_loss_denominators(L, y, NULL, NULL, n, step, total, den) != LB_OK) return NULL;
    return lb_loss_forward_denom(L, g, z, y + lo, den[0], step, total);
}

/* A batch of 32 of the training split, with its labels. */
static lb_batcher *batch_of(int at)
{
    lb_batcher *b = lb_batcher_new(data->train, 32, data->mean, data->std, NULL);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(lb_batcher_fill(b, data->split.train_idx + at, data->split.train_y + at, 32, NULL), LB_OK);
    return b;
}

/* shards = 1 is the step as it always was: zero, forward, loss, backward, optimizer, done here
 * by hand on a copy of the model. */
START_TEST(test_one_shard_is_the_plain_step)
{
    lb_model *a = tiny_model("smallcnn:dropout=0.3,c1=4,c2=8,fc=16"), *b = tiny_model("smallcnn:dropout=0.3,c1=4,c2=8,fc=16");
    lb_loss *L = lb_loss_new("wce:weights=inverse", NCLS, data->split.train_counts);
    lctx lc = {L};
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    oc.clip_norm = 1.0f;
    lb_trainer *t = lb_trainer_new(a, &oc, NULL, whole_loss, &lc, 10);
    ck_assert_int_eq(lb_trainer_set_shards(t, 1, NULL, shard_loss), LB_OK);
    lb_optim *ob = lb_optim_new(&oc, b->params->size);
    lb_graph *g = lb_graph_new();
    for (int s = 0; s < 4; s++) {
        lb_batcher *bt = batch_of(32 * s);
        ck_assert_int_eq(lb_trainer_step(t, bt->x, bt->t, 32), LB_OK);
        lb_graph_reset(g);
        int shape[4] = {32, 1, SZ, SZ};
        lb_node *loss = lb_loss_forward(L, g, lb_model_forward(b, g, lb_input(g, 4, shape, bt->x)), bt->t, s, 10);
        ck_assert_ptr_nonnull(loss);
        lb_params_zero_grad(b->params);
        ck_assert_int_eq(lb_backward(g, loss), LB_OK);
        ck_assert_int_eq(lb_optim_step(ob, b->params->data, b->params->grad, oc.lr), LB_OK);
        ck_assert(memcmp(&t->loss, &loss->val[0], sizeof(float)) == 0);
        lb_batcher_free(bt);
    }
    ck_assert(memcmp(a->params->data, b->params->data, a->params->size * sizeof(float)) == 0);
    ck_assert(memcmp(&a->rng, &b->rng, sizeof a->rng) == 0);
    lb_graph_free(g);
    lb_optim_free(ob);
    lb_trainer_free(t);
    lb_loss_free(L);
    lb_model_free(a);
    lb_model_free(b);
}
END_TEST

/* shards = 2 and 4 compute the same gradient as shards = 1 but for the order of the sums:
 * |g_S - g_1| <= 1e-5 max|g_1| per element (measured: a few 1e-7), the loss to 1e-6 relative;
 * after 5 SGD steps the parameters agree to 1e-5 (SGD does not amplify the rounding, Adam
 * would for near-zero gradients). Memory: nothing is allocated once the step is warm. */
START_TEST(test_shards_agree_within_tolerance)
{
    lb_loss *L = lb_loss_new("wce:weights=inverse", NCLS, data->split.train_counts);
    lctx lc = {L};
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_SGD);
    oc.lr = 0.05f;
    oc.momentum = 0.9f;
    const char *arch = "smallcnn:c1=4,c2=8,fc=16";
    lb_model *ref = tiny_model(arch);
    lb_trainer *tr = lb_trainer_new(ref, &oc, NULL, whole_loss, &lc, 10);
    size_t P = ref->params->size;
    float *g1 = malloc(P * sizeof(float)), loss1[5];
    lb_batcher *bts[5];
    for (int s = 0; s < 5; s++) {
        lb_batcher *bt = bts[s] = batch_of(32 * s);
        ck_assert_int_eq(lb_trainer_step(tr, bt->x, bt->t, 32), LB_OK);
        if (s == 0) memcpy(g1, ref->params->grad, P * sizeof(float));
        loss1[s] = tr->loss;
    }
    float gmax = 0, pmax = 0;
    for (size_t i = 0; i < P; i++) {
        gmax = fmaxf(gmax, fabsf(g1[i]));
        pmax = fmaxf(pmax, fabsf(ref->params->data[i]));
    }
    for (int S = 2; S <= 4; S *= 2) {
        lb_model *m = tiny_model(arch);
        lb_trainer *t = lb_trainer_new(m, &oc, NULL, whole_loss, &lc, 10);
        ck_assert_int_eq(lb_trainer_set_shards(t, S, NULL, shard_loss), LB_OK);
        uint64_t count = 0;
        for (int s = 0; s < 5; s++) {
            lb_batcher *bt = bts[s];
            if (s == 2) count = lb_alloc_count();
            ck_assert_msg(lb_trainer_step(t, bt->x, bt->t, 32) == LB_OK, "%s", lb_last_error());
            if (s == 4) ck_assert_uint_eq(lb_alloc_count(), count); /* warm: steps 3-5 allocate nothing */
            if (s == 0 && getenv("SHARDS_DEBUG")) {
                float worst = 0;
                for (size_t i = 0; i < P; i++) worst = fmaxf(worst, fabsf(m->params->grad[i] - g1[i]));
                fprintf(stderr, "S=%d: max |g_S - g_1| / max|g_1| = %g\n", S, worst / gmax);
            }
            if (s == 0)
                for (size_t i = 0; i < P; i++)
                    ck_assert_msg(fabsf(m->params->grad[i] - g1[i]) <= 1e-5f * gmax, "S=%d: gradient %zu: %g vs %g", S,
                                  i, m->params->grad[i], g1[i]);
            ck_assert_close(t->loss, loss1[s], 1e-6 * fabs(loss1[s]) + 1e-7);
        }
        for (size_t i = 0; i < P; i++)
            ck_assert_msg(fabsf(m->params->data[i] - ref->params->data[i]) <= 1e-5f * pmax, "S=%d: parameter %zu", S, i);
        lb_trainer_free(t);
        lb_model_free(m);
    }
    for (int s = 0; s < 5; s++) lb_batcher_free(bts[s]);
    free(g1);
    lb_trainer_free(tr);
    lb_model_free(ref);
    lb_loss_free(L);
}
END_TEST

/* --threads spreads a rank's shards over its cores, each shard on one thread: S = 4 with
 * dropout gives the same bits at 1, 2 and 3 threads (3: a round of 3 shards, then one), and
 * the message of a failing step names the lowest failing shard, whichever thread ran it. */
START_TEST(test_threads_share_the_shards)
{
    lb_loss *L = lb_loss_new("focal:gamma=2", NCLS, data->split.train_counts);
    lctx lc = {L};
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    const char *arch = "smallcnn:dropout=0.3,c1=4,c2=8,fc=16";
    lb_batcher *bts[3];
    for (int s = 0; s < 3; s++) bts[s] = batch_of(32 * s);
    lb_model *ref = NULL;
    for (int threads = 1; threads <= 3; threads++) {
        ck_assert_int_eq(lb_set_threads(threads), LB_OK);
        lb_model *m = tiny_model(arch);
        lb_trainer *t = lb_trainer_new(m, &oc, NULL, whole_loss, &lc, 10);
        ck_assert_int_eq(lb_trainer_set_shards(t, 4, NULL, shard_loss), LB_OK);
        for (int s = 0; s < 3; s++)
            ck_assert_msg(lb_trainer_step(t, bts[s]->x, bts[s]->t, 32) == LB_OK, "%s", lb_last_error());
        if (!ref) {
            ref = m;
        } else {
            ck_assert_msg(memcmp(m->params->data, ref->params->data, m->params->size * sizeof(float)) == 0,
                          "threads %d: the parameters differ from 1 thread's", threads);
            ck_assert(memcmp(&m->rng, &ref->rng, sizeof m->rng) == 0);
        }
        if (threads == 2) { /* shards 3 and 4 (images 16..31) fail, on both threads of a round */
            float *before = malloc(m->params->size * sizeof(float));
            memcpy(before, m->params->data, m->params->size * sizeof(float));
            float *x = malloc(32 * SZ * SZ * sizeof(float));
            memcpy(x, bts[0]->x, 32 * SZ * SZ * sizeof(float));
            x[16 * SZ * SZ + 5] = NAN;
            x[24 * SZ * SZ + 7] = NAN;
            ck_assert_int_eq(lb_trainer_step(t, x, bts[0]->t, 32), LB_ENUMERIC);
            ck_error_mentions("step 4, shard 3 of 4");
            ck_error_mentions("the input batch is not finite");
            ck_assert(memcmp(before, m->params->data, m->params->size * sizeof(float)) == 0);
            ck_assert_msg(lb_trainer_step(t, bts[1]->x, bts[1]->t, 32) == LB_OK, "after a failure: %s",
                          lb_last_error());
            free(x);
            free(before);
        }
        lb_trainer_free(t);
        if (m != ref) lb_model_free(m);
    }
    ck_assert_int_eq(lb_set_threads(1), LB_OK);
    for (int s = 0; s < 3; s++) lb_batcher_free(bts[s]);
    lb_model_free(ref);
    lb_loss_free(L);
}
END_TEST

/* The shard losses: given the batch's own denominators the _denom forwards are the plain
 * ones bitwise; shards over the batch's denominators add up to the batch's loss. */
START_TEST(test_shard_losses)
{
    static const char *specs[] = {"ce", "wce:weights=inverse", "focal:gamma=2", "ldam", "ce:reduction=sum"};
    lb_batcher *bt = batch_of(0);
    lb_model *m = tiny_model("smallcnn:c1=4,c2=8,fc=16");
    lb_graph *g = lb_graph_new();
    int shape[4] = {32, 1, SZ, SZ}, yb[32];
    float lam[32];
    for (int i = 0; i < 32; i++) {
        yb[i] = bt->t[(i + 5) % 32];
        lam[i] = (float)((i % 4) / 3.0);
    }
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
        lb_loss *L = lb_loss_new(specs[k], NCLS, data->split.train_counts);
        ck_assert_ptr_nonnull(L);
        lb_graph_reset(g);
        lb_node *z = lb_model_forward(m, g, lb_input(g, 4, shape, bt->x));
        double den[2], dm[2];
        ck_assert_int_eq(lb_loss_denominators(L, bt->t, NULL, NULL, 32, 0, 10, den), LB_OK);
        lb_node *a = lb_loss_forward(L, g, z, bt->t, 0, 10), *b = lb_loss_forward_denom(L, g, z, bt->t, den[0], 0, 10);
        ck_assert(memcmp(a->val, b->val, sizeof(float)) == 0);
        ck_assert(memcmp(a->aux, b->aux, 32 * NCLS * sizeof(float)) == 0);
        for (int remix = 0; remix < 2; remix++) {
            const float *ly = remix ? lam : NULL;
            ck_assert_int_eq(lb_loss_denominators(L, bt->t, yb, ly, 32, 0, 10, dm), LB_OK);
            a = lb_loss_forward_mixed(L, g, z, bt->t, yb, 0.7, ly, 0, 10);
            b = lb_loss_forward_mixed_denom(L, g, z, bt->t, yb, 0.7, ly, dm, 0, 10);
            ck_assert(memcmp(a->val, b->val, sizeof(float)) == 0);
            ck_assert(memcmp(a->aux, b->aux, 32 * NCLS * sizeof(float)) == 0);
        }
        /* two shards of 16 over the whole batch's denominator */
        int half[4] = {16, 1, SZ, SZ};
        double total = 0;
        for (int s = 0; s < 2; s++) {
            lb_node *zs = lb_model_forward(m, g, lb_input(g, 4, half, bt->x + (size_t)s * 16 * SZ * SZ));
            lb_node *ls = lb_loss_forward_denom(L, g, zs, bt->t + 16 * s, den[0], 0, 10);
            ck_assert_ptr_nonnull(ls);
            total += ls->val[0];
        }
        lb_node *w = lb_loss_forward(L, g, z, bt->t, 0, 10);
        ck_assert_close(total, w->val[0], 1e-6 * fabs(w->val[0]));
        lb_loss_free(L);
    }
    lb_graph_free(g);
    lb_model_free(m);
    lb_batcher_free(bt);
}
END_TEST

/* ---------------------------------------------------------------- refusals */

static int no_sum(void *ctx, float *x, size_t n) { return (void)ctx, (void)x, (void)n, LB_OK; }
static int always_same(void *ctx, const void *b, size_t n) { return (void)ctx, (void)b, (void)n, 1; }

START_TEST(test_refusals)
{
    lb_train_opts o;
    lb_train_opts_init(&o);
    o.batch = 32;
    o.shards = 3;
    ck_assert_err(lb_train_check_shards(&o, NULL), LB_EINVAL, "shards=3 is not a power of two");
    o.batch = 30;
    o.shards = 4;
    ck_assert_err(lb_train_check_shards(&o, NULL), LB_EINVAL, "shards=4 does not divide the batch of 30");
    o.batch = 32;
    lb_reducer red = {NULL, 0, 8, no_sum, always_same};
    o.reducer = &red;
    ck_assert_err(lb_train_check_shards(&o, NULL), LB_EINVAL, "8 ranks but shards=4");
    red.size = 3;
    ck_assert_err(lb_train_check_shards(&o, NULL), LB_EINVAL, "3 ranks: data-parallel training needs a power of two");
    red.size = 2;
    red.tree_sum = NULL;
    ck_assert_err(lb_train_check_shards(&o, NULL), LB_EINVAL, "missing tree_sum");
    red.tree_sum = no_sum;
    ck_assert_int_eq(lb_train_check_shards(&o, NULL), LB_OK);
    o.reducer = NULL;

    /* batch norm: refused naming the layer, by the check, the trainer and the run */
    lb_model *bn = tiny_model("smallcnn:bn,c1=4,c2=8,fc=16");
    ck_assert_err(lb_train_check_shards(&o, bn), LB_EINVAL, "batchnorm2d_1");
    ck_assert_str_eq(bn->layers[1].name, "batchnorm2d_1");
    ck_error_mentions("until synchronised batch norm exists");
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    lb_trainer *t = lb_trainer_new(bn, &oc, NULL, whole_loss, NULL, 10);
    ck_assert_err(lb_trainer_set_shards(t, 2, NULL, shard_loss), LB_EINVAL, "batchnorm2d_1");
    ck_assert_int_eq(lb_trainer_set_shards(t, 1, NULL, NULL), LB_OK); /* one shard: the plain step, batch norm and all */
    lb_trainer_free(t);
    lb_model_free(bn);
    cfg c = {.arch = "smallcnn:bn,c1=4,c2=8,fc=16", .shards = 2, .steps = 2, .nudge_rank = -1};
    rank_out out;
    run_ranks(&c, 0, &out);
    ck_assert_int_eq(out.rc, LB_EINVAL);
    ck_assert_msg(strstr(out.msg, "batchnorm2d_1"), "%s", out.msg);
    c = (cfg){.shards = 3, .steps = 2, .nudge_rank = -1};
    run_ranks(&c, 0, &out);
    ck_assert_msg(out.rc == LB_EINVAL && strstr(out.msg, "shards=3"), "%s", out.msg);

    /* a sharded step needs the shard loss; an empty batch is refused */
    lb_model *m = tiny_model("smallcnn:c1=4,c2=8,fc=16");
    t = lb_trainer_new(m, &oc, NULL, whole_loss, NULL, 10);
    ck_assert_err(lb_trainer_set_shards(t, 2, NULL, NULL), LB_EINVAL, "normalised over the whole batch");
    ck_assert_int_eq(lb_trainer_set_shards(t, 2, NULL, shard_loss), LB_OK);
    ck_assert_err(lb_trainer_step(t, NULL, NULL, 0), LB_ESHAPE, "step 1: a batch of 0 images");
    /* a given denominator must be positive */
    lb_loss *L = lb_loss_new("ce", NCLS, NULL);
    lb_graph *g = lb_graph_new();
    int shape[2] = {1, NCLS}, y = 0;
    lb_node *z = lb_leaf(g, 2, shape, NULL, 1);
    ck_assert_ptr_null(lb_loss_forward_denom(L, g, z, &y, 0.0, 0, 0));
    ck_error_mentions("denominator of the mean is 0");
    double den[2] = {1, 0};
    ck_assert_ptr_null(lb_loss_forward_mixed_denom(L, g, z, &y, &y, 0.5, NULL, den, 0, 0));
    ck_assert_ptr_nonnull(lb_loss_forward_mixed_denom(L, g, z, &y, &y, 0.5, (float[]){1.0f}, den, 0, 0));
    y = 9;
    ck_assert_err(lb_loss_denominators(L, &y, NULL, NULL, 1, 0, 0, den), LB_EINVAL, "target 9 of sample 0");
    lb_graph_free(g);
    lb_loss_free(L);
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

/* Every allocation of setting up the shards can fail: LB_ENOMEM, nothing leaks, and the
 * trainer still works (shards = 1 restores it). */
START_TEST(test_out_of_memory)
{
    lb_model *m = tiny_model("smallcnn:c1=4,c2=8,fc=16");
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    lb_reducer red = {NULL, 0, 2, no_sum, always_same};
    int failures = 0;
    for (uint64_t k = 1; k < 20; k++) {
        lb_trainer *t = lb_trainer_new(m, &oc, NULL, whole_loss, NULL, 10);
        int64_t live = lb_alloc_live();
        lb_alloc_fail_at(k, 0);
        int rc = lb_trainer_set_shards(t, 8, &red, shard_loss);
        lb_alloc_fail_at(0, 0);
        if (rc == LB_OK) {
            lb_trainer_free(t);
            break;
        }
        failures++;
        ck_assert_int_eq(rc, LB_ENOMEM);
        ck_error_mentions("out of memory");
        ck_assert_int_eq(t->shards, 1); /* left taking plain steps */
        ck_assert_ptr_null(t->reducer);
        ck_assert_int_eq(lb_alloc_live(), live);
        lb_trainer_free(t);
    }
    ck_assert_int_eq(failures, 3); /* the gradient levels, the loss levels, the ranks' buffer */
    lb_model_free(m);

    /* a whole sharded run, every allocation failing in turn */
    cfg c = {.shards = 4, .steps = 2, .nudge_rank = -1, .mix = "mixup"};
    lb_train_opts o;
    opts_of(&c, &o);
    o.monitor = LB_MONITOR_NONE;
    for (uint64_t k = 1;; k++) {
        int64_t live = lb_alloc_live();
        lb_train_result res;
        lb_alloc_fail_at(k, 0);
        int rc = lb_train_run(&o, &dopts, data, NULL, &res);
        uint64_t injected = lb_alloc_injected();
        lb_alloc_fail_at(0, 0);
        lb_train_result_free(&res);
        ck_assert_int_eq(lb_alloc_live(), live);
        if (!injected) {
            ck_assert_msg(rc == LB_OK, "%s", lb_last_error());
            ck_assert_uint_gt(k, 50); /* (the data is opened already) */
            break;
        }
        ck_assert_msg(rc == LB_ENOMEM, "allocation %llu: %d %s", (unsigned long long)k, rc, lb_last_error());
    }
}
END_TEST

static Suite *shards_suite(void)
{
    Suite *s = suite_create("shards");
    TCase *tree = tcase_create("tree");
    tcase_add_test(tree, test_tree_sum_matches_definition);
    tcase_add_test(tree, test_tree_on_simulated_ranks);
    suite_add_tcase(s, tree);
    TCase *step = tcase_create("step");
    tcase_add_unchecked_fixture(step, setup_data, teardown_data);
    tcase_set_timeout(step, 60);
    tcase_add_test(step, test_one_shard_is_the_plain_step);
    tcase_add_test(step, test_shards_agree_within_tolerance);
    tcase_add_test(step, test_threads_share_the_shards);
    tcase_add_test(step, test_shard_losses);
    tcase_add_test(step, test_refusals);
    tcase_add_test(step, test_out_of_memory);
    suite_add_tcase(s, step);
    TCase *ranks = tcase_create("ranks");
    tcase_add_unchecked_fixture(ranks, setup_data, teardown_data);
    tcase_set_timeout(ranks, 120);
    tcase_add_test(ranks, test_ranks_give_the_same_bits);
    tcase_add_test(ranks, test_resume_at_other_ranks);
    tcase_add_test(ranks, test_drift_stops_the_run);
    suite_add_tcase(s, ranks);
    return s;
}

int main(void) { return lb_run_suite(shards_suite()); }
