/* libra-losses: the loss explorer.
 *   (no input)                 the worked Healthy/Diseased example of docs/losses.md
 *   --loss SPEC --input F.csv  per-sample losses and gradients of any registered loss
 *   --curve                    focal loss and modulating factor against p_t (CSV + SVG)
 *   --list                     the registered losses with their keys and defaults */
#include "common/cli.h"
#include "libra/losses.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: libra-losses [--gamma G] [--alpha A]\n"
    "       libra-losses --loss SPEC --input FILE.csv [--counts n0,n1,...] [--step S --total-steps T] [--out FILE]\n"
    "       libra-losses --curve [--gammas G1,G2,...] [--out FILE.csv] [--svg FILE.svg]\n"
    "       libra-losses --list\n"
    "\n"
    "Without --input or --curve: the worked binary example of docs/losses.md (five images,\n"
    "Healthy = class 0, common; Diseased = class 1, rare) with cross-entropy and focal loss.\n"
    "  --gamma G          focusing parameter of the focal loss (default 2)\n"
    "  --alpha A          alpha_t for Diseased; Healthy gets 1 - A (default 0.25, as Lin et al.);\n"
    "                     'none' for no alpha\n"
    "\n"
    "Evaluating a loss on your logits:\n"
    "  --loss SPEC        e.g. ce, focal:gamma=2,alpha=inverse, ldam:max_m=0.5,s=30,drw=0.8\n"
    "                     (every loss and key: --list and docs/losses.md)\n"
    "  --input FILE.csv   rows 'target,logit_0,...,logit_{C-1}', optional header line\n"
    "  --counts LIST      training-set class counts n0,n1,... (losses that need them)\n"
    "  --step S, --total-steps T\n"
    "                     the training step and budget, for DRW schedules (default 0, 0)\n"
    "  --out FILE         write the CSV there instead of stdout\n"
    "Output: 'i,target,loss,dlogit_0,...' per sample (its weighted, unreduced loss and the\n"
    "gradient wrt its own logits), then 'mean,VALUE' reduced by the loss's mean convention.\n"
    "\n"
    "The focal curve (Lin et al., figure 1):\n"
    "  --curve            CSV 'p_t,gamma,loss,modulating_factor' on stdout (or --out)\n"
    "  --gammas LIST      the gammas to draw (default 0,0.5,1,2,5)\n"
    "  --svg FILE         also draw both curves as an SVG file\n"
    "\n"
    "  --list             the registered losses, their keys and defaults\n"
    "  --help             this text\n"
    "Exit status: 0 on success, 1 on a file or numeric error, 2 on a bad flag.\n";

/* ---- output files: written to a temporary name, then renamed ---- */

typedef struct {
    FILE *f;
    const char *path;   /* NULL: stdout */
    char tmp[4096];
} out_file;

static void out_open(out_file *o, const char *path)
{
    o->path = path;
    if (!path) {
        o->f = stdout;
        return;
    }
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    o->f = fopen(o->tmp, "w");
    if (!o->f) cli_fatal("%s: cannot write: %s", o->tmp, strerror(errno));
}

static void out_close(out_file *o)
{
    if (!o->path) {
        if (fflush(stdout) != 0 || ferror(stdout)) cli_fatal("stdout: write failed");
        return;
    }
    int bad = ferror(o->f);
    if (fclose(o->f) != 0) bad = 1;
    if (bad || rename(o->tmp, o->path) != 0) {
        int e = errno;
        remove(o->tmp);
        cli_fatal("%s: cannot write: %s", o->path, strerror(e));
    }
}

/* ---- the worked example ---- */

