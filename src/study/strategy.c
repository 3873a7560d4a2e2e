/* Strategies: parsing, canonical keys, checks, list splitting and grid expansion. */
#include "study/internal.h"

#include "libra/losses.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const lb_default_strategies[] = {
    "ce", "wce:weights=inverse", "wce:weights=effective", "focal:gamma=2", "cb_focal", "undersample",
    "oversample", "ce@balanced", "ldam:drw=0.8", "logit_adjust", "balanced_softmax", "ce+posthoc",
    "ce@smote", "ce~mixup", "ce~remix", "ldam:drw=0.8~remix", "ce+crt", "ce+taunorm", "oracle", NULL};

static char *dup_range(const char *s, size_t n) { return lb_strndup(s, n); }

const char *lb_default_strategy_list(void)
{
    static char list[2048];
    if (!list[0])
        for (int i = 0; lb_default_strategies[i]; i++) {
            if (i) strcat(list, ";");
            strcat(list, lb_default_strategies[i]);
        }
    return list;
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

/* Is p[0..n) an item NAME:NUMBER of a per-class list by class name ("Healthy:0.25")? No
 * strategy looks like that: a loss takes no positional value. */
static int class_item(const char *p, size_t n)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '=') return 0;
        if (p[i] == ':') colon = p + i;
    }
    char num[64];
    size_t k = colon ? (size_t)(p + n - colon - 1) : 0;
    for (size_t i = 0; colon && i < k; i++) /* the last item may carry the sampler or +posthoc */
        if (colon[1 + i] == '@' || colon[1 + i] == '~' || (colon[1 + i] == '+' && isalpha((unsigned char)colon[2 + i])))
            k = i;
    if (!colon || k == 0 || k >= sizeof num) return 0;
    memcpy(num, colon + 1, k);
    while (k && isspace((unsigned char)num[k - 1])) k--;
    num[k] = '\0';
    double v;
    return lb_parse_double(num, &v) == 0;
}

/* Does the comma-separated part p[0..n) begin a new strategy? */
static int starts_strategy(const char *p, size_t n)
{
    while (n && isspace((unsigned char)*p)) p++, n--;
    if (!n || !isalpha((unsigned char)*p) || class_item(p, n)) return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ':' || p[i] == '@' || p[i] == '~' || p[i] == '+') return 1;
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
    lb_free(s->mix);
    lb_free(s->stages);
    free_list(s->points, s->n_points);
    memset(s, 0, sizeof *s);
}

/* The suffixes from the first '+' followed by a letter: +posthoc and the stages (checked and
 * made canonical), cut off t. */
static int parse_suffixes(lb_strategy *out, char *t, const char *text)
{
    char *plus = t;
    while ((plus = strchr(plus, '+')) && !isalpha((unsigned char)plus[1])) plus++;
    if (!plus) return LB_OK;
    *plus = '\0';
    lb_buf stages = {0};
    int n = 0, rc = LB_OK;
    for (char *item = plus + 1; item && rc == LB_OK;) {
        char *next = strchr(item, '+');
        if (next) *next++ = '\0';
        lb_stage st;
        if (!strcmp(item, "posthoc")) out->posthoc = 1;
        else if ((rc = lb_stage_parse(&st, item)) == LB_OK) lb_buf_printf(&stages, "%s%s", n++ ? "+" : "", st.name);
        else lb_error_prefix("strategy '%s': suffix '+%s' (+posthoc, +crt, +lws, +taunorm or +fsmote)", text, item);
        item = next;
    }
    if (rc == LB_OK && n) {
        lb_stage list[LB_MAX_STAGES];
        int k = 0;
        if ((rc = lb_buf_status(&stages, "strategy")) == LB_OK &&
            (rc = lb_stage_parse_list(stages.p, list, LB_MAX_STAGES, &k)) != LB_OK)
            lb_error_prefix("strategy '%s'", text);
        if (rc == LB_OK && !(out->stages = lb_buf_take(&stages))) rc = lb_error(LB_ENOMEM, "strategy: out of memory");
    }
    lb_buf_free(&stages);
    return rc;
}

/* The mixing part after '~' (checked and made canonical), cut out of t. It may come before
 * the sampler too ("ce~mixup@balanced" is "ce@balanced~mixup"). */
static int parse_mix(lb_strategy *out, char *t, const char *text)
{
    char *tilde = strrchr(t, '~');
    if (!tilde) return LB_OK;
    char *at = strchr(tilde, '@'), mix[160];
    size_t n = at ? (size_t)(at - tilde - 1) : strlen(tilde + 1);
    if (n >= sizeof mix) return lb_error(LB_EINVAL, "strategy '%s': the mix part is too long", text);
    memcpy(mix, tilde + 1, n);
    mix[n] = '\0';
    memmove(tilde, tilde + 1 + n, strlen(tilde + 1 + n) + 1); /* what follows the mix, if anything */
    lb_mix m;
    int rc = lb_mix_parse(&m, mix);
    if (rc == LB_OK && m.kind == LB_MIX_NONE) rc = lb_error(LB_EINVAL, "mix '%s': expected mixup or remix", mix);
    if (rc != LB_OK) {
        lb_error_prefix("strategy '%s'", text);
        return rc;
    }
    return (out->mix = lb_strdup(m.name)) ? LB_OK : lb_error(LB_ENOMEM, "strategy: out of memory");
}

