/* The study: its configuration and plan, the output folder, the settings every run shares,
 * storing and reusing records, and the phases of execution (grids chosen in between). */
#include "study/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void lb_study_config_init(lb_study_config *c)
{
    memset(c, 0, sizeof *c);
    c->seeds = 5;
    c->seed0 = 1;
    lb_train_opts_init(&c->train);
    c->train.steps = 1500;
    c->target_recall = LB_STUDY_TARGET_RECALL;
    c->train.threads = 1;
    c->out_dir = "results/study";
}

/* ---- strategies ---- */

/* Parses the strategy list into st->strat, refusing duplicates (same canonical key). */
static int parse_strategies(lb_study *st, const char *list)
{
    char **items = NULL;
    int n = 0, rc = lb_strategy_split(list, &items, &n);
    if (rc != LB_OK) return rc;
    st->strat = lb_calloc((size_t)n, sizeof *st->strat);
    st->keys = lb_calloc((size_t)n, sizeof *st->keys);
    if (!st->strat || !st->keys) rc = lb_error(LB_ENOMEM, "study: out of memory");
    for (int i = 0; rc == LB_OK && i < n; i++) {
        if ((rc = lb_strategy_parse(&st->strat[i], items[i])) != LB_OK) break;
        st->n_strat = i + 1;
        lb_buf key = {0};
        rc = lb_strategy_key(&st->strat[i], &key);
        st->keys[i] = rc == LB_OK ? lb_buf_take(&key) : NULL;
        lb_buf_free(&key);
        if (rc == LB_OK && !st->keys[i]) rc = LB_ENOMEM;
        for (int k = 0; rc == LB_OK && k < i; k++)
            if (!strcmp(st->keys[k], st->keys[i]))
                rc = lb_error(LB_EINVAL,
                              "strategy '%s' (number %d) is the same as '%s' (number %d): give each strategy once",
                              items[i], i + 1, items[k], k + 1);
    }
    for (int i = 0; i < n; i++) lb_free(items[i]);
    lb_free(items);
    return rc;
}

/* The length of a key's training part (up to its first "+<letter>": stages, +posthoc). */
static size_t training_part(const char *key)
{
    const char *p = key;
    while ((p = strchr(p, '+')) && !isalpha((unsigned char)p[1])) p++;
    return p ? (size_t)(p - key) : strlen(key);
}

/* +fsmote's control is +crt of the same model with the same steps: a study with one has the
 * other (Kang et al.'s re-trained classifier is what feature synthesis must beat). */
static int check_fsmote_controls(const lb_study *st)
{
    for (int i = 0; i < st->n_strat; i++) {
        lb_stage list[LB_MAX_STAGES];
        int n = 0;
        if (!st->strat[i].stages || lb_stage_parse_list(st->strat[i].stages, list, LB_MAX_STAGES, &n) != LB_OK) continue;
        for (int k = 0; k < n; k++) {
            if (list[k].kind != LB_STAGE_FSMOTE) continue;
            char crt[64];
            snprintf(crt, sizeof crt, list[k].steps > 0 ? "crt:steps=%ld" : "crt", list[k].steps);
            int found = 0;
            size_t len = training_part(st->keys[i]);
            for (int j = 0; j < st->n_strat && !found; j++)
                found = training_part(st->keys[j]) == len && !strncmp(st->keys[j], st->keys[i], len) &&
                        lb__in_list(st->strat[j].stages, crt);
            if (!found)
                return lb_error(LB_EINVAL, "strategy '%s': +%s needs its control +%s of the same model in the study "
                                           "(add it to this strategy or give another strategy with it)",
                                st->strat[i].spec, list[k].name, crt);
        }
    }
    return LB_OK;
}

static void free_strategies(lb_study *st)
{
    for (int i = 0; i < st->n_strat; i++) {
        lb_strategy_free(&st->strat[i]);
        lb_free(st->keys ? st->keys[i] : NULL);
    }
    lb_free(st->strat);
    lb_free(st->keys);
    st->strat = NULL;
    st->keys = NULL;
    st->n_strat = 0;
}

int lb_study_check(const lb_study_config *c)
{
    if (c->seeds < 1) return lb_error(LB_EINVAL, "study: %d seeds (need at least 1)", c->seeds);
    if (c->train.steps <= 0 && c->train.epochs <= 0) return lb_error(LB_EINVAL, "study: no step budget");
    if (c->train.batch < 1) return lb_error(LB_EINVAL, "study: batch size %d", c->train.batch);
    if (!(c->target_recall > 0 && c->target_recall <= 1))
        return lb_error(LB_EINVAL, "study: the target recall %g must be in (0, 1]", c->target_recall);
    if (c->n_shards < 0 || (c->n_shards > 1 && (c->shard < 0 || c->shard >= c->n_shards)))
        return lb_error(LB_EINVAL, "study: shard %d of %d (need 1 <= I <= N in --only I/N)", c->shard + 1, c->n_shards);
    if (c->n_shards > 1 && c->force) /* shards sharing a folder must never empty it under each other */
        return lb_error(LB_EINVAL, "study: --force with --only: remove the old study from the output folder (or "
                                   "choose another --out) before starting the shards");
    int rc = lb_arch_check(c->train.arch);
    if (rc != LB_OK) return rc;
    lb_study probe;
    memset(&probe, 0, sizeof probe);
    rc = parse_strategies(&probe, c->strategies ? c->strategies : lb_default_strategy_list());
    if (rc == LB_OK) rc = check_fsmote_controls(&probe);
    free_strategies(&probe);
    return rc;
}

