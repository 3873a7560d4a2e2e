/* Helpers shared by the files of src/data (not part of the public API). */
#ifndef LIBRA_DATA_INTERNAL_H
#define LIBRA_DATA_INTERNAL_H

#include "libra/data.h"

/* Seed streams of the data module, so that each random choice has its own generator and
 * adding draws to one never shifts another. */
enum {
    LB_DATA_STREAM_ORDER = 101,
    LB_DATA_STREAM_SELECT = 102,
    LB_DATA_STREAM_VAL = 103,
    LB_DATA_STREAM_TEST = 104
};

/* A zeroed dataset (lb_calloc) or NULL with an LB_ENOMEM message. */
lb_dataset *lb_data__dataset_new(void);
/* Appends a warning "fmt..." to ds (kept up to LB_DATA_MAX_WARNINGS, always counted). */
void lb_data__warn(lb_dataset *ds, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Class names "0", "1", ... or copies of `names`; NULL on allocation failure. */
char **lb_data__names(int n, const char *const *names);
void lb_data__free_names(char **names, int n);
/* Strict number parsing: the whole string must be consumed. Return 0 on success. */
int lb_data__parse_double(const char *s, double *out);
int lb_data__parse_int(const char *s, int *out);
/* qsort comparator for ints. */
int lb_data__cmp_int(const void *a, const void *b);
/* printf into a new lb_malloc'd string. */
char *lb_data__fmt(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
