/* Batch mixing (libra/data.h "mixing"): spec parsing, the Beta draws, Remix's label weights
 * on a hand-worked table, image mixing, and a training step whose mixing weight is 1 being
 * the plain step bitwise. The loss of a mixed batch (values and finite differences) is
 * tested in test_losses.c. */
#include "check_util.h"
#include "libra/losses.h"
#include "libra/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_mix_parse)
{
    lb_mix m;
    ck_assert_int_eq(lb_mix_parse(&m, NULL), LB_OK);
    ck_assert_int_eq(m.kind, LB_MIX_NONE);
    ck_assert_int_eq(lb_mix_parse(&m, "none"), LB_OK);
    ck_assert_int_eq(m.kind, LB_MIX_NONE);
    ck_assert_int_eq(lb_mix_parse(&m, "mixup"), LB_OK);
    ck_assert_str_eq(m.name, "mixup");
    ck_assert(m.alpha == 1.0);
    ck_assert_int_eq(lb_mix_parse(&m, "mixup:alpha=0.2"), LB_OK);
    ck_assert_str_eq(m.name, "mixup:alpha=0.2");
    ck_assert_int_eq(lb_mix_parse(&m, "remix:alpha=1,kappa=3,tau=0.5"), LB_OK);
    ck_assert_str_eq(m.name, "remix");
    ck_assert_int_eq(lb_mix_parse(&m, "remix:tau=0.25,kappa=2"), LB_OK);
    ck_assert_str_eq(m.name, "remix:kappa=2,tau=0.25");
    static const char *const bad[][2] = {{"cutmix", "unknown"},        {"mixup:kappa=3", "kappa"},
                                         {"mixup:alpha=0", "alpha"},   {"remix:tau=1.5", "tau"},
                                         {"remix:kappa=0.5", "kappa"}, {"mixup:alpha=x", "alpha"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(lb_mix_parse(&m, bad[i][0]) == LB_EINVAL, "%s accepted", bad[i][0]);
        ck_error_mentions(bad[i][1]);
    }
}
END_TEST

/* Sample mean and variance of Beta(a, b) draws against a / (a + b) and
 * ab / ((a + b)^2 (a + b + 1)), within 5 standard errors. */
static void check_beta(double a, double b)
{
    lb_rng r;
    lb_rng_seed(&r, 7);
    enum { N = 200000 };
    double s1 = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        double x = lb_rng_beta(&r, a, b);
        ck_assert(x >= 0.0 && x <= 1.0);
        s1 += x;
        s2 += x * x;
    }
    double mean = s1 / N, var = s2 / N - mean * mean;
    double em = a / (a + b), ev = a * b / ((a + b) * (a + b) * (a + b + 1));
    ck_assert_msg(fabs(mean - em) < 5 * sqrt(ev / N), "Beta(%g, %g): mean %.5f, expected %.5f", a, b, mean, em);
    /* the variance of x^2 is at most 1/4 of the range squared: a loose but sure bound */
    ck_assert_msg(fabs(var - ev) < 5 * sqrt(0.25 / N) + 1e-3, "Beta(%g, %g): variance %.5f, expected %.5f", a, b,
                  var, ev);
}

START_TEST(test_beta_draws)
{
    check_beta(1, 1);
    check_beta(2, 5);
    check_beta(0.4, 0.4); /* the alpha < 1 path */
    check_beta(0.2, 0.2);
}
END_TEST

/* Remix's rule as the issue states it, for the table: the label weight of a pair whose counts
 * are (ni, nj) with kappa 3, tau 0.5. */