static void worked_example(double gamma, double alpha, int use_alpha)
{
    static const double p_d[5] = {0.10, 0.40, 0.70, 0.90, 0.20};
    static const int label[5] = {0, 0, 0, 1, 1};
    float z[10];
    for (int i = 0; i < 5; i++) {
        z[2 * i] = (float)log(1.0 - p_d[i]);
        z[2 * i + 1] = (float)log(p_d[i]);
    }
    char spec[128], a[40], b[40], g[40];
    lb_format_number(gamma, g, sizeof g);
    if (use_alpha)
        snprintf(spec, sizeof spec, "focal:gamma=%s,alpha=%s,%s", g, lb_format_number(1.0 - alpha, a, sizeof a),
                 lb_format_number(alpha, b, sizeof b));
    else
        snprintf(spec, sizeof spec, "focal:gamma=%s", g);
    lb_loss *ce = lb_loss_new("ce", 2, NULL), *fl = lb_loss_new(spec, 2, NULL);
    if (!ce || !fl) cli_fatal_lib(spec);
    float l_ce[5], l_fl[5];
    double m_ce, m_fl;
    if (lb_loss_eval(ce, z, label, 5, l_ce, NULL, &m_ce, 0, 0) != LB_OK ||
        lb_loss_eval(fl, z, label, 5, l_fl, NULL, &m_fl, 0, 0) != LB_OK)
        cli_fatal_lib("worked example");

    printf("Worked example: five images, two classes: Healthy (class 0, common) and Diseased (class 1, rare).\n");
    printf("p_t is the probability the model gives to the TRUE class of each image:\n");
    printf("  p_t = P(Diseased) if the label is Diseased, p_t = P(Healthy) = 1 - P(Diseased) if it is Healthy.\n");
    printf("CE = -ln p_t\n");
    if (use_alpha)
        printf("FL = -alpha_t (1 - p_t)^gamma ln p_t, gamma = %s, alpha_t = %s for Diseased, %s for Healthy\n", g, b,
               a);
    else
        printf("FL = -(1 - p_t)^gamma ln p_t, gamma = %s, no alpha\n", g);
    printf("libra specs: ce and %s\n\n", spec);
    printf(" #  P(Healthy)  P(Diseased)  label     p_t     CE        focal     CE/focal\n");
    for (int i = 0; i < 5; i++) {
        double ph = exp(z[2 * i]) / (exp(z[2 * i]) + exp(z[2 * i + 1])), pt = label[i] ? 1.0 - ph : ph;
        printf("%2d  %-10.2f  %-11.2f  %-8s  %.4f  %.6f  %.6f  ", i + 1, ph, 1.0 - ph,
               label[i] ? "Diseased" : "Healthy", pt, l_ce[i], l_fl[i]);
        if (l_fl[i] > 0) printf("%.1f\n", l_ce[i] / l_fl[i]);
        else printf("-\n");
    }
    printf("mean                                           %.6f  %.6f\n", m_ce, m_fl);
    if (gamma > 0)
        printf("\nThe modulating factor (1 - p_t)^gamma shrinks the easy rows (p_t = 0.9) by %.3g and the\n"
               "hardest (p_t = 0.2) only by %.3g: the hard rows dominate the focal loss.\n",
               pow(0.1, gamma), pow(0.8, gamma));
    if (use_alpha && alpha < 0.5)
        printf("alpha = %s < 0.5 weights the rare class Diseased *down*, as in Lin et al. (gamma already\n"
               "shrinks the many easy Healthy rows, so the common class needs the larger alpha).\n", b);
    lb_loss_free(ce);
    lb_loss_free(fl);
}

/* ---- --input: per-sample losses from a CSV of logits ---- */

typedef struct {
    int n, C, cap;
    int *y;
    float *z;
} logits_csv;

