/* Shared by the files of src/dist (the MPI layer and its stand-in): what needs no MPI, so
 * that it is built and tested in every build. Not part of the public API. */
#ifndef LIBRA_DIST_INTERNAL_H
#define LIBRA_DIST_INTERNAL_H

#include "libra/dist.h"

/* A job as the text a rank is sent: index, seed, loss, sampler, mix, stages, name, one a
 * line (an empty line: no mix / no stages). */
int lb__job_encode(const lb_job *j, lb_buf *out);
/* The job of such a text, its strings pointing into text (which it cuts into lines). */
int lb__job_decode(char *text, lb_job *out);

/* The cost estimate that orders a phase's jobs, largest first: every job of a study has the
 * same step budget, so only work beyond the steps counts: 1, +0.5 for a synthetic sampler
 * (its images are made before training), +0.1 per stage (its passes over the features). */
double lb__job_cost(const lb_job *j);
/* todo[0..n) ordered by lb__job_cost, largest first, ties in plan order, into out. */
void lb__jobs_by_cost(lb_job *const *todo, int n, lb_job **out);

/* Whether an MPI launcher started this process, from its environment (OMPI_COMM_WORLD_SIZE
 * and _RANK of Open MPI; PMI_SIZE and PMI_RANK of MPICH, Intel MPI and Slurm's srun; PMIX_RANK
 * of PMIx): 1 with *size (0 if the launcher does not say), *rank and the variable read, else
 * 0. */
int lb__dist_launcher(int *size, int *rank, const char **var);

#endif
