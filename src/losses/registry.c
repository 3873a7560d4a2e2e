/* The loss registry, lb_loss_new(spec -> loss with its class weights and DRW schedule),
 * evaluation and the tape node with its closed-form backward. */
#include "losses/internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CUSTOM 64
#define MAX_CLASSES 100000

typedef struct {
    const char *name;
    const lb_loss_kind *kind;
} kind_entry;

/* Built-ins are constant (no lazy set-up, so creating losses from several threads is safe);
 * user losses are appended by lb_loss_register at start-up. */
static const kind_entry g_builtin[] = {
    {"ce", &lb__kind_ce},
    {"bce", &lb__kind_bce},
    {"wce", &lb__kind_wce},
    {"focal", &lb__kind_focal},
    {"sigmoid_focal", &lb__kind_sigmoid_focal},
    {"cb_focal", &lb__kind_cb_focal},
    {"ldam", &lb__kind_ldam},
    {"logit_adjust", &lb__kind_logit_adjust},
    {"balanced_softmax", &lb__kind_balanced_softmax},
};
#define N_BUILTIN ((int)(sizeof g_builtin / sizeof g_builtin[0]))

static struct {
    char name[32];
    lb_loss_kind kind;
} g_custom[MAX_CUSTOM];
static int g_ncustom;


static int n_kinds(void) { return N_BUILTIN + g_ncustom; }

static kind_entry kind_at(int i)
{
    if (i < N_BUILTIN) return g_builtin[i];
    kind_entry e = {g_custom[i - N_BUILTIN].name, &g_custom[i - N_BUILTIN].kind};
    return e;
}

static int find_entry(const char *name, kind_entry *out)
{
    for (int i = 0; i < n_kinds(); i++) {
        kind_entry e = kind_at(i);
        if (strcmp(e.name, name) == 0) {
            if (out) *out = e;
            return 1;
        }
    }
    return 0;
}

const lb_loss_kind *lb_loss_find(const char *name)
{
    kind_entry e;
    return name && find_entry(name, &e) ? e.kind : NULL;
}

int lb_loss_list(const char **names, int max)
{
    for (int i = 0; i < n_kinds() && i < max; i++) names[i] = kind_at(i).name;
    return n_kinds();
}

/* Keys that libra handles for every weighted loss (and reduction for all). */
static int is_framework_key(const lb_loss_kind *k, const char *key)
{
    if (strcmp(key, "reduction") == 0) return 1;
    if (!k->weight_key) return 0;
    return strcmp(key, k->weight_key) == 0 || strcmp(key, "beta") == 0 ||
           strcmp(key, "drw") == 0 || strcmp(key, "drw_step") == 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 32) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

int lb_loss_register(const char *name, const lb_loss_kind *kind)
{
    if (!name || !valid_name(name))
        return lb_error(LB_EINVAL, "lb_loss_register: bad name '%s' (1-31 chars of a-z, 0-9, _)",
                        name ? name : "(null)");
    if (!kind || !kind->sample || !kind->params)
        return lb_error(LB_EINVAL, "lb_loss_register('%s'): the kind needs sample and params", name);
    if (find_entry(name, NULL)) return lb_error(LB_EINVAL, "lb_loss_register: loss '%s' already exists", name);
    if (g_ncustom == MAX_CUSTOM)
        return lb_error(LB_ENOMEM, "lb_loss_register('%s'): at most %d user losses", name, MAX_CUSTOM);
    if (kind->weight_key && (!valid_name(kind->weight_key) || !kind->weight_default))
        return lb_error(LB_EINVAL, "lb_loss_register('%s'): bad weight_key or no weight_default", name);
    for (const lb_loss_param *p = kind->params; p->key; p++) {
        if (!valid_name(p->key) || !p->default_value || !*p->default_value)
            return lb_error(LB_EINVAL, "lb_loss_register('%s'): parameter '%s' needs a name and a default",
                            name, p->key);
        if (is_framework_key(kind, p->key))
            return lb_error(LB_EINVAL, "lb_loss_register('%s'): key '%s' is one libra handles itself",
                            name, p->key);
    }
    snprintf(g_custom[g_ncustom].name, sizeof g_custom[0].name, "%s", name);
    g_custom[g_ncustom].kind = *kind;
    g_ncustom++;
    return LB_OK;
}

/* ---- canonical spec text ---- */

