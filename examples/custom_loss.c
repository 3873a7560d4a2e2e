/* libra-custom-loss: adding your own loss without editing libra.
 *
 * Registers "sq_hinge", a class-weighted multiclass squared hinge loss
 *     l(z, y) = sum_{c != y} max(0, margin - (z_y - z_c))^2,
 * then uses it exactly as a built-in loss: through the spec parser (with libra's class
 * weights, DRW and reductions for free), on the tape, and checks its gradient by central
 * finite differences in double. Exit status 0 when every check passes. */
#include "common/cli.h"
#include "libra/losses.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the loss: a state (its parameters) and one function per sample ---- */
typedef struct {
    double margin;
} sq_hinge;

static int sq_hinge_init(const lb_spec *spec, int n_classes, const int *counts, void **state)
{
    (void)n_classes;
    (void)counts;
    sq_hinge *s = lb_malloc(sizeof *s);
    if (!s) return lb_error(LB_ENOMEM, "sq_hinge: out of memory");
    /* every key of the params table is present, its default filled in */
    int rc = lb_spec_number(spec, "margin", 0.0, 100.0, &s->margin);
    if (rc != LB_OK) {
        lb_free(s);
        return rc;
    }
    *state = s;
    return LB_OK;
}

/* The loss of one sample and its gradient wrt the sample's logits; libra multiplies both by
 * the class weight of the target and reduces. */
static double sq_hinge_sample(const void *state, int C, const float *z, int y, double *dz)
{
    const sq_hinge *s = state;
    double loss = 0;
    dz[y] = 0;
    for (int c = 0; c < C; c++) {
        if (c == y) continue;
        double h = s->margin - ((double)z[y] - z[c]);
        if (h > 0) {
            loss += h * h;
            dz[c] = 2 * h;
            dz[y] -= 2 * h;
        } else {
            dz[c] = 0;
        }
    }
    return loss;
}

static void sq_hinge_free(void *state) { lb_free(state); }

static const lb_loss_param sq_hinge_params[] = {
    {"margin", "1", "required gap between the true logit and every other"},
    {NULL, NULL, NULL}};

static const lb_loss_kind sq_hinge_kind = {
    .summary = "class-weighted multiclass squared hinge (example of a user loss)",
    .params = sq_hinge_params,
    .weight_key = "weights",        /* libra parses weights=, beta=, drw=, drw_step= */
    .weight_default = "none",
    .beta_default = 0.999,
    .flags = LB_LOSS_WEIGHTED_MEAN | LB_LOSS_NORMALIZE_LIST,
    .init = sq_hinge_init,
    .sample = sq_hinge_sample,
    .destroy = sq_hinge_free,
};

/* ---- using it ---- */
#define N 5
#define C 3

static int failures;

static void check(int ok, const char *what)
{
    printf("  %-58s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) failures++;
}

/* Handles the command line; returns 1 when --help was printed (nothing else to do). */
static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c != 'h') cli_bad_option();
        printf("Usage: libra-custom-loss\nRegisters the sq_hinge loss, evaluates it through the spec "
               "parser and checks its gradient by finite differences.\n\n"
               "Exit status: 0 every check passed, 1 a check failed or a runtime error, 2 bad usage.\n");
        return 1;
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    return 0;
}

/* Prints the registered losses (sq_hinge among them) and the full spec of L. */
static void print_losses(const lb_loss *L, const char *spec)
{
    printf("registered losses:");
    const char *names[64];
    int n = lb_loss_list(names, 64);
    for (int i = 0; i < n && i < 64; i++) printf(" %s", names[i]);
    printf("\nspec %s\n  -> %s\n\n", spec, lb_loss_spec(L));
}

/* Evaluates L on the batch and prints each sample's loss and gradient, then the mean. */
static void print_eval(lb_loss *L, const float *z, const int *y, float *per, float *dz, double *sum, double *den)
{
    if (lb_loss_eval_ex(L, z, y, N, per, dz, sum, den, 0, 0) != LB_OK) cli_fatal_lib("eval");
    printf(" i  target  weighted loss   dlogit_0   dlogit_1   dlogit_2\n");
    for (int i = 0; i < N; i++)
        printf("%2d  %6d  %13.6f  %9.5f  %9.5f  %9.5f\n", i, y[i], per[i], dz[i * C], dz[i * C + 1], dz[i * C + 2]);
    printf("mean (sum of w_y l / sum of w_y) = %.6f\n\n", *sum / *den);
}

