/* The MPI layer's stand-in in a build without MPI (LIBRA_MPI=OFF, or no MPI found): one
 * rank, and a refusal when an MPI launcher started several copies of the program. */
#include "dist/internal.h"

#include <string.h>

const char *lb_dist_mpi_library(void) { return NULL; }

int lb_dist_init(int *argc, char ***argv, lb_dist *out)
{
    (void)argc;
    (void)argv;
    memset(out, 0, sizeof *out);
    out->size = 1;
    int size = 0, rank = 0;
    const char *var = NULL;
    if (!lb__dist_launcher(&size, &rank, &var) || size <= 1) return LB_OK;
    out->rank = rank;
    out->size = size;
    return lb_error(LB_EINVAL,
                    "this program is one of %d processes started by an MPI launcher (%s=%d), but libra was built "
                    "without MPI, so each would do all the work alone: run it without mpirun (--jobs N for the cores "
                    "of this machine, --only I/N to share a study between machines), or build libra with MPI "
                    "(libopenmpi-dev installed, cmake -DLIBRA_MPI=ON)",
                    size, var, size);
}

void lb_dist_finalize(lb_dist *d) { (void)d; }

void lb_dist_abort(lb_dist *d, int status)
{
    (void)d;
    (void)status;
}

lb_scheduler lb_scheduler_mpi(lb_dist *d)
{
    (void)d;
    return lb_scheduler_serial();
}

int lb_dist_serve(lb_dist *d, lb_study *st)
{
    (void)d;
    (void)st;
    return lb_error(LB_ESTATE, "lb_dist_serve: libra was built without MPI: there is no rank 0 to serve");
}

int lb_dist_next_study(lb_dist *d, lb_study *st)
{
    (void)d;
    (void)st;
    return LB_OK;
}

int lb_dist_stopped(const lb_dist *d)
{
    (void)d;
    return 1;
}

const lb_reducer *lb_dist_reducer(lb_dist *d)
{
    (void)d;
    return NULL;
}

int lb_dist_any(lb_dist *d, int flag)
{
    (void)d;
    return flag != 0;
}
