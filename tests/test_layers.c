/* Layers and the sequential model: shapes, parameter counts, the summary, the forward pass
 * against PyTorch, initialisation statistics, prior bias and error messages. */
#include "check_util.h"
#include "libra/layers.h"

#include <string.h>

/* Fills parameter k with 0.3 sin(1.3 i + 0.5 k), as tests/ref/layers_ref.py does. */
static void fill_formula(lb_model *m)
{
    for (int k = 0; k < m->params->count; k++) {
        float *v = lb_params_value(m->params, k);
        for (size_t i = 0; i < m->params->info[k].size; i++) v[i] = (float)(0.3 * sin(1.3 * (double)i + 0.5 * k));
    }
}

static float X[2 * 64];
static void fill_input(void)
{
    for (int i = 0; i < 128; i++) X[i] = (float)cos(0.37 * i);
}

static lb_node *forward_tiny(lb_model *m, lb_graph *g)
{
    int shape[4] = {2, 1, 8, 8};
    lb_graph_reset(g);
    return lb_model_forward(m, g, lb_input(g, 4, shape, X));
}

static void assert_values(const float *got, const float *want, int n, double tol, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol, "%s[%d] = %.9g, torch %.9g", what, i, got[i], want[i]);
}

/* References from torch 1.13 via tests/ref/layers_ref.py (output in layers_ref.txt). */
START_TEST(test_forward_matches_torch)
{
    static const float no_bn[6] = {-6.922919303e-02f, -3.268382847e-01f, -1.168810725e-01f,
                                   -8.855618536e-02f, -1.876657009e-01f, 3.285527229e-02f};
    static const float bn_train[6] = {-1.636321098e-01f, -7.337455451e-02f, 1.509137154e-01f,
                                      -1.731747836e-01f, -7.823368907e-02f, 1.559032053e-01f};
    static const float bn1_mean[2] = {1.257997821e-03f, -1.089082449e-03f};
    static const float bn1_var[2] = {9.382857084e-01f, 9.411628842e-01f};
    static const float bn_eval[6] = {-1.927389503e-01f, -8.819577098e-02f, 1.661325693e-01f,
                                     -1.951327771e-01f, -8.941471577e-02f, 1.673842072e-01f};
    fill_input();
    lb_graph *g = lb_graph_new();

    lb_model *m = lb_model_new_arch("smallcnn:c1=2,c2=3,fc=4", 1, 8, 8, 3);
    ck_assert_ptr_nonnull(m);
    fill_formula(m);
    lb_node *y = forward_tiny(m, g);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->ndim, 2);
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[1], 3);
    assert_values(y->val, no_bn, 6, 1e-5, "logits");
    lb_model_free(m);

    m = lb_model_new_arch("smallcnn:bn,c1=2,c2=3,fc=4", 1, 8, 8, 3);
    ck_assert_ptr_nonnull(m);
    lb_rng r;
    lb_rng_seed(&r, 1);
    lb_model_init(m, LB_INIT_DEFAULT, &r); /* running stats to 0 / 1 */
    fill_formula(m);
    y = forward_tiny(m, g);
    ck_assert_ptr_nonnull(y);
    assert_values(y->val, bn_train, 6, 1e-5, "bn logits (training)");
    assert_values(m->state, bn1_mean, 2, 1e-6, "running mean");
    assert_values(m->state + 2, bn1_var, 2, 1e-6, "running var");
    lb_graph_set_training(g, 0);
    y = forward_tiny(m, g);
    ck_assert_ptr_nonnull(y);
    assert_values(y->val, bn_eval, 6, 1e-5, "bn logits (eval)");
    ck_assert_int_eq(lb_graph_training(g), 0);
    lb_model_free(m);

    /* resnet:depth=8,width=2 (identity and projection shortcuts), training mode, and a
     * layer list with leaky_relu, average pooling and a strided conv without padding */
    static const float resnet8[6] = {4.323937893e-01f, 3.603669107e-01f,  -6.394984126e-01f,
                                     4.190678000e-01f, 2.736311555e-01f,  -5.288575888e-01f};
    static const float list[6] = {-6.819263101e-02f, -2.447583824e-01f, -4.100602120e-02f,
                                  -5.743847787e-02f, -2.401401252e-01f, -4.743271321e-02f};
    const char *archs[2] = {"resnet:depth=8,width=2",
                            "conv:2,3;leaky_relu:0.1;avgpool:2;conv:3,3,s=2,p=0;relu;flatten;dense:4;relu;dense"};
    const float *want[2] = {resnet8, list};
    lb_graph_set_training(g, 1);
    for (int a = 0; a < 2; a++) {
        m = lb_model_new_arch(archs[a], 1, 8, 8, 3);
        ck_assert_msg(m != NULL, "%s", lb_last_error());
        lb_model_init(m, LB_INIT_DEFAULT, &r);
        fill_formula(m);
        y = forward_tiny(m, g);
        ck_assert_msg(y != NULL, "%s", lb_last_error());
        assert_values(y->val, want[a], 6, 2e-5, archs[a]);
        lb_model_free(m);
    }
    lb_graph_free(g);
}
END_TEST

