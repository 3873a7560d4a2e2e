/* Status messages, counted allocation, the RNG, threads and the clock. */
#include "libra/base.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef LIBRA_VERSION_STRING
#define LIBRA_VERSION_STRING LB_VERSION
#endif

const char *lb_version(void) { return LIBRA_VERSION_STRING; }

static _Thread_local char err_buf[1024];

const char *lb_last_error(void) { return err_buf; }

int lb_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return code;
}

void lb_clear_error(void) { err_buf[0] = '\0'; }

void lb_error_prefix(const char *fmt, ...)
{
    char pre[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    /* pre + ": " + old, truncated to the buffer */
    size_t k = strlen(pre), cap = sizeof err_buf - 1;
    if (k > cap) k = cap;
    memcpy(err_buf, pre, k);
    for (const char *s = ": "; *s && k < cap; s++) err_buf[k++] = *s;
    for (const char *s = old; *s && k < cap; s++) err_buf[k++] = *s;
    err_buf[k] = '\0';
}

static atomic_uint_fast64_t alloc_count;

uint64_t lb_alloc_count(void) { return (uint64_t)atomic_load(&alloc_count); }

void *lb_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p) atomic_fetch_add(&alloc_count, 1);
    return p;
}

void *lb_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p) atomic_fetch_add(&alloc_count, 1);
    return p;
}

void *lb_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q) atomic_fetch_add(&alloc_count, 1);
    return q;
}

void lb_free(void *p) { free(p); }

char *lb_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lb_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* --- RNG: xoshiro256** (Blackman & Vigna), seeded by splitmix64 --- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lb_rng_seed(lb_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lb_rng_next(lb_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t lb_rng_below(lb_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    /* rejection sampling on the top of the range keeps it unbiased */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = lb_rng_next(r);
    while (x >= limit);
    return x % n;
}

double lb_rng_uniform(lb_rng *r) { return (double)(lb_rng_next(r) >> 11) * 0x1.0p-53; }

double lb_rng_normal(lb_rng *r)
{
    double u1 = 1.0 - lb_rng_uniform(r); /* (0, 1]: log stays finite */
    double u2 = lb_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void lb_rng_shuffle(lb_rng *r, int *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lb_rng_below(r, i);
        int t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

void lb_rng_derive(lb_rng *out, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
    lb_rng_seed(out, splitmix64(&x));
}

/* --- threads and clock --- */

static int n_threads = 1;

/* One threading layer: libra's own (src/tensor/parallel.c). OpenBLAS stays at 1 thread so
 * the two never stack; measured against OpenBLAS's own threads in docs/performance.md. */
void lb_set_threads(int n)
{
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    n_threads = n;
    openblas_set_num_threads(1);
}

int lb_get_threads(void) { return n_threads; }

double lb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
