/* Helpers shared by the files of src/data (not part of the public API). */
#ifndef LIBRA_DATA_INTERNAL_H
#define LIBRA_DATA_INTERNAL_H

#include "libra/data.h"
#include "data/images.h"

/* A zeroed dataset (lb_calloc) or NULL with an LB_ENOMEM message. */
lb_dataset *lb__dataset_new(void);
/* Class names "0", "1", ... or copies of `names`; NULL on allocation failure. */
char **lb__names(int n, const char *const *names);
void lb__free_names(char **names, int n);
/* qsort comparator for ints. */
int lb__cmp_int(const void *a, const void *b);

/* Dense tasks (dense.c): lb_data_new of a "dense:" source, and its parts. */
lb_data *lb__data_new_dense(const lb_data_opts *o);
void lb__dense_data_free(lb_dense_data *dd);
uint64_t lb__dense_data_hash(const lb_dense_data *dd, uint64_t h);
/* "dense:SOURCE,canvas=HxW,..." with every option of s spelled out (lb_strfmt'd; NULL: no memory). */
char *lb__dense_spec_format(const lb_dense_spec *s, const char *source);

#endif
