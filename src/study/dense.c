/* A dense study (docs/dense.md): every strategy (a loss per location, with or without the
 * head's prior) trained on the same canvases with the same budget and several seeds; each run's
 * record stored in OUT/runs, then results.json, results.csv and report.html. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libra/losses.h"
#include "libra/study.h"

const char *const lb_dense_default_strategies[] = {
    "bce", "bce:alpha=0.75", "sigmoid_focal:gamma=2,alpha=0.25", "ce", "focal:gamma=2",
    "bce:alpha=0.75+noprior", "sigmoid_focal:gamma=2,alpha=0.25+noprior", NULL};

typedef struct dense_strategy {
    char *name;   /* as written: LOSS [+noprior] */
    char *key;    /* the same with the loss canonical: two strategies are the same when equal */
    char *loss;   /* the loss as written */
    int prior;    /* 1: the study's prior; 0: +noprior */
} dense_strategy;

typedef struct dense_job {
    int strategy;
    uint64_t seed;
    char *name;   /* file stem */
    int done;
} dense_job;

struct lb_dense_study {
    lb_dense_study_config c;
    const lb_data *data;
    char trunk[512];
    int n_strategies, n_jobs;
    dense_strategy *strategies;
    dense_job *jobs;
    lb_buf settings;
    int made_runs;             /* this study created OUT/runs (removed again if it stored nothing) */
    char kept[4096];           /* the nearest part of OUT's path that existed before */
};

void lb_dense_study_config_init(lb_dense_study_config *c)
{
    memset(c, 0, sizeof *c);
    lb_train_opts_init(&c->train);
    c->train.arch = NULL;
    c->train.loss = NULL;
    c->train.batch = 32;
    c->train.steps = 600;
    c->train.epochs = 0;
    c->train.threads = 1;
    c->seeds = 3;
    c->seed0 = 1;
    c->prior = 0.01;
    c->n_maps = 4;
    c->out_dir = "results/dense";
}

/* ---- the strategies: LOSS[+noprior], a '|' grid one strategy per point ---- */

static void strategies_free(dense_strategy *s, int n)
{
    for (int i = 0; i < n; i++) {
        lb_free(s[i].name);
        lb_free(s[i].key);
        lb_free(s[i].loss);
    }
    lb_free(s);
}

static int add_point(dense_strategy **out, int *n, int *cap, const char *point, int prior)
{
    lb_buf canon = {0}, name = {0}, key = {0};
    int rc = lb_loss_canonical(point, &canon);
    if (rc != LB_OK) return rc;
    lb_buf_printf(&name, "%s%s", point, prior ? "" : "+noprior");
    lb_buf_printf(&key, "%s%s", canon.p, prior ? "" : "+noprior");
    for (int i = 0; i < *n && rc == LB_OK; i++)
        if (strcmp((*out)[i].key, key.p) == 0)
            rc = lb_error(LB_EINVAL, "strategy '%s' is '%s' again", name.p, (*out)[i].name);
    if (rc == LB_OK && *n == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        dense_strategy *g = lb_realloc(*out, (size_t)nc * sizeof *g);
        if (!g) rc = lb_error(LB_ENOMEM, "dense study: out of memory");
        else *out = g, *cap = nc;
    }
    if (rc == LB_OK) (*out)[(*n)++] = (dense_strategy){lb_buf_take(&name), lb_buf_take(&key), lb_strdup(point), prior};
    lb_buf_free(&canon);
    lb_buf_free(&name);
    lb_buf_free(&key);
    return rc;
}

/* One item of the list: its grid points, each a strategy. */
static int add_item(dense_strategy **out, int *n, int *cap, char *item)
{
    size_t len = strlen(item);
    int prior = 1;
    const char *suffix = "+noprior";
    char *plus = strchr(item, '+');
    if (plus) {
        if (strcmp(plus, suffix) != 0)
            return lb_error(LB_EINVAL, "strategy '%s': a dense strategy is LOSS or LOSS+noprior ('%s' is not known)",
                            item, plus);
        *plus = '\0';
        prior = 0;
    }
    if (!len || !*item) return lb_error(LB_EINVAL, "an empty strategy");
    char **points = NULL;
    int np = 0, rc = lb_grid_expand(item, &points, &np);
    for (int i = 0; i < np && rc == LB_OK; i++) rc = add_point(out, n, cap, points[i], prior);
    for (int i = 0; i < np; i++) lb_free(points[i]);
    lb_free(points);
    if (rc != LB_OK) lb_error_prefix("strategy '%s%s'", item, prior ? "" : suffix);
    return rc;
}

