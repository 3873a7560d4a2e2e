/* Per-class lists by class name: "focal:alpha=Diseased:0.75,Healthy:0.25". The value of a
 * per-class key is either positional (v0,v1,... in class-index order) or named (NAME:VALUE for
 * every class, in any order), never a mix. lb_spec keeps a ':' inside a value (only a spec's
 * first ':' ends its name, and a comma part without '=' continues the previous value), so the
 * items arrive here as the key's comma list. A name cannot hold ',' or ':' (nor '=' or '|',
 * which lb_spec refuses); blanks around a name or a value are ignored. */
#include "losses/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name; /* into the working copy of the value */
    double value;
} named_item;

typedef struct {
    const char *name;
    int index;
} class_entry;

/* What messages name: "focal: alpha=...". */
typedef struct {
    const char *loss, *key, *value;
} where;

#define LIST_CHARS 400 /* class names quoted in a message, at most */

static int oom(void) { return lb_error(LB_ENOMEM, "loss: out of memory"); }

/* [b, e) without surrounding blanks, NUL-terminated in place. */
static char *trim(char *b, char *e)
{
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    *e = '\0';
    return b;
}

/* The number of comma-separated items of v, and how many of them hold a ':'. */
static void count_items(const char *v, int *n, int *named)
{
    int colon = 0;
    *n = 1;
    *named = 0;
    for (const char *p = v;; p++) {
        if (*p == ':') colon = 1;
        if (*p != ',' && *p) continue;
        *named += colon;
        colon = 0;
        if (!*p) break;
        ++*n;
    }
}

/* Splits the copy of the value into n NAME:NUMBER items. */
static int parse_items(const where *w, char *copy, named_item *items, int n)
{
    char *p = copy;
    for (int i = 0; i < n; i++) {
        char *end = p + strcspn(p, ",");
        char *next = *end ? end + 1 : end;
        char *colon = memchr(p, ':', (size_t)(end - p));
        char *num = trim(colon + 1, end);
        char *name = trim(p, colon);
        if (!*name)
            return lb_error(LB_EINVAL, "%s: %s=%s: item ':%s' has no class name before the ':'", w->loss, w->key,
                            w->value, num);
        if (lb_parse_double(num, &items[i].value) != 0)
            return lb_error(LB_EINVAL, "%s: %s=%s: the value '%s' of class '%s' is not a number%s", w->loss, w->key,
                            w->value, num, name, strchr(num, ':') ? " (a class name cannot hold ':')" : "");
        items[i].name = name;
        p = next;
    }
    return LB_OK;
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const named_item *)a)->name, ((const named_item *)b)->name);
}

static int twice(const where *w, const char *name)
{
    return lb_error(LB_EINVAL, "%s: %s=%s: class '%s' is given twice", w->loss, w->key, w->value, name);
}

/* Without class names: the items sorted by name, numbers in shortest form. */
static int put_sorted(const where *w, named_item *items, int n, lb_buf *out)
{
    qsort(items, (size_t)n, sizeof *items, cmp_item);
    for (int i = 0; i < n; i++) {
        if (i && strcmp(items[i].name, items[i - 1].name) == 0) return twice(w, items[i].name);
        char num[40];
        lb_buf_printf(out, "%s%s:%s", i ? "," : "", items[i].name, lb_format_number(items[i].value, num, sizeof num));
    }
    return LB_OK;
}

static int cmp_class(const void *a, const void *b)
{
    const class_entry *x = a, *y = b;
    int d = strcmp(x->name, y->name);
    return d ? d : (x->index > y->index) - (x->index < y->index);
}

/* The class names sorted, for lookups; an error if one is NULL or two are equal. */
static int sort_classes(const where *w, const lb__class_names *cn, class_entry *cls)
{
    int C = cn->n_classes;
    for (int c = 0; c < C; c++) {
        if (!cn->names[c]) return lb_error(LB_EINVAL, "%s: %s=%s: class %d has no name", w->loss, w->key, w->value, c);
        cls[c].name = cn->names[c];
        cls[c].index = c;
    }
    qsort(cls, (size_t)C, sizeof *cls, cmp_class);
    for (int k = 1; k < C; k++)
        if (strcmp(cls[k].name, cls[k - 1].name) == 0)
            return lb_error(LB_EINVAL, "%s: %s=%s: classes %d and %d are both named '%s'; give the values in "
                            "class-index order instead", w->loss, w->key, w->value, cls[k - 1].index, cls[k].index,
                            cls[k].name);
    return LB_OK;
}

