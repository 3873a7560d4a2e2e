/* libra dist: where a study's jobs run. A scheduler (lb_scheduler, libra/study.h) takes the
 * jobs of a phase and sees each one run (lb_study_run_job + lb_study_store) somewhere, then
 * reports it done in the calling process (lb_study_job_done):
 *   lb_scheduler_serial()   one after the other, in this process;
 *   lb_scheduler_fork(n)    n at a time in forked processes (the data is loaded once, before
 *                           the fork, and shared copy-on-write); each child stores its own
 *                           record, so the parent only waits and reports.
 * This is the only module that knows about processes (and, when built with it, MPI).
 *
 *   lb_scheduler s = jobs > 1 ? lb_scheduler_fork(jobs) : lb_scheduler_serial();
 *   rc = lb_study_execute(study, &s);
 */
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

#ifdef __cplusplus
}
#endif
#endif
