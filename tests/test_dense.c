/* The pieces of a dense task: per-location losses divided by the foreground count, the
 * prior bias of a convolutional head, and average precision over locations and images.
 * The hand-worked fixtures are worked out in the comments; the AP constants were computed
 * once with Debian's python3-sklearn (sklearn.metrics.average_precision_score), never at
 * test time. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check_util.h"
#include "dense_fixture.h"
#include "libra/data.h"
#include "libra/layers.h"
#include "libra/losses.h"
#include "libra/metrics.h"
#include "libra/optim.h"

/* ---- the normaliser, by hand: every logit 0, so each location's term is known ---- */

static double dense_loss(const char *spec, int C, const float *z, const int *t, int N, int K, int H, int W,
                         float *d, long *fg)
{
    lb_loss *L = lb_loss_new(spec, C, NULL);
    ck_assert_msg(L != NULL, "%s: %s", spec, lb_last_error());
    double loss = NAN;
    ck_assert_int_eq(lb_loss_eval_dense(L, z, N, K, H, W, t, d, &loss, fg, 0, 0), LB_OK);
    lb_loss_free(L);
    return loss;
}

START_TEST(test_normaliser_by_hand)
{
    const float z[4] = {0, 0, 0, 0};
    float d[4];
    long fg = -1;
    /* bce, two classes (background target 2), two locations at z = 0: each class's term is
     * ln 2, its gradient sigmoid(0) - [c == t]; layout [N, K, H, W]: d[k * HW + hw] */
    const int one_fg[2] = {0, 2}, two_fg[2] = {0, 1}, none[2] = {2, 2};
    ck_assert_close(dense_loss("bce", 2, z, one_fg, 1, 2, 1, 2, d, &fg), 4 * log(2.0), 1e-12);
    ck_assert_int_eq(fg, 1);
    ck_assert_close(d[0], -0.5, 1e-7);
    ck_assert_close(d[1], 0.5, 1e-7);
    ck_assert_close(d[2], 0.5, 1e-7);
    ck_assert_close(d[3], 0.5, 1e-7);
    ck_assert_close(dense_loss("bce", 2, z, two_fg, 1, 2, 1, 2, d, &fg), 4 * log(2.0) / 2, 1e-12);
    ck_assert_int_eq(fg, 2);
    ck_assert_close(d[0], -0.25, 1e-7);
    ck_assert_close(d[3], -0.25, 1e-7);
    ck_assert_close(d[1], 0.25, 1e-7);
    /* no foreground location: divided by 1 (Detectron's max(1, n_fg)), not by 0 */
    ck_assert_close(dense_loss("bce", 2, z, none, 1, 2, 1, 2, d, &fg), 4 * log(2.0), 1e-12);
    ck_assert_int_eq(fg, 0);
    /* sigmoid_focal gamma = 2, alpha = 0.25 at p = 0.5: a positive term 0.25 * 0.5^2 ln 2, a
     * negative one 0.75 * 0.5^2 ln 2; one positive, three negatives, one foreground location */
    ck_assert_close(dense_loss("sigmoid_focal:gamma=2,alpha=0.25", 2, z, one_fg, 1, 2, 1, 2, d, &fg),
                    (0.25 + 3 * 0.75) * 0.25 * log(2.0), 1e-12);
    /* ce with a background class: softmax over 2 outputs, [1, 2, 1, 2]; each location ln 2 */
    const int ce_t[2] = {0, 1};
    ck_assert_close(dense_loss("ce", 2, z, ce_t, 1, 2, 1, 2, d, &fg), 2 * log(2.0), 1e-12);
    ck_assert_int_eq(fg, 1);
    /* layout [N, K, H, W]: d[k * HW + hw]; location 0 is class 0: (p - onehot) = (-0.5, 0.5) */
    ck_assert_close(d[0], -0.5, 1e-7);
    ck_assert_close(d[2], 0.5, 1e-7);
    ck_assert_close(d[1], 0.5, 1e-7);
    ck_assert_close(d[3], -0.5, 1e-7);
}
END_TEST

/* ---- finite differences of the normalised loss, in double ---- */

