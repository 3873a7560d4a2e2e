/* Tests of synthetic oversampling (src/data/synth.c): specs and canonical names, targets,
 * SMOTE, Borderline-SMOTE-1, ADASYN and ros_noise on float rows and on a dataset, warnings,
 * errors, allocation failures, and the synthetic sampler kind.
 *
 * Where the reference values come from: the Borderline-1 danger set and ADASYN's normalised
 * ratios on the 2-D fixture below were computed once with Debian's python3-imblearn 0.10 by
 * tests/ref/synth_ref.py (its output is quoted next to the constants). Everything else is
 * checked against a brute-force recomputation in this file (distances in double, ties by
 * index) or worked out by hand in the comment next to it. No test needs Python. */
#include "check_util.h"
#include "dataset_fixture.h"
#include "libra/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

/* n rows of dim whole values in [0, top] with labels in [0, C) (counts[c] of class c), the
 * classes interleaved in a shuffled order so that row order is not class order. */
static void make_rows(uint64_t seed, const int *counts, int C, int dim, int top, float *x, int *y, int *n_out)
{
    lb_rng r;
    lb_rng_seed(&r, seed);
    int n = 0;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < counts[c]; i++) y[n++] = c;
    lb_rng_shuffle(&r, y, (size_t)n);
    for (int i = 0; i < n * dim; i++) x[i] = (float)lb_rng_below(&r, (uint64_t)top + 1);
    *n_out = n;
}

static double dist2(const float *x, int dim, int a, int b)
{
    double s = 0.0;
    for (int j = 0; j < dim; j++) {
        double d = (double)x[a * dim + j] - (double)x[b * dim + j];
        s += d * d;
    }
    return s;
}

/* The kk nearest rows to `row` among the rows of class cls (cls < 0: all rows), brute force:
 * nearest first, ties to the lower index, the row itself left out. Returns how many. */
static int brute_knn(const float *x, const int *y, int n, int dim, int row, int cls, int kk, int *out)
{
    int m = 0;
    double *best = malloc(sizeof(double) * (size_t)(kk + 1));
    for (int j = 0; j < n; j++) {
        if (j == row || (cls >= 0 && y[j] != cls)) continue;
        double d = dist2(x, dim, row, j);
        int at = m < kk ? m : kk;
        if (at == kk && !(d < best[kk - 1])) continue;
        while (at > 0 && best[at - 1] > d) {
            if (at < kk) {
                best[at] = best[at - 1];
                out[at] = out[at - 1];
            }
            at--;
        }
        best[at] = d;
        out[at] = j;
        if (m < kk) m++;
    }
    free(best);
    return m;
}

static int among(const int *list, int m, int v)
{
    for (int i = 0; i < m; i++)
        if (list[i] == v) return 1;
    return 0;
}

static lb_synth_spec parse_ok(const char *spec)
{
    lb_synth_spec s;
    ck_assert_msg(lb_synth_parse(&s, spec) == LB_OK, "'%s': %s", spec, lb_last_error());
    return s;
}

/* Some warning of p mentions every one of the texts (NULL-terminated). */
static int warned(const lb_synth_plan *p, const char *a, const char *b)
{
    for (int i = 0; i < p->warnings.n_kept; i++)
        if (strstr(p->warnings.msg[i], a) && (!b || strstr(p->warnings.msg[i], b))) return 1;
    return 0;
}

/* Synthetic rows of the plan per class. */
static void made_per_class(const lb_synth_plan *p, int *made)
{
    memset(made, 0, sizeof(int) * (size_t)p->n_classes);
    for (int r = p->n_orig; r < p->n; r++) made[p->y[r]]++;
}

/* ------------------------------------------------------------------ specs */

