/* Optimizers, clipping and schedules over flat buffers. */
#include "check_util.h"
#include "libra/optim.h"

#include <string.h>

/* Fixed start and fixed gradients for three steps (the same as tests/ref/optim_ref.py). */
static const float W0[4] = {0.5f, -1.2f, 2.0f, 0.0f};
static const float GRADS[3][4] = {{0.1f, -0.3f, 0.8f, -2.0f},
                                  {0.4f, 0.2f, -0.6f, 1.5f},
                                  {-0.2f, 0.05f, 0.3f, 0.7f}};

/* Parameters after steps 1, 2, 3, from torch.optim (torch 1.13, float32) via
 * tests/ref/optim_ref.py; the output is committed as tests/ref/optim_ref.txt.
 * Hand check of step 1 for two of them:
 *   SGD lr 0.1: w1 = w0 - 0.1*g1 = (0.49, -1.17, 1.92, 0.2).
 *   Adam lr 0.01: m1 = 0.1 g1, v1 = 0.001 g1^2, so m1/(1-0.9) = g1, v1/(1-0.999) = g1^2 and
 *   w1 = w0 - 0.01 * g1/(|g1| + 1e-8) = w0 - 0.01 sign(g1) = (0.49, -1.19, 1.99, 0.01). */
static const float REF[7][3][4] = {
    /* sgd */
    {{4.900000095e-01f, -1.170000076e+00f, 1.919999957e+00f, 2.000000030e-01f},
     {4.500000179e-01f, -1.190000057e+00f, 1.980000019e+00f, 5.000000075e-02f},
     {4.700000286e-01f, -1.195000052e+00f, 1.950000048e+00f, -1.999999955e-02f}},
    /* sgd_momentum */
    {{4.900000095e-01f, -1.170000076e+00f, 1.919999957e+00f, 2.000000030e-01f},
     {4.410000145e-01f, -1.163000107e+00f, 1.907999992e+00f, 2.300000042e-01f},
     {4.169000089e-01f, -1.161700130e+00f, 1.867200017e+00f, 1.870000064e-01f}},
    /* sgd_nesterov_wd */
    {{4.800499976e-01f, -1.140720010e+00f, 1.844200015e+00f, 3.799999952e-01f},
     {3.946329057e-01f, -1.151280642e+00f, 1.888276100e+00f, 2.562779784e-01f},
     {3.914397657e-01f, -1.151124477e+00f, 1.815016627e+00f, 1.467832476e-01f}},
    /* adam */
    {{4.900000095e-01f, -1.190000057e+00f, 1.990000010e+00f, 9.999999776e-03f},
     {4.811562300e-01f, -1.188554883e+00f, 1.989106774e+00f, 1.089324988e-02f},
     {4.777952433e-01f, -1.188326597e+00f, 1.986608505e+00f, 9.834378958e-03f}},
    /* adam_wd */
    {{4.900000691e-01f, -1.190000057e+00f, 1.990000010e+00f, 9.999996051e-03f},
     {4.805755019e-01f, -1.185305238e+00f, 1.987085104e+00f, 1.031126734e-02f},
     {4.762457013e-01f, -1.180818796e+00f, 1.982181668e+00f, 8.607116528e-03f}},
    /* adamw */
    {{4.895000160e-01f, -1.188800097e+00f, 1.988000035e+00f, 9.999999776e-03f},
     {4.801667333e-01f, -1.186166167e+00f, 1.985118866e+00f, 1.088325027e-02f},
     {4.763255715e-01f, -1.184751749e+00f, 1.980635524e+00f, 9.813495912e-03f}},
    /* sgd_clip: clip_grad_norm_(1.0) then SGD lr 0.1 momentum 0.5 */
    {{4.954068363e-01f, -1.186220646e+00f, 1.963254809e+00f, 9.186300635e-02f},
     {4.692482650e-01f, -1.191261888e+00f, 1.980675220e+00f, 4.831205681e-02f},
     {4.761689901e-01f, -1.198782563e+00f, 1.959385395e+00f, -4.346341640e-02f}},
};