static void fd_dense(const char *spec, int C, const int *counts, int K)
{
    enum { N = 2, H = 2, W = 3 };
    float z[N * 4 * H * W], d[N * 4 * H * W];
    int t[N * H * W];
    lb_rng r;
    lb_rng_seed(&r, 11);
    for (int i = 0; i < N * K * H * W; i++) z[i] = (float)(4.0 * lb_rng_uniform(&r) - 2.0);
    for (int i = 0; i < N * H * W; i++) t[i] = (int)(lb_rng_next(&r) % (uint64_t)(C + 1)); /* C: background */
    lb_loss *L = lb_loss_new(spec, K, counts);
    ck_assert_msg(L != NULL, "%s: %s", spec, lb_last_error());
    int bg = lb_loss_dense_background(L);
    ck_assert_int_eq(bg, C);
    double f0, fp, fm;
    ck_assert_int_eq(lb_loss_eval_dense(L, z, N, K, H, W, t, d, &f0, NULL, 0, 0), LB_OK);
    for (int k = 0; k < N * K * H * W; k++) {
        float orig = z[k];
        z[k] = orig + 1e-3f;
        double zp = z[k];
        ck_assert_int_eq(lb_loss_eval_dense(L, z, N, K, H, W, t, NULL, &fp, NULL, 0, 0), LB_OK);
        z[k] = orig - 1e-3f;
        double zm = z[k];
        ck_assert_int_eq(lb_loss_eval_dense(L, z, N, K, H, W, t, NULL, &fm, NULL, 0, 0), LB_OK);
        z[k] = orig;
        double fd = (fp - fm) / (zp - zm);
        ck_assert_msg(fabs(fd - d[k]) <= 2e-4 * fmax(1.0, fabs(d[k])), "%s: dlogit %d analytic %.9g, finite "
                      "difference %.9g", spec, k, d[k], fd);
    }
    lb_loss_free(L);
}

START_TEST(test_finite_differences)
{
    const int counts[4] = {30, 10, 5, 100};
    fd_dense("bce", 3, NULL, 3);
    fd_dense("bce:pos_weight=2", 3, NULL, 3);
    fd_dense("bce:alpha=0.75", 3, NULL, 3);
    fd_dense("sigmoid_focal:gamma=2,alpha=0.25", 3, NULL, 3);
    fd_dense("sigmoid_focal:gamma=0.5,alpha=0.9", 3, NULL, 3);
    fd_dense("cb_focal", 3, counts, 3);
    fd_dense("ce", 3, NULL, 4);
    fd_dense("focal:gamma=2", 3, NULL, 4);
    fd_dense("wce:weights=inverse", 3, counts, 4);
}
END_TEST

/* ---- the tape node gives eval's value and gradient ---- */

START_TEST(test_node_matches_eval)
{
    enum { N = 2, K = 3, H = 2, W = 2 };
    float z[N * K * H * W], d[N * K * H * W];
    const int t[N * H * W] = {3, 0, 3, 3, 3, 3, 2, 1};
    for (int i = 0; i < N * K * H * W; i++) z[i] = (float)((i * 37 % 11) - 5) / 3.0f;
    lb_loss *L = lb_loss_new("sigmoid_focal:gamma=2,alpha=0.25", K, NULL);
    ck_assert_ptr_nonnull(L);
    double ref;
    long fg;
    ck_assert_int_eq(lb_loss_eval_dense(L, z, N, K, H, W, t, d, &ref, &fg, 0, 0), LB_OK);
    ck_assert_int_eq(fg, 3);
    lb_graph *g = lb_graph_new();
    int shape[4] = {N, K, H, W};
    lb_node *x = lb_leaf(g, 4, shape, z, 1);
    lb_node *loss = lb_loss_forward_dense(L, g, x, t, 0, 0, NULL);
    ck_assert_msg(loss != NULL, "%s", lb_last_error());
    ck_assert_float_eq(loss->val[0], (float)ref);
    ck_assert_int_eq(lb_backward(g, loss), LB_OK);
    for (int i = 0; i < N * K * H * W; i++) ck_assert_float_eq(x->grad[i], d[i]);
    lb_graph_free(g);
    lb_loss_free(L);
}
END_TEST