/* 1 if every comma-separated part of value is a finite number. */
static int numeric_list(const char *value)
{
    for (const char *p = value; *p;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        char tmp[64];
        size_t n = (size_t)(e - p);
        double v;
        if (n == 0 || n >= sizeof tmp) return 0;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        if (lb_parse_double(tmp, &v) != 0) return 0;
        p = *e ? e + 1 : e;
    }
    return 1;
}

/* Appends ",key=value" with each number of a number list in shortest form; other values
 * (inverse, none, ...) as given. */
static void put_kv(lb_buf *b, const char *key, const char *value)
{
    lb_buf_printf(b, "%s%s=", b->p && b->p[b->n - 1] != ':' ? "," : "", key);
    if (!numeric_list(value)) {
        lb_buf_puts(b, value);
        return;
    }
    for (const char *p = value; *p;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        char tmp[64], num[40];
        memcpy(tmp, p, (size_t)(e - p));
        tmp[e - p] = '\0';
        lb_buf_puts(b, lb_format_number(strtod(tmp, NULL), num, sizeof num));
        if (*e) lb_buf_puts(b, ",");
        p = *e ? e + 1 : e;
    }
}

static const char *value_or(const lb_spec *s, const char *key, const char *def)
{
    const char *v = lb_spec_get(s, key);
    return v ? v : def;
}

/* ---- class weights ---- */

int lb__loss_check_counts(const lb_spec *spec, int n_classes, const int *counts)
{
    if (!counts)
        return lb_error(LB_EINVAL, "loss '%s' needs the training set's class counts", lb_spec_name(spec));
    for (int c = 0; c < n_classes; c++)
        if (counts[c] <= 0)
            return lb_error(LB_EINVAL, "loss '%s': class %d has count %d; every class needs at least one "
                            "training sample", lb_spec_name(spec), c, counts[c]);
    return LB_OK;
}

/* Weights from the value of the weight key; *out NULL for "none". */
static int make_weights(lb_loss *L, const lb_spec *fs, const char *wkey, const int *counts)
{
    const char *v = lb_spec_get(fs, wkey);
    int C = L->C;
    double beta;
    int rc = lb_spec_number(fs, "beta", 0.0, 1.0, &beta);
    if (rc != LB_OK) return rc;
    if (beta >= 1.0) return lb_error(LB_EINVAL, "%s: beta=1 is out of range [0, 1)", L->name);
    if (strcmp(v, "none") == 0) return LB_OK;
    L->weights = lb_malloc((size_t)C * sizeof(double));
    if (!L->weights) return lb_error(LB_ENOMEM, "loss: out of memory");
    int named = strcmp(v, "inverse") == 0 || strcmp(v, "sqrt") == 0 || strcmp(v, "effective") == 0;
    int normalize = named;
    if (named) {
        if ((rc = lb__loss_check_counts(fs, C, counts)) != LB_OK) {
            lb_error_prefix("%s=%s", wkey, v);
            return rc;
        }
        for (int c = 0; c < C; c++) {
            double n = counts[c];
            if (v[0] == 'i') L->weights[c] = 1.0 / n;
            else if (v[0] == 's') L->weights[c] = 1.0 / sqrt(n);
            else L->weights[c] = (1.0 - beta) / (1.0 - pow(beta, n)); /* Cui et al.'s effective number */
        }
    } else {
        int n = 1;
        for (const char *p = v; *p; p++) n += *p == ',';
        if (n != 1 && n != C)
            return lb_error(LB_EINVAL, "%s: %s has %d values; give one per class (%d) or one for all",
                            L->name, wkey, n, C);
        if (lb_spec_numbers(fs, wkey, L->weights, C, &n) != LB_OK)
            return lb_error(LB_EINVAL, "%s: %s=%s must be none, inverse, sqrt, effective, one number or "
                            "%d numbers", L->name, wkey, v, C);
        for (int c = 0; c < n; c++)
            if (!(L->weights[c] > 0))
                return lb_error(LB_EINVAL, "%s: %s value %d (%g) must be > 0", L->name, wkey, c + 1,
                                L->weights[c]);
        if (n == 1)
            for (int c = 1; c < C; c++) L->weights[c] = L->weights[0];
        else
            normalize = (L->kind->flags & LB_LOSS_NORMALIZE_LIST) != 0;
    }
    if (normalize) {
        double s = 0;
        for (int c = 0; c < C; c++) s += L->weights[c];
        for (int c = 0; c < C; c++) L->weights[c] *= C / s;
    }
    /* losses and gradients are stored as float: a weight beyond 1e30 would make them
     * infinite without any sample being wrong (a fuzzer find) */
    for (int c = 0; c < C; c++)
        if (!(L->weights[c] > 0 && L->weights[c] <= 1e30))
            return lb_error(LB_EINVAL, "%s: %s gives class %d the weight %g (must be in (0, 1e30])", L->name, wkey,
                            c, L->weights[c]);
    return LB_OK;
}

