/* libra-predict: applies a trained model to images (a data source or a list of files) and
 * writes one CSV row per image: its file (or index), its label when the source has one, the
 * predicted class and the probability of every class; optionally corrected for the class
 * prior of deployment and decided with a threshold for one class (given, or chosen for a
 * target recall on the validation scores the checkpoint keeps). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "libra/metrics.h"
#include "libra/train.h"

static const char usage[] =
    "Usage: libra-predict --model FILE --out FILE.csv [options] [--data SOURCE | IMAGE...]\n"
    "Predicts every readable image of a data source (folder, csv:, idx:, fmnist) or of the image\n"
    "files given, resized and normalised as in training, and writes one CSV row per image.\n"
    "\n"
    "  --model FILE           the checkpoint (libra-train --save; the kept model under --keep best)\n"
    "  --out FILE             the CSV: path (or index), label (when the source has labels),\n"
    "                         predicted, then p_<class> per class\n"
    "  --part NAME            for IDX and Fashion-MNIST sources: test (default) or train\n"
    "  --prior NAME=P,...     the class prior of deployment (every class once; normalised):\n"
    "                         probabilities are corrected for prior shift from the training prior\n"
    "  --threshold NAME=T     predict NAME when its probability is >= T (else the most probable other)\n"
    "  --target-recall NAME=R the largest threshold for NAME that reaches recall >= R on the\n"
    "                         validation scores kept in the checkpoint (or on --calibrate-on)\n"
    "  --calibrate-on SOURCE  labelled data to choose the --target-recall threshold on instead\n"
    "  --batch N              batch size (default 256)\n"
    "  --threads N            threads for the matrix products (default 1)\n"
    "  --quiet                no summary, only errors and warnings\n"
    "  --help                 this text\n"
    "\n"
    "%s"
    "  (the data flags default to the checkpoint's: --data, --classes, --strict matter here)\n"
    "\n"
    "Exit status: 0 success, 1 runtime error (file, data, model/data mismatch), 2 bad flag or value.\n";

enum { OPT_MODEL = 1, OPT_OUT, OPT_PART, OPT_PRIOR, OPT_THRESHOLD, OPT_RECALL, OPT_CALIBRATE, OPT_BATCH, OPT_THREADS,
       OPT_QUIET };

static const struct option longopts[] = {{"model", required_argument, 0, OPT_MODEL},
                                         {"out", required_argument, 0, OPT_OUT},
                                         {"part", required_argument, 0, OPT_PART},
                                         {"prior", required_argument, 0, OPT_PRIOR},
                                         {"threshold", required_argument, 0, OPT_THRESHOLD},
                                         {"target-recall", required_argument, 0, OPT_RECALL},
                                         {"calibrate-on", required_argument, 0, OPT_CALIBRATE},
                                         {"batch", required_argument, 0, OPT_BATCH},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_DATA_LONGOPTS,
                                         {0, 0, 0, 0}};

typedef struct {
    const char *model, *out, *prior, *threshold, *recall, *calibrate;
    int idx_train, batch, threads, quiet, has_data;
    char **files;
    int n_files;
    cli_data_flags df;
} flags;

static void parse_flags(int argc, char **argv, flags *f)
{
    f->batch = 256;
    f->threads = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': printf(usage, cli_data_help); exit(0);
        case OPT_MODEL: f->model = optarg; break;
        case OPT_OUT: f->out = optarg; break;
        case OPT_PART:
            if (strcmp(optarg, "test") && strcmp(optarg, "train")) cli_usage_error("--part: '%s' is not test or train", optarg);
            f->idx_train = !strcmp(optarg, "train");
            break;
        case OPT_PRIOR: f->prior = optarg; break;
        case OPT_THRESHOLD: f->threshold = optarg; break;
        case OPT_RECALL: f->recall = optarg; break;
        case OPT_CALIBRATE: f->calibrate = optarg; break;
        case OPT_BATCH: f->batch = (int)cli_long("batch", optarg, 1, 65536); break;
        case OPT_THREADS: f->threads = (int)cli_long("threads", optarg, 1, 256); break;
        case OPT_QUIET: f->quiet = 1; break;
        default:
            if (!cli_data_flag(&f->df, c, optarg)) cli_bad_option();
            f->has_data |= c == CLI_OPT_DATA || c == CLI_OPT_PRESET;
        }
    }
    f->files = argv + optind;
    f->n_files = argc - optind;
    if (!f->model) cli_usage_error("--model FILE is required");
    if (!f->out) cli_usage_error("--out FILE is required");
    if (f->n_files && f->has_data) cli_usage_error("give --data SOURCE or image files, not both");
    if (f->threshold && f->recall) cli_usage_error("--threshold and --target-recall: give one of them");
    if (f->calibrate && !f->recall) cli_usage_error("--calibrate-on chooses the --target-recall threshold; give that too");
}

/* ---- the model and what the checkpoint says about it ---- */

