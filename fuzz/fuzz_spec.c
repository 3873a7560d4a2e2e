/* Fuzz target: the spec-string parsers. Byte 0 picks the parser, byte 1 is a parameter (class
 * count, seed, ...), then comes the spec up to the first NUL; bytes after that NUL are extra
 * data for the parsers that need some (the sampler's labels).
 *   0 loss      lb_loss_create, its canonical spec read back, one evaluation
 *   1 profile   lb_profile_parse + lb_profile_targets
 *   2 sampler   lb_sampler_create + two epochs + a few batches
 *   3 strategy  lb_strategy_parse + lb_strategy_check
 *   4 list      lb_strategy_split, then lb_grid_expand of each item
 *   5 source    lb_source_parse, lb_parse_size
 *   6 order     lb_order_parse
 *   7 arch      lb_arch_check, then lb_model_new_arch on an input the parameter byte picks,
 *               its canonical spec built again, one forward pass
 *   8 mix       lb_mix_parse, its canonical name read back, one batch drawn and mixed
 *   9 stages    lb_stage_parse_list, each canonical name read back, lb_stage_steps
 *  10 synth     lb_synth_parse, its canonical name read back, lb_synth_targets on counts from
 *               the extra bytes, then a plan and its rows over 2-D points made from them
 * Each checks what its header promises on success (targets within what is available, a
 * permutation, an epoch of the entries given, ...). */
#include "fuzz_common.h"

#include <limits.h>
#include <math.h>

#include <libra/data.h>
#include <libra/layers.h>
#include <libra/losses.h>
#include <libra/study.h>

#define FZ_SPEC_PARSERS 11

static const char *const fz_spec_names[10] = {"alpha", "beta", "gamma", "delta", "eps",
                                              "zeta",  "eta",  "theta", "iota",  "kappa"};

/* Training-set class counts derived from the parameter byte: varied, and with bit 7 the last
 * class empty (losses with count-based weights must cope or refuse). */
static void fz_spec_counts(int p, int C, int *counts)
{
    for (int c = 0; c < C; c++) counts[c] = 1 + (c * 37 + p * 11) % 100;
    if (p & 0x80) counts[C - 1] = 0;
}

static int fz_spec_loss(const char *spec, int p)
{
    int C = 1 + p % 10, counts[10];
    fz_spec_counts(p, C, counts);
    const int *cc = (p & 0x40) ? NULL : counts;
    lb_loss *l = lb_loss_new(spec, C, cc);
    if (!l) {
        FZ_CHECK(lb_last_error()[0] != '\0', "lb_loss_create failed without a message");
        return LB_EINVAL;
    }
    FZ_CHECK(lb_loss_classes(l) == C, "classes %d", lb_loss_classes(l));
    /* "lb_loss_create reads it back to the same loss" */
    char *canon = fz_cstr((const uint8_t *)lb_loss_spec(l), strlen(lb_loss_spec(l)));
    lb_loss *l2 = lb_loss_new(canon, C, cc);
    FZ_CHECK(l2 != NULL, "canonical spec '%s' of '%s' is refused: %s", canon, spec, lb_last_error());
    FZ_CHECK(!strcmp(lb_loss_spec(l2), canon), "canonical spec '%s' reads back as '%s'", canon, lb_loss_spec(l2));
    lb_loss_free(l2);
    free(canon);

    float logits[2 * 10], per[2], grad[2 * 10];
    for (int i = 0; i < 2 * C; i++) logits[i] = (float)((i * 7) % 5) - 2.0f;
    int targets[2] = {0, C - 1};
    double mean = 0;
    int rc = lb_loss_eval(l, logits, targets, 2, per, grad, &mean, 5, 10);
    FZ_CHECK(rc == LB_OK || rc == LB_ENUMERIC, "eval of %s returned %d: %s", lb_loss_spec(l), rc, lb_last_error());
    if (rc == LB_OK) {
        FZ_CHECK(isfinite(mean), "loss '%s' returned a non-finite mean %g as LB_OK", lb_loss_spec(l), mean);
        for (int i = 0; i < 2 * C; i++) FZ_CHECK(isfinite(grad[i]), "gradient %d not finite", i);
    }
    lb_loss_free(l);
    return LB_OK;
}

