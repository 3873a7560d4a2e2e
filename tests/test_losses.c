/* Losses: the spec parser, reference values from PyTorch, identities between losses,
 * numerics at extreme logits, finite-difference gradients, the tape node, DRW and custom
 * losses.
 *
 * Reference values (tests/ref/loss_refs.h) come from tests/ref/make_loss_refs.py: PyTorch
 * 1.13 / torchvision 0.14 in float64 on the same float32 logits, gradients by torch
 * autograd. The identities and finite differences need no reference. */
#include "check_util.h"
#include "libra/losses.h"
#include "ref/loss_refs.h"

#include <stdio.h>
#include <string.h>

#define MAXN 8
#define MAXC 4

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fabs(b)); }


/* ---- reference table ---- */

START_TEST(test_reference_table)
{
    const lref_case *rc = &lref_cases[_i];
    int large = strcmp(rc->set, "large") == 0;
    int n = large ? LREF_LARGE_N : LREF_MAIN_N, C = large ? LREF_LARGE_C : LREF_MAIN_C;
    const float *z = large ? lref_large_logits : lref_main_logits;
    const int *y = large ? lref_large_targets : lref_main_targets;
    lb_loss *L = lb_loss_new(rc->spec, C, lref_counts);
    ck_assert_msg(L != NULL, "%s: %s", rc->spec, lb_last_error());
    float per[MAXN], d[MAXN * MAXC];
    double mean;
    ck_assert_int_eq(lb_loss_eval(L, z, y, n, per, d, &mean, rc->step, rc->total_steps), LB_OK);
    for (int i = 0; i < n; i++)
        ck_assert_msg(close_rel(per[i], rc->loss[i], 1e-6), "%s (%s) sample %d: loss %.9g, torch %.9g",
                      rc->spec, rc->set, i, per[i], rc->loss[i]);
    for (int k = 0; k < n * C; k++)
        ck_assert_msg(close_rel(d[k], rc->grad[k], 1e-6), "%s (%s) dlogit %d: %.9g, torch %.9g", rc->spec,
                      rc->set, k, d[k], rc->grad[k]);
    ck_assert_msg(close_rel(mean, rc->mean, 1e-9), "%s (%s): mean %.15g, torch %.15g", rc->spec, rc->set,
                  mean, rc->mean);
    lb_loss_free(L);
}
END_TEST

/* docs/losses.md's worked example: five binary rows, gamma 2, alpha 0.25 on Diseased (class
 * 1), i.e. libra's per-class alpha 0.75,0.25. */
START_TEST(test_worked_example)
{
    lb_loss *ce = lb_loss_new("ce", 2, NULL);
    lb_loss *fl = lb_loss_new("focal:gamma=2,alpha=0.75,0.25", 2, NULL);
    ck_assert_ptr_nonnull(ce);
    ck_assert_ptr_nonnull(fl);
    float a[5], b[5];
    ck_assert_int_eq(lb_loss_eval(ce, lref_worked_logits, lref_worked_targets, 5, a, NULL, NULL, 0, 0), LB_OK);
    ck_assert_int_eq(lb_loss_eval(fl, lref_worked_logits, lref_worked_targets, 5, b, NULL, NULL, 0, 0), LB_OK);
    for (int i = 0; i < 5; i++) {
        ck_assert_close(a[i], lref_worked_ce[i], 1e-6);
        ck_assert_close(b[i], lref_worked_focal[i], 1e-6);
    }
    /* hand check of row 5: p_t = 0.2, CE = -ln 0.2, FL = 0.25 * 0.8^2 * CE */
    ck_assert_close(a[4], -log(0.2), 1e-6);
    ck_assert_close(b[4], 0.25 * 0.64 * -log(0.2), 1e-6);
    lb_loss_free(ce);
    lb_loss_free(fl);
}
END_TEST

/* ---- identities ---- */

static void expect_same(const char *spec_a, const char *spec_b, const int *counts, const float *z,
                        const int *y, int n, int C)
{
    lb_loss *A = lb_loss_new(spec_a, C, counts), *B = lb_loss_new(spec_b, C, counts);
    ck_assert_msg(A && B, "%s / %s: %s", spec_a, spec_b, lb_last_error());
    float pa[MAXN], pb[MAXN], da[MAXN * MAXC], db[MAXN * MAXC];
    double ma, mb;
    ck_assert_int_eq(lb_loss_eval(A, z, y, n, pa, da, &ma, 0, 0), LB_OK);
    ck_assert_int_eq(lb_loss_eval(B, z, y, n, pb, db, &mb, 0, 0), LB_OK);
    for (int i = 0; i < n; i++)
        ck_assert_msg(close_rel(pa[i], pb[i], 1e-6), "%s vs %s sample %d: %.9g vs %.9g", spec_a, spec_b, i,
                      pa[i], pb[i]);
    for (int k = 0; k < n * C; k++)
        ck_assert_msg(close_rel(da[k], db[k], 1e-6), "%s vs %s dlogit %d: %.9g vs %.9g", spec_a, spec_b, k,
                      da[k], db[k]);
    ck_assert_msg(close_rel(ma, mb, 1e-9), "%s vs %s mean: %.15g vs %.15g", spec_a, spec_b, ma, mb);
    lb_loss_free(A);
    lb_loss_free(B);
}

START_TEST(test_identities)
{
    static const int uniform[4] = {25, 25, 25, 25};
    for (int set = 0; set < 2; set++) {
        const float *z = set ? lref_large_logits : lref_main_logits;
        const int *y = set ? lref_large_targets : lref_main_targets;
        int n = set ? LREF_LARGE_N : LREF_MAIN_N;
        expect_same("focal:gamma=0", "ce", NULL, z, y, n, 4);
        expect_same("sigmoid_focal:gamma=0,alpha=-1", "bce", NULL, z, y, n, 4);
        /* Lin et al.'s alpha-balanced CE is the focal loss at gamma = 0 (torchvision's semantics) */
        expect_same("sigmoid_focal:gamma=0,alpha=0.25", "bce:alpha=0.25", NULL, z, y, n, 4);
        expect_same("wce:weights=1,1,1,1", "ce", NULL, z, y, n, 4);
        expect_same("wce:weights=inverse", "ce", uniform, z, y, n, 4);
        expect_same("balanced_softmax", "ce", uniform, z, y, n, 4);
        expect_same("logit_adjust", "ce", uniform, z, y, n, 4);
        expect_same("logit_adjust:tau=0.3", "ce", uniform, z, y, n, 4);
        expect_same("ldam:max_m=0,s=1", "ce", lref_counts, z, y, n, 4);
        /* balanced softmax is logit adjustment with tau = 1 (log n_c and log prior_c differ
         * by a constant); DRW from step 0 is the weighted loss from the start */
        expect_same("balanced_softmax", "logit_adjust:tau=1", lref_counts, z, y, n, 4);
        expect_same("ldam:drw_step=0,beta=0.99", "ldam:weights=effective,beta=0.99", lref_counts, z, y, n, 4);
    }
    /* two classes: Lin et al.'s alpha_t (alpha_pos = A) is the per-class list 1 - A, A */
    static const float z2[] = {2.0f, -1.0f, 0.3f, 0.4f, -3.0f, 4.0f, 0.0f, 0.0f, 7.0f, -7.0f};
    static const int y2[] = {0, 1, 1, 0, 1};
    expect_same("focal:gamma=2,alpha_pos=0.25", "focal:gamma=2,alpha=0.75,0.25", NULL, z2, y2, 5, 2);
    expect_same("focal:gamma=0.5,alpha_pos=0.9", "focal:gamma=0.5,alpha=0.1,0.9", NULL, z2, y2, 5, 2);
}
END_TEST