typedef struct {
    lb_checkpoint ck;
    lb_model *m;
    int C;
    const char **names;   /* the model's classes, borrowed from ck */
    int *train_counts;    /* the training prior */
    float mean[3], std[3];
    double *deploy;       /* --prior, or NULL */
    int positive;         /* the class of --threshold / --target-recall, or -1 */
    double t;             /* its threshold */
} predictor;

/* The model's class of that name, or -1. */
static int find_class(const predictor *p, const char *name, size_t len)
{
    for (int k = 0; k < p->C; k++)
        if (strlen(p->names[k]) == len && !strncmp(p->names[k], name, len)) return k;
    return -1;
}

/* "PROG: WHERE: WHAT'NAME' is not a class of the model (A, B)", then exit with code. */
static void not_a_class(const predictor *p, const char *where, const char *what, const char *name, size_t len, int code)
{
    fprintf(stderr, "%s: %s: %s'%.*s' is not a class of the model (", cli_prog, where, what, (int)len, name);
    for (int k = 0; k < p->C; k++) fprintf(stderr, "%s%s", k ? ", " : "", p->names[k]);
    fprintf(stderr, ")\n");
    exit(code);
}

static int class_index(const predictor *p, const char *name, size_t len, const char *flag)
{
    int k = find_class(p, name, len);
    if (k < 0) not_a_class(p, flag, "", name, len, CLI_EXIT_USAGE);
    return k;
}

/* Probabilities of n rows of logits: corrected to the --prior if given, else the softmax. */
static void to_probabilities(const predictor *p, const float *logits, int n, float *probs, const char *what)
{
    int rc = p->deploy ? lb_prior_shift(logits, (size_t)n, p->C, p->train_counts, p->deploy, probs)
                       : lb_softmax_rows(logits, (size_t)n, p->C, probs);
    if (rc != LB_OK) cli_fatal_lib(what);
}

/* "NAME=V": the class and V in [lo, hi]. */
static int class_value(const predictor *p, const char *item, size_t len, const char *flag, double lo, double hi,
                       double *v)
{
    const char *eq = memchr(item, '=', len);
    if (!eq) cli_usage_error("%s: '%.*s' is not NAME=VALUE", flag, (int)len, item);
    int k = class_index(p, item, (size_t)(eq - item), flag);
    char num[64];
    snprintf(num, sizeof num, "%.*s", (int)(len - (size_t)(eq + 1 - item)), eq + 1);
    *v = cli_double(flag, num, lo, hi);
    return k;
}

