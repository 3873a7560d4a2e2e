/* Helpers shared by the fuzz targets (fuzz/fuzz_*.c) and by tests/test_fuzz_regress.c, which
 * includes the targets to replay fuzz/regress/ through the very same entry points.
 *
 * libra's loaders take paths, so every target writes its input into a private scratch folder
 * (under $LIBRA_FUZZ_SCRATCH if set, else /dev/shm when it exists: a tmpfs costs no disk
 * I/O per execution) and hands the path to the library. The folder is removed at exit. */
#ifndef LIBRA_FUZZ_COMMON_H
#define LIBRA_FUZZ_COMMON_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A broken invariant is a finding: print it and abort, so libFuzzer saves the input. */
/* Runs a constructor into `out` and gives its status (LB_OK or the stored status). */
#define NEW_OK(out, expr) (((out) = (expr)) != NULL ? LB_OK : lb_last_status())

#define FZ_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__, \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            abort();                                                          \
        }                                                                     \
    } while (0)

static char fz_root[256];

/* Removes dir and everything below it (the scratch tree is at most two levels deep). */
static inline void fz_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[512];
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) fz_rmtree(p);
            else unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static inline void fz_cleanup(void)
{
    if (fz_root[0]) fz_rmtree(fz_root);
    fz_root[0] = '\0';
}

/* The scratch folder of this process, created on first use. */
static inline const char *fz_dir(void)
{
    if (fz_root[0]) return fz_root;
    struct stat st;
    /* A crash skips atexit, so scripts/fuzz.sh points LIBRA_FUZZ_SCRATCH at a folder it
     * removes itself. */
    const char *base = getenv("LIBRA_FUZZ_SCRATCH");
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                   ? "/dev/shm"
                   : (getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(fz_root, sizeof fz_root, "%s/libra-fuzz-XXXXXX", base);
    if (!mkdtemp(fz_root)) {
        perror("libra fuzz: mkdtemp");
        abort();
    }
    atexit(fz_cleanup);
    return fz_root;
}

/* buf = scratch folder + "/" + name. */
static inline const char *fz_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", fz_dir(), name);
    return buf;
}

/* Creates scratch subfolder `name` if needed. */
static inline void fz_mkdir(const char *name)
{
    char p[512];
    fz_path(p, sizeof p, name);
    if (mkdir(p, 0700) != 0 && access(p, F_OK) != 0) {
        perror(p);
        abort();
    }
}

/* Writes n bytes to scratch file `name`; returns its path in buf. A failure here is the
 * machine's, not libra's, so it aborts with the reason rather than fuzzing on. */
static inline const char *fz_write(char *buf, size_t size, const char *name, const void *data, size_t n)
{
    fz_path(buf, size, name);
    FILE *f = fopen(buf, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(buf);
        abort();
    }
    return buf;
}

/* The bytes as a NUL-terminated string (malloc'd; an embedded NUL ends it early). */
static inline char *fz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Whole-file read of a scratch path (malloc'd, *n bytes); NULL if it cannot be read. */
static inline unsigned char *fz_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    unsigned char *p = malloc(cap);
    size_t got;
    while (p && (got = fread(p + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *q = realloc(p, cap *= 2);
            if (!q) free(p);
            p = q;
        }
    }
    fclose(f);
    *n = len;
    return p;
}

#endif