/* ---- numerics ---- */

static const char *ALL_SPECS[] = {
    "ce", "ce:smoothing=0.2", "bce", "bce:pos_weight=3", "wce", "wce:weights=sqrt",
    "wce:weights=effective", "focal", "focal:gamma=0.5", "focal:gamma=0.25,alpha=inverse",
    "focal:gamma=5,alpha=0.25", "sigmoid_focal", "sigmoid_focal:gamma=0.5,alpha=-1",
    "cb_focal", "cb_focal:gamma=0.5,beta=0.999", "ldam", "ldam:drw=0.5", "logit_adjust",
    "logit_adjust:tau=2", "balanced_softmax"};
#define N_ALL_SPECS ((int)(sizeof ALL_SPECS / sizeof ALL_SPECS[0]))

START_TEST(test_large_logits_finite)
{
    /* magnitudes 1e4: the target on the largest logit, on the smallest, and tied */
    static const float z[] = {1e4f, -1e4f, 2e4f, -3e4f, -1e4f, 1e4f, 1e4f, -1e4f,
                              3e4f, -1e4f, 1e4f, 0.0f,  1e4f,  1e4f, 1e4f, 1e4f};
    static const int y[] = {2, 0, 1, 3};
    float per[4], d[16];
    double mean;
    for (int s = 0; s < N_ALL_SPECS; s++) {
        lb_loss *L = lb_loss_new(ALL_SPECS[s], 4, lref_counts);
        ck_assert_msg(L != NULL, "%s: %s", ALL_SPECS[s], lb_last_error());
        ck_assert_msg(lb_loss_eval(L, z, y, 4, per, d, &mean, 60, 100) == LB_OK, "%s: %s", ALL_SPECS[s],
                      lb_last_error());
        for (int i = 0; i < 4; i++) ck_assert_msg(isfinite(per[i]), "%s: loss %d", ALL_SPECS[s], i);
        for (int k = 0; k < 16; k++) ck_assert_msg(isfinite(d[k]), "%s: dlogit %d", ALL_SPECS[s], k);
        ck_assert(isfinite(mean));
        lb_loss_free(L);
    }
}
END_TEST

START_TEST(test_focal_pt_to_one)
{
    /* p_t -> 1 with gamma < 1: (1-p)^(gamma-1) blows up, the gradient's limit is 0 */
    lb_loss *L = lb_loss_new("focal:gamma=0.5", 2, NULL);
    ck_assert_ptr_nonnull(L);
    static const float z[] = {0.0f, 1e4f, 0.0f, 40.0f, 0.0f, 20.0f};
    static const int y[] = {1, 1, 1};
    float per[3], d[6];
    ck_assert_int_eq(lb_loss_eval(L, z, y, 3, per, d, NULL, 0, 0), LB_OK);
    ck_assert(per[0] == 0.0f && d[0] == 0.0f && d[1] == 0.0f);
    for (int k = 0; k < 6; k++) ck_assert(isfinite(d[k]));
    /* p = 1 - e^-20 (approx): 1-p = 2.06e-9, FL = (1-p)^0.5 * (1-p), dFL/dz_y = -(1+g)(1-p)^(1+g) */
    double omp = exp(-20.0) / (1.0 + exp(-20.0));
    double want_l = sqrt(omp) * log1p(exp(-20.0)), want_d = -1.5 * pow(omp, 1.5);
    ck_assert_msg(fabs(per[2] - want_l) <= 1e-6 * want_l, "FL %.9g, expected %.9g", per[2], want_l);
    ck_assert_msg(fabs(d[5] - want_d) <= 1e-6 * -want_d, "dFL/dz_y %.9g, expected %.9g", d[5], want_d);
    ck_assert(d[4] == -d[5]);
    lb_loss_free(L);
    /* the sigmoid form at the same extremes */
    L = lb_loss_new("sigmoid_focal:gamma=0.5", 2, NULL);
    static const float z2[] = {-1e4f, 1e4f};
    static const int y2[] = {1};
    ck_assert_int_eq(lb_loss_eval(L, z2, y2, 1, per, d, NULL, 0, 0), LB_OK);
    ck_assert(per[0] == 0.0f && d[0] == 0.0f && d[1] == 0.0f);
    lb_loss_free(L);
}
END_TEST

START_TEST(test_non_finite_logits_reported)
{
    lb_loss *L = lb_loss_new("ce", 2, NULL);
    float z[] = {0.0f, 1.0f, NAN, 0.0f};
    int y[] = {0, 1};
    ck_assert_int_eq(lb_loss_eval(L, z, y, 2, NULL, NULL, NULL, 0, 0), LB_ENUMERIC);
    ck_error_mentions("sample 1");
    lb_loss_free(L);
}
END_TEST

/* ---- finite differences: central, in double, of the summed loss through lb_loss_eval_ex ---- */

static void fd_check(const char *spec, const int *counts, const float *z0, const int *y, int n, int C,
                     long step, long total)
{
    lb_loss *L = lb_loss_new(spec, C, counts);
    ck_assert_msg(L != NULL, "%s: %s", spec, lb_last_error());
    float z[MAXN * MAXC], d[MAXN * MAXC];
    double sum, den, fp, fm;
    memcpy(z, z0, (size_t)n * C * sizeof(float));
    ck_assert_int_eq(lb_loss_eval_ex(L, z, y, n, NULL, d, &sum, &den, step, total), LB_OK);
    for (int k = 0; k < n * C; k++) {
        float orig = z[k];
        z[k] = orig + 1e-3f;
        double zp = z[k];
        ck_assert_int_eq(lb_loss_eval_ex(L, z, y, n, NULL, NULL, &fp, &den, step, total), LB_OK);
        z[k] = orig - 1e-3f;
        double zm = z[k];
        ck_assert_int_eq(lb_loss_eval_ex(L, z, y, n, NULL, NULL, &fm, &den, step, total), LB_OK);
        z[k] = orig;
        double fd = (fp - fm) / (zp - zm); /* the float steps actually taken */
        ck_assert_msg(fabs(fd - d[k]) <= 2e-4 * fmax(1.0, fabs(d[k])), "%s: dlogit %d analytic %.9g, "
                      "finite difference %.9g", spec, k, d[k], fd);
    }
    lb_loss_free(L);
}