START_TEST(test_errors_name_the_fault)
{
    float z[8] = {0};
    const int t[4] = {0, 1, 2, 0}, bad[4] = {0, 1, 4, 0};
    lb_loss *L = lb_loss_new("bce", 2, NULL);
    double loss;
    /* a one-vs-all loss over 2 classes: the background target is 2, so 4 is out of range */
    ck_assert_err(lb_loss_eval_dense(L, z, 1, 2, 2, 2, bad, NULL, &loss, NULL, 0, 0), LB_EINVAL,
                  "target 4 at image 0, location (1, 0)");
    ck_assert_err(lb_loss_eval_dense(L, z, 1, 3, 2, 1, t, NULL, &loss, NULL, 0, 0), LB_ESHAPE,
                  "[1, 3, 2, 1], expected [N, 2, H, W]");
    lb_graph *g = lb_graph_new();
    int flat[2] = {4, 2};
    lb_node *x = lb_leaf(g, 2, flat, z, 1);
    ck_assert_ptr_null(lb_loss_forward_dense(L, g, x, t, 0, 0, NULL));
    ck_assert_msg(strstr(lb_last_error(), "[4, 2]") && strstr(lb_last_error(), "[N, 2, H, W]"), "%s",
                  lb_last_error());
    lb_graph_free(g);
    lb_loss_free(L);
    L = lb_loss_new("ce:reduction=sum", 3, NULL);
    ck_assert_err(lb_loss_eval_dense(L, z, 1, 3, 1, 2, t, NULL, &loss, NULL, 0, 0), LB_EINVAL, "reduction=sum");
    lb_loss_free(L);
}
END_TEST

/* ---- the prior bias of a convolutional head ---- */

START_TEST(test_prior_bias)
{
    lb_model *m = lb_model_new(1, 8, 8);
    ck_assert_int_eq(lb_model_add_conv2d(m, 4, 3, 1, 1, 1), LB_OK);
    ck_assert_int_eq(lb_model_add_relu(m), LB_OK);
    ck_assert_int_eq(lb_model_add_conv2d(m, 3, 1, 1, 0, 1), LB_OK);
    lb_rng r;
    lb_rng_seed(&r, 1);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    const float *b = lb_params_value(m->params, m->layers[2].b);
    /* sigmoid: -log(0.99 / 0.01) = -log 99 = -4.59511985... for each of the 3 classes */
    ck_assert_int_eq(lb_model_prior_bias_dense(m, 0.01, LB_PRIOR_SIGMOID), LB_OK);
    for (int c = 0; c < 3; c++) ck_assert_close(b[c], -4.59511985013459, 1e-6);
    /* softmax over 2 classes + background: log 0.01 = -4.60517018..., log 0.98 = -0.02020270... */
    ck_assert_int_eq(lb_model_prior_bias_dense(m, 0.01, LB_PRIOR_SOFTMAX), LB_OK);
    ck_assert_close(b[0], -4.60517018598809, 1e-6);
    ck_assert_close(b[1], -4.60517018598809, 1e-6);
    ck_assert_close(b[2], -0.0202027073175195, 1e-6);
    ck_assert_err(lb_model_prior_bias_dense(m, 0.6, LB_PRIOR_SOFTMAX), LB_EINVAL, "classes * prior < 1");
    ck_assert_err(lb_model_prior_bias_dense(m, 0, LB_PRIOR_SIGMOID), LB_EINVAL, "prior=0");
    lb_model_free(m);
    m = lb_model_new(1, 4, 4);
    ck_assert_int_eq(lb_model_add_flatten(m), LB_OK);
    ck_assert_int_eq(lb_model_add_dense(m, 2, 1), LB_OK);
    ck_assert_err(lb_model_prior_bias_dense(m, 0.01, LB_PRIOR_SIGMOID), LB_EINVAL, "end in a convolution");
    lb_model_free(m);
}
END_TEST

/* ---- AP over locations and images, against scikit-learn ---- */

