/* libra's one threading layer: lb_set_threads(n) keeps OpenBLAS at 1 thread and runs
 * work split n ways here (images of a convolution, rows or columns of a GEMM). Each part
 * is a fixed function of (part index, part count), so a result depends only on the thread
 * count, never on scheduling. The parts run on a pool of threads started at the first call
 * and kept (a call is a millisecond or less of work in evaluation; creating and joining a
 * thread per call cost several percent of it). One caller at a time has the pool; a call made
 * while it is busy (another thread's call, or a part's own) starts threads of its own for
 * that call, as every call did before the pool. A forked child starts a pool of its own. The
 * workers are never stopped: they wait, holding nothing, until the process ends. */
#include "internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>

static int n_threads = 1;
/* Set while a thread runs a part of lb_parallel: work inside a part runs on that one thread
 * (lb_get_threads() is 1 there), so parts never split again and a part's result is that of
 * one thread (what makes the trainer's shards, run as parts, independent of the thread count). */
static _Thread_local int in_part;

/* One threading layer: libra's own. OpenBLAS stays at 1 thread so the two never stack;
 * measured against OpenBLAS's own threads in docs/performance.md. */
int lb_set_threads(int n)
{
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    openblas_set_num_threads(1);
    int rc = lb__blas_reserve(n);
    if (rc == LB_OK) n_threads = n;
    return rc;
}

int lb_get_threads(void) { return in_part ? 1 : n_threads; }

enum { MAX_PARTS = 64 };

typedef struct {
    void (*fn)(void *arg, int part, int n_parts);
    void *arg;
    int part, n_parts;
} job;

/* Part `part` of fn on this thread, as a part (see in_part). */
static void run_part(void (*fn)(void *, int, int), void *arg, int part, int n_parts)
{
    int was = in_part;
    in_part = 1;
    fn(arg, part, n_parts);
    in_part = was;
}

static void *run_job(void *p)
{
    job *j = p;
    run_part(j->fn, j->arg, j->part, j->n_parts);
    return NULL;
}

/* Parts 1.. on threads made for this call, part 0 here; a part with no thread runs here. */
static void run_spawned(int n_parts, void (*fn)(void *, int, int), void *arg)
{
    job jobs[MAX_PARTS];
    pthread_t tid[MAX_PARTS];
    int started[MAX_PARTS] = {0};
    for (int i = 1; i < n_parts; i++) {
        jobs[i] = (job){fn, arg, i, n_parts};
        started[i] = pthread_create(&tid[i], NULL, run_job, &jobs[i]) == 0;
    }
    run_part(fn, arg, 0, n_parts);
    for (int i = 1; i < n_parts; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else run_part(fn, arg, i, n_parts); /* no thread to be had: same part, same result, serially */
    }
}

/* The pool: worker w (1 <= w <= n_workers) runs part w of each generation with
 * n_parts > w. `owner` is held by the one caller using it; `m` guards the rest. */
static struct {
    pthread_mutex_t owner, m;
    pthread_cond_t go, done;
    pthread_t tid[MAX_PARTS];
    unsigned long born[MAX_PARTS]; /* the generation current when worker w was started */
    unsigned long generation;
    int n_workers, remaining, quit;
    job work;
} pool = {.owner = PTHREAD_MUTEX_INITIALIZER, .m = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *worker(void *p)
{
    int me = (int)(intptr_t)p;
    pthread_mutex_lock(&pool.m);
    unsigned long seen = pool.born[me];
    for (;;) {
        while (!pool.quit && pool.generation == seen) pthread_cond_wait(&pool.go, &pool.m);
        if (pool.quit) break;
        seen = pool.generation;
        if (me >= pool.work.n_parts) continue;
        job w = pool.work;
        pthread_mutex_unlock(&pool.m);
        run_part(w.fn, w.arg, me, w.n_parts);
        pthread_mutex_lock(&pool.m);
        if (--pool.remaining == 0) pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.m);
    return NULL;
}

/* fork() with the pool idle and unlocked in the child, whose pool has no threads yet. */
static void pool_prepare(void)
{
    pthread_mutex_lock(&pool.owner);
    pthread_mutex_lock(&pool.m);
}
static void pool_parent(void)
{
    pthread_mutex_unlock(&pool.m);
    pthread_mutex_unlock(&pool.owner);
}
static void pool_child(void)
{
    pthread_mutex_init(&pool.owner, NULL);
    pthread_mutex_init(&pool.m, NULL);
    pthread_cond_init(&pool.go, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.n_workers = 0;
}
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(pool_prepare, pool_parent, pool_child); }

/* Workers up to n - 1 (the caller runs part 0); fewer if the system has no more threads. */
static void pool_grow(int n)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.m);
    while (pool.n_workers < n - 1) {
        int w = pool.n_workers + 1;
        pool.born[w] = pool.generation;
        if (pthread_create(&pool.tid[w], NULL, worker, (void *)(intptr_t)w) != 0) break;
        pool.n_workers = w;
    }
    pthread_mutex_unlock(&pool.m);
}

