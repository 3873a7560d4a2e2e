/* The one spec grammar: NAME[:ITEM,ITEM,...], ITEM = KEY=VALUE | WORD. Words before the first
 * KEY=VALUE are positional arguments; a word after one continues its value as a comma list,
 * so lists read naturally: "wce:weights=1,2,4,beta=0.9", "longtail:100", "binary:Shirt,50". */
#include "libra/base.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lb_spec {
    char *text; /* as given, for messages */
    char *name;
    int n_args, cap_args;
    char **args;
    int n, cap;
    char **key, **value;
};

void lb_spec_free(lb_spec *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_args; i++) lb_free(s->args[i]);
    for (int i = 0; i < s->n; i++) {
        lb_free(s->key[i]);
        lb_free(s->value[i]);
    }
    lb_free(s->args);
    lb_free(s->key);
    lb_free(s->value);
    lb_free(s->name);
    lb_free(s->text);
    lb_free(s);
}

/* A copy of [b, e) with surrounding blanks removed. */
static char *dup_trim(const char *b, const char *e)
{
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    return lb_strndup(b, (size_t)(e - b));
}

static int is_word(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static int oom(void) { return lb_error(LB_ENOMEM, "spec: out of memory"); }

/* Appends ",part" to *value. */
static int append_part(char **value, const char *part)
{
    size_t a = strlen(*value), b = strlen(part);
    char *r = lb_realloc(*value, a + b + 2);
    if (!r) return oom();
    r[a] = ',';
    memcpy(r + a + 1, part, b + 1);
    *value = r;
    return LB_OK;
}

static int add_key(lb_spec *s, char *key, char *val)
{
    if (!is_word(key)) return lb_error(LB_EINVAL, "spec '%s': bad key '%s' (letters, digits and '_')", s->text, key);
    if (!*val) return lb_error(LB_EINVAL, "spec '%s': key '%s' has no value", s->text, key);
    if (strchr(val, '='))
        return lb_error(LB_EINVAL, "spec '%s': value of '%s' contains '=' (missing comma?)", s->text, key);
    if (lb_spec_get(s, key)) return lb_error(LB_EINVAL, "spec '%s': key '%s' given twice", s->text, key);
    if (s->n == s->cap) {
        int c = s->cap ? 2 * s->cap : 8;
        char **k = lb_realloc(s->key, (size_t)c * sizeof *k);
        if (!k) return oom();
        s->key = k;
        char **v = lb_realloc(s->value, (size_t)c * sizeof *v);
        if (!v) return oom();
        s->value = v;
        s->cap = c;
    }
    s->key[s->n] = key;
    s->value[s->n++] = val;
    return LB_OK;
}

/* One item of the list: a key=value, a positional word, or a continued list value. */
static int parse_item(lb_spec *s, char *part)
{
    if (!*part) return lb_error(LB_EINVAL, "spec '%s': empty item (two commas in a row, or a trailing comma?)", s->text);
    char *eq = strchr(part, '=');
    if (!eq) {
        if (s->n > 0) return append_part(&s->value[s->n - 1], part);
        if (s->n_args == s->cap_args) {
            int c = s->cap_args ? 2 * s->cap_args : 8;
            char **a = lb_realloc(s->args, (size_t)c * sizeof *a);
            if (!a) return oom();
            s->args = a;
            s->cap_args = c;
        }
        char *a = lb_strdup(part);
        if (!a) return oom();
        s->args[s->n_args++] = a;
        return LB_OK;
    }
    char *key = dup_trim(part, eq), *val = dup_trim(eq + 1, eq + 1 + strlen(eq + 1));
    int rc = key && val ? add_key(s, key, val) : oom();
    if (rc != LB_OK) {
        lb_free(key);
        lb_free(val);
    }
    return rc;
}

static int parse_items(lb_spec *s, const char *p)
{
    if (!*p) return lb_error(LB_EINVAL, "spec '%s': nothing after ':'", s->text);
    for (;;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        char *part = dup_trim(p, e);
        int rc = part ? parse_item(s, part) : oom();
        lb_free(part);
        if (rc != LB_OK) return rc;
        if (!*e) return LB_OK;
        p = e + 1;
    }
}

lb_spec *lb_spec_new(const char *text)
{
    if (!text || !*text) {
        lb_error(LB_EINVAL, "spec: empty");
        return NULL;
    }
    if (strchr(text, '|')) {
        lb_error(LB_EINVAL,
                 "spec '%s': '|' is not allowed here: a grid of values (e.g. gamma=0.5|1|2) is "
                 "expanded by the study; give one value per key", text);
        return NULL;
    }
    lb_spec *s = lb_calloc(1, sizeof *s);
    if (!s || !(s->text = lb_strdup(text))) {
        lb_free(s);
        oom();
        return NULL;
    }
    const char *colon = strchr(text, ':');
    const char *end = colon ? colon : text + strlen(text);
    s->name = dup_trim(text, end);
    int rc = s->name ? LB_OK : oom();
    if (rc == LB_OK && !is_word(s->name))
        rc = lb_error(LB_EINVAL, "spec '%s': bad name '%s' (letters, digits and '_')", text, s->name);
    if (rc == LB_OK && colon) rc = parse_items(s, colon + 1);
    if (rc != LB_OK) {
        lb_spec_free(s);
        return NULL;
    }
    return s;
}

const char *lb_spec_text(const lb_spec *s) { return s->text; }
const char *lb_spec_name(const lb_spec *s) { return s->name; }
int lb_spec_n_args(const lb_spec *s) { return s->n_args; }
const char *lb_spec_arg(const lb_spec *s, int i) { return i >= 0 && i < s->n_args ? s->args[i] : NULL; }
int lb_spec_count(const lb_spec *s) { return s->n; }
const char *lb_spec_key(const lb_spec *s, int i) { return i >= 0 && i < s->n ? s->key[i] : NULL; }
const char *lb_spec_value(const lb_spec *s, int i) { return i >= 0 && i < s->n ? s->value[i] : NULL; }

const char *lb_spec_get(const lb_spec *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->key[i], key) == 0) return s->value[i];
    return NULL;
}

