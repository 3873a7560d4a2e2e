/* The tensor core: a hand-computed forward value for every op, per-element finite-difference
 * gradient checks in double, conv/pool against the naive oracles in naive_ops.h, shape
 * errors, the tape's state rules, arena/tape reuse over 1000 steps, and the RNG; the fused
 * conv ops against the composition they replace, and 2 threads against 1.
 *
 * Gradient checks (the way ggml's test-grad0 does them). For an op with inputs x, a fixed
 * random r (uniform in [-1, 1], one value per output element) and
 *     L(x) = sum_k r_k * op(x)_k,
 * the analytic dL/dx comes from lb_backward on the tape sum(mul(r, op(x))). The numeric one
 * is the central difference (L(x + h e_j) - L(x - h e_j)) / (x_j+ - x_j-), per element j,
 * where each L is a fresh float forward of the op whose weighted sum is accumulated in
 * double (so the outputs the perturbation does not touch cancel exactly), and x_j+/- are the
 * float values actually used. Element j passes when
 *     |num - ana| <= atol + rtol * max(|num|, |ana|).
 * Inputs avoid kinks: relu/leaky_relu inputs stay at least 0.1 away from 0 (> eps), max-pool
 * inputs are distinct with gaps of 0.05 (> 2 eps), log inputs are in [0.5, 2]; the fused conv
 * ops' pre-activations are kept 0.03 from 0 and from each other within a pool window.
 * The multi-threaded matmul checks (large, to take the threaded path) check a sample of the
 * elements; their full analytic gradients are compared with the 1-thread ones instead.
 *
 *   op(s)                       eps    rtol   atol   why
 *   add sub mul scale matmul    1e-2   1e-4   5e-5   linear in each input: float rounding only
 *   reshape flatten pick        1e-2   1e-5   1e-5   copies: exact
 *   sum mean relu leaky_relu    1e-2   1e-4   1e-5   linear / piecewise linear off the kink
 *   dropout maxpool2d           1e-2   1e-4   1e-5   linear with a fixed mask / argmax
 *   avgpool2d global_avgpool    1e-2   1e-4   2e-5   linear
 *   conv2d                      1e-2   1e-3   1e-4   linear; C*KH*KW float products per output
 *   conv2d_relu(_maxpool2)      1e-2   1e-3   1e-4   as conv2d: piecewise linear off kinks and ties
 *   conv2d_winograd             1e-1   1e-3   3e-4   conv2d on the F(2x2, 3x3) path (C, F >= 32): 288+
 *                                                    products per output and transforms that enlarge
 *                                                    the sums (4 |x|, 2.25 |w|); linear, so a wide
 *                                                    step (at C = 8, eps 1e-2 failed by 1.01x)
 *   conv2d_relu_winograd        1e-2   1e-3   2e-3   the fused ops on that path: eps is held by the
 *                                                    kink margins, so atol grows (5e-4 left 2.7x);
 *                                                    test_conv2d_vs_naive holds all three gradients
 *                                                    to 1e-4 of a double oracle besides
 *   matmul_mt (2 threads)       2.5e-1 1e-4   5e-5   K = 64, 128 products per output; linear, so no
 *                                                    truncation at any eps and a larger one divides
 *                                                    the rounding (eps 1e-2 fails by 1.1x)
 *   sigmoid tanh exp log        3e-3   2e-4   5e-5   curved: smaller eps, O(eps^2) truncation
 *   softmax log_softmax         1e-2   5e-4   1e-4   a whole row moves per perturbation
 *   batchnorm2d (train)         1e-2   1e-3   1e-4   every output of the channel moves
 *   batchnorm2d (eval)          1e-2   2e-4   5e-5   affine in x with running statistics
 *   batchnorm2d_relu,           as batchnorm2d, train and eval: piecewise the same function; the
 *   batchnorm2d_add_relu                             inputs keep every output 0.06 or more from the kink,
 *                                                    beyond what a step of eps moves it
 * eps was chosen per op from measured errors at 1e-2, 3e-3 and 1e-3 (rounding grows as eps
 * shrinks, truncation as it grows); the tolerances leave about 5x or more over the worst
 * |num - ana| measured (LIBRA_GRADCHECK_VERBOSE=1 prints the worst |num - ana| / allowed per
 * case). A 0.1% error in an analytic gradient (e.g. d log x = 1/(x + 1e-3)) fails.
 *
 * Hand-computed values are worked out in the comment next to each. */
#include "check_util.h"
#include "libra/optim.h"
#include "libra/tensor.h"
#include "naive_ops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static void expect_vals(const lb_node *y, const double *want, size_t n, double tol)
{
    ck_assert_ptr_nonnull(y);
    ck_assert_uint_eq(y->size, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(y->val[i] - want[i]) <= tol * (1.0 + fabs(want[i])),
                      "%s: element %zu is %.9g, expected %.9g", y->op, i, (double)y->val[i], want[i]);
}

static void expect_shape(const lb_node *y, int ndim, int d0, int d1, int d2, int d3)
{
    int d[4] = {d0, d1, d2, d3};
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->ndim, ndim);
    for (int i = 0; i < ndim; i++) ck_assert_int_eq(y->shape[i], d[i]);
}

static lb_node *leaf(lb_graph *g, int ndim, int d0, int d1, int d2, int d3, const float *v)
{
    int shape[4] = {d0, d1, d2, d3};
    return lb_leaf(g, ndim, shape, v, 1);
}

static float *fill_uniform(lb_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * lb_rng_uniform(r));
    return x;
}

/* magnitudes in [lo, hi], random signs: keeps relu inputs off the kink */
static void fill_away_from_zero(lb_rng *r, float *x, size_t n, double lo, double hi)
{
    fill_uniform(r, x, n, lo, hi);
    for (size_t i = 0; i < n; i++)
        if (lb_rng_below(r, 2)) x[i] = -x[i];
}

/* distinct values 0.05 apart in random order: max-pool has no ties */
static void fill_distinct(lb_rng *r, float *x, size_t n)
{
    int *perm = malloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++) perm[i] = (int)i;
    lb_rng_shuffle(r, perm, n);
    for (size_t i = 0; i < n; i++) x[i] = 0.05f * (float)(perm[i] - (int)n / 2) + 0.013f;
    free(perm);
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* ---------------------------------------------------------------- gradient checks */

typedef struct {
    const char *op;
    double eps, rtol, atol;
} gc_tol;

/* The table at the top of this file. */
static const gc_tol TOLS[] = {
    {"add", 1e-2, 1e-4, 5e-5},          {"sub", 1e-2, 1e-4, 5e-5},        {"mul", 1e-2, 1e-4, 5e-5},
    {"scale", 1e-2, 1e-4, 5e-5},        {"matmul", 1e-2, 1e-4, 5e-5},     {"reshape", 1e-2, 1e-5, 1e-5},
    {"flatten", 1e-2, 1e-5, 1e-5},      {"pick", 1e-2, 1e-5, 1e-5},       {"sum", 1e-2, 1e-4, 1e-5},
    {"mean", 1e-2, 1e-4, 1e-5},         {"relu", 1e-2, 1e-4, 1e-5},       {"leaky_relu", 1e-2, 1e-4, 1e-5},
    {"dropout", 1e-2, 1e-4, 1e-5},      {"maxpool2d", 1e-2, 1e-4, 1e-5},  {"avgpool2d", 1e-2, 1e-4, 2e-5},
    {"global_avgpool", 1e-2, 1e-4, 2e-5}, {"conv2d", 1e-2, 1e-3, 1e-4},   {"sigmoid", 3e-3, 2e-4, 5e-5},
    {"tanh", 3e-3, 2e-4, 5e-5},         {"exp", 3e-3, 2e-4, 5e-5},        {"log", 3e-3, 2e-4, 5e-5},
    {"softmax", 1e-2, 5e-4, 1e-4},      {"log_softmax", 1e-2, 5e-4, 1e-4}, {"batchnorm2d_train", 1e-2, 1e-3, 1e-4},
    {"batchnorm2d_eval", 1e-2, 2e-4, 5e-5}, {"conv2d_relu", 1e-2, 1e-3, 1e-4},
    {"conv2d_relu_maxpool2", 1e-2, 1e-3, 1e-4}, {"matmul_mt", 2.5e-1, 1e-4, 5e-5},
    {"conv2d_winograd", 1e-1, 1e-3, 3e-4}, {"conv2d_relu_winograd", 1e-2, 1e-3, 2e-3},
    {"batchnorm2d_relu_train", 1e-2, 1e-3, 1e-4}, {"batchnorm2d_relu_eval", 1e-2, 2e-4, 5e-5},
};

static const gc_tol *tol_of(const char *op)
{
    for (size_t i = 0; i < sizeof TOLS / sizeof TOLS[0]; i++)
        if (!strcmp(TOLS[i].op, op)) return &TOLS[i];
    ck_abort_msg("no tolerance row for '%s'", op);
    return NULL;
}

#define GC_MAX_IN 4

typedef struct gc gc;
typedef lb_node *(*gc_build)(lb_graph *g, lb_node **in, gc *c);

/* One gradient-check case: the op (as a build function), its inputs and arguments. */
struct gc {
    const char *tol;          /* row of TOLS */
    gc_build build;
    int n_in;
    int ndim[GC_MAX_IN];
    int shape[GC_MAX_IN][LB_MAX_DIMS];
    float *x[GC_MAX_IN];      /* input values (malloc'd) */
    int check[GC_MAX_IN];     /* check this input's gradient */
    int iarg[8];
    float farg[2];
    int index[64];            /* pick */
    lb_rng rng;               /* dropout: a copy is used for each forward, so the mask repeats */
    float rmean[16], rvar[16]; /* batchnorm running statistics */
    int sample;               /* > 0: check about this many evenly spaced elements per input */
};

