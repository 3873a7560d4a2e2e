/* Shared by the files of src/study: the study object. Not part of the public API. */
#ifndef LIBRA_STUDY_INTERNAL_H
#define LIBRA_STUDY_INTERNAL_H

#include "libra/study.h"

struct lb_study {
    lb_study_config cfg;       /* as given (strings borrowed) */
    const lb_data *data;       /* borrowed */
    lb_train_opts base;        /* what every job starts from */
    lb_strategy *strat;
    char **keys;               /* canonical key of each strategy */
    int n_strat;
    lb_job **jobs;             /* the plan (each job allocated alone: pointers stay valid) */
    int n_jobs, cap_jobs;
    int *chosen;               /* per strategy: the chosen grid point */
    float **grid_vals;         /* per grid strategy: each point's validation balanced accuracy */
    char *out, *runs_dir, *curves_dir;
    char *settings;            /* what every run shares, as written to runs/settings.txt */
    char *made[32];            /* levels of out that this study created */
    int n_made;
    int have_run_dirs, made_run_dirs, stored_any;
    int n_done, n_total, sched_width, executed;
    int deferred;              /* a shard: the grids' phase-1 records missing for phase 2 */
    lb_study_events ev;
    volatile sig_atomic_t *stop;
    lb_kv *extra;              /* flags added by the program */
    int n_extra;
    lb_results results;
    int have_results;
    lb_data *oracle_data[2];   /* the balanced training sets of oracle and oracle_full (NULL: not asked) */
    char *oracle_profile[2], *oracle_note[2];
};

/* The job for strategy s's training run with this loss (a grid point) and seed, added to the
 * plan if new; it gains s's stages (NULL: out of memory). */
lb_job *lb__study_job(lb_study *st, const lb_strategy *s, const char *loss, uint64_t seed);
void lb__job_free(lb_job *j);
/* OUT/runs/<job>.json, or with curve OUT/curves/<job>.csv (lb_free it). */
char *lb__job_path(const lb_study *st, const lb_job *job, int curve);

/* Does this process run job j (every job, or the shard's share)? */
int lb__study_runs_here(const lb_study *st, const lb_job *j);

/* Is `name` one of the '+'-joined names of list (NULL: none)? */
int lb__in_list(const char *list, const char *name);

#endif