/* Counts worked out by hand for 1x28x28 inputs and 10 classes:
 * conv 1->32 3x3: 288 + 32 = 320; conv 32->64: 18432 + 64 = 18496;
 * after two 2x2 pools 64 x 7 x 7 = 3136 features; dense 3136->128: 401408 + 128 = 401536;
 * dense 128->10: 1280 + 10 = 1290. Total 421,642. */
START_TEST(test_smallcnn_counts_and_summary)
{
    lb_model *m = lb_model_new_arch("smallcnn", 1, 28, 28, 10);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(lb_model_n_params(m), 421642);
    ck_assert_int_eq(lb_model_n_outputs(m), 10);
    ck_assert_str_eq(m->arch, "smallcnn:bn=0,dropout=0,c1=32,c2=64,fc=128");
    lb_buf sb = {0};
    lb_model_summary(m, &sb);
    const char *buf = sb.p;
    ck_assert_ptr_nonnull(strstr(buf, "conv2d_1           [N, 32, 28, 28]               320"));
    ck_assert_ptr_nonnull(strstr(buf, "maxpool2d_2        [N, 64, 7, 7]"));
    ck_assert_ptr_nonnull(strstr(buf, "flatten_1          [N, 3136]"));
    ck_assert_ptr_nonnull(strstr(buf, "dense_1            [N, 128]                  401,536"));
    ck_assert_ptr_nonnull(strstr(buf, "Total params: 421,642"));
    lb_buf_free(&sb);
    lb_model_layout(m, &sb);
    ck_assert_str_eq(sb.p, "conv2d_1.weight:32x1x3x3;conv2d_1.bias:32;conv2d_2.weight:64x32x3x3;conv2d_2.bias:64;"
                          "dense_1.weight:128x3136;dense_1.bias:128;dense_2.weight:10x128;dense_2.bias:10");
    lb_buf_free(&sb);
    lb_model_free(m);

    /* with batchnorm: no conv biases (288 + 18432), BN gamma/beta 2*(32+64) = 192,
     * running stats 192 floats; 3 channels and 32x32 inputs -> 64 x 8 x 8 = 4096 features */
    m = lb_model_new_arch("smallcnn:bn,dropout=0.5", 3, 32, 32, 4);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(lb_model_n_params(m), 3 * 32 * 9 + 32 * 64 * 9 + 192 + 4096 * 128 + 128 + 128 * 4 + 4);
    ck_assert_uint_eq(m->state_size, 192);
    ck_assert_str_eq(m->arch, "smallcnn:bn=1,dropout=0.5,c1=32,c2=64,fc=128");
    lb_model_summary(m, &sb);
    ck_assert_ptr_nonnull(strstr(sb.p, "batchnorm2d_2      [N, 64, 16, 16]"));
    ck_assert_ptr_nonnull(strstr(sb.p, "dropout_1          [N, 128]"));
    lb_buf_free(&sb);
    lb_model_free(m);

    m = lb_model_new_arch("mlp:hidden=16", 1, 4, 4, 3);
    ck_assert_uint_eq(lb_model_n_params(m), 16 * 16 + 16 + 16 * 3 + 3);
    lb_model_free(m);
    m = lb_model_new_arch("linear", 2, 3, 3, 5);
    ck_assert_uint_eq(lb_model_n_params(m), 18 * 5 + 5);
    lb_model_free(m);
}
END_TEST