START_TEST(test_finite_differences)
{
    for (int s = 0; s < N_ALL_SPECS; s++)
        fd_check(ALL_SPECS[s], lref_counts, lref_main_logits, lref_main_targets, LREF_MAIN_N, LREF_MAIN_C,
                 60, 100);
    /* steeper ones: LDAM's scale multiplies the curvature by s^3, so a milder scale here */
    fd_check("ldam:s=5,max_m=1", lref_counts, lref_main_logits, lref_main_targets, LREF_MAIN_N, 4, 0, 0);
    fd_check("ce:smoothing=0.5", NULL, lref_main_logits, lref_main_targets, LREF_MAIN_N, 4, 0, 0);
    fd_check("bce:pos_weight=0.5,1,2,4", NULL, lref_main_logits, lref_main_targets, LREF_MAIN_N, 4, 0, 0);
    fd_check("focal:gamma=2,alpha=0.1,0.2,0.3,0.4", NULL, lref_main_logits, lref_main_targets, LREF_MAIN_N,
             4, 0, 0);
    static const float z2[] = {2.0f, -1.0f, 0.3f, 0.4f, -3.0f, 4.0f};
    static const int y2[] = {0, 1, 1};
    fd_check("focal:gamma=2,alpha_pos=0.25", NULL, z2, y2, 3, 2, 0, 0);
    /* moderate logits: the default ldam (s=30) is checked where its logits stay small */
    static const float small[] = {0.05f, -0.02f, 0.03f, 0.01f, -0.04f, 0.06f, 0.0f, 0.02f};
    static const int ys[] = {3, 1};
    fd_check("ldam", lref_counts, small, ys, 2, 4, 0, 0);
}
END_TEST

/* ---- the spec parser and lb_loss_create's errors ---- */

START_TEST(test_spec_parser)
{
    lb_spec *s = lb_spec_new("wce:weights=1, 2,4,beta = 0.9");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(lb_spec_name(s), "wce");
    ck_assert_int_eq(lb_spec_count(s), 2);
    ck_assert_str_eq(lb_spec_get(s, "weights"), "1,2,4");
    ck_assert_str_eq(lb_spec_get(s, "beta"), "0.9");
    double w[4], beta;
    int n;
    ck_assert_int_eq(lb_spec_numbers(s, "weights", w, 4, &n), LB_OK);
    ck_assert_int_eq(n, 3);
    ck_assert(w[0] == 1 && w[1] == 2 && w[2] == 4);
    ck_assert_int_eq(lb_spec_number(s, "beta", 0, 1, &beta), LB_OK);
    ck_assert(beta == 0.9);
    ck_assert_int_eq(lb_spec_number(s, "beta", 0, 0.5, &beta), LB_EINVAL);
    ck_error_mentions("beta");
    ck_assert_ptr_null(lb_spec_get(s, "gamma"));
    lb_spec_free(s);

    s = lb_spec_new("ce");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(lb_spec_count(s), 0);
    lb_spec_free(s);

    static const struct {
        const char *spec, *mention;
    } bad[] = {{"", "empty"},
               {"focal:gamma=0.5|1|2", "'|'"},
               {"focal:", "nothing after"},
               {"focal:gamma=", "gamma"},
               {"focal:gamma=1,gamma=2", "twice"},
               {"focal:gamma=1,,alpha=2", "empty item"},
               {"focal:gamma=1,", "empty item"},
               {"fo cal", "bad name"},
               {"focal:ga-mma=1", "bad key"},
               {"focal:gamma=1=2", "contains '='"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(lb_spec_new(bad[i].spec) == NULL, "'%s' accepted", bad[i].spec);
        ck_error_mentions(bad[i].mention);
    }

    /* words before the first key=value are positional; after one they continue its list */
    s = lb_spec_new("binary:Shirt,50,w=1,2");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(lb_spec_n_args(s), 2);
    ck_assert_str_eq(lb_spec_arg(s, 0), "Shirt");
    ck_assert_str_eq(lb_spec_arg(s, 1), "50");
    ck_assert_str_eq(lb_spec_get(s, "w"), "1,2");
    lb_spec_free(s);
    /* a loss takes no positional value */
    ck_assert_ptr_null(lb_loss_new("focal:gamma", 3, NULL));
    ck_error_mentions("not key=value");

    char buf[40];
    ck_assert_str_eq(lb_format_number(2.0, buf, sizeof buf), "2");
    ck_assert_str_eq(lb_format_number(0.9999, buf, sizeof buf), "0.9999");
    ck_assert_str_eq(lb_format_number(0.1, buf, sizeof buf), "0.1");
    ck_assert_str_eq(lb_format_number(-1.0, buf, sizeof buf), "-1");
    ck_assert_str_eq(lb_format_number(1e-12, buf, sizeof buf), "1e-12");
    ck_assert_str_eq(lb_format_number(30.0, buf, sizeof buf), "30");
    ck_assert_str_eq(lb_format_number(1500.0, buf, sizeof buf), "1500");
}
END_TEST

START_TEST(test_create_errors)
{
    static const int zero_count[4] = {10, 5, 3, 0};
    static const struct {
        const char *spec;
        const int *counts;
        const char *mention;
    } bad[] = {
        {"nope", NULL, "unknown loss 'nope'"},
        {"focal:gama=2", NULL, "unknown key 'gama'"},
        {"focal:alpha_pos=0.25", NULL, "two classes"},
        {"focal:alpha_pos=1.5", NULL, "alpha_pos"},
        {"ce:weights=1,2,3,4", NULL, "unknown key 'weights'"},
        {"focal:gamma=-1", NULL, "gamma"},
        {"focal:gamma=two", NULL, "gamma"},
        {"focal:gamma=1e999", NULL, "gamma"},
        {"ce:smoothing=1", NULL, "smoothing"},
        {"ldam", NULL, "ldam"},
        {"ldam:s=0", lref_counts, "s="},
        {"ldam:max_m=-0.5", lref_counts, "max_m"},
        {"balanced_softmax", NULL, "counts"},
        {"balanced_softmax", zero_count, "class 3"},
        {"logit_adjust:tau=-1", lref_counts, "tau"},
        {"wce", NULL, "counts"},
        {"wce:weights=1,2", NULL, "weights"},
        {"wce:weights=1,2,0,4", NULL, "weights"},
        {"wce:weights=1,2,x,4", NULL, "weights"},
        {"wce:weights=often", NULL, "weights"},
        {"wce:weights=effective,beta=1", lref_counts, "beta"},
        {"focal:alpha=0.25,drw=0.8,drw_step=3", NULL, "drw"},
        {"focal:alpha=0.25,drw=1.5", NULL, "drw"},
        {"focal:alpha=0.25,drw_step=2.5", NULL, "drw_step"},
        {"focal:reduction=avg", NULL, "reduction"},
        {"bce:pos_weight=-1", NULL, "pos_weight"},
        {"bce:pos_weight=1,2", NULL, "pos_weight"},
        {"sigmoid_focal:alpha=1.5", NULL, "alpha"},
        {"cb_focal:gamma=1", NULL, "counts"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb_loss *L = lb_loss_new(bad[i].spec, 4, bad[i].counts);
        ck_assert_msg(L == NULL, "'%s' accepted", bad[i].spec);
        ck_error_mentions(bad[i].mention);
    }
    ck_assert_ptr_null(lb_loss_new("ce", 1, NULL));
    ck_error_mentions("classes");
}
END_TEST

START_TEST(test_canonical_spec)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"ce", "ce:smoothing=0,reduction=mean"},
        {"focal", "focal:gamma=2,alpha_pos=-1,alpha=none,beta=0.999,drw=none,drw_step=none,reduction=mean"},
        {"focal:alpha=0.250,gamma=2.0", "focal:gamma=2,alpha_pos=-1,alpha=0.25,beta=0.999,drw=none,drw_step=none,reduction=mean"},
        {"wce:weights=1.0,2.00,4,8", "wce:weights=1,2,4,8,beta=0.999,drw=none,drw_step=none,reduction=mean"},
        {"ldam:drw=0.8", "ldam:max_m=0.5,s=30,weights=effective,beta=0.9999,drw=0.8,drw_step=none,reduction=mean"},
        {"sigmoid_focal:alpha=-1", "sigmoid_focal:gamma=2,alpha=-1,reduction=mean"},
        {"cb_focal:beta=0.9999,gamma=1", "cb_focal:gamma=1,weights=effective,beta=0.9999,drw=none,drw_step=none,reduction=mean"},
        {"bce:reduction=sum", "bce:alpha=-1,pos_weight=1,reduction=sum"},
        {"balanced_softmax", "balanced_softmax:weights=none,beta=0.9999,drw=none,drw_step=none,reduction=mean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lb_loss *L = lb_loss_new(cases[i].in, 4, lref_counts);
        ck_assert_msg(L != NULL, "%s: %s", cases[i].in, lb_last_error());
        ck_assert_str_eq(lb_loss_spec(L), cases[i].out);
        lb_loss_free(L);
    }
    /* every canonical spec reads back to itself */
    for (int s = 0; s < N_ALL_SPECS; s++) {
        lb_loss *L = lb_loss_new(ALL_SPECS[s], 4, lref_counts);
        lb_loss *R = lb_loss_new(lb_loss_spec(L), 4, lref_counts);
        ck_assert_msg(R != NULL, "%s: %s", lb_loss_spec(L), lb_last_error());
        ck_assert_str_eq(lb_loss_spec(R), lb_loss_spec(L));
        lb_loss_free(L);
        lb_loss_free(R);
    }
    const char *names[32];
    int n = lb_loss_list(names, 32);
    ck_assert_int_ge(n, 9);
    static const char *builtin[] = {"ce", "bce", "wce", "focal", "sigmoid_focal", "cb_focal", "ldam",
                                    "logit_adjust", "balanced_softmax"};
    for (int b = 0; b < 9; b++) {
        int found = 0;
        for (int i = 0; i < n && i < 32; i++) found |= strcmp(names[i], builtin[b]) == 0;
        ck_assert_msg(found, "%s not listed", builtin[b]);
        ck_assert_ptr_nonnull(lb_loss_find(builtin[b]));
    }
    ck_assert_ptr_null(lb_loss_find("nope"));
}
END_TEST