START_TEST(test_average_precision_vs_sklearn)
{
    /* scores [4, 3, 2, 3] rounded to one decimal (ties on purpose), targets [4, 2, 3], C = 2
     * (2 = background); the third plane is the softmax background's and is never ranked. The
     * targets were picked so that scoring an image by anything but its maximum (its first
     * location, its mean) gives another image AP. */
    static const float s[72] = {
        0.1f, 0.8f, 0.4f, 0.7f, 1.0f, 0.5f, 0.5f, 0.1f, 0.3f, 0.5f, 0.7f, 0.8f, 0.4f, 0.1f, 0.3f, 0.9f, 0.2f, 0.5f,
        0.9f, 0.0f, 0.6f, 1.0f, 0.2f, 0.5f, 0.9f, 0.1f, 0.5f, 0.8f, 0.7f, 0.5f, 0.2f, 0.5f, 0.4f, 0.5f, 0.4f, 0.8f,
        0.8f, 0.3f, 0.6f, 0.3f, 0.5f, 0.4f, 0.7f, 0.4f, 0.5f, 0.7f, 0.4f, 0.9f, 0.2f, 0.7f, 0.4f, 0.4f, 0.6f, 0.5f,
        0.4f, 0.0f, 0.1f, 0.7f, 0.5f, 0.7f, 1.0f, 0.7f, 0.1f, 0.3f, 0.6f, 0.2f, 1.0f, 0.9f, 0.8f, 0.5f, 0.8f, 0.1f};
    static const int t[24] = {0, 2, 2, 2, 2, 1, 2, 2, 2, 1, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0};
    double loc[2], img[2];
    lb_dense_ap r;
    ck_assert_int_eq(lb_dense_average_precision(s, t, 4, 3, 2, 3, 2, loc, img, &r), LB_OK);
    /* average_precision_score((t == c).ravel(), s[:, c].ravel()) and, per image, of the max */
    ck_assert_close(loc[0], 0.10795454545454546, 1e-12);
    ck_assert_close(loc[1], 0.32916666666666666, 1e-12);
    ck_assert_close(img[0], 0.5, 1e-12);
    ck_assert_close(img[1], 0.6944444444444444, 1e-12);
    ck_assert_close(r.mean_ap, (0.10795454545454546 + 0.32916666666666666) / 2, 1e-12);
    ck_assert_close(r.image_mean_ap, (0.5 + 0.6944444444444444) / 2, 1e-12);
    ck_assert_int_eq(r.n_used, 2);
    ck_assert_int_eq(r.n_used_image, 2);
    /* a class without any positive is NaN and left out of the mean */
    int no1[24];
    for (int i = 0; i < 24; i++) no1[i] = t[i] == 1 ? 2 : t[i];
    ck_assert_int_eq(lb_dense_average_precision(s, no1, 4, 3, 2, 3, 2, loc, img, &r), LB_OK);
    ck_assert(isnan(loc[1]) && isnan(img[1]));
    ck_assert_int_eq(r.n_used, 1);
    ck_assert_close(r.mean_ap, loc[0], 1e-15);
    static const int bad[24] = {3};
    ck_assert_err(lb_dense_average_precision(s, bad, 4, 3, 2, 3, 2, loc, img, &r), LB_EINVAL, "target 3 at image 0");
}
END_TEST

/* ---- the generator ---- */

START_TEST(test_spec)
{
    lb_dense_spec d;
    ck_assert_int_eq(lb_dense_spec_parse(&d, "dense:idx:a,b,c,d,canvas=96x64,objects=1-2,scale=0.25-0.5,stride=16"),
                     LB_OK);
    ck_assert_str_eq(d.source, "idx:a,b,c,d");
    ck_assert_int_eq(d.canvas_h, 96);
    ck_assert_int_eq(d.canvas_w, 64);
    ck_assert_int_eq(d.obj_min, 1);
    ck_assert_int_eq(d.obj_max, 2);
    ck_assert_close(d.scale_min, 0.25, 0);
    ck_assert_int_eq(d.stride, 16);
    lb_dense_spec_free(&d);
    ck_assert_int_eq(lb_dense_spec_parse(&d, "dense:fmnist"), LB_OK);
    ck_assert(d.canvas_h == 64 && d.obj_min == 0 && d.obj_max == 3 && d.stride == 8 && d.scale_max == 1.0);
    lb_dense_spec_free(&d);
    ck_assert_err(lb_dense_spec_parse(&d, "dense:fmnist,canvas=60"), LB_EINVAL, "not a multiple of stride=8");
    ck_assert_err(lb_dense_spec_parse(&d, "dense:canvas=64"), LB_EINVAL, "names no source");
    ck_assert_err(lb_dense_spec_parse(&d, "dense:fmnist,objects=3-1"), LB_EINVAL, "objects=3-1");
    ck_assert_err(lb_dense_spec_parse(&d, "dense:fmnist,stride=0"), LB_EINVAL, "stride=0");
    ck_assert_err(lb_dense_spec_parse(&d, "dense:fmnist,canvas=16,objects=0-5"), LB_EINVAL, "do not fit 4 cells");
    ck_assert_err(lb_dense_spec_parse(&d, "fmnist"), LB_EINVAL, "not a dense spec");
}
END_TEST