static size_t shape_size(int ndim, const int *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

/* Adds an input of the given shape (gradient-checked) and returns its values to fill. */
static float *gc_input(gc *c, int ndim, int d0, int d1, int d2, int d3)
{
    int i = c->n_in++, d[4] = {d0, d1, d2, d3};
    c->ndim[i] = ndim;
    memcpy(c->shape[i], d, sizeof d);
    c->check[i] = 1;
    c->x[i] = calloc(shape_size(ndim, d), sizeof(float));
    return c->x[i];
}

static size_t gc_size(const gc *c, int i) { return shape_size(c->ndim[i], c->shape[i]); }

static void gc_free(gc *c)
{
    for (int i = 0; i < c->n_in; i++) free(c->x[i]);
}

/* L(x) for the current input values, summed in double. */
static double gc_loss(lb_graph *g, gc *c, const float *r, size_t ny)
{
    lb_graph_reset(g);
    lb_node *in[GC_MAX_IN];
    for (int i = 0; i < c->n_in; i++) in[i] = lb_leaf(g, c->ndim[i], c->shape[i], c->x[i], 0);
    lb_node *y = c->build(g, in, c);
    ck_assert_msg(y != NULL, "%s: %s", c->tol, lb_last_error());
    ck_assert_uint_eq(y->size, ny);
    double s = 0.0;
    for (size_t k = 0; k < ny; k++) s += (double)r[k] * (double)y->val[k];
    return s;
}

static void gradcheck(gc *c)
{
    const gc_tol *t = tol_of(c->tol);
    lb_graph *g = lb_graph_new();
    ck_assert_ptr_nonnull(g);
    lb_node *in[GC_MAX_IN];
    for (int i = 0; i < c->n_in; i++) in[i] = lb_leaf(g, c->ndim[i], c->shape[i], c->x[i], c->check[i]);
    lb_node *y = c->build(g, in, c);
    ck_assert_msg(y != NULL, "%s: %s", c->tol, lb_last_error());

    lb_rng rr;
    lb_rng_seed(&rr, 20240611);
    float *r = fill_uniform(&rr, malloc(y->size * sizeof(float)), y->size, -1.0, 1.0);
    size_t ny = y->size;
    lb_node *L = lb_sum(g, lb_mul(g, lb_leaf(g, y->ndim, y->shape, r, 0), y));
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    float *ana[GC_MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++)
        if (c->check[i]) {
            ana[i] = malloc(gc_size(c, i) * sizeof(float));
            memcpy(ana[i], in[i]->grad, gc_size(c, i) * sizeof(float));
        }

    double worst = 0.0, wabs = 0.0;
    for (int i = 0; i < c->n_in; i++) {
        if (!c->check[i]) continue;
        double gmax = 0.0;
        size_t step = c->sample > 0 && gc_size(c, i) > (size_t)c->sample ? gc_size(c, i) / (size_t)c->sample : 1;
        for (size_t j = 0; j < gc_size(c, i); j += step) {
            float x0 = c->x[i][j], xp = x0 + (float)t->eps, xm = x0 - (float)t->eps;
            c->x[i][j] = xp;
            double lp = gc_loss(g, c, r, ny);
            c->x[i][j] = xm;
            double lm = gc_loss(g, c, r, ny);
            c->x[i][j] = x0;
            double num = (lp - lm) / ((double)xp - (double)xm), a = ana[i][j];
            double allowed = t->atol + t->rtol * fmax(fabs(num), fabs(a)), err = fabs(num - a);
            ck_assert_msg(err <= allowed, "%s: input %d element %zu: analytic %.8g, numeric %.8g (|diff| %.3g > %.3g)",
                          c->tol, i, j, a, num, err, allowed);
            worst = fmax(worst, err / allowed);
            wabs = fmax(wabs, err);
            gmax = fmax(gmax, fabs(a));
        }
        /* a gradient that is zero everywhere would pass vacuously */
        ck_assert_msg(gmax > 1e-3, "%s: gradient of input %d is all ~0", c->tol, i);
    }
    if (getenv("LIBRA_GRADCHECK_VERBOSE"))
        fprintf(stderr, "gradcheck %-18s worst |num - ana| %.2e, / allowed %.3f\n", c->tol, wabs, worst);
    for (int i = 0; i < c->n_in; i++) free(ana[i]);
    free(r);
    lb_graph_free(g);
    gc_free(c);
}

/* build functions: one per op family */
static lb_node *b_add(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_add(g, in[0], in[1]); }
static lb_node *b_sub(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_sub(g, in[0], in[1]); }
static lb_node *b_mul(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_mul(g, in[0], in[1]); }
static lb_node *b_scale(lb_graph *g, lb_node **in, gc *c) { return lb_scale(g, in[0], c->farg[0]); }
static lb_node *b_matmul(lb_graph *g, lb_node **in, gc *c)
{
    return lb_matmul(g, in[0], in[1], c->iarg[0], c->iarg[1]);
}
static lb_node *b_relu(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_relu(g, in[0]); }
static lb_node *b_leaky(lb_graph *g, lb_node **in, gc *c) { return lb_leaky_relu(g, in[0], c->farg[0]); }
static lb_node *b_sigmoid(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_sigmoid(g, in[0]); }
static lb_node *b_tanh(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_tanh(g, in[0]); }
static lb_node *b_exp(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_exp(g, in[0]); }
static lb_node *b_log(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_log(g, in[0]); }
static lb_node *b_softmax(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_softmax(g, in[0]); }
static lb_node *b_log_softmax(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_log_softmax(g, in[0]); }
static lb_node *b_sum(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_sum(g, in[0]); }
static lb_node *b_mean(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_mean(g, in[0]); }
static lb_node *b_reshape(lb_graph *g, lb_node **in, gc *c) { return lb_reshape(g, in[0], c->iarg[0], c->iarg + 1); }
static lb_node *b_flatten(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_flatten(g, in[0]); }
static lb_node *b_pick(lb_graph *g, lb_node **in, gc *c) { return lb_pick(g, in[0], c->index); }
static lb_node *b_gap(lb_graph *g, lb_node **in, gc *c) { (void)c; return lb_global_avgpool(g, in[0]); }
static lb_node *b_maxpool(lb_graph *g, lb_node **in, gc *c)
{
    return lb_maxpool2d(g, in[0], c->iarg[0], c->iarg[1], c->iarg[2]);
}
static lb_node *b_avgpool(lb_graph *g, lb_node **in, gc *c)
{
    return lb_avgpool2d(g, in[0], c->iarg[0], c->iarg[1], c->iarg[2]);
}
/* iarg: stride h, stride w, pad top, bottom, left, right, 1 = call lb_conv2d_ex */
static lb_node *b_conv(lb_graph *g, lb_node **in, gc *c)
{
    lb_node *b = c->n_in > 2 ? in[2] : NULL;
    if (c->iarg[6])
        return lb_conv2d_ex(g, in[0], in[1], b, c->iarg[0], c->iarg[1], c->iarg[2], c->iarg[3], c->iarg[4], c->iarg[5]);
    return lb_conv2d(g, in[0], in[1], b, c->iarg[0], c->iarg[2]);
}
static lb_node *b_dropout(lb_graph *g, lb_node **in, gc *c)
{
    lb_graph_set_training(g, c->iarg[0]);
    lb_rng r = c->rng; /* the same mask on every forward */
    return lb_dropout(g, in[0], c->farg[0], &r);
}
static lb_node *b_batchnorm(lb_graph *g, lb_node **in, gc *c)
{
    lb_graph_set_training(g, c->iarg[0]);
    return lb_batchnorm2d(g, in[0], in[1], in[2], c->rmean, c->rvar, 0.1f, 1e-5f);
}

/* iarg[0]: training; a fourth input is the residual */
static lb_node *b_batchnorm_relu(lb_graph *g, lb_node **in, gc *c)
{
    lb_graph_set_training(g, c->iarg[0]);
    if (c->n_in > 3) return lb_batchnorm2d_add_relu(g, in[0], in[1], in[2], in[3], c->rmean, c->rvar, 0.1f, 1e-5f);
    return lb_batchnorm2d_relu(g, in[0], in[1], in[2], c->rmean, c->rvar, 0.1f, 1e-5f);
}

/* A random shape: 2-D [N, C] or 4-D [N, C, H, W], batch 1 included, odd sizes likely. */
static int random_shape(lb_rng *r, int four_d, int *shape)
{
    shape[0] = 1 + (int)lb_rng_below(r, 3);
    shape[1] = 1 + (int)lb_rng_below(r, 4);
    shape[2] = 1 + (int)lb_rng_below(r, 5);
    shape[3] = 1 + (int)lb_rng_below(r, 5);
    return four_d ? 4 : 2;
}

/* add/sub/mul: _i picks op (i % 3) and form (i / 3): 0 same shape 2-D, 1 same shape 4-D,
 * 2 bias [C] over N of [N, C], 3 bias [C] over N, H, W of [N, C, H, W]. */
START_TEST(test_grad_binary)
{
    static const gc_build builds[3] = {b_add, b_sub, b_mul};
    static const char *names[3] = {"add", "sub", "mul"};
    int op = _i % 3, form = _i / 3;
    lb_rng r;
    lb_rng_seed(&r, 100 + (uint64_t)_i);
    gc c = {.tol = names[op], .build = builds[op]};
    int s[4];
    int nd = random_shape(&r, form == 1 || form == 3, s);
    if (form == 3) s[0] = 2, s[1] = 3; /* make the broadcast cover several N, H, W */
    float *a = gc_input(&c, nd, s[0], s[1], s[2], s[3]);
    fill_uniform(&r, a, gc_size(&c, 0), -1.5, 1.5);
    float *b = form >= 2 ? gc_input(&c, 1, s[1], 0, 0, 0) : gc_input(&c, nd, s[0], s[1], s[2], s[3]);
    fill_uniform(&r, b, gc_size(&c, 1), -1.5, 1.5);
    gradcheck(&c);
}
END_TEST

START_TEST(test_grad_scale)
{
    lb_rng r;
    lb_rng_seed(&r, 200);
    gc c = {.tol = "scale", .build = b_scale, .farg = {-1.7f}};
    fill_uniform(&r, gc_input(&c, 4, 1, 3, 2, 5), 30, -1, 1);
    gradcheck(&c);
}
END_TEST

/* all four transpose combinations; A is stored [K, M] when transposed, B [N, K] */
START_TEST(test_grad_matmul)
{
    int ta = _i & 1, tb = _i >> 1, M = 3 + _i % 2, K = 5, N = 1 + _i;
    lb_rng r;
    lb_rng_seed(&r, 300 + (uint64_t)_i);
    gc c = {.tol = "matmul", .build = b_matmul, .iarg = {ta, tb}};
    float *a = ta ? gc_input(&c, 2, K, M, 0, 0) : gc_input(&c, 2, M, K, 0, 0);
    float *b = tb ? gc_input(&c, 2, N, K, 0, 0) : gc_input(&c, 2, K, N, 0, 0);
    fill_uniform(&r, a, gc_size(&c, 0), -1, 1);
    fill_uniform(&r, b, gc_size(&c, 1), -1, 1);
    gradcheck(&c);
}
END_TEST

/* unary activations: 0 relu, 1 leaky_relu, 2 sigmoid, 3 tanh, 4 exp, 5 log */
START_TEST(test_grad_unary)
{
    static const gc_build builds[6] = {b_relu, b_leaky, b_sigmoid, b_tanh, b_exp, b_log};
    static const char *names[6] = {"relu", "leaky_relu", "sigmoid", "tanh", "exp", "log"};
    lb_rng r;
    lb_rng_seed(&r, 400 + (uint64_t)_i);
    gc c = {.tol = names[_i], .build = builds[_i], .farg = {0.1f}};
    int s[4];
    int nd = random_shape(&r, _i % 2, s);
    float *x = gc_input(&c, nd, s[0], s[1] + 1, s[2], s[3]);
    size_t n = gc_size(&c, 0);
    if (_i <= 1)
        fill_away_from_zero(&r, x, n, 0.1, 2.0);
    else if (_i == 5)
        fill_uniform(&r, x, n, 0.5, 2.0);
    else
        fill_uniform(&r, x, n, -2.0, 2.0);
    gradcheck(&c);
}
END_TEST

START_TEST(test_grad_softmax)
{
    lb_rng r;
    lb_rng_seed(&r, 500 + (uint64_t)_i);
    gc c = {.tol = _i ? "log_softmax" : "softmax", .build = _i ? b_log_softmax : b_softmax};
    /* batch 1 and an odd class count, then a batch of 3 with shifted logits */
    float *x = _i ? gc_input(&c, 2, 3, 5, 0, 0) : gc_input(&c, 2, 1, 7, 0, 0);
    fill_uniform(&r, x, gc_size(&c, 0), -2.0 + 3 * _i, 2.0 + 3 * _i);
    gradcheck(&c);
}
END_TEST

/* 0 sum, 1 mean, 2 reshape, 3 flatten, 4 pick, 5 global_avgpool */
START_TEST(test_grad_reduce_reshape)
{
    lb_rng r;
    lb_rng_seed(&r, 600 + (uint64_t)_i);
    gc c = {0};
    float *x;
    switch (_i) {
    case 0: c.tol = "sum", c.build = b_sum, x = gc_input(&c, 4, 2, 3, 1, 3); break;
    case 1: c.tol = "mean", c.build = b_mean, x = gc_input(&c, 2, 3, 5, 0, 0); break;
    case 2:
        c.tol = "reshape", c.build = b_reshape, x = gc_input(&c, 2, 3, 4, 0, 0);
        c.iarg[0] = 3, c.iarg[1] = 2, c.iarg[2] = 3, c.iarg[3] = 2; /* [3, 4] -> [2, 3, 2] */
        break;
    case 3: c.tol = "flatten", c.build = b_flatten, x = gc_input(&c, 4, 2, 3, 3, 1); break;
    case 4:
        c.tol = "pick", c.build = b_pick, x = gc_input(&c, 2, 5, 3, 0, 0);
        for (int n = 0; n < 5; n++) c.index[n] = (int)lb_rng_below(&r, 3);
        break;
    default: c.tol = "global_avgpool", c.build = b_gap, x = gc_input(&c, 4, 2, 3, 3, 5); break;
    }
    fill_uniform(&r, x, gc_size(&c, 0), -1, 1);
    gradcheck(&c);
}
END_TEST

/* Convolution shapes: the first cover the required corners, the rest are random.
 * {N, C, H, W, F, KH, KW, sh, sw, pt, pb, pl, pr, use_ex, bias} */
static const int CONV_CASES[][15] = {
    {1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1}, /* batch 1, pad 1, kernel 3 */
    {2, 3, 7, 5, 2, 5, 5, 2, 2, 2, 2, 2, 2, 0, 1}, /* odd sizes, stride 2, pad 2, kernel 5 */
    {1, 2, 6, 7, 3, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0}, /* kernel 1, stride 2, pad 0, no bias */
    {2, 2, 5, 6, 2, 3, 2, 2, 1, 0, 2, 1, 0, 1, 1}, /* asymmetric padding and kernel, _ex */
    {1, 1, 4, 5, 2, 3, 3, 1, 2, 2, 1, 0, 1, 1, 1}, /* asymmetric the other way, stride 1x2 */
    /* Winograd F(2x2, 3x3) (3x3, stride 1, C and F >= 32): odd outputs leave half tiles */
    {2, 32, 5, 5, 32, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1}, /* pad 1, 5x5 output: 3x3 tiles */
    {1, 32, 6, 7, 33, 3, 3, 1, 1, 0, 0, 0, 0, 1, 0}, /* pad 0, 4x5 output, no bias */
    {2, 33, 4, 6, 32, 3, 3, 1, 1, 2, 1, 0, 2, 1, 1}, /* asymmetric padding */
};
#define N_CONV_FIXED 8
#define N_CONV_CASES 12

static void conv_case(int i, int *k)
{
    if (i < N_CONV_FIXED) {
        memcpy(k, CONV_CASES[i], 15 * sizeof(int));
        return;
    }
    lb_rng r;
    lb_rng_seed(&r, 700 + (uint64_t)i);
    static const int ks[3] = {1, 3, 5};
    k[0] = 1 + (int)lb_rng_below(&r, 2);
    k[1] = 1 + (int)lb_rng_below(&r, 3);
    k[4] = 1 + (int)lb_rng_below(&r, 3);
    k[5] = ks[lb_rng_below(&r, 3)];
    k[6] = ks[lb_rng_below(&r, 3)];
    k[7] = 1 + (int)lb_rng_below(&r, 2);
    k[8] = 1 + (int)lb_rng_below(&r, 2);
    for (int j = 9; j < 13; j++) k[j] = (int)lb_rng_below(&r, 3);
    k[2] = k[5] + (int)lb_rng_below(&r, 4); /* never smaller than the kernel */
    k[3] = k[6] + (int)lb_rng_below(&r, 4);
    k[13] = 1;
    k[14] = (int)lb_rng_below(&r, 2);
}

START_TEST(test_grad_conv2d)
{
    int k[15];
    conv_case(_i, k);
    lb_rng r;
    lb_rng_seed(&r, 800 + (uint64_t)_i);
    /* the Winograd cases: linear, so a wider step (no truncation error) against float rounding */
    int wino = k[5] == 3 && k[6] == 3 && k[7] == 1 && k[8] == 1 && k[1] >= 32 && k[4] >= 32;
    gc c = {.tol = wino ? "conv2d_winograd" : "conv2d", .build = b_conv, .iarg = {k[7], k[8], k[9], k[10], k[11], k[12], k[13]}};
    if (wino) c.sample = 400; /* of ~10,000 weights and 1,600 inputs */
    fill_uniform(&r, gc_input(&c, 4, k[0], k[1], k[2], k[3]), (size_t)k[0] * k[1] * k[2] * k[3], -1, 1);
    fill_uniform(&r, gc_input(&c, 4, k[4], k[1], k[5], k[6]), (size_t)k[4] * k[1] * k[5] * k[6], -1, 1);
    if (k[14]) fill_uniform(&r, gc_input(&c, 1, k[4], 0, 0, 0), (size_t)k[4], -1, 1);
    if (_i == 2) c.check[0] = 0; /* a first layer: the input needs no gradient, the weight does */
    gradcheck(&c);
}
END_TEST

/* Pooling shapes {N, C, H, W, k, stride, pad}: fixed corners, then random. */
static const int POOL_CASES[][7] = {
    {1, 1, 4, 4, 2, 2, 0}, {2, 3, 5, 7, 3, 2, 1}, {1, 2, 5, 5, 3, 1, 1}, {2, 1, 7, 6, 5, 2, 2}, {1, 2, 3, 5, 1, 2, 0},
};
#define N_POOL_FIXED 5
#define N_POOL_CASES 8

static void pool_case(int i, int *k)
{
    if (i < N_POOL_FIXED) {
        memcpy(k, POOL_CASES[i], 7 * sizeof(int));
        return;
    }
    lb_rng r;
    lb_rng_seed(&r, 900 + (uint64_t)i);
    k[0] = 1 + (int)lb_rng_below(&r, 2);
    k[1] = 1 + (int)lb_rng_below(&r, 3);
    k[4] = 1 + (int)lb_rng_below(&r, 3);
    k[5] = 1 + (int)lb_rng_below(&r, 2);
    k[6] = (int)lb_rng_below(&r, (uint64_t)k[4] / 2 + 1);
    k[2] = k[4] + (int)lb_rng_below(&r, 5);
    k[3] = k[4] + (int)lb_rng_below(&r, 5);
}

/* _i: case index * 2 + (0 max, 1 average) */
START_TEST(test_grad_pool)
{
    int k[7], avg = _i % 2;
    pool_case(_i / 2, k);
    lb_rng r;
    lb_rng_seed(&r, 1000 + (uint64_t)_i);
    gc c = {.tol = avg ? "avgpool2d" : "maxpool2d", .build = avg ? b_avgpool : b_maxpool, .iarg = {k[4], k[5], k[6]}};
    float *x = gc_input(&c, 4, k[0], k[1], k[2], k[3]);
    if (avg)
        fill_uniform(&r, x, gc_size(&c, 0), -1, 1);
    else
        fill_distinct(&r, x, gc_size(&c, 0));
    gradcheck(&c);
}
END_TEST

START_TEST(test_grad_dropout)
{
    int train = _i;
    gc c = {.tol = "dropout", .build = b_dropout, .iarg = {train}, .farg = {0.4f}};
    lb_rng_seed(&c.rng, 77);
    lb_rng r;
    lb_rng_seed(&r, 1100);
    fill_uniform(&r, gc_input(&c, 4, 2, 3, 3, 3), 54, -1, 1);
    if (train) {
        /* the fixed mask has both dropped and kept elements, or the check proves little */
        lb_graph *g = lb_graph_new();
        lb_node *x = leaf(g, 4, 2, 3, 3, 3, c.x[0]);
        lb_node *y = b_dropout(g, &x, &c);
        int zeros = 0;
        for (size_t i = 0; i < y->size; i++) zeros += y->val[i] == 0.0f;
        ck_assert_int_gt(zeros, 5);
        ck_assert_int_lt(zeros, 49);
        lb_graph_free(g);
    }
    gradcheck(&c);
}
END_TEST

/* _i: 0 train 4-D, 1 train 2-D, 2 eval 4-D, 3 eval 2-D */
START_TEST(test_grad_batchnorm)
{
    int train = _i < 2, four = _i % 2 == 0;
    lb_rng r;
    lb_rng_seed(&r, 1200 + (uint64_t)_i);
    gc c = {.tol = train ? "batchnorm2d_train" : "batchnorm2d_eval", .build = b_batchnorm, .iarg = {train}};
    int C = 3;
    float *x = four ? gc_input(&c, 4, 2, C, 3, 3) : gc_input(&c, 2, 5, C, 0, 0);
    fill_uniform(&r, x, gc_size(&c, 0), -2, 2);
    fill_uniform(&r, gc_input(&c, 1, C, 0, 0, 0), C, 0.5, 1.5);
    fill_uniform(&r, gc_input(&c, 1, C, 0, 0, 0), C, -0.5, 0.5);
    for (int i = 0; i < C; i++) c.rmean[i] = 0.2f * (float)i - 0.1f, c.rvar[i] = 0.5f + 0.4f * (float)i;
    gradcheck(&c);
}
END_TEST

/* The value batch norm gives before any ReLU (+ the residual, input 3), in double from its
 * definition: batch mean and biased variance in training, the running statistics in eval. */
static void bn_reference(const gc *c, int train, double *z)
{
    int N = c->shape[0][0], C = c->shape[0][1];
    size_t inner = gc_size(c, 0) / ((size_t)N * (size_t)C);
    for (int ch = 0; ch < C; ch++) {
        double m = 0.0, v = 0.0, M = (double)N * (double)inner;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < inner; i++) m += c->x[0][((size_t)n * C + ch) * inner + i] / M;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < inner; i++) {
                double d = c->x[0][((size_t)n * C + ch) * inner + i] - m;
                v += d * d / M;
            }
        if (!train) m = c->rmean[ch], v = c->rvar[ch];
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < inner; i++) {
                size_t k = ((size_t)n * C + ch) * inner + i;
                z[k] = c->x[1][ch] * (c->x[0][k] - m) / sqrt(v + 1e-5) + c->x[2][ch] + (c->n_in > 3 ? c->x[3][k] : 0.0);
            }
    }
}