static int parse_drw(lb_loss *L, const lb_spec *fs)
{
    const char *f = lb_spec_get(fs, "drw"), *st = lb_spec_get(fs, "drw_step");
    L->drw_frac = -1;
    L->drw_step = -1;
    if (strcmp(f, "none") != 0) {
        int rc = lb_spec_number(fs, "drw", 0.0, 1.0, &L->drw_frac);
        if (rc != LB_OK) return rc;
    }
    if (strcmp(st, "none") != 0) {
        double x;
        int rc = lb_spec_number(fs, "drw_step", 0.0, 1e15, &x);
        if (rc != LB_OK) return rc;
        if (x != floor(x)) return lb_error(LB_EINVAL, "%s: drw_step=%s is not a whole number", L->name, st);
        L->drw_step = (long)x;
    }
    if (L->drw_frac >= 0 && L->drw_step >= 0)
        return lb_error(LB_EINVAL, "%s: give drw (fraction of the budget) or drw_step, not both", L->name);
    return LB_OK;
}

/* The per-class list keys: every weight key (focal's alpha, the others' weights, a user
 * loss's) and bce's pos_weight. Their values may name classes ("Diseased:0.75,..."). */
static int class_key(const lb_loss_kind *k, const char *key)
{
    if (k->weight_key && strcmp(key, k->weight_key) == 0) return 1;
    return k == &lb__kind_bce && strcmp(key, "pos_weight") == 0;
}

/* put_kv, with a per-class list by class name first resolved (or normalised) through cn. */
static int put_value(lb_buf *b, const lb_loss_kind *k, const char *name, const lb__class_names *cn,
                     const char *key, const char *value)
{
    int named = 0, rc = LB_OK;
    lb_buf t = {0};
    if (class_key(k, key)) rc = lb__loss_named_list(name, key, value, cn, &t, &named);
    if (rc == LB_OK) put_kv(b, key, named ? t.p : value);
    lb_buf_free(&t);
    return rc;
}

/* Builds the canonical spec (defaults filled in, DRW's default weights resolved, lists by
 * class name in class-index order when cn has the names). */
static int canonical_spec(const lb_loss_kind *k, const char *name, const lb_spec *s, const lb__class_names *cn,
                          lb_buf *b)
{
    int rc = LB_OK;
    lb_buf_printf(b, "%s:", name);
    for (const lb_loss_param *p = k->params; p->key && rc == LB_OK; p++)
        rc = put_value(b, k, name, cn, p->key, value_or(s, p->key, p->default_value));
    if (rc != LB_OK) return rc;
    if (k->weight_key) {
        const char *w = value_or(s, k->weight_key, k->weight_default);
        const char *drw = value_or(s, "drw", "none"), *drw_step = value_or(s, "drw_step", "none");
        char beta[40];
        lb_format_number(k->beta_default, beta, sizeof beta);
        /* DRW switches weights on; with none given, Cao et al.'s effective-number weights */
        if (strcmp(w, "none") == 0 && (strcmp(drw, "none") != 0 || strcmp(drw_step, "none") != 0)) w = "effective";
        if ((rc = put_value(b, k, name, cn, k->weight_key, w)) != LB_OK) return rc;
        put_kv(b, "beta", value_or(s, "beta", beta));
        put_kv(b, "drw", drw);
        put_kv(b, "drw_step", drw_step);
    }
    put_kv(b, "reduction", value_or(s, "reduction", "mean"));
    if (b->oom) return lb_buf_status(b, "loss");
    if (b->p[b->n - 1] == ':') b->p[--b->n] = '\0';
    return LB_OK;
}