/* A source of 24 images 1 x 8 x 8, image j all of value 100 + j (above any background, which
 * is at most 48 + 24 + 8 = 80), of class j % 4. */
static lb_dataset *constant_source(void)
{
    lb_dataset *ds = lb_calloc(1, sizeof *ds);
    ds->n = 24, ds->c = 1, ds->h = 8, ds->w = 8, ds->n_classes = 4;
    ds->pixels = lb_malloc(24 * 64);
    ds->labels = lb_malloc(24 * sizeof(int));
    for (int j = 0; j < 24; j++) {
        memset(ds->pixels + j * 64, 100 + j, 64);
        ds->labels[j] = j % 4;
    }
    return ds;
}

static void free_source(lb_dataset *ds)
{
    lb_free(ds->pixels);
    lb_free(ds->labels);
    lb_free(ds);
}

START_TEST(test_generator_counts_and_cells)
{
    lb_dataset *src = constant_source();
    lb_dense_spec sp;
    ck_assert_int_eq(lb_dense_spec_parse(&sp, "dense:x,canvas=32,objects=0-3,scale=0.5-1,stride=8"), LB_OK);
    lb_dense_set d;
    ck_assert_int_eq(lb_dense_make(&sp, src, NULL, 0, 200, 5, &d), LB_OK);
    ck_assert(d.grid_h == 4 && d.grid_w == 4 && d.n_classes == 4);
    long fg = 0, placed = 0;
    for (int i = 0; i < 200 * 16; i++) fg += d.targets[i] != 4;
    for (int i = 0; i < 200; i++) {
        ck_assert(d.objects[i] >= 0 && d.objects[i] <= 3);
        placed += d.objects[i];
    }
    /* every placed object is one foreground cell, of its class, and nothing else is */
    ck_assert_int_eq(fg, d.n_objects);
    ck_assert_int_eq(placed, d.n_objects);
    ck_assert_int_eq(d.n_foreground, fg);
    for (long j = 0; j < d.n_objects; j++) ck_assert_int_eq(d.targets[d.object_cell[j]], d.object_class[j]);
    ck_assert_close(d.foreground_share, (double)fg / (200 * 16), 1e-15);
    /* 0-3 objects uniform: about 1.5 a canvas (300 in all) */
    ck_assert(d.n_objects + d.n_dropped > 220 && d.n_objects + d.n_dropped < 380);
    lb_dense_set_free(&d);
    lb_dense_spec_free(&sp);
    free_source(src);
}
END_TEST

START_TEST(test_generator_deterministic_and_from_its_pool)
{
    lb_dataset *src = constant_source();
    lb_dense_spec sp;
    ck_assert_int_eq(lb_dense_spec_parse(&sp, "dense:x,canvas=32,objects=1-3,stride=4"), LB_OK);
    const int pool[6] = {1, 5, 9, 13, 17, 21}; /* the "test images": class 1 only */
    lb_dense_set a, b, c;
    ck_assert_int_eq(lb_dense_make(&sp, src, pool, 6, 50, 9, &a), LB_OK);
    ck_assert_int_eq(lb_dense_make(&sp, src, pool, 6, 50, 9, &b), LB_OK);
    ck_assert_int_eq(lb_dense_make(&sp, src, pool, 6, 50, 10, &c), LB_OK);
    size_t npx = (size_t)50 * 32 * 32;
    ck_assert(memcmp(a.pixels, b.pixels, npx) == 0);
    ck_assert(memcmp(a.targets, b.targets, 50 * 64 * sizeof(int)) == 0);
    ck_assert(memcmp(a.pixels, c.pixels, npx) != 0);
    for (long j = 0; j < a.n_objects; j++) {
        int s = a.object_source[j];
        ck_assert_msg(s % 4 == 1, "object %ld comes from image %d, outside the pool", j, s);
        ck_assert_int_eq(a.object_class[j], 1);
    }
    /* every pixel above the background's range is an object pixel of a pool image */
    for (size_t i = 0; i < npx; i++)
        if (a.pixels[i] > 80) ck_assert_msg((a.pixels[i] - 100) % 4 == 1, "pixel %zu = %d", i, a.pixels[i]);
    lb_dense_set_free(&a);
    lb_dense_set_free(&b);
    lb_dense_set_free(&c);
    lb_dense_spec_free(&sp);
    free_source(src);
}
END_TEST