/* _i: 0 train 4-D, 1 train 2-D, 2 eval 4-D, 3 eval 2-D; + 4: with a residual. Inputs whose
 * outputs come nearer than 0.06 to the ReLU's kink are drawn again (no residual) or have that
 * output's residual moved by 0.2 away from it. */
START_TEST(test_grad_batchnorm_relu)
{
    int train = _i % 4 < 2, four = _i % 2 == 0, residual = _i >= 4, C = 3;
    for (int attempt = 0;; attempt++) {
        ck_assert_msg(attempt < 500, "no input away from the kink in 500 draws");
        lb_rng r;
        lb_rng_seed(&r, 1300 + 1000 * (uint64_t)_i + (uint64_t)attempt);
        gc c = {.tol = train ? "batchnorm2d_relu_train" : "batchnorm2d_relu_eval", .build = b_batchnorm_relu,
                .iarg = {train}};
        float *x = four ? gc_input(&c, 4, 2, C, 3, 3) : gc_input(&c, 2, 6, C, 0, 0);
        fill_uniform(&r, x, gc_size(&c, 0), -2, 2);
        fill_uniform(&r, gc_input(&c, 1, C, 0, 0, 0), C, 0.5, 1.5);
        fill_uniform(&r, gc_input(&c, 1, C, 0, 0, 0), C, -0.5, 0.5);
        if (residual) fill_uniform(&r, four ? gc_input(&c, 4, 2, C, 3, 3) : gc_input(&c, 2, 6, C, 0, 0), gc_size(&c, 0), -1, 1);
        for (int i = 0; i < C; i++) c.rmean[i] = 0.2f * (float)i - 0.1f, c.rvar[i] = 0.5f + 0.4f * (float)i;
        double z[64];
        bn_reference(&c, train, z);
        int near = 0;
        for (size_t k = 0; k < gc_size(&c, 0); k++) {
            if (fabs(z[k]) >= 0.06) continue;
            if (residual) c.x[3][k] += z[k] >= 0 ? 0.2f : -0.2f;
            near = 1;
        }
        if (near && !residual) {
            gc_free(&c);
            continue;
        }
        gradcheck(&c);
        break;
    }
}
END_TEST

/* The fused node against the ops it stands for, on a larger shape at 1 and 2 threads:
 * lb_relu(lb_add(lb_batchnorm2d(x), r)) (the add's operands either way round, as the model's
 * two kinds of shortcut give them) and lb_relu(lb_batchnorm2d(x)); every value and every
 * gradient the same bits, in training and evaluation. */
START_TEST(test_batchnorm_relu_is_the_composition)
{
    enum { N = 3, C = 5, H = 6, W = 7, S = N * C * H * W };
    int train = _i % 2, threads = 1 + (_i / 2) % 2, residual = _i / 4, swap = residual && threads == 2;
    lb_rng r;
    lb_rng_seed(&r, 77 + (uint64_t)_i);
    float *x = fill_uniform(&r, malloc(S * sizeof(float)), S, -2, 2), *res = fill_uniform(&r, malloc(S * sizeof(float)), S, -1, 1);
    float *up = fill_uniform(&r, malloc(S * sizeof(float)), S, -1, 1), gb[2][C];
    fill_uniform(&r, gb[0], C, 0.5, 1.5);
    fill_uniform(&r, gb[1], C, -0.5, 0.5);
    ck_assert_int_eq(lb_set_threads(threads), LB_OK);
    float *got[2][5], stats[2][2 * C];
    for (int fused = 0; fused < 2; fused++) {
        float *rm = stats[fused], *rv = stats[fused] + C;
        for (int i = 0; i < C; i++) rm[i] = 0.1f * (float)i, rv[i] = 1.0f + 0.2f * (float)i;
        lb_graph *g = lb_graph_new();
        lb_graph_set_training(g, train);
        int shape[4] = {N, C, H, W};
        lb_node *in[4] = {lb_leaf(g, 4, shape, x, 1), lb_leaf(g, 1, (int[]){C}, gb[0], 1),
                          lb_leaf(g, 1, (int[]){C}, gb[1], 1), lb_leaf(g, 4, shape, res, 1)};
        lb_node *y;
        if (fused)
            y = residual ? lb_batchnorm2d_add_relu(g, in[0], in[1], in[2], in[3], rm, rv, 0.1f, 1e-5f)
                         : lb_batchnorm2d_relu(g, in[0], in[1], in[2], rm, rv, 0.1f, 1e-5f);
        else {
            y = lb_batchnorm2d(g, in[0], in[1], in[2], rm, rv, 0.1f, 1e-5f);
            if (residual) y = swap ? lb_add(g, in[3], y) : lb_add(g, y, in[3]);
            y = lb_relu(g, y);
        }
        ck_assert_msg(y != NULL, "%s", lb_last_error());
        lb_node *L = lb_sum(g, lb_mul(g, lb_leaf(g, 4, shape, up, 0), y));
        ck_assert_int_eq(lb_backward(g, L), LB_OK);
        const float *src[5] = {y->val, in[0]->grad, in[1]->grad, in[2]->grad, in[3]->grad};
        size_t n[5] = {S, S, C, C, S};
        for (int k = 0; k < 5; k++) got[fused][k] = memcpy(malloc(n[k] * sizeof(float)), src[k], n[k] * sizeof(float));
        lb_graph_free(g);
    }
    const char *what[5] = {"value", "x gradient", "gamma gradient", "beta gradient", "residual gradient"};
    size_t n[5] = {S, S, C, C, S};
    for (int k = 0; k < 5; k++) {
        if (k == 4 && !residual) break;
        ck_assert_msg(memcmp(got[0][k], got[1][k], n[k] * sizeof(float)) == 0, "case %d: %s differs", _i, what[k]);
    }
    ck_assert_msg(memcmp(stats[0], stats[1], sizeof stats[0]) == 0, "case %d: running statistics differ", _i);
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < 5; k++) free(got[f][k]);
    free(x), free(res), free(up);
    lb_set_threads(1);
}
END_TEST

/* ---------------------------------------------------------------- hand-computed forwards */