static int parse_strategies(const char *list, dense_strategy **out, int *n)
{
    char **items = NULL;
    int ni = 0, cap = 0, rc = lb_strategy_split(list, &items, &ni);
    *out = NULL, *n = 0;
    for (int i = 0; i < ni && rc == LB_OK; i++) rc = add_item(out, n, &cap, items[i]);
    for (int i = 0; i < ni; i++) lb_free(items[i]);
    lb_free(items);
    if (rc == LB_OK && *n == 0) rc = lb_error(LB_EINVAL, "no strategy given");
    if (rc != LB_OK) {
        strategies_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return rc;
}

static char *default_list(void)
{
    lb_buf b = {0};
    for (int i = 0; lb_dense_default_strategies[i]; i++)
        lb_buf_printf(&b, "%s%s", i ? ";" : "", lb_dense_default_strategies[i]);
    return lb_buf_take(&b);
}

const char *lb_dense_default_strategy_list(void)
{
    static char *list;
    if (!list) list = default_list();
    return list;
}

int lb_dense_study_check(const lb_dense_study_config *c)
{
    dense_strategy *s = NULL;
    int n = 0, rc = parse_strategies(c->strategies ? c->strategies : lb_dense_default_strategy_list(), &s, &n);
    strategies_free(s, n);
    if (rc != LB_OK) return rc;
    if (c->seeds < 1) return lb_error(LB_EINVAL, "seeds %d must be >= 1", c->seeds);
    if (c->train.steps < 1) return lb_error(LB_EINVAL, "a dense study needs a step budget (steps >= 1)");
    if (!(c->prior > 0 && c->prior < 1)) return lb_error(LB_EINVAL, "prior %g must be in (0, 1)", c->prior);
    if (c->n_maps < 0 || c->n_maps > 16) return lb_error(LB_EINVAL, "heat maps %d must be in [0, 16]", c->n_maps);
    return LB_OK;
}

/* Every strategy's loss made (and freed) with d's classes and location counts, so that a bad
 * value is reported before any training. */
static int check_losses(const dense_strategy *s, int n, const lb_dense_set *tr)
{
    int C = tr->n_classes, rc = LB_OK;
    int *counts = lb_calloc((size_t)C + 1, sizeof(int));
    if (!counts) return lb_error(LB_ENOMEM, "dense study: out of memory");
    lb_dense_location_counts(tr, counts);
    for (int i = 0; i < n && rc == LB_OK; i++) {
        lb_loss *L = lb_loss_new(s[i].loss, lb_loss_is_one_vs_all(s[i].loss) ? C : C + 1, counts);
        if (!L) {
            rc = lb_last_status();
            lb_error_prefix("strategy '%s'", s[i].name);
        }
        lb_loss_free(L);
    }
    lb_free(counts);
    return rc;
}

int lb_dense_study_check_data(const lb_dense_study_config *c, const lb_data *d)
{
    if (!d || !d->dense) return lb_error(LB_EINVAL, "a dense study needs dense data (--data dense:SOURCE,...)");
    int rc = lb_dense_study_check(c);
    dense_strategy *s = NULL;
    int n = 0;
    if (rc == LB_OK) rc = parse_strategies(c->strategies ? c->strategies : lb_dense_default_strategy_list(), &s, &n);
    if (rc == LB_OK) rc = check_losses(s, n, &d->dense->train);
    strategies_free(s, n);
    return rc;
}

/* ---- the plan and the output folder ---- */

static int make_settings(lb_dense_study *st)
{
    const lb_dense_study_config *c = &st->c;
    const lb_train_opts *o = &c->train;
    lb_buf *b = &st->settings;
    lb_buf_printf(b, "task=dense\ndata=%s\nimbalance=%s\ndata_seed=%llu\ndata_fingerprint=%016llx\n",
                  c->data && c->data->data ? c->data->data : "?",
                  c->data && c->data->imbalance ? c->data->imbalance : "none",
                  (unsigned long long)st->data->seed, (unsigned long long)lb_data_fingerprint(st->data));
    lb_buf_printf(b, "trunk=%s\nhead=3\nsteps=%ld\nbatch=%d\noptimizer=%s\nlr=%.6g\nweight_decay=%.6g\n", st->trunk,
                  o->steps, o->batch, o->optimizer ? o->optimizer : "adam", o->lr, o->weight_decay);
    lb_buf_printf(b, "schedule=%s\neval_every=%ld\nlog_every=%ld\nthreads=%d\nprior=%.9g\nheat_maps=%d\n",
                  o->schedule ? o->schedule : "constant", o->eval_every, o->log_every, o->threads, c->prior,
                  c->n_maps);
    return lb_buf_status(b, "dense study settings");
}

static int plan_jobs(lb_dense_study *st)
{
    st->n_jobs = st->n_strategies * st->c.seeds;
    if (!(st->jobs = lb_calloc((size_t)st->n_jobs, sizeof *st->jobs)))
        return lb_error(LB_ENOMEM, "dense study: out of memory for %d jobs", st->n_jobs);
    for (int s = 0, j = 0; s < st->n_strategies; s++)
        for (int k = 0; k < st->c.seeds; k++, j++) {
            char slug[256];
            lb_buf name = {0};
            st->jobs[j].strategy = s;
            st->jobs[j].seed = st->c.seed0 + (uint64_t)k;
            lb_buf_printf(&name, "%s-s%llu", lb_slug(st->strategies[s].name, slug, sizeof slug),
                          (unsigned long long)st->jobs[j].seed);
            if (!(st->jobs[j].name = lb_buf_take(&name))) return lb_error(LB_ENOMEM, "dense study: out of memory");
        }
    return LB_OK;
}

static void job_path(const lb_dense_study *st, const dense_job *j, char *buf, size_t size)
{
    snprintf(buf, size, "%s/runs/%s.json", st->c.out_dir, j->name);
}

/* Removes the run records of an earlier study in OUT/runs (--force). */
static int remove_records(const char *runs)
{
    DIR *d = opendir(runs);
    if (!d) return LB_OK;
    struct dirent *e;
    int rc = LB_OK;
    char path[4400];
    while ((e = readdir(d)) && rc == LB_OK) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", runs, e->d_name);
        if (unlink(path) != 0) rc = lb_error(LB_EIO, "cannot remove '%s' of the earlier study", path);
    }
    closedir(d);
    return rc;
}

