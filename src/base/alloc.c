/* Counted allocation with failure injection: every library allocation comes through here. */
#include "libra/base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t alloc_count;
/* Injection: attempts since armed, the attempt that fails (0 = off), whether later ones do. */
static atomic_uint_fast64_t attempts, fail_at, injected;
static atomic_int persist_fail, env_read;

uint64_t lb_alloc_count(void) { return (uint64_t)atomic_load(&alloc_count); }
uint64_t lb_alloc_attempts(void) { return (uint64_t)atomic_load(&attempts); }
uint64_t lb_alloc_injected(void) { return (uint64_t)atomic_load(&injected); }

void lb_alloc_fail_at(uint64_t n, int persist)
{
    atomic_store(&env_read, 1);
    atomic_store(&attempts, 0);
    atomic_store(&injected, 0);
    atomic_store(&persist_fail, persist != 0);
    atomic_store(&fail_at, n);
}

/* LIBRA_FAIL_ALLOC=N or N+ arms the injection before the first allocation of a program. */
static void read_env(void)
{
    if (atomic_exchange(&env_read, 1)) return;
    const char *v = getenv("LIBRA_FAIL_ALLOC");
    if (!v || !*v) return;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || (*end && strcmp(end, "+") != 0)) return;
    atomic_store(&persist_fail, *end == '+');
    atomic_store(&fail_at, (uint_fast64_t)n);
}

/* 1 if this attempt must fail. */
static int inject(void)
{
    if (!atomic_load(&env_read)) read_env();
    uint64_t at = atomic_load(&fail_at);
    if (!at) return 0;
    uint64_t k = atomic_fetch_add(&attempts, 1) + 1;
    if (k == at || (k > at && atomic_load(&persist_fail))) {
        atomic_fetch_add(&injected, 1);
        return 1;
    }
    return 0;
}

void *lb_malloc(size_t n)
{
    if (inject()) return NULL;
    void *p = malloc(n ? n : 1);
    if (p) atomic_fetch_add(&alloc_count, 1);
    return p;
}

void *lb_calloc(size_t count, size_t size)
{
    if (inject()) return NULL;
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p) atomic_fetch_add(&alloc_count, 1);
    return p;
}

void *lb_realloc(void *p, size_t n)
{
    if (inject()) return NULL;
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

char *lb_strndup(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && s[k]) k++;
    char *d = lb_malloc(k + 1);
    if (!d) return NULL;
    memcpy(d, s, k);
    d[k] = '\0';
    return d;
}
