/* The MPI reducer (libra/dist.h, run under mpirun by ctest in a build with MPI): on every
 * rank, tree_sum of the ranks' buffers equals, bit for bit, lb_tree_sum of the same buffers in
 * one process (for any rank count, odd ones too); same_everywhere tells equal bytes from
 * unequal ones; lb_dist_any is an OR across ranks. Prints what fails; exit 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libra/dist.h"
#include "libra/tensor.h"

static int failures;
#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "mpi_reduce: rank %d: ", d.rank);                     \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            failures++;                                                           \
        }                                                                        \
    } while (0)

/* Rank r's values: magnitudes from 1e-4 to 1e4, so that the order of the additions shows. */
static void fill(float *x, size_t n, int r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(sin(1.0 + (double)i * 0.7 + r * 1.3) * pow(10.0, (double)((i + (size_t)r) % 9) - 4));
}

int main(int argc, char **argv)
{
    lb_dist d;
    if (lb_dist_init(&argc, &argv, &d) != LB_OK || !d.active) {
        fprintf(stderr, "mpi_reduce: start it with mpirun (%s)\n", lb_last_error());
        return 1;
    }
    const size_t n = 4099;
    const lb_reducer *r = lb_dist_reducer(&d);
    CHECK(r && r->rank == d.rank && r->size == d.size, "no reducer of %d ranks", d.size);
    float *mine = malloc(n * sizeof *mine), **all = malloc((size_t)d.size * sizeof *all);
    for (int k = 0; k < d.size; k++) {
        all[k] = malloc(n * sizeof **all);
        fill(all[k], n, k);
    }
    fill(mine, n, d.rank);
    lb_tree_sum(all, d.size, n); /* the one-process tree: all[0] */
    CHECK(r && r->tree_sum(r->ctx, mine, n) == LB_OK, "tree_sum: %s", lb_last_error());
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&mine[i], &all[0][i], sizeof(float)) != 0;
    CHECK(diff == 0, "tree_sum of %d ranks differs from lb_tree_sum in %zu of %zu floats", d.size, diff, n);
    CHECK(r && r->same_everywhere(r->ctx, "same bytes", 10) == 1, "same_everywhere: equal bytes not seen as equal");
    CHECK(r && r->same_everywhere(r->ctx, &d.rank, sizeof d.rank) == (d.size == 1), "same_everywhere: the ranks differ");
    CHECK(lb_dist_any(&d, d.rank == d.size - 1) == 1, "lb_dist_any: the last rank's flag not seen");
    CHECK(lb_dist_any(&d, 0) == 0, "lb_dist_any: a flag that no rank set");
    for (int k = 0; k < d.size; k++) free(all[k]);
    free(all);
    free(mine);
    lb_dist_finalize(&d);
    if (!failures && d.rank == 0) printf("mpi_reduce: ok (%d ranks, %zu floats)\n", d.size, n);
    return failures ? 1 : 0;
}
