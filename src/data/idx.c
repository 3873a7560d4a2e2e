/* IDX files (LeCun's format of MNIST / Fashion-MNIST), raw or gzip-compressed.
 * Header: 0, 0, type, ndim, then ndim big-endian uint32 dims, then the data row-major. */
#include "data/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Deflate cannot expand data by more than about 1032:1, so a gzip file of S bytes holds at
 * most this many bytes per compressed byte; a header claiming more is refused before any
 * allocation. */
#define GZ_MAX_RATIO 1032u

/* Reads from either a FILE (raw) or a gzFile. */
typedef struct {
    FILE *f;
    gzFile gz;
} reader;

/* Reads up to n bytes; returns bytes read, or -1 on a gzip stream error. */
static long long rd(reader *r, void *buf, size_t n)
{
    if (r->f) return (long long)fread(buf, 1, n, r->f);
    size_t done = 0;
    while (done < n) {
        size_t want = n - done;
        if (want > (1u << 30)) want = 1u << 30;  /* gzread takes an unsigned */
        int got = gzread(r->gz, (char *)buf + done, (unsigned)want);
        if (got < 0) return -1;
        if (got == 0) break;
        done += (size_t)got;
    }
    return (long long)done;
}

/* The message for a short or failed gzip read. */
static int gz_fail(reader *r, const char *path, const char *what)
{
    int errnum = Z_OK;
    const char *msg = gzerror(r->gz, &errnum);
    if (errnum != Z_OK && errnum != Z_STREAM_END)
        return lb_error(LB_EFORMAT, "%s: corrupt or truncated gzip data while reading the %s (%s)",
                        path, what, msg && *msg ? msg : "zlib error");
    return lb_error(LB_EFORMAT, "%s: file ends inside the %s (truncated)", path, what);
}

void lb_idx_free(lb_idx *x)
{
    if (!x) return;
    lb_free(x->dims);
    lb_free(x->data);
    memset(x, 0, sizeof *x);
}

int lb_idx_read(lb_idx *out, const char *path)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return lb_error(LB_EIO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return lb_error(LB_EIO, "%s: not a regular file", path);
    }
    unsigned long long file_size = (unsigned long long)st.st_size;
    unsigned char sig[2] = {0, 0};
    size_t nsig = fread(sig, 1, 2, f);
    int is_gz = nsig == 2 && sig[0] == 0x1f && sig[1] == 0x8b;
    reader r = {NULL, NULL};
    if (is_gz) {
        fclose(f);
        r.gz = gzopen(path, "rb");
        if (!r.gz) return lb_error(LB_EIO, "%s: cannot open as gzip (%s)", path, strerror(errno));
    } else {
        rewind(f);
        r.f = f;
    }

    int rc = LB_OK;
    unsigned char head[4];
    long long got = rd(&r, head, 4);
    if (got != 4) {
        rc = is_gz ? gz_fail(&r, path, "IDX magic number")
                   : lb_error(LB_EFORMAT, "%s: %llu bytes, too short for an IDX header",
                              path, file_size);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0) {
        rc = lb_error(LB_EFORMAT, "%s: wrong magic number %02x %02x %02x %02x (an IDX file starts with 00 00)",
                      path, head[0], head[1], head[2], head[3]);
        goto done;
    }
    if (head[2] != LB_IDX_UBYTE) {
        rc = lb_error(LB_EFORMAT, "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                      path, head[2]);
        goto done;
    }
    if (head[3] == 0) {
        rc = lb_error(LB_EFORMAT, "%s: IDX header declares 0 dimensions", path);
        goto done;
    }
    out->ndim = head[3];
    out->dims = lb_malloc(sizeof(uint32_t) * (size_t)out->ndim);
    unsigned char *raw = lb_malloc(4 * (size_t)out->ndim);
    if (!out->dims || !raw) {
        lb_free(raw);
        rc = lb_error(LB_ENOMEM, "%s: out of memory for %d dims", path, out->ndim);
        goto done;
    }
    got = rd(&r, raw, 4 * (size_t)out->ndim);
    if (got != 4 * (long long)out->ndim) {
        lb_free(raw);
        rc = is_gz ? gz_fail(&r, path, "IDX dimensions")
                   : lb_error(LB_EFORMAT, "%s: file ends inside the %d IDX dimensions (truncated)",
                              path, out->ndim);
        goto done;
    }
    /* Product of dims with overflow check; anything above 2^62 is impossible anyway. */
    unsigned long long count = 1;
    int overflow = 0;
    for (int i = 0; i < out->ndim; i++) {
        const unsigned char *b = raw + 4 * i;
        out->dims[i] = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
        if (out->dims[i] && count > (1ULL << 62) / out->dims[i]) overflow = 1;
        else count *= out->dims[i];
    }
    lb_free(raw);
    unsigned long long header = 4 + 4ULL * (unsigned)out->ndim;
    char dimstr[128];
    {
        size_t len = 0;
        dimstr[0] = '\0';
        for (int i = 0; i < out->ndim && len < sizeof dimstr - 16; i++)
            len += (size_t)snprintf(dimstr + len, sizeof dimstr - len, "%s%u", i ? "x" : "",
                                    (unsigned)out->dims[i]);
        if (out->ndim > 0 && len >= sizeof dimstr - 16) snprintf(dimstr + len, sizeof dimstr - len, "x...");
    }
    if (overflow) {
        rc = lb_error(LB_EFORMAT, "%s: IDX dims %s claim more data than any file can hold", path, dimstr);
        goto done;
    }
    if (!is_gz) {
        if (header + count != file_size) {
            rc = lb_error(LB_EFORMAT,
                          "%s: IDX dims %s need %llu data bytes but the file holds %llu (%s)", path,
                          dimstr, count, file_size - header,
                          header + count > file_size ? "truncated, or wrong dims" : "trailing bytes, or wrong dims");
            goto done;
        }
    } else if (count > file_size * GZ_MAX_RATIO) {
        rc = lb_error(LB_EFORMAT,
                      "%s: IDX dims %s claim %llu bytes, more than a %llu-byte gzip file can hold",
                      path, dimstr, count, file_size);
        goto done;
    }
    if (count > (unsigned long long)SIZE_MAX) {
        rc = lb_error(LB_ENOMEM, "%s: %llu bytes do not fit in memory", path, count);
        goto done;
    }
    out->count = (size_t)count;
    out->data = lb_malloc(out->count);
    if (!out->data) {
        rc = lb_error(LB_ENOMEM, "%s: out of memory for %llu bytes", path, count);
        goto done;
    }
    got = rd(&r, out->data, out->count);
    if (got != (long long)out->count) {
        if (is_gz) {
            int errnum = Z_OK;
            const char *msg = gzerror(r.gz, &errnum);
            if (got >= 0 && (errnum == Z_OK || errnum == Z_STREAM_END))
                rc = lb_error(LB_EFORMAT,
                              "%s: IDX dims %s need %zu data bytes but the file holds %lld (truncated, or wrong dims)",
                              path, dimstr, out->count, got);
            else
                rc = lb_error(LB_EFORMAT, "%s: corrupt or truncated gzip data (%s)", path,
                              msg && *msg ? msg : "zlib error");
        } else {
            rc = lb_error(LB_EIO, "%s: read error", path);
        }
        goto done;
    }
    if (is_gz) {
        /* One more read reaches the gzip trailer, where zlib checks the CRC and length. */
        unsigned char extra;
        got = rd(&r, &extra, 1);
        int errnum = Z_OK;
        const char *msg = gzerror(r.gz, &errnum);
        if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
            rc = lb_error(LB_EFORMAT, "%s: corrupt or truncated gzip data (%s)", path,
                          msg && *msg ? msg : "zlib error");
            goto done;
        }
        if (got > 0) {
            /* Read on to the end: corruption there is reported as such, not as extra bytes. */
            unsigned char sink[4096];
            while ((got = rd(&r, sink, sizeof sink)) > 0) {
            }
            msg = gzerror(r.gz, &errnum);
            if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
                rc = lb_error(LB_EFORMAT, "%s: corrupt or truncated gzip data (%s)", path,
                              msg && *msg ? msg : "zlib error");
                goto done;
            }
            rc = lb_error(LB_EFORMAT, "%s: IDX dims %s need %zu data bytes but the file holds more (trailing bytes, or wrong dims)",
                          path, dimstr, out->count);
            goto done;
        }
    }