/* Compares two samples' losses with values worked out by hand. */
static void check_by_hand(const lb_loss *L, const float *per)
{
    /* by hand, sample 0: true logit 2 beats 0.5 and -1 by more than the margin -> 0 */
    check(per[0] == 0.0f, "sample 0 (margin met) has zero loss");
    /* sample 1 (class 1, weight w1): gaps 0.4-0.2 = 0.2 and 0.4-0.1 = 0.3 -> 0.8^2 + 0.7^2 */
    double w1 = lb_loss_class_weight(L, 1, 0, 0);
    check(fabs(per[1] - w1 * (0.64 + 0.49)) < 1e-6, "sample 1 matches the hand-computed value");
}

/* Compares the gradient dz with central differences in double of the summed loss, with the
 * float steps really taken. */
static void check_finite_differences(lb_loss *L, const float *z, const int *y, const float *dz)
{
    double worst = 0;
    float zz[N * C];
    memcpy(zz, z, sizeof zz);
    for (int k = 0; k < N * C; k++) {
        double fp, fm, d;
        float orig = zz[k];
        zz[k] = orig + 1e-3f;
        double zp = zz[k];
        lb_loss_eval_ex(L, zz, y, N, NULL, NULL, &fp, &d, 0, 0);
        zz[k] = orig - 1e-3f;
        double zm = zz[k];
        lb_loss_eval_ex(L, zz, y, N, NULL, NULL, &fm, &d, 0, 0);
        zz[k] = orig;
        double fd = (fp - fm) / (zp - zm), err = fabs(fd - dz[k]) / fmax(1.0, fabs(dz[k]));
        if (err > worst) worst = err;
    }
    printf("largest finite-difference error of the gradient: %.2e\n", worst);
    check(worst < 1e-4, "gradient matches central finite differences");
}

/* Runs L on the tape, as a training step would use it, and compares with the eval results. */
static void check_tape(lb_loss *L, const float *z, const int *y, const float *dz, double sum, double den)
{
    lb_graph *g = lb_graph_new();
    lb_node *x = lb_leaf(g, 2, (int[]){N, C}, z, 1);
    lb_node *loss = lb_loss_forward(L, g, x, y, 0, 0);
    if (!loss || lb_backward(g, loss) != LB_OK) cli_fatal_lib("tape");
    double gerr = 0;
    for (int k = 0; k < N * C; k++) gerr = fmax(gerr, fabs(x->grad[k] - dz[k] / den));
    check(fabs(loss->val[0] - sum / den) < 1e-6 && gerr < 1e-6, "tape node: value and backward agree with eval");
    lb_graph_free(g);
}

/* Deferred re-weighting comes with the weight key: unweighted before 50% of the budget,
 * then the weighted mean (sum / den) of the first evaluation. */
static void check_drw(const float *z, const int *y, const int *counts, double sum, double den)
{
    lb_loss *D = lb_loss_new("sq_hinge:weights=inverse,drw=0.5", C, counts);
    if (!D) cli_fatal_lib("drw");
    double before, after, plain;
    lb_loss *P = lb_loss_new("sq_hinge", C, NULL);
    if (!P) cli_fatal_lib("plain");
    lb_loss_eval(D, z, y, N, NULL, NULL, &before, 10, 100);
    lb_loss_eval(D, z, y, N, NULL, NULL, &after, 60, 100);
    lb_loss_eval(P, z, y, N, NULL, NULL, &plain, 0, 0);
    check(before == plain && fabs(after - sum / den) < 1e-12, "drw=0.5: plain before the switch, weighted after");
    lb_loss_free(D);
    lb_loss_free(P);
}

int main(int argc, char **argv)
{
    cli_init(argv);
    if (parse_args(argc, argv)) return 0;
    if (lb_loss_register("sq_hinge", &sq_hinge_kind) != LB_OK) cli_fatal_lib("register");

    const char *spec = "sq_hinge:margin=1,weights=inverse";
    static const int counts[C] = {500, 50, 5};
    static const float z[N * C] = {2.0f, 0.5f, -1.0f,  0.2f, 0.4f, 0.1f, -0.3f, 1.2f, 0.9f,
                                   0.6f, -0.5f, 0.25f, 0.0f, 0.3f, 2.1f};
    static const int y[N] = {0, 1, 2, 0, 2};
    lb_loss *L = lb_loss_new(spec, C, counts);
    if (!L) cli_fatal_lib(spec);
    print_losses(L, spec);

    float per[N], dz[N * C];
    double sum, den;
    print_eval(L, z, y, per, dz, &sum, &den);
    check_by_hand(L, per);
    check_finite_differences(L, z, y, dz);
    check_tape(L, z, y, dz, sum, den);
    check_drw(z, y, counts, sum, den);
    check(lb_loss_new("sq_hinge:margin=-1", C, NULL) == NULL, "an out-of-range margin is refused");
    printf("    (%s)\n", lb_last_error());
    lb_loss_free(L);
    printf("\n%s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
