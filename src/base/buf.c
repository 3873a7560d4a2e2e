/* The growable string builder every module writes text (and checkpoint bytes) into. */
#include "libra/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

void lb_buf_put(lb_buf *b, const void *s, size_t n)
{
    if (!reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void lb_buf_puts(lb_buf *b, const char *s) { lb_buf_put(b, s, strlen(s)); }

void lb_buf_csv_field(lb_buf *b, const char *s)
{
    s = s ? s : "";
    if (!strpbrk(s, ",\"\r\n")) {
        lb_buf_puts(b, s);
        return;
    }
    lb_buf_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"') lb_buf_put(b, "\"", 1); /* a quote inside is doubled */
        lb_buf_put(b, s, 1);
    }
    lb_buf_put(b, "\"", 1);
}

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

int lb_buf_status(const lb_buf *b, const char *what)
{
    return b->oom ? lb_error(LB_ENOMEM, "%s: out of memory", what ? what : "text") : LB_OK;
}

char *lb_buf_take(lb_buf *b)
{
    if (b->oom) {
        lb_buf_free(b);
        lb_error(LB_ENOMEM, "out of memory building a string");
        return NULL;
    }
    if (!b->p) {
        char *e = lb_strdup("");
        if (!e) lb_error(LB_ENOMEM, "out of memory building a string");
        return e;
    }
    char *p = b->p;
    memset(b, 0, sizeof *b);
    return p;
}

int lb_buf_write(const lb_buf *b, const char *path)
{
    if (!path || !*path) return lb_error(LB_EINVAL, "write: empty output path");
    if (b->oom) return lb_error(LB_ENOMEM, "%s: out of memory while formatting", path);
    return lb_write_file_atomic(path, b->p ? b->p : "", b->n);
}

char *lb_strfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = lb_malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- warnings ---- */

static int notes_keep(lb_notes *w, const char *text)
{
    w->n++;
    if (w->n_kept >= LB_NOTES_KEPT) return LB_OK;
    if (!w->msg && !(w->msg = lb_calloc(LB_NOTES_KEPT, sizeof(char *))))
        return lb_error(LB_ENOMEM, "out of memory for a warning");
    if (!(w->msg[w->n_kept] = lb_strdup(text))) return lb_error(LB_ENOMEM, "out of memory for a warning");
    w->n_kept++;
    return LB_OK;
}

int lb_notes_add(lb_notes *w, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return notes_keep(w, text);
}

int lb_notes_add_all(lb_notes *w, const lb_notes *src)
{
    for (int i = 0; i < src->n_kept; i++) {
        int rc = notes_keep(w, src->msg[i]);
        if (rc != LB_OK) return rc;
    }
    w->n += src->n - src->n_kept;
    return LB_OK;
}

void lb_notes_free(lb_notes *w)
{
    for (int i = 0; w->msg && i < w->n_kept; i++) lb_free(w->msg[i]);
    lb_free(w->msg);
    memset(w, 0, sizeof *w);
}