static lb_optim_config ref_config(int i)
{
    lb_optim_config c;
    switch (i) {
    case 0: c = lb_optim_defaults(LB_OPTIM_SGD); c.lr = 0.1f; break;
    case 1: c = lb_optim_defaults(LB_OPTIM_SGD); c.lr = 0.1f; c.momentum = 0.9f; break;
    case 2:
        c = lb_optim_defaults(LB_OPTIM_SGD);
        c.lr = 0.1f; c.momentum = 0.9f; c.nesterov = 1; c.weight_decay = 0.01f;
        break;
    case 3: c = lb_optim_defaults(LB_OPTIM_ADAM); c.lr = 0.01f; break;
    case 4:
        c = lb_optim_defaults(LB_OPTIM_ADAM);
        c.lr = 0.01f; c.beta1 = 0.8f; c.beta2 = 0.99f; c.eps = 1e-6f; c.weight_decay = 0.1f;
        break;
    case 5: c = lb_optim_defaults(LB_OPTIM_ADAMW); c.lr = 0.01f; c.weight_decay = 0.1f; break;
    default: c = lb_optim_defaults(LB_OPTIM_SGD); c.lr = 0.1f; c.momentum = 0.5f; c.clip_norm = 1.0f; break;
    }
    return c;
}

START_TEST(test_first_three_steps_match_torch)
{
    int i = _i;
    lb_optim_config c = ref_config(i);
    lb_optim *o = lb_optim_new(&c, 4);
    ck_assert_ptr_nonnull(o);
    float w[4], g[4];
    memcpy(w, W0, sizeof w);
    for (int s = 0; s < 3; s++) {
        memcpy(g, GRADS[s], sizeof g);
        ck_assert_int_eq(lb_optim_step(o, w, g, c.lr), LB_OK);
        for (int j = 0; j < 4; j++) {
            ck_assert_msg(fabsf(w[j] - REF[i][s][j]) <= 1e-6f, "config %d step %d w[%d] = %.9g, torch %.9g", i,
                          s + 1, j, w[j], REF[i][s][j]);
        }
    }
    ck_assert_int_eq(o->step, 3);
    lb_optim_free(o);
}
END_TEST

/* f(x) = sum_i a_i (x_i - c_i)^2, gradient 2 a_i (x_i - c_i): minimum at c. */
static void quad_grad(const float *x, float *g)
{
    static const float a[3] = {1.0f, 4.0f, 0.5f}, c[3] = {1.0f, -2.0f, 3.0f};
    for (int i = 0; i < 3; i++) g[i] = 2.0f * a[i] * (x[i] - c[i]);
}

static void minimise_quadratic(lb_optim_config c, int steps)
{
    lb_optim *o = lb_optim_new(&c, 3);
    ck_assert_ptr_nonnull(o);
    float x[3] = {0.0f, 0.0f, 0.0f}, g[3];
    for (int s = 0; s < steps; s++) {
        quad_grad(x, g);
        ck_assert_int_eq(lb_optim_step(o, x, g, c.lr), LB_OK);
    }
    ck_assert_close(x[0], 1.0, 1e-3);
    ck_assert_close(x[1], -2.0, 1e-3);
    ck_assert_close(x[2], 3.0, 1e-3);
    lb_optim_free(o);
}

START_TEST(test_quadratic)
{
    lb_optim_config c = lb_optim_defaults(LB_OPTIM_SGD);
    c.lr = 0.05f;
    minimise_quadratic(c, 500);
    c.momentum = 0.9f;
    minimise_quadratic(c, 500);
    c.nesterov = 1;
    minimise_quadratic(c, 500);
    c = lb_optim_defaults(LB_OPTIM_ADAM);
    c.lr = 0.05f;
    minimise_quadratic(c, 3000);
    c = lb_optim_defaults(LB_OPTIM_ADAMW);
    c.lr = 0.05f;
    c.weight_decay = 0.0f;
    minimise_quadratic(c, 3000);
}
END_TEST

/* Rosenbrock f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1), started at
 * the classic (-1.5, 2): a curved narrow valley that plain descent crawls along. */
