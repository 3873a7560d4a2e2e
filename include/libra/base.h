/* libra base: what every module needs and none owns. Status codes with located messages,
 * counted allocation (with failure injection for tests), the seeded RNG and its streams,
 * subset selection and grouping by class, whole-file reading and atomic writing, a growable
 * string builder, the one spec parser ("name:arg,key=value,..."), curves and a hash.
 * Nothing here prints or exits.
 *
 *   lb_spec *s = lb_spec_new("focal:gamma=2,alpha=0.25");
 *   if (!s) { fprintf(stderr, "%s\n", lb_last_error()); return lb_last_status(); }
 *   double g;
 *   if (lb_spec_number(s, "gamma", 0, 100, &g) != LB_OK) ...;
 *   lb_spec_free(s);
 *
 *   lb_buf b = {0};
 *   lb_buf_printf(&b, "%d images\n", n);
 *   int rc = lb_buf_write(&b, "out.txt");   // temporary file, fsync, rename
 *   lb_buf_free(&b);
 */
#ifndef LIBRA_BASE_H
#define LIBRA_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LB_PRINTF(a, b)
#endif

#define LB_VERSION "0.1.0"
const char *lb_version(void);

/* ======================================================================== status */

/* Every fallible library call returns one of these (or NULL) and leaves a message naming
 * the file / shape / value at fault. The code is stored with the message, so after a NULL
 * return lb_last_status() says what kind of failure it was. */
typedef enum {
    LB_OK = 0,
    LB_EINVAL = -1,   /* bad argument, spec or flag value */
    LB_ENOMEM = -2,   /* allocation failed or would exceed what the input can hold */
    LB_EIO = -3,      /* open/read/write/rename failed */
    LB_EFORMAT = -4,  /* a file's content is not what its format says */
    LB_ESHAPE = -5,   /* tensor shapes do not fit an op */
    LB_ENUMERIC = -6, /* NaN or Inf where a finite value is required */
    LB_ESTATE = -7,   /* call not valid in the current state (e.g. backward twice) */
    LB_EINTR = -8     /* stopped on request (a signal): finished work is kept */
} lb_status;

/* The message of the most recent error in this thread ("" if none). */
const char *lb_last_error(void);
/* The code stored with that message (LB_OK if none). */
int lb_last_status(void);
/* Records an error (printf-style) and returns `code`: `return lb_error(LB_EINVAL, ...);`. */
int lb_error(int code, const char *fmt, ...) LB_PRINTF(2, 3);
void lb_clear_error(void);
/* Prefixes the current message with context ("PREFIX: message"); the code is kept. */
void lb_error_prefix(const char *fmt, ...) LB_PRINTF(1, 2);
/* Short name of a status code: "invalid argument", "out of memory", ... */
const char *lb_status_name(int code);

/* ======================================================================== memory */

/* Counted allocation: every library allocation goes through these, so tests can assert that
 * a steady-state training step allocates nothing, and can make any one allocation fail. */
void *lb_malloc(size_t n);
void *lb_calloc(size_t count, size_t size);
void *lb_realloc(void *p, size_t n);
void lb_free(void *p);
char *lb_strdup(const char *s);
/* A copy of the first n bytes of s (fewer if s is shorter), NUL-terminated. */
char *lb_strndup(const char *s, size_t n);
/* Number of successful lb_malloc/lb_calloc/lb_realloc calls so far (all threads). */
uint64_t lb_alloc_count(void);

/* Failure injection, for tests (in the manner of SQLite's malloc tests): the n-th allocation
 * attempt from now (1 = the next one) returns NULL; with `persist` every later one does too.
 * n = 0 turns it off. A program started with LIBRA_FAIL_ALLOC=N (or N+ for persistent) in
 * its environment behaves as if lb_alloc_fail_at(N, persist) was its first call. */
void lb_alloc_fail_at(uint64_t n, int persist);
/* Allocation attempts since the last lb_alloc_fail_at, and how many of them were failed. */
uint64_t lb_alloc_attempts(void);
uint64_t lb_alloc_injected(void);
/* Allocations made by lb_malloc & co. and not yet given back to lb_free (a leak check that
 * needs no sanitizer: equal before and after an operation that should keep nothing). */
int64_t lb_alloc_live(void);
/* How many distinct call sites an injection has failed so far (their return addresses). */
int lb_alloc_sites(void);

/* ======================================================================== RNG */

/* The one RNG: xoshiro256** seeded through splitmix64. Passed explicitly everywhere; the
 * whole state is the 4 words, so copying the struct (or saving it) captures it exactly. */
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
/* Subset selection (a partial Fisher-Yates): afterwards a[0..k) is a uniform random k-subset
 * of a[0..n), in random order; draws lb_rng_below(r, n - i) for i = 0 .. k-1. */
