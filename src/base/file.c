/* Files: the one atomic write of libra (checkpoints, result files and the programs' outputs
 * all go through it, so every file is either the old one or the whole new one), the one
 * whole-file reader, and the clock. */
#include "libra/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void sync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    } else return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* makes the rename itself durable; best effort */
        close(fd);
    }
}

/* This machine's name as a file-name word ([A-Za-z0-9-], others as '_'; "host" if it has
 * none): processes of several machines may write into one shared folder (libra-compare
 * --only), and a pid names a process on one machine only. */
static void host_word(char *out, size_t size)
{
    char h[256] = "";
    if (gethostname(h, sizeof h - 1) != 0 || !h[0]) strcpy(h, "host");
    size_t i = 0;
    for (; h[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)h[i];
        out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ? (char)c : '_';
    }
    out[i] = '\0';
}

/* Removes PATH.tmp.<pid>.<host> files beside path whose process (on this machine) is gone:
 * a process killed in the middle of a write (SIGKILL, power loss) leaves its temporary file
 * behind, and repeated kills must not pile them up. A live writer's file is never touched
 * (kill(pid, 0)), nor one of another machine (its host word differs; a name without one is an
 * older libra's, taken as this machine's); a writer in another PID namespace could look dead,
 * and would then fail its rename cleanly. */
static void remove_stale_temps(const char *path, const char *host)
{
    char dir[4096];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 1, blen = strlen(base);
    if (dlen + 1 >= sizeof dir) return;
    if (!slash) strcpy(dir, ".");
    else if (dlen == 0) strcpy(dir, "/");
    else {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    DIR *d = opendir(dir);
    if (!d) return;
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, blen) != 0 || strncmp(nm + blen, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(nm + blen + 5, &end, 10);
        if (end == nm + blen + 5 || pid <= 0 || pid == (long)self) continue;
        if (*end && (*end != '.' || strcmp(end + 1, host) != 0)) continue; /* another machine's, or not ours */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[4096 + 256];
        snprintf(full, sizeof full, "%s/%s", dir, nm);
        unlink(full); /* best effort */
    }
    closedir(d);
}

/* A test hook (docs/reliability.md): with LIBRA_TEST_PAUSE_WRITE=STAGE:SUFFIX in the
 * environment, a write to a path ending in SUFFIX stops at STAGE (open: the temporary file
 * exists, nothing written; half: half the bytes written; written: all written, not synced;
 * synced: synced, not renamed; renamed: renamed, directory not synced), creates PATH.paused
 * and waits to be killed, so that a test can kill -9 a writer exactly there. */
static void maybe_pause(const char *path, const char *stage)
{
    static int read_env;
    static char want[64], suffix[256];
    if (!read_env) {
        read_env = 1;
        const char *v = getenv("LIBRA_TEST_PAUSE_WRITE"), *colon = v ? strchr(v, ':') : NULL;
        if (colon && (size_t)(colon - v) < sizeof want && strlen(colon + 1) < sizeof suffix) {
            memcpy(want, v, (size_t)(colon - v));
            want[colon - v] = '\0';
            strcpy(suffix, colon + 1);
        }
    }
    size_t lp = strlen(path), ls = strlen(suffix);
    if (!want[0] || strcmp(want, stage) != 0 || ls > lp || strcmp(path + lp - ls, suffix) != 0) return;
    char marker[4200];
    snprintf(marker, sizeof marker, "%s.paused", path);
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
    for (;;) pause();
}