/* ---- per-class lists by class name ---- */

/* Four classes in index order, one name with a blank and one with a '/'. */
static const char *const NAMES4[] = {"Healthy", "T-shirt/top", "Ankle boot", "Diseased"};

/* Each positional spec (class-index order) and the same list by name, in another order and
 * with other spellings of the numbers. */
static const struct {
    const char *positional, *named;
} NAMED_PAIRS[] = {
    {"focal:gamma=2,alpha=0.1,0.2,0.3,0.4", "focal:alpha=Diseased:0.40,Ankle boot:0.3,Healthy:.1,T-shirt/top:2e-1,gamma=2"},
    {"wce:weights=1,2,4,8", "wce:weights=T-shirt/top:2, Healthy : 1 ,Diseased:8,Ankle boot:4.0"},
    {"bce:pos_weight=1,2,3,4", "bce:alpha=-1,pos_weight=Ankle boot:3,Diseased:4,Healthy:1,T-shirt/top:2"},
    {"cb_focal:weights=0.5,1,2,4", "cb_focal:weights=Diseased:4,T-shirt/top:1,Healthy:0.5,Ankle boot:2"},
    {"ldam:weights=3,1,2,5,drw=0.5", "ldam:drw=0.5,weights=Ankle boot:2,Diseased:5,Healthy:3,T-shirt/top:1"},
    {"logit_adjust:weights=1,1,2,2", "logit_adjust:weights=Healthy:1,Diseased:2,T-shirt/top:1,Ankle boot:2"},
};
#define N_NAMED_PAIRS ((int)(sizeof NAMED_PAIRS / sizeof NAMED_PAIRS[0]))

/* A named list gives bit for bit the losses and gradients of the positional list in index
 * order; where the positional spec is in the PyTorch table, the named one matches it too. */
START_TEST(test_named_list_same_as_positional)
{
    for (int p = 0; p < N_NAMED_PAIRS; p++) {
        lb_loss *A = lb_loss_new(NAMED_PAIRS[p].positional, 4, lref_counts);
        lb_loss *B = lb_loss_new_named(NAMED_PAIRS[p].named, 4, lref_counts, NAMES4);
        ck_assert_msg(A && B, "%s: %s", NAMED_PAIRS[p].named, lb_last_error());
        ck_assert_str_eq(lb_loss_spec(B), lb_loss_spec(A));
        for (int set = 0; set < 2; set++) {
            const float *z = set ? lref_large_logits : lref_main_logits;
            const int *y = set ? lref_large_targets : lref_main_targets;
            int n = set ? LREF_LARGE_N : LREF_MAIN_N;
            float pa[MAXN], pb[MAXN], da[MAXN * MAXC], db[MAXN * MAXC];
            double sa, sb, ea, eb;
            ck_assert_int_eq(lb_loss_eval_ex(A, z, y, n, pa, da, &sa, &ea, 60, 100), LB_OK);
            ck_assert_int_eq(lb_loss_eval_ex(B, z, y, n, pb, db, &sb, &eb, 60, 100), LB_OK);
            ck_assert_msg(memcmp(pa, pb, (size_t)n * sizeof *pa) == 0, "%s: losses differ", NAMED_PAIRS[p].named);
            ck_assert_msg(memcmp(da, db, (size_t)n * 4 * sizeof *da) == 0, "%s: gradients differ",
                          NAMED_PAIRS[p].named);
            ck_assert(sa == sb && ea == eb);
            for (int c = 0; c < LREF_NCASES; c++) {
                const lref_case *rc = &lref_cases[c];
                if (strcmp(rc->spec, NAMED_PAIRS[p].positional) != 0 || strcmp(rc->set, set ? "large" : "main"))
                    continue;
                float per[MAXN], d[MAXN * MAXC];
                ck_assert_int_eq(lb_loss_eval(B, z, y, n, per, d, NULL, rc->step, rc->total_steps), LB_OK);
                for (int i = 0; i < n; i++) ck_assert_msg(close_rel(per[i], rc->loss[i], 1e-6), "%s: sample %d", rc->spec, i);
                for (int k = 0; k < n * 4; k++) ck_assert_msg(close_rel(d[k], rc->grad[k], 1e-6), "%s: dlogit %d", rc->spec, k);
            }
        }
        lb_loss_free(A);
        lb_loss_free(B);
    }
}
END_TEST

/* docs/losses.md: the worked example's alpha by name gives its numbers whichever index the
 * classes have (an image folder sorts them: Diseased 0, Healthy 1). */