START_TEST(test_build_errors)
{
    ck_assert_ptr_null(lb_model_new_arch("densenet", 1, 28, 28, 10));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "unknown architecture 'densenet'"));
    ck_assert_ptr_null(lb_model_new_arch("smallcnn:width=3", 1, 28, 28, 10));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "unknown option 'width'"));
    ck_assert_ptr_null(lb_model_new_arch("smallcnn:dropout=1.5", 1, 28, 28, 10));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "dropout='1.5'"));
    ck_assert_ptr_null(lb_model_new_arch("smallcnn:c1=x", 1, 28, 28, 10));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "c1='x'"));
    /* dense_1 would be 65536 x (65536 * 7 * 7) = 2.1e11 weights: refused by the parameter
     * cap (2^26) before anything that size is allocated, and lb_arch_check says so too */
    ck_assert_ptr_null(lb_model_new_arch("smallcnn:c2=65536,fc=65536", 1, 28, 28, 10));
    ck_assert_int_eq(lb_last_status(), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "'dense_1.weight' is 65536x3211264 = 210453397504 weights"));
    ck_assert_int_eq(lb_arch_check("smallcnn:c2=65536,fc=65536"), LB_EINVAL);
    ck_assert_int_eq(lb_arch_check("smallcnn:c1=8,c2=8,fc=16"), LB_OK);
    ck_assert_ptr_null(lb_model_new_arch("smallcnn", 1, 3, 3, 10));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "3x3"));

    lb_model *m = lb_model_new(1, 5, 5);
    ck_assert_int_eq(lb_model_add_dense(m, 4, 1), LB_ESHAPE);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "dense_1 (input [1, 5, 5])"));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "flatten"));
    ck_assert_int_eq(lb_model_add_conv2d(m, 4, 7, 1, 0, 1), LB_ESHAPE);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "kernel 7"));
    ck_assert_int_eq(lb_model_n_params(m), 0);
    ck_assert_int_eq(lb_model_add_flatten(m), LB_OK);
    ck_assert_int_eq(lb_model_add_maxpool2d(m, 2, 2), LB_ESHAPE);
    ck_assert_int_eq(lb_model_add_dense(m, 3, 0), LB_OK);
    ck_assert_int_eq(m->n_layers, 2);

    /* a wrong input shape names both shapes */
    lb_graph *g = lb_graph_new();
    float x[2 * 4 * 4] = {0};
    int shape[4] = {2, 1, 4, 4};
    ck_assert_ptr_null(lb_model_forward(m, g, lb_input(g, 4, shape, x)));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "[2, 1, 4, 4]"));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "[N, 1, 5, 5]"));
    lb_graph_free(g);
    lb_model_free(m);
}
END_TEST

/* ResNets: the parameter counts of He et al.'s CIFAR networks with projection shortcuts,
 * worked out by hand. resnet-20, W = 16, 3x32x32, 10 classes: stem conv 3*16*9 = 432 + BN 32;
 * per block of width w from c: 9cw + 9ww + 4w (two BN), stage 1: 3 x (2304 + 2304 + 64) =
 * 14016; stage 2: (4608 + 9216 + 128) + proj (512 + 64) + 2 x (9216 + 9216 + 128) = 51640;
 * stage 3: (18432 + 36864 + 256) + proj (2048 + 128) + 2 x (36864 + 36864 + 256) = 205696;
 * dense 64*10 + 10 = 650. Total 272,474. */