START_TEST(test_spec_names)
{
    static const char *const cases[][2] = {
        {"smote", "smote"},
        {"smote:k=5", "smote"},
        {"smote:k=3", "smote:k=3"},
        {" smote : k = 3 ", "smote:k=3"},
        {"smote:k=0", "smote:k=0"},
        {"borderline_smote", "borderline_smote"},
        {"borderline_smote:m=10,k=5", "borderline_smote"},
        {"borderline_smote:m=7,k=2", "borderline_smote:k=2,m=7"},
        {"borderline_smote:m=3", "borderline_smote:m=3"},
        {"adasyn:k=4", "adasyn:k=4"},
        {"ros_noise", "ros_noise"},
        {"ros_noise:shrinkage=1", "ros_noise"},
        {"ros_noise:shrinkage=0.5", "ros_noise:shrinkage=0.5"},
        {"ros_noise:shrinkage=0", "ros_noise:shrinkage=0"},
        {"smote:ratio=0.5", "smote:ratio=0.5"},
        {"smote:ratio=1,k=3", "smote:k=3,ratio=1"},
        {"adasyn:counts=10,20,30", "adasyn:counts=10,20,30"},
        {"ros_noise:counts=4,0,7,shrinkage=2", "ros_noise:shrinkage=2,counts=4,0,7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lb_synth_spec s = parse_ok(cases[i][0]);
        ck_assert_msg(strcmp(s.name, cases[i][1]) == 0, "'%s' -> '%s', expected '%s'", cases[i][0], s.name, cases[i][1]);
        lb_synth_spec_free(&s);
    }
    lb_synth_spec s = parse_ok("borderline_smote:k=2,m=7,counts=3,4");
    ck_assert_int_eq(s.kind, LB_SYNTH_BORDERLINE);
    ck_assert_int_eq(s.k, 2);
    ck_assert_int_eq(s.m, 7);
    ck_assert_int_eq(s.n_counts, 2);
    ck_assert_int_eq(s.counts[0], 3);
    ck_assert_int_eq(s.counts[1], 4);
    ck_assert(s.ratio == 0.0);
    lb_synth_spec_free(&s);
    ck_assert_ptr_null(s.counts);
    s = parse_ok("ros_noise");
    ck_assert(s.kind == LB_SYNTH_ROS_NOISE && s.shrinkage == 1.0 && s.k == 5 && s.m == 10);
    lb_synth_spec_free(&s);

    ck_assert_int_eq(lb_synth_is("smote"), 1);
    ck_assert_int_eq(lb_synth_is("borderline_smote:k=3"), 1);
    ck_assert_int_eq(lb_synth_is(" adasyn "), 1);
    ck_assert_int_eq(lb_synth_is("ros_noise:shrinkage=0"), 1);
    ck_assert_int_eq(lb_synth_is("smote:k=-1"), 1); /* named as one; refused by lb_synth_parse */
    ck_assert_int_eq(lb_synth_is("shuffle"), 0);
    ck_assert_int_eq(lb_synth_is("smotex"), 0);
    ck_assert_int_eq(lb_synth_is("oversample:ratio=2"), 0);
    ck_assert_int_eq(lb_synth_is(""), 0);
    ck_assert_int_eq(lb_synth_is(NULL), 0);
}
END_TEST

START_TEST(test_spec_errors)
{
    static const char *const bad[][2] = {
        {"smote:k=-1", "k=-1"},
        {"smote:k=2.5", "k=2.5"},
        {"smote:k=abc", "k=abc"},
        {"smote:k=", "smote:k="},
        {"smote:m=3", "unknown key 'm'"},
        {"adasyn:m=3", "unknown key 'm'"},
        {"adasyn:shrinkage=1", "unknown key 'shrinkage'"},
        {"ros_noise:k=3", "unknown key 'k'"},
        {"borderline_smote:m=0", "m=0"},
        {"borderline_smote:m=1.5", "m=1.5"},
        {"borderline_smote:q=1", "unknown key 'q'"},
        {"ros_noise:shrinkage=-1", "shrinkage=-1"},
        {"ros_noise:shrinkage=x", "shrinkage=x"},
        {"smote:ratio=0", "ratio=0"},
        {"smote:ratio=-0.5", "ratio=-0.5"},
        {"smote:ratio=1.5", "ratio=1.5"},
        {"smote:counts=1,-2", "counts=1,-2"},
        {"smote:counts=1,2.5", "counts=1,2.5"},
        {"smote:counts=1,x", "'x'"},
        {"smote:ratio=0.5,counts=1,2", "not both"},
        {"smote:3", "'3' is not key=value"},
        {"smotex", "unknown"},
        {"smote:k=3,k=4", "k"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb_synth_spec s;
        lb_clear_error();
        int rc = lb_synth_parse(&s, bad[i][0]);
        ck_assert_msg(rc == LB_EINVAL, "'%s' accepted (%d)", bad[i][0], rc);
        ck_assert_msg(strstr(lb_last_error(), bad[i][1]) != NULL, "'%s': message '%s' lacks '%s'", bad[i][0],
                      lb_last_error(), bad[i][1]);
        ck_assert_ptr_null(s.counts);
        lb_synth_spec_free(&s);
    }
    /* a canonical name that cannot be kept (159 characters) */
    char spec[600] = "smote:counts=";
    for (int i = 0; i < 60; i++) strcat(spec, i ? ",1000" : "1000");
    lb_synth_spec s;
    ck_assert_err(lb_synth_parse(&s, spec), LB_EINVAL, "canonical name");
}
END_TEST

/* ------------------------------------------------------------------ targets */

static void targets_are(const char *spec, const int *counts, int C, const int *want)
{
    lb_synth_spec s = parse_ok(spec);
    int t[8];
    ck_assert_msg(lb_synth_targets(&s, counts, C, t) == LB_OK, "%s: %s", spec, lb_last_error());
    for (int c = 0; c < C; c++) ck_assert_msg(t[c] == want[c], "%s: class %d -> %d, expected %d", spec, c, t[c], want[c]);
    lb_synth_spec_free(&s);
}

static void targets_fail(const char *spec, const int *counts, int C, const char *needle)
{
    lb_synth_spec s = parse_ok(spec);
    int t[8];
    ck_assert_err(lb_synth_targets(&s, counts, C, t), LB_EINVAL, needle);
    lb_synth_spec_free(&s);
}

START_TEST(test_targets)
{
    int c3[] = {10, 4, 7};
    targets_are("smote", c3, 3, (int[]){10, 10, 10});                 /* 'auto': all up to the largest */
    targets_are("adasyn:counts=12,4,9", c3, 3, (int[]){12, 4, 9});
    targets_fail("smote:counts=9,4,7", c3, 3, "class 0 has 10 images, counts= asks 9");
    targets_fail("smote:counts=10,4", c3, 3, "2 values for 3 classes");
    targets_fail("smote:ratio=0.5", c3, 3, "two classes");
    int c0[] = {10, 0, 7};
    targets_are("ros_noise", c0, 3, (int[]){10, 0, 10});              /* an empty class stays empty */
    targets_fail("smote:counts=10,3,7", c0, 3, "class 1 has no image");
    int b[] = {100, 10};
    targets_are("smote:ratio=0.5", b, 2, (int[]){100, 50});           /* int(0.5 * 100) */
    targets_are("smote:ratio=0.29", b, 2, (int[]){100, 28});          /* int(28.999999999999996), as imblearn */
    targets_are("smote:ratio=0.1", b, 2, (int[]){100, 10});           /* exactly what it has: nothing made */
    targets_are("smote:ratio=1", b, 2, (int[]){100, 100});
    targets_fail("smote:ratio=0.05", b, 2, "ratio=0.05");             /* 5 < 10 */
    int b2[] = {10, 100};
    targets_are("smote:ratio=0.55", b2, 2, (int[]){55, 100});         /* the minority may be class 0 */
    int tie[] = {50, 50};
    targets_are("smote:ratio=1", tie, 2, (int[]){50, 50});            /* a tie: class 0 is the majority */
    int half[] = {0, 30};
    targets_fail("smote:ratio=0.5", half, 2, "both classes");
}
END_TEST

/* ------------------------------------------------------------------ SMOTE */

/* The plan's synthetic rows against the brute force: class, counts, neighbour among the k
 * nearest of the base's class, gap in [0, 1), and (float path) the values exactly. */
static void check_smote_plan(const lb_synth_plan *p, const float *x, const int *y, int n, int dim, int k,
                             const float *out)
{
    int *nb = malloc(sizeof(int) * (size_t)(k + 1));
    for (int r = p->n_orig; r < p->n; r++) {
        int s = p->source[r], t = p->neighbour[r], c = p->y[r];
        ck_assert_msg(s >= 0 && s < n && y[s] == c, "row %d: source %d of class %d", r, s, c);
        int m = brute_knn(x, y, n, dim, s, c, k, nb);
        ck_assert_msg(m == k && among(nb, m, t), "row %d: neighbour %d is not among the %d nearest of %d", r, t, k, s);
        ck_assert(p->gap[r] >= 0.0f && p->gap[r] < 1.0f);
        for (int j = 0; out && j < dim; j++) {
            double a = x[s * dim + j], b = x[t * dim + j];
            float want = (float)(a + (double)p->gap[r] * (b - a));
            ck_assert_msg(out[(size_t)r * dim + j] == want, "row %d value %d: %g, expected %g", r, j,
                          out[(size_t)r * dim + j], want);
            ck_assert(out[(size_t)r * dim + j] >= fmin(a, b) && out[(size_t)r * dim + j] <= fmax(a, b));
        }
    }
    free(nb);
}

START_TEST(test_smote_rows)
{
    /* three classes of 20 whole values; values 0..3 make many ties, 0..255 few */
    int counts[] = {40, 15, 9}, n, dim = 20;
    float x[64 * 20];
    int y[64];
    for (int top = 3; top <= 255; top += 252) {
        make_rows(7, counts, 3, dim, top, x, y, &n);
        lb_synth_spec s = parse_ok("smote:k=4");
        lb_rng rng;
        lb_rng_seed(&rng, 11);
        lb_synth_plan p;
        ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, dim, 3, &rng, &p), LB_OK);
        ck_assert_int_eq(p.n, 120);
        ck_assert_int_eq(p.n_orig, 64);
        int made[3];
        made_per_class(&p, made);
        ck_assert(made[0] == 0 && made[1] == 25 && made[2] == 31);
        for (int c = 0; c < 3; c++) ck_assert_int_eq(p.targets[c], 40);
        ck_assert_int_eq(p.warnings.n, 0);
        for (int i = 0; i < n; i++) ck_assert(p.y[i] == y[i] && p.source[i] == -1 && p.neighbour[i] == -1 && isnan(p.gap[i]));
        /* synthetic rows of class 0 would come first: here class 1's, then class 2's */
        for (int r = 64; r < 120; r++) ck_assert_int_eq(p.y[r], r < 89 ? 1 : 2);
        float *out = malloc(sizeof(float) * 120 * (size_t)dim);
        ck_assert_int_eq(lb_synth_fill_rows(&s, &p, x, dim, 5, out), LB_OK);
        ck_assert_int_eq(memcmp(out, x, sizeof(float) * (size_t)n * dim), 0);
        check_smote_plan(&p, x, y, n, dim, 4, out);
        /* every one of the k neighbours gets chosen somewhere (uniform among them) */
        int pos_seen[4] = {0}, nb[4];
        for (int r = 64; r < 120; r++) {
            brute_knn(x, y, n, dim, p.source[r], p.y[r], 4, nb);
            for (int q = 0; q < 4; q++) pos_seen[q] += nb[q] == p.neighbour[r];
        }
        for (int q = 0; q < 4; q++) ck_assert_int_gt(pos_seen[q], 0);

        /* the same seed gives the same plan and rows; another seed others */
        lb_synth_plan p2;
        lb_rng_seed(&rng, 11);
        ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, dim, 3, &rng, &p2), LB_OK);
        ck_assert_int_eq(memcmp(p.source, p2.source, sizeof(int) * 120), 0);
        ck_assert_int_eq(memcmp(p.neighbour, p2.neighbour, sizeof(int) * 120), 0);
        ck_assert_int_eq(memcmp(p.gap + 64, p2.gap + 64, sizeof(float) * 56), 0);
        lb_synth_plan_free(&p2);
        lb_rng_seed(&rng, 12);
        ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, dim, 3, &rng, &p2), LB_OK);
        ck_assert_int_eq(p2.n, 120);
        ck_assert_int_ne(memcmp(p.gap + 64, p2.gap + 64, sizeof(float) * 56), 0);
        ck_assert_int_ne(memcmp(p.source + 64, p2.source + 64, sizeof(int) * 56), 0);
        lb_synth_plan_free(&p2);
        free(out);
        lb_synth_plan_free(&p);
        lb_synth_spec_free(&s);
    }
}
END_TEST

