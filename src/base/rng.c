/* The RNG (xoshiro256** seeded by splitmix64), subset selection, grouping by class, a hash. */
#include "libra/base.h"

#include <math.h>
#include <string.h>

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

void lb_rng_subset(lb_rng *r, int *a, int n, int k)
{
    for (int i = 0; i < k && i < n; i++) {
        int j = i + (int)lb_rng_below(r, (uint64_t)(n - i));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void lb_rng_derive(lb_rng *out, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
    lb_rng_seed(out, splitmix64(&x));
}

int lb_group_by_class(const int *y, int n, int n_classes, int *start, int *pos)
{
    memset(start, 0, sizeof(int) * ((size_t)n_classes + 1));
    for (int i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= n_classes)
            return lb_error(LB_EINVAL, "label %d of entry %d is outside [0, %d)", y[i], i, n_classes);
        start[y[i] + 1]++;
    }
    for (int c = 0; c < n_classes; c++) start[c + 1] += start[c];
    /* start[c] walks through class c's block; afterwards it holds the block's end, which is
     * start[c + 1] of before: shifting back by one class restores the starts */
    for (int i = 0; i < n; i++) pos[start[y[i]]++] = i;
    for (int c = n_classes; c > 0; c--) start[c] = start[c - 1];
    start[0] = 0;
    return LB_OK;
}

/* ---- hash: 8 bytes at a time through a multiply-xorshift mix ---- */

static uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w * 0xbf58476d1ce4e5b9ULL;
    h = (h << 27 | h >> 37) * 0x94d049bb133111ebULL;
    return h;
}

uint64_t lb_hash64(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = mix(h, w);
    }
    uint64_t tail = 0;
    for (size_t k = 0; i + k < n; k++) tail |= (uint64_t)p[i + k] << (8 * k);
    h = mix(h, tail ^ ((uint64_t)n << 56));
    return h ^ (h >> 31);
}

/* ---- curves ---- */

int lb_curve_reserve(lb_curve *c, size_t cap)
{
    if (cap <= c->cap) return LB_OK;
    int64_t *s = lb_realloc(c->step, cap * sizeof *s);
    if (s) c->step = s;
    float *v = s ? lb_realloc(c->value, cap * sizeof *v) : NULL;
    if (v) c->value = v;
    if (!s || !v) return lb_error(LB_ENOMEM, "curve: out of memory for %zu points", cap);
    c->cap = cap;
    return LB_OK;
}

int lb_curve_append(lb_curve *c, int64_t step, float value)
{
    if (c->n == c->cap && lb_curve_reserve(c, c->cap ? 2 * c->cap : 64) != LB_OK) return LB_ENOMEM;
    c->step[c->n] = step;
    c->value[c->n++] = value;
    return LB_OK;
}

int lb_curve_copy(lb_curve *dst, const lb_curve *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->n == 0) return LB_OK;
    if (lb_curve_reserve(dst, src->n) != LB_OK) return LB_ENOMEM;
    memcpy(dst->step, src->step, src->n * sizeof *src->step);
    memcpy(dst->value, src->value, src->n * sizeof *src->value);
    dst->n = src->n;
    return LB_OK;
}

void lb_curve_free(lb_curve *c)
{
    if (!c) return;
    lb_free(c->step);
    lb_free(c->value);
    memset(c, 0, sizeof *c);
}
