/* libra dist: where a study's jobs run. A scheduler (lb_scheduler, libra/study.h) takes the
 * jobs of a phase and sees each one run (lb_study_run_job + lb_study_store) somewhere, then
 * reports it done in the calling process (lb_study_job_done):
 *   lb_scheduler_serial()   one after the other, in this process;
 *   lb_scheduler_fork(n)    n at a time in forked processes (the data is loaded once, before
 *                           the fork, and shared copy-on-write), the next one started as one
 *                           ends, largest first as under MPI (below); each child stores its
 *                           own record, so the parent only waits and reports;
 *   lb_scheduler_mpi(d)     across the ranks of an MPI job (below).
 * This is the only module that knows about processes and MPI. The MPI layer is its own
 * library (libra_mpi, built from src/dist/mpi/ when CMake's LIBRA_MPI is on, from the
 * stand-ins of src/dist/nompi/ otherwise), so libra itself never needs MPI and every program
 * builds and runs without it.
 *
 *   lb_scheduler s = jobs > 1 ? lb_scheduler_fork(jobs) : lb_scheduler_serial();
 *   rc = lb_study_execute(study, &s);
 *
 * A study across ranks (docs/distributed.md): every rank reads the same flags and loads the
 * same data; rank 0 makes the study (and its output folder), the others a worker's copy
 * (lb_study_config.worker = 1), which checks nothing on disk and writes nothing.
 *
 *   lb_dist d;
 *   if (lb_dist_init(&argc, &argv, &d) != LB_OK) ...      // refuse: exit 2 (see below)
 *   ... flags, data, c.worker = d.rank > 0, st = lb_study_new(&c, data) ...
 *   if (d.rank == 0) {
 *       lb_scheduler s = lb_scheduler_mpi(&d);             // serial when d.size == 1
 *       rc = lb_study_execute(st, &s);  ... lb_study_write(st) ...
 *   } else {
 *       rc = lb_dist_serve(&d, st);                        // until rank 0 says stop
 *   }
 *   lb_dist_finalize(&d);                                  // every rank, every way out
 *
 * Rank 0 hands the jobs of a phase out one at a time to the ranks that ask, largest first
 * (the same step budget for all; a synthetic sampler or stages count a little more, see
 * docs/distributed.md), and runs jobs itself: between its own training steps it answers
 * the others, stores the records they send (each as the text of its JSON file, so no shared
 * file system is needed) and hands out the next job. Rank 0 writes every file. A waiting
 * rank polls (MPI_Iprobe, MPI_Test) with a 5 ms sleep in between, so it does not spin a core
 * as a blocking receive of Open MPI does. The records are bitwise those of one process (the
 * same binary, thread count and CPU family); each carries the rank that trained it. */
#ifndef LIBRA_DIST_H
#define LIBRA_DIST_H

#include "libra/study.h"