/* The output folder: new, or an earlier study's: the same settings with resume or as a share
 * (its records reused), else refused unless force. */
static int open_out_dir(lb_dense_study *st)
{
    char runs[4096], path[4200];
    snprintf(runs, sizeof runs, "%s/runs", st->c.out_dir);
    snprintf(path, sizeof path, "%s/settings.txt", runs);
    st->made_runs = access(runs, F_OK) != 0;
    snprintf(st->kept, sizeof st->kept, "%s", st->c.out_dir);
    while (access(st->kept, F_OK) != 0) {
        char *slash = strrchr(st->kept, '/');
        if (!slash) {
            snprintf(st->kept, sizeof st->kept, ".");
            break;
        }
        *slash = '\0';
    }
    int rc = lb_make_dirs(runs);
    if (rc != LB_OK) return rc;
    char *old = NULL;
    size_t n = 0;
    if (access(path, F_OK) == 0 && (rc = lb_read_file(path, 1 << 20, &old, &n)) != LB_OK) return rc;
    int same = old && strcmp(old, st->settings.p) == 0;
    lb_free(old);
    int share = st->c.n_shards > 1, reuse = st->c.resume || share; /* shares fill one folder */
    if (old && !st->c.force && !(same && reuse)) {
        if (same) return lb_error(LB_ESTATE, "'%s' holds this study's runs: --resume to reuse them, --force to replace them", st->c.out_dir);
        return lb_error(LB_ESTATE, "'%s' holds a study of other settings (%s): --force replaces it", st->c.out_dir, path);
    }
    if (old && st->c.force && !st->c.shard && (rc = remove_records(runs)) != LB_OK) return rc;
    if (!old || st->c.force) rc = lb_write_file_atomic(path, st->settings.p, st->settings.n);
    for (int j = 0; j < st->n_jobs && rc == LB_OK && reuse; j++) {
        job_path(st, &st->jobs[j], path, sizeof path);
        st->jobs[j].done = access(path, F_OK) == 0;
    }
    return rc;
}