static int fz_spec_profile(const char *spec, int p)
{
    int C = 1 + p % 10;
    lb_profile pr;
    int rc = lb_profile_parse(&pr, spec, C, fz_spec_names);
    if (rc != LB_OK) {
        lb_profile_free(&pr);
        return rc;
    }
    int available[10], order[10], targets[10];
    for (int c = 0; c < C; c++) available[c] = (p & 0x80) && c == C / 2 ? 0 : 1 + (c * 53 + p * 7) % 200;
    for (int c = 0; c < C; c++) order[c] = (p & 0x40) ? C - 1 - c : c;
    rc = lb_profile_targets(&pr, available, C, order, targets);
    if (rc == LB_OK) {
        for (int c = 0; c < C; c++)
            FZ_CHECK(targets[c] >= 0 && targets[c] <= available[c], "'%s': class %d target %d of %d available",
                     spec, c, targets[c], available[c]);
    }
    lb_profile_free(&pr);
    return rc;
}

static int fz_spec_sampler(const char *spec, int p, const uint8_t *aux, size_t naux)
{
    int C = 1 + p % 10, idx[64], y[64], n = 0;
    for (size_t i = 0; i < naux && n < 64; i++, n++) {
        idx[n] = 1000 + n;
        y[n] = aux[i] % C;
    }
    for (; n < C; n++) { /* no extra data: one entry per class */
        idx[n] = 1000 + n;
        y[n] = n;
    }
    lb_sampler *s = NULL;
    int rc = NEW_OK(s, lb_sampler_new(spec, idx, y, n, C, (uint64_t)p));
    if (rc != LB_OK) {
        FZ_CHECK(s == NULL, "failed create returned a sampler");
        return rc;
    }
    if (lb_sampler_kind_of(s) == LB_SAMPLER_PROGRESSIVE) lb_sampler_set_horizon(s, 3);
    int len = lb_sampler_epoch_len(s);
    FZ_CHECK(len >= 1, "'%s': epoch of %d entries", spec, len);
    for (int e = 0; e < 2; e++) {
        const int *oi, *oy;
        rc = lb_sampler_epoch(s, e, &oi, &oy);
        FZ_CHECK(rc == LB_OK, "'%s': epoch %d: %s", spec, e, lb_last_error());
        long total = 0;
        const int *counts = lb_sampler_counts(s);
        for (int c = 0; c < C; c++) total += counts[c];
        FZ_CHECK(total == len, "'%s': counts sum to %ld, epoch has %d", spec, total, len);
        for (int i = 0; i < len; i++) {
            int k = oi[i] - 1000;
            FZ_CHECK(k >= 0 && k < n && oy[i] == y[k], "'%s': entry %d is (%d, %d)", spec, i, oi[i], oy[i]);
        }
    }
    for (int b = 0; b < 3; b++) {
        const int *bi, *by;
        int got = lb_sampler_next(s, 7, b & 1, &bi, &by);
        FZ_CHECK(got >= 1 && got <= 7, "'%s': batch of %d", spec, got);
    }
    lb_sampler_free(s);
    return LB_OK;
}

static int fz_spec_strategy(const char *text, int p)
{
    lb_strategy st;
    int rc = lb_strategy_parse(&st, text);
    if (rc != LB_OK) return rc;
    FZ_CHECK(st.spec && st.loss && st.sampler && *st.loss && *st.sampler, "'%s': empty part", text);
    FZ_CHECK(st.n_points >= 1 && st.points, "'%s': %d grid points", text, st.n_points);
    for (int i = 0; i < st.n_points; i++)
        FZ_CHECK(st.points[i] && !strchr(st.points[i], '|'), "'%s': point %d '%s'", text, i, st.points[i]);
    int C = 1 + p % 10, counts[10];
    fz_spec_counts(p, C, counts);
    rc = lb_strategy_check(&st, C, counts);
    lb_strategy_free(&st);
    return rc;
}

