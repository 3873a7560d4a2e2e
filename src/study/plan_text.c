/* The plan as text (libra-compare --plan): phase 1's jobs, and what phase 2 will add. */
#include "study/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int same_text(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* The strategies whose phase-1 jobs include j, joined by ", " (a grid point as "SPEC
 * (point G/N)"). */
static void served_by(const lb_study *st, const lb_job *j, lb_buf *out)
{
    int n = 0;
    for (int i = 0; i < st->n_strat; i++) {
        const lb_strategy *s = &st->strat[i];
        if (strcmp(s->sampler, j->sampler) || !same_text(s->mix, j->mix)) continue;
        for (int g = 0; g < s->n_points; g++) {
            int grid = s->n_points > 1;
            uint64_t last = grid ? st->cfg.seed0 : st->cfg.seed0 + (uint64_t)st->cfg.seeds - 1;
            if (strcmp(s->points[g], j->loss) || j->seed < st->cfg.seed0 || j->seed > last) continue;
            lb_buf_printf(out, "%s%s", n++ ? ", " : "", s->spec);
            if (grid) lb_buf_printf(out, " (point %d/%d)", g + 1, s->n_points);
        }
    }
}

/* What phase 2 adds: each grid's chosen point on the other seeds. */
static void phase_two(const lb_study *st, lb_buf *out)
{
    int grids = 0;
    for (int i = 0; i < st->n_strat; i++) grids += st->strat[i].n_points > 1;
    if (!grids) {
        lb_buf_puts(out, "phase 2: none (no strategy is a grid)\n");
        return;
    }
    if (st->cfg.seeds < 2) {
        lb_buf_printf(out, "phase 2: none (%d grid%s, one seed: the chosen point's run is phase 1's)\n", grids,
                      grids > 1 ? "s" : "");
        return;
    }
    lb_buf_printf(out, "phase 2: after phase 1, each grid's point with the best validation balanced accuracy runs "
                  "on seeds %" PRIu64 "..%" PRIu64 " (%d job%s, planned then, numbered from %d on):",
                  st->cfg.seed0 + 1, st->cfg.seed0 + (uint64_t)st->cfg.seeds - 1, grids * (st->cfg.seeds - 1),
                  grids * (st->cfg.seeds - 1) > 1 ? "s" : "", st->n_jobs);
    for (int i = 0; i < st->n_strat; i++)
        if (st->strat[i].n_points > 1) lb_buf_printf(out, " %s", st->strat[i].spec);
    lb_buf_puts(out, "\n");
}

int lb_study_plan(const lb_study *st, lb_buf *out)
{
    int shards = st->cfg.n_shards > 1;
    lb_buf_printf(out, "phase 1: %d jobs (%d strategies x %d seeds; a grid runs every point on seed %" PRIu64 ")%s\n",
                  st->n_jobs, st->n_strat, st->cfg.seeds, st->cfg.seed0, shards ? "; share = index % N + 1" : "");
    lb_buf_printf(out, "%5s  %-5s%s  %-40s %-16s %-6s %s\n", "index", "seed", shards ? "  share" : "", "training run",
                  "stages", "stored", "strategies");
    for (int i = 0; i < st->n_jobs; i++) {
        const lb_job *j = st->jobs[i];
        char *path = lb__job_path(st, j, 0);
        if (!path) return LB_ENOMEM;
        int stored = access(path, F_OK) == 0;
        lb_free(path);
        char key[512], shard[16] = "";
        snprintf(key, sizeof key, "%s@%s%s%s", j->loss, j->sampler, j->mix ? "~" : "", j->mix ? j->mix : "");
        if (shards) snprintf(shard, sizeof shard, "  %5d", j->index % st->cfg.n_shards + 1);
        lb_buf_printf(out, "%5d  %-5" PRIu64 "%s  %-40s %-16s %-6s ", j->index, j->seed, shard, key,
                      j->stages ? j->stages : "-", stored ? "yes" : "no");
        served_by(st, j, out);
        lb_buf_puts(out, "\n");
    }
    phase_two(st, out);
    return lb_buf_status(out, "the plan");
}