START_TEST(test_named_list_worked_example)
{
    static const char *const given[] = {"Healthy", "Diseased"}, *const sorted[] = {"Diseased", "Healthy"};
    const char *spec = "focal:gamma=2,alpha=Healthy:0.75,Diseased:0.25";
    float z[10], per[5];
    int y[5];
    for (int i = 0; i < 5; i++) {
        z[2 * i] = lref_worked_logits[2 * i + 1];
        z[2 * i + 1] = lref_worked_logits[2 * i];
        y[i] = 1 - lref_worked_targets[i];
    }
    for (int order = 0; order < 2; order++) {
        lb_loss *L = lb_loss_new_named(spec, 2, NULL, order ? sorted : given);
        ck_assert_msg(L != NULL, "%s", lb_last_error());
        ck_assert_str_eq(lb_loss_spec(L), order ? "focal:gamma=2,alpha_pos=-1,alpha=0.25,0.75,beta=0.999,drw=none,drw_step=none,reduction=mean"
                                                : "focal:gamma=2,alpha_pos=-1,alpha=0.75,0.25,beta=0.999,drw=none,drw_step=none,reduction=mean");
        ck_assert_int_eq(lb_loss_eval(L, order ? z : lref_worked_logits, order ? y : lref_worked_targets, 5, per, NULL,
                                      NULL, 0, 0), LB_OK);
        for (int i = 0; i < 5; i++) ck_assert_close(per[i], lref_worked_focal[i], 1e-6);
        lb_loss_free(L);
    }
}
END_TEST

START_TEST(test_named_list_errors)
{
    static const char *const twins[] = {"Healthy", "Bag", "Bag", "Diseased"}, *const with_null[] = {"Healthy", NULL, "a", "b"};
    static const struct {
        const char *spec;
        const char *const *names;
        const char *mention;
    } bad[] = {
        {"focal:alpha=Healthy:1,T-shirt/top:1,Ankle boot:1,Sick:1", NAMES4,
         "'Sick' is not a class name (classes: Healthy, T-shirt/top, Ankle boot, Diseased)"},
        {"focal:alpha=healthy:1,T-shirt/top:1,Ankle boot:1,Diseased:1", NAMES4, "'healthy' is not a class name"},
        {"focal:alpha=Healthy:1,T-shirt/top:1,Healthy:2,Diseased:1", NAMES4, "class 'Healthy' is given twice"},
        {"wce:weights=Healthy:1,T-shirt/top:1,Diseased:1", NAMES4, "no value for class 'Ankle boot'"},
        {"wce:weights=T-shirt/top:1,Diseased:1", NAMES4, "no value for classes 'Healthy', 'Ankle boot'"},
        {"focal:alpha=Healthy:1,T-shirt/top:1,Ankle boot:1,Diseased:1", NULL, "class names are not known here"},
        {"bce:pos_weight=Healthy:1,T-shirt/top:1,Ankle boot:1,Diseased:1", NULL, "class names are not known here"},
        {"focal:alpha=1,T-shirt/top:1,Ankle boot:1,Diseased:1", NAMES4, "mixes values by position and by class name"},
        {"focal:alpha=Healthy:1,:1,Ankle boot:1,Diseased:1", NAMES4, "no class name"},
        {"focal:alpha=Healthy:x,T-shirt/top:1,Ankle boot:1,Diseased:1", NAMES4, "the value 'x' of class 'Healthy' is not a number"},
        {"focal:alpha=Healthy:a:1,T-shirt/top:1,Ankle boot:1,Diseased:1", NAMES4, "cannot hold ':'"},
        {"focal:alpha=Healthy:0,T-shirt/top:1,Ankle boot:1,Diseased:1", NAMES4, "the value 0 of class 'Healthy' must be > 0"},
        {"bce:pos_weight=Healthy:-1,T-shirt/top:1,Ankle boot:1,Diseased:1", NAMES4, "of class 'Healthy' must be > 0"},
        {"focal:alpha=Healthy:1,Bag:1,Diseased:1", twins, "classes 1 and 2 are both named 'Bag'"},
        {"focal:alpha=Healthy:1,a:1,b:1", with_null, "class 1 has no name"},
        {"sigmoid_focal:alpha=Healthy:0.25", NAMES4, "alpha=Healthy:0.25 is not a number"}, /* one number, not a list */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb_loss *L = lb_loss_new_named(bad[i].spec, 4, lref_counts, bad[i].names);
        ck_assert_msg(L == NULL, "'%s' accepted", bad[i].spec);
        ck_assert_int_eq(lb_last_status(), LB_EINVAL);
        ck_error_mentions(bad[i].mention);
    }
    /* lb_loss_new has no names; lb_loss_canonical_named resolves (and refuses) like lb_loss_new_named */
    ck_assert_ptr_null(lb_loss_new("wce:weights=Healthy:1,T-shirt/top:2,Ankle boot:3,Diseased:4", 4, NULL));
    ck_error_mentions("class names are not known here");
    lb_buf b = {0};
    ck_assert_err(lb_loss_canonical_named("wce:weights=Healthy:1,Sick:2,Ankle boot:3,Diseased:4", 4, NAMES4, &b), LB_EINVAL,
                  "'Sick' is not a class name");
    ck_assert_err(lb_loss_canonical_named("wce:weights=Healthy:1,Diseased:4", 4, NAMES4, &b), LB_EINVAL,
                  "no value for classes 'T-shirt/top', 'Ankle boot'");
    /* without names the form is still checked: a mix, a class twice, a value that is not a number */
    ck_assert_err(lb_loss_canonical("focal:alpha=0.5,Healthy:0.5", &b), LB_EINVAL, "mixes values by position");
    ck_assert_err(lb_loss_canonical("focal:alpha=Healthy:0.5,Healthy:0.5", &b), LB_EINVAL, "class 'Healthy' is given twice");
    ck_assert_err(lb_loss_canonical("focal:alpha=Healthy:often,Sick:0.5", &b), LB_EINVAL, "is not a number");
    ck_assert_msg(b.n == 0, "a failed lb_loss_canonical left '%s'", b.p); /* nothing half-written */
    lb_buf_free(&b);
}
END_TEST

static void canonical_of(const char *spec, int C, const char *const *names, char *out, size_t size)
{
    lb_buf b = {0};
    int rc = names ? lb_loss_canonical_named(spec, C, names, &b) : lb_loss_canonical(spec, &b);
    ck_assert_msg(rc == LB_OK, "%s: %s", spec, lb_last_error());
    snprintf(out, size, "%s", b.p);
    lb_buf_free(&b);
}