START_TEST(test_resnet_and_layer_lists)
{
    lb_model *m = lb_model_new_arch("resnet:depth=20", 3, 32, 32, 10);
    ck_assert_msg(m != NULL, "%s", lb_last_error());
    ck_assert_uint_eq(lb_model_n_params(m), 272474);
    ck_assert_str_eq(m->arch, "resnet:depth=20,width=16");
    /* 1 stem + 9 blocks x (2 conv) + 2 projections = 21 convs; 9 sums */
    int convs = 0, sums = 0;
    for (int i = 0; i < m->n_layers; i++) {
        convs += m->layers[i].kind == LB_LAYER_CONV2D;
        sums += m->layers[i].kind == LB_LAYER_ADD;
    }
    ck_assert_int_eq(convs, 21);
    ck_assert_int_eq(sums, 9);
    lb_buf b = {0};
    lb_model_summary(m, &b);
    ck_assert_msg(strstr(b.p, "add_4              [N, 32, 16, 16]                 0  <- batchnorm2d_9 + batchnorm2d_10"),
                  "%s", b.p); /* the first block of stage 2: its shortcut is the projection */
    lb_buf_free(&b);
    lb_model_free(m);
    ck_assert_ptr_null(lb_model_new_arch("resnet:depth=21", 3, 32, 32, 10));
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "depth=21 must be 6n+2"));

    /* a layer list: defaults spelled out in the canonical spec, which builds the same model */
    const char *spec = "conv:32,3;bn;relu;pool:2;conv:64,3;bn;relu;pool:2;gap;dense";
    m = lb_model_new_arch(spec, 1, 28, 28, 10);
    ck_assert_msg(m != NULL, "%s", lb_last_error());
    ck_assert_str_eq(m->arch, "conv:32,3,s=1,p=1,bias=0;bn;relu;pool:2,s=2;conv:64,3,s=1,p=1,bias=0;bn;relu;pool:2,s=2;"
                              "gap;dense");
    /* 288 + 64 + 18432 + 128 + 650 (hand) */
    ck_assert_uint_eq(lb_model_n_params(m), 19562);
    lb_model *again = lb_model_new_arch(m->arch, 1, 28, 28, 10);
    ck_assert_uint_eq(lb_model_n_params(again), 19562);
    ck_assert_str_eq(again->arch, m->arch);
    lb_model_free(again);
    lb_model_free(m);
    /* errors name the item, the layer and the shapes */
    struct {
        const char *spec, *want;
    } bad[] = {
        {"conv:8,3;relu;dense", "needs a flat [F] input"},
        {"conv:8,3;relu;flatten;dense:5", "the last layer has 5 outputs for 10 classes"},
        {"conv:8;relu;gap;dense", "item 1 'conv:8': 'conv:8' needs its kernel size"},
        {"conv:8,3;relu;gap;dense;dense", "'dense' without a size must be the last layer"},
        {"conv:8,3;relu;pool:64;gap;dense", "window 64 is larger than the input"},
        {"conv:8,3;swish;gap;dense", "unknown layer 'swish'"},
        {"conv:8,3,q=1;gap;dense", "unknown key 'q'"},
        {"conv:8,3;dropout;gap;dense", "'dropout' needs its probability"},
        {"conv:8,3;relu;gap", "the last layer has 8 outputs for 10 classes"},
        {"conv:8,3;relu", "the last layer's output is [C, H, W]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_ptr_null(lb_model_new_arch(bad[i].spec, 1, 28, 28, 10));
        ck_assert_msg(strstr(lb_last_error(), bad[i].want), "%s: '%s' lacks '%s'", bad[i].spec, lb_last_error(),
                      bad[i].want);
        ck_assert_ptr_nonnull(strstr(lb_last_error(), "on 1x28x28 inputs"));
    }
    /* a sum of two shapes names both */
    m = lb_model_new(1, 8, 8);
    ck_assert_int_eq(lb_model_add_conv2d(m, 4, 3, 1, 1, 1), LB_OK);
    ck_assert_int_eq(lb_model_add_conv2d(m, 4, 3, 2, 1, 1), LB_OK);
    ck_assert_int_eq(lb_model_add_sum(m, 0, 1), LB_ESHAPE);
    ck_assert_msg(strstr(lb_last_error(), "conv2d_1 [4, 8, 8] and conv2d_2 [4, 4, 4] differ"), "%s", lb_last_error());
    ck_assert_int_eq(lb_model_add_sum(m, -1, 0), LB_ESHAPE);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "the input [1, 8, 8]"));
    lb_model_free(m);
}
END_TEST