/* ADASYN's per-row counts by brute force: o_i = the other-class rows among the k nearest of
 * all rows, g_i = floor(o_i t / S), then one more to the largest remainders o_i t mod S (ties
 * to the lower row). g: one per row of class cls. */
static void brute_adasyn(const float *x, const int *y, int n, int dim, int cls, int k, int t, int *g)
{
    int *o = calloc((size_t)n, sizeof(int)), *nb = malloc(sizeof(int) * (size_t)k);
    long long S = 0, left = t;
    for (int i = 0; i < n; i++)
        if (y[i] == cls) {
            int m = brute_knn(x, y, n, dim, i, -1, k, nb);
            for (int j = 0; j < m; j++) o[i] += y[nb[j]] != cls;
            S += o[i];
        }
    for (int i = 0; i < n; i++) {
        g[i] = y[i] == cls ? (int)((long long)o[i] * t / S) : 0;
        left -= g[i];
    }
    for (; left > 0; left--) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (y[i] == cls && g[i] >= 0 &&
                (best < 0 || (long long)o[i] * t % S > (long long)o[best] * t % S))
                best = i;
        g[best] = -1 - g[best]; /* marked: taken */
    }
    for (int i = 0; i < n; i++)
        if (g[i] < 0) g[i] = -g[i];
    free(o);
    free(nb);
}