static void run_pooled(int n_parts, void (*fn)(void *, int, int), void *arg)
{
    pool_grow(n_parts);
    pthread_mutex_lock(&pool.m);
    int n_workers = pool.n_workers < n_parts - 1 ? pool.n_workers : n_parts - 1;
    pool.work = (job){fn, arg, 0, n_parts};
    pool.remaining = n_workers;
    pool.generation++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.m);
    run_part(fn, arg, 0, n_parts);
    for (int i = n_workers + 1; i < n_parts; i++) run_part(fn, arg, i, n_parts); /* no worker for it */
    pthread_mutex_lock(&pool.m);
    while (pool.remaining > 0) pthread_cond_wait(&pool.done, &pool.m);
    pthread_mutex_unlock(&pool.m);
}

void lb_parallel(int n_parts, void (*fn)(void *arg, int part, int n_parts), void *arg)
{
    if (n_parts > MAX_PARTS) n_parts = MAX_PARTS;
    if (n_parts <= 1) {
        run_part(fn, arg, 0, 1);
        return;
    }
    if (pthread_mutex_trylock(&pool.owner) != 0) {
        run_spawned(n_parts, fn, arg);
        return;
    }
    run_pooled(n_parts, fn, arg);
    pthread_mutex_unlock(&pool.owner);
}

void lb_split_range(int n, int part, int n_parts, int *lo, int *hi)
{
    *lo = (int)((long long)n * part / n_parts);
    *hi = (int)((long long)n * (part + 1) / n_parts);
}

void lb__gemm_serial(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                1.0f, A, lda, B, ldb, beta, C, ldc);
}

typedef struct {
    int ta, tb, M, N, K;
    const float *A, *B;
    float beta;
    float *C;
    int by_rows;
} gemm_job;

/* Part of C: a block of rows (A's rows) or of columns (B's columns); K is never split,
 * so every element is the same sum whatever the part count. */
static void gemm_part(void *p, int part, int n_parts)
{
    const gemm_job *j = p;
    int lda = j->ta ? j->M : j->K, ldb = j->tb ? j->K : j->N, lo, hi;
    if (j->by_rows) {
        lb_split_range(j->M, part, n_parts, &lo, &hi);
        const float *a = j->ta ? j->A + lo : j->A + (size_t)lo * j->K;
        lb__gemm_serial(j->ta, j->tb, hi - lo, j->N, j->K, a, lda, j->B, ldb, j->beta, j->C + (size_t)lo * j->N,
                       j->N);
    } else {
        lb_split_range(j->N, part, n_parts, &lo, &hi);
        const float *b = j->tb ? j->B + (size_t)lo * j->K : j->B + lo;
        lb__gemm_serial(j->ta, j->tb, j->M, hi - lo, j->K, j->A, lda, b, ldb, j->beta, j->C + lo, j->N);
    }
}

void lb__gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, const float *B, float beta, float *C)
{
    gemm_job j = {trans_a, trans_b, M, N, K, A, B, beta, C, M >= N};
    int parts = lb_get_threads();
    /* below ~1 MFLOP a thread costs more than it saves */
    if ((double)M * N * K < 5e5 || (M >= N ? M : N) < 16 * parts) parts = 1;
    lb_parallel(parts, gemm_part, &j);
}
