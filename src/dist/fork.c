/* The forked scheduler: up to n jobs at a time, each in a child process that runs the job,
 * stores its record and exits; the parent waits, reports, and starts the next, largest first
 * (lb__jobs_by_cost, as the MPI layer hands them out), so the last jobs to end are short ones. */
#include "dist/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child: one job, its record stored; its failure's message goes to the parent through
 * the pipe fd (a message of at most PIPE_BUF bytes is written whole). */
static void child(lb_study *st, lb_job *job, int fd)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    lb_run_record rec;
    int rc = lb_study_run_job(st, job, &rec);
    if (rc == LB_OK) rc = lb_study_store(st, job, &rec);
    if (rc != LB_OK) {
        const char *m = lb_last_error();
        size_t n = strlen(m);
        if (write(fd, m, n < 4000 ? n : 4000) < 0) { /* the parent reports the exit status alone */
        }
    }
    _exit(rc == LB_OK ? 0 : 1);
}

typedef struct {
    pid_t pid;
    int fd;
    double start;
    lb_job *job;
} slot;

/* Waits for one child; 0 if it stored its record, else the error (message set). */
static int reap(lb_study *st, slot *running, int *n_running)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, 0)) < 0 && errno == EINTR) {
    }
    if (pid < 0) return lb_error(LB_ESTATE, "study: waiting for a run: %s", strerror(errno));
    int k = 0;
    while (k < *n_running && running[k].pid != pid) k++;
    if (k == *n_running) return LB_OK; /* not one of ours */
    slot s = running[k];
    running[k] = running[--*n_running];
    char msg[4001];
    ssize_t got = read(s.fd, msg, sizeof msg - 1);
    close(s.fd);
    msg[got > 0 ? got : 0] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return lb_study_job_done(st, s.job, lb_now() - s.start);
    if (WIFSIGNALED(status))
        return lb_error(lb_study_stopping(st) ? LB_EINTR : LB_ESTATE, "run %s@%s seed %llu was killed by signal %d",
                        s.job->loss, s.job->sampler, (unsigned long long)s.job->seed, WTERMSIG(status));
    return lb_error(LB_ESTATE, "%s", got > 0 ? msg : "a run failed");
}

static int run_forked(void *ctx, lb_study *st, lb_job *const *plan, int n)
{
    int width = (int)(intptr_t)ctx, next = 0, n_running = 0, rc = LB_OK;
    slot running[256];
    if (width > 256) width = 256;
    lb_job **todo = lb_malloc(((size_t)n + 1) * sizeof *todo);
    if (!todo) return lb_error(LB_ENOMEM, "study: out of memory");
    lb__jobs_by_cost(plan, n, todo);
    while ((next < n && rc == LB_OK && !lb_study_stopping(st)) || n_running > 0) {
        while (n_running < width && next < n && rc == LB_OK && !lb_study_stopping(st)) {
            int fds[2];
            if (pipe(fds) != 0) {
                rc = lb_error(LB_EIO, "study: pipe: %s", strerror(errno));
                break;
            }
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                rc = lb_error(LB_ENOMEM, "study: fork: %s", strerror(errno));
                break;
            }
            if (pid == 0) {
                close(fds[0]);
                child(st, todo[next], fds[1]);
            }
            close(fds[1]);
            running[n_running++] = (slot){pid, fds[0], lb_now(), todo[next++]};
        }
        if (n_running == 0) break;
        int r = reap(st, running, &n_running);
        if (r != LB_OK && rc == LB_OK) rc = r; /* the first failure; the others finish */
    }
    lb_free(todo);
    if (rc == LB_OK && lb_study_stopping(st)) rc = lb_error(LB_EINTR, "interrupted");
    return rc;
}

lb_scheduler lb_scheduler_fork(int n_proc)
{
    if (n_proc <= 1) return lb_scheduler_serial();
    return (lb_scheduler){"fork", n_proc, (void *)(intptr_t)n_proc, run_forked};
}