/* Many rows and long rows cross the distance blocks (512 rows; 26 rows of 20000 values). */
START_TEST(test_smote_blocks)
{
    int counts[] = {1100, 700}, n;
    const int dim = 6;
    float *x = malloc(sizeof(float) * 1800 * dim);
    int *y = malloc(sizeof(int) * 1800), nb[3];
    make_rows(3, counts, 2, dim, 9, x, y, &n);
    lb_synth_spec s = parse_ok("smote:k=3");
    lb_rng rng;
    lb_rng_seed(&rng, 2);
    lb_synth_plan p;
    ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, dim, 2, &rng, &p), LB_OK);
    ck_assert_int_eq(p.n, 2200);
    check_smote_plan(&p, x, y, n, dim, 3, NULL);
    lb_synth_plan_free(&p);
    /* ADASYN over all 1800 rows (700 queries, 4 blocks of references) against the brute force */
    lb_synth_spec a = parse_ok("adasyn:k=3");
    ck_assert_int_eq(lb_synth_plan_rows(&a, x, y, n, dim, 2, &rng, &p), LB_OK);
    ck_assert_int_eq(p.n, 2200);
    int *g = malloc(sizeof(int) * 1800), *made = calloc(1800, sizeof(int));
    brute_adasyn(x, y, n, dim, 1, 3, 400, g);
    for (int r = p.n_orig; r < p.n; r++) made[p.source[r]]++;
    for (int i = 0; i < n; i++) ck_assert_msg(made[i] == g[i], "row %d: %d made, brute force %d", i, made[i], g[i]);
    check_smote_plan(&p, x, y, n, dim, 3, NULL);
    free(g);
    free(made);
    lb_synth_plan_free(&p);
    lb_synth_spec_free(&a);
    free(x);
    free(y);
    /* 110 rows of 20000 values: blocks of 26 rows */
    int c2[] = {70, 40};
    const int big = 20000;
    x = malloc(sizeof(float) * 110 * big);
    y = malloc(sizeof(int) * 110);
    make_rows(4, c2, 2, big, 255, x, y, &n);
    ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, big, 2, &rng, &p), LB_OK);
    ck_assert_int_eq(p.n, 140);
    for (int r = 110; r < 140; r++) {
        brute_knn(x, y, n, big, p.source[r], 1, 3, nb);
        ck_assert(among(nb, 3, p.neighbour[r]));
    }
    lb_synth_plan_free(&p);
    lb_synth_spec_free(&s);
    free(x);
    free(y);
}
END_TEST

/* ------------------------------------------------------------------ Borderline-1 and ADASYN */

/* The fixture of tests/ref/synth_ref.py: class 0 a jittered 4x4 grid, class 1 one noise
 * point (row 16), three danger points (17, 18, 19) and a safe cluster (20..23). */
static const float fixture2d[24][2] = {
    {14, 9},  {14, 34},  {6, 51},   {9, 71},   {33, 12},  {26, 30},  {33, 54}, {27, 72},
    {48, 8},  {47, 29},  {52, 54},  {47, 74},  {73, 14},  {67, 26},  {71, 50}, {67, 71},
    {41, 43}, {83, 31},  {81, 53},  {77, 72},  {110, 40}, {113, 61}, {121, 49}, {104, 78},
};
static const int fixture2d_y[24] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};

/* synth_ref.py: "borderline m=5 danger (rows): 17,18,19" (noise: class position 0, row 16) */
static const int ref_danger_rows[] = {17, 18, 19};
/* synth_ref.py: "adasyn k=5 normalised ratios:" (imblearn's ratio_nn after ratio_nn /= sum) */
static const double ref_adasyn_ratio[8] = {0.33333333333333331, 0.19999999999999998, 0.19999999999999998,
                                           0.19999999999999998, 0, 0, 0, 0.066666666666666666};

START_TEST(test_borderline_danger)
{
    lb_synth_spec s = parse_ok("borderline_smote:k=3,m=5,counts=16,208");
    lb_rng rng;
    lb_rng_seed(&rng, 1);
    lb_synth_plan p;
    ck_assert_int_eq(lb_synth_plan_rows(&s, &fixture2d[0][0], fixture2d_y, 24, 2, 2, &rng, &p), LB_OK);
    ck_assert_int_eq(p.n, 224);
    ck_assert_int_eq(p.targets[1], 208);
    int used[3] = {0};
    for (int r = 24; r < p.n; r++) {
        ck_assert_msg(among(ref_danger_rows, 3, p.source[r]), "base %d is not a danger row", p.source[r]);
        for (int i = 0; i < 3; i++) used[i] += p.source[r] == ref_danger_rows[i];
    }
    for (int i = 0; i < 3; i++) ck_assert_int_gt(used[i], 30); /* 200 draws among 3 */
    /* neighbours: the 3 nearest of class 1 (all its rows, noise included) */
    check_smote_plan(&p, &fixture2d[0][0], fixture2d_y, 24, 2, 3, NULL);
    /* worked by hand: from row 17 (83,31) the squared distances to class 1 are 488 (row 18),
     * 810 (20), 1717 (19), 1768 (22), 1800 (21), 1908 (16), 2650 (23): its 3 nearest are 18, 20, 19 */
    int nb[3];
    brute_knn(&fixture2d[0][0], fixture2d_y, 24, 2, 17, 1, 3, nb);
    ck_assert(nb[0] == 18 && nb[1] == 20 && nb[2] == 19);
    lb_synth_plan_free(&p);
    lb_synth_spec_free(&s);
}
END_TEST

/* ADASYN's per-row counts for t rows from the reference ratios: floor, then one more to the
 * largest remainders (ties to the lower row). */
static void ref_adasyn_counts(int t, int *g)
{
    double rem[8];
    int left = t;
    for (int i = 0; i < 8; i++) {
        g[i] = (int)floor(ref_adasyn_ratio[i] * t + 1e-9);
        rem[i] = ref_adasyn_ratio[i] * t - g[i];
        left -= g[i];
    }
    for (; left > 0; left--) {
        int best = -1;
        for (int i = 0; i < 8; i++)
            if (best < 0 || rem[i] > rem[best] + 1e-9) best = i;
        g[best]++;
        rem[best] = -1;
    }
}