/* Splits a line in place at commas; returns the number of fields (at most max). */
static int split_fields(char *line, char **field, int max)
{
    int n = 0;
    char *p = line;
    while (1) {
        if (n < max) field[n] = p;
        n++;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static int parse_num(const char *s, double *v)
{
    char *end;
    while (*s == ' ') s++;
    errno = 0;
    *v = strtod(s, &end);
    while (*end == ' ') end++;
    return end != s && !*end && errno != ERANGE && isfinite(*v);
}

static void read_csv(const char *path, logits_csv *d)
{
    FILE *f = fopen(path, "r");
    if (!f) cli_fatal("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int first = 1;
    enum { MAXF = 100001 };
    char **field = malloc(MAXF * sizeof *field);
    if (!field) cli_fatal("out of memory");
    memset(d, 0, sizeof *d);
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[strspn(line, " \t")] == '\0') continue; /* blank line */
        int nf = split_fields(line, field, MAXF);
        double v;
        if (first && !parse_num(field[0], &v)) { /* a header line */
            first = 0;
            continue;
        }
        first = 0;
        if (nf > MAXF) cli_fatal("%s:%ld: more than %d columns", path, lineno, MAXF);
        if (d->C == 0) {
            if (nf < 3) cli_fatal("%s:%ld: %d columns; expected target and at least 2 logits", path, lineno, nf);
            d->C = nf - 1;
        } else if (nf != d->C + 1) {
            cli_fatal("%s:%ld: %d columns, expected %d (target + %d logits as on the first row)", path, lineno, nf,
                      d->C + 1, d->C);
        }
        if (d->n == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 64;
            d->y = realloc(d->y, (size_t)d->cap * sizeof *d->y);
            d->z = realloc(d->z, (size_t)d->cap * d->C * sizeof *d->z);
            if (!d->y || !d->z) cli_fatal("%s: out of memory", path);
        }
        if (!parse_num(field[0], &v) || v != floor(v))
            cli_fatal("%s:%ld: target '%s' is not a whole number", path, lineno, field[0]);
        if (v < 0 || v >= d->C)
            cli_fatal("%s:%ld: target %g is out of range [0, %d)", path, lineno, v, d->C);
        d->y[d->n] = (int)v;
        for (int c = 0; c < d->C; c++) {
            if (!parse_num(field[c + 1], &v) || fabs(v) > 3.4e38)
                cli_fatal("%s:%ld: column %d (logit_%d) '%s' is not a finite number", path, lineno, c + 2, c,
                          field[c + 1]);
            d->z[(size_t)d->n * d->C + c] = (float)v;
        }
        d->n++;
    }
    if (ferror(f)) cli_fatal("%s: read error", path);
    fclose(f);
    free(line);
    free(field);
    if (d->n == 0) cli_fatal("%s: no data rows (expected 'target,logit_0,...,logit_{C-1}')", path);
}

static int *parse_counts(const char *s, int *n)
{
    int cap = 16, k = 0;
    int *c = malloc((size_t)cap * sizeof *c);
    const char *p = s;
    while (c) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || errno == ERANGE || v < 0 || v > 2000000000L)
            cli_usage_error("--counts: '%s' is not a list of non-negative integers n0,n1,...", s);
        if (k == cap) c = realloc(c, (size_t)(cap *= 2) * sizeof *c);
        if (!c) break;
        c[k++] = (int)v;
        if (!*end) break;
        p = end + 1;
    }
    if (!c) cli_fatal("out of memory");
    *n = k;
    return c;
}

static void run_input(const char *spec, const char *path, const char *counts_arg, long step, long total,
                      const char *out_path)
{
    logits_csv d;
    read_csv(path, &d);
    int *counts = NULL, nc = 0;
    if (counts_arg) {
        counts = parse_counts(counts_arg, &nc);
        if (nc != d.C) cli_usage_error("--counts: %d values, but %s has %d classes", nc, path, d.C);
    }
    lb_loss *L = lb_loss_new(spec, d.C, counts);
    if (!L) {
        if (!counts && strstr(lb_last_error(), "counts"))
            cli_usage_error("--loss: %s (give --counts)", lb_last_error());
        cli_usage_error("--loss: %s", lb_last_error());
    }
    float *per = malloc((size_t)d.n * sizeof *per), *dz = malloc((size_t)d.n * d.C * sizeof *dz);
    if (!per || !dz) cli_fatal("out of memory");
    double mean;
    if (lb_loss_eval(L, d.z, d.y, d.n, per, dz, &mean, step, total) != LB_OK) {
        if (strstr(lb_last_error(), "drw"))
            cli_usage_error("%s (give --step and --total-steps)", lb_last_error());
        cli_fatal("%s: %s", path, lb_last_error());
    }
    out_file o;
    out_open(&o, out_path);
    fprintf(o.f, "i,target,loss");
    for (int c = 0; c < d.C; c++) fprintf(o.f, ",dlogit_%d", c);
    fputc('\n', o.f);
    for (int i = 0; i < d.n; i++) {
        fprintf(o.f, "%d,%d,%.9g", i, d.y[i], per[i]);
        for (int c = 0; c < d.C; c++) fprintf(o.f, ",%.9g", dz[(size_t)i * d.C + c]);
        fputc('\n', o.f);
    }
    fprintf(o.f, "mean,%.12g\n", mean);
    out_close(&o);
    fprintf(stderr, "%s: %d samples, %d classes, loss %s\n", cli_prog, d.n, d.C, lb_loss_spec(L));
    lb_loss_free(L);
    free(per);
    free(dz);
    free(d.y);
    free(d.z);
    free(counts);
}

