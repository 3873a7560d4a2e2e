/* libra-evaluate: loads a checkpoint, evaluates its model on the test (or validation)
 * split of the data it was trained on (or of the data flags given) and prints the
 * metrics as JSON. */
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "libra/report.h"
#include "libra/train.h"

static const char usage[] =
    "Usage: libra-evaluate --model FILE [options] [data flags]\n"
    "Evaluates a checkpoint written by libra-train --save and prints the metrics as JSON.\n"
    "The data flags default to those the model was trained with.\n"
    "\n"
    "  --model FILE           the checkpoint (required)\n"
    "  --split NAME           test (default) or val\n"
    "  --batch N              evaluation batch size (default 256)\n"
    "  --threads N            threads for the matrix products (default 1)\n"
    "  --out FILE             also write the JSON to FILE (temporary file + rename)\n"
    "  --help                 this text\n"
    "\n"
    "%s"
    "\n"
    "Exit status: 0 success, 1 runtime error (file, data, model/data mismatch), 2 bad flag or value.\n";

enum { OPT_MODEL = 1, OPT_SPLIT, OPT_BATCH, OPT_THREADS, OPT_OUT };

static const struct option longopts[] = {{"model", required_argument, 0, OPT_MODEL},
                                         {"split", required_argument, 0, OPT_SPLIT},
                                         {"batch", required_argument, 0, OPT_BATCH},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"out", required_argument, 0, OPT_OUT},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_DATA_LONGOPTS,
                                         {0, 0, 0, 0}};

typedef struct {
    const char *model_path, *out;
    int val, batch, threads;
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
        case OPT_MODEL: f->model_path = optarg; break;
        case OPT_SPLIT:
            if (!strcmp(optarg, "test")) f->val = 0;
            else if (!strcmp(optarg, "val")) f->val = 1;
            else cli_usage_error("--split: '%s' is not test or val", optarg);
            break;
        case OPT_BATCH: f->batch = (int)cli_long("batch", optarg, 1, 65536); break;
        case OPT_THREADS: f->threads = (int)cli_long("threads", optarg, 1, 256); break;
        case OPT_OUT: f->out = optarg; break;
        default:
            if (!cli_data_flag(&f->df, c, optarg)) cli_bad_option();
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!f->model_path) cli_usage_error("--model FILE is required");
}

/* The model and the data it is evaluated on agree on input shape and classes, and the split
 * is not empty; returns its size. */
static int check_fit(const flags *f, const lb_model *m, const lb_data *d)
{
    const lb_split *sp = &d->split;
    const lb_dataset *ds = f->val ? d->train : d->test;
    if (ds->c != m->in_c || ds->h != m->in_h || ds->w != m->in_w)
        cli_fatal("the data's images are %dx%dx%d but the model takes %dx%dx%d (see --channels and --size)", ds->c,
                  ds->h, ds->w, m->in_c, m->in_h, m->in_w);
    if (sp->n_classes != lb_model_n_outputs(m))
        cli_fatal("the data has %d classes but the model has %d outputs", sp->n_classes, lb_model_n_outputs(m));
    int n = f->val ? sp->n_val : sp->n_test;
    if (n == 0) cli_fatal("the %s split is empty%s", f->val ? "validation" : "test", f->val ? " (see --val-fraction)" : "");
    return n;
}

/* The normalisation and training counts of the checkpoint (the data's own without them). */
static void from_checkpoint(const lb_checkpoint *ck, const lb_data *d, int c, float *mean, float *std, int *counts)
{
    if (!cli_checkpoint_norm(ck, c, mean, std)) {
        memcpy(mean, d->mean, 3 * sizeof *mean);
        memcpy(std, d->std, 3 * sizeof *std);
    }
    if (!cli_checkpoint_counts(ck, counts, d->split.n_classes))
        memcpy(counts, d->split.train_counts, sizeof(int) * (size_t)d->split.n_classes);
}