void lb_rng_subset(lb_rng *r, int *a, int n, int k);
/* A new generator for an independent stream derived from `seed` and `stream`, so adding
 * draws to one stream never shifts another. */
void lb_rng_derive(lb_rng *out, uint64_t seed, uint64_t stream);

/* The streams of libra's random choices (the table of every lb_rng_derive stream). A run's
 * seed feeds the first four; the data seed the others; a sampler derives epoch e's order
 * from its own seed with stream e. */
enum {
    LB_STREAM_INIT = 1,      /* weight initialisation */
    LB_STREAM_DROPOUT = 2,   /* dropout masks */
    LB_STREAM_SAMPLER = 3,   /* the sampler's seed */
    LB_STREAM_AUGMENT = 4,   /* crops and flips */
    LB_STREAM_SYNTH = 5,     /* synthetic oversampling (SMOTE family): made once per run */
    LB_STREAM_MIX = 6,       /* mixup / Remix: step t draws from lb_rng_derive(mix seed, t) */
    LB_STREAM_STAGE = 7,     /* two-stage re-training: classifier init and its sampler */
    LB_STREAM_ORDER = 101,   /* --order random */
    LB_STREAM_SELECT = 102,  /* which images an imbalance profile keeps */
    LB_STREAM_VAL = 103,     /* the validation split */
    LB_STREAM_TEST = 104     /* the test split of a single image tree */
};

/* Groups positions 0..n-1 by their class y[i] in [0, n_classes) (a stable counting sort):
 * pos[start[c] .. start[c+1]) are the positions of class c in increasing order. start must
 * hold n_classes + 1 ints, pos n ints. LB_EINVAL names the first label out of range. */
int lb_group_by_class(const int *y, int n, int n_classes, int *start, int *pos);

/* ======================================================================== files */

/* Writes n bytes to path atomically: PATH.tmp.<pid>.<host> beside it (stale ones of dead
 * processes of this machine are removed first), fsync, rename, fsync of the directory. On failure the previous file,
 * if any, is unchanged, no temporary file is left, and the message names the path and the
 * step that failed. */
int lb_write_file_atomic(const char *path, const void *data, size_t n);
/* Reads a whole regular file into *data (lb_malloc'd, NUL-terminated; *n bytes without the
 * NUL). A file larger than max_bytes is refused (LB_EFORMAT) before anything is allocated.
 * Errors name the path: LB_EIO (cannot open or read, not a regular file), LB_ENOMEM. */
int lb_read_file(const char *path, size_t max_bytes, char **data, size_t *n);
/* Whether `dir` could be used as an output folder, without creating anything: the folder,
 * or the nearest part of its path that exists, must be a directory this process can write
 * in. LB_EIO names the part at fault ("'a/b' is a file", "'a' is not writable"). */
int lb_check_output_dir(const char *dir);
/* mkdir -p dir (LB_EIO naming the part that could not be made). */
int lb_make_dirs(const char *dir);
/* What this process may still take, in bytes (UINT64_MAX: no limit): the address-space limit
 * (ulimit -v) less what is mapped, the data limit (ulimit -d) less the data segment, and the
 * cgroup's memory limit less what the cgroup uses. */
typedef struct lb_memory_room {
    uint64_t address_space, data, cgroup;
} lb_memory_room;
lb_memory_room lb_memory_headroom(void);
/* Monotonic wall clock in seconds. */
double lb_now(void);

/* ======================================================================== strings */

/* A growable string. Appends never fail loudly: on an allocation failure they set oom and
 * stop; check it once at the end (lb_buf_status or lb_buf_write do). Zero-initialise. */
typedef struct lb_buf {
    char *p;     /* NUL-terminated once anything was appended */
    size_t n, cap;
    int oom;
} lb_buf;

void lb_buf_put(lb_buf *b, const void *s, size_t n);
void lb_buf_puts(lb_buf *b, const char *s);
/* s as one CSV field (RFC 4180): as it is, or in double quotes (quotes doubled) when it holds
 * a comma, a quote or a line break. NULL is the empty field. */
void lb_buf_csv_field(lb_buf *b, const char *s);
void lb_buf_printf(lb_buf *b, const char *fmt, ...) LB_PRINTF(2, 3);
void lb_buf_free(lb_buf *b);
/* LB_OK, or LB_ENOMEM with "WHAT: out of memory" if an append failed. */
int lb_buf_status(const lb_buf *b, const char *what);
/* The text ("" if nothing was appended), now owned by the caller; b is left empty. NULL
 * (with LB_ENOMEM) if an append failed. */