START_TEST(test_forward_elementwise)
{
    lb_graph *g = lb_graph_new();
    static const float a[4] = {1, 2, 3, 4}, b[4] = {3, 4.5f, -1, 0.5f}, bias[2] = {10, 20};
    lb_node *A = leaf(g, 2, 2, 2, 0, 0, a), *B = leaf(g, 2, 2, 2, 0, 0, b), *V = leaf(g, 1, 2, 0, 0, 0, bias);
    /* same shape: a+b = {4, 6.5, 2, 4.5}; a-b = {-2, -2.5, 4, 3.5}; a*b = {3, 9, -3, 2} */
    expect_vals(lb_add(g, A, B), (double[]){4, 6.5, 2, 4.5}, 4, 1e-6);
    expect_vals(lb_sub(g, A, B), (double[]){-2, -2.5, 4, 3.5}, 4, 1e-6);
    expect_vals(lb_mul(g, A, B), (double[]){3, 9, -3, 2}, 4, 1e-6);
    /* bias over N of [2, 2] (rows [1 2], [3 4]): column c gets bias[c]:
     * + -> {11, 22, 13, 24}; - -> {-9, -18, -7, -16}; * -> {10, 40, 30, 80} */
    expect_vals(lb_add(g, A, V), (double[]){11, 22, 13, 24}, 4, 1e-6);
    expect_vals(lb_sub(g, A, V), (double[]){-9, -18, -7, -16}, 4, 1e-6);
    expect_vals(lb_mul(g, A, V), (double[]){10, 40, 30, 80}, 4, 1e-6);
    /* bias over N, H, W of [1, 2, 1, 2]: channel 0 = {1, 2}, channel 1 = {3, 4}:
     * + -> {11, 12, 23, 24}; * -> {10, 20, 60, 80} */
    lb_node *A4 = leaf(g, 4, 1, 2, 1, 2, a);
    expect_vals(lb_add(g, A4, V), (double[]){11, 12, 23, 24}, 4, 1e-6);
    expect_vals(lb_mul(g, A4, V), (double[]){10, 20, 60, 80}, 4, 1e-6);
    expect_shape(lb_add(g, A4, V), 4, 1, 2, 1, 2);
    /* scale by -0.5: {-0.5, -1, -1.5, -2} */
    expect_vals(lb_scale(g, A, -0.5f), (double[]){-0.5, -1, -1.5, -2}, 4, 1e-6);
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_matmul)
{
    lb_graph *g = lb_graph_new();
    /* A = [[1 2 3], [4 5 6]], B = [[7 8], [9 10], [11 12]]:
     * AB = [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]] = [[58, 64], [139, 154]].
     * The transposed forms store A^T = [[1 4], [2 5], [3 6]] and B^T = [[7 9 11], [8 10 12]]
     * and must give the same product. */
    static const float a[6] = {1, 2, 3, 4, 5, 6}, at[6] = {1, 4, 2, 5, 3, 6};
    static const float b[6] = {7, 8, 9, 10, 11, 12}, bt[6] = {7, 9, 11, 8, 10, 12};
    static const double want[4] = {58, 64, 139, 154};
    lb_node *A = leaf(g, 2, 2, 3, 0, 0, a), *At = leaf(g, 2, 3, 2, 0, 0, at);
    lb_node *B = leaf(g, 2, 3, 2, 0, 0, b), *Bt = leaf(g, 2, 2, 3, 0, 0, bt);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            lb_node *y = lb_matmul(g, ta ? At : A, tb ? Bt : B, ta, tb);
            expect_shape(y, 2, 2, 2, 0, 0);
            expect_vals(y, want, 4, 1e-6);
        }
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_unary)
{
    lb_graph *g = lb_graph_new();
    static const float x[3] = {-1.0f, 0.0f, 0.5f};
    lb_node *X = leaf(g, 1, 3, 0, 0, 0, x);
    /* relu {-1, 0, 0.5} = {0, 0, 0.5}; leaky slope 0.1 = {-0.1, 0, 0.5} */
    expect_vals(lb_relu(g, X), (double[]){0, 0, 0.5}, 3, 1e-7);
    expect_vals(lb_leaky_relu(g, X, 0.1f), (double[]){-0.1, 0, 0.5}, 3, 1e-7);
    /* sigmoid(t) = 1/(1+e^-t): sigmoid(ln 3) = 1/(1+1/3) = 3/4, sigmoid(-ln 3) = 1/4,
     * sigmoid(0) = 1/2; sigmoid(-100) underflows to ~0 without NaN */
    static const float s[4] = {1.0986123f, -1.0986123f, 0.0f, -100.0f};
    expect_vals(lb_sigmoid(g, leaf(g, 1, 4, 0, 0, 0, s)), (double[]){0.75, 0.25, 0.5, 0}, 4, 1e-6);
    /* tanh(ln 2) = (2 - 1/2)/(2 + 1/2) = 0.6; tanh is odd: tanh(-ln 2) = -0.6 */
    static const float t[2] = {0.69314718f, -0.69314718f};
    expect_vals(lb_tanh(g, leaf(g, 1, 2, 0, 0, 0, t)), (double[]){0.6, -0.6}, 2, 1e-6);
    /* exp(ln 2) = 2, exp(0) = 1; log(4) = 2 ln 2 = 1.3862944, log(1) = 0 */
    expect_vals(lb_exp(g, leaf(g, 1, 2, 0, 0, 0, (float[]){0.69314718f, 0.0f})), (double[]){2, 1}, 2, 1e-6);
    expect_vals(lb_log(g, leaf(g, 1, 2, 0, 0, 0, (float[]){4.0f, 1.0f})), (double[]){1.3862944, 0}, 2, 1e-6);
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_softmax)
{
    lb_graph *g = lb_graph_new();
    /* row 0 = [0, ln 3]: e^0 : e^ln3 = 1 : 3, so softmax = [1/4, 3/4] and log_softmax =
     * [ln(1/4), ln(3/4)] = [-1.3862944, -0.2876821]. Row 1 is row 0 + 100: the same answer.
     * Row 2 = [-1000, 0]: softmax [e^-1000 ~ 0, 1], log_softmax exactly [-1000, 0]; only
     * subtracting the row maximum avoids exp(1000) = inf (even in double). */
    static const float x[6] = {0.0f, 1.0986123f, 100.0f, 101.0986123f, -1000.0f, 0.0f};
    lb_node *X = leaf(g, 2, 3, 2, 0, 0, x);
    expect_vals(lb_softmax(g, X), (double[]){0.25, 0.75, 0.25, 0.75, 0, 1}, 6, 1e-5);
    expect_vals(lb_log_softmax(g, X), (double[]){-1.3862944, -0.2876821, -1.3862944, -0.2876821, -1000, 0}, 6,
                1e-5);
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_reduce_reshape)
{
    lb_graph *g = lb_graph_new();
    static const float x[6] = {1, 2, 3, 4, 5, 6};
    lb_node *X = leaf(g, 2, 2, 3, 0, 0, x);
    /* sum 1..6 = 21, mean = 21/6 = 3.5 */
    expect_vals(lb_sum(g, X), (double[]){21}, 1, 1e-7);
    expect_vals(lb_mean(g, X), (double[]){3.5}, 1, 1e-7);
    expect_shape(lb_sum(g, X), 1, 1, 0, 0, 0);
    /* reshape [2, 3] -> [3, 2] keeps row-major order */
    lb_node *R = lb_reshape(g, X, 2, (int[]){3, 2});
    expect_shape(R, 2, 3, 2, 0, 0);
    expect_vals(R, (double[]){1, 2, 3, 4, 5, 6}, 6, 0);
    /* flatten [2, 3, 1, 1] -> [2, 3] */
    lb_node *F = lb_flatten(g, leaf(g, 4, 2, 3, 1, 1, x));
    expect_shape(F, 2, 2, 3, 0, 0);
    expect_vals(F, (double[]){1, 2, 3, 4, 5, 6}, 6, 0);
    /* pick rows [1 2 3], [4 5 6] at columns {2, 0}: {3, 4} */
    expect_vals(lb_pick(g, X, (int[]){2, 0}), (double[]){3, 4}, 2, 0);
    /* global average of channel planes {1, 2, 3, 4} and {10, 20, 30, 40}: {2.5, 25} */
    static const float p[8] = {1, 2, 3, 4, 10, 20, 30, 40};
    lb_node *G = lb_global_avgpool(g, leaf(g, 4, 1, 2, 2, 2, p));
    expect_shape(G, 2, 1, 2, 0, 0);
    expect_vals(G, (double[]){2.5, 25}, 2, 1e-7);
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_conv2d)
{
    lb_graph *g = lb_graph_new();
    static const float x9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* rows [1 2 3], [4 5 6], [7 8 9] */
    lb_node *X = leaf(g, 4, 1, 1, 3, 3, x9);
    /* kernel [[1 2], [3 4]], bias 0.5, stride 1, no padding: the window at (0,0) is
     * [[1 2], [4 5]] -> 1 + 4 + 12 + 20 + 0.5 = 37.5; each step right adds 1+2+3+4 = 10,
     * each step down adds 3*10 = 30: {37.5, 47.5, 67.5, 77.5} */
    lb_node *W = leaf(g, 4, 1, 1, 2, 2, (float[]){1, 2, 3, 4}), *B = leaf(g, 1, 1, 0, 0, 0, (float[]){0.5f});
    lb_node *y = lb_conv2d(g, X, W, B, 1, 0);
    expect_shape(y, 4, 1, 1, 2, 2);
    expect_vals(y, (double[]){37.5, 47.5, 67.5, 77.5}, 4, 1e-6);
    /* 3x3 ones kernel, stride 2, padding 1: windows centred on (0,0), (0,2), (2,0), (2,2)
     * cover 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28 */
    static const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    y = lb_conv2d(g, X, leaf(g, 4, 1, 1, 3, 3, ones), NULL, 2, 1);
    expect_shape(y, 4, 1, 1, 2, 2);
    expect_vals(y, (double[]){12, 16, 24, 28}, 4, 1e-6);
    /* asymmetric: x = [[1 2], [3 4]], pad top 1, bottom 0, left 0, right 1, 2x2 ones:
     * padded [[0 0 0], [1 2 0], [3 4 0]] -> windows 0+0+1+2 = 3, 0+0+2+0 = 2,
     * 1+2+3+4 = 10, 2+0+4+0 = 6 */
    y = lb_conv2d_ex(g, leaf(g, 4, 1, 1, 2, 2, x9), leaf(g, 4, 1, 1, 2, 2, ones), NULL, 1, 1, 1, 0, 0, 1);
    expect_shape(y, 4, 1, 1, 2, 2);
    expect_vals(y, (double[]){3, 2, 10, 6}, 4, 1e-6);
    /* two input channels sum, two filters: x channels {1,2,3,4} and {10,20,30,40} (2x2),
     * 1x1 kernels w0 = (1, 1), w1 = (1, -1): f0 = {11, 22, 33, 44}, f1 = {-9, -18, -27, -36} */
    static const float x2[8] = {1, 2, 3, 4, 10, 20, 30, 40};
    y = lb_conv2d(g, leaf(g, 4, 1, 2, 2, 2, x2), leaf(g, 4, 2, 2, 1, 1, (float[]){1, 1, 1, -1}), NULL, 1, 0);
    expect_shape(y, 4, 1, 2, 2, 2);
    expect_vals(y, (double[]){11, 22, 33, 44, -9, -18, -27, -36}, 8, 1e-6);
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_pool)
{
    lb_graph *g = lb_graph_new();
    float x16[16];
    for (int i = 0; i < 16; i++) x16[i] = (float)(i + 1); /* rows [1..4], [5..8], [9..12], [13..16] */
    lb_node *X = leaf(g, 4, 1, 1, 4, 4, x16);
    /* 2x2 stride 2: max of each block {6, 8, 14, 16}; mean (1+2+5+6)/4 = 3.5, then +2, +8, +10 */
    expect_vals(lb_maxpool2d(g, X, 2, 2, 0), (double[]){6, 8, 14, 16}, 4, 0);
    expect_vals(lb_avgpool2d(g, X, 2, 2, 0), (double[]){3.5, 5.5, 11.5, 13.5}, 4, 1e-7);
    /* 3x3 stride 2 pad 1 over [[1 2 3], [4 5 6], [7 8 9]]: windows as in the conv test;
     * max {5, 6, 8, 9}; average counts the padding: {12/9, 16/9, 24/9, 28/9} */
    static const float x9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    lb_node *X9 = leaf(g, 4, 1, 1, 3, 3, x9);
    expect_vals(lb_maxpool2d(g, X9, 3, 2, 1), (double[]){5, 6, 8, 9}, 4, 0);
    expect_vals(lb_avgpool2d(g, X9, 3, 2, 1), (double[]){12 / 9.0, 16 / 9.0, 24 / 9.0, 28 / 9.0}, 4, 1e-6);
    /* padding is -inf for max, not 0: all-negative input keeps its own maximum */
    static const float neg[4] = {-4, -3, -2, -1};
    expect_vals(lb_maxpool2d(g, leaf(g, 4, 1, 1, 2, 2, neg), 3, 1, 1), (double[]){-1, -1, -1, -1}, 4, 0);
    /* ties: the first maximum in row-major window order takes the whole gradient (as PyTorch);
     * windows of [[1 7 7], [7 2 7]] with k 2 stride 1 are [[1 7], [7 2]] and [[7 7], [2 7]],
     * whose first maxima are elements 1 and 1 again: gradient {0, 2, 0, 0, 0, 0} */
    static const float tie[6] = {1, 7, 7, 7, 2, 7};
    lb_node *T = leaf(g, 4, 1, 1, 2, 3, tie), *M = lb_maxpool2d(g, T, 2, 1, 0);
    expect_vals(M, (double[]){7, 7}, 2, 0);
    ck_assert_int_eq(lb_backward(g, lb_sum(g, M)), LB_OK);
    static const float want_tie[6] = {0, 2, 0, 0, 0, 0};
    ck_assert_mem_eq(T->grad, want_tie, sizeof want_tie);
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_dropout)
{
    lb_graph *g = lb_graph_new();
    enum { n = 10000 };
    float *x = malloc(n * sizeof *x);
    for (int i = 0; i < n; i++) x[i] = 1.0f + (float)(i % 7);
    lb_node *X = lb_leaf(g, 1, (int[]){n}, x, 1);
    lb_rng r;
    lb_rng_seed(&r, 5);
    /* training, p = 0.25: each element is 0 or x/(1 - 0.25) = x * 4/3, and about a quarter
     * are 0 (binomial sd = sqrt(10000 * 0.25 * 0.75) = 43, so 2500 +- 250 is > 5 sd) */
    lb_node *y = lb_dropout(g, X, 0.25f, &r);
    ck_assert_ptr_nonnull(y);
    int zeros = 0;
    for (int i = 0; i < n; i++) {
        if (y->val[i] == 0.0f)
            zeros++;
        else
            ck_assert_float_eq_tol(y->val[i], x[i] * 4.0f / 3.0f, 1e-5f);
    }
    ck_assert_int_gt(zeros, 2250);
    ck_assert_int_lt(zeros, 2750);
    /* the same RNG state gives the same mask */
    lb_rng_seed(&r, 5);
    lb_node *y2 = lb_dropout(g, X, 0.25f, &r);
    ck_assert_mem_eq(y->val, y2->val, n * sizeof(float));
    /* p = 0 in training and any p in evaluation are the identity (no RNG needed) */
    expect_vals(lb_dropout(g, leaf(g, 1, 2, 0, 0, 0, (float[]){3, -2}), 0.0f, NULL), (double[]){3, -2}, 2, 0);
    lb_graph_set_training(g, 0);
    ck_assert_int_eq(lb_graph_training(g), 0);
    expect_vals(lb_dropout(g, leaf(g, 1, 2, 0, 0, 0, (float[]){3, -2}), 0.9f, NULL), (double[]){3, -2}, 2, 0);
    free(x);
    lb_graph_free(g);
}
END_TEST

