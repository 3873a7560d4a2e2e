/* Spec strings: "name:key=value,key=value". A comma-separated part without '=' continues
 * the previous value, so lists read naturally: "wce:weights=1,2,4,beta=0.9". */
#include "libra/losses.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_MAX_KEYS 32

struct lb_spec {
    char *text;    /* as given, for messages */
    char *name;
    int n;
    char *key[SPEC_MAX_KEYS];
    char *value[SPEC_MAX_KEYS];
};

void lb_spec_free(lb_spec *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        lb_free(s->key[i]);
        lb_free(s->value[i]);
    }
    lb_free(s->name);
    lb_free(s->text);
    lb_free(s);
}

/* A copy of [b, e) with surrounding blanks removed. */
static char *dup_trim(const char *b, const char *e)
{
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    char *r = lb_malloc((size_t)(e - b) + 1);
    if (!r) return NULL;
    memcpy(r, b, (size_t)(e - b));
    r[e - b] = '\0';
    return r;
}

static int is_word(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static int append_part(char **value, const char *part)
{
    size_t a = strlen(*value), b = strlen(part);
    char *r = lb_realloc(*value, a + b + 2);
    if (!r) return lb_error(LB_ENOMEM, "spec: out of memory");
    r[a] = ',';
    memcpy(r + a + 1, part, b + 1);
    *value = r;
    return LB_OK;
}

/* Parses the key=value list after the ':' into s. */
static int parse_params(lb_spec *s, const char *p)
{
    if (!*p) return lb_error(LB_EINVAL, "spec '%s': nothing after ':'", s->text);
    while (1) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        char *part = dup_trim(p, e);
        if (!part) return lb_error(LB_ENOMEM, "spec: out of memory");
        char *eq = strchr(part, '=');
        int rc = LB_OK;
        if (!*part) {
            rc = lb_error(LB_EINVAL, "spec '%s': empty item (two commas in a row, or a trailing comma?)", s->text);
        } else if (!eq) {
            /* a list value continues: "weights=1,2,4" */
            if (s->n == 0)
                rc = lb_error(LB_EINVAL, "spec '%s': '%s' is not key=value", s->text, part);
            else
                rc = append_part(&s->value[s->n - 1], part);
        } else {
            *eq = '\0';
            char *key = dup_trim(part, eq);
            char *val = dup_trim(eq + 1, eq + 1 + strlen(eq + 1));
            if (!key || !val) {
                rc = lb_error(LB_ENOMEM, "spec: out of memory");
            } else if (!is_word(key)) {
                rc = lb_error(LB_EINVAL, "spec '%s': bad key '%s' (letters, digits and '_')", s->text, key);
            } else if (!*val) {
                rc = lb_error(LB_EINVAL, "spec '%s': key '%s' has no value", s->text, key);
            } else if (strchr(val, '=')) {
                rc = lb_error(LB_EINVAL, "spec '%s': value of '%s' contains '=' (missing comma?)", s->text, key);
            } else if (lb_spec_get(s, key)) {
                rc = lb_error(LB_EINVAL, "spec '%s': key '%s' given twice", s->text, key);
            } else if (s->n == SPEC_MAX_KEYS) {
                rc = lb_error(LB_EINVAL, "spec '%s': more than %d keys", s->text, SPEC_MAX_KEYS);
            } else {
                s->key[s->n] = key;
                s->value[s->n] = val;
                s->n++;
                key = val = NULL;
            }
            lb_free(key);
            lb_free(val);
        }
        lb_free(part);
        if (rc != LB_OK) return rc;
        if (!*e) return LB_OK;
        p = e + 1;
    }
}

lb_spec *lb_spec_parse(const char *text)
{
    if (!text || !*text) {
        lb_error(LB_EINVAL, "spec: empty");
        return NULL;
    }
    if (strchr(text, '|')) {
        lb_error(LB_EINVAL,
                 "spec '%s': '|' is not allowed here: a grid of values (e.g. gamma=0.5|1|2) is "
                 "expanded by the study code; give one value per key", text);
        return NULL;
    }
    lb_spec *s = lb_calloc(1, sizeof *s);
    if (!s || !(s->text = lb_strdup(text))) {
        lb_free(s);
        lb_error(LB_ENOMEM, "spec: out of memory");
        return NULL;
    }
    const char *colon = strchr(text, ':');
    const char *end = colon ? colon : text + strlen(text);
    s->name = dup_trim(text, end);
    int rc = s->name ? LB_OK : lb_error(LB_ENOMEM, "spec: out of memory");
    if (rc == LB_OK && !is_word(s->name))
        rc = lb_error(LB_EINVAL, "spec '%s': bad name '%s' (letters, digits and '_')", text, s->name);
    if (rc == LB_OK && colon) rc = parse_params(s, colon + 1);
    if (rc != LB_OK) {
        lb_spec_free(s);
        return NULL;
    }
    return s;
}

const char *lb_spec_name(const lb_spec *s) { return s->name; }
int lb_spec_count(const lb_spec *s) { return s->n; }
const char *lb_spec_key(const lb_spec *s, int i) { return i >= 0 && i < s->n ? s->key[i] : NULL; }
const char *lb_spec_value(const lb_spec *s, int i) { return i >= 0 && i < s->n ? s->value[i] : NULL; }

const char *lb_spec_get(const lb_spec *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->key[i], key) == 0) return s->value[i];
    return NULL;
}

/* One finite number filling all of [b, e). */
static int read_number(const char *b, const char *e, double *out)
{
    if (b == e) return 0;
    char tmp[64];
    if ((size_t)(e - b) >= sizeof tmp) return 0;
    memcpy(tmp, b, (size_t)(e - b));
    tmp[e - b] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end == tmp || *end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int lb_spec_number(const lb_spec *s, const char *key, double lo, double hi, double *out)
{
    const char *v = lb_spec_get(s, key);
    if (!v) return lb_error(LB_EINVAL, "%s: missing key '%s'", s->name, key);
    double x;
    if (!read_number(v, v + strlen(v), &x))
        return lb_error(LB_EINVAL, "%s: %s=%s is not a number", s->name, key, v);
    if (x < lo || x > hi)
        return lb_error(LB_EINVAL, "%s: %s=%s is out of range [%g, %g]", s->name, key, v, lo, hi);
    *out = x;
    return LB_OK;
}

int lb_spec_numbers(const lb_spec *s, const char *key, double *out, int max, int *count)
{
    const char *v = lb_spec_get(s, key);
    if (!v) return lb_error(LB_EINVAL, "%s: missing key '%s'", s->name, key);
    int n = 0;
    const char *p = v;
    while (1) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        double x;
        if (!read_number(p, e, &x))
            return lb_error(LB_EINVAL, "%s: %s=%s: '%.*s' is not a number", s->name, key, v,
                            (int)(e - p), p);
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