static int fz_spec_list(const char *text)
{
    char **items = NULL;
    int n = 0;
    int rc = lb_strategy_split(text, &items, &n);
    if (rc != LB_OK) {
        FZ_CHECK(items == NULL && n == 0, "failed split returned items");
        return rc;
    }
    FZ_CHECK(n >= 1, "split gave %d items", n);
    for (int i = 0; i < n; i++) {
        FZ_CHECK(items[i] && *items[i], "item %d empty", i);
        char **pts = NULL;
        int np = 0;
        if (lb_grid_expand(items[i], &pts, &np) == LB_OK) {
            FZ_CHECK(np >= 1, "'%s': %d points", items[i], np);
            for (int k = 0; k < np; k++) {
                FZ_CHECK(!strchr(pts[k], '|'), "'%s': point '%s' still has '|'", items[i], pts[k]);
                lb_free(pts[k]);
            }
            lb_free(pts);
        } else {
            FZ_CHECK(pts == NULL && np == 0, "failed expand returned points");
        }
        lb_free(items[i]);
    }
    lb_free(items);
    return rc;
}

static int fz_spec_source(const char *spec)
{
    lb_source s;
    int rc = lb_source_parse(&s, spec);
    if (rc == LB_OK) {
        if (s.kind == LB_SOURCE_FOLDER) FZ_CHECK(s.path[0] && *s.path[0], "folder without a path");
        if (s.kind == LB_SOURCE_IDX) {
            int n = !s.path[1] ? 1 : s.path[4] ? 6 : 4; /* idx:DIR, four files or six */
            for (int k = 0; k < n; k++) FZ_CHECK(s.path[k] && *s.path[k], "idx path %d missing", k);
            for (int k = n; k < LB_SOURCE_MAX_PATHS; k++) FZ_CHECK(!s.path[k], "idx path %d set", k);
        }
    }
    lb_source_free(&s);
    int h = 0, w = 0;
    if (lb_parse_size(spec, &h, &w) == LB_OK)
        FZ_CHECK(h >= 1 && w >= 1 && h <= 4096 && w <= 4096, "size '%s' -> %dx%d", spec, h, w);
    return rc;
}

static int fz_spec_order(const char *spec, int p)
{
    int C = 1 + p % 10, order[10], seen[10] = {0};
    int rc = lb_order_parse(spec, C, (uint64_t)p, NULL, order);
    if (rc == LB_OK) {
        for (int k = 0; k < C; k++) {
            FZ_CHECK(order[k] >= 0 && order[k] < C && !seen[order[k]]++, "'%s': not a permutation", spec);
        }
    }
    return rc;
}

/* An architecture: checked without data, then built for c x h x w (from p) and C classes; a
 * model that builds must rebuild from its canonical spec to the same layout and run forward. */
static int fz_spec_arch(const char *spec, int p)
{
    int rc = lb_arch_check(spec);
    if (rc != LB_OK) return rc;
    int c = (p & 1) ? 3 : 1, h = 2 + (p >> 1) % 15, w = 2 + (p >> 4) % 15, C = 1 + p % 7;
    lb_model *m = lb_model_new_arch(spec, c, h, w, C);
    if (!m) {
        FZ_CHECK(lb_last_status() == LB_ESHAPE || lb_last_status() == LB_ENOMEM,
                 "'%s' passed lb_arch_check but fails on %dx%dx%d: %s", spec, c, h, w, lb_last_error());
        return lb_last_status();
    }
    FZ_CHECK(lb_model_n_outputs(m) == C, "'%s': %d outputs for %d classes", spec, lb_model_n_outputs(m), C);
    lb_model *m2 = lb_model_new_arch(m->arch, c, h, w, C);
    FZ_CHECK(m2 != NULL, "canonical spec '%s' of '%s' is refused: %s", m->arch, spec, lb_last_error());
    FZ_CHECK(!strcmp(m2->arch, m->arch) && lb_model_n_params(m2) == lb_model_n_params(m),
             "canonical spec '%s' builds '%s' with %zu parameters, not %zu", m->arch, m2->arch, lb_model_n_params(m2),
             lb_model_n_params(m));
    lb_model_free(m2);
    lb_rng r;
    lb_rng_seed(&r, (uint64_t)p);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    lb_graph *g = lb_graph_new();
    FZ_CHECK(g != NULL, "graph: %s", lb_last_error());
    int shape[4] = {2, c, h, w};
    static float pixels[2 * 3 * 16 * 16];
    for (int i = 0; i < 2 * c * h * w; i++) pixels[i] = (float)((i * 13) % 7) - 3.0f;
    lb_node *x = lb_input(g, 4, shape, pixels);
    lb_node *y = x ? lb_model_forward(m, g, x) : NULL;
    FZ_CHECK(y != NULL, "forward of '%s' on 2x%dx%dx%d: %s", m->arch, c, h, w, lb_last_error());
    lb_graph_free(g);
    lb_model_free(m);
    return LB_OK;
}