START_TEST(test_adasyn_counts)
{
    /* t = 8 (auto): the ratios x 8 = 2.67, 1.6, 1.6, 1.6, 0, 0, 0, 0.53: floors 2,1,1,1,0,0,0,0
     * and the 3 largest remainders (rows 0, 1, 2) get one more: 3,2,2,1,0,0,0,0 (np.rint
     * would make 3,2,2,2,0,0,0,1 = 10 rows, synth_ref.py). t = 24: 8,5,5,5,0,0,0,1 (np.rint:
     * 8,5,5,5,0,0,0,2 = 25). */
    static const char *const specs[2] = {"adasyn", "adasyn:counts=16,32"};
    static const int hand[2][8] = {{3, 2, 2, 1, 0, 0, 0, 0}, {8, 5, 5, 5, 0, 0, 0, 1}};
    for (int v = 0; v < 2; v++) {
        lb_synth_spec s = parse_ok(specs[v]);
        lb_rng rng;
        lb_rng_seed(&rng, 3);
        lb_synth_plan p;
        ck_assert_int_eq(lb_synth_plan_rows(&s, &fixture2d[0][0], fixture2d_y, 24, 2, 2, &rng, &p), LB_OK);
        int t = v == 0 ? 8 : 24, g[8] = {0}, want[8];
        ck_assert_int_eq(p.n, 24 + t);
        ref_adasyn_counts(t, want);
        for (int r = 24; r < p.n; r++) g[p.source[r] - 16]++;
        for (int i = 0; i < 8; i++) {
            ck_assert_msg(g[i] == want[i] && g[i] == hand[v][i], "%s row %d: %d made, expected %d", specs[v], 16 + i, g[i],
                          want[i]);
        }
        /* bases in row order (np.repeat); neighbours among the 5 nearest of class 1 */
        for (int r = 25; r < p.n; r++) ck_assert_int_ge(p.source[r], p.source[r - 1]);
        check_smote_plan(&p, &fixture2d[0][0], fixture2d_y, 24, 2, 5, NULL);
        lb_synth_plan_free(&p);
        lb_synth_spec_free(&s);
    }
}
END_TEST

/* Two classes far apart: no danger point, no other-class neighbour. */
START_TEST(test_no_danger_no_other)
{
    float x[10][2];
    int y[10];
    for (int i = 0; i < 10; i++) {
        y[i] = i < 7 ? 0 : 1;
        x[i][0] = (float)(i < 7 ? i : 200 + i);
        x[i][1] = (float)(i * i % 5);
    }
    static const char *const specs[2] = {"borderline_smote:m=3", "adasyn:k=2"};
    static const char *const says[2] = {"no danger point", "no image of class 1 has a neighbour of another class"};
    for (int v = 0; v < 2; v++) {
        lb_synth_spec s = parse_ok(specs[v]);
        lb_rng rng;
        lb_rng_seed(&rng, 3);
        lb_synth_plan p;
        ck_assert_int_eq(lb_synth_plan_rows(&s, &x[0][0], y, 10, 2, 2, &rng, &p), LB_OK);
        ck_assert_int_eq(p.n, 10);
        ck_assert_int_eq(p.targets[1], 3);
        ck_assert_msg(warned(&p, says[v], "class 1"), "%s: no warning '%s'", specs[v], says[v]);
        lb_synth_plan_free(&p);
        lb_synth_spec_free(&s);
    }
}
END_TEST

/* ------------------------------------------------------------------ ros_noise */

START_TEST(test_ros_noise)
{
    /* 4 values a row; class 1's value 3 is constant (no noise there) */
    enum { DIM = 4, N0 = 50, N1 = 10, MAKE = 20000 };
    float x[(N0 + N1) * DIM];
    int y[N0 + N1];
    lb_rng g;
    lb_rng_seed(&g, 9);
    for (int i = 0; i < N0 + N1; i++) {
        y[i] = i % 6 == 5 ? 1 : 0;
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = (float)lb_rng_below(&g, 50u * (j + 1));
        if (y[i] == 1) x[i * DIM + 3] = 17;
    }
    /* the class's std (ddof 0) and the smoothing constant (4 / ((DIM + 2) N)) ^ (1 / (DIM + 4)) */
    double sd[DIM], h = pow(4.0 / ((DIM + 2.0) * (N0 + N1)), 1.0 / (DIM + 4.0));
    for (int j = 0; j < DIM; j++) {
        double m = 0, v = 0;
        for (int i = 0; i < N0 + N1; i++) m += y[i] == 1 ? x[i * DIM + j] : 0;
        m /= N1;
        for (int i = 0; i < N0 + N1; i++) v += y[i] == 1 ? (x[i * DIM + j] - m) * (x[i * DIM + j] - m) : 0;
        sd[j] = h * sqrt(v / N1);
    }
    static const char *const specs[3] = {"ros_noise:counts=50,20010", "ros_noise:shrinkage=0.5,counts=50,20010",
                                         "ros_noise:shrinkage=0,counts=50,20010"};
    static const double shrink[3] = {1.0, 0.5, 0.0};
    float *out = malloc(sizeof(float) * (N0 + N1 + MAKE) * DIM), *again = malloc(sizeof(float) * 100 * DIM);
    for (int v = 0; v < 3; v++) {
        lb_synth_spec s = parse_ok(specs[v]);
        lb_rng rng;
        lb_rng_seed(&rng, 5);
        lb_synth_plan p;
        ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, N0 + N1, DIM, 2, &rng, &p), LB_OK);
        ck_assert_int_eq(p.n, N0 + N1 + MAKE);
        ck_assert_int_eq(lb_synth_fill_rows(&s, &p, x, DIM, 77, out), LB_OK);
        double m2[DIM] = {0};
        for (int r = p.n_orig; r < p.n; r++) {
            ck_assert(y[p.source[r]] == 1 && p.neighbour[r] == -1 && isnan(p.gap[r]));
            for (int j = 0; j < DIM; j++) {
                double e = (double)out[(size_t)r * DIM + j] - x[p.source[r] * DIM + j];
                m2[j] += e * e;
                if (shrink[v] == 0.0) ck_assert(e == 0.0); /* exact copies */
            }
        }
        for (int j = 0; j < DIM; j++) {
            double got = sqrt(m2[j] / MAKE), want = shrink[v] * sd[j];
            ck_assert_msg(fabs(got - want) <= 0.03 * want + 1e-6, "%s value %d: noise sd %g, formula %g", specs[v], j, got,
                          want);
        }
        ck_assert(m2[3] == 0.0); /* the constant value */
        /* the fill does not depend on order: a plan cut short fills its rows alike */
        lb_synth_plan cut = p;
        cut.n = 100;
        ck_assert_int_eq(lb_synth_fill_rows(&s, &cut, x, DIM, 77, again), LB_OK);
        ck_assert_int_eq(memcmp(again, out, sizeof(float) * 100 * DIM), 0);
        lb_synth_plan_free(&p);
        lb_synth_spec_free(&s);
    }
    free(out);
    free(again);
}
END_TEST