static void minimise_rosenbrock(lb_optim_config c, int steps)
{
    lb_optim *o = lb_optim_new(&c, 2);
    ck_assert_ptr_nonnull(o);
    float p[2] = {-1.5f, 2.0f}, g[2];
    for (int s = 0; s < steps; s++) {
        float x = p[0], y = p[1];
        g[0] = -2.0f * (1.0f - x) - 400.0f * x * (y - x * x);
        g[1] = 200.0f * (y - x * x);
        ck_assert_int_eq(lb_optim_step(o, p, g, c.lr), LB_OK);
    }
    double f = (1.0 - p[0]) * (1.0 - p[0]) + 100.0 * (p[1] - p[0] * p[0]) * (p[1] - p[0] * p[0]);
    ck_assert_msg(f < 1e-4, "%s: f(%g, %g) = %g after %d steps", lb_optim_kind_name(c.kind), p[0], p[1], f, steps);
    ck_assert_close(p[0], 1.0, 1e-2);
    ck_assert_close(p[1], 1.0, 2e-2);
    lb_optim_free(o);
}

START_TEST(test_rosenbrock)
{
    lb_optim_config c = lb_optim_defaults(LB_OPTIM_SGD);
    c.lr = 5e-4f;
    c.momentum = 0.9f;
    minimise_rosenbrock(c, 20000);
    c = lb_optim_defaults(LB_OPTIM_ADAM);
    c.lr = 0.01f;
    minimise_rosenbrock(c, 20000);
}
END_TEST

START_TEST(test_clip)
{
    float g[2] = {3.0f, 4.0f};
    /* norm 5 > 1: scaled by 1/(5 + 1e-6) */
    ck_assert_close(lb_clip_grad_norm(g, 2, 1.0), 5.0, 1e-6);
    ck_assert_close(g[0], 0.6, 1e-6);
    ck_assert_close(g[1], 0.8, 1e-6);
    /* below the limit: unchanged */
    ck_assert_close(lb_clip_grad_norm(g, 2, 2.0), 1.0, 1e-6);
    ck_assert_close(g[0], 0.6, 1e-7);
    /* a NaN gradient is refused by the optimizer and changes nothing */
    lb_optim_config c = lb_optim_defaults(LB_OPTIM_SGD);
    c.clip_norm = 1.0f;
    lb_optim *o = lb_optim_new(&c, 2);
    float w[2] = {1.0f, 2.0f}, bad[2] = {NAN, 1.0f};
    ck_assert_int_eq(lb_optim_step(o, w, bad, 0.1f), LB_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "gradient norm"));
    ck_assert(w[0] == 1.0f && w[1] == 2.0f);
    ck_assert_int_eq(o->step, 0);
    lb_optim_free(o);
}
END_TEST

START_TEST(test_no_allocation_per_step)
{
    enum { N = 1000 };
    static float w[N], g[N];
    for (int k = 0; k < 3; k++) {
        lb_optim_config c = lb_optim_defaults((lb_optim_kind)k);
        c.momentum = k == 0 ? 0.9f : 0.0f;
        c.clip_norm = 1.0f;
        lb_optim *o = lb_optim_new(&c, N);
        for (int i = 0; i < N; i++) g[i] = (float)(i % 7) - 3.0f;
        uint64_t before = lb_alloc_count();
        for (int s = 0; s < 20; s++) ck_assert_int_eq(lb_optim_step(o, w, g, c.lr), LB_OK);
        ck_assert_uint_eq(lb_alloc_count(), before);
        lb_optim_free(o);
    }
}
END_TEST

START_TEST(test_config_errors)
{
    lb_optim_config c = lb_optim_defaults(LB_OPTIM_SGD);
    c.nesterov = 1;
    ck_assert_ptr_null(lb_optim_new(&c, 4));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "nesterov"));
    c = lb_optim_defaults(LB_OPTIM_ADAM);
    c.beta2 = 1.0f;
    ck_assert_ptr_null(lb_optim_new(&c, 4));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "betas"));
    c = lb_optim_defaults(LB_OPTIM_ADAM);
    c.lr = -1.0f;
    ck_assert_ptr_null(lb_optim_new(&c, 4));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "learning rate"));
    lb_optim_kind k;
    ck_assert_int_eq(lb_optim_kind_parse("adamw", &k), LB_OK);
    ck_assert_int_eq(k, LB_OPTIM_ADAMW);
    ck_assert_int_eq(lb_optim_kind_parse("rmsprop", &k), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "'rmsprop'"));
    /* state sizes, as the checkpoint relies on them */
    c = lb_optim_defaults(LB_OPTIM_SGD);
    lb_optim *o = lb_optim_new(&c, 4);
    ck_assert_int_eq(lb_optim_state_per_param(o), 0);
    ck_assert_ptr_null(o->m);
    lb_optim_free(o);
    c = lb_optim_defaults(LB_OPTIM_ADAMW);
    o = lb_optim_new(&c, 4);
    ck_assert_int_eq(lb_optim_state_per_param(o), 2);
    lb_optim_free(o);
}
END_TEST