static int fz_spec_mix(const char *spec, int p, const uint8_t *aux, size_t naux)
{
    lb_mix m, again;
    int rc = lb_mix_parse(&m, spec);
    if (rc != LB_OK) return rc;
    FZ_CHECK(lb_mix_parse(&again, m.name) == LB_OK && !strcmp(again.name, m.name), "'%s': canonical '%s' reads back as "
             "'%s'", spec, m.name, again.name);
    if (m.kind == LB_MIX_NONE) return LB_OK;
    enum { N = 16 };
    int C = 1 + p % 10, y[N], perm[N], counts[10], n = 1 + (int)(naux % N);
    fz_spec_counts(p & 0x7f, C, counts);
    for (int i = 0; i < n; i++) y[i] = (int)(i < (int)naux ? aux[i] : (uint8_t)i) % C;
    float lam_y[N], x[N * 3], scratch[N * 3];
    for (int i = 0; i < n * 3; i++) x[i] = (float)(i % 7) - 3.0f;
    lb_rng r;
    lb_rng_seed(&r, (uint64_t)p);
    double lambda;
    lb_mix_draw(&m, &r, n, y, counts, &lambda, perm, lam_y);
    FZ_CHECK(lambda >= 0.0 && lambda <= 1.0, "'%s': lambda %g", spec, lambda);
    int seen[N] = {0};
    for (int i = 0; i < n; i++) {
        FZ_CHECK(perm[i] >= 0 && perm[i] < n && !seen[perm[i]]++, "'%s': not a permutation", spec);
        FZ_CHECK(lam_y[i] >= 0.0f && lam_y[i] <= 1.0f, "'%s': label weight %g", spec, (double)lam_y[i]);
    }
    lb_mix_images(x, n, 3, lambda, perm, scratch);
    for (int i = 0; i < n * 3; i++) /* a convex combination of values in [-3, 3], up to rounding */
        FZ_CHECK(fabsf(x[i]) <= 3.0f * (1.0f + 1e-6f), "'%s': mixed value %g", spec, (double)x[i]);
    return LB_OK;
}

static int fz_spec_stages(const char *spec, int p)
{
    lb_stage st[LB_MAX_STAGES];
    int n = 0, rc = lb_stage_parse_list(spec, st, LB_MAX_STAGES, &n);
    if (rc != LB_OK) return rc;
    FZ_CHECK(n >= 0 && n <= LB_MAX_STAGES, "'%s': %d stages", spec, n);
    long budget = 1 + p * 37;
    for (int i = 0; i < n; i++) {
        lb_stage again;
        FZ_CHECK(lb_stage_parse(&again, st[i].name) == LB_OK && !strcmp(again.name, st[i].name),
                 "'%s': canonical '%s' reads back as '%s'", spec, st[i].name, again.name);
        long k = lb_stage_steps(&st[i], budget);
        FZ_CHECK(k >= 0 && (st[i].steps > 0 || k <= budget), "'%s': %ld steps of a budget of %ld", spec, k, budget);
    }
    return LB_OK;
}

/* A plan over up to 32 points of 2-D integer coordinates from the extra bytes (labels from
 * the parameter): every class reaches its target, each synthetic row lies in the box of its
 * source and neighbour. */