/* ------------------------------------------------------------------ warnings and errors */

START_TEST(test_warnings)
{
    /* class 1 has 4 rows (<= k = 5): each uses its 3 others; class 2 a single row: copies */
    int counts[] = {12, 4, 1}, n, dim = 3;
    float x[17 * 3];
    int y[17];
    make_rows(21, counts, 3, dim, 255, x, y, &n);
    lb_synth_spec s = parse_ok("smote");
    lb_rng rng;
    lb_rng_seed(&rng, 1);
    lb_synth_plan p;
    ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, dim, 3, &rng, &p), LB_OK);
    ck_assert_int_eq(p.n, 36);
    ck_assert_msg(warned(&p, "class 1 has 4 images", "3 other"), "%d warnings", p.warnings.n);
    ck_assert(warned(&p, "class 2 has a single image", "11 synthetic images are copies"));
    ck_assert_int_eq(p.warnings.n, 2);
    float out[36 * 3];
    ck_assert_int_eq(lb_synth_fill_rows(&s, &p, x, dim, 1, out), LB_OK);
    for (int r = 17; r < 36; r++) {
        ck_assert(y[p.source[r]] == p.y[r]);
        if (p.y[r] == 1) {
            int nb[3];
            brute_knn(x, y, n, dim, p.source[r], 1, 3, nb);
            ck_assert(among(nb, 3, p.neighbour[r]));
        } else {
            ck_assert(p.neighbour[r] == -1 && isnan(p.gap[r]));
            ck_assert_int_eq(memcmp(out + r * 3, x + p.source[r] * 3, sizeof(float) * 3), 0);
        }
    }
    lb_synth_plan_free(&p);
    lb_synth_spec_free(&s);
    /* k = 0: nothing made */
    s = parse_ok("adasyn:k=0");
    ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, dim, 3, &rng, &p), LB_OK);
    ck_assert_int_eq(p.n, 17);
    ck_assert(p.targets[0] == 12 && p.targets[1] == 4 && p.targets[2] == 1);
    ck_assert(warned(&p, "k=0", "nothing made"));
    lb_synth_plan_free(&p);
    lb_synth_spec_free(&s);
    /* m larger than the rows: the danger set uses what there is */
    s = parse_ok("borderline_smote:m=40");
    ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, n, dim, 3, &rng, &p), LB_OK);
    ck_assert(warned(&p, "m=40", "16 used"));
    lb_synth_plan_free(&p);
    lb_synth_spec_free(&s);
}
END_TEST

START_TEST(test_errors)
{
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int y[4] = {0, 0, 1, 3};
    lb_synth_spec s = parse_ok("smote");
    lb_rng rng;
    lb_rng_seed(&rng, 1);
    lb_synth_plan p;
    ck_assert_err(lb_synth_plan_rows(&s, x, y, 4, 2, 3, &rng, &p), LB_EINVAL, "label 3 of entry 3");
    ck_assert_int_eq(p.n, 0);
    ck_assert_ptr_null(p.y);
    ck_assert_err(lb_synth_plan_rows(&s, x, y, 0, 2, 3, &rng, &p), LB_EINVAL, "no rows");
    ck_assert_err(lb_synth_plan_rows(&s, x, y, 4, 0, 3, &rng, &p), LB_EINVAL, "rows of 0 values");
    ck_assert_err(lb_synth_plan_rows(&s, x, y, 4, 2, 0, &rng, &p), LB_EINVAL, "0 classes");
    y[3] = 1;
    x[5] = NAN;
    ck_assert_err(lb_synth_plan_rows(&s, x, y, 4, 2, 2, &rng, &p), LB_EINVAL, "value 1 of row 2 is not finite");
    lb_synth_spec_free(&s);
    x[5] = 5;
    s = parse_ok("smote:counts=2,2,2");
    ck_assert_err(lb_synth_plan_rows(&s, x, y, 4, 2, 2, &rng, &p), LB_EINVAL, "3 values for 2 classes");
    lb_synth_spec_free(&s);
}
END_TEST

/* ------------------------------------------------------------------ datasets */

/* 20 images of 1x2x5 in 4 classes (labels i % 4), pixels spread over 0..255. */
static lb_dataset *tiny_dataset(void)
{
    lb_dataset *ds = blank_dataset(20, 2, 5, 4, "name", "tiny");
    lb_rng r;
    lb_rng_seed(&r, 4);
    for (int i = 0; i < 20; i++) {
        ds->labels[i] = i % 4;
        for (int j = 0; j < 10; j++) ds->pixels[i * 10 + j] = (uint8_t)lb_rng_below(&r, 256);
    }
    return ds;
}