/* ---- the plan ---- */

static int same_text(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* Adds the stages of `stages` ('+'-joined canonical names) that the job does not have yet. */
static int merge_stages(lb_job *j, const char *stages)
{
    for (const char *p = stages; p && *p;) {
        size_t n = strcspn(p, "+");
        int have = 0;
        for (const char *q = j->stages; q && *q && !have;) {
            size_t m = strcspn(q, "+");
            have = m == n && !memcmp(p, q, n);
            q += m + (q[m] == '+');
        }
        if (!have) {
            char *joined = j->stages ? lb_strfmt("%s+%.*s", j->stages, (int)n, p) : lb_strndup(p, n);
            if (!joined) return lb_error(LB_ENOMEM, "study: out of memory");
            lb_free(j->stages);
            j->stages = joined;
        }
        p += n + (p[n] == '+');
    }
    return LB_OK;
}

/* A new job of the plan for strategy s's training run with this loss and seed. */
static lb_job *new_job(lb_study *st, const lb_strategy *s, const char *loss, uint64_t seed)
{
    if (st->n_jobs == st->cap_jobs) {
        int cap = st->cap_jobs ? 2 * st->cap_jobs : 32;
        lb_job **p = lb_realloc(st->jobs, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        st->jobs = p;
        st->cap_jobs = cap;
    }
    lb_job *j = lb_calloc(1, sizeof *j);
    char *key = s->oracle ? lb_strdup(s->oracle == 2 ? "oracle_full" : "oracle")
                          : lb_strfmt("%s@%s%s%s", loss, s->sampler, s->mix ? "~" : "", s->mix ? s->mix : "");
    char *slug = key ? lb_malloc(strlen(key) + 8) : NULL;
    if (j && slug) {
        j->loss = lb_strdup(loss);
        j->sampler = lb_strdup(s->sampler);
        j->mix = s->mix ? lb_strdup(s->mix) : NULL;
        j->name = lb_strfmt("%s-s%" PRIu64, lb_slug(key, slug, strlen(key) + 8), seed);
    }
    lb_free(key);
    lb_free(slug);
    if (!j || !j->loss || !j->sampler || !j->name || (s->mix && !j->mix)) {
        if (j) lb__job_free(j);
        return NULL;
    }
    j->seed = seed;
    j->oracle = s->oracle;
    j->index = st->n_jobs;
    st->jobs[st->n_jobs++] = j;
    return j;
}

/* The job for strategy s's training run (loss, sampler, mixing, seed), added if new; it runs
 * every stage any strategy sharing it asks for. */
lb_job *lb__study_job(lb_study *st, const lb_strategy *s, const char *loss, uint64_t seed)
{
    lb_job *j = NULL;
    for (int i = 0; i < st->n_jobs && !j; i++) {
        lb_job *c = st->jobs[i];
        if (c->seed == seed && c->oracle == s->oracle && !strcmp(c->loss, loss) && !strcmp(c->sampler, s->sampler) &&
            same_text(c->mix, s->mix))
            j = c;
    }
    if (!j && !(j = new_job(st, s, loss, seed))) {
        lb_error(LB_ENOMEM, "study: out of memory planning job %d", st->n_jobs + 1);
        return NULL;
    }
    char *before = j->stages ? lb_strdup(j->stages) : NULL;
    if ((j->stages && !before) || merge_stages(j, s->stages) != LB_OK) {
        lb_free(before);
        lb_error(LB_ENOMEM, "study: out of memory planning job %d", st->n_jobs + 1);
        return NULL;
    }
    if (j->done && !same_text(before, j->stages)) j->done = 0; /* a stage it has not run yet */
    lb_free(before);
    return j;
}

void lb__job_free(lb_job *j)
{
    lb_free(j->loss);
    lb_free(j->sampler);
    lb_free(j->mix);
    lb_free(j->stages);
    lb_free(j->name);
    lb_free(j);
}

/* Phase 1: every strategy's seeds, or, for a grid, all its points on the first seed. */
static int plan_first_phase(lb_study *st)
{
    for (int i = 0; i < st->n_strat; i++) {
        const lb_strategy *s = &st->strat[i];
        int n = s->n_points > 1 ? s->n_points : st->cfg.seeds;
        for (int k = 0; k < n; k++) {
            const char *loss = s->n_points > 1 ? s->points[k] : s->points[0];
            uint64_t seed = st->cfg.seed0 + (uint64_t)(s->n_points > 1 ? 0 : k);
            if (!lb__study_job(st, s, loss, seed)) return LB_ENOMEM;
        }
    }
    st->chosen = lb_calloc((size_t)st->n_strat + 1, sizeof *st->chosen);
    st->grid_vals = lb_calloc((size_t)st->n_strat + 1, sizeof *st->grid_vals);
    return st->chosen && st->grid_vals ? LB_OK : lb_error(LB_ENOMEM, "study: out of memory");
}

/* ---- settings ---- */

/* Every setting the runs share, the data's fingerprint and libra's version. */
static int make_settings(lb_study *st)
{
    lb_buf b = {0};
    int rc = lb_train_settings(&st->base, st->cfg.data, st->data, LB_SETTINGS_BUDGET, &b);
    if (rc == LB_OK) {
        if (st->data->split.n_classes == 2) /* what binary records carry */
            lb_buf_printf(&b, "target_recall=%.9g\n", st->cfg.target_recall);
        lb_buf_printf(&b, "data_fingerprint=%016" PRIx64 "\n", lb_data_fingerprint(st->data));
        for (int k = 0; k < 2; k++)
            if (st->oracle_data[k])
                lb_buf_printf(&b, "%s=%s\n%s_fingerprint=%016" PRIx64 "\n", k ? "oracle_full" : "oracle",
                              st->oracle_profile[k], k ? "oracle_full" : "oracle", lb_data_fingerprint(st->oracle_data[k]));
        lb_buf_printf(&b, "libra=%s\n", lb_version());
        st->settings = lb_buf_take(&b);
        if (!st->settings) rc = LB_ENOMEM;
    }
    lb_buf_free(&b);
    return rc;
}

/* The first line in which two settings texts differ, as "KEY: 'A' there, 'B' here". */
static void first_difference(const char *old, const char *now, char *out, size_t n)
{
    while (*old && *now) {
        size_t lo = strcspn(old, "\n"), ln = strcspn(now, "\n");
        if (lo != ln || memcmp(old, now, lo)) {
            size_t k = strcspn(now, "=");
            const char *ov = memchr(old, '=', lo);
            snprintf(out, n, "%.*s: '%.*s' there, '%.*s' here", (int)k, now, ov ? (int)(lo - (size_t)(ov + 1 - old)) : 0,
                     ov ? ov + 1 : "", (int)(ln - k - 1), now + k + 1);
            return;
        }
        old += lo + (old[lo] == '\n');
        now += ln + (now[ln] == '\n');
    }
    snprintf(out, n, "%s", *old || *now ? "a setting is missing on one side" : "the same settings");
}

const char *lb_study_settings(const lb_study *st) { return st->settings; }

int lb_study_same_settings(const lb_study *st, const char *settings, char *diff, size_t size)
{
    if (settings && !strcmp(settings, st->settings)) return 1;
    if (diff && size) first_difference(settings ? settings : "", st->settings, diff, size);
    return 0;
}

/* ---- the output folder ---- */

static int is_dir(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

/* mkdir -p, remembering the levels it made (so that a study that stores nothing can take
 * them away again), then a test write. */
static int make_out_dir(lb_study *st)
{
    char *p = lb_strdup(st->out);
    if (!p) return lb_error(LB_ENOMEM, "study: out of memory");
    int rc = LB_OK;
    for (char *s = p + 1; rc == LB_OK; s++)
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (!is_dir(p)) {
                /* another process sharing the folder (--only) may make it in between: fine */
                if (mkdir(p, 0755) != 0) {
                    int e = errno;
                    if (e != EEXIST || !is_dir(p))
                        rc = lb_error(LB_EIO, "%s: cannot create '%s': %s", st->out, p, strerror(e));
                } else if (st->n_made < (int)(sizeof st->made / sizeof st->made[0]) &&
                         !(st->made[st->n_made++] = lb_strdup(p))) {
                    rmdir(p); /* cannot be remembered, so not left behind */
                    st->n_made--;
                    rc = lb_error(LB_ENOMEM, "study: out of memory");
                }
            }
            *s = c;
            if (!c) break;
        }
    lb_free(p);
    char *probe = rc == LB_OK ? lb_strfmt("%s/.libra-write-test", st->out) : NULL;
    if (rc == LB_OK && !probe) rc = lb_error(LB_ENOMEM, "study: out of memory");
    if (probe && lb_write_file_atomic(probe, "ok\n", 3) != LB_OK) {
        rc = lb_last_status();
        lb_error_prefix("%s: cannot write in it", st->out);
    } else if (probe) {
        unlink(probe);
    }
    lb_free(probe);
    return rc;
}

/* Removes the files a study writes in dir (records, curves, settings, their temporaries). */
static void remove_study_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name, *dot = strrchr(n, '.');
        if (n[0] == '.' || !(strstr(n, ".tmp.") || (dot && (!strcmp(dot, ".json") || !strcmp(dot, ".csv") ||
                                                           !strcmp(dot, ".txt")))))
            continue;
        char *p = lb_strfmt("%s/%s", dir, n);
        if (p) unlink(p);
        lb_free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* An output folder holding another study: refused, or replaced with force. */
static int check_earlier_study(lb_study *st)
{
    char *text = NULL;
    size_t n = 0;
    int have_runs = is_dir(st->runs_dir), rc = LB_OK;
    char *path = lb_strfmt("%s/settings.txt", st->runs_dir);
    if (!path) return lb_error(LB_ENOMEM, "study: out of memory");
    if (have_runs && access(path, F_OK) == 0 && lb_read_file(path, 1 << 20, &text, &n) != LB_OK) rc = lb_last_status();
    lb_free(path);
    if (rc != LB_OK) return rc;
    if (!have_runs || (text && !strcmp(text, st->settings))) {
        lb_free(text);
        return LB_OK;
    }
    char diff[400];
    if (text) first_difference(text, st->settings, diff, sizeof diff);
    else snprintf(diff, sizeof diff, "%s/runs has no settings.txt", st->out);
    lb_free(text);
    if (st->cfg.force) {
        remove_study_files(st->runs_dir);
        remove_study_files(st->curves_dir);
        static const char *const files[] = {"results.json", "results.csv", "report.html"};
        for (int i = 0; i < 3; i++) {
            char *p = lb_strfmt("%s/%s", st->out, files[i]);
            if (p) unlink(p);
            lb_free(p);
        }
        return LB_OK;
    }
    if (st->cfg.resume)
        return lb_error(LB_EINVAL, "--resume: the runs in %s were made with other settings (%s); use the same flags, "
                                   "another --out, or --force to replace them", st->runs_dir, diff);
    return lb_error(LB_EINVAL, "%s holds a study with other settings (%s); give --resume with its flags, another "
                               "--out, or --force to replace it", st->out, diff);
}

/* runs/ (with settings.txt) and curves/, made when the first job is about to run: a study
 * that stores nothing takes them away again (lb_study_free). */
/* runs/ appears with its settings.txt already in it (made under a temporary name, then
 * renamed), so that another process sharing the folder (--only) never finds runs/ without
 * it; if another one's runs/ came first, that one stays. */
static int make_runs_dir(lb_study *st)
{
    char *tmp = lb_strfmt("%s.tmp.%ld.%llx", st->runs_dir, (long)getpid(), (unsigned long long)(lb_now() * 1e9));
    char *set = tmp ? lb_strfmt("%s/settings.txt", tmp) : NULL;
    int rc = set ? LB_OK : lb_error(LB_ENOMEM, "%s: out of memory", st->runs_dir);
    if (rc == LB_OK && mkdir(tmp, 0755) != 0) rc = lb_error(LB_EIO, "%s: cannot create it: %s", tmp, strerror(errno));
    else if (rc == LB_OK) {
        rc = lb_write_file_atomic(set, st->settings, strlen(st->settings));
        if (rc == LB_OK && rename(tmp, st->runs_dir) == 0) st->made_run_dirs = 1;
        else if (rc == LB_OK && !is_dir(st->runs_dir))
            rc = lb_error(LB_EIO, "%s: cannot create it: %s", st->runs_dir, strerror(errno));
        unlink(set); /* what is left when another process's runs/ came first */
        rmdir(tmp);
    }
    lb_free(set);
    lb_free(tmp);
    return rc;
}

static int make_run_dirs(lb_study *st)
{
    if (st->have_run_dirs) return LB_OK;
    if (!is_dir(st->runs_dir)) {
        int rc = make_runs_dir(st);
        if (rc != LB_OK) return rc;
    }
    if (!is_dir(st->curves_dir)) {
        if (mkdir(st->curves_dir, 0755) != 0 && errno != EEXIST)
            return lb_error(LB_EIO, "%s: cannot create it: %s", st->curves_dir, strerror(errno));
        st->made_run_dirs = 1;
    }
    char *path = lb_strfmt("%s/settings.txt", st->runs_dir);
    int rc = path ? lb_write_file_atomic(path, st->settings, strlen(st->settings)) : lb_error(LB_ENOMEM, "%s: out of memory for settings.txt", st->runs_dir);
    lb_free(path);
    if (rc == LB_OK) st->have_run_dirs = 1;
    return rc;
}

/* ---- life ---- */

/* The options every job starts from: the configuration's, monitored on validation, with
 * ten validation points per run whatever the sampler's epoch length (unless eval_every is
 * given). */
static void base_options(lb_study *st)
{
    const lb_split *sp = &st->data->split;
    st->base = st->cfg.train;
    if (st->base.steps <= 0) st->base.steps = (long)st->base.epochs * ((sp->n_train + st->base.batch - 1) / st->base.batch);
    st->base.monitor = sp->n_val > 0 ? LB_MONITOR_VAL : LB_MONITOR_NONE;
    if (st->base.eval_every <= 0) st->base.eval_every = st->base.steps >= 10 ? st->base.steps / 10 : 1;
}

static int check_against_data(lb_study *st)
{
    const lb_split *sp = &st->data->split;
    if ((st->cfg.train.keep_best || st->cfg.train.patience > 0) && sp->n_val == 0)
        return lb_error(LB_EINVAL, "study: keeping the best model and patience choose on the validation split, and "
                                   "it is empty (val fraction 0?)");
    for (int i = 0; i < st->n_strat; i++) {
        const lb_strategy *s = &st->strat[i];
        int rc = lb_strategy_check_named(s, sp->n_classes, sp->train_counts, (const char *const *)sp->class_names);
        if (rc != LB_OK) return rc;
        int taunorm = lb__in_list(s->stages, "taunorm");
        if (sp->n_val == 0 && (s->n_points > 1 || s->posthoc || taunorm)) /* never pretend to tune */
            return lb_error(LB_EINVAL,
                            "strategy '%s' chooses its %s on the validation split, but the split has no "
                            "validation image: give a validation fraction (--val-fraction 0.1)",
                            s->spec, s->n_points > 1 ? "grid point" : taunorm ? "taunorm tau" : "post-hoc tau");
    }
    return LB_OK;
}

/* Oracle k's data (0: oracle, 1: oracle_full): the same source and options, with the balanced
 * profile of the study's split, and the very same test images. */
static int make_oracle(lb_study *st, int k)
{
    int any = 0;
    for (int i = 0; i < st->n_strat; i++) any |= st->strat[i].oracle == k + 1;
    if (!any) return LB_OK;
    const char *name = k ? "oracle_full" : "oracle";
    if (!st->cfg.data)
        return lb_error(LB_EINVAL, "study: the %s strategy opens the source again, and the study was given no "
                                   "data options (lb_study_config.data)", name);
    lb_buf spec = {0}, note = {0};
    const lb_split *sp = &st->data->split;
    const char *const *names = (const char *const *)st->data->train->class_names;
    int rc = k ? lb_full_balanced_profile(sp, names, &spec, &note) : lb_balanced_profile(sp, names, &spec, &note);
    if (rc == LB_OK) {
        st->oracle_profile[k] = lb_buf_take(&spec);
        st->oracle_note[k] = lb_buf_take(&note);
        if (!st->oracle_profile[k] || !st->oracle_note[k]) rc = lb_error(LB_ENOMEM, "study: out of memory");
    }
    lb_buf_free(&spec);
    lb_buf_free(&note);
    if (rc != LB_OK) return rc;
    lb_data_opts o = *st->cfg.data; /* strings borrowed, only the profile replaced */
    o.imbalance = st->oracle_profile[k];
    if (!(st->oracle_data[k] = lb_data_new(&o))) {
        lb_error_prefix("the %s's balanced training set (%s)", name, st->oracle_profile[k]);
        return lb_last_status();
    }
    const lb_split *os = &st->oracle_data[k]->split;
    if (os->n_test != sp->n_test || os->n_classes != sp->n_classes ||
        memcmp(os->test_idx, sp->test_idx, sizeof(int) * (size_t)sp->n_test) ||
        memcmp(os->test_y, sp->test_y, sizeof(int) * (size_t)sp->n_test))
        return lb_error(LB_EINVAL, "study: the %s's split (%s) has other test images than the study's (%s): it "
                                   "cannot be compared",
                        name, st->oracle_profile[k], sp->profile);
    return LB_OK;
}

lb_study *lb_study_new(const lb_study_config *c, const lb_data *data)
{
    lb_study *st = lb_calloc(1, sizeof *st);
    if (!st) {
        lb_error(LB_ENOMEM, "study: out of memory");
        return NULL;
    }
    st->cfg = *c;
    st->data = data;
    st->out = lb_strdup(c->out_dir ? c->out_dir : "results/study");
    st->runs_dir = st->out ? lb_strfmt("%s/runs", st->out) : NULL;
    st->curves_dir = st->out ? lb_strfmt("%s/curves", st->out) : NULL;
    int rc = st->out && st->runs_dir && st->curves_dir ? LB_OK : lb_error(LB_ENOMEM, "study: out of memory");
    if (rc == LB_OK) rc = parse_strategies(st, c->strategies ? c->strategies : lb_default_strategy_list());
    if (rc == LB_OK) rc = check_fsmote_controls(st);
    if (rc == LB_OK) rc = check_against_data(st);
    if (rc == LB_OK) rc = make_oracle(st, 0);
    if (rc == LB_OK) rc = make_oracle(st, 1);
    if (rc == LB_OK) {
        base_options(st);
        rc = make_settings(st);
    }
    if (rc == LB_OK) rc = plan_first_phase(st);
    if (rc == LB_OK && !c->worker) rc = make_out_dir(st); /* a worker rank writes nothing */
    if (rc == LB_OK && !c->worker) rc = check_earlier_study(st);
    if (rc != LB_OK) {
        lb_study_free(st);
        return NULL;
    }
    return st;
}

void lb_study_free(lb_study *st)
{
    if (!st) return;
    int keep = st->stored_any;
    /* made by this study, holding no record: not left behind (a share's may hold the others') */
    if (!keep && st->made_run_dirs && st->cfg.n_shards <= 1) {
        if (st->runs_dir) remove_study_files(st->runs_dir);
        if (st->curves_dir) remove_study_files(st->curves_dir);
    }
    for (int i = st->n_made - 1; i >= 0; i--) {
        if (!keep) rmdir(st->made[i]); /* only if empty: nothing else of the user's goes */
        lb_free(st->made[i]);
    }
    for (int i = 0; i < st->n_jobs; i++) lb__job_free(st->jobs[i]);
    lb_free(st->jobs);
    for (int i = 0; st->grid_vals && i < st->n_strat; i++) lb_free(st->grid_vals[i]);
    lb_free(st->grid_vals);
    lb_free(st->chosen);
    free_strategies(st);
    for (int i = 0; i < st->n_extra; i++) {
        lb_free(st->extra[i].key);
        lb_free(st->extra[i].value);
    }
    lb_free(st->extra);
    if (st->have_results) lb_results_free(&st->results);
    for (int k = 0; k < 2; k++) {
        lb_data_free(st->oracle_data[k]);
        lb_free(st->oracle_profile[k]);
        lb_free(st->oracle_note[k]);
    }
    lb_free(st->settings);
    lb_free(st->out);
    lb_free(st->runs_dir);
    lb_free(st->curves_dir);
    lb_free(st);
}

void lb_study_set_events(lb_study *st, const lb_study_events *ev) { st->ev = ev ? *ev : (lb_study_events){0}; }
void lb_study_set_stop(lb_study *st, volatile sig_atomic_t *flag) { st->stop = flag; }
int lb_study_stopping(const lb_study *st) { return st->stop && *st->stop; }
int lb_study_n_strategies(const lb_study *st) { return st->n_strat; }
const lb_strategy *lb_study_strategy(const lb_study *st, int i) { return i >= 0 && i < st->n_strat ? &st->strat[i] : NULL; }
const lb_data *lb_study_data(const lb_study *st) { return st->data; }
const char *lb_study_out_dir(const lb_study *st) { return st->out; }

int lb_study_set_flag(lb_study *st, const char *key, const char *value)
{
    lb_kv *e = lb_realloc(st->extra, ((size_t)st->n_extra + 1) * sizeof *e);
    if (!e) return lb_error(LB_ENOMEM, "study: out of memory");
    st->extra = e;
    e[st->n_extra].key = lb_strdup(key);
    e[st->n_extra].value = lb_strdup(value ? value : "");
    if (!e[st->n_extra].key || !e[st->n_extra].value) {
        lb_free(e[st->n_extra].key);
        lb_free(e[st->n_extra].value);
        return lb_error(LB_ENOMEM, "study: out of memory");
    }
    st->n_extra++;
    return LB_OK;
}

/* ---- jobs ---- */

char *lb__job_path(const lb_study *st, const lb_job *job, int curve)
{
    char *p = curve ? lb_strfmt("%s/%s.csv", st->curves_dir, job->name) : lb_strfmt("%s/%s.json", st->runs_dir, job->name);
    if (!p) lb_error(LB_ENOMEM, "study: out of memory");
    return p;
}

int lb_study_run_job(const lb_study *st, const lb_job *job, lb_run_record *rec)
{
    return lb_study_run_job_hooked(st, job, NULL, rec);
}

/* The oracle's test metrics with the study's training counts, so that its minority recall and
 * shot groups are over the same classes as every other strategy's (its own counts are all
 * equal). */
static int oracle_metrics(const lb_study *st, lb_run_record *rec)
{
    const lb_predictions *p = &rec->pred;
    float *probs = lb_malloc((size_t)p->n * p->n_classes * sizeof *probs + 1);
    lb_metrics m = {0};
    int rc = probs ? lb_softmax_rows(p->logits, (size_t)p->n, p->n_classes, probs)
                   : lb_error(LB_ENOMEM, "study: out of memory");
    if (rc == LB_OK)
        rc = lb_metrics_from_scores(&m, probs, p->label, (size_t)p->n, p->n_classes, st->data->split.train_counts,
                                    NULL);
    lb_free(probs);
    if (rc != LB_OK) return rc;
    lb_metrics_free(&rec->metrics);
    rec->metrics = m;
    return LB_OK;
}

int lb_study_run_job_hooked(const lb_study *st, const lb_job *job, const lb_train_hooks *hooks, lb_run_record *rec)
{
    lb_train_opts o = st->base;
    o.loss = job->loss;
    o.sampler = job->sampler;
    o.mix = job->mix;
    o.stages = job->stages;
    o.seed = job->seed;
    int rc = lb_study_run_one(&o, job->oracle ? st->oracle_data[job->oracle - 1] : st->data, hooks,
                              st->cfg.target_recall, rec);
    if (rc == LB_OK && job->oracle && rec->pred.n > 0) rc = oracle_metrics(st, rec);
    if (rc == LB_OK && job->oracle) rc = lb_run_record_set_strategy(rec, job->oracle == 2 ? "oracle_full" : "oracle");
    if (rc != LB_OK)
        lb_error_prefix("run %s@%s%s%s seed %" PRIu64, job->loss, job->sampler, job->mix ? "~" : "",
                        job->mix ? job->mix : "", job->seed);
    return rc;
}

/* The loss and validation curves merged by step, as CSV. */
static void curve_csv(lb_buf *b, const lb_run_record *r)
{
    lb_buf_puts(b, "step,loss,val_balanced_accuracy\n");
    size_t v = 0;
    for (size_t i = 0; i < r->loss.n; i++) {
        for (; v < r->val_bacc.n && r->val_bacc.step[v] < r->loss.step[i]; v++)
            lb_buf_printf(b, "%lld,,%.9g\n", (long long)r->val_bacc.step[v], r->val_bacc.value[v]);
        if (v < r->val_bacc.n && r->val_bacc.step[v] == r->loss.step[i]) {
            lb_buf_printf(b, "%lld,%.9g,%.9g\n", (long long)r->loss.step[i], r->loss.value[i], r->val_bacc.value[v]);
            v++;
        } else {
            lb_buf_printf(b, "%lld,%.9g,\n", (long long)r->loss.step[i], r->loss.value[i]);
        }
    }
    for (; v < r->val_bacc.n; v++) lb_buf_printf(b, "%lld,,%.9g\n", (long long)r->val_bacc.step[v], r->val_bacc.value[v]);
}

int lb_study_store(lb_study *st, const lb_job *job, const lb_run_record *rec)
{
    if (st->cfg.worker)
        return lb_error(LB_ESTATE, "study: run %s: a worker rank stores no file (rank 0 writes every record)", job->name);
    int rc = make_run_dirs(st);
    char *path = rc == LB_OK ? lb__job_path(st, job, 0) : NULL, *cpath = path ? lb__job_path(st, job, 1) : NULL;
    if (rc == LB_OK && !cpath) rc = LB_ENOMEM;
    lb_run_record named = *rec; /* the record naming its predictions file, written first */
    char *ppath = NULL;
    if (rc == LB_OK && rec->pred.n > 0) {
        named.predictions = lb_strfmt("runs/%s.predictions.csv", job->name);
        ppath = lb_strfmt("%s/%s.predictions.csv", st->runs_dir, job->name);
        rc = named.predictions && ppath ? lb_predictions_write_csv(&rec->pred, ppath)
                                        : lb_error(LB_ENOMEM, "study: out of memory");
    }
    if (rc == LB_OK) rc = lb_run_record_write_json(&named, path);
    if (named.predictions != rec->predictions) lb_free(named.predictions);
    lb_free(ppath);
    if (rc == LB_OK) {
        lb_buf b = {0};
        curve_csv(&b, rec);
        rc = lb_buf_write(&b, cpath);
        lb_buf_free(&b);
    }
    lb_free(path);
    lb_free(cpath);
    return rc;
}

int lb_study_job_done(lb_study *st, lb_job *job, double seconds)
{
    job->done = 1;
    st->stored_any = 1;
    st->n_done++;
    if (!st->ev.on_job) return LB_OK;
    char *path = lb__job_path(st, job, 0);
    lb_run_record r;
    int rc = path ? lb_run_record_read_json(&r, path) : LB_ENOMEM;
    lb_free(path);
    if (rc != LB_OK) return rc;
    st->ev.on_job(st->ev.ctx, job, &r, st->n_done, st->n_total, seconds);
    lb_run_record_free(&r);
    return LB_OK;
}

/* ---- execution ---- */

/* The first stage of `stages` that record r has no variant for, into out ("" if none). */
static void missing_stage(const lb_run_record *r, const char *stages, char *out, size_t size)
{
    out[0] = '\0';
    for (const char *p = stages; p && *p && !out[0];) {
        size_t m = strcspn(p, "+");
        snprintf(out, size, "%.*s", (int)m, p);
        if (lb_run_record_variant(r, out)) out[0] = '\0';
        p += m + (p[m] == '+');
    }
}

/* The jobs not yet done: with resume, a stored record that reads back (with a variant for
 * each of the job's stages) counts as done. */
static int pending_jobs(lb_study *st, lb_job ***todo, int *n_todo)
{
    *todo = lb_malloc(((size_t)st->n_jobs + 1) * sizeof **todo);
    if (!*todo) return lb_error(LB_ENOMEM, "study: out of memory");
    int reused = 0;
    *n_todo = 0;
    for (int i = 0; i < st->n_jobs; i++) {
        lb_job *j = st->jobs[i];
        if (j->done || !lb__study_runs_here(st, j)) continue;
        char *path = st->cfg.resume ? lb__job_path(st, j, 0) : NULL;
        if (path && access(path, F_OK) == 0) {
            lb_run_record r;
            char missing[64] = "";
            if (lb_run_record_read_json(&r, path) == LB_OK) {
                missing_stage(&r, j->stages, missing, sizeof missing);
                lb_run_record_free(&r);
                if (!missing[0]) {
                    j->done = 1;
                    reused++;
                    lb_free(path);
                    continue;
                }
            }
            char note[1200];
            if (missing[0])
                snprintf(note, sizeof note, "--resume: %s has no variant for stage %s; running it again", path, missing);
            else
                snprintf(note, sizeof note, "--resume: %s is unreadable (%s); running it again", path, lb_last_error());
            if (st->ev.on_note) st->ev.on_note(st->ev.ctx, note);
        }
        lb_free(path);
        (*todo)[(*n_todo)++] = j;
    }
    st->n_total = st->n_done + reused + *n_todo;
    st->n_done += reused;
    if (reused) st->stored_any = 1;
    if (reused && st->ev.on_reused) st->ev.on_reused(st->ev.ctx, reused);
    return LB_OK;
}

static int run_phase(lb_study *st, const lb_scheduler *sched)
{
    lb_job **todo = NULL;
    int n = 0, rc = pending_jobs(st, &todo, &n);
    if (rc == LB_OK && n > 0) rc = make_run_dirs(st);
    if (rc == LB_OK && n > 0) rc = sched->run(sched->ctx, st, todo, n);
    if (rc == LB_OK && lb_study_stopping(st)) rc = lb_error(LB_EINTR, "interrupted");
    lb_free(todo);
    return rc;
}

/* Each grid's point with the best validation balanced accuracy on the first seed (the
 * first of equals), then that point's other seeds. */
static int choose_grids(lb_study *st)
{
    for (int i = 0; i < st->n_strat; i++) {
        const lb_strategy *s = &st->strat[i];
        if (s->n_points == 1) continue;
        if (!(st->grid_vals[i] = lb_calloc((size_t)s->n_points, sizeof(float))))
            return lb_error(LB_ENOMEM, "study: out of memory");
        float best = -1.0f;
        for (int g = 0; g < s->n_points; g++) {
            lb_job *j = lb__study_job(st, s, s->points[g], st->cfg.seed0);
            char *path = j ? lb__job_path(st, j, 0) : NULL;
            lb_run_record r;
            int rc = path ? lb_run_record_read_json(&r, path) : LB_ENOMEM;
            lb_free(path);
            if (rc != LB_OK) return rc;
            st->grid_vals[i][g] = lb_run_record_val_bacc(&r, st->cfg.train.keep_best);
            if (st->grid_vals[i][g] > best) {
                best = st->grid_vals[i][g];
                st->chosen[i] = g;
            }
            lb_run_record_free(&r);
        }
        if (st->ev.on_grid) st->ev.on_grid(st->ev.ctx, s, st->chosen[i], best);
        for (int k = 1; k < st->cfg.seeds; k++)
            if (!lb__study_job(st, s, s->points[st->chosen[i]], st->cfg.seed0 + (uint64_t)k)) return LB_ENOMEM;
    }
    return LB_OK;
}

int lb__study_runs_here(const lb_study *st, const lb_job *j)
{
    return st->cfg.n_shards <= 1 || j->index % st->cfg.n_shards == st->cfg.shard;
}

int lb_study_deferred(const lb_study *st) { return st->deferred; }

/* A shard: the grids' phase-1 jobs whose records are not stored yet (other shards' jobs
 * still running, or not started), counted in st->deferred and named in a note. */
static int missing_grid_records(lb_study *st)
{
    lb_buf names = {0};
    st->deferred = 0;
    for (int i = 0; i < st->n_strat; i++) {
        const lb_strategy *s = &st->strat[i];
        for (int g = 0; s->n_points > 1 && g < s->n_points; g++) {
            lb_job *j = lb__study_job(st, s, s->points[g], st->cfg.seed0);
            char *path = j ? lb__job_path(st, j, 0) : NULL;
            if (!path) {
                lb_buf_free(&names);
                return LB_ENOMEM;
            }
            if (!j->done && access(path, F_OK) != 0 && st->deferred++ < 4)
                lb_buf_printf(&names, "%s%s (job %d)", st->deferred > 1 ? ", " : "", j->name, j->index);
            lb_free(path);
        }
    }
    if (st->deferred && st->ev.on_note) {
        char note[1400];
        snprintf(note, sizeof note, "--only %d/%d: phase 2 (each grid's chosen point on the other seeds) needs the "
                 "phase-1 records of every share, and %d are not in %s yet: %s%s; run this share again (with "
                 "--resume) once the other shares' phase 1 has finished", st->cfg.shard + 1, st->cfg.n_shards,
                 st->deferred, st->runs_dir, names.p ? names.p : "", st->deferred > 4 ? ", ..." : "");
        st->ev.on_note(st->ev.ctx, note);
    }
    lb_buf_free(&names);
    return LB_OK;
}

int lb_study_execute(lb_study *st, const lb_scheduler *sched)
{
    st->sched_width = sched->width;
    int rc = run_phase(st, sched);
    if (rc == LB_OK && st->cfg.n_shards > 1) rc = missing_grid_records(st);
    if (rc == LB_OK && st->deferred) return LB_OK; /* no results: the shard ends here */
    if (rc == LB_OK) rc = choose_grids(st);
    if (rc == LB_OK) rc = run_phase(st, sched);
    st->executed = rc == LB_OK;
    return rc;
}