static int check_keys(const lb_loss_kind *k, const char *name, const lb_spec *s)
{
    if (lb_spec_n_args(s) > 0)
        return lb_error(LB_EINVAL, "loss '%s': '%s' is not key=value (e.g. %s:%s=...)", name, lb_spec_arg(s, 0), name,
                        k->params[0].key ? k->params[0].key : k->weight_key ? k->weight_key : "reduction");
    for (int i = 0; i < lb_spec_count(s); i++) {
        const char *key = lb_spec_key(s, i);
        int ok = is_framework_key(k, key);
        for (const lb_loss_param *p = k->params; p->key && !ok; p++) ok = strcmp(p->key, key) == 0;
        if (ok) continue;
        char keys[256] = "";
        size_t len = 0;
        for (const lb_loss_param *p = k->params; p->key; p++)
            len += (size_t)snprintf(keys + len, sizeof keys - len, "%s, ", p->key);
        if (k->weight_key && len < sizeof keys)
            len += (size_t)snprintf(keys + len, sizeof keys - len, "%s, beta, drw, drw_step, ", k->weight_key);
        if (len < sizeof keys) snprintf(keys + len, sizeof keys - len, "reduction");
        return lb_error(LB_EINVAL, "loss '%s': unknown key '%s' (keys: %s)", name, key, keys);
    }
    return LB_OK;
}

static void known_list(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_kinds() && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", kind_at(i).name);
}

int lb_loss_canonical(const char *spec, lb_buf *out) { return lb_loss_canonical_named(spec, 0, NULL, out); }

int lb_loss_canonical_named(const char *spec, int n_classes, const char *const *class_names, lb_buf *out)
{
    lb__class_names cn = {n_classes, class_names, 0};
    lb_spec *s = lb_spec_new(spec);
    if (!s) {
        lb_error_prefix("loss");
        return lb_last_status();
    }
    kind_entry e = {NULL, NULL};
    int rc = LB_OK;
    if (!find_entry(lb_spec_name(s), &e)) {
        char known[512];
        known_list(known, sizeof known);
        rc = lb_error(LB_EINVAL, "unknown loss '%s' (known: %s)", lb_spec_name(s), known);
    }
    if (rc == LB_OK && class_names && (n_classes < 2 || n_classes > MAX_CLASSES))
        rc = lb_error(LB_EINVAL, "loss '%s': %d classes (need 2 to %d)", e.name, n_classes, MAX_CLASSES);
    if (rc == LB_OK) rc = check_keys(e.kind, e.name, s);
    size_t n0 = out->n;
    if (rc == LB_OK) rc = canonical_spec(e.kind, e.name, s, &cn, out);
    if (rc != LB_OK && out->p && !out->oom) out->p[out->n = n0] = '\0'; /* nothing half-written */
    lb_spec_free(s);
    return rc;
}

lb_loss *lb_loss_new(const char *spec, int n_classes, const int *class_counts)
{
    return lb_loss_new_named(spec, n_classes, class_counts, NULL);
}

lb_loss *lb_loss_new_named(const char *spec, int n_classes, const int *class_counts,
                           const char *const *class_names)
{
    lb__class_names cn = {n_classes, class_names, 1};
    lb_spec *s = lb_spec_new(spec);
    if (!s) {
        lb_error_prefix("loss");
        return NULL;
    }
    kind_entry ke;
    const kind_entry *e = find_entry(lb_spec_name(s), &ke) ? &ke : NULL;
    lb_loss *L = NULL;
    lb_spec *fs = NULL;
    lb_buf b = {0};
    int rc = LB_OK;
    if (!e) {
        char known[512];
        known_list(known, sizeof known);
        rc = lb_error(LB_EINVAL, "unknown loss '%s' (known: %s)", lb_spec_name(s), known);
    } else if (n_classes < 2 || n_classes > MAX_CLASSES) {
        rc = lb_error(LB_EINVAL, "loss '%s': %d classes (need 2 to %d)", e->name, n_classes, MAX_CLASSES);
    } else {
        rc = check_keys(e->kind, e->name, s);
    }
    if (rc == LB_OK) rc = canonical_spec(e->kind, e->name, s, &cn, &b);
    if (rc == LB_OK && !(fs = lb_spec_new(b.p))) rc = lb_last_status();
    if (rc == LB_OK) {
        L = lb_calloc(1, sizeof *L);
        if (!L) rc = lb_error(LB_ENOMEM, "loss: out of memory");
    }
    if (rc == LB_OK) {
        snprintf(L->name, sizeof L->name, "%s", e->name);
        L->kind = e->kind;
        L->op = e->name;
        L->C = n_classes;
        L->spec = b.p;
        memset(&b, 0, sizeof b);
        L->drw_frac = L->drw_step = -1;
    }
    if (rc == LB_OK) {
        const char *red = lb_spec_get(fs, "reduction");
        if (strcmp(red, "mean") == 0) L->reduction = LB_REDUCE_MEAN;
        else if (strcmp(red, "sum") == 0) L->reduction = LB_REDUCE_SUM;
        else if (strcmp(red, "none") == 0) L->reduction = LB_REDUCE_NONE;
        else rc = lb_error(LB_EINVAL, "%s: reduction=%s must be mean, sum or none", L->name, red);
    }
    if (rc == LB_OK && (e->kind->flags & LB_LOSS_NEEDS_COUNTS))
        rc = lb__loss_check_counts(fs, n_classes, class_counts);
    if (rc == LB_OK && e->kind->weight_key) {
        rc = parse_drw(L, fs);
        if (rc == LB_OK) rc = make_weights(L, fs, e->kind->weight_key, class_counts);
    }
    if (rc == LB_OK && e->kind->init) rc = e->kind->init(fs, n_classes, class_counts, &L->state);
    lb_spec_free(s);
    lb_spec_free(fs);
    lb_buf_free(&b);
    if (rc != LB_OK) {
        lb_loss_free(L);
        return NULL;
    }
    return L;
}

