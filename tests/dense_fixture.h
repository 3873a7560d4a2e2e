/* A small image source shared by the dense tests: four 8x8 patterns, six images each. */
#ifndef LIBRA_TEST_DENSE_FIXTURE_H
#define LIBRA_TEST_DENSE_FIXTURE_H

#include "libra/data.h"

/* Four patterns of 8 x 8, six images each: a horizontal bar, a vertical bar, a filled square,
 * a hollow square (brightness 150..200). */
static inline lb_dataset *pattern_source(void)
{
    lb_dataset *ds = lb_calloc(1, sizeof *ds);
    ds->n = 24, ds->c = 1, ds->h = 8, ds->w = 8, ds->n_classes = 4;
    ds->pixels = lb_calloc(24 * 64, 1);
    ds->labels = lb_malloc(24 * sizeof(int));
    ds->class_names = lb_malloc(4 * sizeof(char *));
    static const char *const names[4] = {"hbar", "vbar", "square", "frame"};
    for (int k = 0; k < 4; k++) ds->class_names[k] = lb_strdup(names[k]);
    for (int j = 0; j < 24; j++) {
        int cls = j % 4;
        uint8_t v = (uint8_t)(150 + 10 * (j / 4));
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                int on = cls == 0 ? (y == 3 || y == 4) : cls == 1 ? (x == 3 || x == 4) : cls == 2 ? 1
                         : (y == 0 || y == 7 || x == 0 || x == 7);
                if (on) ds->pixels[j * 64 + y * 8 + x] = v;
            }
        ds->labels[j] = cls;
    }
    return ds;
}

static inline void free_pattern_source(lb_dataset *ds)
{
    for (int k = 0; k < 4; k++) lb_free(ds->class_names[k]);
    lb_free(ds->class_names);
    lb_free(ds->pixels);
    lb_free(ds->labels);
    lb_free(ds);
}

#endif