START_TEST(test_forward_batchnorm)
{
    lb_graph *g = lb_graph_new();
    /* 2-D [4, 1] = {1, 2, 3, 4}: mean 2.5, biased variance (2.25+0.25+0.25+2.25)/4 = 1.25;
     * eps 2.75 makes var + eps = 4, invstd 1/2; gamma 2, beta 1: y = 2 (x-2.5)/2 + 1 = x - 1.5.
     * Running (momentum 0.1, from 0 and 1): mean 0.1*2.5 = 0.25; unbiased variance 5/3,
     * var 0.9*1 + 0.1*5/3 = 1.0666667. */
    float rm[2] = {0, 0}, rv[2] = {1, 1};
    lb_node *G1 = leaf(g, 1, 1, 0, 0, 0, (float[]){2}), *B1 = leaf(g, 1, 1, 0, 0, 0, (float[]){1});
    lb_node *y = lb_batchnorm2d(g, leaf(g, 2, 4, 1, 0, 0, (float[]){1, 2, 3, 4}), G1, B1, rm, rv, 0.1f, 2.75f);
    expect_vals(y, (double[]){-0.5, 0.5, 1.5, 2.5}, 4, 1e-6);
    ck_assert_float_eq_tol(rm[0], 0.25f, 1e-6f);
    ck_assert_float_eq_tol(rv[0], 1.0666667f, 1e-6f);
    /* 4-D [1, 2, 1, 2]: channel 0 {1, 3} mean 2 var 1, channel 1 {10, 14} mean 12 var 4;
     * eps 0: xhat = {-1, 1} in both; gamma {1, 2}, beta {0, 5}: {-1, 1, 3, 7}. Momentum 1
     * copies the batch statistics: mean {2, 12}, unbiased variance {2, 8}. */
    lb_node *G2 = leaf(g, 1, 2, 0, 0, 0, (float[]){1, 2}), *B2 = leaf(g, 1, 2, 0, 0, 0, (float[]){0, 5});
    y = lb_batchnorm2d(g, leaf(g, 4, 1, 2, 1, 2, (float[]){1, 3, 10, 14}), G2, B2, rm, rv, 1.0f, 0.0f);
    expect_vals(y, (double[]){-1, 1, 3, 7}, 4, 1e-6);
    ck_assert_float_eq_tol(rm[0], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(rm[1], 12.0f, 1e-6f);
    ck_assert_float_eq_tol(rv[0], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(rv[1], 8.0f, 1e-6f);
    /* evaluation uses the running statistics (mean {2, 12}, var {2, 8}) and leaves them
     * alone; eps 2, x {4, 0, 12, 16}: channel 0 (x-2)/sqrt(4) = {1, -1}; channel 1
     * (x-12)/sqrt(10) = {0, 1.2649111}; times gamma {1, 2} plus beta {0, 5}: {1, -1, 5, 7.5298221} */
    lb_graph_set_training(g, 0);
    y = lb_batchnorm2d(g, leaf(g, 4, 1, 2, 1, 2, (float[]){4, 0, 12, 16}), G2, B2, rm, rv, 0.1f, 2.0f);
    expect_vals(y, (double[]){1, -1, 5, 7.5298221}, 4, 1e-6);
    ck_assert_float_eq(rm[0], 2.0f);
    ck_assert_float_eq(rv[1], 8.0f);
    lb_graph_free(g);
}
END_TEST

/* ---------------------------------------------------------------- naive oracles */

/* 1e-4 relative to the naive value (absolute below magnitude 1, where sums cancel) */
static void expect_close_arrays(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-4f * fmaxf(1.0f, fabsf(want[i])),
                      "%s: element %zu is %.8g, naive %.8g", what, i, (double)got[i], (double)want[i]);
}

/* Larger shapes than the gradient checks, forward and all three gradients. */
START_TEST(test_conv2d_vs_naive)
{
    static const naive_conv Q[] = {
        {3, 4, 11, 13, 5, 3, 3, 2, 2, 1, 1, 1, 1}, {1, 3, 9, 8, 4, 5, 5, 1, 1, 2, 2, 2, 2},
        {2, 2, 7, 7, 3, 1, 1, 2, 2, 0, 0, 0, 0},   {2, 3, 8, 9, 2, 3, 2, 2, 1, 0, 2, 1, 0},
        {4, 1, 12, 10, 6, 5, 3, 3, 2, 1, 2, 0, 1},
        /* Winograd (3x3, stride 1, C and F >= 32): 12 images of 49 tiles are chunks 2 + ... + 2 */
        {12, 32, 14, 14, 40, 3, 3, 1, 1, 1, 1, 1, 1}, {2, 33, 11, 9, 32, 3, 3, 1, 1, 0, 2, 1, 0},
        {1, 32, 1, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1},    {3, 32, 2, 2, 35, 3, 3, 1, 1, 2, 2, 2, 2},
    };
    const naive_conv *q = &Q[_i];
    int OH = naive_conv_oh(q), OW = naive_conv_ow(q);
    size_t nx = (size_t)q->N * q->C * q->H * q->W, nw = (size_t)q->F * q->C * q->KH * q->KW;
    size_t ny = (size_t)q->N * q->F * OH * OW;
    lb_rng r;
    lb_rng_seed(&r, 1300 + (uint64_t)_i);
    float *x = fill_uniform(&r, malloc(nx * 4), nx, -1, 1), *w = fill_uniform(&r, malloc(nw * 4), nw, -1, 1);
    float *b = fill_uniform(&r, malloc((size_t)q->F * 4), (size_t)q->F, -1, 1);
    float *dy = fill_uniform(&r, malloc(ny * 4), ny, -1, 1), *y = malloc(ny * 4);
    float *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc((size_t)q->F * 4);
    naive_conv2d_forward(q, x, w, b, y);
    naive_conv2d_backward(q, x, w, dy, dx, dw, db);

    lb_graph *g = lb_graph_new();
    lb_node *X = leaf(g, 4, q->N, q->C, q->H, q->W, x), *Wn = leaf(g, 4, q->F, q->C, q->KH, q->KW, w);
    lb_node *B = leaf(g, 1, q->F, 0, 0, 0, b);
    lb_node *Y = _i % 2 ? lb_conv2d_ex(g, X, Wn, B, q->sh, q->sw, q->pt, q->pb, q->pl, q->pr)
                        : (q->sh == q->sw && q->pt == q->pb && q->pb == q->pl && q->pl == q->pr
                               ? lb_conv2d(g, X, Wn, B, q->sh, q->pt)
                               : lb_conv2d_ex(g, X, Wn, B, q->sh, q->sw, q->pt, q->pb, q->pl, q->pr));
    expect_shape(Y, 4, q->N, q->F, OH, OW);
    expect_close_arrays("conv2d forward", Y->val, y, ny);
    /* d sum(dy * Y) / dY = dy */
    lb_node *L = lb_sum(g, lb_mul(g, lb_leaf(g, 4, Y->shape, dy, 0), Y));
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    expect_close_arrays("conv2d dx", X->grad, dx, nx);
    expect_close_arrays("conv2d dw", Wn->grad, dw, nw);
    expect_close_arrays("conv2d db", B->grad, db, (size_t)q->F);
    lb_graph_free(g);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
}
END_TEST

/* _i: case * 2 + (0 max, 1 average) */
START_TEST(test_pool_vs_naive)
{
    static const naive_pool Q[] = {
        {3, 4, 11, 13, 3, 2, 1}, {1, 3, 9, 8, 2, 2, 0}, {2, 2, 7, 7, 5, 1, 2},
        {2, 3, 8, 9, 3, 3, 0},   {1, 2, 6, 5, 1, 1, 0},
    };
    const naive_pool *q = &Q[_i / 2];
    int avg = _i % 2, OH = naive_pool_oh(q), OW = naive_pool_ow(q);
    size_t nx = (size_t)q->N * q->C * q->H * q->W, ny = (size_t)q->N * q->C * OH * OW;
    lb_rng r;
    lb_rng_seed(&r, 1400 + (uint64_t)_i);
    float *x = malloc(nx * 4), *dy = fill_uniform(&r, malloc(ny * 4), ny, -1, 1), *y = malloc(ny * 4);
    float *dx = malloc(nx * 4);
    fill_uniform(&r, x, nx, -1, 1); /* random floats: ties are (almost surely) absent */
    if (avg) {
        naive_avgpool_forward(q, x, y);
        naive_avgpool_backward(q, dy, dx);
    } else {
        naive_maxpool_forward(q, x, y);
        naive_maxpool_backward(q, x, dy, dx);
    }
    lb_graph *g = lb_graph_new();
    lb_node *X = leaf(g, 4, q->N, q->C, q->H, q->W, x);
    lb_node *Y = avg ? lb_avgpool2d(g, X, q->k, q->s, q->p) : lb_maxpool2d(g, X, q->k, q->s, q->p);
    expect_shape(Y, 4, q->N, q->C, OH, OW);
    expect_close_arrays(avg ? "avgpool forward" : "maxpool forward", Y->val, y, ny);
    lb_node *L = lb_sum(g, lb_mul(g, lb_leaf(g, 4, Y->shape, dy, 0), Y));
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    expect_close_arrays(avg ? "avgpool dx" : "maxpool dx", X->grad, dx, nx);
    lb_graph_free(g);
    free(x), free(dy), free(y), free(dx);
}
END_TEST

/* ---------------------------------------------------------------- errors */

static void expect_error(lb_node *y, const char *a, const char *b, const char *c)
{
    ck_assert_ptr_null(y);
    const char *m = lb_last_error();
    ck_assert_msg(contains(m, a) && contains(m, b) && contains(m, c), "message '%s' lacks '%s' / '%s' / '%s'", m, a,
                  b, c);
}

START_TEST(test_shape_errors)
{
    lb_graph *g = lb_graph_new();
    lb_node *a23 = leaf(g, 2, 2, 3, 0, 0, NULL), *a45 = leaf(g, 2, 4, 5, 0, 0, NULL);
    lb_node *a32 = leaf(g, 2, 3, 2, 0, 0, NULL), *v4 = leaf(g, 1, 4, 0, 0, 0, NULL);
    lb_node *x4 = leaf(g, 4, 1, 3, 5, 5, NULL), *w4 = leaf(g, 4, 2, 2, 3, 3, NULL);
    lb_node *a234 = leaf(g, 3, 2, 3, 4, 0, NULL);
    expect_error(lb_matmul(g, a23, a45, 0, 0), "matmul", "[2, 3]", "[4, 5]");
    expect_error(lb_matmul(g, a23, a32, 1, 0), "matmul", "[2, 3]", "[3, 2]"); /* [3,2]x[3,2] */
    expect_error(lb_add(g, a23, a32), "add", "[2, 3]", "[3, 2]");
    expect_error(lb_sub(g, a23, a45), "sub", "[2, 3]", "[4, 5]");
    expect_error(lb_mul(g, x4, v4), "mul", "[1, 3, 5, 5]", "[4]"); /* bias length 4 != C 3 */
    expect_error(lb_conv2d(g, x4, w4, NULL, 1, 0), "conv2d", "[1, 3, 5, 5]", "[2, 2, 3, 3]");
    expect_error(lb_conv2d(g, a23, w4, NULL, 1, 0), "conv2d", "[2, 3]", "[2, 2, 3, 3]");
    lb_node *w7 = leaf(g, 4, 1, 3, 7, 7, NULL);
    expect_error(lb_conv2d(g, x4, w7, NULL, 1, 0), "conv2d", "[1, 3, 5, 5]", "[1, 3, 7, 7]");
    expect_error(lb_conv2d(g, x4, leaf(g, 4, 1, 3, 3, 3, NULL), v4, 1, 0), "conv2d", "[1, 3, 3, 3]", "[4]");
    expect_error(lb_softmax(g, a234), "softmax", "[2, 3, 4]", "2-D");
    expect_error(lb_log_softmax(g, v4), "log_softmax", "[4]", "2-D");
    expect_error(lb_reshape(g, a23, 2, (int[]){4, 2}), "reshape", "[2, 3]", "[4, 2]");
    expect_error(lb_maxpool2d(g, a23, 2, 2, 0), "maxpool2d", "[2, 3]", "4-D");
    expect_error(lb_avgpool2d(g, leaf(g, 4, 1, 1, 2, 2, NULL), 3, 1, 0), "avgpool2d", "[1, 1, 2, 2]", "window");
    expect_error(lb_global_avgpool(g, a23), "global_avgpool", "[2, 3]", "4-D");
    expect_error(lb_pick(g, a234, (int[]){0, 0}), "pick", "[2, 3, 4]", "2-D");
    float rm[4] = {0}, rv[4] = {1, 1, 1, 1};
    expect_error(lb_batchnorm2d(g, x4, v4, v4, rm, rv, 0.1f, 1e-5f), "batchnorm2d", "[1, 3, 5, 5]", "[4]");
    lb_node *c3 = leaf(g, 1, 3, 0, 0, 0, NULL);
    expect_error(lb_batchnorm2d_add_relu(g, x4, c3, c3, leaf(g, 4, 1, 3, 5, 4, NULL), rm, rv, 0.1f, 1e-5f),
                 "batchnorm2d_add_relu", "[1, 3, 5, 5]", "[1, 3, 5, 4]");
    expect_error(lb_batchnorm2d_relu(g, x4, v4, v4, rm, rv, 0.1f, 1e-5f), "batchnorm2d_relu", "[1, 3, 5, 5]", "[4]");
    /* argument (not shape) errors name the op and the value */
    expect_error(lb_pick(g, a23, (int[]){1, 3}), "pick", "index[1] = 3", "[0, 3)");
    expect_error(lb_dropout(g, a23, 1.0f, NULL), "dropout", "p = 1", "[0, 1)");
    expect_error(lb_maxpool2d(g, x4, 2, 1, 2), "maxpool2d", "padding 2", "window 2");
    expect_error(lb_conv2d(g, x4, leaf(g, 4, 1, 3, 3, 3, NULL), NULL, 0, 0), "conv2d", "stride", "0x0");
    expect_error(lb_dropout(g, a23, 0.5f, NULL), "dropout", "training", "RNG");
    /* batch statistics of one value per channel are undefined (unbiased variance / 0) */
    lb_node *g3 = leaf(g, 1, 3, 0, 0, 0, NULL);
    expect_error(lb_batchnorm2d(g, leaf(g, 2, 1, 3, 0, 0, NULL), g3, g3, rm, rv, 0.1f, 1e-5f), "batchnorm2d", "[1, 3]",
                 "more than one");
    lb_graph_free(g);
}
END_TEST

START_TEST(test_null_propagates)
{
    lb_graph *g = lb_graph_new();
    lb_node *a = leaf(g, 2, 2, 3, 0, 0, NULL), *x = leaf(g, 4, 1, 1, 4, 4, NULL);
    lb_node *w = leaf(g, 4, 1, 1, 3, 3, NULL), *v = leaf(g, 1, 3, 0, 0, 0, NULL);
    lb_node *bad = lb_matmul(g, a, a, 0, 0); /* [2, 3] x [2, 3] */
    ck_assert_ptr_null(bad);
    char first[1024];
    snprintf(first, sizeof first, "%s", lb_last_error());
    ck_assert(contains(first, "matmul"));
    float rm[3] = {0}, rv[3] = {1, 1, 1};
    lb_rng r;
    lb_rng_seed(&r, 1);
    lb_node *results[] = {
        lb_add(g, bad, a), lb_add(g, a, bad), lb_sub(g, bad, a), lb_mul(g, a, bad), lb_scale(g, bad, 2.0f),
        lb_matmul(g, bad, a, 0, 1), lb_matmul(g, a, bad, 0, 1), lb_relu(g, bad), lb_leaky_relu(g, bad, 0.1f),
        lb_sigmoid(g, bad), lb_tanh(g, bad), lb_exp(g, bad), lb_log(g, bad), lb_softmax(g, bad),
        lb_log_softmax(g, bad), lb_sum(g, bad), lb_mean(g, bad), lb_reshape(g, bad, 1, (int[]){6}),
        lb_flatten(g, bad), lb_pick(g, bad, (int[]){0, 0}), lb_conv2d(g, bad, w, NULL, 1, 0),
        lb_conv2d(g, x, bad, NULL, 1, 0), lb_conv2d_ex(g, bad, w, NULL, 1, 1, 0, 0, 0, 0),
        lb_maxpool2d(g, bad, 2, 2, 0), lb_avgpool2d(g, bad, 2, 2, 0), lb_global_avgpool(g, bad),
        lb_dropout(g, bad, 0.5f, &r), lb_batchnorm2d(g, bad, v, v, rm, rv, 0.1f, 1e-5f),
        lb_batchnorm2d(g, a, bad, v, rm, rv, 0.1f, 1e-5f), lb_batchnorm2d(g, a, v, bad, rm, rv, 0.1f, 1e-5f),
        lb_batchnorm2d_relu(g, bad, v, v, rm, rv, 0.1f, 1e-5f), lb_batchnorm2d_add_relu(g, a, v, v, bad, rm, rv, 0.1f, 1e-5f),
        lb_batchnorm2d_add_relu(g, bad, v, v, a, rm, rv, 0.1f, 1e-5f),
        /* nesting: the innermost failure's message survives the whole chain */
        lb_mean(g, lb_log_softmax(g, lb_add(g, lb_matmul(g, a, a, 0, 0), v))),
    };
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        ck_assert_msg(results[i] == NULL, "call %zu did not return NULL", i);
        ck_assert_str_eq(lb_last_error(), first);
    }
    lb_graph_free(g);
}
END_TEST

/* ---------------------------------------------------------------- tape state and reuse */

/* conv(3x3, pad 1) + relu + maxpool 2 + flatten + matmul + add + log_softmax + pick + mean:
 * the mean negative log-likelihood of a batch [4, 1, 8, 8] over 3 classes. */
enum { NB = 4, NCLS = 3, NF = 4 };
typedef struct {
    lb_params *P;
    int cw, cb, fw, fb;
    float x[4][NB * 64];
    int y[4][NB];
} tiny_net;

static void tiny_init(tiny_net *t)
{
    t->P = lb_params_new();
    t->cw = lb_params_add(t->P, "conv.w", 4, (int[]){NF, 1, 3, 3});
    t->cb = lb_params_add(t->P, "conv.b", 1, (int[]){NF});
    t->fw = lb_params_add(t->P, "fc.w", 2, (int[]){NF * 16, NCLS});
    t->fb = lb_params_add(t->P, "fc.b", 1, (int[]){NCLS});
    ck_assert_int_eq(t->fb, 3);
    lb_rng r;
    lb_rng_seed(&r, 42);
    for (size_t i = 0; i < t->P->size; i++) t->P->data[i] = (float)(0.3 * lb_rng_normal(&r));
    for (int b = 0; b < 4; b++) {
        fill_uniform(&r, t->x[b], NB * 64, -1, 1);
        for (int n = 0; n < NB; n++) t->y[b][n] = (int)lb_rng_below(&r, NCLS);
    }
}

static lb_node *tiny_loss(lb_graph *g, tiny_net *t, int batch)
{
    lb_node *x = lb_input(g, 4, (int[]){NB, 1, 8, 8}, t->x[batch]);
    lb_node *h = lb_conv2d(g, x, lb_param(g, t->P, t->cw), lb_param(g, t->P, t->cb), 1, 1);
    h = lb_flatten(g, lb_maxpool2d(g, lb_relu(g, h), 2, 2, 0));
    lb_node *logits = lb_add(g, lb_matmul(g, h, lb_param(g, t->P, t->fw), 0, 0), lb_param(g, t->P, t->fb));
    return lb_scale(g, lb_mean(g, lb_pick(g, lb_log_softmax(g, logits), t->y[batch])), -1.0f);
}