/* The index of the class called name, or -1. */
static int find_class(const class_entry *cls, int C, const char *name)
{
    int lo = 0, hi = C - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, d = strcmp(cls[mid].name, name);
        if (d == 0) return cls[mid].index;
        if (d < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* "A, B, C" (or "'A', 'B', 'C'" with quote) of the classes, only those with seen[c] == 0 when
 * seen is not NULL, ending in "..." when they do not fit; returns how many there are. */
static int name_list(const lb__class_names *cn, const char *seen, int quote, char *buf, size_t size)
{
    size_t at = 0;
    int n = 0, full = 0;
    buf[0] = '\0';
    for (int c = 0; c < cn->n_classes; c++) {
        if (seen && seen[c]) continue;
        const char *sep = n++ ? ", " : "";
        if (full) continue;
        if (at + strlen(sep) + strlen(cn->names[c]) + 8 >= size) {
            snprintf(buf + at, size - at, "%s...", sep);
            full = 1;
        } else {
            const char *q = quote ? "'" : "";
            at += (size_t)snprintf(buf + at, size - at, "%s%s%s%s", sep, q, cn->names[c], q);
        }
    }
    return n;
}

/* Every class's value, in class-index order, from the items. */
static int resolve(const where *w, const lb__class_names *cn, const named_item *items, int n, const class_entry *cls,
                   double *v, char *seen)
{
    int C = cn->n_classes;
    char list[LIST_CHARS];
    for (int i = 0; i < n; i++) {
        int c = find_class(cls, C, items[i].name);
        if (c < 0) {
            name_list(cn, NULL, 0, list, sizeof list);
            return lb_error(LB_EINVAL, "%s: %s=%s: '%s' is not a class name (classes: %s)", w->loss, w->key, w->value,
                            items[i].name, list);
        }
        if (seen[c]) return twice(w, items[i].name);
        if (!(items[i].value > 0)) /* every per-class list is of weights */
            return lb_error(LB_EINVAL, "%s: %s=%s: the value %g of class '%s' must be > 0", w->loss, w->key, w->value,
                            items[i].value, items[i].name);
        seen[c] = 1;
        v[c] = items[i].value;
    }
    if (n < C) {
        int m = name_list(cn, seen, 1, list, sizeof list);
        return lb_error(LB_EINVAL, "%s: %s=%s: no value for class%s %s (a list by class name gives every class "
                        "once)", w->loss, w->key, w->value, m > 1 ? "es" : "", list);
    }
    return LB_OK;
}

/* With class names: the values in class-index order, numbers in shortest form. */
static int put_resolved(const where *w, const lb__class_names *cn, const named_item *items, int n, lb_buf *out)
{
    int C = cn->n_classes;
    class_entry *cls = lb_malloc((size_t)C * sizeof *cls);
    double *v = lb_malloc((size_t)C * sizeof *v);
    char *seen = lb_calloc((size_t)C, 1);
    int rc = cls && v && seen ? sort_classes(w, cn, cls) : oom();
    if (rc == LB_OK) rc = resolve(w, cn, items, n, cls, v, seen);
    for (int c = 0; c < C && rc == LB_OK; c++) {
        char num[40];
        lb_buf_printf(out, "%s%s", c ? "," : "", lb_format_number(v[c], num, sizeof num));
    }
    lb_free(cls);
    lb_free(v);
    lb_free(seen);
    return rc;
}

int lb__loss_named_list(const char *loss, const char *key, const char *value, const lb__class_names *cn,
                        lb_buf *out, int *named)
{
    int n, n_named;
    count_items(value, &n, &n_named);
    *named = n_named > 0;
    if (!*named) return LB_OK;
    where w = {loss, key, value};
    if (n_named < n)
        return lb_error(LB_EINVAL, "%s: %s=%s mixes values by position and by class name: give every class's "
                        "value as NAME:VALUE, or all values in class-index order", loss, key, value);
    if (!cn->names && cn->need)
        return lb_error(LB_EINVAL, "%s: %s=%s gives values by class name, but class names are not known here: "
                        "give one value per class in class-index order (%s=v0,v1,...)", loss, key, value, key);
    char *copy = lb_strdup(value);
    named_item *items = lb_malloc((size_t)n * sizeof *items);
    int rc = copy && items ? parse_items(&w, copy, items, n) : oom();
    if (rc == LB_OK) rc = cn->names ? put_resolved(&w, cn, items, n, out) : put_sorted(&w, items, n, out);
    if (rc == LB_OK) rc = lb_buf_status(out, "loss");
    lb_free(copy);
    lb_free(items);
    return rc;
}