int lb_write_file_atomic(const char *path, const void *data, size_t n)
{
    if (!path || !*path) return lb_error(LB_EINVAL, "write: empty path");
    size_t len = strlen(path);
    char host[64];
    host_word(host, sizeof host);
    char *tmp = lb_malloc(len + 32 + sizeof host);
    if (!tmp) return lb_error(LB_ENOMEM, "%s: out of memory", path);
    /* PATH.tmp.<pid>.<host>: one name per process of each machine, so a stale one can be
     * traced to a dead writer */
    remove_stale_temps(path, host);
    snprintf(tmp, len + 32 + sizeof host, "%s.tmp.%ld.%s", path, (long)getpid(), host);
    unlink(tmp); /* left by an earlier process that had this pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        int e = errno;
        lb_free(tmp);
        return lb_error(LB_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    const char *failed = NULL;
    const unsigned char *p = data;
    size_t done = 0;
    maybe_pause(path, "open");
    while (!failed && done < n) {
        size_t want = done < n / 2 ? n / 2 - done : n - done; /* two halves, for the test hook */
        ssize_t k = write(fd, p + done, want ? want : n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) failed = "write";
        else done += (size_t)k;
        if (done == n / 2) maybe_pause(path, "half");
    }
    maybe_pause(path, "written");
    if (!failed && fchmod(fd, 0644) != 0) failed = "chmod"; /* created 0600 until complete */
    if (!failed && fsync(fd) != 0) failed = "fsync";
    if (!failed) maybe_pause(path, "synced");
    int e = errno;
    if (close(fd) != 0 && !failed) {
        failed = "close";
        e = errno;
    }
    if (!failed && rename(tmp, path) != 0) {
        failed = "rename";
        e = errno;
    }
    if (failed) {
        unlink(tmp);
        lb_free(tmp);
        return lb_error(LB_EIO, "%s: %s failed: %s (the previous file, if any, is unchanged)", path, failed,
                        strerror(e));
    }
    lb_free(tmp);
    maybe_pause(path, "renamed");
    sync_dir_of(path);
    return LB_OK;
}

int lb_read_file(const char *path, size_t max_bytes, char **data, size_t *n)
{
    *data = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return lb_error(LB_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lb_error(LB_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
        close(fd);
        return lb_error(LB_EFORMAT, "%s: %lld bytes, more than the %zu this reader takes", path,
                        (long long)st.st_size, max_bytes);
    }
    char *p = lb_malloc(size + 1);
    if (!p) {
        close(fd);
        return lb_error(LB_ENOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, p + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    int e = errno;
    close(fd);
    if (got != size) {
        lb_free(p);
        return lb_error(LB_EIO, "%s: read failed after %zu of %zu bytes%s%s", path, got, size, got < size ? ": " : "",
                        got < size ? strerror(e) : "");
    }
    p[size] = '\0';
    *data = p;
    *n = size;
    return LB_OK;
}

int lb_check_output_dir(const char *dir)
{
    if (!dir || !*dir) return lb_error(LB_EINVAL, "empty output folder name");
    char *p = lb_strdup(dir);
    if (!p) return lb_error(LB_ENOMEM, "output folder '%s': out of memory", dir);
    int rc = LB_OK;
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) rc = lb_error(LB_EIO, "'%s' is not a folder", p);
            else if (access(p, W_OK | X_OK) != 0) rc = lb_error(LB_EIO, "'%s' is not writable: %s", p, strerror(errno));
            break;
        }
        if (errno != ENOENT) {
            rc = lb_error(LB_EIO, "'%s': %s", p, strerror(errno));
            break;
        }
        char *slash = strrchr(p, '/');
        while (slash && slash > p && slash[1] == '\0') { /* trailing slashes */
            *slash = '\0';
            slash = strrchr(p, '/');
        }
        if (!slash) {
            strcpy(p, ".");
        } else if (slash == p) {
            p[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    lb_free(p);
    return rc;
}

int lb_make_dirs(const char *dir)
{
    char *p = lb_strdup(dir);
    if (!p) return lb_error(LB_ENOMEM, "folder '%s': out of memory", dir);
    int rc = LB_OK;
    for (char *s = p + 1; rc == LB_OK; s++)
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            struct stat st;
            if (stat(p, &st) != 0 && mkdir(p, 0755) != 0 && errno != EEXIST)
                rc = lb_error(LB_EIO, "cannot create '%s': %s", p, strerror(errno));
            else if (stat(p, &st) == 0 && !S_ISDIR(st.st_mode))
                rc = lb_error(LB_EIO, "'%s' is not a folder", p);
            *s = c;
            if (!c) break;
        }
    lb_free(p);
    return rc;
}

double lb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