/* ---- --curve ---- */

#define CURVE_POINTS 200
#define MAX_GAMMAS 8

/* Focal loss at p_t = k / CURVE_POINTS through the library (binary logits 0, logit(p_t)). */
static void curve_values(double gamma, double *pt, double *loss, double *mod)
{
    char spec[64], g[40];
    snprintf(spec, sizeof spec, "focal:gamma=%s", lb_format_number(gamma, g, sizeof g));
    lb_loss *L = lb_loss_new(spec, 2, NULL);
    if (!L) cli_fatal_lib(spec);
    float z[2 * CURVE_POINTS];
    int y[CURVE_POINTS];
    float per[CURVE_POINTS];
    for (int k = 1; k <= CURVE_POINTS; k++) {
        double p = (double)k / CURVE_POINTS;
        pt[k - 1] = p;
        mod[k - 1] = pow(1.0 - p, gamma);
        z[2 * (k - 1)] = 0.0f;
        z[2 * (k - 1) + 1] = k == CURVE_POINTS ? 1e4f : (float)log(p / (1.0 - p));
        y[k - 1] = 1;
    }
    if (lb_loss_eval(L, z, y, CURVE_POINTS, per, NULL, NULL, 0, 0) != LB_OK) cli_fatal_lib(spec);
    for (int k = 0; k < CURVE_POINTS; k++) loss[k] = per[k];
    lb_loss_free(L);
}

static const char *const colours[MAX_GAMMAS] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

/* One panel: x = p_t in [0, 1], y in [0, ymax] (clipped), a polyline per gamma. */
static void svg_panel(FILE *f, double x0, double y0, double w, double h, const char *title, const char *ylabel,
                      double ymax, int ng, const double *gammas, double pt[][CURVE_POINTS],
                      double val[][CURVE_POINTS])
{
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='15'>%s</text>\n", x0 + w / 2, y0 - 12, title);
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#333'/>\n", x0, y0, w, h);
    for (int t = 0; t <= 5; t++) {
        double x = x0 + w * t / 5, yy = y0 + h - h * t / 5;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", x, y0, x, y0 + h);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", x0, yy, x0 + w, yy);
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='11'>%.1f</text>\n", x, y0 + h + 15,
                t / 5.0);
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='end' font-size='11'>%g</text>\n", x0 - 5, yy + 4,
                ymax * t / 5);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12'>probability of the true class, p_t</text>\n",
            x0 + w / 2, y0 + h + 34);
    fprintf(f, "<text transform='translate(%.1f,%.1f) rotate(-90)' text-anchor='middle' font-size='12'>%s</text>\n",
            x0 - 34, y0 + h / 2, ylabel);
    for (int j = 0; j < ng; j++) {
        fprintf(f, "<polyline fill='none' stroke-width='2' stroke='%s' points='", colours[j]);
        for (int k = 0; k < CURVE_POINTS; k++) {
            double v = val[j][k] > ymax ? ymax : val[j][k];
            if (val[j][k] > ymax && k + 1 < CURVE_POINTS && val[j][k + 1] > ymax) continue;
            fprintf(f, "%.2f,%.2f ", x0 + w * pt[j][k], y0 + h - h * v / ymax);
        }
        fprintf(f, "'/>\n");
        char g[40];
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' stroke-width='2'/>", x0 + w - 95,
                y0 + 16 + 16 * j, x0 + w - 75, y0 + 16 + 16 * j, colours[j]);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='12'>&#947; = %s</text>\n", x0 + w - 70, y0 + 20 + 16 * j,
                lb_format_number(gammas[j], g, sizeof g));
    }
}