/* The strategy as written, aliases expanded and the optional parts in their order. */
static char *strategy_text(const lb_strategy *s)
{
    if (s->oracle) return lb_strdup(s->oracle == 2 ? "oracle_full" : "oracle");
    int sampled = strcmp(s->sampler, "shuffle") != 0;
    return lb_strfmt("%s%s%s%s%s%s%s%s", s->loss, sampled ? "@" : "", sampled ? s->sampler : "", s->mix ? "~" : "",
                     s->mix ? s->mix : "", s->stages ? "+" : "", s->stages ? s->stages : "",
                     s->posthoc ? "+posthoc" : "");
}

int lb_strategy_parse(lb_strategy *out, const char *text)
{
    memset(out, 0, sizeof *out);
    char *t = trim_dup(text, strlen(text));
    if (!t) return lb_error(LB_ENOMEM, "strategy: out of memory");
    int rc = parse_suffixes(out, t, text);
    if (rc == LB_OK) rc = parse_mix(out, t, text);
    if (rc != LB_OK) goto done;
    const char *loss = t, *sampler = "shuffle";
    size_t ko = strlen(!strncmp(t, "oracle_full", 11) ? "oracle_full" : "oracle");
    if (!strncmp(t, "oracle", ko) && strchr("@:", t[ko]) && t[ko]) {
        rc = lb_error(LB_EINVAL, "strategy '%s': the oracle is ce on a class-balanced training set; it takes no "
                                 "sampler, mix, stage or loss options (write 'oracle')", text);
        goto done;
    }
    int oracle = !strcmp(t, "oracle") ? 1 : !strcmp(t, "oracle_full") ? 2 : 0;
    if (oracle && (out->mix || out->stages || out->posthoc)) {
        rc = lb_error(LB_EINVAL, "strategy '%s': the oracle is ce on a class-balanced training set; it takes no "
                                 "sampler, mix, stage or +posthoc (write 'oracle')", text);
        goto done;
    }
    if (oracle) {
        out->oracle = oracle;
        loss = "ce";
    }
    char *at = strchr(t, '@');
    if (at) {
        *at = '\0';
        sampler = at + 1;
    }
    /* aliases: a sampler name alone means ce with that sampler */
    static const char *const alias[] = {"undersample", "oversample", "balanced", "sqrt", "progressive", "smote",
                                        "borderline_smote", "adasyn", "ros_noise", NULL};
    for (int i = 0; alias[i] && !at; i++) {
        size_t k = strlen(alias[i]);
        if (strncmp(t, alias[i], k) == 0 && (t[k] == '\0' || t[k] == ':')) {
            sampler = t;
            loss = "ce";
        }
    }
    if (!*loss || !*sampler) {
        rc = lb_error(LB_EINVAL, "strategy '%s': the %s part is empty (LOSS[@SAMPLER][~MIX][+STAGE...][+posthoc])",
                      text, *loss ? "sampler" : "loss");
        goto done;
    }
    out->loss = lb_strdup(loss);
    out->sampler = lb_strdup(sampler);
    if (!out->loss || !out->sampler || !(out->spec = strategy_text(out))) {
        rc = lb_error(LB_ENOMEM, "strategy: out of memory");
        goto done;
    }
    if ((rc = lb_grid_expand(out->loss, &out->points, &out->n_points)) != LB_OK)
        lb_error_prefix("strategy '%s'", text);
done:
    lb_free(t);
    if (rc != LB_OK) lb_strategy_free(out);
    return rc;
}

int lb_strategy_key(const lb_strategy *s, lb_buf *out)
{
    if (s->oracle) {
        lb_buf_puts(out, s->oracle == 2 ? "oracle_full" : "oracle");
        return lb_buf_status(out, "strategy");
    }
    for (int i = 0; i < s->n_points; i++) {
        if (i) lb_buf_puts(out, "|");
        int rc = lb_loss_canonical(s->points[i], out);
        if (rc != LB_OK) {
            lb_error_prefix("strategy '%s'", s->spec);
            return rc;
        }
    }
    char sampler[128];
    if (lb_sampler_canonical(s->sampler, sampler, sizeof sampler) != LB_OK) {
        lb_error_prefix("strategy '%s'", s->spec);
        return lb_last_status();
    }
    lb_buf_printf(out, "@%s%s%s%s%s%s", sampler, s->mix ? "~" : "", s->mix ? s->mix : "", s->stages ? "+" : "",
                  s->stages ? s->stages : "", s->posthoc ? "+posthoc" : "");
    return lb_buf_status(out, "strategy");
}

int lb_strategy_check(const lb_strategy *s, int n_classes, const int *class_counts)
{
    return lb_strategy_check_named(s, n_classes, class_counts, NULL);
}

int lb_strategy_check_named(const lb_strategy *s, int n_classes, const int *class_counts,
                            const char *const *class_names)
{
    for (int i = 0; i < s->n_points; i++) {
        lb_loss *l = lb_loss_new_named(s->points[i], n_classes, class_counts, class_names);
        if (!l) {
            lb_error_prefix("strategy '%s'", s->spec);
            return lb_last_status();
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

/* Is `name` one of the '+'-joined names of list? */
int lb__in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t m = strcspn(p, "+");
        if (m == n && !memcmp(p, name, n)) return 1;
        p += m + (p[m] == '+');
    }
    return 0;
}