START_TEST(test_generator_reaches_one_in_a_thousand)
{
    lb_dataset *src = constant_source();
    lb_dense_spec sp;
    ck_assert_int_eq(lb_dense_spec_parse(&sp, "dense:x,canvas=256,objects=0-3,stride=4"), LB_OK);
    lb_dense_set d;
    ck_assert_int_eq(lb_dense_make(&sp, src, NULL, 0, 40, 3, &d), LB_OK);
    /* about 1.5 objects in 64 x 64 = 4,096 cells: 1 in 2,700 */
    ck_assert_msg(d.foreground_share > 0 && d.foreground_share < 1e-3, "share %g", d.foreground_share);
    lb_dense_set_free(&d);
    lb_dense_spec_free(&sp);
    ck_assert_int_eq(lb_dense_spec_parse(&sp, "dense:x,canvas=8,scale=2,objects=0-1"), LB_OK);
    ck_assert_err(lb_dense_make(&sp, src, NULL, 0, 1, 3, &d), LB_EINVAL, "do not fit a 8x8 canvas");
    lb_dense_spec_free(&sp);
    free_source(src);
}
END_TEST

/* ---- the pieces together: a fully convolutional model learns a dense task ---- */

START_TEST(test_fcn_shapes_and_errors)
{
    lb_model *m = lb_model_new_fcn("conv:8,3;relu;pool:2;conv:8,3;relu;pool:2", 1, 32, 32, 5, 4, 3);
    ck_assert_msg(m != NULL, "%s", lb_last_error());
    const lb_layer *head = &m->layers[m->n_layers - 1];
    ck_assert(head->kind == LB_LAYER_CONV2D && head->out_shape[0] == 5 && head->out_shape[1] == 8 &&
              head->out_shape[2] == 8 && head->b >= 0);
    ck_assert_str_eq(m->arch, "conv:8,3,s=1,p=1,bias=1;relu;pool:2,s=2;conv:8,3,s=1,p=1,bias=1;relu;pool:2,s=2;head:5,3");
    lb_model_free(m);
    ck_assert_ptr_null(lb_model_new_fcn("conv:8,3;relu;pool:2", 1, 32, 32, 5, 4, 3));
    ck_error_mentions("ends in [8, 16, 16]; stride 4 on 32x32 inputs needs a 8x8 grid");
    /* He et al.'s CIFAR ResNet as the trunk: three stages, strides 1, 2, 2, so a grid at stride 4 */
    m = lb_model_new_fcn("resnet:depth=8,width=4", 1, 32, 32, 5, 4, 3);
    ck_assert_msg(m != NULL, "%s", lb_last_error());
    head = &m->layers[m->n_layers - 1];
    ck_assert(head->kind == LB_LAYER_CONV2D && head->out_shape[0] == 5 && head->out_shape[1] == 8 &&
              head->out_shape[2] == 8 && head->b >= 0);
    ck_assert_int_eq(m->layers[m->n_layers - 2].out_shape[0], 16); /* 4W channels before the head */
    ck_assert_str_eq(m->arch, "resnet:depth=8,width=4;head:5,3");
    lb_model_free(m);
    ck_assert_ptr_null(lb_model_new_fcn("resnet:depth=8", 1, 32, 32, 5, 8, 3));
    ck_error_mentions("stride 8 on 32x32 inputs needs a 4x4 grid");
    ck_assert_ptr_null(lb_model_new_fcn("smallcnn", 1, 32, 32, 5, 4, 3));
    ck_error_mentions("a trunk is a layer list or resnet");
    ck_assert_ptr_null(lb_model_new_fcn("conv:8,3;gap", 1, 32, 32, 5, 1, 1));
    ck_error_mentions("must end in [C, H, W]");
}
END_TEST

static double train_ap(const lb_dense_set *d, const float *scores)
{
    lb_dense_ap r;
    ck_assert_int_eq(lb_dense_average_precision(scores, d->targets, d->n, 4, d->grid_h, d->grid_w, 4, NULL, NULL, &r),
                     LB_OK);
    return r.mean_ap;
}

