/* Which differences are real: the t-interval of a mean over seeds, and the paired bootstrap
 * of a difference in balanced accuracy over test images and seeds (docs/metrics.md). */
#include "libra/metrics.h"

#include <math.h>
#include <stdlib.h>

static const double PI = 3.14159265358979323846;

/* P(|T| <= t) for Student's t with integer df (Abramowitz & Stegun 26.7.3-4: a finite
 * series in theta = atan(t / sqrt(df))). */
static double t_central(double t, int df)
{
    double th = atan(t / sqrt((double)df)), c2 = cos(th) * cos(th), term = 1.0, sum = 1.0;
    if (df % 2 == 0) { /* sin(th) (1 + 1/2 c2 + 1*3/(2*4) c2^2 + ... up to c2^((df-2)/2)) */
        for (int k = 2; k <= df - 2; k += 2) {
            term *= c2 * (k - 1) / k;
            sum += term;
        }
        return sin(th) * sum;
    }
    if (df == 1) return 2.0 * th / PI;
    for (int k = 3; k <= df - 2; k += 2) { /* 1 + 2/3 c2 + 2*4/(3*5) c2^2 + ... */
        term *= c2 * (k - 1) / k;
        sum += term;
    }
    return 2.0 / PI * (th + sin(th) * cos(th) * sum);
}