/* Sample mean and variance of every weight of `layer`. */
static void weight_stats(lb_model *m, int layer, double *mean, double *var, double *maxabs)
{
    const lb_layer *l = &m->layers[layer];
    const float *w = lb_params_value(m->params, l->w);
    size_t n = m->params->info[l->w].size;
    double s = 0, ss = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s += w[i];
        ss += (double)w[i] * w[i];
        if (fabs(w[i]) > mx) mx = fabs(w[i]);
    }
    *mean = s / n;
    *var = ss / n - *mean * *mean;
    *maxabs = mx;
}

START_TEST(test_init_statistics)
{
    /* The dense_1 layer of smallcnn has fan_in 3136, fan_out 128 and 401,408 weights:
     * sample variances are within 1% of the distribution's at this size. */
    const double fan_in = 3136, fan_out = 128;
    struct { lb_init_kind k; double var, bound; } cases[] = {
        {LB_INIT_DEFAULT, 1.0 / (3 * fan_in), 1 / sqrt(fan_in)},                 /* U(+-b): b^2/3 */
        {LB_INIT_KAIMING_UNIFORM, 2.0 / fan_in, sqrt(6 / fan_in)},
        {LB_INIT_KAIMING_NORMAL, 2.0 / fan_in, 0},
        {LB_INIT_XAVIER_UNIFORM, 2.0 / (fan_in + fan_out), sqrt(6 / (fan_in + fan_out))},
        {LB_INIT_XAVIER_NORMAL, 2.0 / (fan_in + fan_out), 0},
    };
    lb_model *m = lb_model_new_arch("smallcnn", 1, 28, 28, 10);
    int dense1 = 7; /* conv relu pool conv relu pool flatten dense */
    ck_assert_int_eq(m->layers[dense1].kind, LB_LAYER_DENSE);
    for (int c = 0; c < 5; c++) {
        lb_rng r;
        lb_rng_seed(&r, 7);
        lb_model_init(m, cases[c].k, &r);
        double mean, var, mx;
        weight_stats(m, dense1, &mean, &var, &mx);
        ck_assert_msg(fabs(var / cases[c].var - 1) < 0.01, "%s: variance %g, expected %g", lb_init_name(cases[c].k),
                      var, cases[c].var);
        ck_assert_msg(fabs(mean) < 5 * sqrt(cases[c].var / 401408), "%s: mean %g", lb_init_name(cases[c].k), mean);
        if (cases[c].bound > 0) ck_assert(mx <= cases[c].bound);
        const float *b = lb_params_value(m->params, m->layers[dense1].b);
        if (cases[c].k == LB_INIT_DEFAULT) {
            int nonzero = 0;
            for (int i = 0; i < 128; i++) {
                ck_assert(fabs(b[i]) <= 1 / sqrt(fan_in));
                nonzero += b[i] != 0.0f;
            }
            ck_assert_int_gt(nonzero, 120);
        } else {
            for (int i = 0; i < 128; i++) ck_assert(b[i] == 0.0f);
        }
    }
    /* same seed, same weights; another seed, other weights */
    lb_model *m2 = lb_model_new_arch("smallcnn", 1, 28, 28, 10);
    lb_rng r1, r2;
    lb_rng_seed(&r1, 5);
    lb_rng_seed(&r2, 5);
    lb_model_init(m, LB_INIT_DEFAULT, &r1);
    lb_model_init(m2, LB_INIT_DEFAULT, &r2);
    ck_assert(memcmp(m->params->data, m2->params->data, m->params->size * sizeof(float)) == 0);
    lb_rng_seed(&r2, 6);
    lb_model_init(m2, LB_INIT_DEFAULT, &r2);
    ck_assert(memcmp(m->params->data, m2->params->data, m->params->size * sizeof(float)) != 0);
    lb_model_free(m2);
    lb_model_free(m);

    lb_init_kind k;
    ck_assert_int_eq(lb_init_parse("kaiming_normal", &k), LB_OK);
    ck_assert_int_eq(k, LB_INIT_KAIMING_NORMAL);
    ck_assert_int_eq(lb_init_parse("pytorch", &k), LB_OK);
    ck_assert_int_eq(k, LB_INIT_DEFAULT);
    ck_assert_int_eq(lb_init_parse("orthogonal", &k), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "'orthogonal'"));
}
END_TEST