START_TEST(test_fcn_learns_the_task)
{
    lb_dataset *src = pattern_source();
    lb_dense_spec sp;
    ck_assert_int_eq(lb_dense_spec_parse(&sp, "dense:x,canvas=32,objects=1-2,scale=1,stride=8"), LB_OK);
    lb_dense_set d;
    ck_assert_int_eq(lb_dense_make(&sp, src, NULL, 0, 32, 4, &d), LB_OK);
    lb_model *m = lb_model_new_fcn("conv:16,3;relu;pool:2;conv:16,3;relu;pool:2;conv:16,3;relu;pool:2", 1, 32, 32,
                                   4, 8, 3);
    ck_assert_msg(m != NULL, "%s", lb_last_error());
    lb_rng r;
    lb_rng_seed(&r, 3);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    ck_assert_int_eq(lb_model_prior_bias_dense(m, 0.01, LB_PRIOR_SIGMOID), LB_OK);
    lb_loss *L = lb_loss_new("sigmoid_focal:gamma=2,alpha=0.25", 4, NULL);
    size_t npx = (size_t)32 * 32 * 32, P = m->params->size;
    float *x = lb_malloc(npx * sizeof(float)), *mo = lb_calloc(P, sizeof(float)), *vo = lb_calloc(P, sizeof(float));
    float *scores = lb_malloc((size_t)32 * 4 * 16 * sizeof(float));
    for (size_t i = 0; i < npx; i++) x[i] = d.pixels[i] / 255.0f;
    lb_graph *g = lb_graph_new();
    int shape[4] = {32, 1, 32, 32};
    double first = 0, last = 0, ap0 = 0;
    for (long t = 1; t <= 120; t++) {
        lb_graph_reset(g);
        lb_graph_set_training(g, 1);
        lb_node *z = lb_model_forward(m, g, lb_input(g, 4, shape, x));
        lb_node *loss = lb_loss_forward_dense(L, g, z, d.targets, t, 120, NULL);
        ck_assert_msg(loss != NULL, "%s", lb_last_error());
        if (t == 1) {
            first = loss->val[0];
            for (int i = 0; i < 32 * 4 * 16; i++) scores[i] = z->val[i];
            ap0 = train_ap(&d, scores);
        }
        last = loss->val[0];
        lb_params_zero_grad(m->params);
        ck_assert_int_eq(lb_backward(g, loss), LB_OK);
        lb_adam_update(m->params->data, m->params->grad, mo, vo, P, 0.01f, 0.9f, 0.999f, 1e-8f, 0, 0, t);
        if (t == 120)
            for (int i = 0; i < 32 * 4 * 16; i++) scores[i] = z->val[i];
    }
    double ap = train_ap(&d, scores);
    /* with the prior every probability starts near 0.01: per foreground cell the positive term
     * 0.25 * 0.99^2 * -log(0.01) = 1.128, and the ~2,000 negatives 0.75 * 0.01^2 * -log(0.99)
     * each, 0.0015 in all over about 50 foreground cells: the first loss is about 1.13 */
    ck_assert_msg(fabs(first - 1.13) < 0.1, "first loss %g", first);
    ck_assert_msg(last < 0.25 * first, "loss %g -> %g", first, last);
    ck_assert_msg(ap > 0.9 && ap > ap0 + 0.3, "mean AP on the training canvases %g -> %g", ap0, ap);
    lb_graph_free(g);
    lb_free(x);
    lb_free(mo);
    lb_free(vo);
    lb_free(scores);
    lb_loss_free(L);
    lb_model_free(m);
    lb_dense_set_free(&d);
    lb_dense_spec_free(&sp);
    free_pattern_source(src);
}
END_TEST

/* True when v is one of idx[0..n). */
static int in_list(int v, const int *idx, int n)
{
    for (int i = 0; i < n; i++)
        if (idx[i] == v) return 1;
    return 0;
}

static void expect_from(const lb_dense_set *s, const int *idx, int n, const char *what)
{
    for (long j = 0; j < s->n_objects; j++)
        ck_assert_msg(in_list(s->object_source[j], idx, n), "%s canvas object %ld is image %d, not of its split", what,
                      j, s->object_source[j]);
}

/* lb_data_new of a dense source (Debian's Fashion-MNIST): training canvases from the split's
 * training images, validation canvases from its validation images, test canvases from the test
 * images only; the profile shapes which objects exist. */
