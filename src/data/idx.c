/* IDX files (LeCun's format of MNIST / Fashion-MNIST), raw or gzip-compressed.
 * Header: 0, 0, type, ndim, then ndim big-endian uint32 dims, then the data row-major.
 * Writing formats the whole file in memory and writes it atomically (lb_write_file_atomic). */
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

/* One IDX file being read: the reader and what is known about the file so far. */
typedef struct {
    const char *path;
    reader r;
    int is_gz;
    unsigned long long file_size;
    char dimstr[128]; /* the dims as "60000x28x28", for messages */
} idx_file;

/* 1 if zlib reports no error on the stream (the end of the stream is not one). */
static int gz_ok(reader *r)
{
    int errnum = Z_OK;
    gzerror(r->gz, &errnum);
    return errnum == Z_OK || errnum == Z_STREAM_END;
}

/* The message for gzip data that zlib found corrupt. */
static int gz_corrupt(reader *r, const char *path)
{
    int errnum = Z_OK;
    const char *msg = gzerror(r->gz, &errnum);
    return lb_error(LB_EFORMAT, "%s: corrupt or truncated gzip data (%s)", path, msg && *msg ? msg : "zlib error");
}

/* Opens the file, raw or gzip (told apart by the gzip signature), and records its size. */
static int idx_open(idx_file *s)
{
    FILE *f = fopen(s->path, "rb");
    if (!f) return lb_error(LB_EIO, "%s: cannot open (%s)", s->path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return lb_error(LB_EIO, "%s: not a regular file", s->path);
    }
    s->file_size = (unsigned long long)st.st_size;
    unsigned char sig[2] = {0, 0};
    size_t nsig = fread(sig, 1, 2, f);
    s->is_gz = nsig == 2 && sig[0] == 0x1f && sig[1] == 0x8b;
    if (s->is_gz) {
        fclose(f);
        s->r.gz = gzopen(s->path, "rb");
        if (!s->r.gz) return lb_error(LB_EIO, "%s: cannot open as gzip (%s)", s->path, strerror(errno));
    } else {
        rewind(f);
        s->r.f = f;
    }
    return LB_OK;
}