static void sgd(lb_params *P, float lr)
{
    for (size_t i = 0; i < P->size; i++) P->data[i] -= lr * P->grad[i];
}

START_TEST(test_backward_twice)
{
    tiny_net t;
    tiny_init(&t);
    lb_graph *g = lb_graph_new();
    lb_node *L = tiny_loss(g, &t, 0);
    ck_assert_ptr_nonnull(L);
    lb_params_zero_grad(t.P);
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    float *saved = malloc(t.P->size * sizeof(float));
    memcpy(saved, t.P->grad, t.P->size * sizeof(float));
    double norm = 0.0;
    for (size_t i = 0; i < t.P->size; i++) norm += fabs(saved[i]);
    ck_assert(norm > 0.0);
    ck_assert_int_eq(lb_backward(g, L), LB_ESTATE);
    ck_assert(contains(lb_last_error(), "backward"));
    ck_assert_mem_eq(t.P->grad, saved, t.P->size * sizeof(float));
    /* after a reset the same step runs again and (gradients zeroed) reproduces them */
    lb_graph_reset(g);
    L = tiny_loss(g, &t, 0);
    lb_params_zero_grad(t.P);
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    ck_assert_mem_eq(t.P->grad, saved, t.P->size * sizeof(float));
    /* without zeroing, a second step accumulates: exactly twice the gradient */
    lb_graph_reset(g);
    L = tiny_loss(g, &t, 0);
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    for (size_t i = 0; i < t.P->size; i++) /* not bitwise: sgemm may add into C block by block */
        ck_assert_float_eq_tol(t.P->grad[i], 2.0f * saved[i], 1e-5f * (1.0f + fabsf(saved[i])));
    /* with gradients off nothing gets a gradient buffer and backward is refused */
    lb_graph_reset(g);
    lb_graph_set_grad(g, 0);
    L = tiny_loss(g, &t, 0);
    ck_assert_ptr_nonnull(L);
    ck_assert_ptr_null(L->grad);
    ck_assert_int_eq(lb_backward(g, L), LB_ESTATE);
    free(saved);
    lb_graph_free(g);
    lb_params_free(t.P);
}
END_TEST

enum { STEPS = 1000, WARMUP = 3 };

/* 1000 SGD steps on one reused graph: after WARMUP steps nothing is allocated and the arena
 * stays the same size; the parameters match bitwise a run with a fresh graph per step. */
START_TEST(test_tape_reuse)
{
    tiny_net a, b;
    tiny_init(&a);
    tiny_init(&b);
    lb_graph *g = lb_graph_new();
    uint64_t allocs = 0;
    size_t reserved = 0;
    double first = 0.0, last = 0.0;
    for (int s = 0; s < STEPS; s++) {
        lb_graph_reset(g);
        lb_node *L = tiny_loss(g, &a, s % 4);
        ck_assert_msg(L != NULL, "%s", lb_last_error());
        lb_params_zero_grad(a.P);
        ck_assert_int_eq(lb_backward(g, L), LB_OK);
        sgd(a.P, 0.05f);
        if (s < 4) first += L->val[0];
        if (s >= STEPS - 4) last += L->val[0];
        if (s == WARMUP - 1) {
            allocs = lb_alloc_count();
            reserved = lb_graph_arena_reserved(g);
        } else if (s >= WARMUP) {
            ck_assert_msg(lb_alloc_count() == allocs, "step %d allocated", s);
            ck_assert_uint_eq(lb_graph_arena_reserved(g), reserved);
        }
    }
    ck_assert_uint_gt(reserved, 0);
    ck_assert_uint_le(lb_graph_arena_peak(g), reserved);
    ck_assert_msg(last < 0.5 * first, "training did not reduce the loss: %g -> %g", first / 4, last / 4);
    lb_graph_free(g);
    for (int s = 0; s < STEPS; s++) {
        lb_graph *fresh = lb_graph_new();
        lb_node *L = tiny_loss(fresh, &b, s % 4);
        lb_params_zero_grad(b.P);
        ck_assert_int_eq(lb_backward(fresh, L), LB_OK);
        sgd(b.P, 0.05f);
        lb_graph_free(fresh);
    }
    ck_assert_uint_eq(a.P->size, b.P->size);
    ck_assert_mem_eq(a.P->data, b.P->data, a.P->size * sizeof(float));
    lb_params_free(a.P);
    lb_params_free(b.P);
}
END_TEST

/* A step that outgrows the first arena chunk: the reset merges the chunks into one of the
 * high-water size, so the next identical step allocates nothing. */
START_TEST(test_arena_growth)
{
    lb_graph *g = lb_graph_new();
    size_t reserved = 0;
    for (int step = 0; step < 3; step++) {
        lb_graph_reset(g);
        uint64_t before = lb_alloc_count();
        /* 6 x 700 kB outgrows 1 MB, then 2 MB, then 4 MB chunks: no single old chunk holds a step */
        for (int i = 0; i < 6; i++) {
            unsigned char *p = lb_graph_alloc(g, 700000);
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_eq((uintptr_t)p % 64, 0);
            memset(p, i, 700000); /* ASan/valgrind: the whole block is usable */
        }
        float *z = lb_graph_zeros(g, 1000);
        for (int i = 0; i < 1000; i++) ck_assert_float_eq(z[i], 0.0f);
        if (step > 0) {
            ck_assert_uint_eq(lb_alloc_count(), before);
            ck_assert_uint_eq(lb_graph_arena_reserved(g), reserved);
        }
        reserved = lb_graph_arena_reserved(g);
        ck_assert_uint_ge(lb_graph_arena_peak(g), 6 * 700000);
    }
    ck_assert_uint_ge(lb_graph_arena_reserved(g), lb_graph_arena_peak(g));
    lb_graph_free(g);
}
END_TEST

START_TEST(test_params)
{
    lb_params *P = lb_params_new();
    ck_assert_int_eq(lb_params_add(P, "w", 2, (int[]){2, 3}), 0);
    ck_assert_int_eq(lb_params_add(P, "b", 1, (int[]){3}), 1);
    ck_assert_int_eq(lb_params_add(P, "bad", 2, (int[]){2, 0}), -1);
    ck_assert(contains(lb_last_error(), "bad"));
    ck_assert_uint_eq(P->size, 9);
    ck_assert_ptr_eq(lb_params_value(P, 1), P->data + 6);
    ck_assert_ptr_eq(lb_params_gradient(P, 1), P->grad + 6);
    ck_assert_ptr_null(lb_params_value(P, 2));
    for (int i = 0; i < 9; i++) ck_assert_float_eq(P->data[i], 0.0f);
    lb_graph *g = lb_graph_new();
    lb_node *w = lb_param(g, P, 0);
    expect_shape(w, 2, 2, 3, 0, 0);
    ck_assert_ptr_eq(w->val, P->data);
    ck_assert_ptr_eq(w->grad, P->grad);
    ck_assert_ptr_null(lb_param(g, P, 5));
    ck_assert(contains(lb_last_error(), "5"));
    /* y = sum(w) + sum(b): every gradient is 1; zero_grad clears them */
    lb_node *sw = lb_sum(g, w), *b = lb_param(g, P, 1), *sb = lb_sum(g, b);
    ck_assert_int_eq(lb_backward(g, lb_add(g, sw, sb)), LB_OK);
    for (int i = 0; i < 9; i++) ck_assert_float_eq(P->grad[i], 1.0f);
    lb_params_zero_grad(P);
    for (int i = 0; i < 9; i++) ck_assert_float_eq(P->grad[i], 0.0f);
    ck_assert_int_eq(lb_graph_n_nodes(g), 5);
    ck_assert_str_eq(lb_graph_node(g, 1)->op, "sum");
    ck_assert_str_eq(lb_graph_node(g, 2)->op, "param");
    ck_assert_ptr_null(lb_graph_node(g, 5));
    lb_graph_free(g);
    lb_params_free(P);
}
END_TEST

/* ---------------------------------------------------------------- RNG */

START_TEST(test_rng)
{
    lb_rng a, b, c;
    lb_rng_seed(&a, 123);
    lb_rng_seed(&b, 123);
    lb_rng_seed(&c, 124);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t va = lb_rng_next(&a);
        ck_assert_uint_eq(va, lb_rng_next(&b));
        differ += va != lb_rng_next(&c);
    }
    ck_assert_int_gt(differ, 990);
    /* a copy of the state continues the same sequence */
    lb_rng d = a;
    for (int i = 0; i < 10; i++) ck_assert_uint_eq(lb_rng_next(&a), lb_rng_next(&d));

    /* below(n) stays in [0, n) and, for small n, hits every value */
    static const uint64_t ns[] = {1, 2, 3, 7, 10, 1000, (1ULL << 63) + 12345};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int seen[10] = {0};
        for (int i = 0; i < 2000; i++) {
            uint64_t v = lb_rng_below(&a, ns[k]);
            ck_assert_uint_lt(v, ns[k]);
            if (ns[k] <= 10) seen[v] = 1;
        }
        for (uint64_t v = 0; ns[k] <= 10 && v < ns[k]; v++)
            ck_assert_msg(seen[v], "below(%llu) never gave %llu", (unsigned long long)ns[k], (unsigned long long)v);
    }
    /* uniform in [0, 1) with mean near 1/2 (sd of the mean of 10000 is 0.0029); normal
     * with mean near 0 and variance near 1 */
    double su = 0.0, sn = 0.0, sn2 = 0.0;
    for (int i = 0; i < 10000; i++) {
        double u = lb_rng_uniform(&a), z = lb_rng_normal(&a);
        ck_assert(u >= 0.0 && u < 1.0);
        su += u, sn += z, sn2 += z * z;
    }
    ck_assert_double_eq_tol(su / 10000, 0.5, 0.015);
    ck_assert_double_eq_tol(sn / 10000, 0.0, 0.05);
    ck_assert_double_eq_tol(sn2 / 10000, 1.0, 0.06);

    /* derive: same (seed, stream) => same stream; different stream or seed => different */
    lb_rng s0, s0b, s1, t0;
    lb_rng_derive(&s0, 7, 0);
    lb_rng_derive(&s0b, 7, 0);
    lb_rng_derive(&s1, 7, 1);
    lb_rng_derive(&t0, 8, 0);
    int d01 = 0, dseed = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t v = lb_rng_next(&s0);
        ck_assert_uint_eq(v, lb_rng_next(&s0b));
        d01 += v != lb_rng_next(&s1);
        dseed += v != lb_rng_next(&t0);
    }
    ck_assert_int_gt(d01, 95);
    ck_assert_int_gt(dseed, 95);
    /* a derived stream is not the plainly seeded one */
    lb_rng plain;
    lb_rng_seed(&plain, 7);
    lb_rng_derive(&s0, 7, 0);
    ck_assert_uint_ne(lb_rng_next(&s0), lb_rng_next(&plain));

    /* shuffle is a permutation and depends on the seed */
    int p[50], q[50];
    for (int i = 0; i < 50; i++) p[i] = q[i] = i;
    lb_rng_seed(&a, 9);
    lb_rng_seed(&b, 10);
    lb_rng_shuffle(&a, p, 50);
    lb_rng_shuffle(&b, q, 50);
    int seen[50] = {0}, same = 0;
    for (int i = 0; i < 50; i++) seen[p[i]]++, same += p[i] == q[i];
    for (int i = 0; i < 50; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_lt(same, 50);
}
END_TEST

/* ---------------------------------------------------------------- fused conv ops */

/* Both graphs see the same upstream gradient dy (L = sum(dy * y), so y's gradient is dy). */
typedef struct {
    lb_graph *g;
    lb_node *x, *w, *b, *y;
} conv_run;

/* {N, C, H, W, F, K, stride, pad, bias, x needs a gradient}; square kernel, same padding on
 * every side (the fused ops take lb_conv2d's arguments). */
static const int FUSED_CASES[][10] = {
    {2, 3, 9, 7, 4, 3, 1, 1, 1, 1},   /* odd H and W: the pool floors the 9x7 conv output to 4x3 */
    {1, 2, 8, 8, 3, 5, 1, 2, 1, 1},   /* batch 1, pad 2, kernel 5: im2col's shifted-row copy */
    {3, 2, 11, 10, 2, 3, 2, 0, 0, 1}, /* stride 2, pad 0, no bias; 3 images split 1 + 2 on 2 threads */
    {2, 1, 10, 9, 5, 3, 2, 2, 1, 0},  /* stride 2, pad 2; a first layer: x needs no gradient */
    {2, 4, 6, 5, 3, 1, 1, 0, 1, 1},   /* 1x1 kernel: the GEMM reads x itself (no im2col) */
    {2, 3, 9, 17, 4, 3, 1, 1, 1, 1},  /* pooled rows of 8: the 4-wide pool twice, odd conv width */
    {13, 32, 9, 10, 32, 3, 1, 1, 1, 1}, /* Winograd: 20 tiles per image, chunks of 6; pooled rows of 5 */
};
#define N_FUSED_CASES 7

/* kind 0: lb_conv2d_relu, 1: lb_conv2d_relu_maxpool2, 2: lb_relu(lb_conv2d), 3: lb_maxpool2d(lb_relu(lb_conv2d)) */
static lb_node *conv_relu_kind(lb_graph *g, int kind, lb_node *x, lb_node *w, lb_node *b, int stride, int pad)
{
    switch (kind) {
    case 0: return lb_conv2d_relu(g, x, w, b, stride, pad);
    case 1: return lb_conv2d_relu_maxpool2(g, x, w, b, stride, pad);
    case 2: return lb_relu(g, lb_conv2d(g, x, w, b, stride, pad));
    default: return lb_maxpool2d(g, lb_relu(g, lb_conv2d(g, x, w, b, stride, pad)), 2, 2, 0);
    }
}

/* Forward of one kind on a fresh graph; with dy, backward of sum(dy * y) as well. */
static void conv_run_kind(conv_run *o, const int *k, int kind, const float *x, const float *w, const float *b,
                          const float *dy)
{
    o->g = lb_graph_new();
    o->x = lb_leaf(o->g, 4, (int[]){k[0], k[1], k[2], k[3]}, x, k[9]);
    o->w = leaf(o->g, 4, k[4], k[1], k[5], k[5], w);
    o->b = k[8] ? leaf(o->g, 1, k[4], 0, 0, 0, b) : NULL;
    o->y = conv_relu_kind(o->g, kind, o->x, o->w, o->b, k[6], k[7]);
    ck_assert_msg(o->y != NULL, "%s", lb_last_error());
    if (dy) {
        lb_node *L = lb_sum(o->g, lb_mul(o->g, lb_leaf(o->g, 4, o->y->shape, dy, 0), o->y));
        ck_assert_int_eq(lb_backward(o->g, L), LB_OK);
    }
}