static void run_curve(const double *gammas, int ng, const char *out_path, const char *svg_path)
{
    static double pt[MAX_GAMMAS][CURVE_POINTS], loss[MAX_GAMMAS][CURVE_POINTS], mod[MAX_GAMMAS][CURVE_POINTS];
    for (int j = 0; j < ng; j++) curve_values(gammas[j], pt[j], loss[j], mod[j]);
    out_file o;
    out_open(&o, out_path);
    fprintf(o.f, "p_t,gamma,loss,modulating_factor\n");
    for (int j = 0; j < ng; j++)
        for (int k = 0; k < CURVE_POINTS; k++)
            fprintf(o.f, "%.3f,%g,%.9g,%.9g\n", pt[j][k], gammas[j], loss[j][k], mod[j][k]);
    out_close(&o);
    if (!svg_path) return;
    out_file s;
    out_open(&s, svg_path);
    fprintf(s.f, "<svg xmlns='http://www.w3.org/2000/svg' width='940' height='420' font-family='sans-serif'>\n"
                 "<rect width='940' height='420' fill='white'/>\n");
    fprintf(s.f, "<title>Focal loss FL = -(1 - p_t)^gamma ln p_t and its modulating factor</title>\n");
    svg_panel(s.f, 70, 40, 380, 320, "focal loss -(1 - p_t)^&#947; ln p_t", "loss", 5.0, ng, gammas, pt, loss);
    svg_panel(s.f, 530, 40, 380, 320, "modulating factor (1 - p_t)^&#947;", "factor", 1.0, ng, gammas, pt, mod);
    fprintf(s.f, "</svg>\n");
    out_close(&s);
    fprintf(stderr, "%s: wrote %s\n", cli_prog, svg_path);
}

/* ---- --list ---- */

static void list_losses(void)
{
    const char *names[64];
    int n = lb_loss_list(names, 64);
    for (int i = 0; i < n && i < 64; i++) {
        const lb_loss_kind *k = lb_loss_find(names[i]);
        printf("%s\n    %s\n", names[i], k->summary ? k->summary : "");
        for (const lb_loss_param *p = k->params; p->key; p++)
            printf("    %-10s default %-8s %s\n", p->key, p->default_value, p->help ? p->help : "");
        if (k->weight_key) {
            char beta[40];
            printf("    %-10s default %-8s class weights: none, one number, C numbers, inverse, sqrt or "
                   "effective\n", k->weight_key, k->weight_default);
            printf("    %-10s default %-8s for effective: (1-beta)/(1-beta^n_c)\n", "beta",
                   lb_format_number(k->beta_default, beta, sizeof beta));
            printf("    %-10s default %-8s deferred re-weighting: weights from this fraction of the budget\n",
                   "drw", "none");
            printf("    %-10s default %-8s ... or from this step\n", "drw_step", "none");
        }
        printf("    %-10s default %-8s mean, sum or none; the mean divides by %s\n", "reduction", "mean",
               (k->flags & LB_LOSS_WEIGHTED_MEAN) ? "the sum of the class weights" : "N");
    }
}

enum { OPT_LOSS = 1, OPT_INPUT, OPT_COUNTS, OPT_STEP, OPT_TOTAL, OPT_GAMMA, OPT_ALPHA, OPT_CURVE, OPT_GAMMAS,
       OPT_OUT, OPT_SVG, OPT_LIST, OPT_HELP };