void lb_loss_free(lb_loss *L)
{
    if (!L) return;
    if (L->state && L->kind->destroy) L->kind->destroy(L->state);
    lb_free(L->weights);
    lb_free(L->spec);
    lb_free(L);
}

const char *lb_loss_spec(const lb_loss *L) { return L->spec; }
const char *lb_loss_name(const lb_loss *L) { return L->name; }
int lb_loss_classes(const lb_loss *L) { return L->C; }
lb_reduction lb_loss_reduction(const lb_loss *L) { return L->reduction; }
int lb_loss_weighted_mean(const lb_loss *L) { return (L->kind->flags & LB_LOSS_WEIGHTED_MEAN) != 0; }

/* Whether the class weights are in force at this step (*on), or an error. */
int lb__loss_weights_on(const lb_loss *L, long step, long total, int *on)
{
    *on = L->weights != NULL;
    if (!*on) return LB_OK;
    if (L->drw_step >= 0) {
        *on = step >= L->drw_step;
    } else if (L->drw_frac >= 0) {
        if (total <= 0)
            return lb_error(LB_EINVAL, "%s: drw=%g needs the total number of steps (got %ld)", L->name,
                            L->drw_frac, total);
        *on = (double)step >= L->drw_frac * (double)total;
    }
    return LB_OK;
}

double lb_loss_class_weight(const lb_loss *L, int c, long step, long total_steps)
{
    int on;
    if (c < 0 || c >= L->C || lb__loss_weights_on(L, step, total_steps, &on) != LB_OK || !on) return 1.0;
    return L->weights[c];
}

/* Per-sample values (weighted) and gradients (weighted, unreduced), and the mean's
 * numerator and denominator in double. */
/* Per-sample multipliers of a mixed batch's terms: m_i (mult), or 1 - m_i (complement);
 * NULL mult: every sample counts once. m = 1 leaves every value bitwise as it was. */
typedef struct {
    const float *mult;
    int complement;
} sample_mult;

static double mult_of(const sample_mult *m, int i)
{
    if (!m || !m->mult) return 1.0;
    return m->complement ? 1.0 - (double)m->mult[i] : (double)m->mult[i];
}

static int eval_core_mult(lb_loss *L, const float *z, const int *y, int n, float *per, float *dz, double *sum_out,
                          double *den_out, long step, long total, const sample_mult *mult);

static int eval_core(lb_loss *L, const float *z, const int *y, int n, float *per, float *dz,
                     double *sum_out, double *den_out, long step, long total)
{
    return eval_core_mult(L, z, y, n, per, dz, sum_out, den_out, step, total, NULL);
}

/* eval_core_mult's loop over the samples; scratch: C doubles, one sample's gradient (the
 * caller's own, so that shards of one batch can evaluate a loss on several threads at once). */
