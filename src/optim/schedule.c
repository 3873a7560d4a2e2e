/* Learning-rate schedules: pure functions of the update counter. */
#include "libra/optim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lb_schedule lb_schedule_constant(double lr)
{
    lb_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = LB_SCHED_CONSTANT;
    s.lr = lr;
    s.gamma = 1.0;
    return s;
}

double lb_schedule_lr(const lb_schedule *s, long t)
{
    if (t < 0) t = 0;
    if (t < s->warmup) return s->lr * (double)(t + 1) / (double)s->warmup;
    long td = t - s->warmup;
    switch (s->kind) {
    case LB_SCHED_STEP:
        return s->every > 0 ? s->lr * pow(s->gamma, (double)(td / s->every)) : s->lr;
    case LB_SCHED_COSINE: {
        long T = s->total - s->warmup;
        if (T <= 0 || td >= T) return s->min_lr;
        return s->min_lr + (s->lr - s->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * (double)td / (double)T));
    }
    case LB_SCHED_CONSTANT:
    default:
        return s->lr;
    }
}

static int parse_long(const char *spec, const char *key, const char *v, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 0)
        return lb_error(LB_EINVAL, "schedule '%s': %s='%s' is not a non-negative integer", spec, key, v);
    *out = x;
    return LB_OK;
}

static int parse_double(const char *spec, const char *key, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < 0)
        return lb_error(LB_EINVAL, "schedule '%s': %s='%s' is not a non-negative number", spec, key, v);
    *out = x;
    return LB_OK;
}

int lb_schedule_parse(const char *spec, double lr, long total, lb_schedule *out)
{
    lb_schedule s = lb_schedule_constant(lr);
    s.total = total;
    s.gamma = 0.1;
    if (!spec || !*spec) spec = "constant";
    char buf[256];
    if (strlen(spec) >= sizeof buf) return lb_error(LB_EINVAL, "schedule '%.40s...': too long", spec);
    strcpy(buf, spec);

    /* the kind is everything before the first ':' or ','; a spec starting with a key
     * (e.g. "warmup=100") means constant */
    char *rest = buf + strcspn(buf, ":,");
    char sep = *rest;
    *rest = '\0';
    if (strchr(buf, '=')) {
        *rest = sep;
        rest = buf;
    } else {
        if (strcmp(buf, "constant") == 0) s.kind = LB_SCHED_CONSTANT;
        else if (strcmp(buf, "step") == 0) s.kind = LB_SCHED_STEP;
        else if (strcmp(buf, "cosine") == 0) s.kind = LB_SCHED_COSINE;
        else return lb_error(LB_EINVAL, "schedule '%s': unknown kind '%s' (constant, step or cosine)", spec, buf);
        if (sep) rest++;
    }
    int have_every = 0;
    char *save = NULL;
    for (char *tok = strtok_r(rest, ":,", &save); tok; tok = strtok_r(NULL, ":,", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return lb_error(LB_EINVAL, "schedule '%s': '%s' is not key=value", spec, tok);
        *eq = '\0';
        const char *k = tok, *v = eq + 1;
        int rc;
        if (strcmp(k, "warmup") == 0) rc = parse_long(spec, k, v, &s.warmup);
        else if (strcmp(k, "every") == 0 && s.kind == LB_SCHED_STEP) {
            rc = parse_long(spec, k, v, &s.every);
            if (rc == LB_OK && s.every == 0) rc = lb_error(LB_EINVAL, "schedule '%s': every=0 (must be >= 1)", spec);
            have_every = 1;
        } else if (strcmp(k, "gamma") == 0 && s.kind == LB_SCHED_STEP) rc = parse_double(spec, k, v, &s.gamma);
        else if (strcmp(k, "min") == 0 && s.kind == LB_SCHED_COSINE) rc = parse_double(spec, k, v, &s.min_lr);
        else rc = lb_error(LB_EINVAL, "schedule '%s': unknown key '%s' for this kind", spec, k);
        if (rc != LB_OK) return rc;
    }
    if (s.kind == LB_SCHED_STEP && !have_every) s.every = total / 3 > 0 ? total / 3 : 1;
    if (s.kind == LB_SCHED_COSINE && total <= 0)
        return lb_error(LB_EINVAL, "schedule '%s': cosine needs the run's total step count", spec);
    *out = s;
    return LB_OK;
}

const char *lb_schedule_str(const lb_schedule *s, char *buf, size_t size)
{
    int n = 0;
    switch (s->kind) {
    case LB_SCHED_STEP: n = snprintf(buf, size, "step:every=%ld,gamma=%g", s->every, s->gamma); break;
    case LB_SCHED_COSINE: n = snprintf(buf, size, "cosine:min=%g", s->min_lr); break;
    default: n = snprintf(buf, size, "constant"); break;
    }
    if (s->warmup > 0 && n >= 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, ",warmup=%ld", s->warmup);
    return buf;
}