START_TEST(test_prior_bias)
{
    lb_model *m = lb_model_new_arch("mlp:hidden=4", 1, 2, 2, 2);
    int counts[2] = {900, 100};
    ck_assert_int_eq(lb_model_prior_bias(m, counts, 2, LB_PRIOR_SOFTMAX), LB_OK);
    const float *b = lb_params_value(m->params, m->layers[m->n_layers - 1].b);
    ck_assert_close(b[0], log(0.9), 1e-6);
    ck_assert_close(b[1], log(0.1), 1e-6);
    /* Lin et al.: b = -log((1 - pi)/pi); pi = 0.1 -> -log 9 = -2.1972246 */
    ck_assert_int_eq(lb_model_prior_bias(m, counts, 2, LB_PRIOR_SIGMOID), LB_OK);
    ck_assert_close(b[1], -2.1972246, 1e-6);
    ck_assert_close(b[0], 2.1972246, 1e-6);
    int bad[2] = {10, 0};
    ck_assert_int_eq(lb_model_prior_bias(m, bad, 2, LB_PRIOR_SOFTMAX), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "class 1"));
    ck_assert_int_eq(lb_model_prior_bias(m, counts, 1, LB_PRIOR_SOFTMAX), LB_EINVAL);
    lb_model_free(m);
}
END_TEST

/* Scalar test loss: sum(logits * R) for a fixed R, so d loss / d logits = R. */
static double loss_value(lb_model *m, lb_graph *g, const float *R, int grad)
{
    lb_node *y = forward_tiny(m, g);
    ck_assert_ptr_nonnull(y);
    int shape[2] = {2, 3};
    lb_node *loss = lb_sum(g, lb_mul(g, y, lb_leaf(g, 2, shape, R, 0)));
    ck_assert_ptr_nonnull(loss);
    if (grad) {
        lb_params_zero_grad(m->params);
        ck_assert_int_eq(lb_backward(g, loss), LB_OK);
    }
    return loss->val[0];
}

/* The model's wiring of gradients into the flat buffer, against central differences in
 * every parameter tensor (eval mode, so batchnorm's statistics do not move). */
