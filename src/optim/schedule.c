/* Learning-rate schedules: pure functions of the update counter. */
#include "libra/optim.h"

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
    case LB_SCHED_STEP: {
        if (s->n_at == 0) return s->every > 0 ? s->lr * pow(s->gamma, (double)(td / s->every)) : s->lr;
        int passed = 0;
        while (passed < s->n_at && s->at[passed] <= t) passed++;
        return s->lr * pow(s->gamma, (double)passed);
    }
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
    double x;
    if (lb_parse_double(v, &x) != 0 || x < 0 || x != floor(x) || x > 9e15)
        return lb_error(LB_EINVAL, "schedule '%s': %s='%s' is not a non-negative integer", spec, key, v);
    *out = (long)x;
    return LB_OK;
}

static int parse_double(const char *spec, const char *key, const char *v, double *out)
{
    double x;
    if (lb_parse_double(v, &x) != 0 || x < 0)
        return lb_error(LB_EINVAL, "schedule '%s': %s='%s' is not a non-negative number", spec, key, v);
    *out = x;
    return LB_OK;
}

/* at=N1,N2,...: increasing steps, at most 8. */
static int parse_milestones(const char *spec, const char *v, lb_schedule *s, int *have_every)
{
    *have_every = 1;
    s->n_at = 0;
    for (const char *p = v; *p;) {
        char item[32];
        size_t n = strcspn(p, ",");
        if (s->n_at == 8) return lb_error(LB_EINVAL, "schedule '%s': at most 8 milestones", spec);
        snprintf(item, sizeof item, "%.*s", (int)(n < 31 ? n : 31), p);
        long t = 0;
        int rc = parse_long(spec, "at", item, &t);
        if (rc != LB_OK) return rc;
        if (s->n_at && t <= s->at[s->n_at - 1])
            return lb_error(LB_EINVAL, "schedule '%s': milestones must increase (%ld after %ld)", spec, t, s->at[s->n_at - 1]);
        s->at[s->n_at++] = t;
        p += n + (p[n] == ',');
    }
    return s->n_at ? LB_OK : lb_error(LB_EINVAL, "schedule '%s': at= needs at least one step", spec);
}

/* One key of a schedule spec into s. */
static int schedule_key(const char *spec, const char *k, const char *v, lb_schedule *s, int *have_every)
{
    if (strcmp(k, "warmup") == 0) return parse_long(spec, k, v, &s->warmup);
    if (strcmp(k, "every") == 0 && s->kind == LB_SCHED_STEP) {
        *have_every = 1;
        int rc = parse_long(spec, k, v, &s->every);
        if (rc == LB_OK && s->every == 0) rc = lb_error(LB_EINVAL, "schedule '%s': every=0 (must be >= 1)", spec);
        return rc;
    }
    if (strcmp(k, "gamma") == 0 && s->kind == LB_SCHED_STEP) return parse_double(spec, k, v, &s->gamma);
    if (strcmp(k, "at") == 0 && s->kind == LB_SCHED_STEP) return parse_milestones(spec, v, s, have_every);
    if (strcmp(k, "min") == 0 && s->kind == LB_SCHED_COSINE) return parse_double(spec, k, v, &s->min_lr);
    return lb_error(LB_EINVAL, "schedule '%s': unknown key '%s' for this kind", spec, k);
}

int lb_schedule_parse(lb_schedule *out, const char *spec, double lr, long total)
{
    lb_schedule s = lb_schedule_constant(lr);
    s.total = total;
    s.gamma = 0.1;
    if (!spec || !*spec) spec = "constant";
    /* "warmup=100" alone means constant with a warmup; "cosine,warmup=9" is "cosine:warmup=9" */
    size_t head = strcspn(spec, ":,");
    char *text = memchr(spec, '=', head) ? lb_strfmt("constant:%s", spec) : lb_strdup(spec);
    if (!text) return lb_error(LB_ENOMEM, "schedule: out of memory");
    if (!memchr(spec, '=', head) && text[head] == ',') text[head] = ':';
    lb_spec *sp = lb_spec_new(text);
    lb_free(text);
    if (!sp) {
        lb_error_prefix("schedule");
        return lb_last_status();
    }
    const char *kind = lb_spec_name(sp);
    int rc = LB_OK, have_every = 0;
    if (strcmp(kind, "constant") == 0) s.kind = LB_SCHED_CONSTANT;
    else if (strcmp(kind, "step") == 0) s.kind = LB_SCHED_STEP;
    else if (strcmp(kind, "cosine") == 0) s.kind = LB_SCHED_COSINE;
    else rc = lb_error(LB_EINVAL, "schedule '%s': unknown kind '%s' (constant, step or cosine)", spec, kind);
    if (rc == LB_OK && lb_spec_n_args(sp) > 0)
        rc = lb_error(LB_EINVAL, "schedule '%s': '%s' is not key=value", spec, lb_spec_arg(sp, 0));
    for (int i = 0; rc == LB_OK && i < lb_spec_count(sp); i++)
        rc = schedule_key(spec, lb_spec_key(sp, i), lb_spec_value(sp, i), &s, &have_every);
    lb_spec_free(sp);
    if (rc != LB_OK) return rc;
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
    case LB_SCHED_STEP:
        if (s->n_at == 0) {
            n = snprintf(buf, size, "step:every=%ld,gamma=%g", s->every, s->gamma);
            break;
        }
        n = snprintf(buf, size, "step:at=");
        for (int i = 0; i < s->n_at && n >= 0 && (size_t)n < size; i++)
            n += snprintf(buf + n, size - (size_t)n, "%s%ld", i ? "," : "", s->at[i]);
        if (n >= 0 && (size_t)n < size) n += snprintf(buf + n, size - (size_t)n, ",gamma=%g", s->gamma);
        break;
    case LB_SCHED_COSINE: n = snprintf(buf, size, "cosine:min=%g", s->min_lr); break;
    default: n = snprintf(buf, size, "constant"); break;
    }
    if (s->warmup > 0 && n >= 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, ",warmup=%ld", s->warmup);
    return buf;
}
