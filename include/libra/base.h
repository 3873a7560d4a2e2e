/* libra base: status codes, the last-error message, the seeded RNG, counted allocation.
 * Everything else in libra builds on this header. */
#ifndef LIBRA_BASE_H
#define LIBRA_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LB_VERSION "0.1.0"
const char *lb_version(void);

/* Status codes. Every fallible library call returns one (or NULL) and leaves a message
 * naming the file / shape / value at fault in lb_last_error(). */
typedef enum {
    LB_OK = 0,
    LB_EINVAL = -1,   /* bad argument, spec or flag value */
    LB_ENOMEM = -2,   /* allocation failed or would exceed what the input can hold */
    LB_EIO = -3,      /* open/read/write/rename failed */
    LB_EFORMAT = -4,  /* a file's content is not what its format says */
    LB_ESHAPE = -5,   /* tensor shapes do not fit an op */
    LB_ENUMERIC = -6, /* NaN or Inf where a finite value is required */
    LB_ESTATE = -7    /* call not valid in the current state (e.g. backward twice) */
} lb_status;

/* The message of the most recent error in this thread ("" if none). */
const char *lb_last_error(void);
/* Records an error message (printf-style) and returns `code`, so callers can write
 * `return lb_error(LB_EINVAL, "...", ...);`. */
int lb_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void lb_clear_error(void);
/* Prefix the current message with context, e.g. the file being loaded. */
void lb_error_prefix(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Counted allocation: all library allocations go through these, so tests can assert that
 * a steady-state training step allocates nothing. */
void *lb_malloc(size_t n);
void *lb_calloc(size_t count, size_t size);
void *lb_realloc(void *p, size_t n);
void lb_free(void *p);
char *lb_strdup(const char *s);
/* Number of successful lb_malloc/lb_calloc/lb_realloc calls so far (all threads). */
uint64_t lb_alloc_count(void);

/* The one RNG: xoshiro256** seeded through splitmix64. Passed explicitly everywhere
 * (init, dropout, shuffling, sampling, imbalance); the whole state is the 4 words, so
 * copying the struct (or saving it in a checkpoint) captures it exactly. */
typedef struct lb_rng {
    uint64_t s[4];
} lb_rng;

void lb_rng_seed(lb_rng *r, uint64_t seed);
uint64_t lb_rng_next(lb_rng *r);
/* Uniform integer in [0, n), unbiased. n must be > 0. */
uint64_t lb_rng_below(lb_rng *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double lb_rng_uniform(lb_rng *r);
/* Standard normal (Box-Muller, no cached second value, so the state stays 4 words). */
double lb_rng_normal(lb_rng *r);
/* Fisher-Yates shuffle of n ints. */
void lb_rng_shuffle(lb_rng *r, int *a, size_t n);
/* A new generator for an independent stream derived from `seed` and `stream`
 * (e.g. one for init, one for sampling), so adding draws to one never shifts another. */
void lb_rng_derive(lb_rng *out, uint64_t seed, uint64_t stream);

/* Threads of libra's own threading layer (src/tensor/parallel.c), which splits convolutions
 * by image, large GEMMs by rows or columns and the optimizer's buffers, each by a partition
 * fixed by n (so a result depends only on the seed and n). OpenBLAS is kept at one thread:
 * one threading layer at a time. */
void lb_set_threads(int n);
int lb_get_threads(void);

/* Writes n bytes to path atomically: PATH.tmp.<pid> beside it (stale ones of dead processes
 * are removed first), fsync, rename, fsync of the directory. On failure the previous file,
 * if any, is unchanged and the message names the path and the step that failed. */
int lb_write_file_atomic(const char *path, const void *data, size_t n);

/* Monotonic wall clock in seconds. */
double lb_now(void);

#ifdef __cplusplus
}
#endif
#endif
