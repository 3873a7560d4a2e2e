/* Strategies, grids and one study run as a job. */
#include "libra/study.h"

#include "libra/losses.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const lb_default_strategies[] = {
    "ce", "wce:weights=inverse", "wce:weights=effective", "focal:gamma=2", "cb_focal", "undersample",
    "oversample", "ce@balanced", "ldam:drw=0.8", "logit_adjust", "balanced_softmax", "ce+posthoc", NULL};

static char *dup_range(const char *s, size_t n)
{
    char *d = lb_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void free_list(char **items, int n)
{
    for (int i = 0; i < n; i++) lb_free(items[i]);
    lb_free(items);
}

static int push_item(char ***items, int *n, int *cap, char *s)
{
    if (!s) return lb_error(LB_ENOMEM, "strategy: out of memory");
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 8;
        char **p = lb_realloc(*items, (size_t)c * sizeof *p);
        if (!p) {
            lb_free(s);
            return lb_error(LB_ENOMEM, "strategy: out of memory");
        }
        *items = p;
        *cap = c;
    }
    (*items)[(*n)++] = s;
    return LB_OK;
}

static char *trim_dup(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return dup_range(s, n);
}

/* Does the comma-separated part p[0..n) begin a new strategy? */
static int starts_strategy(const char *p, size_t n)
{
    while (n && isspace((unsigned char)*p)) p++, n--;
    if (!n || !isalpha((unsigned char)*p)) return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ':' || p[i] == '@' || p[i] == '+') return 1;
        if (p[i] == '=') return 0;
    }
    return 1;
}