START_TEST(test_dataset)
{
    lb_dataset *ds = tiny_dataset();
    /* a binary task over 14 of its images, in an order of their own: class 3 against the rest */
    int idx[14] = {19, 0, 3, 5, 7, 2, 11, 8, 15, 9, 12, 13, 1, 6}, y[14];
    for (int i = 0; i < 14; i++) y[i] = ds->labels[idx[i]] == 3 ? 1 : 0;
    static const char *const specs[4] = {"smote:k=2", "borderline_smote:k=2,m=3", "adasyn:k=2", "ros_noise"};
    for (int v = 0; v < 4; v++) {
        int64_t live = lb_alloc_live();
        lb_synth_plan p;
        lb_dataset *out = lb_synth_dataset(specs[v], ds, idx, y, 14, 2, 99, &p);
        ck_assert_msg(out != NULL, "%s: %s", specs[v], lb_last_error());
        ck_assert(out->c == 1 && out->h == 2 && out->w == 5 && out->n_classes == 2 && out->n == p.n);
        ck_assert_ptr_null(out->paths);
        ck_assert_str_eq(out->class_names[0], "0"); /* ds has 4 classes, the task 2 */
        char want[200];
        lb_synth_spec s = parse_ok(specs[v]);
        snprintf(want, sizeof want, "tiny resampled by %s", s.name);
        ck_assert_str_eq(out->source, want);
        ck_assert_int_eq(memcmp(out->labels, p.y, sizeof(int) * (size_t)p.n), 0);
        for (int i = 0; i < 14; i++) ck_assert_int_eq(memcmp(out->pixels + i * 10, ds->pixels + idx[i] * 10, 10), 0);
        /* the same plan from float rows of the same images (the plan draws from lb_rng_seed(99)) */
        float x[14 * 10];
        for (int i = 0; i < 140; i++) x[i] = ds->pixels[idx[i / 10] * 10 + i % 10];
        lb_rng rng;
        lb_rng_seed(&rng, 99);
        lb_synth_plan q;
        ck_assert_int_eq(lb_synth_plan_rows(&s, x, y, 14, 10, 2, &rng, &q), LB_OK);
        ck_assert_int_eq(q.n, p.n);
        ck_assert_int_eq(memcmp(q.source, p.source, sizeof(int) * (size_t)p.n), 0);
        ck_assert_int_eq(memcmp(q.neighbour, p.neighbour, sizeof(int) * (size_t)p.n), 0);
        float *fx = malloc(sizeof(float) * (size_t)p.n * 10);
        ck_assert_int_eq(lb_synth_fill_rows(&s, &q, x, 10, 99, fx), LB_OK);
        for (int r = 14; r < p.n; r++) {
            for (int j = 0; j < 10; j++) {
                /* the nearest uint8 of the float row's value, clamped (within 0.5 of the segment point) */
                double f = fx[(size_t)r * 10 + j], a = floor(f + 0.5);
                a = a < 0 ? 0 : a > 255 ? 255 : a;
                ck_assert_msg(out->pixels[r * 10 + j] == (uint8_t)a, "%s row %d value %d: %d, float %g", specs[v], r, j,
                              out->pixels[r * 10 + j], f);
                if (v < 3) ck_assert(fabs(out->pixels[r * 10 + j] - f) <= 0.5 + 1e-4);
            }
        }
        free(fx);
        lb_synth_plan_free(&q);
        lb_synth_spec_free(&s);
        lb_synth_plan_free(&p);
        lb_dataset_free(out);
        ck_assert_int_eq(lb_alloc_live(), live);
    }
    /* the task's classes are the dataset's: names copied */
    int all[20];
    for (int i = 0; i < 20; i++) all[i] = i;
    lb_synth_plan p;
    lb_dataset *out = lb_synth_dataset("smote", ds, all, ds->labels, 20, 4, 1, &p);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(out->n, 20); /* balanced already: nothing to make */
    ck_assert_str_eq(out->class_names[3], "name3");
    lb_dataset_free(out);
    lb_synth_plan_free(&p);
    /* errors: a bad spec, an entry outside the dataset; the plan comes back zeroed */
    ck_assert_ptr_null(lb_synth_dataset("smote:k=-1", ds, idx, y, 14, 2, 1, &p));
    ck_error_mentions("k=-1");
    ck_assert(p.n == 0 && p.y == NULL);
    idx[3] = 20;
    ck_assert_ptr_null(lb_synth_dataset("smote", ds, idx, y, 14, 2, 1, &p));
    ck_error_mentions("entry 3 is image 20");
    ck_assert(p.n == 0 && p.y == NULL);
    lb_synth_plan_free(&p);
    lb_dataset_free(ds);
}
END_TEST

/* A dataset of n images of 1 x 1 x dim, labels shuffled: each value `top` with probability
 * 15/16, else one of the three below it. Distances are small whole numbers, ties everywhere;
 * with top 255 the rows are near-white and their products approach the float limit of the
 * exact runs, where a sum beyond 2^24 would round and reorder near neighbours. */
static lb_dataset *drawn_dataset(uint64_t seed, const int *counts, int C, int dim, int top)
{
    int n = 0;
    for (int c = 0; c < C; c++) n += counts[c];
    lb_dataset *ds = blank_dataset(n, 1, dim, C, "", "drawn");
    lb_rng r;
    lb_rng_seed(&r, seed);
    for (int c = 0, i = 0; c < C; c++)
        for (int j = 0; j < counts[c]; j++) ds->labels[i++] = c;
    lb_rng_shuffle(&r, ds->labels, (size_t)n);
    for (size_t i = 0; i < (size_t)n * (size_t)dim; i++)
        ds->pixels[i] = (uint8_t)(lb_rng_below(&r, 16) ? (uint64_t)top : (uint64_t)top - 1 - lb_rng_below(&r, 3));
    return ds;
}

/* The uint8 path (float products in exact runs of 256, the symmetric search over a class)
 * against the float-row path (dgemm over each class's distinct bases) on the same images:
 * the same plan, neighbour for neighbour, and each pixel the nearest value to the float
 * row's. Both are exact, so any difference is a bug of one of them. */
static void check_pixels_match_floats(const char *spec, const lb_dataset *ds, int k)
{
    int n = ds->n, dim = ds->w, *idx = malloc(sizeof(int) * (size_t)n);
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    for (int i = 0; i < n; i++) idx[i] = i;
    for (size_t i = 0; i < (size_t)n * (size_t)dim; i++) x[i] = ds->pixels[i];
    lb_synth_plan p, q;
    lb_dataset *out = lb_synth_dataset(spec, ds, idx, ds->labels, n, ds->n_classes, 5, &p);
    ck_assert_msg(out != NULL, "%s: %s", spec, lb_last_error());
    lb_synth_spec s = parse_ok(spec);
    lb_rng rng;
    lb_rng_seed(&rng, 5);
    ck_assert_int_eq(lb_synth_plan_rows(&s, x, ds->labels, n, dim, ds->n_classes, &rng, &q), LB_OK);
    ck_assert_int_eq(q.n, p.n);
    for (int r = n; r < p.n; r++)
        ck_assert_msg(p.source[r] == q.source[r] && p.neighbour[r] == q.neighbour[r],
                      "%s dim %d: row %d from (%d, %d) on pixels, (%d, %d) on floats", spec, dim, r, p.source[r],
                      p.neighbour[r], q.source[r], q.neighbour[r]);
    float *fx = malloc(sizeof(float) * (size_t)p.n * (size_t)dim);
    ck_assert_int_eq(lb_synth_fill_rows(&s, &q, x, dim, 5, fx), LB_OK);
    for (size_t i = (size_t)n * (size_t)dim; i < (size_t)p.n * (size_t)dim; i++)
        ck_assert_msg(fabs(out->pixels[i] - fx[i]) <= 0.5 + 1e-4, "%s: value %zu: %d, float %g", spec, i, out->pixels[i],
                      (double)fx[i]);
    check_smote_plan(&p, x, ds->labels, n, dim, k, NULL);
    free(fx);
    free(idx);
    free(x);
    lb_synth_spec_free(&s);
    lb_synth_plan_free(&p);
    lb_synth_plan_free(&q);
    lb_dataset_free(out);
}