#ifdef __cplusplus
extern "C" {
#endif

lb_scheduler lb_scheduler_serial(void);
/* n_proc processes at a time (n_proc <= 1: serial). A child that fails or is killed stops
 * the study (no new job starts; the running ones finish) with the child's message, or the
 * signal that ended it. */
lb_scheduler lb_scheduler_fork(int n_proc);

/* ---- MPI ---- */

typedef struct lb_dist {
    int rank, size;   /* this process's rank and the number of ranks (0 and 1 without MPI) */
    int active;       /* MPI is initialised: an MPI build started by an MPI launcher */
    void *impl;       /* the MPI layer's state */
} lb_dist;

/* The MPI library libra was built with ("Open MPI v4.1.4, ..."), or NULL without MPI. */
const char *lb_dist_mpi_library(void);

/* Starts MPI when an MPI launcher started this process as one of several (mpirun, srun:
 * OMPI_COMM_WORLD_SIZE or PMI_SIZE above 1, or PMIX_RANK, in the environment) and fills out;
 * otherwise out is one rank of one, inactive (an MPI build runs as a plain program too, and so
 * does a single process of a launcher: mpirun -np 1, one srun task). A build without MPI started as one of
 * K > 1 processes by a launcher returns LB_EINVAL with a message saying so (out->rank and
 * size from the environment): a program must refuse rather than run its work K times. */
int lb_dist_init(int *argc, char ***argv, lb_dist *out);

/* Ends MPI (nothing when inactive; a second call does nothing). Rank 0 tells every other
 * rank to stop and waits for each to say it has; another rank that was not told to stop yet
 * says it is gone (rank 0 then fails the study naming it) and waits to be told. So every rank
 * must call it on every way out once lb_dist_init succeeded (atexit is fine), and it must be
 * the last MPI call. */
void lb_dist_finalize(lb_dist *d);

/* Rank 0's scheduler of a study across d's ranks (lb_scheduler_serial() when d->size == 1).
 * A job that fails on any rank stops the study like a failed child of lb_scheduler_fork (no
 * new job starts, the running ones finish and are stored) with that rank's message. When
 * the study's stop flag is set (a signal), or a rank reports one, rank 0 stops its own job,
 * tells the others to stop theirs, keeps every record already received and returns
 * LB_EINTR. Each record it stores carries the rank that trained it (lb_run_record.rank). */
lb_scheduler lb_scheduler_mpi(lb_dist *d);

/* A rank other than 0: says hello with its study's settings (rank 0 refuses a rank whose
 * settings differ: other flags or other data), then runs each job rank 0 hands it and sends
 * the record back, until rank 0 says stop. LB_OK then; LB_EINTR when st's stop flag was set
 * (its running job is abandoned and rank 0 told); rank 0's refusal as LB_EINVAL. */
int lb_dist_serve(lb_dist *d, lb_study *st);

/* A sweep across ranks (one study per profile, one after another, on every rank): rank 0,
 * after a study that is not the last, tells every rank that it is over and waits until each
 * has said so; each rank's lb_dist_serve then returns LB_OK with lb_dist_stopped() 0, and
 * the rank serves its next study (with a new HELLO, checked against rank 0's next study).
 * A failure of a rank on the way (its message) or a signal (LB_EINTR) as in a phase.
 * LB_OK at once when d is one rank or inactive. */
int lb_dist_next_study(lb_dist *d, lb_study *st);
/* A rank other than 0, after lb_dist_serve: 1 when rank 0 said stop (the job is ending), 0
 * when it said that the study is over and another follows. */
int lb_dist_stopped(const lb_dist *d);

/* ---- data-parallel training across ranks (libra/train.h's lb_reducer) ----
 * The reducer of d's ranks, on a communicator of its own (every rank must ask for it, at the
 * same point): tree_sum follows lb_tree_step's schedule in point-to-point messages (rank r
 * adds what its peer sends, lb_tree_add, level by level), then rank 0's total goes to every
 * rank, so the bits depend on the rank count's tree alone; same_everywhere compares a 64-bit
 * hash of the bytes across ranks. These waits block (they are in a training step: every rank
 * is busy). NULL when d is one rank or inactive (train in this process alone), or without
 * MPI; released by lb_dist_finalize. */
const lb_reducer *lb_dist_reducer(lb_dist *d);
/* Ends the whole MPI job at once (MPI_Abort on MPI_COMM_WORLD with `status`: mpirun ends every
 * rank and exits non-zero), for a rank that fails while the others may be waiting for it in a
 * blocking reduction, where lb_dist_finalize would wait forever. Only a program asks for it
 * (libra-train on a failure during data-parallel training); nothing when d is inactive or one
 * rank, so the caller then exits as usual. */
void lb_dist_abort(lb_dist *d, int status);
/* 1 when `flag` is non-zero on any rank (e.g. a stop that every rank must take at the same
 * step), 0 when on none, a negative status on failure; every rank must call it at the same
 * points. Without MPI (or one rank): flag != 0. */
int lb_dist_any(lb_dist *d, int flag);

#ifdef __cplusplus
}
#endif
#endif
