/* The in-process scheduler: jobs one after the other. */
#include "libra/dist.h"

static int run_serial(void *ctx, lb_study *st, lb_job *const *todo, int n)
{
    (void)ctx;
    for (int i = 0; i < n; i++) {
        if (lb_study_stopping(st)) return lb_error(LB_EINTR, "interrupted");
        double t0 = lb_now();
        lb_run_record rec;
        int rc = lb_study_run_job(st, todo[i], &rec);
        if (rc == LB_OK) rc = lb_study_store(st, todo[i], &rec);
        lb_run_record_free(&rec);
        if (rc == LB_OK) rc = lb_study_job_done(st, todo[i], lb_now() - t0);
        if (rc != LB_OK) return lb_study_stopping(st) ? lb_error(LB_EINTR, "interrupted") : rc;
    }
    return LB_OK;
}

lb_scheduler lb_scheduler_serial(void) { return (lb_scheduler){"serial", 1, NULL, run_serial}; }
