/* Counted allocation with failure injection: every library allocation comes through here. */
#include "libra/base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t alloc_count;
static atomic_int_fast64_t live;  /* allocations not yet freed */
/* Injection: attempts since armed, the attempt that fails (0 = off), whether later ones do. */
static atomic_uint_fast64_t attempts, fail_at, injected;
static atomic_int persist_fail, env_read;

uint64_t lb_alloc_count(void) { return (uint64_t)atomic_load(&alloc_count); }
int64_t lb_alloc_live(void) { return (int64_t)atomic_load(&live); }

/* The call sites whose allocation an injection failed (the callers' return addresses). */
#define MAX_SITES 4096
static void *sites[MAX_SITES];
static atomic_int n_sites;
static atomic_flag sites_lock = ATOMIC_FLAG_INIT;

static void note_site(void *site)
{
    while (atomic_flag_test_and_set(&sites_lock)) {
    }
    int n = atomic_load(&n_sites), seen = 0;
    for (int i = 0; i < n && !seen; i++) seen = sites[i] == site;
    if (!seen && n < MAX_SITES) {
        sites[n] = site;
        atomic_store(&n_sites, n + 1);
    }
    atomic_flag_clear(&sites_lock);
}

int lb_alloc_sites(void) { return atomic_load(&n_sites); }
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

/* 1 if this attempt must fail (noting the call site of the first failure of each attempt). */
static int inject(void *site)
{
    if (!atomic_load(&env_read)) read_env();
    uint64_t at = atomic_load(&fail_at);
    if (!at) return 0;
    uint64_t k = atomic_fetch_add(&attempts, 1) + 1;
    if (k == at || (k > at && atomic_load(&persist_fail))) {
        if (k == at) note_site(site);
        atomic_fetch_add(&injected, 1);
        return 1;
    }
    return 0;
}

/* noinline: __builtin_return_address(0) is then the caller of lb_malloc & co. */
__attribute__((noinline)) void *lb_malloc(size_t n)
{
    if (inject(__builtin_return_address(0))) return NULL;
    void *p = malloc(n ? n : 1);
    if (p) {
        atomic_fetch_add(&alloc_count, 1);
        atomic_fetch_add(&live, 1);
    }
    return p;
}

__attribute__((noinline)) void *lb_calloc(size_t count, size_t size)
{
    if (inject(__builtin_return_address(0))) return NULL;
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p) {
        atomic_fetch_add(&alloc_count, 1);
        atomic_fetch_add(&live, 1);
    }
    return p;
}

__attribute__((noinline)) void *lb_realloc(void *p, size_t n)
{
    if (inject(__builtin_return_address(0))) return NULL;
    void *q = realloc(p, n ? n : 1);
    if (q) {
        atomic_fetch_add(&alloc_count, 1);
        if (!p) atomic_fetch_add(&live, 1); /* realloc(NULL, n) is a new allocation */
    }
    return q;
}

void lb_free(void *p)
{
    if (p) atomic_fetch_sub(&live, 1);
    free(p);
}

__attribute__((noinline)) char *lb_strdup(const char *s)
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