START_TEST(test_named_list_canonical)
{
    char a[256], b[256], c[256];
    for (int p = 0; p < N_NAMED_PAIRS; p++) {
        lb_loss *A = lb_loss_new(NAMED_PAIRS[p].positional, 4, lref_counts);
        ck_assert_ptr_nonnull(A);
        /* with the names: the positional form, as lb_loss_spec and lb_loss_canonical give it */
        canonical_of(NAMED_PAIRS[p].named, 4, NAMES4, a, sizeof a);
        canonical_of(NAMED_PAIRS[p].positional, 0, NULL, b, sizeof b);
        ck_assert_str_eq(a, lb_loss_spec(A));
        ck_assert_str_eq(b, lb_loss_spec(A));
        canonical_of(NAMED_PAIRS[p].positional, 4, NAMES4, c, sizeof c);
        ck_assert_str_eq(c, lb_loss_spec(A));
        /* without: the named form normalised, a fixed point that lb_loss_new_named reads */
        canonical_of(NAMED_PAIRS[p].named, 0, NULL, a, sizeof a);
        ck_assert_ptr_nonnull(strstr(a, "=Ankle boot:")); /* sorted: Ankle boot, Diseased, Healthy, T-shirt/top */
        canonical_of(a, 0, NULL, b, sizeof b);
        ck_assert_str_eq(b, a);
        lb_loss *R = lb_loss_new_named(a, 4, lref_counts, NAMES4);
        ck_assert_msg(R != NULL, "%s: %s", a, lb_last_error());
        ck_assert_str_eq(lb_loss_spec(R), lb_loss_spec(A));
        lb_loss_free(R);
        lb_loss_free(A);
    }
    canonical_of("focal:gamma=2,alpha=T-shirt/top:0.20,Healthy:1e-1, Diseased:0.4,Ankle boot : .3", 0, NULL, a, sizeof a);
    ck_assert_str_eq(a, "focal:gamma=2,alpha_pos=-1,alpha=Ankle boot:0.3,Diseased:0.4,Healthy:0.1,T-shirt/top:0.2,beta=0.999,"
                        "drw=none,drw_step=none,reduction=mean");
    /* every class name in strcmp order: upper case before lower case */
    canonical_of("wce:weights=b:1,B:2,a:3", 0, NULL, a, sizeof a);
    ck_assert_str_eq(a, "wce:weights=B:2,a:3,b:1,beta=0.999,drw=none,drw_step=none,reduction=mean");
    /* NULL names: the same as lb_loss_canonical */
    lb_buf buf = {0};
    ck_assert_int_eq(lb_loss_canonical_named("focal:alpha=b:1,a:2", 2, NULL, &buf), LB_OK);
    ck_assert_ptr_nonnull(strstr(buf.p, "alpha=a:2,b:1,"));
    lb_buf_free(&buf);
}
END_TEST

/* Each allocation of a named list's resolution made to fail in turn: LB_ENOMEM, nothing kept. */
START_TEST(test_named_list_out_of_memory)
{
    int64_t live0 = lb_alloc_live();
    for (uint64_t n = 1;; n++) {
        lb_clear_error();
        lb_alloc_fail_at(n, 1);
        lb_loss *L = lb_loss_new_named(NAMED_PAIRS[0].named, 4, lref_counts, NAMES4);
        lb_buf b = {0};
        int rc = L ? lb_loss_canonical_named(NAMED_PAIRS[1].named, 4, NAMES4, &b) : LB_ENOMEM;
        uint64_t injected = lb_alloc_injected();
        lb_alloc_fail_at(0, 0);
        if (injected == 0) {
            ck_assert_msg(L && rc == LB_OK, "fails with no allocation failing: %s", lb_last_error());
        } else {
            ck_assert_msg(!L || rc == LB_ENOMEM, "allocation %llu failing: %d", (unsigned long long)n, rc);
            ck_assert_int_eq(lb_last_status(), LB_ENOMEM);
        }
        lb_loss_free(L);
        lb_buf_free(&b);
        ck_assert_msg(lb_alloc_live() == live0, "allocation %llu failing: %lld not given back", (unsigned long long)n,
                      (long long)(lb_alloc_live() - live0));
        if (injected == 0) break;
    }
}
END_TEST

/* ---- DRW ---- */

START_TEST(test_drw_schedule)
{
    lb_loss *L = lb_loss_new("wce:weights=1,3,drw=0.5", 2, NULL);
    ck_assert_ptr_nonnull(L);
    ck_assert_close(lb_loss_class_weight(L, 1, 49, 100), 1.0, 0);
    ck_assert_close(lb_loss_class_weight(L, 0, 50, 100), 0.5, 1e-15);
    ck_assert_close(lb_loss_class_weight(L, 1, 50, 100), 1.5, 1e-15);
    static const float z[] = {0.3f, -0.2f, 0.1f, 0.4f};
    static const int y[] = {0, 1};
    double before, after;
    ck_assert_int_eq(lb_loss_eval(L, z, y, 2, NULL, NULL, &before, 10, 100), LB_OK);
    ck_assert_int_eq(lb_loss_eval(L, z, y, 2, NULL, NULL, &after, 90, 100), LB_OK);
    /* weighted mean (0.5 l0 + 1.5 l1) / 2 vs plain mean (l0 + l1) / 2 */
    double l0 = log1p(exp(-0.5)), l1 = log1p(exp(-0.3));
    ck_assert_close(before, (l0 + l1) / 2, 1e-7); /* 0.3f etc. are not exact */
    ck_assert_close(after, (0.5 * l0 + 1.5 * l1) / 2, 1e-7);
    /* a fraction of an unknown budget is an error, not a silent choice */
    ck_assert_int_eq(lb_loss_eval(L, z, y, 2, NULL, NULL, &after, 10, 0), LB_EINVAL);
    ck_error_mentions("drw");
    lb_loss_free(L);
    L = lb_loss_new("wce:weights=1,3,drw_step=7", 2, NULL);
    ck_assert_close(lb_loss_class_weight(L, 1, 6, 0), 1.0, 0);
    ck_assert_close(lb_loss_class_weight(L, 1, 7, 0), 1.5, 1e-15);
    lb_loss_free(L);
}
END_TEST

/* ---- the tape node ---- */

START_TEST(test_forward_backward)
{
    const int N = LREF_MAIN_N, C = LREF_MAIN_C;
    static const char *red[] = {"mean", "sum", "none"};
    for (int r = 0; r < 3; r++) {
        char spec[64];
        snprintf(spec, sizeof spec, "wce:weights=sqrt,reduction=%s", red[r]);
        lb_loss *L = lb_loss_new(spec, C, lref_counts);
        ck_assert_ptr_nonnull(L);
        float per[MAXN], d[MAXN * MAXC];
        double sum, den;
        ck_assert_int_eq(lb_loss_eval_ex(L, lref_main_logits, lref_main_targets, N, per, d, &sum, &den, 0, 0),
                         LB_OK);
        lb_graph *g = lb_graph_new();
        lb_node *x = lb_leaf(g, 2, (int[]){N, C}, lref_main_logits, 1);
        lb_node *l = lb_loss_forward(L, g, x, lref_main_targets, 0, 0);
        ck_assert_msg(l != NULL, "%s", lb_last_error());
        /* a downstream op (x3) checks that backward uses the node's incoming gradient */
        lb_node *root = r == 2 ? lb_sum(g, lb_scale(g, l, 3.0f)) : lb_scale(g, l, 3.0f);
        ck_assert_int_eq(lb_backward(g, root), LB_OK);
        double scale = r == 0 ? 1.0 / den : 1.0;
        if (r == 0) ck_assert_close(l->val[0], sum / den, 1e-6);
        if (r == 1) ck_assert_close(l->val[0], sum, 1e-5);
        if (r == 2) {
            ck_assert_int_eq(l->shape[0], N);
            for (int i = 0; i < N; i++) ck_assert_close(l->val[i], per[i], 1e-7);
        }
        for (int k = 0; k < N * C; k++) ck_assert_close(x->grad[k], 3.0 * d[k] * scale, 1e-6);
        lb_graph_free(g);
        lb_loss_free(L);
    }
}
END_TEST

