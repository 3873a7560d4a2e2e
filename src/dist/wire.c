/* What the MPI layer sends, without MPI: a job as text, the order jobs are handed out in, and
 * how a process tells that an MPI launcher started it. */
#include "dist/internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "libra/data.h"

int lb__job_encode(const lb_job *j, lb_buf *out)
{
    lb_buf_printf(out, "%d\n%" PRIu64 "\n%s\n%s\n%s\n%s\n%s\n%d\n", j->index, j->seed, j->loss, j->sampler,
                  j->mix ? j->mix : "", j->stages ? j->stages : "", j->name, j->oracle);
    return lb_buf_status(out, "a job's message");
}

int lb__job_decode(char *text, lb_job *out)
{
    char *line[8];
    char *p = text;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 8; i++) {
        char *nl = p ? strchr(p, '\n') : NULL;
        if (!nl) return lb_error(LB_EFORMAT, "a job's message has %d lines, expected 8", i);
        *nl = '\0';
        line[i] = p;
        p = nl + 1;
    }
    char *end;
    long index = strtol(line[0], &end, 10);
    if (*end || end == line[0] || index < 0) return lb_error(LB_EFORMAT, "a job's message: index '%s'", line[0]);
    uint64_t seed = strtoull(line[1], &end, 10);
    if (*end || end == line[1]) return lb_error(LB_EFORMAT, "a job's message: seed '%s'", line[1]);
    if (!line[2][0] || !line[3][0] || !line[6][0]) return lb_error(LB_EFORMAT, "a job's message without a loss, sampler or name");
    long oracle = strtol(line[7], &end, 10); /* which training set: the study's (0) or an oracle's */
    if (*end || end == line[7] || oracle < 0 || oracle > 2)
        return lb_error(LB_EFORMAT, "a job's message: oracle '%s' (0, 1 or 2)", line[7]);
    out->index = (int)index;
    out->seed = seed;
    out->loss = line[2];
    out->sampler = line[3];
    out->mix = line[4][0] ? line[4] : NULL;
    out->stages = line[5][0] ? line[5] : NULL;
    out->name = line[6];
    out->oracle = (int)oracle;
    return LB_OK;
}

double lb__job_cost(const lb_job *j)
{
    double c = 1.0;
    if (j->sampler && lb_synth_is(j->sampler)) c += 0.5;
    for (const char *p = j->stages; p && *p; p += strcspn(p, "+"), p += *p == '+') c += 0.1;
    return c;
}

void lb__jobs_by_cost(lb_job *const *todo, int n, lb_job **out)
{
    for (int i = 0; i < n; i++) { /* insertion sort: stable, and a phase has few jobs */
        lb_job *j = todo[i];
        double c = lb__job_cost(j);
        int k = i;
        while (k > 0 && lb__job_cost(out[k - 1]) < c) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = j;
    }
}

/* A decimal environment variable, or -1. */
static long env_long(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long x = v && *v ? strtol(v, &end, 10) : -1;
    return v && *v && !*end && x >= 0 ? x : -1;
}

int lb__dist_launcher(int *size, int *rank, const char **var)
{
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL};
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", NULL};
    for (int i = 0; sizes[i]; i++) {
        long s = env_long(sizes[i]), r = env_long(ranks[i]);
        if (s < 0) continue;
        *size = (int)s;
        *rank = r >= 0 ? (int)r : 0;
        *var = sizes[i];
        return 1;
    }
    long r = env_long("PMIX_RANK");
    if (r < 0) return 0;
    *size = 0;
    *rank = (int)r;
    *var = "PMIX_RANK";
    return 1;
}
