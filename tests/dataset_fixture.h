/* An in-memory dataset for the suites that build their own images (test_synth, test_data). */
#ifndef LIBRA_TEST_DATASET_FIXTURE_H
#define LIBRA_TEST_DATASET_FIXTURE_H

#include "libra/data.h"

/* An n-image dataset of 1 x h x w in C classes named PREFIX0, PREFIX1, ..., its pixels and
 * labels allocated and left for the caller to write. */
static inline lb_dataset *blank_dataset(int n, int h, int w, int C, const char *prefix, const char *source)
{
    lb_dataset *ds = lb_calloc(1, sizeof *ds);
    ds->n = n;
    ds->c = 1;
    ds->h = h;
    ds->w = w;
    ds->n_classes = C;
    ds->pixels = lb_malloc((size_t)n * (size_t)h * (size_t)w);
    ds->labels = lb_malloc(sizeof(int) * (size_t)n);
    ds->class_names = lb_calloc((size_t)C, sizeof(char *));
    for (int c = 0; c < C; c++) ds->class_names[c] = lb_strfmt("%s%d", prefix, c);
    ds->source = lb_strdup(source);
    return ds;
}

#endif