/* --prior NAME=P,...: every class once, then normalised. */
static void parse_prior(predictor *p, const char *spec)
{
    p->deploy = calloc((size_t)p->C, sizeof(double));
    char *given = calloc((size_t)p->C, 1);
    if (!p->deploy || !given) cli_fatal("out of memory");
    double sum = 0;
    for (const char *s = spec; *s;) {
        size_t n = strcspn(s, ",");
        double v;
        int k = class_value(p, s, n, "--prior", 0.0, 1e12, &v);
        if (given[k]) cli_usage_error("--prior: class '%s' is given twice", p->names[k]);
        given[k] = 1;
        p->deploy[k] = v;
        sum += v;
        s += n + (s[n] == ',');
    }
    for (int k = 0; k < p->C; k++)
        if (!given[k]) cli_usage_error("--prior: class '%s' is missing (give every class once)", p->names[k]);
    if (!(sum > 0)) cli_usage_error("--prior: the priors sum to 0");
    free(given);
    for (int k = 0; k < p->C; k++) p->deploy[k] /= sum;
}

static void load_model(predictor *p, const flags *f)
{
    if (lb_checkpoint_read(&p->ck, f->model) != LB_OK) cli_fatal("--model: %s", lb_last_error());
    if (!(p->m = lb_model_new_checkpoint(&p->ck))) cli_fatal("--model %s: %s", f->model, lb_last_error());
    p->C = lb_model_n_outputs(p->m);
    if (!(p->names = malloc(sizeof(char *) * (size_t)p->C)) || !(p->train_counts = calloc((size_t)p->C, sizeof(int))))
        cli_fatal("out of memory");
    if (cli_checkpoint_classes(&p->ck, p->names, p->C) != p->C) cli_fatal("--model %s: classes and outputs differ", f->model);
    if (!cli_checkpoint_norm(&p->ck, p->m->in_c, p->mean, p->std))
        cli_fatal("--model %s: the checkpoint does not record its normalisation (norm_mean, norm_std)", f->model);
    cli_checkpoint_counts(&p->ck, p->train_counts, p->C);
    p->positive = -1;
    if (f->prior) parse_prior(p, f->prior);
    const char *op = f->threshold ? f->threshold : f->recall;
    if (op) p->positive = class_value(p, op, strlen(op), f->threshold ? "--threshold" : "--target-recall",
                                      f->threshold ? 0.0 : 1e-9, 1.0, &p->t);
}

/* ---- data ---- */

/* The images to predict: the files given, or every image of the source. */
static lb_dataset *open_images(const predictor *p, flags *f, const char *source)
{
    lb_data_opts o;
    lb_data_opts_init(&o);
    cli_data_from_checkpoint(&p->ck, &o, 1);
    lb_dataset *ds;
    if (!source && f->n_files) {
        ds = lb_dataset_new_files((const char *const *)f->files, f->n_files, p->m->in_c, p->m->in_h, p->m->in_w, o.strict);
    } else {
        cli_data_apply(&f->df, &o);
        if (source && lb_data_opts_set(&o, "data", source) != LB_OK) cli_usage_error("--calibrate-on: %s", lb_last_error());
        lb_free(o.classes); /* the data's classes are matched to the model's by name (model_labels) */
        o.classes = NULL;
        o.channels = p->m->in_c;
        o.height = p->m->in_h;
        o.width = p->m->in_w;
        ds = lb_dataset_open(&o, source ? 0 : f->idx_train);
    }
    lb_data_opts_free(&o);
    if (!ds) cli_fatal("%s: %s", source ? "--calibrate-on" : "data", lb_last_error());
    int skipped = ds->warnings.n;
    cli_print_warnings(&ds->warnings, skipped);
    return ds;
}

/* The data's labels as the model's class indices (by name); -1 stays unlabelled. */
static int *model_labels(const predictor *p, const lb_dataset *ds)
{
    int *map = malloc(sizeof(int) * (size_t)(ds->n_classes + 1)), *y = malloc(sizeof(int) * (size_t)(ds->n + 1));
    if (!map || !y) cli_fatal("out of memory");
    for (int c = 0; c < ds->n_classes; c++) {
        const char *name = ds->class_names[c];
        if ((map[c] = find_class(p, name, strlen(name))) < 0) not_a_class(p, ds->source, "class ", name, strlen(name), CLI_EXIT_RUNTIME);
    }
    for (int i = 0; i < ds->n; i++) y[i] = ds->labels[i] < 0 ? -1 : map[ds->labels[i]];
    free(map);
    return y;
}