static void expect_bitwise(const char *what, int threads, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(!memcmp(&got[i], &want[i], sizeof(float)), "%s (%d threads): element %zu fused %.9g, unfused %.9g",
                      what, threads, i, (double)got[i], (double)want[i]);
}

/* The fused node against the composition it replaces, forward and every gradient, on 1 and 2
 * threads. Bitwise: the fused op runs the same per-image GEMMs on the same operands (the
 * masked dY it builds holds exactly the values the unfused relu/pool backward would pass
 * down, as dy * 1 or 0), and adds the bias and applies the ReLU with the same float
 * operations, so nothing is rounded differently. _i: case * 2 + (0 conv_relu, 1 + pool). */
START_TEST(test_fused_vs_unfused)
{
    const int *k = FUSED_CASES[_i / 2];
    int pool = _i % 2;
    size_t nx = (size_t)k[0] * k[1] * k[2] * k[3], nw = (size_t)k[4] * k[1] * k[5] * k[5];
    lb_rng r;
    lb_rng_seed(&r, 1500 + (uint64_t)_i);
    /* plain random values: the comparison is exact, so kinks and ties need no avoiding (a
     * window of ReLU zeros is a tie both versions break the same way, with gradient 0) */
    float *x = fill_uniform(&r, malloc(nx * 4), nx, -1, 1), *w = fill_uniform(&r, malloc(nw * 4), nw, -1, 1);
    float *b = fill_uniform(&r, malloc((size_t)k[4] * 4), (size_t)k[4], -0.5, 0.5);
    for (int threads = 1; threads <= 2; threads++) {
        lb_set_threads(threads);
        conv_run f, u;
        conv_run_kind(&f, k, pool, x, w, b, NULL); /* forward only, to size dy */
        size_t ny = f.y->size;
        lb_graph_free(f.g);
        lb_rng rd;
        lb_rng_seed(&rd, 1600 + (uint64_t)_i);
        float *dy = fill_uniform(&rd, malloc(ny * 4), ny, -1, 1);
        conv_run_kind(&f, k, pool, x, w, b, dy);
        conv_run_kind(&u, k, 2 + pool, x, w, b, dy);
        ck_assert_str_eq(f.y->op, pool ? "conv2d_relu_maxpool2" : "conv2d_relu");
        ck_assert_int_eq(f.y->ndim, 4);
        for (int d = 0; d < 4; d++) ck_assert_int_eq(f.y->shape[d], u.y->shape[d]);
        if (pool) { /* the pool floors: conv output (H + 2 pad - K) / stride + 1, halved */
            ck_assert_int_eq(f.y->shape[2], ((k[2] + 2 * k[7] - k[5]) / k[6] + 1) / 2);
            ck_assert_int_eq(f.y->shape[3], ((k[3] + 2 * k[7] - k[5]) / k[6] + 1) / 2);
        }
        expect_bitwise("forward", threads, f.y->val, u.y->val, ny);
        int positive = 0; /* some outputs pass the ReLU, or the gradients are trivially 0 */
        for (size_t i = 0; i < ny; i++) positive += f.y->val[i] > 0.0f;
        ck_assert_int_gt(positive, 0);
        if (k[9])
            expect_bitwise("dx", threads, f.x->grad, u.x->grad, nx);
        else
            ck_assert_ptr_null(f.x->grad);
        expect_bitwise("dw", threads, f.w->grad, u.w->grad, nw);
        if (k[8]) expect_bitwise("db", threads, f.b->grad, u.b->grad, (size_t)k[4]);
        lb_graph_free(f.g);
        lb_graph_free(u.g);
        free(dy);
    }
    lb_set_threads(1);
    free(x), free(w), free(b);
}
END_TEST

/* iarg: 0 stride, 1 pad, 2 pool */
static lb_node *b_conv_fused(lb_graph *g, lb_node **in, gc *c)
{
    lb_node *b = c->n_in > 2 ? in[2] : NULL;
    return conv_relu_kind(g, c->iarg[2], in[0], in[1], b, c->iarg[0], c->iarg[1]);
}

/* Whether the fused op's finite differences stay off the ReLU kink and the pool's ties: every
 * pre-activation u (naive oracle) has |u| >= m, and in each pooled 2x2 window the largest
 * relu(u) leads the others by >= m. With |x|, |w| <= 1 a step of eps in one input, weight or
 * bias moves each u by at most eps (1e-2), so a gap of m = 0.03 > 2 eps cannot close. */
static int fused_margin_ok(const naive_conv *q, const float *x, const float *w, const float *b, int pool, float m)
{
    int OH = naive_conv_oh(q), OW = naive_conv_ow(q);
    size_t ny = (size_t)q->N * q->F * OH * OW;
    float *u = malloc(ny * sizeof(float));
    naive_conv2d_forward(q, x, w, b, u);
    int ok = 1;
    for (size_t i = 0; i < ny; i++) ok &= fabsf(u[i]) >= m;
    for (int nf = 0; pool && nf < q->N * q->F; nf++)
        for (int ph = 0; ph < OH / 2; ph++)
            for (int pw = 0; pw < OW / 2; pw++) {
                float v[4];
                for (int j = 0; j < 4; j++)
                    v[j] = fmaxf(0.0f, u[((size_t)nf * OH + 2 * ph + j / 2) * OW + 2 * pw + j % 2]);
                for (int a = 0; a < 4; a++)
                    for (int c = 0; c < 4; c++)
                        if (a != c && v[a] > 0.0f && v[a] >= v[c]) ok &= v[a] - v[c] >= m;
            }
    free(u);
    return ok;
}

/* {N, C, H, W, F, K, stride, pad, bias, check x, pool} */
static const int FUSED_GRAD_CASES[][11] = {
    {2, 2, 5, 6, 3, 3, 1, 1, 1, 1, 0}, /* conv_relu, pad 1 */
    {1, 2, 7, 6, 2, 3, 2, 2, 0, 1, 0}, /* conv_relu, batch 1, stride 2, pad 2, no bias */
    {2, 2, 7, 6, 2, 3, 1, 1, 1, 1, 1}, /* + pool, odd H: the 7x6 conv output pools to 3x3 */
    {1, 1, 9, 8, 3, 3, 2, 0, 1, 0, 1}, /* + pool, stride 2, pad 0 (4x3 -> 2x1), x needs no gradient */
    {1, 32, 4, 4, 32, 3, 1, 1, 1, 1, 1}, /* + pool on the Winograd path (C, F >= 32): 4x4 -> 2x2 */
    {1, 32, 3, 3, 33, 3, 1, 0, 1, 1, 0}, /* conv_relu on the Winograd path, pad 0: 1x1, a half tile */
};

START_TEST(test_grad_fused)
{
    const int *k = FUSED_GRAD_CASES[_i];
    int wino = k[5] == 3 && k[6] == 1 && k[1] >= 32 && k[4] >= 32;
    gc c = {.tol = wino ? "conv2d_relu_winograd" : k[10] ? "conv2d_relu_maxpool2" : "conv2d_relu",
            .build = b_conv_fused,
            .iarg = {k[6], k[7], k[10]}};
    float *x = gc_input(&c, 4, k[0], k[1], k[2], k[3]), *w = gc_input(&c, 4, k[4], k[1], k[5], k[5]);
    float *b = k[8] ? gc_input(&c, 1, k[4], 0, 0, 0) : NULL;
    c.check[0] = k[9];
    naive_conv q = {k[0], k[1], k[2], k[3], k[4], k[5], k[5], k[6], k[6], k[7], k[7], k[7], k[7]};
    /* redraw until the margins hold (a few tries for these sizes; the seed fixes which) */
    lb_rng r;
    lb_rng_seed(&r, 1700 + (uint64_t)_i);
    int tries = 0;
    do {
        ck_assert_int_lt(tries++, 500);
        fill_uniform(&r, x, gc_size(&c, 0), -1, 1);
        fill_uniform(&r, w, gc_size(&c, 1), -1, 1);
        if (b) fill_uniform(&r, b, (size_t)k[4], -0.5, 0.5);
    } while (!fused_margin_ok(&q, x, w, b, k[10], 0.03f));
    gradcheck(&c);
}
END_TEST

/* ---------------------------------------------------------------- threads */

/* Every test of this TCase sets its thread count; this puts it back even after a failure. */
static void threads_back_to_one(void) { lb_set_threads(1); }

/* The analytic gradients (L = sum(r * op(x)), r as in gradcheck) of every input, concatenated. */
static float *analytic_grads(gc *c)
{
    lb_graph *g = lb_graph_new();
    lb_node *in[GC_MAX_IN];
    size_t total = 0;
    for (int i = 0; i < c->n_in; i++) {
        in[i] = lb_leaf(g, c->ndim[i], c->shape[i], c->x[i], 1);
        total += gc_size(c, i);
    }
    lb_node *y = c->build(g, in, c);
    ck_assert_msg(y != NULL, "%s", lb_last_error());
    lb_rng rr;
    lb_rng_seed(&rr, 20240611);
    float *r = fill_uniform(&rr, malloc(y->size * sizeof(float)), y->size, -1.0, 1.0);
    ck_assert_int_eq(lb_backward(g, lb_sum(g, lb_mul(g, lb_leaf(g, y->ndim, y->shape, r, 0), y))), LB_OK);
    float *out = malloc(total * sizeof(float)), *o = out;
    for (int i = 0; i < c->n_in; i++) {
        memcpy(o, in[i]->grad, gc_size(c, i) * sizeof(float));
        o += gc_size(c, i);
    }
    free(r);
    lb_graph_free(g);
    return out;
}

/* |a - b| <= rel * max(|a|, |b|, floor): the floor keeps entries that cancel to ~0 from
 * demanding more than float rounding of their terms can give. */
static void expect_rel(const char *what, const float *a, const float *b, size_t n, double rel, double floor)
{
    for (size_t i = 0; i < n; i++) {
        double scale = fmax(floor, fmax(fabs(a[i]), fabs(b[i])));
        ck_assert_msg(fabs((double)a[i] - b[i]) <= rel * scale, "%s: element %zu: %.9g vs %.9g", what, i,
                      (double)a[i], (double)b[i]);
    }
}

/* Gradient checks on 2 threads. Convolutions split over images whenever N >= 2 (conv_parts in
 * ops_conv.c: min(threads, N) parts), so small shapes take the threaded forward and backward
 * (per-part scratch, weight/bias partials summed in part order). lb__gemm (parallel.c) splits
 * only when M*N*K >= 5e5 and max(M, N) >= 16 * threads; the two matmuls are sized for that:
 *   2: [128, 64] x [64, 64]: forward and dA split by rows of C, dB by rows;
 *   3: A stored [128, 32], B stored [128, 128], both transposed: [32, 128]; forward split by
 *      columns (through the transposed-B offset), dA and dB by rows. Every GEMM: M*N*K = 524288.
 * _i: 0 conv (3 images: 1 + 2), 1 conv stride 2 no bias, 2 and 3 matmul. */
START_TEST(test_grad_threads)
{
    lb_rng r;
    lb_rng_seed(&r, 1800 + (uint64_t)_i);
    gc c = {0};
    if (_i < 2) {
        /* {N, C, H, W, F, stride, pad, bias}, 3x3 kernel */
        static const int K[2][8] = {{3, 2, 6, 5, 2, 1, 1, 1}, {2, 3, 6, 7, 3, 2, 0, 0}};
        const int *k = K[_i];
        c.tol = "conv2d", c.build = b_conv;
        c.iarg[0] = c.iarg[1] = k[5], c.iarg[2] = c.iarg[3] = c.iarg[4] = c.iarg[5] = k[6];
        float *x = gc_input(&c, 4, k[0], k[1], k[2], k[3]), *w = gc_input(&c, 4, k[4], k[1], 3, 3);
        fill_uniform(&r, x, gc_size(&c, 0), -1, 1);
        fill_uniform(&r, w, gc_size(&c, 1), -1, 1);
        if (k[7]) fill_uniform(&r, gc_input(&c, 1, k[4], 0, 0, 0), (size_t)k[4], -1, 1);
    } else {
        int t = _i == 3, M = t ? 32 : 128, K = t ? 128 : 64, N = t ? 128 : 64;
        c.tol = "matmul_mt", c.build = b_matmul, c.iarg[0] = c.iarg[1] = t, c.sample = 48;
        float *a = t ? gc_input(&c, 2, K, M, 0, 0) : gc_input(&c, 2, M, K, 0, 0);
        float *b = t ? gc_input(&c, 2, N, K, 0, 0) : gc_input(&c, 2, K, N, 0, 0);
        fill_uniform(&r, a, gc_size(&c, 0), -1, 1);
        fill_uniform(&r, b, gc_size(&c, 1), -1, 1);
    }
    /* every element on 2 threads against 1 thread (the gradient check samples the matmuls) */
    size_t total = 0;
    for (int i = 0; i < c.n_in; i++) total += gc_size(&c, i);
    lb_set_threads(1);
    float *one = analytic_grads(&c);
    lb_set_threads(2);
    float *two = analytic_grads(&c);
    expect_rel("gradient, 2 threads vs 1", two, one, total, 1e-5, 1.0);
    free(one), free(two);
    gradcheck(&c);
    lb_set_threads(1);
}
END_TEST

/* The network of the threads test: x [8, 1, 32, 32] -> conv 3x3 pad 1 + ReLU + 2x2 pool
 * (fused) -> [8, 8, 16, 16] -> conv 3x3 pad 1 -> flatten [8, 2048] -> matmul [2048, 32] + bias
 * -> log_softmax -> pick -> mean, negated; 3 steps of SGD with momentum (lb_optim). Sized
 * so that on 2 threads every parallel path runs:
 *   both convolutions, forward and backward: 8 images, 4 per thread (any N >= 2 splits);
 *   the matmul: forward [8, 2048] x [2048, 32] and both backward GEMMs have M*N*K = 524288
 *   >= 5e5 and a side >= 32 = 16 * threads: forward and dA split by columns, dW by rows;
 *   the optimizer: 66232 parameters, over its 65536 threshold (optim.c lb_optim_step). */
enum { TN = 8, TS = 32, TF = 8, TCLS = 32, TSTEPS = 3 };