int lb_spec_check(const lb_spec *s, const char *what, const char *const *keys, int max_args)
{
    if (s->n_args > max_args) {
        if (max_args == 0)
            return lb_error(LB_EINVAL, "%s '%s': '%s' is not key=value", what, s->text, s->args[0]);
        return lb_error(LB_EINVAL, "%s '%s': %d positional values, at most %d", what, s->text, s->n_args, max_args);
    }
    for (int i = 0; i < s->n; i++) {
        int ok = 0;
        for (const char *const *k = keys; k && *k && !ok; k++) ok = strcmp(*k, s->key[i]) == 0;
        if (ok) continue;
        char known[256] = "";
        size_t len = 0;
        for (const char *const *k = keys; k && *k && len < sizeof known; k++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", len ? ", " : "", *k);
        return lb_error(LB_EINVAL, "%s '%s': unknown key '%s' (%s%s)", what, s->text, s->key[i],
                        *known ? "keys: " : "it takes no keys", known);
    }
    return LB_OK;
}

int lb_parse_double(const char *s, double *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int lb_parse_int(const char *s, int *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < INT_MIN || v > INT_MAX) return -1;
    *out = (int)v;
    return 0;
}

/* One finite number filling all of [b, e). */
static int read_number(const char *b, const char *e, double *out)
{
    char tmp[64];
    if (b == e || (size_t)(e - b) >= sizeof tmp) return 0;
    memcpy(tmp, b, (size_t)(e - b));
    tmp[e - b] = '\0';
    return lb_parse_double(tmp, out) == 0;
}

int lb_spec_number(const lb_spec *s, const char *key, double lo, double hi, double *out)
{
    const char *v = lb_spec_get(s, key);
    if (!v) return lb_error(LB_EINVAL, "%s: missing key '%s'", s->name, key);
    double x;
    if (!read_number(v, v + strlen(v), &x)) return lb_error(LB_EINVAL, "%s: %s=%s is not a number", s->name, key, v);
    if (x < lo || x > hi) return lb_error(LB_EINVAL, "%s: %s=%s is out of range [%g, %g]", s->name, key, v, lo, hi);
    *out = x;
    return LB_OK;
}

int lb_spec_numbers(const lb_spec *s, const char *key, double *out, int max, int *count)
{
    const char *v = lb_spec_get(s, key);
    if (!v) return lb_error(LB_EINVAL, "%s: missing key '%s'", s->name, key);
    int n = 0;
    for (const char *p = v;;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        double x;
        if (!read_number(p, e, &x))
            return lb_error(LB_EINVAL, "%s: %s=%s: '%.*s' is not a number", s->name, key, v, (int)(e - p), p);
        if (n == max) return lb_error(LB_EINVAL, "%s: %s=%s has more than %d values", s->name, key, v, max);
        out[n++] = x;
        if (!*e) break;
        p = e + 1;
    }
    *count = n;
    return LB_OK;
}

const char *lb_format_number(double v, char *buf, size_t size)
{
    if (v == floor(v) && fabs(v) < 1e15) { /* whole numbers as such: 30, not 3e+01 */
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}