/* Probabilities of every image of ds (prior-corrected with --prior), n * C floats. */
static float *probabilities(const predictor *p, const flags *f, const lb_dataset *ds)
{
    int *idx = malloc(sizeof(int) * (size_t)(ds->n + 1));
    float *logits = malloc(sizeof(float) * ((size_t)ds->n * p->C + 1)),
          *probs = malloc(sizeof(float) * ((size_t)ds->n * p->C + 1));
    lb_batcher *b = lb_batcher_new(ds, f->batch, p->mean, p->std, NULL);
    lb_graph *g = lb_graph_new();
    if (!idx || !logits || !probs || !b || !g) cli_fatal("out of memory for %d images", ds->n);
    for (int i = 0; i < ds->n; i++) idx[i] = i;
    if (lb_predict(p->m, g, b, idx, ds->n, logits) != LB_OK) cli_fatal_lib("prediction");
    to_probabilities(p, logits, ds->n, probs, "probabilities");
    lb_graph_free(g);
    lb_batcher_free(b);
    free(logits);
    free(idx);
    return probs;
}

/* ---- the operating point ---- */

/* The validation scores the checkpoint keeps (prior-corrected like the predictions). */
static float *kept_validation(const predictor *p, const flags *f, int **y, int *n)
{
    const lb_checkpoint *ck = &p->ck;
    if (!ck->val_logits || ck->val_classes != p->C)
        cli_fatal("--target-recall: %s keeps no validation scores (trained without a validation split, or by an "
                  "older libra); give --calibrate-on SOURCE with labelled images",
                  f->model);
    float *probs = malloc(sizeof(float) * ((size_t)ck->n_val * p->C + 1));
    if (!probs) cli_fatal("out of memory");
    to_probabilities(p, ck->val_logits, ck->n_val, probs, "validation scores");
    *y = malloc(sizeof(int) * ((size_t)ck->n_val + 1));
    if (!*y) cli_fatal("out of memory");
    memcpy(*y, ck->val_labels, sizeof(int) * (size_t)ck->n_val);
    *n = ck->n_val;
    return probs;
}

/* --target-recall: the threshold from the calibration scores, said with what it gives there. */
static void choose_threshold(predictor *p, flags *f)
{
    int n, *y;
    float *probs;
    const char *where;
    lb_dataset *cal = NULL;
    if (f->calibrate) {
        cal = open_images(p, f, f->calibrate);
        y = model_labels(p, cal);
        probs = probabilities(p, f, cal);
        n = cal->n;
        where = f->calibrate;
    } else {
        probs = kept_validation(p, f, &y, &n);
        where = "the validation split kept in the checkpoint";
    }
    float *s = malloc(sizeof(float) * ((size_t)n + 1));
    if (!s) cli_fatal("out of memory");
    for (int i = 0; i < n; i++) s[i] = probs[(size_t)i * p->C + p->positive];
    double target = p->t, prec, rec;
    if (lb_threshold_for_recall(s, y, (size_t)n, p->positive, target, &p->t, &prec, &rec) != LB_OK)
        cli_fatal("--target-recall: %s: %s", where, lb_last_error());
    fprintf(stderr, "%s: threshold for %s: %.6g (recall %.4f >= %.4g, precision %.4f on %d images of %s)\n", cli_prog,
            p->names[p->positive], p->t, rec, target, prec, n, where);
    free(s);
    free(y);
    free(probs);
    lb_dataset_free(cal);
}

/* ---- output ---- */

