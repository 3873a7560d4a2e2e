/* Helpers shared by the files of src/data (not part of the public API). */
#ifndef LIBRA_DATA_INTERNAL_H
#define LIBRA_DATA_INTERNAL_H

#include "libra/data.h"

/* A zeroed dataset (lb_calloc) or NULL with an LB_ENOMEM message. */
lb_dataset *lb__dataset_new(void);
/* Appends a warning "fmt..." to ds (kept up to LB_DATA_MAX_WARNINGS, always counted). */
/* Class names "0", "1", ... or copies of `names`; NULL on allocation failure. */
char **lb__names(int n, const char *const *names);
void lb__free_names(char **names, int n);
/* qsort comparator for ints. */
int lb__cmp_int(const void *a, const void *b);

#endif
