/* The JSON writer of every libra file: results.json, run records, metrics.json and the
 * programs' JSON output. Members of a block container go on lines of their own, indented two
 * spaces per enclosing block; an inline container keeps its items on one line. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "libra/report.h"

void lb_jw_init(lb_jw *w, lb_buf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

/* The separator, line break and key before a new member of the current container. */
static void member(lb_jw *w, const char *key)
{
    if (w->depth > 0) {
        int d = w->depth - 1, first = w->count[d]++ == 0;
        if (w->is_inline[d]) {
            if (!first) lb_buf_puts(w->out, ", ");
        } else {
            lb_buf_puts(w->out, first ? "\n" : ",\n");
            for (int i = 0; i < w->level; i++) lb_buf_puts(w->out, "  ");
        }
    }
    if (key) {
        lb_jw_raw_string(w->out, key);
        lb_buf_puts(w->out, ": ");
    }
}

static void open_container(lb_jw *w, const char *key, char c, int inline_)
{
    member(w, key);
    lb_buf_put(w->out, &c, 1);
    if (w->depth == (int)(sizeof w->count / sizeof w->count[0])) {
        w->out->oom = 1; /* nesting beyond the writer's depth: refused like an allocation failure */
        return;
    }
    w->is_inline[w->depth] = (unsigned char)(inline_ != 0);
    w->count[w->depth] = 0;
    w->depth++;
    if (!inline_) w->level++;
}

void lb_jw_object(lb_jw *w, const char *key, int inline_) { open_container(w, key, '{', inline_); }
void lb_jw_array(lb_jw *w, const char *key, int inline_) { open_container(w, key, '[', inline_); }

void lb_jw_end(lb_jw *w, char close)
{
    if (w->depth == 0) return;
    int d = --w->depth;
    if (!w->is_inline[d]) {
        w->level--;
        if (w->count[d]) {
            lb_buf_puts(w->out, "\n");
            for (int i = 0; i < w->level; i++) lb_buf_puts(w->out, "  ");
        }
    }
    lb_buf_put(w->out, &close, 1);
}

void lb_jw_raw_string(lb_buf *b, const char *s)
{
    lb_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"')
            lb_buf_puts(b, "\\\"");
        else if (*p == '\\')
            lb_buf_puts(b, "\\\\");
        else if (*p == '\n')
            lb_buf_puts(b, "\\n");
        else if (*p == '\t')
            lb_buf_puts(b, "\\t");
        else if (*p == '\r')
            lb_buf_puts(b, "\\r");
        else if (*p < 0x20)
            lb_buf_printf(b, "\\u%04x", *p);
        else
            lb_buf_put(b, (const char *)p, 1);
    }
    lb_buf_put(b, "\"", 1);
}

void lb_jw_string(lb_jw *w, const char *key, const char *s)
{
    member(w, key);
    if (s) lb_jw_raw_string(w->out, s);
    else lb_buf_puts(w->out, "null");
}

void lb_jw_float(lb_jw *w, const char *key, double v)
{
    member(w, key);
    if (isfinite(v)) lb_buf_printf(w->out, "%.9g", v);
    else lb_buf_puts(w->out, "null");
}

void lb_jw_bool(lb_jw *w, const char *key, int v)
{
    member(w, key);
    lb_buf_puts(w->out, v ? "true" : "false");
}

void lb_jw_int(lb_jw *w, const char *key, int64_t v)
{
    member(w, key);
    lb_buf_printf(w->out, "%" PRId64, v);
}

void lb_jw_uint(lb_jw *w, const char *key, uint64_t v)
{
    member(w, key);
    lb_buf_printf(w->out, "%" PRIu64, v);
}

void lb_jw_floats(lb_jw *w, const char *key, const float *v, size_t n)
{
    lb_jw_array(w, key, 1);
    for (size_t i = 0; i < n; i++) lb_jw_float(w, NULL, v[i]);
    lb_jw_end(w, ']');
}

void lb_jw_ints(lb_jw *w, const char *key, const int *v, size_t n)
{
    lb_jw_array(w, key, 1);
    for (size_t i = 0; i < n; i++) lb_jw_int(w, NULL, v[i]);
    lb_jw_end(w, ']');
}

void lb_jw_metrics(lb_jw *w, const lb_metrics *m)
{
    size_t C = (size_t)m->n_classes;
    lb_jw_int(w, "n_classes", m->n_classes);
    lb_jw_int(w, "n", m->n);
    lb_jw_int(w, "classes_scored", m->n_scored);
    for (int i = 0; i < LB_N_METRIC_FIELDS; i++)
        lb_jw_float(w, lb_metric_fields[i].name, lb_metric_get(m, &lb_metric_fields[i]));
    lb_jw_floats(w, "per_class_precision", m->precision, C);
    lb_jw_floats(w, "per_class_recall", m->recall, C);
    lb_jw_floats(w, "per_class_f1", m->f1, C);
    lb_jw_array(w, "confusion", 0); /* row = true class, one line each */
    for (size_t t = 0; t < C; t++) {
        lb_jw_array(w, NULL, 1);
        for (size_t p = 0; p < C; p++) lb_jw_int(w, NULL, m->confusion[t * C + p]);
        lb_jw_end(w, ']');
    }
    lb_jw_end(w, ']');
}

void lb_jw_notes(lb_jw *w, const char *key, const lb_notes *n)
{
    lb_jw_object(w, key, 0);
    lb_jw_int(w, "count", n->n);
    lb_jw_array(w, "messages", 0);
    for (int i = 0; i < n->n_kept; i++) lb_jw_string(w, NULL, n->msg[i]);
    lb_jw_end(w, ']');
    lb_jw_end(w, '}');
}