START_TEST(test_model_gradients)
{
    fill_input();
    const float R[6] = {0.3f, -1.0f, 0.5f, 0.8f, 0.1f, -0.4f};
    /* the residual blocks of resnet:depth=8 (identity and projection shortcuts) as a whole,
     * and a layer list with leaky_relu, average pooling and a strided conv */
    const char *archs[] = {"smallcnn:c1=2,c2=3,fc=4", "smallcnn:bn,c1=2,c2=3,fc=4", "resnet:depth=8,width=2",
                           "conv:2,3;leaky_relu:0.1;avgpool:2;conv:3,3,s=2,p=0;relu;flatten;dense:4;relu;dense"};
    for (int a = 0; a < 4; a++) {
        lb_model *m = lb_model_new_arch(archs[a], 1, 8, 8, 3);
        lb_rng r;
        lb_rng_seed(&r, 3);
        lb_model_init(m, LB_INIT_KAIMING_UNIFORM, &r);
        /* nonzero biases and BN statistics so every term matters */
        for (int k = 0; k < m->params->count; k++)
            if (m->params->info[k].ndim == 1) {
                float *v = lb_params_value(m->params, k);
                for (size_t i = 0; i < m->params->info[k].size; i++) v[i] += 0.1f * (float)((i % 3) + 1);
            }
        for (size_t i = 0; i < m->state_size; i++) m->state[i] = 0.5f + 0.1f * (float)(i % 4);
        lb_graph *g = lb_graph_new();
        lb_graph_set_training(g, 0);
        loss_value(m, g, R, 1);
        for (int k = 0; k < m->params->count; k++) {
            float *v = lb_params_value(m->params, k);
            const float *gr = lb_params_gradient(m->params, k);
            size_t n = m->params->info[k].size;
            for (size_t i = 0; i < n; i += n / 3 + 1) {
                float keep = v[i];
                const float h = 1e-3f;
                v[i] = keep + h;
                double up = loss_value(m, g, R, 0);
                v[i] = keep - h;
                double down = loss_value(m, g, R, 0);
                v[i] = keep;
                double num = (up - down) / (2 * h);
                ck_assert_msg(fabs(num - gr[i]) <= 2e-3 + 2e-2 * fabs(num), "%s: %s[%zu] analytic %g numeric %g",
                              archs[a], m->params->info[k].name, i, gr[i], num);
            }
        }
        lb_graph_free(g);
        lb_model_free(m);
    }
}
END_TEST

START_TEST(test_dropout_modes)
{
    fill_input();
    lb_model *a = lb_model_new_arch("smallcnn:c1=2,c2=3,fc=16,dropout=0.5", 1, 8, 8, 3);
    lb_model *b = lb_model_new_arch("smallcnn:c1=2,c2=3,fc=16", 1, 8, 8, 3);
    fill_formula(a);
    fill_formula(b);
    lb_graph *g = lb_graph_new();
    float ref[6], out[6];
    memcpy(ref, forward_tiny(b, g)->val, sizeof ref);
    /* evaluation: dropout is the identity and draws nothing */
    lb_graph_set_training(g, 0);
    lb_rng before = a->rng;
    memcpy(out, forward_tiny(a, g)->val, sizeof out);
    ck_assert(memcmp(out, ref, sizeof ref) == 0);
    ck_assert(memcmp(&before, &a->rng, sizeof before) == 0);
    /* training: a different output, and the RNG moved */
    lb_graph_set_training(g, 1);
    memcpy(out, forward_tiny(a, g)->val, sizeof out);
    ck_assert(memcmp(out, ref, sizeof ref) != 0);
    ck_assert(memcmp(&before, &a->rng, sizeof before) != 0);
    lb_graph_free(g);
    lb_model_free(a);
    lb_model_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_forward_matches_torch);
    tcase_add_test(tc, test_smallcnn_counts_and_summary);
    tcase_add_test(tc, test_build_errors);
    tcase_add_test(tc, test_resnet_and_layer_lists);
    tcase_add_test(tc, test_init_statistics);
    tcase_add_test(tc, test_prior_bias);
    tcase_add_test(tc, test_model_gradients);
    tcase_add_test(tc, test_dropout_modes);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