/* Reads and checks the magic number; sets out->ndim. */
static int read_magic(idx_file *s, lb_idx *out)
{
    unsigned char head[4];
    long long got = rd(&s->r, head, 4);
    if (got != 4)
        return s->is_gz ? gz_fail(&s->r, s->path, "IDX magic number")
                        : lb_error(LB_EFORMAT, "%s: %llu bytes, too short for an IDX header",
                                   s->path, s->file_size);
    if (head[0] != 0 || head[1] != 0)
        return lb_error(LB_EFORMAT, "%s: wrong magic number %02x %02x %02x %02x (an IDX file starts with 00 00)",
                        s->path, head[0], head[1], head[2], head[3]);
    if (head[2] != LB_IDX_UBYTE)
        return lb_error(LB_EFORMAT, "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                        s->path, head[2]);
    if (head[3] == 0) return lb_error(LB_EFORMAT, "%s: IDX header declares 0 dimensions", s->path);
    out->ndim = head[3];
    return LB_OK;
}

/* Reads the big-endian dims into out->dims; *count is their product unless *overflow. */
static int read_dims(idx_file *s, lb_idx *out, unsigned long long *count, int *overflow)
{
    out->dims = lb_malloc(sizeof(uint32_t) * (size_t)out->ndim);
    unsigned char *raw = lb_malloc(4 * (size_t)out->ndim);
    if (!out->dims || !raw) {
        lb_free(raw);
        return lb_error(LB_ENOMEM, "%s: out of memory for %d dims", s->path, out->ndim);
    }
    long long got = rd(&s->r, raw, 4 * (size_t)out->ndim);
    if (got != 4 * (long long)out->ndim) {
        lb_free(raw);
        return s->is_gz ? gz_fail(&s->r, s->path, "IDX dimensions")
                        : lb_error(LB_EFORMAT, "%s: file ends inside the %d IDX dimensions (truncated)",
                                   s->path, out->ndim);
    }
    /* Product of dims with overflow check; anything above 2^62 is impossible anyway. */
    *count = 1;
    *overflow = 0;
    for (int i = 0; i < out->ndim; i++) {
        const unsigned char *b = raw + 4 * i;
        out->dims[i] = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
        if (out->dims[i] && *count > (1ULL << 62) / out->dims[i]) *overflow = 1;
        else *count *= out->dims[i];
    }
    lb_free(raw);
    return LB_OK;
}

/* Writes the dims as "60000x28x28" into s->dimstr, cut short with "x..." when too long. */
static void format_dims(idx_file *s, const lb_idx *x)
{
    char *dimstr = s->dimstr;
    size_t len = 0;
    dimstr[0] = '\0';
    for (int i = 0; i < x->ndim && len < sizeof s->dimstr - 16; i++)
        len += (size_t)snprintf(dimstr + len, sizeof s->dimstr - len, "%s%u", i ? "x" : "", (unsigned)x->dims[i]);
    if (x->ndim > 0 && len >= sizeof s->dimstr - 16) snprintf(dimstr + len, sizeof s->dimstr - len, "x...");
}

/* Refuses a data size the file cannot hold (exactly, for a raw file) or memory cannot. */
static int check_count(idx_file *s, int ndim, unsigned long long count, int overflow)
{
    unsigned long long header = 4 + 4ULL * (unsigned)ndim;
    if (overflow)
        return lb_error(LB_EFORMAT, "%s: IDX dims %s claim more data than any file can hold", s->path, s->dimstr);
    if (!s->is_gz) {
        if (header + count != s->file_size)
            return lb_error(LB_EFORMAT,
                            "%s: IDX dims %s need %llu data bytes but the file holds %llu (%s)", s->path,
                            s->dimstr, count, s->file_size - header,
                            header + count > s->file_size ? "truncated, or wrong dims"
                                                          : "trailing bytes, or wrong dims");
    } else if (count > s->file_size * GZ_MAX_RATIO) {
        return lb_error(LB_EFORMAT,
                        "%s: IDX dims %s claim %llu bytes, more than a %llu-byte gzip file can hold",
                        s->path, s->dimstr, count, s->file_size);
    }
    if (count > (unsigned long long)SIZE_MAX)
        return lb_error(LB_ENOMEM, "%s: %llu bytes do not fit in memory", s->path, count);
    return LB_OK;
}

/* Allocates out->data and reads the count data bytes into it. */
static int read_data(idx_file *s, lb_idx *out, unsigned long long count)
{
    out->count = (size_t)count;
    out->data = lb_malloc(out->count);
    if (!out->data) return lb_error(LB_ENOMEM, "%s: out of memory for %llu bytes", s->path, count);
    long long got = rd(&s->r, out->data, out->count);
    if (got == (long long)out->count) return LB_OK;
    if (!s->is_gz) return lb_error(LB_EIO, "%s: read error", s->path);
    if (got >= 0 && gz_ok(&s->r))
        return lb_error(LB_EFORMAT,
                        "%s: IDX dims %s need %zu data bytes but the file holds %lld (truncated, or wrong dims)",
                        s->path, s->dimstr, out->count, got);
    return gz_corrupt(&s->r, s->path);
}

/* Reads past the data of a gzip file: zlib checks the CRC and length only at the trailer,
 * and any byte still there means the dims were wrong. */
static int check_gz_end(idx_file *s, size_t count)
{
    unsigned char extra;
    long long got = rd(&s->r, &extra, 1);
    if (got < 0 || !gz_ok(&s->r)) return gz_corrupt(&s->r, s->path);
    if (got == 0) return LB_OK;
    /* Read on to the end: corruption there is reported as such, not as extra bytes. */
    unsigned char sink[4096];
    while ((got = rd(&s->r, sink, sizeof sink)) > 0) {
    }
    if (got < 0 || !gz_ok(&s->r)) return gz_corrupt(&s->r, s->path);
    return lb_error(LB_EFORMAT, "%s: IDX dims %s need %zu data bytes but the file holds more (trailing bytes, or wrong dims)",
                    s->path, s->dimstr, count);
}

int lb_idx_read(lb_idx *out, const char *path)
{
    memset(out, 0, sizeof *out);
    idx_file s = {path, {NULL, NULL}, 0, 0, ""};
    int rc = idx_open(&s);
    if (rc != LB_OK) return rc;
    unsigned long long count = 0;
    int overflow = 0;
    rc = read_magic(&s, out);
    if (rc == LB_OK) rc = read_dims(&s, out, &count, &overflow);
    if (rc == LB_OK) {
        format_dims(&s, out);
        rc = check_count(&s, out->ndim, count, overflow);
    }
    if (rc == LB_OK) rc = read_data(&s, out, count);
    if (rc == LB_OK && s.is_gz) rc = check_gz_end(&s, out->count);
    if (s.r.f) fclose(s.r.f);
    if (s.r.gz) gzclose(s.r.gz);
    if (rc != LB_OK) lb_idx_free(out);
    return rc;
}

/* The header of an IDX ubyte file of these dims into head (4 + 4 * ndim bytes). */
static size_t idx_header(unsigned char *head, int ndim, const uint32_t *dims)
{
    head[0] = head[1] = 0;
    head[2] = LB_IDX_UBYTE;
    head[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        unsigned char *b = head + 4 + 4 * i;
        b[0] = (unsigned char)(dims[i] >> 24);
        b[1] = (unsigned char)(dims[i] >> 16);
        b[2] = (unsigned char)(dims[i] >> 8);
        b[3] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)ndim;
}

/* head then data through one gzip stream (deflate's default level, as gzopen "wb") into a
 * new buffer *out of *n bytes. */
static int gzip_memory(const char *path, const unsigned char *head, size_t nhead, const uint8_t *data, size_t count,
                       unsigned char **out, size_t *n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return lb_error(LB_ENOMEM, "%s: cannot start gzip compression", path);
    size_t cap = (size_t)deflateBound(&z, (uLong)(nhead + count)) + 64;
    unsigned char *buf = lb_malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return lb_error(LB_ENOMEM, "%s: out of memory for %zu compressed bytes", path, cap);
    }
    const unsigned char *parts[2] = {head, data};
    size_t sizes[2] = {nhead, count}, at = 0, done = 0;
    int k = 0, zr = Z_OK;
    for (;;) {
        if (z.avail_in == 0) { /* the next chunk of at most 1 GiB (avail_in is an unsigned) */
            while (k < 2 && at == sizes[k]) {
                k++;
                at = 0;
            }
            if (k < 2) {
                size_t chunk = sizes[k] - at > (1u << 30) ? (1u << 30) : sizes[k] - at;
                z.next_in = (unsigned char *)parts[k] + at;
                z.avail_in = (uInt)chunk;
                at += chunk;
            }
        }
        int finishing = k >= 2 || (k == 1 && at == sizes[1]);
        size_t room = cap - done > (1u << 30) ? (1u << 30) : cap - done;
        z.next_out = buf + done;
        z.avail_out = (uInt)room;
        zr = deflate(&z, finishing ? Z_FINISH : Z_NO_FLUSH);
        done += room - z.avail_out;
        if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR) || (zr == Z_BUF_ERROR && finishing) || done == cap)
            break;
    }
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        lb_free(buf);
        return lb_error(LB_EIO, "%s: gzip compression failed (zlib %d)", path, zr);
    }
    *out = buf;
    *n = done;
    return LB_OK;
}

int lb_idx_write(const char *path, const uint8_t *data, int ndim, const uint32_t *dims, int gzip)
{
    if (ndim < 1 || ndim > 255) return lb_error(LB_EINVAL, "%s: IDX ndim %d outside 1..255", path, ndim);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] && count > SIZE_MAX / 2 / dims[i])
            return lb_error(LB_EINVAL, "%s: IDX dims too large to write", path);
        count *= dims[i];
    }
    unsigned char head[4 + 4 * 255];
    size_t nhead = idx_header(head, ndim, dims), n = 0;
    unsigned char *file = NULL;
    int rc = LB_OK;
    if (gzip) {
        rc = gzip_memory(path, head, nhead, data, count, &file, &n);
    } else {
        n = nhead + count;
        file = lb_malloc(n);
        if (!file) rc = lb_error(LB_ENOMEM, "%s: out of memory for %zu bytes", path, n);
        else {
            memcpy(file, head, nhead);
            if (count) memcpy(file + nhead, data, count);
        }
    }
    /* through a temporary file beside it and a rename: a reader never sees half a file */
    if (rc == LB_OK) rc = lb_write_file_atomic(path, file, n);
    lb_free(file);
    return rc;
}