char *lb_buf_take(lb_buf *b);
/* printf into a new lb_malloc'd string (NULL when out of memory). */
char *lb_strfmt(const char *fmt, ...) LB_PRINTF(1, 2);
/* Writes the text to path with lb_write_file_atomic (LB_ENOMEM if an append failed). */
int lb_buf_write(const lb_buf *b, const char *path);

/* Warnings a caller should show (the library never prints): every one counted, the first
 * LB_NOTES_KEPT kept as text. Zero-initialise; lb_notes_free releases. */
#define LB_NOTES_KEPT 64
typedef struct lb_notes {
    int n;       /* all the warnings */
    int n_kept;  /* those in msg */
    char **msg;  /* [n_kept] */
} lb_notes;
/* Adds one (counted even beyond LB_NOTES_KEPT). LB_ENOMEM if its text cannot be kept. */
int lb_notes_add(lb_notes *w, const char *fmt, ...) LB_PRINTF(2, 3);
/* Adds every warning of src (its count too, when it kept fewer than it counted). */
int lb_notes_add_all(lb_notes *w, const lb_notes *src);
void lb_notes_free(lb_notes *w);

/* 64-bit hash of n bytes, continuing from h (start with LB_HASH_INIT). Not cryptographic:
 * for fingerprints of data and parameters. */
#define LB_HASH_INIT 0x9e3779b97f4a7c15ULL
uint64_t lb_hash64(const void *data, size_t n, uint64_t h);

/* ======================================================================== specs */

/* The one grammar of every spec (losses, samplers, profiles, architectures, schedules, data
 * sources; strategies are built from specs):
 *     NAME[:ITEM,ITEM,...]     ITEM = KEY=VALUE | WORD
 * A WORD before the first KEY=VALUE is a positional argument ("longtail:100",
 * "binary:Shirt,50", "smallcnn:bn"); a WORD after one continues that value as a comma list
 * ("weights=1,2,4", "alpha=0.75,0.25"). NAME and KEY are letters, digits and '_'; a value
 * holds no '='; keys may not repeat. '|' is refused: grids such as gamma=0.5|1|2 are expanded
 * by the study before a spec reaches a parser. Blanks around items are ignored. */
typedef struct lb_spec lb_spec;

lb_spec *lb_spec_new(const char *text);   /* NULL + message (naming the spec) if malformed */
void lb_spec_free(lb_spec *s);
const char *lb_spec_text(const lb_spec *s);   /* as given */
const char *lb_spec_name(const lb_spec *s);
int lb_spec_n_args(const lb_spec *s);
const char *lb_spec_arg(const lb_spec *s, int i);   /* NULL if out of range */
int lb_spec_count(const lb_spec *s);               /* KEY=VALUE items */
const char *lb_spec_key(const lb_spec *s, int i);
const char *lb_spec_value(const lb_spec *s, int i);
const char *lb_spec_get(const lb_spec *s, const char *key);   /* NULL if absent */
/* LB_OK if every key is one of `keys` (NULL-terminated) and there are at most max_args
 * positional arguments; else LB_EINVAL naming `what`, the offender and what is allowed. */
int lb_spec_check(const lb_spec *s, const char *what, const char *const *keys, int max_args);
/* The value of `key` as one finite number in [lo, hi]; errors name the spec and key. */
int lb_spec_number(const lb_spec *s, const char *key, double lo, double hi, double *out);
/* The value of `key` as a comma list of finite numbers (at most max); *count gets how many. */
int lb_spec_numbers(const lb_spec *s, const char *key, double *out, int max, int *count);
/* Strict number parsing of a whole string (no trailing characters, finite): 0 or -1. */
int lb_parse_double(const char *s, double *out);
int lb_parse_int(const char *s, int *out);
/* Shortest "%g"-style text that reads back as exactly v (2 -> "2", 0.9999 -> "0.9999"). */
const char *lb_format_number(double v, char *buf, size_t size);

/* ======================================================================== curves */

/* A series of (step, value) points: a training loss, a validation score. */
typedef struct lb_curve {
    size_t n, cap;
    int64_t *step;
    float *value;
} lb_curve;

/* Appends a point (allocating only when n reaches cap). */
int lb_curve_append(lb_curve *c, int64_t step, float value);
/* Makes room for cap points, so that appends up to it allocate nothing. */
int lb_curve_reserve(lb_curve *c, size_t cap);
/* dst (empty or freed) gets a copy of src. */
int lb_curve_copy(lb_curve *dst, const lb_curve *src);
void lb_curve_free(lb_curve *c);

#ifdef __cplusplus
}
#endif
#endif