static void threads_run(int threads, float *params_out, double *loss_out)
{
    lb_set_threads(threads);
    lb_params *P = lb_params_new();
    int c1w = lb_params_add(P, "c1.w", 4, (int[]){TF, 1, 3, 3}), c1b = lb_params_add(P, "c1.b", 1, (int[]){TF});
    int c2w = lb_params_add(P, "c2.w", 4, (int[]){TF, TF, 3, 3}), c2b = lb_params_add(P, "c2.b", 1, (int[]){TF});
    int fw = lb_params_add(P, "fc.w", 2, (int[]){TF * (TS / 2) * (TS / 2), TCLS});
    int fb = lb_params_add(P, "fc.b", 1, (int[]){TCLS});
    ck_assert_int_eq(fb, 5);
    ck_assert_uint_gt(P->size, 65536);
    lb_rng r;
    lb_rng_seed(&r, 4242);
    /* about He-scaled: the logits stay O(1) */
    static const double scale[6] = {0.47, 0.1, 0.17, 0.1, 0.01, 0.1};
    for (int i = 0; i < P->count; i++)
        for (size_t j = 0; j < P->info[i].size; j++)
            P->data[P->info[i].offset + j] = (float)(scale[i] * lb_rng_normal(&r));
    float *x = fill_uniform(&r, malloc(TN * TS * TS * sizeof(float)), TN * TS * TS, -1, 1);
    int y[TN];
    for (int n = 0; n < TN; n++) y[n] = (int)lb_rng_below(&r, TCLS);
    lb_optim_config cfg = lb_optim_defaults(LB_OPTIM_SGD);
    cfg.lr = 0.003f, cfg.momentum = 0.9f;
    lb_optim *o = lb_optim_new(&cfg, P->size);
    ck_assert_ptr_nonnull(o);
    lb_graph *g = lb_graph_new();
    for (int s = 0; s < TSTEPS; s++) {
        lb_graph_reset(g);
        lb_node *h = lb_input(g, 4, (int[]){TN, 1, TS, TS}, x);
        h = lb_conv2d_relu_maxpool2(g, h, lb_param(g, P, c1w), lb_param(g, P, c1b), 1, 1);
        h = lb_flatten(g, lb_conv2d(g, h, lb_param(g, P, c2w), lb_param(g, P, c2b), 1, 1));
        lb_node *logits = lb_add(g, lb_matmul(g, h, lb_param(g, P, fw), 0, 0), lb_param(g, P, fb));
        lb_node *L = lb_scale(g, lb_mean(g, lb_pick(g, lb_log_softmax(g, logits), y)), -1.0f);
        ck_assert_msg(L != NULL, "%s", lb_last_error());
        lb_params_zero_grad(P);
        ck_assert_int_eq(lb_backward(g, L), LB_OK);
        ck_assert_int_eq(lb_optim_step(o, P->data, P->grad, cfg.lr), LB_OK);
        loss_out[s] = L->val[0];
    }
    memcpy(params_out, P->data, P->size * sizeof(float));
    lb_graph_free(g);
    lb_optim_free(o);
    lb_params_free(P);
    free(x);
    lb_set_threads(1);
}

/* Same seed and thread count: bitwise the same parameters; 1 vs 2 threads: the same to
 * ~1e-5 relative (the split changes only where partial sums are rounded: the weight and
 * bias gradients of a convolution are summed per part, and a GEMM block may use other
 * kernels than the whole). */
START_TEST(test_threads_network)
{
    enum { NP = 72 + 8 + 576 + 8 + 2048 * 32 + 32 };
    float *p[4];
    double loss[4][TSTEPS];
    for (int run = 0; run < 4; run++) {
        p[run] = malloc(NP * sizeof(float));
        threads_run(1 + run / 2, p[run], loss[run]);
    }
    /* the steps train: otherwise equal parameters could mean gradients that are all zero */
    ck_assert_msg(loss[0][TSTEPS - 1] < loss[0][0] - 0.1, "loss %g -> %g", loss[0][0], loss[0][TSTEPS - 1]);
    ck_assert_mem_eq(p[0], p[1], NP * sizeof(float));
    ck_assert_mem_eq(p[2], p[3], NP * sizeof(float));
    expect_rel("parameters, 2 threads vs 1", p[2], p[0], NP, 1e-5, 1e-2);
    for (int s = 0; s < TSTEPS; s++) ck_assert_double_eq_tol(loss[2][s], loss[0][s], 1e-5 * fabs(loss[0][s]));
    for (int run = 0; run < 4; run++) free(p[run]);
}
END_TEST

/* ---------------------------------------------------------------- asymmetric padding */

/* lb_conv2d_ex against the naive oracle: forward and all three gradients, as
 * test_conv2d_vs_naive. */
static const naive_conv ASYM_CASES[] = {
    /* stride 1 with pad left + right = KW - 1, so OW == W: im2col copies each kernel tap's
     * rows as one shifted block (shifted_rows) and zeroes the wrapped columns */
    {2, 3, 7, 8, 4, 3, 3, 1, 1, 2, 0, 0, 2},  /* padding only top and right */
    {1, 2, 6, 5, 3, 5, 5, 1, 1, 0, 4, 4, 0},  /* only bottom and left, kernel 5 */
    {2, 2, 1, 6, 3, 3, 3, 1, 1, 2, 0, 1, 1},  /* H = 1 under top padding 2: kernel row 0 sees only padding */
    {1, 1, 2, 5, 2, 5, 3, 1, 1, 4, 1, 0, 2},  /* top padding 4 > OH = 3: rows 0 and 1 of the kernel see none of x */
    /* stride 1, OW != W: the row-by-row path */
    {2, 2, 5, 6, 2, 3, 3, 1, 1, 1, 2, 2, 1},
    /* stride 2 */
    {2, 3, 9, 8, 3, 3, 3, 2, 2, 0, 2, 1, 0},
    {1, 2, 5, 6, 2, 3, 2, 2, 2, 3, 0, 0, 1},  /* top padding 3 > kernel height */
    /* stride 1, OW == W corners: symmetric padding 2 of a 1-high image (as lb_conv2d(x, w,
     * 1, 2) with a 5x5 kernel), and W = 1 with left padding 4 wider than the image */
    {1, 1, 1, 5, 2, 5, 5, 1, 1, 2, 2, 2, 2},
    {2, 2, 4, 1, 2, 3, 5, 1, 1, 1, 1, 4, 0},
};
#define N_ASYM_CASES 9

START_TEST(test_conv2d_asym_vs_naive)
{
    const naive_conv *q = &ASYM_CASES[_i];
    int OH = naive_conv_oh(q), OW = naive_conv_ow(q);
    size_t nx = (size_t)q->N * q->C * q->H * q->W, nw = (size_t)q->F * q->C * q->KH * q->KW;
    size_t ny = (size_t)q->N * q->F * OH * OW;
    lb_rng r;
    lb_rng_seed(&r, 1900 + (uint64_t)_i);
    float *x = fill_uniform(&r, malloc(nx * 4), nx, -1, 1), *w = fill_uniform(&r, malloc(nw * 4), nw, -1, 1);
    float *b = fill_uniform(&r, malloc((size_t)q->F * 4), (size_t)q->F, -1, 1);
    float *dy = fill_uniform(&r, malloc(ny * 4), ny, -1, 1), *y = malloc(ny * 4);
    float *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc((size_t)q->F * 4);
    naive_conv2d_forward(q, x, w, b, y);
    naive_conv2d_backward(q, x, w, dy, dx, dw, db);
    lb_graph *g = lb_graph_new();
    lb_node *X = leaf(g, 4, q->N, q->C, q->H, q->W, x), *Wn = leaf(g, 4, q->F, q->C, q->KH, q->KW, w);
    lb_node *B = leaf(g, 1, q->F, 0, 0, 0, b);
    lb_node *Y = lb_conv2d_ex(g, X, Wn, B, q->sh, q->sw, q->pt, q->pb, q->pl, q->pr);
    ck_assert_msg(Y != NULL, "%s", lb_last_error());
    expect_shape(Y, 4, q->N, q->F, OH, OW);
    expect_close_arrays("conv2d_ex forward", Y->val, y, ny);
    lb_node *L = lb_sum(g, lb_mul(g, lb_leaf(g, 4, Y->shape, dy, 0), Y));
    ck_assert_int_eq(lb_backward(g, L), LB_OK);
    expect_close_arrays("conv2d_ex dx", X->grad, dx, nx);
    expect_close_arrays("conv2d_ex dw", Wn->grad, dw, nw);
    expect_close_arrays("conv2d_ex db", B->grad, db, (size_t)q->F);
    lb_graph_free(g);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
}
END_TEST

/* A backward that cannot get its scratch memory fails, naming the op; it used to return
 * silently, and lb_backward reported success with partial gradients. The conv's column
 * matrices for backward (2 x 295 KB) do not fit what is left of the forward pass's 1 MB arena
 * chunk, so backward's first allocation is a new chunk, and that is the one made to fail. */
START_TEST(test_backward_out_of_memory)
{
    lb_graph *g = lb_graph_new();
    int xs[4] = {2, 8, 32, 32}, ws[4] = {16, 8, 3, 3};
    lb_node *x = lb_leaf(g, 4, xs, NULL, 1), *w = lb_leaf(g, 4, ws, NULL, 1);
    lb_node *loss = lb_sum(g, lb_conv2d(g, x, w, NULL, 1, 1));
    ck_assert_ptr_nonnull(loss);
    lb_alloc_fail_at(1, 0);
    int rc = lb_backward(g, loss);
    uint64_t injected = lb_alloc_injected();
    lb_alloc_fail_at(0, 0);
    ck_assert_uint_eq(injected, 1);
    ck_assert_int_eq(rc, LB_ENOMEM);
    ck_assert_int_eq(lb_last_status(), LB_ENOMEM);
    ck_error_mentions("conv2d backward");
    ck_error_mentions("incomplete");
    /* the tape refuses a second walk: partial gradients are never completed in silence */
    ck_assert_int_eq(lb_backward(g, loss), LB_ESTATE);
    lb_graph_free(g);
}
END_TEST

/* lb_parallel's pool: every part runs exactly once per call, whatever the part count from one
 * call to the next (the pool grows, and a smaller call leaves workers idle); a part's own call
 * (the pool is busy) and calls from two threads at once each get all their parts; and a forked
 * child, which has none of the parent's workers, gets all its parts too (it would hang or
 * miss parts if it waited on the parent's pool). Expected counts are by construction. */
typedef struct {
    int hits[64];
    int nested; /* 1: each part makes a call of 3 parts of its own */
    int inner[64][3];
} parts_probe;

static void count_inner(void *p, int part, int n_parts)
{
    (void)n_parts;
    int *row = p;
    __atomic_fetch_add(&row[part], 1, __ATOMIC_RELAXED);
}

static void count_part(void *p, int part, int n_parts)
{
    parts_probe *q = p;
    (void)n_parts;
    __atomic_fetch_add(&q->hits[part], 1, __ATOMIC_RELAXED);
    if (q->nested) lb_parallel(3, count_inner, q->inner[part]);
}

static int probe_calls(int nested)
{
    static const int sizes[] = {2, 5, 3, 8, 2, 64, 7};
    for (int c = 0; c < 7; c++) {
        parts_probe q = {.nested = nested};
        lb_parallel(sizes[c], count_part, &q);
        for (int i = 0; i < 64; i++) {
            if (q.hits[i] != (i < sizes[c])) return 0;
            for (int k = 0; k < 3; k++)
                if (q.inner[i][k] != (nested && i < sizes[c])) return 0;
        }
    }
    return 1;
}

static void *probe_thread(void *ok)
{
    for (int r = 0; r < 50; r++)
        if (!probe_calls(r % 2)) *(int *)ok = 0;
    return NULL;
}

START_TEST(test_parallel_pool)
{
    ck_assert(probe_calls(0));
    ck_assert(probe_calls(1));
    int ok[2] = {1, 1};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, probe_thread, &ok[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    ck_assert(ok[0] && ok[1]);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(probe_calls(0) && probe_calls(1) ? 0 : 3);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor");
    TCase *fwd = tcase_create("forward");
    tcase_add_test(fwd, test_forward_elementwise);
    tcase_add_test(fwd, test_forward_matmul);
    tcase_add_test(fwd, test_forward_unary);
    tcase_add_test(fwd, test_forward_softmax);
    tcase_add_test(fwd, test_forward_reduce_reshape);
    tcase_add_test(fwd, test_forward_conv2d);
    tcase_add_test(fwd, test_forward_pool);
    tcase_add_test(fwd, test_forward_dropout);
    tcase_add_test(fwd, test_forward_batchnorm);
    suite_add_tcase(s, fwd);

    TCase *grad = tcase_create("gradcheck");
    tcase_set_timeout(grad, 120); /* valgrind */
    tcase_add_loop_test(grad, test_grad_binary, 0, 12);
    tcase_add_test(grad, test_grad_scale);
    tcase_add_loop_test(grad, test_grad_matmul, 0, 4);
    tcase_add_loop_test(grad, test_grad_unary, 0, 6);
    tcase_add_loop_test(grad, test_grad_softmax, 0, 2);
    tcase_add_loop_test(grad, test_grad_reduce_reshape, 0, 6);
    tcase_add_loop_test(grad, test_grad_conv2d, 0, N_CONV_CASES);
    tcase_add_loop_test(grad, test_grad_pool, 0, 2 * N_POOL_CASES);
    tcase_add_loop_test(grad, test_grad_dropout, 0, 2);
    tcase_add_loop_test(grad, test_grad_batchnorm, 0, 4);
    tcase_add_loop_test(grad, test_grad_batchnorm_relu, 0, 8);
    tcase_add_loop_test(grad, test_batchnorm_relu_is_the_composition, 0, 8);
    suite_add_tcase(s, grad);

    TCase *naive = tcase_create("naive");
    tcase_set_timeout(naive, 120);
    tcase_add_loop_test(naive, test_conv2d_vs_naive, 0, 9);
    tcase_add_loop_test(naive, test_pool_vs_naive, 0, 10);
    suite_add_tcase(s, naive);

    TCase *err = tcase_create("errors");
    tcase_add_test(err, test_shape_errors);
    tcase_add_test(err, test_null_propagates);
    tcase_add_test(err, test_backward_out_of_memory);
    suite_add_tcase(s, err);

    TCase *tape = tcase_create("tape");
    tcase_set_timeout(tape, 300);
    tcase_add_test(tape, test_backward_twice);
    tcase_add_test(tape, test_tape_reuse);
    tcase_add_test(tape, test_arena_growth);
    tcase_add_test(tape, test_params);
    tcase_add_test(tape, test_rng);
    suite_add_tcase(s, tape);

    TCase *fused = tcase_create("fused");
    tcase_set_timeout(fused, 120);
    tcase_add_checked_fixture(fused, NULL, threads_back_to_one);
    tcase_add_loop_test(fused, test_fused_vs_unfused, 0, 2 * N_FUSED_CASES);
    tcase_add_loop_test(fused, test_grad_fused, 0, 6);
    suite_add_tcase(s, fused);

    TCase *threads = tcase_create("threads");
    tcase_set_timeout(threads, 300); /* valgrind runs the threads one at a time */
    tcase_add_checked_fixture(threads, NULL, threads_back_to_one);
    tcase_add_loop_test(threads, test_grad_threads, 0, 4);
    tcase_add_test(threads, test_threads_network);
    tcase_add_test(threads, test_parallel_pool);
    suite_add_tcase(s, threads);

    TCase *asym = tcase_create("conv_asym");
    tcase_set_timeout(asym, 120);
    tcase_add_loop_test(asym, test_conv2d_asym_vs_naive, 0, N_ASYM_CASES);
    suite_add_tcase(s, asym);
    return lb_run_suite(s);
}