static void write_csv(const predictor *p, const flags *f, const lb_dataset *ds, const int *y, const float *probs,
                      const int *pred, int labelled)
{
    lb_buf b = {0};
    lb_buf_puts(&b, ds->paths ? "path" : "index");
    if (labelled) lb_buf_puts(&b, ",label");
    lb_buf_puts(&b, ",predicted");
    for (int k = 0; k < p->C; k++) {
        char col[600];
        snprintf(col, sizeof col, "p_%s", p->names[k]);
        lb_buf_puts(&b, ",");
        lb_buf_csv_field(&b, col);
    }
    lb_buf_puts(&b, "\r\n");
    for (int i = 0; i < ds->n; i++) {
        if (ds->paths) lb_buf_csv_field(&b, ds->paths[i]);
        else lb_buf_printf(&b, "%d", i);
        if (labelled) {
            lb_buf_puts(&b, ",");
            lb_buf_csv_field(&b, p->names[y[i]]);
        }
        lb_buf_puts(&b, ",");
        lb_buf_csv_field(&b, p->names[pred[i]]);
        for (int k = 0; k < p->C; k++) lb_buf_printf(&b, ",%.6g", (double)probs[(size_t)i * p->C + k]);
        lb_buf_puts(&b, "\r\n");
    }
    if (lb_buf_status(&b, "--out") != LB_OK || lb_buf_write(&b, f->out) != LB_OK) cli_fatal("--out: %s", lb_last_error());
    lb_buf_free(&b);
}

/* With labels: the metrics of the decisions made (argmax, or the operating point). */
static void print_metrics(const predictor *p, const int *y, const int *pred, int n)
{
    int64_t *conf = calloc((size_t)p->C * p->C, sizeof *conf);
    lb_metrics mt;
    if (!conf || lb_confusion_add(conf, p->C, y, pred, (size_t)n) != LB_OK ||
        lb_metrics_from_confusion(&mt, conf, p->C, NULL, NULL) != LB_OK)
        cli_fatal_lib("metrics");
    printf("accuracy %.4f | balanced accuracy %.4f | macro F1 %.4f on %d labelled images\n", mt.accuracy,
           mt.balanced_accuracy, mt.macro_f1, n);
    for (int k = 0; k < p->C; k++)
        printf("  %-20s recall %.4f  precision %.4f\n", p->names[k], mt.recall[k], mt.precision[k]);
    lb_metrics_free(&mt);
    free(conf);
}

int main(int argc, char **argv)
{
    cli_init(argv);
    flags f;
    memset(&f, 0, sizeof f);
    parse_flags(argc, argv, &f);
    if (lb_set_threads(f.threads) != LB_OK) cli_fatal("--threads %d: %s", f.threads, lb_last_error());
    predictor p;
    memset(&p, 0, sizeof p);
    load_model(&p, &f);
    if (f.recall) choose_threshold(&p, &f);
    lb_dataset *ds = open_images(&p, &f, NULL);
    int *y = model_labels(&p, ds), *pred = malloc(sizeof(int) * ((size_t)ds->n + 1));
    float *probs = probabilities(&p, &f, ds);
    if (!pred) cli_fatal("out of memory");
    if (p.positive >= 0) lb_predict_with_threshold(probs, (size_t)ds->n, p.C, p.positive, p.t, pred);
    else lb_argmax_rows(probs, (size_t)ds->n, p.C, pred);
    int labelled = ds->n_classes > 0;
    write_csv(&p, &f, ds, y, probs, pred, labelled);
    if (!f.quiet) {
        printf("predicted %d images of %s into %s\n", ds->n, ds->source, f.out);
        if (labelled) print_metrics(&p, y, pred, ds->n);
    }
    free(probs);
    free(pred);
    free(y);
    lb_dataset_free(ds);
    free(p.deploy);
    free(p.names);
    free(p.train_counts);
    lb_model_free(p.m);
    lb_checkpoint_free(&p.ck);
    return 0;
}