START_TEST(test_forward_errors_and_eval_mode)
{
    lb_loss *L = lb_loss_new("ce", 4, NULL);
    lb_graph *g = lb_graph_new();
    lb_node *x = lb_leaf(g, 2, (int[]){2, 4}, lref_main_logits, 1);
    int bad_y[] = {0, 4};
    ck_assert_ptr_null(lb_loss_forward(L, g, x, bad_y, 0, 0));
    ck_error_mentions("target 4 of sample 1");
    lb_node *x3 = lb_leaf(g, 2, (int[]){2, 3}, lref_main_logits, 1);
    int y[] = {0, 1};
    ck_assert_ptr_null(lb_loss_forward(L, g, x3, y, 0, 0));
    ck_error_mentions("[2, 3]");
    ck_assert_ptr_null(lb_loss_forward(L, g, NULL, y, 0, 0));
    lb_graph_free(g);
    /* evaluation: no gradient buffers, the value is still there */
    g = lb_graph_new();
    lb_graph_set_grad(g, 0);
    x = lb_leaf(g, 2, (int[]){2, 4}, lref_main_logits, 1);
    lb_node *l = lb_loss_forward(L, g, x, lref_main_targets, 0, 0);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_null(l->grad);
    ck_assert_close(l->val[0], (lref_cases[0].loss[0] + lref_cases[0].loss[1]) / 2, 1e-6);
    lb_graph_free(g);
    lb_loss_free(L);
}
END_TEST

START_TEST(test_no_malloc_per_step)
{
    const int N = LREF_MAIN_N, C = LREF_MAIN_C;
    lb_loss *L = lb_loss_new("ldam:drw=0.5", C, lref_counts);
    lb_params *P = lb_params_new();
    ck_assert_int_ge(lb_params_add(P, "logits", 2, (int[]){N, C}), 0);
    memcpy(lb_params_value(P, 0), lref_main_logits, sizeof(float) * N * C);
    lb_graph *g = lb_graph_new();
    uint64_t before = 0;
    for (int step = 0; step < 4; step++) {
        if (step == 2) before = lb_alloc_count();
        lb_graph_reset(g);
        lb_params_zero_grad(P);
        lb_node *l = lb_loss_forward(L, g, lb_param(g, P, 0), lref_main_targets, step * 30, 100);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(lb_backward(g, l), LB_OK);
    }
    ck_assert_msg(lb_alloc_count() == before, "%llu allocations in two steps",
                  (unsigned long long)(lb_alloc_count() - before));
    lb_graph_free(g);
    lb_params_free(P);
    lb_loss_free(L);
}
END_TEST

/* ---- a user-defined loss: l = 1/2 sum_{c != y} (z_c - z_y + margin)^2 ---- */

static int sq_init(const lb_spec *spec, int C, const int *counts, void **state)
{
    (void)C;
    (void)counts;
    double *m = lb_malloc(sizeof *m);
    int rc = lb_spec_number(spec, "margin", 0.0, 10.0, m);
    if (rc != LB_OK) lb_free(m);
    else *state = m;
    return rc;
}

static double sq_sample(const void *state, int C, const float *z, int y, double *dz)
{
    double m = *(const double *)state, l = 0;
    dz[y] = 0;
    for (int c = 0; c < C; c++) {
        if (c == y) continue;
        double t = (double)z[c] - z[y] + m;
        l += 0.5 * t * t;
        dz[c] = t;
        dz[y] -= t;
    }
    return l;
}

static void sq_free(void *state) { lb_free(state); }

static const lb_loss_param sq_params[] = {{"margin", "1", "target gap"}, {NULL, NULL, NULL}};

START_TEST(test_custom_loss)
{
    lb_loss_kind k = {"test loss", sq_params, "weights", "none", 0.99, LB_LOSS_WEIGHTED_MEAN, sq_init,
                      sq_sample, sq_free};
    ck_assert_int_eq(lb_loss_register("test_sq", &k), LB_OK);
    ck_assert_int_eq(lb_loss_register("test_sq", &k), LB_EINVAL);
    ck_error_mentions("already");
    ck_assert_int_eq(lb_loss_register("Bad-Name", &k), LB_EINVAL);
    static const lb_loss_param clash[] = {{"reduction", "x", ""}, {NULL, NULL, NULL}};
    lb_loss_kind k2 = k;
    k2.params = clash;
    ck_assert_int_eq(lb_loss_register("test_clash", &k2), LB_EINVAL);
    ck_error_mentions("reduction");

    lb_loss *L = lb_loss_new("test_sq:margin=0.5,weights=1,3", 2, NULL);
    ck_assert_msg(L != NULL, "%s", lb_last_error());
    ck_assert_str_eq(lb_loss_spec(L), "test_sq:margin=0.5,weights=1,3,beta=0.99,drw=none,drw_step=none,reduction=mean");
    static const float z[] = {1.0f, 0.25f, 0.0f, 2.0f};
    static const int y[] = {0, 1};
    float per[2];
    double mean;
    ck_assert_int_eq(lb_loss_eval(L, z, y, 2, per, NULL, &mean, 0, 0), LB_OK);
    /* weights 1,3 as given (no LB_LOSS_NORMALIZE_LIST); sample 0: t = 0.25-1+0.5 = -0.25,
     * l = 0.03125; sample 1: t = 0-2+0.5 = -1.5, l = 1.125; mean = (l0 + 3 l1) / (1 + 3) */
    ck_assert_close(per[0], 0.03125, 1e-7);
    ck_assert_close(per[1], 3 * 1.125, 1e-7);
    ck_assert_close(mean, (0.03125 + 3 * 1.125) / 4.0, 1e-12);
    lb_loss_free(L);
    fd_check("test_sq:margin=2,weights=inverse,drw=0.5", lref_counts, lref_main_logits, lref_main_targets,
             LREF_MAIN_N, 4, 70, 100);
    ck_assert_ptr_null(lb_loss_new("test_sq:margin=11", 2, NULL));
    ck_error_mentions("margin");
}
END_TEST


/* ---- the loss of a mixed batch (mixup, Remix) ---- */

/* Partners of the main fixture's samples (a permutation of the batch) and Remix label weights. */
static const int mix_perm[LREF_MAIN_N] = {3, 0, 6, 1, 7, 2, 5, 4};
static const float mix_lam_y[LREF_MAIN_N] = {0.3f, 1.0f, 0.0f, 0.7f, 0.5f, 0.9f, 0.2f, 1.0f};

/* The mixed node's value and gradient (through backward) for spec. */
static void mixed_value(lb_loss *L, const float *z, const int *yb, double lambda, const float *lam_y, float *val,
                        float *grad)
{
    const int N = LREF_MAIN_N, C = LREF_MAIN_C;
    lb_graph *g = lb_graph_new();
    lb_node *x = lb_leaf(g, 2, (int[]){N, C}, z, 1);
    lb_node *l = lb_loss_forward_mixed(L, g, x, lref_main_targets, yb, lambda, lam_y, 60, 100);
    ck_assert_msg(l != NULL, "%s: %s", lb_loss_spec(L), lb_last_error());
    lb_node *root = l->shape[0] > 1 ? lb_sum(g, l) : l;
    ck_assert_int_eq(lb_backward(g, root), LB_OK);
    *val = root->val[0];
    memcpy(grad, x->grad, sizeof(float) * N * C);
    lb_graph_free(g);
}

