/* Growable text buffer and JSON scalar output; files are written with lb_write_file_atomic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

static int reserve(lb_buf *b, size_t extra)
{
    if (b->oom) return 0;
    if (b->n + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = lb_realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void lb_buf_put(lb_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void lb_buf_puts(lb_buf *b, const char *s) { lb_buf_put(b, s, strlen(s)); }

void lb_buf_printf(lb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || !reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void lb_buf_free(lb_buf *b)
{
    lb_free(b->p);
    memset(b, 0, sizeof *b);
}

void lb_buf_json_float(lb_buf *b, float v)
{
    if (isfinite(v))
        lb_buf_printf(b, "%.9g", (double)v);
    else
        lb_buf_puts(b, "null");
}

void lb_buf_json_string(lb_buf *b, const char *s)
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

int lb_buf_write_atomic(const lb_buf *b, const char *path)
{
    if (!path || !*path) return lb_error(LB_EINVAL, "report: empty output path");
    if (b->oom) return lb_error(LB_ENOMEM, "%s: out of memory while formatting", path);
    return lb_write_file_atomic(path, b->p, b->n);
}