START_TEST(test_data_new_dense)
{
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_int_eq(lb_data_opts_set(&o, "data", "dense:fmnist,canvas=32,objects=1-3,train=60,test=30"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "imbalance", "longtail:100"), LB_OK);
    lb_data *d = lb_data_new(&o);
    ck_assert_msg(d != NULL, "%s", lb_last_error());
    ck_assert_ptr_nonnull(d->dense);
    const lb_dense_data *dd = d->dense;
    const lb_split *sp = &d->split;
    ck_assert_int_eq(dd->train.n, 60);
    ck_assert_int_eq(dd->val.n, 6); /* 60 x the validation fraction 0.1 */
    ck_assert_int_eq(dd->test.n, 30);
    expect_from(&dd->train, sp->train_idx, sp->n_train, "training");
    expect_from(&dd->val, sp->val_idx, sp->n_val, "validation");
    expect_from(&dd->test, sp->test_idx, sp->n_test, "test");
    ck_assert_int_eq(dd->train.n_foreground, lb_dense_foreground(dd->train.targets, 60 * 16, 10));
    ck_assert(dd->std[0] > 0 && dd->mean[0] > 0 && dd->mean[0] < 1);
    /* the same options make the same canvases; another data seed others */
    lb_data *same = lb_data_new(&o);
    ck_assert_ptr_nonnull(same);
    ck_assert_int_eq(memcmp(same->dense->test.pixels, dd->test.pixels, 30 * 32 * 32), 0);
    ck_assert(lb_data_fingerprint(same) == lb_data_fingerprint(d));
    ck_assert_int_eq(lb_data_opts_set(&o, "seed", "2"), LB_OK);
    lb_data *other = lb_data_new(&o);
    ck_assert_ptr_nonnull(other);
    ck_assert(lb_data_fingerprint(other) != lb_data_fingerprint(d));
    lb_data_free(other);
    lb_data_free(same);
    lb_data_free(d);
    /* refused: a dense source of a dense source, a profile that regroups the classes */
    ck_assert_err(lb_data_opts_set(&o, "data", "dense:dense:fmnist"), LB_EINVAL, "");
    ck_assert_int_eq(lb_data_opts_set(&o, "data", "dense:fmnist,train=10,test=10"), LB_OK);
    ck_assert_int_eq(lb_data_opts_set(&o, "imbalance", "binary:Bag,100"), LB_OK);
    ck_assert_ptr_null(lb_data_new(&o));
    ck_error_mentions("regroups the source's classes");
    lb_data_opts_free(&o);
}
END_TEST

/* A preset's relative paths are taken from its folder, the dense source's own source too. */
START_TEST(test_preset_rebases_the_dense_source)
{
    char dir[] = "/tmp/libra-test-dense-preset-XXXXXX", path[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/p.ini", dir);
    FILE *f = fopen(path, "w");
    fputs("data = dense:folder:pics,canvas=32,objects=1-2\n", f);
    fclose(f);
    lb_data_opts o;
    lb_data_opts_init(&o);
    ck_assert_msg(lb_data_preset_load(&o, path, NULL) == LB_OK, "%s", lb_last_error());
    char want[256];
    snprintf(want, sizeof want, "dense:folder:%s/pics,canvas=32x32,objects=1-2,scale=0.5-1,stride=8,train=6000,test=1000",
             dir);
    ck_assert_str_eq(o.data, want);
    lb_data_opts_free(&o);
    remove(path);
    rmdir(dir);
}
END_TEST

static Suite *dense_suite(void)
{
    Suite *s = suite_create("dense");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_normaliser_by_hand);
    tcase_add_test(tc, test_finite_differences);
    tcase_add_test(tc, test_node_matches_eval);
    tcase_add_test(tc, test_errors_name_the_fault);
    tcase_add_test(tc, test_prior_bias);
    tcase_add_test(tc, test_average_precision_vs_sklearn);
    tcase_add_test(tc, test_spec);
    tcase_add_test(tc, test_generator_counts_and_cells);
    tcase_add_test(tc, test_generator_deterministic_and_from_its_pool);
    tcase_add_test(tc, test_generator_reaches_one_in_a_thousand);
    tcase_add_test(tc, test_fcn_shapes_and_errors);
    tcase_add_test(tc, test_fcn_learns_the_task);
    tcase_add_test(tc, test_data_new_dense);
    tcase_add_test(tc, test_preset_rebases_the_dense_source);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lb_run_suite(dense_suite()); }