lb_dense_study *lb_dense_study_new(const lb_dense_study_config *c, const lb_data *d)
{
    if (lb_dense_study_check_data(c, d) != LB_OK) return NULL;
    lb_dense_study *st = lb_calloc(1, sizeof *st);
    if (!st) {
        lb_error(LB_ENOMEM, "dense study: out of memory");
        return NULL;
    }
    st->c = *c;
    st->data = d;
    if (c->train.arch) snprintf(st->trunk, sizeof st->trunk, "%s", c->train.arch);
    else lb_dense_default_trunk(d->dense->spec.stride, st->trunk, sizeof st->trunk);
    int rc = parse_strategies(c->strategies ? c->strategies : lb_dense_default_strategy_list(), &st->strategies,
                              &st->n_strategies);
    if (rc == LB_OK) rc = plan_jobs(st);
    if (rc == LB_OK) rc = make_settings(st);
    if (rc == LB_OK) rc = open_out_dir(st);
    if (rc != LB_OK) {
        lb_dense_study_free(st);
        return NULL;
    }
    return st;
}

/* A folder this study made and stored nothing in goes again (a failed command leaves none). */
static void remove_if_unused(const lb_dense_study *st)
{
    if (!st->made_runs) return;
    char path[4200];
    for (int j = 0; j < st->n_jobs; j++) { /* stored here, or by a forked share */
        job_path(st, &st->jobs[j], path, sizeof path);
        if (access(path, F_OK) == 0) return;
    }
    snprintf(path, sizeof path, "%s/runs/settings.txt", st->c.out_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/runs", st->c.out_dir);
    if (rmdir(path) != 0) return;
    snprintf(path, sizeof path, "%s", st->c.out_dir); /* then each folder made for OUT, deepest first */
    while (strcmp(path, st->kept) != 0 && strcmp(path, ".") != 0 && rmdir(path) == 0) {
        char *slash = strrchr(path, '/');
        if (!slash) break;
        *slash = '\0';
    }
}

void lb_dense_study_free(lb_dense_study *st)
{
    if (!st) return;
    remove_if_unused(st);
    strategies_free(st->strategies, st->n_strategies);
    for (int j = 0; j < st->n_jobs; j++) lb_free(st->jobs[j].name);
    lb_free(st->jobs);
    lb_buf_free(&st->settings);
    lb_free(st);
}

int lb_dense_study_n_jobs(const lb_dense_study *st) { return st->n_jobs; }
void lb_dense_study_set_share(lb_dense_study *st, int shard, int n_shards)
{
    st->c.shard = shard;
    st->c.n_shards = n_shards;
}
int lb_dense_study_n_strategies(const lb_dense_study *st) { return st->n_strategies; }
const char *lb_dense_study_trunk(const lb_dense_study *st) { return st->trunk; }

/* ---- running ---- */

static int stop_requested(void *ctx, const lb_train_progress *p)
{
    (void)p;
    return *(volatile sig_atomic_t *)ctx != 0;
}

/* One job; a stop request ends it early (LB_EINTR: a shortened run is not stored). */
static int run_job(lb_dense_study *st, dense_job *j, volatile sig_atomic_t *stop, lb_dense_record *rec)
{
    const dense_strategy *s = &st->strategies[j->strategy];
    lb_train_opts o = st->c.train;
    o.arch = st->trunk;
    o.loss = s->loss;
    o.seed = j->seed;
    lb_train_hooks hooks = {.ctx = (void *)stop, .on_step = stop_requested};
    int rc = lb_dense_train(&o, st->data, s->prior ? st->c.prior : 0.0, st->c.n_maps, stop ? &hooks : NULL, rec);
    if (rc == LB_OK && stop && *stop) rc = lb_error(LB_EINTR, "stopped during the run");
    if (rc == LB_OK && !(rec->strategy = lb_strdup(s->name))) rc = lb_error(LB_ENOMEM, "dense study: out of memory");
    if (rc != LB_OK) lb_error_prefix("run %s", j->name);
    return rc;
}

int lb_dense_study_run(lb_dense_study *st, const lb_dense_study_events *ev, volatile sig_atomic_t *stop)
{
    int total = 0, done = 0;
    for (int j = 0; j < st->n_jobs; j++) total += st->c.n_shards <= 1 || j % st->c.n_shards == st->c.shard;
    for (int j = 0; j < st->n_jobs; j++) {
        dense_job *job = &st->jobs[j];
        if (st->c.n_shards > 1 && j % st->c.n_shards != st->c.shard) continue;
        if (job->done) {
            done++;
            continue;
        }
        if (stop && *stop) return lb_error(LB_EINTR, "dense study: stopped (%d of %d runs stored)", done, total);
        double t0 = lb_now();
        lb_dense_record rec;
        char path[4200];
        int rc = run_job(st, job, stop, &rec);
        job_path(st, job, path, sizeof path);
        if (rc == LB_OK) rc = lb_dense_record_write_json(&rec, path);
        if (rc == LB_OK) {
            job->done = 1;
            done++;
            if (ev && ev->on_job) ev->on_job(ev->ctx, job->name, &rec, done, total, lb_now() - t0);
        }
        lb_dense_record_free(&rec);
        if (rc != LB_OK) return rc;
    }
    return LB_OK;
}

/* ---- the result ---- */

static int read_records(const lb_dense_study *st, lb_dense_record *recs)
{
    char path[4200];
    for (int j = 0; j < st->n_jobs; j++) {
        job_path(st, &st->jobs[j], path, sizeof path);
        if (access(path, F_OK) != 0)
            return lb_error(LB_EIO, "dense study: run %s has no record (%s); run the study (with --resume) first",
                            st->jobs[j].name, path);
        int rc = lb_dense_record_read_json(&recs[j], path);
        if (rc != LB_OK) return rc;
        if (strcmp(recs[j].strategy, st->strategies[st->jobs[j].strategy].name) != 0)
            return lb_error(LB_EFORMAT, "%s: strategy '%s', expected '%s'", path, recs[j].strategy,
                            st->strategies[st->jobs[j].strategy].name);
    }
    return LB_OK;
}

static int write_results(lb_dense_study *st, lb_dense_record *recs)
{
    const lb_dense_set *te = &st->data->dense->test;
    const lb_dataset *src = st->data->test;
    int nm = st->c.n_maps < te->n ? st->c.n_maps : te->n;
    lb_dense_report_info info = {
        .data = st->c.data && st->c.data->data ? st->c.data->data : "?",
        .settings = st->settings.p,
        .trunk = st->trunk,
        .n_classes = te->n_classes,
        .class_names = (const char *const *)src->class_names,
        .seeds = st->c.seeds,
        .foreground_share = st->data->dense->train.foreground_share,
        .test_foreground_share = te->foreground_share,
        .n_maps = nm, .c = te->c, .h = te->h, .w = te->w, .grid_h = te->grid_h, .grid_w = te->grid_w,
        .pixels = te->pixels,
        .targets = te->targets,
    };
    return lb_dense_report_write(recs, st->n_jobs, &info, st->c.out_dir);
}

int lb_dense_study_write(lb_dense_study *st, lb_buf *summary)
{
    lb_dense_record *recs = lb_calloc((size_t)st->n_jobs, sizeof *recs);
    if (!recs) return lb_error(LB_ENOMEM, "dense study: out of memory for %d records", st->n_jobs);
    int rc = read_records(st, recs);
    if (rc == LB_OK) rc = write_results(st, recs);
    if (rc == LB_OK && summary) rc = lb_dense_summary_text(recs, st->n_jobs, summary);
    for (int j = 0; j < st->n_jobs; j++) lb_dense_record_free(&recs[j]);
    lb_free(recs);
    return rc;
}
