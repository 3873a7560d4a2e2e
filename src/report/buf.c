/* Growable text buffer, JSON scalar output, and the atomic file write. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Makes the rename itself durable; a failure here does not undo a finished write. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    } else
        return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int lb_buf_write_atomic(const lb_buf *b, const char *path)
{
    if (!path || !*path) return lb_error(LB_EINVAL, "report: empty output path");
    if (b->oom) return lb_error(LB_ENOMEM, "%s: out of memory while formatting", path);
    size_t plen = strlen(path);
    char *tmp = lb_malloc(plen + 12);
    if (!tmp) return lb_error(LB_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmpXXXXXX", 11);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        lb_free(tmp);
        return lb_error(LB_EIO, "%s: cannot create a temporary file beside it: %s", path,
                        strerror(e));
    }
    const char *what = NULL;
    size_t done = 0;
    while (!what && done < b->n) {
        ssize_t k = write(fd, b->p + done, b->n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            what = "write";
        else
            done += (size_t)k;
    }
    /* mkstemp makes the file 0600; results are meant to be shared */
    if (!what && fchmod(fd, 0644) != 0) what = "chmod";
    if (!what && fsync(fd) != 0) what = "fsync";
    int e = errno;
    if (close(fd) != 0 && !what) {
        what = "close";
        e = errno;
    }
    if (!what && rename(tmp, path) != 0) {
        what = "rename";
        e = errno;
    }
    if (what) {
        unlink(tmp);
        lb_free(tmp);
        return lb_error(LB_EIO, "%s: %s failed: %s (nothing was changed)", path, what, strerror(e));
    }
    lb_free(tmp);
    sync_parent_dir(path);
    return LB_OK;
}
