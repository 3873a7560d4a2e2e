/* Status codes and the located message of the last error, per thread. */
#include "libra/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef LIBRA_VERSION_STRING
#define LIBRA_VERSION_STRING LB_VERSION
#endif

const char *lb_version(void) { return LIBRA_VERSION_STRING; }

static _Thread_local char err_buf[1024];
static _Thread_local int err_code;

const char *lb_last_error(void) { return err_buf; }
int lb_last_status(void) { return err_code; }

int lb_error(int code, const char *fmt, ...)
{
    char msg[sizeof err_buf]; /* the message may quote the previous one (lb_last_error()) */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(err_buf, msg, sizeof err_buf);
    err_code = code;
    return code;
}

void lb_clear_error(void)
{
    err_buf[0] = '\0';
    err_code = LB_OK;
}

void lb_error_prefix(const char *fmt, ...)
{
    char pre[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    /* pre + ": " + old, truncated to the buffer */
    size_t k = strlen(pre), cap = sizeof err_buf - 1;
    if (k > cap) k = cap;
    memcpy(err_buf, pre, k);
    for (const char *s = ": "; *s && k < cap; s++) err_buf[k++] = *s;
    for (const char *s = old; *s && k < cap; s++) err_buf[k++] = *s;
    err_buf[k] = '\0';
}

const char *lb_status_name(int code)
{
    switch (code) {
    case LB_OK: return "success";
    case LB_EINVAL: return "invalid argument";
    case LB_ENOMEM: return "out of memory";
    case LB_EIO: return "input/output error";
    case LB_EFORMAT: return "bad file format";
    case LB_ESHAPE: return "shape mismatch";
    case LB_ENUMERIC: return "non-finite value";
    case LB_ESTATE: return "invalid state";
    case LB_EINTR: return "interrupted";
    default: return "unknown status";
    }
}