int main(int argc, char **argv)
{
    cli_init(argv);
    static const struct option opts[] = {
        {"loss", required_argument, 0, OPT_LOSS},    {"input", required_argument, 0, OPT_INPUT},
        {"counts", required_argument, 0, OPT_COUNTS}, {"step", required_argument, 0, OPT_STEP},
        {"total-steps", required_argument, 0, OPT_TOTAL}, {"gamma", required_argument, 0, OPT_GAMMA},
        {"alpha", required_argument, 0, OPT_ALPHA},  {"curve", no_argument, 0, OPT_CURVE},
        {"gammas", required_argument, 0, OPT_GAMMAS}, {"out", required_argument, 0, OPT_OUT},
        {"svg", required_argument, 0, OPT_SVG},      {"list", no_argument, 0, OPT_LIST},
        {"help", no_argument, 0, OPT_HELP},          {0, 0, 0, 0}};
    const char *spec = NULL, *input = NULL, *counts = NULL, *out = NULL, *svg = NULL;
    long step = 0, total = 0;
    double gamma = 2.0, alpha = 0.25, gammas[MAX_GAMMAS] = {0, 0.5, 1, 2, 5};
    int use_alpha = 1, curve = 0, list = 0, ng = 5, worked_flags = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LOSS: spec = optarg; break;
        case OPT_INPUT: input = optarg; break;
        case OPT_COUNTS: counts = optarg; break;
        case OPT_STEP: step = cli_long("step", optarg, 0, 1000000000000L); break;
        case OPT_TOTAL: total = cli_long("total-steps", optarg, 0, 1000000000000L); break;
        case OPT_GAMMA: gamma = cli_double("gamma", optarg, 0.0, 100.0); worked_flags = 1; break;
        case OPT_ALPHA:
            if (strcmp(optarg, "none") == 0) use_alpha = 0;
            else alpha = cli_double("alpha", optarg, 0.0, 1.0), use_alpha = 1;
            worked_flags = 1;
            break;
        case OPT_CURVE: curve = 1; break;
        case OPT_GAMMAS: {
            lb_spec *s = NULL;
            char buf[512];
            snprintf(buf, sizeof buf, "gammas:g=%s", optarg);
            if (!(s = lb_spec_new(buf)) || lb_spec_numbers(s, "g", gammas, MAX_GAMMAS, &ng) != LB_OK)
                cli_usage_error("--gammas: '%s' is not a list of at most %d numbers", optarg, MAX_GAMMAS);
            lb_spec_free(s);
            for (int j = 0; j < ng; j++)
                if (gammas[j] < 0 || gammas[j] > 100) cli_usage_error("--gammas: %g is outside [0, 100]", gammas[j]);
            break;
        }
        case OPT_OUT: out = optarg; break;
        case OPT_SVG: svg = optarg; break;
        case OPT_LIST: list = 1; break;
        case OPT_HELP: fputs(usage, stdout); return 0;
        default: cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if ((curve != 0) + (input != NULL) + (list != 0) > 1)
        cli_usage_error("--curve, --input and --list are separate modes; give one");
    if (input && !spec) cli_usage_error("--input: needs --loss SPEC");
    if (spec && !input) cli_usage_error("--loss: needs --input FILE.csv (without input: the worked example)");
    if (counts && !input) cli_usage_error("--counts: only with --input");
    if (svg && !curve) cli_usage_error("--svg: only with --curve");
    if (out && !curve && !input) cli_usage_error("--out: only with --curve or --input");
    if (worked_flags && (curve || input || list))
        cli_usage_error("--gamma/--alpha: only for the worked example (use --gammas with --curve, or --loss)");

    if (list) list_losses();
    else if (curve) run_curve(gammas, ng, out, svg);
    else if (input) run_input(spec, input, counts, step, total, out);
    else worked_example(gamma, alpha, use_alpha);
    if (fflush(stdout) != 0 || ferror(stdout)) cli_fatal("stdout: write failed");
    return 0;
}