static float expected_weight(double lambda, int ni, int nj)
{
    static const struct { int ni, nj; float if_small, if_large; } table[] = {
        /* lambda < 0.5: 0 when ni/nj >= 3; lambda > 0.5: 1 when ni/nj <= 1/3 */
        {100, 10, 0.0f, -1.0f}, /* majority i with minority j: 0 if lambda small, else lambda */
        {10, 100, -1.0f, 1.0f}, /* minority i with majority j: 1 if lambda large, else lambda */
        {100, 100, -1.0f, -1.0f},
        {100, 40, -1.0f, -1.0f}, /* ratio 2.5 < kappa */
        {30, 10, 0.0f, -1.0f},   /* ratio exactly kappa counts */
        {10, 30, -1.0f, 1.0f},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
        if (table[k].ni == ni && table[k].nj == nj) {
            float w = lambda < 0.5 ? table[k].if_small : table[k].if_large;
            return w < 0 ? (float)lambda : w;
        }
    ck_abort_msg("pair %d, %d not in the table", ni, nj);
    return 0;
}

START_TEST(test_remix_weights)
{
    /* classes with 100, 10, 40 and 30 training images */
    static const int counts[] = {100, 10, 40, 30};
    static const int y[] = {0, 1, 0, 2, 0, 3, 1, 0};
    lb_mix m;
    ck_assert_int_eq(lb_mix_parse(&m, "remix"), LB_OK);
    int seen_small = 0, seen_large = 0, checked = 0;
    for (uint64_t seed = 1; seed < 400; seed++) {
        lb_rng r;
        lb_rng_seed(&r, seed);
        double lambda;
        int perm[8];
        float lam_y[8];
        lb_mix_draw(&m, &r, 8, y, counts, &lambda, perm, lam_y);
        int seen[8] = {0};
        for (int i = 0; i < 8; i++) seen[perm[i]]++;
        for (int i = 0; i < 8; i++) ck_assert_int_eq(seen[i], 1); /* a permutation */
        for (int i = 0; i < 8; i++) {
            int ni = counts[y[i]], nj = counts[y[perm[i]]];
            int known = (ni == 100 && (nj == 10 || nj == 100 || nj == 40)) || (ni == 10 && nj == 100) ||
                        (ni == 30 && nj == 10) || (ni == 10 && nj == 30);
            if (!known) continue;
            ck_assert_msg(lam_y[i] == expected_weight(lambda, ni, nj), "lambda %.3f, pair %d/%d: weight %g", lambda, ni,
                          nj, (double)lam_y[i]);
            checked++;
        }
        seen_small |= lambda < 0.5;
        seen_large |= lambda > 0.5;
    }
    ck_assert(seen_small && seen_large && checked > 500);
    /* mixup: every sample's weight is lambda */
    ck_assert_int_eq(lb_mix_parse(&m, "mixup"), LB_OK);
    lb_rng r;
    lb_rng_seed(&r, 3);
    double lambda;
    int perm[8];
    float lam_y[8];
    lb_mix_draw(&m, &r, 8, y, counts, &lambda, perm, lam_y);
    for (int i = 0; i < 8; i++) ck_assert(lam_y[i] == (float)lambda);
}
END_TEST

START_TEST(test_mix_images)
{
    float x[3 * 4], scratch[3 * 4], orig[3 * 4];
    for (int k = 0; k < 12; k++) orig[k] = x[k] = (float)(k * 0.37 - 1.1);
    static const int perm[] = {2, 0, 1};
    lb_mix_images(x, 3, 4, 0.25, perm, scratch);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            ck_assert_float_eq_tol(x[i * 4 + k], 0.25f * orig[i * 4 + k] + 0.75f * orig[perm[i] * 4 + k], 1e-6);
    memcpy(x, orig, sizeof x);
    lb_mix_images(x, 3, 4, 1.0, perm, scratch);
    ck_assert(!memcmp(x, orig, sizeof x)); /* lambda = 1 leaves the batch bitwise as it was */
}
END_TEST

/* ---- one training step with the mixing weight fixed at 1 is the plain step ---- */

typedef struct {
    lb_loss *loss;
    const int *yb;
    int mixed;
} step_ctx;

static lb_node *step_loss(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    const step_ctx *c = ctx;
    if (!c->mixed) return lb_loss_forward(c->loss, g, logits, targets, step, total);
    return lb_loss_forward_mixed(c->loss, g, logits, targets, c->yb, 1.0, NULL, step, total);
}

/* Parameters after three steps of smallcnn on a fixed batch, mixed (lambda 1) or not. */
static float *three_steps(const char *loss_spec, int mixed)
{
    enum { N = 6 };
    lb_model *m = lb_model_new_arch("smallcnn:bn", 1, 8, 8, 3);
    ck_assert_ptr_nonnull(m);
    lb_rng r;
    lb_rng_seed(&r, 11);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    static const int counts[] = {30, 10, 5};
    step_ctx c = {lb_loss_new(loss_spec, 3, counts), NULL, mixed};
    ck_assert_ptr_nonnull(c.loss);
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_ADAM);
    lb_trainer *t = lb_trainer_new(m, &oc, NULL, step_loss, &c, 3);
    ck_assert_ptr_nonnull(t);
    float x[N * 64], scratch[N * 64];
    int y[N] = {0, 1, 2, 0, 0, 1}, perm[N] = {5, 3, 0, 4, 1, 2}, yb[N];
    for (int i = 0; i < N; i++) yb[i] = y[perm[i]];
    c.yb = yb;
    for (int k = 0; k < N * 64; k++) x[k] = (float)lb_rng_normal(&r);
    for (int s = 0; s < 3; s++) {
        float xs[N * 64];
        memcpy(xs, x, sizeof xs);
        if (mixed) lb_mix_images(xs, N, 64, 1.0, perm, scratch);
        ck_assert_int_eq(lb_trainer_step(t, xs, y, N), LB_OK);
    }
    float *p = malloc(m->params->size * sizeof(float));
    memcpy(p, m->params->data, m->params->size * sizeof(float));
    lb_trainer_free(t);
    lb_loss_free(c.loss);
    lb_model_free(m);
    return p;
}

START_TEST(test_lambda_one_step_is_plain)
{
    static const char *const specs[] = {"ce", "focal:gamma=2", "wce:weights=inverse", "ldam:drw=0.5"};
    lb_model *m = lb_model_new_arch("smallcnn:bn", 1, 8, 8, 3);
    size_t n = m->params->size;
    lb_model_free(m);
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        float *a = three_steps(specs[s], 0), *b = three_steps(specs[s], 1);
        ck_assert_msg(!memcmp(a, b, n * sizeof(float)), "%s: the lambda = 1 steps differ from the plain ones",
                      specs[s]);
        free(a);
        free(b);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mix");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_mix_parse);
    tcase_add_test(tc, test_beta_draws);
    tcase_add_test(tc, test_remix_weights);
    tcase_add_test(tc, test_mix_images);
    tcase_add_test(tc, test_lambda_one_step_is_plain);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