int lb_strategy_split(const char *list, char ***items, int *n)
{
    *items = NULL;
    *n = 0;
    int cap = 0, rc = LB_OK;
    const char *s = list, *cur = list;
    for (;;) {
        const char *e = s + strcspn(s, ",;");
        int end = *e == '\0';
        int sep = end || *e == ';' || starts_strategy(e + 1, strcspn(e + 1, ",;"));
        if (sep) {
            char *item = trim_dup(cur, (size_t)(e - cur));
            if (item && !*item) {
                lb_free(item);
                rc = lb_error(LB_EINVAL, "strategies: empty strategy in '%s'", list);
                break;
            }
            if ((rc = push_item(items, n, &cap, item)) != LB_OK) break;
            cur = e + 1;
        }
        if (end) break;
        s = e + 1;
    }
    if (rc == LB_OK && *n == 0) rc = lb_error(LB_EINVAL, "strategies: the list is empty");
    if (rc != LB_OK) {
        free_list(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- grids ---- */

/* A study trains every grid point: more than this is a typo, not a plan. */
#define LB_GRID_MAX_POINTS 1000

/* The number of points a spec expands to, counted before anything is allocated (a short
 * spec such as a=1|2,b=1|2,... can otherwise ask for millions). Saturates past the limit. */
static long grid_size(const char *spec)
{
    long total = 1, alts = 1;
    for (const char *p = spec;; p++) {
        if (*p == '|') alts++;
        if (*p == ',' || *p == '\0') {
            total *= alts;
            alts = 1;
            if (total > LB_GRID_MAX_POINTS) return LB_GRID_MAX_POINTS + 1;
        }
        if (*p == '\0') return total;
    }
}

int lb_grid_expand(const char *spec, char ***points, int *n)
{
    *points = NULL;
    *n = 0;
    int cap = 0;
    if (grid_size(spec) > LB_GRID_MAX_POINTS)
        return lb_error(LB_EINVAL, "grid '%.80s%s': more than %d points", spec, strlen(spec) > 80 ? "..." : "",
                        LB_GRID_MAX_POINTS);
    const char *bar = strchr(spec, '|');
    if (!bar) return push_item(points, n, &cap, lb_strdup(spec));
    /* The first value holding '|': the text before its alternatives, the alternatives,
     * and the rest of the spec (expanded recursively). */
    const char *vstart = bar;
    while (vstart > spec && vstart[-1] != '=' && vstart[-1] != ',' && vstart[-1] != ':') vstart--;
    if (vstart == spec || vstart[-1] != '=')
        return lb_error(LB_EINVAL, "grid '%s': '|' must separate values of a key (key=a|b|c)", spec);
    const char *vend = vstart + strcspn(vstart, ",");
    char **rest = NULL;
    int n_rest = 0, rc = lb_grid_expand(vend, &rest, &n_rest);
    if (rc != LB_OK) return rc;
    for (const char *a = vstart; a < vend && rc == LB_OK;) {
        const char *b = a;
        while (b < vend && *b != '|') b++;
        if (b == a) {
            rc = lb_error(LB_EINVAL, "grid '%s': an empty alternative", spec);
            break;
        }
        for (int r = 0; r < n_rest && rc == LB_OK; r++) {
            size_t lp = (size_t)(vstart - spec), la = (size_t)(b - a), lr = strlen(rest[r]);
            char *p = lb_malloc(lp + la + lr + 1);
            if (p) {
                memcpy(p, spec, lp);
                memcpy(p + lp, a, la);
                memcpy(p + lp + la, rest[r], lr + 1);
            }
            rc = push_item(points, n, &cap, p);
        }
        a = b < vend ? b + 1 : b;
        if (b < vend && a == vend) rc = lb_error(LB_EINVAL, "grid '%s': an empty alternative", spec);
    }
    free_list(rest, n_rest);
    if (rc != LB_OK) {
        free_list(*points, *n);
        *points = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- strategies ---- */

void lb_strategy_free(lb_strategy *s)
{
    if (!s) return;
    lb_free(s->spec);
    lb_free(s->loss);
    lb_free(s->sampler);
    free_list(s->points, s->n_points);
    memset(s, 0, sizeof *s);
}

int lb_strategy_parse(lb_strategy *out, const char *text)
{
    memset(out, 0, sizeof *out);
    char *t = trim_dup(text, strlen(text));
    if (!t) return lb_error(LB_ENOMEM, "strategy: out of memory");
    int rc = LB_OK;
    char *plus = strrchr(t, '+');
    if (plus) {
        if (strcmp(plus + 1, "posthoc") != 0) {
            rc = lb_error(LB_EINVAL, "strategy '%s': unknown suffix '+%s' (the only one is +posthoc)", text,
                          plus + 1);
            goto done;
        }
        out->posthoc = 1;
        *plus = '\0';
    }
    const char *loss = t, *sampler = "shuffle";
    char *at = strchr(t, '@');
    if (at) {
        *at = '\0';
        sampler = at + 1;
    }
    /* aliases: a sampler name alone means ce with that sampler */
    static const char *const alias[] = {"undersample", "oversample", "balanced", "sqrt", "progressive", NULL};
    for (int i = 0; alias[i] && !at; i++) {
        size_t k = strlen(alias[i]);
        if (strncmp(t, alias[i], k) == 0 && (t[k] == '\0' || t[k] == ':')) {
            sampler = t;
            loss = "ce";
        }
    }
    if (!*loss || !*sampler) {
        rc = lb_error(LB_EINVAL, "strategy '%s': the %s part is empty (LOSS[@SAMPLER][+posthoc])", text,
                      *loss ? "sampler" : "loss");
        goto done;
    }
    out->loss = lb_strdup(loss);
    out->sampler = lb_strdup(sampler);
    size_t n = strlen(loss) + strlen(sampler) + 16;
    out->spec = lb_malloc(n);
    if (!out->loss || !out->sampler || !out->spec) {
        rc = lb_error(LB_ENOMEM, "strategy: out of memory");
        goto done;
    }
    snprintf(out->spec, n, "%s%s%s%s", loss, strcmp(sampler, "shuffle") ? "@" : "",
             strcmp(sampler, "shuffle") ? sampler : "", out->posthoc ? "+posthoc" : "");
    if ((rc = lb_grid_expand(out->loss, &out->points, &out->n_points)) != LB_OK)
        lb_error_prefix("strategy '%s'", text);
done:
    lb_free(t);
    if (rc != LB_OK) lb_strategy_free(out);
    return rc;
}

int lb_strategy_check(const lb_strategy *s, int n_classes, const int *class_counts)
{
    for (int i = 0; i < s->n_points; i++) {
        lb_loss *l = lb_loss_new(s->points[i], n_classes, class_counts);
        if (!l) {
            lb_error_prefix("strategy '%s'", s->spec);
            return LB_EINVAL;
        }
        lb_loss_free(l);
    }
    /* a tiny index list with the right classes is enough to validate the sampler spec */
    int idx[64], y[64], n = 0;
    for (int c = 0; c < n_classes && n < 64; c++)
        if (!class_counts || class_counts[c] > 0) {
            idx[n] = n;
            y[n] = c;
            n++;
        }
    lb_sampler *sm = lb_sampler_new(s->sampler, idx, y, n, n_classes, 1);
    int rc = sm ? LB_OK : lb_last_status();
    lb_sampler_free(sm);
    if (rc != LB_OK) lb_error_prefix("strategy '%s'", s->spec);
    return rc;
}

const char *lb_slug(const char *s, char *buf, size_t size)
{
    size_t k = 0;
    for (; *s && k + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;
        buf[k++] = isalnum(c) || c == '.' || c == '-' ? (char)c : c == '@' ? '@' : '_';
    }
    buf[k] = '\0';
    return buf;
}

/* ---- one run ---- */

/* Balanced accuracy of the row-argmax predictions of probs (only the confusion-matrix
 * metrics: cheap enough to call for every tau of a search). */
static int val_metrics(const float *probs, const int *y, size_t n, int C, lb_metrics *m)
{
    int64_t *conf = lb_calloc((size_t)C * C, sizeof *conf);
    int *pred = lb_malloc(n * sizeof *pred);
    int rc = conf && pred ? LB_OK : lb_error(LB_ENOMEM, "study: out of memory");
    if (rc == LB_OK) {
        lb_argmax_rows(probs, n, C, pred);
        rc = lb_confusion_add(conf, C, y, pred, n);
    }
    if (rc == LB_OK) rc = lb_metrics_from_confusion(m, conf, C, NULL, NULL);
    lb_free(conf);
    lb_free(pred);
    return rc;
}

int lb_study_run_one(const lb_train_opts *o, const lb_data *data, const lb_train_hooks *hooks,
                     lb_run_record *rec)
{
    lb_run_record_init(rec);
    lb_train_result res;
    int rc = lb_train_run(o, NULL, data, hooks, &res);
    char spec[512];
    snprintf(spec, sizeof spec, "%s@%s", o->loss ? o->loss : "ce", o->sampler ? o->sampler : "shuffle");
    if (rc == LB_OK) rc = lb_run_record_set_strategy(rec, spec);
    if (rc == LB_OK) {
        rec->seed = o->seed;
        rec->steps = res.steps;
        rec->wall_seconds = (float)res.wall_seconds;
        rec->images_per_sec = (float)res.images_per_second;
        lb_metrics_free(&rec->metrics);
        rec->metrics = res.test;   /* moved */
        memset(&res.test, 0, sizeof res.test);
        rc = lb_curve_copy(&rec->loss, &res.loss);
        if (rc == LB_OK) rc = lb_curve_copy(&rec->val_bacc, &res.monitor_bacc);
    }
    /* post-hoc corrections of the same model's test logits: prior correction, and logit
     * adjustment with tau chosen on the validation split (tau = 1 without one) */
    int C = res.n_classes, n = res.n_test;
    float *probs = NULL;
    const int *counts = data->split.train_counts;
    if (rc == LB_OK && n > 0) {
        size_t rows = (size_t)(n > res.n_val ? n : res.n_val);
        probs = lb_malloc(rows * C * sizeof(float));
        if (!probs) rc = lb_error(LB_ENOMEM, "study: out of memory for post-hoc scores");
        double tau = 1.0;
        if (rc == LB_OK && res.n_val > 0) {
            static const double taus[] = {0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0};
            double best = -1.0;
            for (size_t t = 0; rc == LB_OK && t < sizeof taus / sizeof taus[0]; t++) {
                lb_metrics m;
                memset(&m, 0, sizeof m);
                rc = lb_posthoc_logit_adjust(res.val_logits, (size_t)res.n_val, C, counts, taus[t], probs);
                if (rc == LB_OK)
                    rc = val_metrics(probs, res.val_labels, (size_t)res.n_val, C, &m);
                if (rc == LB_OK && m.balanced_accuracy > best) {
                    best = m.balanced_accuracy;
                    tau = taus[t];
                }
                lb_metrics_free(&m);
            }
        }
        for (int v = 0; rc == LB_OK && v < 2; v++) {
            rc = v == 0 ? lb_posthoc_prior_correction(res.test_logits, (size_t)n, C, counts, probs)
                        : lb_posthoc_logit_adjust(res.test_logits, (size_t)n, C, counts, tau, probs);
            lb_metrics m;
            memset(&m, 0, sizeof m);
            if (rc == LB_OK)
                rc = lb_metrics_from_scores(&m, probs, res.test_labels, (size_t)n, C, counts, NULL);
            if (rc == LB_OK)
                rc = lb_run_record_add_posthoc(rec, v == 0 ? "prior_correction" : "logit_adjust",
                                               v == 0 ? NAN : (float)tau, &m);
            lb_metrics_free(&m);
        }
    }
    lb_free(probs);
    lb_train_result_free(&res);
    if (rc != LB_OK) {
        lb_run_record_free(rec);
        lb_run_record_init(rec);
    }
    return rc;
}

float lb_run_record_val_bacc(const lb_run_record *rec)
{
    return rec->val_bacc.n ? rec->val_bacc.value[rec->val_bacc.n - 1] : NAN;
}
