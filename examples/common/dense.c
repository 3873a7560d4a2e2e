/* --task dense of libra-compare and libra-train (docs/dense.md): the dense study across
 * processes, and one dense training run, with their printing. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/dense.h"

static void on_dense_job(void *ctx, const char *name, const lb_dense_record *r, int done, int total, double seconds)
{
    if (*(const int *)ctx) return;
    char div[64] = "";
    if (r->diverged_step) snprintf(div, sizeof div, "  DIVERGED at step %ld", r->diverged_step);
    fprintf(stderr, "[%*d/%d] %-44s mean AP %.4f  image mean AP %.4f  final loss %.4f%s  (%.0f s, %.0f img/s)\n",
            total >= 100 ? 3 : 2, done, total, name, r->mean_ap, r->image_mean_ap, r->final_loss, div, seconds,
            r->images_per_second);
}

/* Runs share `shard` of n of the study in this process: 0, or an exit status. */
static int run_share(lb_dense_study *st, int shard, int n, int quiet, volatile sig_atomic_t *stop)
{
    lb_dense_study_set_share(st, shard, n);
    lb_dense_study_events ev = {(void *)&quiet, on_dense_job};
    int rc = lb_dense_study_run(st, &ev, stop);
    if (rc == LB_EINTR || *stop) return 128 + (*stop ? (int)*stop : SIGINT);
    if (rc != LB_OK) {
        fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

/* The share split over `jobs` processes (forked; the data is shared copy-on-write): the worst
 * exit status of them. */
static int run_forked(lb_dense_study *st, const cli_dense_compare *a, volatile sig_atomic_t *stop)
{
    int base = a->c.n_shards > 1 ? a->c.shard : 0, n_only = a->c.n_shards > 1 ? a->c.n_shards : 1;
    int jobs = (int)a->jobs, n = jobs * n_only, worst = 0;
    if (jobs <= 1) return run_share(st, base, n_only, a->quiet, stop);
    pid_t *pid = calloc((size_t)jobs, sizeof *pid);
    if (!pid) cli_fatal("out of memory");
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < jobs; k++) {
        pid[k] = fork();
        if (pid[k] == 0) _exit(run_share(st, base + n_only * k, n, a->quiet, stop));
        if (pid[k] < 0) {
            fprintf(stderr, "%s: cannot start worker %d: fork failed\n", cli_prog, k + 1);
            worst = CLI_EXIT_RUNTIME;
            break;
        }
    }
    /* wait for the workers; a signal to this process alone (kill PID) is passed on to them */
    int left = 0, passed_on = 0;
    for (int k = 0; k < jobs; k++) left += pid[k] > 0;
    while (left > 0) {
        if (*stop && !passed_on) {
            for (int k = 0; k < jobs; k++)
                if (pid[k] > 0) kill(pid[k], (int)*stop);
            passed_on = 1;
        }
        for (int k = 0; k < jobs; k++) {
            int status = 0;
            if (pid[k] <= 0 || waitpid(pid[k], &status, WNOHANG) != pid[k]) continue;
            int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (code > worst) worst = code;
            pid[k] = 0;
            left--;
        }
        struct timespec pause = {0, 50 * 1000 * 1000};
        if (left > 0) nanosleep(&pause, NULL);
    }
    free(pid);
    return worst;
}

int cli_dense_compare_run(cli_dense_compare *a, const lb_data *data, volatile sig_atomic_t *stop)
{
    lb_dense_study *st = lb_dense_study_new(&a->c, data);
    if (!st) cli_fatal("%s", lb_last_error());
    if (!a->quiet)
        fprintf(stderr, "dense study: %d strategies x %d seeds = %d runs | trunk %s | prior %g | jobs %ld | out %s\n",
                lb_dense_study_n_strategies(st), a->c.seeds, lb_dense_study_n_jobs(st), lb_dense_study_trunk(st),
                a->c.prior, a->jobs, a->c.out_dir);
    int status = a->aggregate ? 0 : run_forked(st, a, stop);
    if (status >= 128) fprintf(stderr, "%s: interrupted; finished runs are kept in %s/runs (--resume)\n", cli_prog, a->c.out_dir);
    if (status == 0 && a->c.n_shards > 1) {
        fprintf(stderr, "%s: share %d/%d is done; once every share is, the same flags with --aggregate (instead of "
                        "--only) write the results\n", cli_prog, a->c.shard + 1, a->c.n_shards);
    } else if (status == 0) {
        lb_buf sum = {0};
        if (lb_dense_study_write(st, &sum) != LB_OK) {
            fprintf(stderr, "%s: %s\n", cli_prog, lb_last_error());
            status = CLI_EXIT_RUNTIME;
        } else {
            if (!a->quiet) fprintf(stderr, "\n%s\n", sum.p);
            printf("results: %s/results.json\ntable:   %s/results.csv\nreport:  %s/report.html\n", a->c.out_dir,
                   a->c.out_dir, a->c.out_dir);
        }
        lb_buf_free(&sum);
    }
    lb_dense_study_free(st);
    return status;
}

void cli_dense_check_arch(const char *arch, const char *data)
{
    lb_dense_spec ds;
    if (!arch || lb_dense_spec_parse(&ds, data) != LB_OK) return; /* the data's own error comes later */
    lb_model *probe = lb_model_new_fcn(arch, 1, ds.canvas_h, ds.canvas_w, 2, ds.stride, 3);
    lb_dense_spec_free(&ds);
    if (!probe) cli_usage_error("--arch: %s", lb_last_error());
    lb_model_free(probe);
}

/* ---- libra-train --task dense ---- */

typedef struct {
    cli_progress *p;
    volatile sig_atomic_t *stop;
} train_ctx;

static int on_train_step(void *ctx, const lb_train_progress *p)
{
    train_ctx *t = ctx;
    cli_progress_step(t->p, p);
    return *t->stop != 0;
}

static void print_dense_result(const lb_dense_record *r, const lb_data *d)
{
    const char *const *names = (const char *const *)d->test->class_names;
    printf("dense: %s loss, %s, prior %s | %ld steps | foreground share training 1:%.0f, test 1:%.0f\n",
           r->loss_spec, r->one_vs_all ? "one sigmoid per class" : "softmax over the classes and background",
           r->prior > 0 ? "on" : "off", r->steps, 1 / r->foreground_share, 1 / r->test_foreground_share);
    if (r->diverged_step) printf("diverged at step %ld: %s\n", r->diverged_step, r->diverged_reason);
    printf("%-20s %10s %10s\n", "class", "AP", "image AP");
    for (int c = 0; c < r->n_classes; c++)
        printf("%-20.20s %10.4f %10.4f\n", names ? names[c] : "?", r->ap[c], r->image_ap[c]);
    printf("mean_ap %.4f | image_mean_ap %.4f | final loss %.4f | %.0f img/s | %.1f s\n", r->mean_ap, r->image_mean_ap,
           r->final_loss, r->images_per_second, r->wall_seconds);
}

int cli_dense_train_run(lb_train_opts *o, double prior, const lb_data *d, const char *out, int quiet,
                        long progress_every, volatile sig_atomic_t *stop)
{
    char trunk[512];
    if (!o->arch) o->arch = lb_dense_default_trunk(d->dense->spec.stride, trunk, sizeof trunk);
    if (!quiet) fprintf(stderr, "model: %s; 3x3 head\n", o->arch);
    cli_progress prog;
    cli_progress_init(&prog, quiet, progress_every);
    train_ctx ctx = {&prog, stop};
    lb_train_hooks hooks = {.ctx = &ctx, .on_step = on_train_step};
    lb_dense_record r;
    int rc = lb_dense_train(o, d, prior, 4, &hooks, &r);
    cli_progress_clear(&prog);
    if (rc != LB_OK) {
        lb_dense_record_free(&r);
        cli_fatal("%s", lb_last_error());
    }
    print_dense_result(&r, d);
    lb_buf name = {0};
    lb_buf_printf(&name, "%s%s", o->loss, prior > 0 ? "" : "+noprior");
    r.strategy = lb_buf_take(&name); /* as a dense study names it */
    if (out) {
        char path[4096];
        snprintf(path, sizeof path, "%s/dense.json", out);
        if (lb_make_dirs(out) != LB_OK || lb_dense_record_write_json(&r, path) != LB_OK) {
            lb_dense_record_free(&r);
            cli_fatal("--out %s: %s", out, lb_last_error());
        }
        printf("record: %s\n", path);
    }
    lb_dense_record_free(&r);
    return *stop ? 128 + (int)*stop : 0;
}
