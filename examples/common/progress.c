/* The training progress display on stderr. */
#include "common/cli.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

void cli_progress_init(cli_progress *p, int quiet, long every)
{
    memset(p, 0, sizeof *p);
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
    p->every = every > 0 ? every : 100;
}

/* 75 -> "1:15", 4000 -> "1:06:40" */
static const char *clock_str(double s, char *buf)
{
    if (!isfinite(s) || s < 0) return strcpy(buf, "?");
    long t = (long)(s + 0.5);
    if (t >= 3600) sprintf(buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else sprintf(buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

void cli_progress_clear(cli_progress *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        p->drawn = 0;
    }
}

void cli_progress_step(cli_progress *p, const lb_train_progress *t)
{
    if (p->quiet) return;
    char eta[32];
    long in_epoch = t->step - (long)t->epoch * t->steps_per_epoch;
    long epoch_len = t->steps_per_epoch;
    if ((long)(t->epoch + 1) * t->steps_per_epoch > t->total_steps) epoch_len = t->total_steps - (long)t->epoch * t->steps_per_epoch;
    if (p->tty) {
        double now = lb_now();
        if (t->step != t->total_steps && now - p->last_draw < 0.1) return;
        p->last_draw = now;
        enum { W = 24 };
        char bar[W + 1];
        int fill = epoch_len > 0 ? (int)(W * in_epoch / epoch_len) : W;
        for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '-';
        bar[W] = '\0';
        fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %ld/%ld  loss %.4f  %.0f img/s  ETA %s", t->epoch + 1, t->epochs,
                bar, t->step, t->total_steps, t->loss_avg, t->images_per_second, clock_str(t->eta, eta));
        fflush(stderr);
        p->drawn = 1;
    } else if (t->step % p->every == 0 || t->step == t->total_steps) {
        fprintf(stderr, "epoch %d/%d step %ld/%ld loss %.4f (epoch mean %.4f) lr %.3g %.0f img/s ETA %s\n",
                t->epoch + 1, t->epochs, t->step, t->total_steps, t->loss, t->loss_avg, t->lr, t->images_per_second,
                clock_str(t->eta, eta));
    }
}

void cli_progress_epoch(cli_progress *p, const lb_train_progress *t)
{
    if (p->quiet) return;
    cli_progress_clear(p);
    char el[32];
    fprintf(stderr, "epoch %d/%d done: step %ld, mean loss %.4f, %.0f img/s, %s elapsed", t->epoch + 1, t->epochs,
            t->step, t->loss_avg, t->images_per_second, clock_str(t->elapsed, el));
    if (!isnan(t->monitor_acc))
        fprintf(stderr, ", accuracy %.4f, balanced accuracy %.4f", t->monitor_acc, t->monitor_bacc);
    fputc('\n', stderr);
}