double lb_t975(int df)
{
    if (df < 1) return NAN;
    double lo = 0.0, hi = 64.0; /* t975(1) = 12.7 */
    for (int i = 0; i < 200 && hi - lo > 1e-12; i++) {
        double mid = 0.5 * (lo + hi);
        if (t_central(mid, df) < 0.95) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

void lb_mean_ci95(const double *x, int n, double *mean, double *lo, double *hi)
{
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = n > 0 ? s / n : NAN;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    double half = n > 1 ? lb_t975(n - 1) * sqrt(ss / (n - 1)) / sqrt((double)n) : NAN;
    *lo = *mean - half;
    *hi = *mean + half;
}

/* Balanced accuracy of pred against y over the images with weight w[i] (their multiplicity
 * in a resample; NULL: each once), over the classes present; hit and tot: C scratch doubles. */
static double weighted_bacc(const int *pred, const int *y, const int *w, int n, int C, double *hit, double *tot)
{
    for (int c = 0; c < C; c++) hit[c] = tot[c] = 0.0;
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        tot[y[i]] += wi;
        hit[y[i]] += wi * (pred[i] == y[i]);
    }
    double s = 0.0;
    int present = 0;
    for (int c = 0; c < C; c++)
        if (tot[c] > 0) {
            s += hit[c] / tot[c];
            present++;
        }
    return present ? s / present : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int check_labels(const int *y, int n, int k, int C, int R)
{
    if (!y || n < 1 || k < 1 || C < 1 || R < 1)
        return lb_error(LB_EINVAL, "paired bootstrap: %d images, %d seeds, %d classes, %d resamples", n, k, C, R);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= C) return lb_error(LB_EINVAL, "paired bootstrap: label %d of image %d", y[i], i);
    return LB_OK;
}

/* m prediction arrays, each given. */
static int check_preds(const int *const *pred, int m)
{
    if (!pred) return lb_error(LB_EINVAL, "paired bootstrap: no predictions");
    for (int j = 0; j < m; j++)
        if (!pred[j]) return lb_error(LB_EINVAL, "paired bootstrap: no predictions for seed %d", j);
    return LB_OK;
}

/* One resample: k seeds and n images drawn with replacement (weights w), and each line's
 * mean over the drawn seeds of its balanced accuracy on the drawn images, into out[l * R]. */
static void resample(const int *const *pred, int n_lines, int k, const int *y, int n, int C, lb_rng *r, int *w,
                     int *seeds, double *scratch, double *out, int R)
{
    for (int i = 0; i < n; i++) w[i] = 0;
    for (int i = 0; i < n; i++) w[lb_rng_below(r, (uint64_t)n)]++;
    for (int j = 0; j < k; j++) seeds[j] = (int)lb_rng_below(r, (uint64_t)k);
    for (int l = 0; l < n_lines; l++) {
        double s = 0.0;
        for (int j = 0; j < k; j++) s += weighted_bacc(pred[(size_t)l * k + seeds[j]], y, w, n, C, scratch, scratch + C);
        out[(size_t)l * R] = s / k;
    }
}

int lb_bootstrap_bacc(const int *const *pred, int n_lines, int k, const int *y, int n, int C, int resamples,
                      uint64_t seed, double *out)
{
    int rc = n_lines < 1 ? lb_error(LB_EINVAL, "bootstrap: %d lines", n_lines) : check_labels(y, n, k, C, resamples);
    if (rc == LB_OK) rc = check_preds(pred, n_lines * k);
    if (rc != LB_OK) return rc;
    int *w = lb_malloc(((size_t)n + (size_t)k) * sizeof *w);
    double *scratch = lb_malloc(2 * (size_t)C * sizeof *scratch);
    if (!w || !scratch) rc = lb_error(LB_ENOMEM, "bootstrap: out of memory for %d images", n);
    lb_rng r;
    lb_rng_seed(&r, seed);
    for (int b = 0; rc == LB_OK && b < resamples; b++)
        resample(pred, n_lines, k, y, n, C, &r, w, w + n, scratch, out + b, resamples);
    lb_free(w);
    lb_free(scratch);
    return rc;
}

/* Mean over the k seeds of bacc(a_j) - bacc(b_j) on the whole test set. */
static int point_diff(const int *const *pa, const int *const *pb, const int *y, int n, int k, int C, double *diff)
{
    double *scratch = lb_malloc(2 * (size_t)C * sizeof *scratch);
    if (!scratch) return lb_error(LB_ENOMEM, "bootstrap: out of memory");
    double d = 0.0;
    for (int j = 0; j < k; j++)
        d += weighted_bacc(pa[j], y, NULL, n, C, scratch, scratch + C) - weighted_bacc(pb[j], y, NULL, n, C, scratch, scratch + C);
    lb_free(scratch);
    *diff = d / k;
    return LB_OK;
}

int lb_paired_diff_of(const double *boot_a, const double *boot_b, int resamples, double diff, lb_paired_diff *out)
{
    double *d = lb_malloc((size_t)resamples * sizeof *d);
    if (!d) return lb_error(LB_ENOMEM, "bootstrap: out of memory for %d resamples", resamples);
    for (int b = 0; b < resamples; b++) d[b] = boot_a[b] - boot_b[b];
    qsort(d, (size_t)resamples, sizeof *d, cmp_double);
    out->diff = diff;
    out->lo = d[(int)floor(0.025 * (resamples - 1))];
    out->hi = d[(int)ceil(0.975 * (resamples - 1))];
    out->excludes_zero = out->lo > 0.0 || out->hi < 0.0;
    lb_free(d);
    return LB_OK;
}

int lb_paired_bootstrap(const int *const *pred_a, const int *const *pred_b, const int *y, int n, int k, int C,
                        int resamples, uint64_t seed, lb_paired_diff *out)
{
    int rc = check_labels(y, n, k, C, resamples);
    if (rc == LB_OK) rc = check_preds(pred_a, k);
    if (rc == LB_OK) rc = check_preds(pred_b, k);
    const int **both = rc == LB_OK ? lb_malloc(2 * (size_t)k * sizeof *both) : NULL;
    double *boot = both ? lb_malloc(2 * (size_t)resamples * sizeof *boot) : NULL, diff = 0.0;
    if (rc == LB_OK && !boot) rc = lb_error(LB_ENOMEM, "paired bootstrap: out of memory");
    for (int j = 0; rc == LB_OK && j < k; j++) {
        both[j] = pred_a[j];
        both[k + j] = pred_b[j];
    }
    if (rc == LB_OK) rc = point_diff(pred_a, pred_b, y, n, k, C, &diff);
    if (rc == LB_OK) rc = lb_bootstrap_bacc((const int *const *)both, 2, k, y, n, C, resamples, seed, boot);
    if (rc == LB_OK) rc = lb_paired_diff_of(boot, boot + resamples, resamples, diff, out);
    lb_free(both);
    lb_free(boot);
    return rc;
}
