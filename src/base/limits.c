/* How much memory this process may still take: the address-space and data-segment limits
 * (ulimit -v, ulimit -d) against what it already maps, and the cgroup's memory limit against
 * what the cgroup already uses. */
#include "libra/base.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* A "Key:   1234 kB" line of /proc/self/status, in bytes (0 if absent). */
static uint64_t status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    uint64_t v = 0;
    size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') {
            unsigned long long kb;
            if (sscanf(line + k + 1, "%llu", &kb) == 1) v = (uint64_t)kb * 1024;
            break;
        }
    fclose(f);
    return v;
}

static uint64_t limit_left(int resource, uint64_t used)
{
    struct rlimit r;
    if (getrlimit(resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
    return (uint64_t)r.rlim_cur > used ? (uint64_t)r.rlim_cur - used : 0;
}

/* One number from a cgroup file (UINT64_MAX for "max" or a missing file). */
static uint64_t read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return UINT64_MAX;
    char buf[64] = "";
    unsigned long long v;
    int ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%llu", &v) == 1;
    fclose(f);
    return ok ? (uint64_t)v : UINT64_MAX;
}

/* The cgroup's limit minus its use (v2: memory.max, memory.current; v1: memory.limit_in_bytes,
 * memory.usage_in_bytes). */
static uint64_t cgroup_left(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return UINT64_MAX;
    char line[1024], path[1200];
    uint64_t left = UINT64_MAX;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        int v2 = a[1] == ':', v1 = !strncmp(a + 1, "memory:", 7);
        if (!v2 && !v1) continue;
        snprintf(path, sizeof path, v2 ? "/sys/fs/cgroup%s/memory.max" : "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
                 b + 1);
        uint64_t lim = read_number(path);
        snprintf(path, sizeof path, v2 ? "/sys/fs/cgroup%s/memory.current" : "/sys/fs/cgroup/memory%s/memory.usage_in_bytes",
                 b + 1);
        uint64_t use = read_number(path);
        if (lim != UINT64_MAX && lim < (1ULL << 62)) {
            uint64_t l = use != UINT64_MAX && use < lim ? lim - use : use == UINT64_MAX ? lim : 0;
            if (l < left) left = l;
        }
    }
    fclose(f);
    return left;
}

lb_memory_room lb_memory_headroom(void)
{
    lb_memory_room r;
    r.address_space = limit_left(RLIMIT_AS, status_kb("VmSize"));
    r.data = limit_left(RLIMIT_DATA, status_kb("VmData"));
    r.cgroup = cgroup_left();
    return r;
}
