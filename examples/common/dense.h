/* --task dense of libra-compare and libra-train (docs/dense.md). */
#ifndef LIBRA_EXAMPLES_DENSE_H
#define LIBRA_EXAMPLES_DENSE_H

#include <signal.h>

#include "common/cli.h"
#include "libra/study.h"

typedef struct cli_dense_compare {
    lb_dense_study_config c;
    long jobs;        /* processes (forked), each a share of the jobs */
    int quiet, aggregate;
} cli_dense_compare;

/* The dense study on `data`: its runs in a->jobs processes (unless --aggregate), then (unless a
 * share of --only) the results files and the summary. Returns the exit status. */
int cli_dense_compare_run(cli_dense_compare *a, const lb_data *data, volatile sig_atomic_t *stop);

/* Exit 2 unless arch (NULL: the default) builds a fully convolutional model on the canvases of
 * the dense spec `data` (a layer list ending in the stride's grid, or resnet). */
void cli_dense_check_arch(const char *arch, const char *data);

/* One dense training run (o->arch NULL: the stride's default trunk), its per
 * class AP printed, its record written to OUT/dense.json when out is given. Returns the exit
 * status (128 + signal when stopped). */
int cli_dense_train_run(lb_train_opts *o, double prior, const lb_data *d, const char *out, int quiet,
                        long progress_every, volatile sig_atomic_t *stop);

#endif