static int eval_samples(lb_loss *L, const float *z, const int *y, int n, float *per, float *dz, double *sum_out,
                        double *den_out, int on, const sample_mult *mult, double *scratch)
{
    int C = L->C, wmean = (L->kind->flags & LB_LOSS_WEIGHTED_MEAN) != 0;
    double sum = 0, den = 0;
    for (int i = 0; i < n; i++) {
        int t = y[i];
        if (t < 0 || t >= C)
            return lb_error(LB_EINVAL, "%s: target %d of sample %d is out of range [0, %d)", L->name, t, i, C);
        const float *zi = z + (size_t)i * C;
        double l = L->kind->sample(L->state, C, zi, t, scratch);
        double w = on ? L->weights[t] : 1.0, m = mult_of(mult, i);
        if (!isfinite(l))
            return lb_error(LB_ENUMERIC, "%s: loss of sample %d is %g (are its logits finite?)", L->name, i, l);
        sum += m * (w * l);
        den += m * (wmean ? w : 1.0);
        if (!isfinite((float)(w * l)))
            return lb_error(LB_ENUMERIC, "%s: loss of sample %d (%g) overflows a float", L->name, i, w * l);
        if (per) per[i] = (float)(m * (w * l));
        if (dz) {
            for (int c = 0; c < C; c++) {
                double g = m * (w * scratch[c]);
                if (!isfinite((float)g))
                    return lb_error(LB_ENUMERIC, "%s: gradient of sample %d, class %d is %g", L->name, i, c, g);
                dz[(size_t)i * C + c] = (float)g;
            }
        }
    }
    if (sum_out) *sum_out = sum;
    if (den_out) *den_out = den;
    return LB_OK;
}

static int eval_core_mult(lb_loss *L, const float *z, const int *y, int n, float *per, float *dz, double *sum_out,
                          double *den_out, long step, long total, const sample_mult *mult)
{
    if (!z || !y) return lb_error(LB_EINVAL, "%s: NULL logits or targets", L->name);
    if (n <= 0) return lb_error(LB_EINVAL, "%s: %d samples", L->name, n);
    int on, rc = lb__loss_weights_on(L, step, total, &on);
    if (rc != LB_OK) return rc;
    enum { ON_STACK = 256 }; /* classes whose gradient needs no allocation (2 KB) */
    double stack[ON_STACK], *scratch = L->C <= ON_STACK ? stack : lb_malloc((size_t)L->C * sizeof(double));
    if (!scratch) return lb_error(LB_ENOMEM, "%s: out of memory for one sample's gradient (%d classes)", L->name, L->C);
    rc = eval_samples(L, z, y, n, per, dz, sum_out, den_out, on, mult, scratch);
    if (scratch != stack) lb_free(scratch);
    return rc;
}

/* The mean's denominator sum_i m_i d_i of n samples, with the very expression and order of
 * eval_core_mult's (so a batch's own denominator comes out bitwise as the loss divides by). */
static int den_core(lb_loss *L, const int *y, int n, long step, long total, const sample_mult *mult, double *den_out)
{
    if (!y) return lb_error(LB_EINVAL, "%s: NULL targets", L->name);
    int on, wmean = (L->kind->flags & LB_LOSS_WEIGHTED_MEAN) != 0;
    int rc = lb__loss_weights_on(L, step, total, &on);
    if (rc != LB_OK) return rc;
    double den = 0;
    for (int i = 0; i < n; i++) {
        int t = y[i];
        if (t < 0 || t >= L->C)
            return lb_error(LB_EINVAL, "%s: target %d of sample %d is out of range [0, %d)", L->name, t, i, L->C);
        double w = on ? L->weights[t] : 1.0, m = mult_of(mult, i);
        den += m * (wmean ? w : 1.0);
    }
    *den_out = den;
    return LB_OK;
}

int lb_loss_denominators(lb_loss *L, const int *ya, const int *yb, const float *lam_y, int n, long step,
                         long total_steps, double den[2])
{
    if (!L || !den) return lb_error(LB_EINVAL, "loss denominators: NULL loss or output");
    if (n <= 0) return lb_error(LB_EINVAL, "%s: %d samples", L->name, n);
    sample_mult ma = {lam_y, 0}, mb = {lam_y, 1};
    den[1] = 0.0;
    int rc = den_core(L, ya, n, step, total_steps, &ma, &den[0]);
    if (rc == LB_OK && yb) rc = den_core(L, yb, n, step, total_steps, &mb, &den[1]);
    return rc;
}

int lb_loss_eval_ex(lb_loss *L, const float *logits, const int *targets, int n, float *per,
                    float *dlogits, double *sum_out, double *denom_out, long step, long total_steps)
{
    return eval_core(L, logits, targets, n, per, dlogits, sum_out, denom_out, step, total_steps);
}

int lb_loss_eval(lb_loss *L, const float *logits, const int *targets, int n, float *per,
                 float *dlogits, double *mean_out, long step, long total_steps)
{
    double sum, den;
    int rc = eval_core(L, logits, targets, n, per, dlogits, &sum, &den, step, total_steps);
    if (rc == LB_OK && mean_out) *mean_out = sum / den;
    return rc;
}