START_TEST(test_schedules)
{
    lb_schedule s;
    ck_assert_int_eq(lb_schedule_parse(&s, "constant", 0.1, 100), LB_OK);
    ck_assert_close(lb_schedule_lr(&s, 0), 0.1, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 99), 0.1, 1e-12);

    /* step: 0.1 for t in [0,10), 0.01 for [10,20), ... */
    ck_assert_int_eq(lb_schedule_parse(&s, "step:every=10,gamma=0.1", 0.1, 100), LB_OK);
    ck_assert_close(lb_schedule_lr(&s, 9), 0.1, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 10), 0.01, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 25), 0.001, 1e-12);

    /* cosine over 100 steps to 0: half at t = 50, (1 + cos(pi/4))/2 = 0.853553 at t = 25 */
    ck_assert_int_eq(lb_schedule_parse(&s, "cosine", 1.0, 100), LB_OK);
    ck_assert_close(lb_schedule_lr(&s, 0), 1.0, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 25), 0.8535533905932737, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 50), 0.5, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 100), 0.0, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 500), 0.0, 1e-12);

    /* warmup 10 then cosine over the remaining 90 to 0.1:
     * t = 4 -> 5/10; t = 10 -> full rate; t = 55 -> midway 0.1 + 0.9/2 = 0.55 */
    ck_assert_int_eq(lb_schedule_parse(&s, "cosine:min=0.1,warmup=10", 1.0, 100), LB_OK);
    ck_assert_close(lb_schedule_lr(&s, 4), 0.5, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 10), 1.0, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 55), 0.55, 1e-12);
    char buf[96];
    ck_assert_str_eq(lb_schedule_str(&s, buf, sizeof buf), "cosine:min=0.1,warmup=10");

    /* warmup alone means constant after it; step's default period is total/3 */
    ck_assert_int_eq(lb_schedule_parse(&s, "warmup=4", 0.2, 100), LB_OK);
    ck_assert_int_eq(s.kind, LB_SCHED_CONSTANT);
    ck_assert_close(lb_schedule_lr(&s, 0), 0.05, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 50), 0.2, 1e-12);
    ck_assert_int_eq(lb_schedule_parse(&s, "step", 0.2, 90), LB_OK);
    ck_assert_int_eq(s.every, 30);

    /* the CIFAR-LT recipe: warmup 5, then 0.1 decayed by 0.01x at milestones 160 and 180
     * (PyTorch's MultiStepLR counts from step 0): 0.1 until 159, 0.001 from 160, 1e-5 from 180 */
    ck_assert_int_eq(lb_schedule_parse(&s, "step:at=160,180,gamma=0.01,warmup=5", 0.1, 200), LB_OK);
    ck_assert_close(lb_schedule_lr(&s, 0), 0.02, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 159), 0.1, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 160), 0.001, 1e-12);
    ck_assert_close(lb_schedule_lr(&s, 180), 1e-5, 1e-12);
    ck_assert_str_eq(lb_schedule_str(&s, buf, sizeof buf), "step:at=160,180,gamma=0.01,warmup=5");
    ck_assert_int_eq(lb_schedule_parse(&s, "step:at=50,40", 0.1, 100), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "milestones must increase (40 after 50)"));
    ck_assert_int_eq(lb_schedule_parse(&s, "step:at=1,2,3,4,5,6,7,8,9", 0.1, 100), LB_EINVAL);

    ck_assert_int_eq(lb_schedule_parse(&s, "linear", 0.1, 100), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "'linear'"));
    ck_assert_int_eq(lb_schedule_parse(&s, "step:every=x", 0.1, 100), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "every='x'"));
    ck_assert_int_eq(lb_schedule_parse(&s, "cosine:gamma=0.5", 0.1, 100), LB_EINVAL);
    ck_assert_int_eq(lb_schedule_parse(&s, "cosine", 0.1, 0), LB_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_first_three_steps_match_torch, 0, 7);
    tcase_add_test(tc, test_quadratic);
    tcase_add_test(tc, test_rosenbrock);
    tcase_add_test(tc, test_clip);
    tcase_add_test(tc, test_no_allocation_per_step);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_schedules);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