START_TEST(test_pixels_match_floats)
{
    /* 700 rows of class 1 grown by 700: most are bases, so the symmetric search runs over two
     * blocks (512 + 188); values 0..3 tie constantly */
    int counts[] = {1400, 700};
    lb_dataset *ds = drawn_dataset(8, counts, 2, 6, 3);
    check_pixels_match_floats("smote:k=3", ds, 3);
    lb_dataset_free(ds);
    /* rows of 600 near-white pixels: three runs of products (256 + 256 + 88), each run's
     * sums up to 256 x 255^2, just below 2^24 */
    int c2[] = {90, 40};
    ds = drawn_dataset(9, c2, 2, 600, 255);
    check_pixels_match_floats("smote:k=4", ds, 4);
    lb_dataset_free(ds);
}
END_TEST

/* ------------------------------------------------------------------ allocation failures */

/* Every allocation of planning and filling, failing in turn: LB_ENOMEM, a message, no leak. */
START_TEST(test_alloc_failures)
{
    int counts[] = {9, 4, 1}, n, dim = 5;
    float x[14 * 5], out[27 * 5];
    int y[14];
    make_rows(2, counts, 3, dim, 255, x, y, &n);
    static const char *const specs[4] = {"smote:k=3", "borderline_smote:k=2,m=4", "adasyn:k=3", "ros_noise"};
    for (int v = 0; v < 4; v++) {
        lb_synth_spec s = parse_ok(specs[v]);
        int64_t live = lb_alloc_live();
        for (uint64_t at = 1;; at++) {
            lb_rng rng;
            lb_rng_seed(&rng, 1);
            lb_synth_plan p;
            lb_alloc_fail_at(at, 1);
            int rc = lb_synth_plan_rows(&s, x, y, n, dim, 3, &rng, &p);
            if (rc == LB_OK) rc = lb_synth_fill_rows(&s, &p, x, dim, 1, out);
            uint64_t injected = lb_alloc_injected();
            lb_alloc_fail_at(0, 0);
            lb_synth_plan_free(&p);
            ck_assert_int_eq(lb_alloc_live(), live);
            if (!injected) {
                ck_assert_int_eq(rc, LB_OK);
                break;
            }
            ck_assert_msg(rc == LB_ENOMEM && strstr(lb_last_error(), "memory"), "%s, allocation %d: %d '%s'", specs[v],
                          (int)at, rc, lb_last_error());
        }
        lb_synth_spec_free(&s);
    }
}
END_TEST

/* ------------------------------------------------------------------ the sampler kind */

START_TEST(test_sampler_kind)
{
    char name[160];
    ck_assert_int_eq(lb_sampler_canonical("smote:k=3", name, sizeof name), LB_OK);
    ck_assert_str_eq(name, "smote:k=3");
    ck_assert_int_eq(lb_sampler_canonical("ros_noise:shrinkage=1", name, sizeof name), LB_OK);
    ck_assert_str_eq(name, "ros_noise");
    ck_assert_err(lb_sampler_canonical("smote:k=-1", name, sizeof name), LB_EINVAL, "k=-1");
    ck_assert_err(lb_sampler_canonical("smoke", name, sizeof name), LB_EINVAL, "borderline_smote, adasyn or ros_noise");
    char small[12];
    ck_assert_err(lb_sampler_canonical("borderline_smote:k=3", small, sizeof small), LB_EINVAL, "longer than the 11");
    int rows[30], y[30];
    for (int i = 0; i < 30; i++) {
        rows[i] = i;
        y[i] = i % 3;
    }
    lb_sampler *s = lb_sampler_new("adasyn:counts=10,10,10", rows, y, 30, 3, 5);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(lb_sampler_kind_of(s), LB_SAMPLER_SYNTHETIC);
    ck_assert_str_eq(lb_sampler_name(s), "adasyn:counts=10,10,10");
    ck_assert_int_eq(lb_sampler_epoch_len(s), 30);
    const int *ei, *ey;
    ck_assert_int_eq(lb_sampler_epoch(s, 0, &ei, &ey), LB_OK);
    int seen[30] = {0}, moved = 0;
    for (int i = 0; i < 30; i++) {
        seen[ei[i]]++;
        moved += ei[i] != i;
        ck_assert_int_eq(ey[i], ei[i] % 3);
    }
    for (int i = 0; i < 30; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_gt(moved, 0);
    lb_sampler_free(s);
}
END_TEST

static Suite *synth_suite(void)
{
    Suite *s = suite_create("synth");
    TCase *tc = tcase_create("synth");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_spec_names);
    tcase_add_test(tc, test_spec_errors);
    tcase_add_test(tc, test_targets);
    tcase_add_test(tc, test_smote_rows);
    tcase_add_test(tc, test_smote_blocks);
    tcase_add_test(tc, test_borderline_danger);
    tcase_add_test(tc, test_adasyn_counts);
    tcase_add_test(tc, test_no_danger_no_other);
    tcase_add_test(tc, test_ros_noise);
    tcase_add_test(tc, test_warnings);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_dataset);
    tcase_add_test(tc, test_pixels_match_floats);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_sampler_kind);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lb_run_suite(synth_suite()); }