/* ---- the tape node ---- */

/* aux holds d(output)/d(logits) already scaled by the reduction: [N, C]. For mean and sum
 * every logit's gradient is grad[0] * d; for none, sample i's row is scaled by grad[i]. */
/* A loss node's arguments. */
typedef struct {
    lb_reduction reduction;
} loss_args;

static int loss_backward(lb_node *self)
{
    lb_node *x = self->in[0];
    if (!x->requires_grad) return LB_OK;
    const float *d = self->aux;
    int N = x->shape[0], C = x->shape[1];
    if (LB_NODE_ARGS(self, loss_args)->reduction != LB_REDUCE_NONE) {
        float g = self->grad[0];
        for (size_t k = 0; k < (size_t)N * C; k++) x->grad[k] += g * d[k];
    } else {
        for (int i = 0; i < N; i++) {
            float g = self->grad[i];
            for (int c = 0; c < C; c++) x->grad[(size_t)i * C + c] += g * d[(size_t)i * C + c];
        }
    }
    return LB_OK;
}

/* A mean's denominator given from outside (a shard's loss over the whole batch's) must be a
 * positive number; 0 means the batch's own. */
static int check_given_den(const lb_loss *L, double den)
{
    if (den > 0 && den < HUGE_VAL) return LB_OK;
    return lb_error(LB_EINVAL, "%s: the given denominator of the mean is %g (must be > 0)", L->name, den);
}

static lb_node *forward_core(lb_loss *L, lb_graph *g, lb_node *logits, const int *targets, double given,
                             long step, long total_steps);

lb_node *lb_loss_forward(lb_loss *L, lb_graph *g, lb_node *logits, const int *targets, long step,
                         long total_steps)
{
    return forward_core(L, g, logits, targets, 0.0, step, total_steps);
}

lb_node *lb_loss_forward_denom(lb_loss *L, lb_graph *g, lb_node *logits, const int *targets, double den,
                               long step, long total_steps)
{
    if (L && check_given_den(L, den) != LB_OK) return NULL;
    return forward_core(L, g, logits, targets, den, step, total_steps);
}

static lb_node *forward_core(lb_loss *L, lb_graph *g, lb_node *logits, const int *targets, double given,
                             long step, long total_steps)
{
    if (!logits) return NULL; /* an earlier op failed; keep its message */
    if (!L || !g) {
        lb_error(LB_EINVAL, "loss forward: NULL loss or graph");
        return NULL;
    }
    char buf[64];
    if (logits->ndim != 2 || logits->shape[1] != L->C) {
        lb_error(LB_ESHAPE, "%s: logits are %s, expected [N, %d]", L->name,
                 lb_shape_str(logits, buf, sizeof buf), L->C);
        return NULL;
    }
    int N = logits->shape[0];
    int shape[1] = {L->reduction == LB_REDUCE_NONE ? N : 1};
    lb_node *out = lb_node_new(g, L->op, 1, shape, 1, &logits, loss_backward);
    if (!out) return NULL;
    float *d = NULL;
    if (out->requires_grad) {
        d = lb_graph_floats(g, (size_t)N * L->C);
        if (!d) return NULL;
    }
    double sum, den;
    float *per = L->reduction == LB_REDUCE_NONE ? out->val : NULL;
    if (eval_core(L, logits->val, targets, N, per, d, &sum, &den, step, total_steps) != LB_OK) return NULL;
    if (given > 0) den = given;
    double scale = L->reduction == LB_REDUCE_MEAN ? 1.0 / den : 1.0;
    if (L->reduction != LB_REDUCE_NONE) out->val[0] = (float)(sum * scale);
    if (d && scale != 1.0)
        for (size_t k = 0; k < (size_t)N * L->C; k++) d[k] = (float)(d[k] * scale);
    out->aux = d;
    LB_NODE_ARGS(out, loss_args)->reduction = L->reduction;
    return out;
}

/* ---- the loss of a mixed batch ---- */