/* The mixed loss in double from per-sample values (an independent route: lb_loss_eval_ex
 * of each term and the class weights), as libra/losses.h defines it. */
static double mixed_reference(lb_loss *L, const float *z, const int *yb, double lambda, const float *lam_y)
{
    const int N = LREF_MAIN_N;
    double sa, da, sb, db;
    float pa[MAXN], pb[MAXN];
    ck_assert_int_eq(lb_loss_eval_ex(L, z, lref_main_targets, N, pa, NULL, &sa, &da, 60, 100), LB_OK);
    ck_assert_int_eq(lb_loss_eval_ex(L, z, yb, N, pb, NULL, &sb, &db, 60, 100), LB_OK);
    lb_reduction red = lb_loss_reduction(L);
    if (!lam_y) {
        if (red == LB_REDUCE_MEAN) return lambda * sa / da + (1 - lambda) * sb / db;
        return lambda * sa + (1 - lambda) * sb;
    }
    double num = 0, den = 0;
    for (int i = 0; i < N; i++) {
        double m = lam_y[i], wa = lb_loss_class_weight(L, lref_main_targets[i], 60, 100),
               wb = lb_loss_class_weight(L, yb[i], 60, 100);
        num += m * pa[i] + (1 - m) * pb[i];
        den += lb_loss_weighted_mean(L) ? m * wa + (1 - m) * wb : 1.0;
    }
    return red == LB_REDUCE_MEAN ? num / den : num;
}

START_TEST(test_mixed_loss)
{
    const int N = LREF_MAIN_N, C = LREF_MAIN_C;
    int yb[MAXN];
    for (int i = 0; i < N; i++) yb[i] = lref_main_targets[mix_perm[i]];
    for (int s = 0; s < N_ALL_SPECS; s++) {
        lb_loss *L = lb_loss_new(ALL_SPECS[s], C, lref_counts);
        ck_assert_ptr_nonnull(L);
        for (int remix = 0; remix < 2; remix++) {
            float v, grad[MAXN * MAXC];
            const float *lam_y = remix ? mix_lam_y : NULL;
            mixed_value(L, lref_main_logits, yb, 0.3, lam_y, &v, grad);
            double ref = mixed_reference(L, lref_main_logits, yb, 0.3, lam_y);
            ck_assert_msg(close_rel(v, ref, 2e-6), "%s %s: %.9g, reference %.9g", ALL_SPECS[s],
                          remix ? "remix" : "mixup", v, ref);
            /* central differences of the double reference, in the float steps taken */
            float z[MAXN * MAXC];
            memcpy(z, lref_main_logits, sizeof z);
            for (int k = 0; k < N * C; k++) {
                float orig = z[k];
                z[k] = orig + 1e-3f;
                double zp = z[k], fp = mixed_reference(L, z, yb, 0.3, lam_y);
                z[k] = orig - 1e-3f;
                double zm = z[k], fm = mixed_reference(L, z, yb, 0.3, lam_y);
                z[k] = orig;
                double fd = (fp - fm) / (zp - zm);
                ck_assert_msg(fabs(fd - grad[k]) <= 2e-4 * fmax(1.0, fabs(grad[k])),
                              "%s %s: dlogit %d analytic %.9g, finite difference %.9g", ALL_SPECS[s],
                              remix ? "remix" : "mixup", k, grad[k], fd);
            }
        }
        lb_loss_free(L);
    }
}
END_TEST

/* With lambda = 1 (every label weight 1) the mixed loss is the plain one, bitwise. */
START_TEST(test_mixed_loss_lambda_one_is_plain)
{
    const int N = LREF_MAIN_N, C = LREF_MAIN_C;
    int yb[MAXN];
    float ones[MAXN];
    for (int i = 0; i < N; i++) {
        yb[i] = lref_main_targets[mix_perm[i]];
        ones[i] = 1.0f;
    }
    static const char *const extra[] = {"wce:weights=sqrt,reduction=sum", "focal:gamma=2,reduction=none"};
    for (int s = 0; s < N_ALL_SPECS + 2; s++) {
        const char *spec = s < N_ALL_SPECS ? ALL_SPECS[s] : extra[s - N_ALL_SPECS];
        lb_loss *L = lb_loss_new(spec, C, lref_counts);
        ck_assert_ptr_nonnull(L);
        lb_graph *g = lb_graph_new();
        lb_node *x = lb_leaf(g, 2, (int[]){N, C}, lref_main_logits, 1);
        lb_node *l = lb_loss_forward(L, g, x, lref_main_targets, 60, 100);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(lb_backward(g, l->shape[0] > 1 ? lb_sum(g, l) : l), LB_OK);
        float plain[MAXN * MAXC], pv[MAXN];
        memcpy(plain, x->grad, sizeof(float) * N * C);
        memcpy(pv, l->val, sizeof(float) * (size_t)l->shape[0]);
        int n_out = l->shape[0];
        lb_graph_free(g);
        for (int remix = 0; remix < 2; remix++) {
            g = lb_graph_new();
            x = lb_leaf(g, 2, (int[]){N, C}, lref_main_logits, 1);
            l = lb_loss_forward_mixed(L, g, x, lref_main_targets, yb, 1.0, remix ? ones : NULL, 60, 100);
            ck_assert_ptr_nonnull(l);
            ck_assert_int_eq(lb_backward(g, l->shape[0] > 1 ? lb_sum(g, l) : l), LB_OK);
            ck_assert_msg(!memcmp(pv, l->val, sizeof(float) * (size_t)n_out), "%s: value differs", spec);
            ck_assert_msg(!memcmp(plain, x->grad, sizeof(float) * N * C), "%s %s: gradient differs", spec,
                          remix ? "remix" : "mixup");
            lb_graph_free(g);
        }
        lb_loss_free(L);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("losses");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_reference_table, 0, LREF_NCASES);
    tcase_add_test(tc, test_worked_example);
    tcase_add_test(tc, test_identities);
    tcase_add_test(tc, test_large_logits_finite);
    tcase_add_test(tc, test_focal_pt_to_one);
    tcase_add_test(tc, test_non_finite_logits_reported);
    tcase_add_test(tc, test_finite_differences);
    tcase_add_test(tc, test_spec_parser);
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_canonical_spec);
    tcase_add_test(tc, test_named_list_same_as_positional);
    tcase_add_test(tc, test_named_list_worked_example);
    tcase_add_test(tc, test_named_list_errors);
    tcase_add_test(tc, test_named_list_canonical);
    tcase_add_test(tc, test_named_list_out_of_memory);
    tcase_add_test(tc, test_drw_schedule);
    tcase_add_test(tc, test_forward_backward);
    tcase_add_test(tc, test_forward_errors_and_eval_mode);
    tcase_add_test(tc, test_no_malloc_per_step);
    tcase_add_test(tc, test_custom_loss);
    tcase_add_test(tc, test_mixed_loss);
    tcase_add_test(tc, test_mixed_loss_lambda_one_is_plain);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
