/* Shared by the files of src/dist/mpi: the state of the MPI layer behind lb_dist.impl. */
#ifndef LIBRA_DIST_MPI_LAYER_H
#define LIBRA_DIST_MPI_LAYER_H

#include "dist/internal.h"

struct lb__reducer_state;

/* The data-parallel reducer (reduce.c): released at lb_dist_finalize, before MPI_Finalize. */
void lb__reducer_free(struct lb__reducer_state *r);
/* Where d keeps its reducer (mpi.c); NULL when d is inactive or one rank. */
struct lb__reducer_state **lb__dist_reducer_slot(lb_dist *d);

#endif