/* The JSON of the evaluation (libra-evaluation format 2, docs/formats.md). */
static void write_json(lb_buf *out, const flags *f, const lb_checkpoint *ck, const lb_model *m, const lb_data_opts *dopts,
                       const lb_data *d, const int *counts, double secs, int n, const lb_metrics *mt)
{
    const lb_split *sp = &d->split;
    lb_jw j;
    lb_jw_init(&j, out);
    lb_jw_object(&j, NULL, 0);
    lb_jw_string(&j, "format", "libra-evaluation");
    lb_jw_int(&j, "format_version", 2);
    lb_jw_string(&j, "program", "libra-evaluate");
    lb_jw_string(&j, "version", lb_version());
    lb_jw_string(&j, "model", f->model_path);
    lb_jw_string(&j, "arch", m->arch);
    lb_jw_int(&j, "steps", ck->step);
    const char *seed = lb_checkpoint_get(ck, "seed");
    lb_jw_int(&j, "seed", seed ? strtoll(seed, NULL, 10) : -1);
    lb_jw_string(&j, "loss", lb_checkpoint_get(ck, "loss"));
    lb_jw_string(&j, "sampler", lb_checkpoint_get(ck, "sampler"));
    lb_jw_string(&j, "data", dopts->data ? dopts->data : "fmnist");
    lb_jw_string(&j, "imbalance", dopts->imbalance ? dopts->imbalance : "none");
    lb_jw_string(&j, "split", f->val ? "val" : "test");
    lb_jw_array(&j, "class_names", 1);
    for (int k = 0; k < sp->n_classes; k++) lb_jw_string(&j, NULL, sp->class_names[k]);
    lb_jw_end(&j, ']');
    lb_jw_ints(&j, "train_counts", counts, (size_t)sp->n_classes);
    lb_jw_int(&j, "skipped_files", d->n_skipped);
    lb_jw_notes(&j, "data_warnings", &d->warnings);
    lb_jw_float(&j, "eval_seconds", secs);
    lb_jw_float(&j, "images_per_second", secs > 0 ? n / secs : 0);
    lb_jw_metrics(&j, mt);
    lb_jw_end(&j, '}');
    lb_buf_puts(out, "\n");
}

int main(int argc, char **argv)
{
    cli_init(argv);
    flags f;
    memset(&f, 0, sizeof f);
    parse_flags(argc, argv, &f);
    if (lb_set_threads(f.threads) != LB_OK) cli_fatal("--threads %d: %s", f.threads, lb_last_error());
    lb_checkpoint ck;
    if (lb_checkpoint_read(&ck, f.model_path) != LB_OK) cli_fatal("--model: %s", lb_last_error());
    lb_data_opts dopts;
    lb_data_opts_init(&dopts);
    cli_data_from_checkpoint(&ck, &dopts, 1);
    cli_data_apply(&f.df, &dopts);
    lb_model *m = lb_model_new_checkpoint(&ck);
    if (!m) cli_fatal("--model %s: %s", f.model_path, lb_last_error());
    lb_data *d = cli_data_load(&dopts, 1);
    cli_check_classes(&ck, &d->split, f.model_path);
    int n = check_fit(&f, m, d), C = d->split.n_classes;
    const lb_split *sp = &d->split;
    float mean[3], std[3];
    int *counts = calloc((size_t)C, sizeof *counts);
    float *logits = malloc((size_t)n * C * sizeof(float)), *probs = malloc((size_t)n * C * sizeof(float));
    if (!counts || !logits || !probs) cli_fatal("out of memory");
    from_checkpoint(&ck, d, (f.val ? d->train : d->test)->c, mean, std, counts);

    double t0 = lb_now();
    lb_batcher *b = lb_batcher_new(f.val ? d->train : d->test, f.batch, mean, std, NULL);
    lb_graph *g = lb_graph_new();
    if (!b || !g) cli_fatal("out of memory");
    if (lb_predict(m, g, b, f.val ? sp->val_idx : sp->test_idx, n, logits) != LB_OK) cli_fatal_lib("evaluation");
    double secs = lb_now() - t0;
    lb_metrics mt;
    if (lb_softmax_rows(logits, (size_t)n, C, probs) != LB_OK ||
        lb_metrics_from_scores(&mt, probs, f.val ? sp->val_y : sp->test_y, (size_t)n, C, counts, NULL) != LB_OK)
        cli_fatal_lib("metrics");
    lb_buf text = {0};
    write_json(&text, &f, &ck, m, &dopts, d, counts, secs, n, &mt);
    if (lb_buf_status(&text, "output") != LB_OK) cli_fatal_lib(NULL);
    /* the file first: nothing is printed as if it succeeded before a write that fails */
    if (f.out && lb_buf_write(&text, f.out) != LB_OK) cli_fatal_lib("--out");
    fwrite(text.p, 1, text.n, stdout);
    lb_buf_free(&text);
    lb_metrics_free(&mt);
    lb_graph_free(g);
    lb_batcher_free(b);
    free(counts);
    free(logits);
    free(probs);
    lb_data_free(d);
    lb_model_free(m);
    lb_data_opts_free(&dopts);
    lb_checkpoint_free(&ck);
    return 0;
}