done:
    if (r.f) fclose(r.f);
    if (r.gz) gzclose(r.gz);
    if (rc != LB_OK) lb_idx_free(out);
    return rc;
}

int lb_idx_write(const char *path, const uint8_t *data, int ndim, const uint32_t *dims, int gzip)
{
    if (ndim < 1 || ndim > 255) return lb_error(LB_EINVAL, "%s: IDX ndim %d outside 1..255", path, ndim);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= dims[i];
    unsigned char head[4] = {0, 0, LB_IDX_UBYTE, (unsigned char)ndim};
    int ok = 1;
    if (gzip) {
        gzFile gz = gzopen(path, "wb");
        if (!gz) return lb_error(LB_EIO, "%s: cannot create (%s)", path, strerror(errno));
        ok = gzwrite(gz, head, 4) == 4;
        for (int i = 0; ok && i < ndim; i++) {
            unsigned char b[4] = {(unsigned char)(dims[i] >> 24), (unsigned char)(dims[i] >> 16),
                                  (unsigned char)(dims[i] >> 8), (unsigned char)dims[i]};
            ok = gzwrite(gz, b, 4) == 4;
        }
        for (size_t done = 0; ok && done < count;) {
            size_t n = count - done > (1u << 30) ? (1u << 30) : count - done;
            ok = gzwrite(gz, data + done, (unsigned)n) == (int)n;
            done += n;
        }
        if (gzclose(gz) != Z_OK) ok = 0;
    } else {
        FILE *f = fopen(path, "wb");
        if (!f) return lb_error(LB_EIO, "%s: cannot create (%s)", path, strerror(errno));
        ok = fwrite(head, 1, 4, f) == 4;
        for (int i = 0; ok && i < ndim; i++) {
            unsigned char b[4] = {(unsigned char)(dims[i] >> 24), (unsigned char)(dims[i] >> 16),
                                  (unsigned char)(dims[i] >> 8), (unsigned char)dims[i]};
            ok = fwrite(b, 1, 4, f) == 4;
        }
        if (ok && count) ok = fwrite(data, 1, count, f) == count;
        if (fclose(f) != 0) ok = 0;
    }
    return ok ? LB_OK : lb_error(LB_EIO, "%s: write failed", path);
}