/* The node for a mixed batch, its per-sample values (reduction none) and gradient buffer. */
static lb_node *mixed_node(lb_loss *L, lb_graph *g, lb_node *logits, float **d, float **per_b, float **d_b)
{
    char buf[64];
    if (logits->ndim != 2 || logits->shape[1] != L->C) {
        lb_error(LB_ESHAPE, "%s: logits are %s, expected [N, %d]", L->name, lb_shape_str(logits, buf, sizeof buf), L->C);
        return NULL;
    }
    int N = logits->shape[0];
    int shape[1] = {L->reduction == LB_REDUCE_NONE ? N : 1};
    lb_node *out = lb_node_new(g, L->op, 1, shape, 1, &logits, loss_backward);
    if (!out) return NULL;
    *d = *d_b = NULL;
    if (out->requires_grad && (!(*d = lb_graph_floats(g, (size_t)N * L->C)) || !(*d_b = lb_graph_floats(g, (size_t)N * L->C))))
        return NULL;
    if (L->reduction == LB_REDUCE_NONE && !(*per_b = lb_graph_floats(g, (size_t)N))) return NULL;
    LB_NODE_ARGS(out, loss_args)->reduction = L->reduction;
    out->aux = *d;
    return out;
}

static lb_node *mixed_core(lb_loss *L, lb_graph *g, lb_node *logits, const int *ya, const int *yb, double lambda,
                           const float *lam_y, const double *given, long step, long total_steps);

lb_node *lb_loss_forward_mixed(lb_loss *L, lb_graph *g, lb_node *logits, const int *ya, const int *yb, double lambda,
                               const float *lam_y, long step, long total_steps)
{
    return mixed_core(L, g, logits, ya, yb, lambda, lam_y, NULL, step, total_steps);
}

lb_node *lb_loss_forward_mixed_denom(lb_loss *L, lb_graph *g, lb_node *logits, const int *ya, const int *yb,
                                     double lambda, const float *lam_y, const double den[2], long step,
                                     long total_steps)
{
    if (L && !den) {
        lb_error(LB_EINVAL, "%s: mixed loss: NULL denominators", L->name);
        return NULL;
    }
    /* mixup divides each term by its own; Remix the mixed terms by their sum */
    if (L && (lam_y ? check_given_den(L, den[0] + den[1]) : check_given_den(L, den[0]) || check_given_den(L, den[1])))
        return NULL;
    return mixed_core(L, g, logits, ya, yb, lambda, lam_y, den, step, total_steps);
}

static lb_node *mixed_core(lb_loss *L, lb_graph *g, lb_node *logits, const int *ya, const int *yb, double lambda,
                           const float *lam_y, const double *given, long step, long total_steps)
{
    if (!logits) return NULL;
    if (!L || !g || !ya || !yb) {
        lb_error(LB_EINVAL, "mixed loss: NULL loss, graph or targets");
        return NULL;
    }
    float *d, *per_b = NULL, *d_b;
    lb_node *out = mixed_node(L, g, logits, &d, &per_b, &d_b);
    if (!out) return NULL;
    size_t N = (size_t)logits->shape[0], NC = N * (size_t)L->C;
    int none = L->reduction == LB_REDUCE_NONE, mean = L->reduction == LB_REDUCE_MEAN;
    float *per_a = none ? out->val : NULL;
    double sa, da, sb, db;
    sample_mult ma = {lam_y, 0}, mb = {lam_y, 1};
    if (eval_core_mult(L, logits->val, ya, (int)N, per_a, d, &sa, &da, step, total_steps, &ma) != LB_OK ||
        eval_core_mult(L, logits->val, yb, (int)N, per_b, d_b, &sb, &db, step, total_steps, &mb) != LB_OK)
        return NULL;
    if (given) {
        da = given[0];
        db = given[1];
    }
    if (lam_y) { /* Remix: one reduction over the mixed per-sample terms */
        double scale = mean ? 1.0 / (da + db) : 1.0;
        if (none)
            for (size_t i = 0; i < N; i++) out->val[i] = per_a[i] + per_b[i];
        else out->val[0] = (float)((sa + sb) * scale);
        for (size_t k = 0; d && k < NC; k++) d[k] = (float)((double)(d[k] + d_b[k]) * scale);
        return out;
    }
    /* mixup: lambda L(z, ya) + (1 - lambda) L(z, yb), each reduced on its own */
    double wa = lambda, wb = 1.0 - lambda, ka = mean ? 1.0 / da : 1.0, kb = mean ? 1.0 / db : 1.0;
    if (none)
        for (size_t i = 0; i < N; i++) out->val[i] = (float)(wa * per_a[i] + wb * per_b[i]);
    else out->val[0] = (float)(wa * (sa * ka) + wb * (sb * kb));
    for (size_t k = 0; d && k < NC; k++) d[k] = (float)(wa * ((double)d[k] * ka) + wb * ((double)d_b[k] * kb));
    return out;
}
