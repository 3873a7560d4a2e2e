/* Average precision of a dense task, per class over every location and at the image level
 * ("does the image hold class c"), from scores [N, K, H, W] and targets [N, H, W]. */
#include "libra/metrics.h"

#include <math.h>

static int check_dense(const float *scores, const int *targets, int N, int K, int H, int W, int C)
{
    if (!scores || !targets) return lb_error(LB_EINVAL, "dense AP: NULL scores or targets");
    if (N <= 0 || H <= 0 || W <= 0 || C < 1 || K < C)
        return lb_error(LB_ESHAPE, "dense AP: scores [%d, %d, %d, %d] for %d classes (need N, H, W > 0 and K >= %d)",
                        N, K, H, W, C, C);
    size_t plane = (size_t)H * W;
    for (size_t i = 0; i < (size_t)N * plane; i++)
        if (targets[i] < 0 || targets[i] > C)
            return lb_error(LB_EINVAL, "dense AP: target %d at image %zu, location %zu is outside [0, %d] (%d = "
                            "background)", targets[i], i / plane, i % plane, C, C);
    return LB_OK;
}

/* Class c's location scores and positives (N*H*W each) and its image scores and positives (N). */
static void gather_class(const float *scores, const int *targets, int N, int K, size_t plane, int c, float *loc,
                         unsigned char *loc_pos, float *img, unsigned char *img_pos)
{
    for (int n = 0; n < N; n++) {
        const float *p = scores + ((size_t)n * K + (size_t)c) * plane;
        const int *t = targets + (size_t)n * plane;
        float best = p[0];
        unsigned char any = 0;
        for (size_t i = 0; i < plane; i++) {
            loc[(size_t)n * plane + i] = p[i];
            loc_pos[(size_t)n * plane + i] = t[i] == c;
            if (p[i] > best) best = p[i];
            any |= t[i] == c;
        }
        img[n] = best;
        img_pos[n] = any;
    }
}

static void add_to_mean(double ap, double *sum, int *used)
{
    if (isnan(ap)) return;
    *sum += ap;
    (*used)++;
}

int lb_dense_average_precision(const float *scores, const int *targets, int N, int K, int H, int W, int C,
                               double *location_ap, double *image_ap, lb_dense_ap *out)
{
    int rc = check_dense(scores, targets, N, K, H, W, C);
    if (rc != LB_OK) return rc;
    size_t plane = (size_t)H * W, n_loc = (size_t)N * plane;
    float *loc = lb_malloc(n_loc * sizeof(float)), *img = lb_malloc((size_t)N * sizeof(float));
    unsigned char *loc_pos = lb_malloc(n_loc), *img_pos = lb_malloc((size_t)N);
    if (!loc || !img || !loc_pos || !img_pos)
        rc = lb_error(LB_ENOMEM, "dense AP: out of memory for %zu locations", n_loc);
    double sum = 0, sum_img = 0;
    lb_dense_ap r = {NAN, NAN, 0, 0};
    for (int c = 0; c < C && rc == LB_OK; c++) {
        double ap = NAN, ap_img = NAN;
        gather_class(scores, targets, N, K, plane, c, loc, loc_pos, img, img_pos);
        rc = lb_average_precision_binary(loc, loc_pos, n_loc, &ap);
        if (rc == LB_OK) rc = lb_average_precision_binary(img, img_pos, (size_t)N, &ap_img);
        if (location_ap) location_ap[c] = ap;
        if (image_ap) image_ap[c] = ap_img;
        add_to_mean(ap, &sum, &r.n_used);
        add_to_mean(ap_img, &sum_img, &r.n_used_image);
    }
    lb_free(loc);
    lb_free(img);
    lb_free(loc_pos);
    lb_free(img_pos);
    if (rc != LB_OK) return rc;
    if (r.n_used) r.mean_ap = sum / r.n_used;
    if (r.n_used_image) r.image_mean_ap = sum_img / r.n_used_image;
    if (out) *out = r;
    return LB_OK;
}