static int fz_spec_synth_plan(const lb_synth_spec *sp, int C, const uint8_t *aux, size_t naux, int p)
{
    enum { MAXN = 32 };
    int n = (int)(naux / 2 < MAXN ? naux / 2 : MAXN), y[MAXN];
    float x[MAXN * 2];
    for (int i = 0; i < n; i++) {
        x[2 * i] = aux[2 * i] % 16;
        x[2 * i + 1] = aux[2 * i + 1] % 16;
        y[i] = (i * 7 + p) % C;
    }
    if (n == 0) return LB_OK;
    lb_rng r;
    lb_rng_seed(&r, (uint64_t)p);
    lb_synth_plan plan;
    int rc = lb_synth_plan_rows(sp, x, y, n, 2, C, &r, &plan);
    if (rc != LB_OK) return rc;
    float *out = plan.n <= 4096 ? malloc(sizeof(float) * 2 * (size_t)plan.n) : NULL;
    if (out && lb_synth_fill_rows(sp, &plan, x, 2, (uint64_t)p, out) == LB_OK && sp->kind != LB_SYNTH_ROS_NOISE)
        for (int i = plan.n_orig; i < plan.n; i++) {
            int s = plan.source[i], nb = plan.neighbour[i];
            FZ_CHECK(s >= 0 && s < plan.n_orig && plan.y[s] == plan.y[i], "synthetic row %d: source %d", i, s);
            for (int d = 0; d < 2 && nb >= 0; d++) {
                float lo = fminf(x[2 * s + d], x[2 * nb + d]), hi = fmaxf(x[2 * s + d], x[2 * nb + d]);
                FZ_CHECK(out[2 * i + d] >= lo - 1e-4f && out[2 * i + d] <= hi + 1e-4f, "row %d off its segment", i);
            }
        }
    free(out);
    lb_synth_plan_free(&plan);
    return LB_OK;
}

static int fz_spec_synth(const char *spec, int p, const uint8_t *aux, size_t naux)
{
    lb_synth_spec sp, again;
    int rc = lb_synth_parse(&sp, spec);
    if (rc != LB_OK) return rc;
    rc = lb_synth_parse(&again, sp.name);
    FZ_CHECK(rc == LB_OK && !strcmp(again.name, sp.name), "'%s': canonical '%s' does not read back", spec, sp.name);
    lb_synth_spec_free(&again);
    int C = 1 + p % 4, counts[4] = {0}, targets[4];
    long long total = 0;
    for (int i = 0; i < (int)(naux / 2 < 32 ? naux / 2 : 32); i++) counts[(i * 7 + p) % C]++;
    if (lb_synth_targets(&sp, counts, C, targets) == LB_OK)
        for (int c = 0; c < C; c++) {
            FZ_CHECK(targets[c] >= counts[c], "'%s': class %d shrinks", spec, c);
            total += targets[c];
        }
    lb_clear_error();
    /* counts= may ask for up to INT_MAX rows per class: the plan then honestly allocates
     * gigabytes, which libFuzzer's malloc limit reports as an OOM (the smoke run of
     * 2026-12-03 did, for counts=555555573). So a plan is made only for a resampled set
     * of at most 2^16 rows, or beyond INT_MAX, where it must be refused before any
     * allocation (fuzz/regress/spec/synth-counts-huge). */
    rc = total <= (1 << 16) || total > INT_MAX ? fz_spec_synth_plan(&sp, C, aux, naux, p) : LB_OK;
    lb_synth_spec_free(&sp);
    return rc;
}

int libra_fuzz_spec(const uint8_t *data, size_t size)
{
    if (size < 2) return LB_OK;
    int which = data[0] % FZ_SPEC_PARSERS, p = data[1];
    char *spec = fz_cstr(data + 2, size - 2);
    size_t used = 2 + strlen(spec) + 1;
    const uint8_t *aux = used < size ? data + used : NULL;
    size_t naux = used < size ? size - used : 0;
    lb_clear_error();
    int rc = LB_OK;
    switch (which) {
    case 0: rc = fz_spec_loss(spec, p); break;
    case 1: rc = fz_spec_profile(spec, p); break;
    case 2: rc = fz_spec_sampler(spec, p, aux, naux); break;
    case 3: rc = fz_spec_strategy(spec, p); break;
    case 4: rc = fz_spec_list(spec); break;
    case 5: rc = fz_spec_source(spec); break;
    case 6: rc = fz_spec_order(spec, p); break;
    case 7: rc = fz_spec_arch(spec, p); break;
    case 8: rc = fz_spec_mix(spec, p, aux, naux); break;
    case 9: rc = fz_spec_stages(spec, p); break;
    default: rc = fz_spec_synth(spec, p, aux, naux); break;
    }
    if (rc != LB_OK) FZ_CHECK(lb_last_error()[0] != '\0', "parser %d: error %d without a message", which, rc);
    free(spec);
    return rc;
}

#ifndef LIBRA_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libra_fuzz_spec(data, size);
    return 0;
}
#endif
