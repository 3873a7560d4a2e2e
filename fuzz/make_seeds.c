/* Writes the seed corpora fuzz/corpus/<target>/ from libra's own writers (IDX, checkpoint,
 * run record) and stb_image_write (images), plus spec strings from the docs, the presets
 * in datasets/ and a few CSV files written here. Run once by hand when a format changes:
 *   build-fuzz/make_seeds /work/main
 * Every seed carries the harness's leading bytes (flags, lengths) described in each
 * fuzz/fuzz_<target>.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include <libra/data.h>
#include <libra/report.h>
#include <libra/study.h>
#include <libra/train.h>

static const char *g_root;
static char g_tmp[256];

static void die(const char *what)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, lb_last_error());
    exit(1);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) die(path);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* corpus/<target>/<name> = prefix (np bytes) + body (nb bytes). */
static void seed(const char *target, const char *name, const void *prefix, size_t np, const void *body, size_t nb)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", g_root, target);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(prefix, 1, np, f) != np || (nb && fwrite(body, 1, nb, f) != nb) || fclose(f)) die(path);
}

static const char *tmpfile_path(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", g_tmp, name);
    return p;
}

/* ---- idx: flags, u16 image length, image file, label file ---- */
static void idx_seed(const char *name, int flags, int ndim, const uint32_t *dims, int gz_files)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= dims[i];
    uint8_t px[256], lab[16];
    for (size_t i = 0; i < count; i++) px[i] = (uint8_t)(i * 37);
    for (uint32_t i = 0; i < dims[0]; i++) lab[i] = (uint8_t)(i % 3);
    if (lb_idx_write(tmpfile_path("i"), px, ndim, dims, gz_files) || lb_idx_write(tmpfile_path("l"), lab, 1, dims, gz_files))
        die("idx write");
    size_t ni, nl;
    unsigned char *fi = slurp(tmpfile_path("i"), &ni), *fl = slurp(tmpfile_path("l"), &nl);
    unsigned char *body = malloc(ni + nl);
    memcpy(body, fi, ni);
    memcpy(body + ni, fl, nl);
    unsigned char head[3] = {(unsigned char)flags, (unsigned char)(ni & 0xff), (unsigned char)(ni >> 8)};
    seed("idx", name, head, 3, body, ni + nl);
    free(body);
    free(fi);
    free(fl);
}

static void idx_seeds(void)
{
    uint32_t d3[3] = {4, 3, 3}, d4[4] = {2, 3, 2, 2}, d2[2] = {3, 5};
    idx_seed("raw_nhw", 0, 3, d3, 0);
    idx_seed("raw_nhw_k10", 4, 3, d3, 0);
    idx_seed("raw_nchw", 0, 4, d4, 0);
    idx_seed("raw_nw", 0, 2, d2, 0);
    idx_seed("harness_gzip", 3, 3, d3, 0);   /* harness gzips both files */
    idx_seed("file_gzip", 0, 3, d3, 1);      /* the files are gzip already */
}

/* ---- folder: flags, image file ---- */
static void image_seed(const char *name, int flags, const char *fmt, int w, int h, int comp)
{
    unsigned char px[16 * 16 * 3];
    for (int i = 0; i < w * h * comp; i++) px[i] = (unsigned char)(i * 29 + 7);
    const char *p = tmpfile_path("img");
    int ok = 0;
    if (!strcmp(fmt, "png")) ok = stbi_write_png(p, w, h, comp, px, w * comp);
    else if (!strcmp(fmt, "bmp")) ok = stbi_write_bmp(p, w, h, comp, px);
    else if (!strcmp(fmt, "tga")) ok = stbi_write_tga(p, w, h, comp, px);
    else if (!strcmp(fmt, "jpg")) ok = stbi_write_jpg(p, w, h, comp, px, 80);
    if (!ok) die(fmt);
    size_t n;
    unsigned char *b = slurp(p, &n);
    unsigned char f = (unsigned char)flags;
    seed("folder", name, &f, 1, b, n);
    free(b);
}

static void folder_seeds(void)
{
    image_seed("png_rgb", 0, "png", 4, 4, 3);
    image_seed("png_gray_c1", 2, "png", 5, 3, 1);
    image_seed("png_rgba_strict", 1, "png", 3, 3, 4);
    image_seed("bmp_rgb_5x3", 4, "bmp", 4, 2, 3);
    image_seed("tga_rgb", 8, "tga", 2, 2, 3);
    image_seed("jpg_rgb", 0, "jpg", 8, 8, 3);
    image_seed("jpg_gray_c1", 2, "jpg", 9, 7, 1);
    const char ppm[] = "P6\n2 1\n255\n\x10\x20\x30\x40\x50\x60";
    unsigned char f = 8;
    seed("folder", "ppm_nonstrict", &f, 1, ppm, sizeof ppm - 1);
    const char junk[] = "not an image";
    seed("folder", "junk_nonstrict", &f, 1, junk, sizeof junk - 1);
}

/* ---- checkpoint: flags, file ---- */
static void ckpt_seed(const char *name, const char *arch, int c, int h, int w, int classes, int optim, int curve)
{
    lb_model *m = lb_model_new_arch(arch, c, h, w, classes);
    if (!m) die(arch);
    for (size_t i = 0; i < m->params->size; i++) m->params->data[i] = (float)((int)(i % 7) - 3) * 0.125f;
    lb_optim *o = NULL;
    if (optim) {
        lb_optim_config cfg = lb_optim_defaults(optim == 1 ? LB_OPTIM_ADAM : LB_OPTIM_SGD);
        if (optim == 2) cfg.momentum = 0.9f;
        o = lb_optim_new(&cfg, m->params->size);
        if (!o) die("optim");
        o->step = 5;
    }
    lb_checkpoint ck;
    lb_checkpoint_init(&ck);
    if (lb_checkpoint_capture(&ck, m, o, 5) || lb_checkpoint_set(&ck, "loss", "focal:gamma=2") ||
        lb_checkpoint_set(&ck, "data", "fmnist"))
        die("capture");
    lb_rng_seed(&ck.data_rng, 7);
    if (curve) {
        lb_curve_append(&ck.loss, 2, 2.25f);
        lb_curve_append(&ck.loss, 4, 1.5f);
        ck.window_sum = 1.25;
        ck.window_n = 1;
    }
    static int vlab[3] = {0, 1, 1};
    static float vlog[3 * 8];
    if (curve) { /* keep best and the validation scores: the BEST and VALS sections */
        ck.best_step = 4;
        ck.best_params = ck.params; /* borrowed for the write */
        ck.best_state = ck.state;
        ck.n_val = 3;
        ck.val_classes = classes;
        ck.val_labels = vlab;
        for (int i = 0; i < 3 * classes; i++) vlog[i] = (float)(i % 5) - 2.0f;
        ck.val_logits = vlog;
    }
    const char *p = tmpfile_path("ckpt");
    if (lb_checkpoint_write(&ck, p)) die("save");
    size_t n;
    unsigned char *b = slurp(p, &n);
    unsigned char f = 0;
    seed("checkpoint", name, &f, 1, b, n);
    char fixed[128];
    snprintf(fixed, sizeof fixed, "%s_fixcrc", name);
    f = 3;
    seed("checkpoint", fixed, &f, 1, b, n);
    free(b);
    ck.best_params = ck.best_state = NULL;
    ck.val_labels = NULL;
    ck.val_logits = NULL;
    lb_checkpoint_free(&ck);
    lb_optim_free(o);
    lb_model_free(m);
}

static void checkpoint_seeds(void)
{
    ckpt_seed("linear", "linear", 1, 4, 4, 3, 0, 0);
    ckpt_seed("mlp_adam", "mlp:hidden=4", 1, 3, 3, 2, 1, 1);
    ckpt_seed("smallcnn_sgd", "smallcnn:bn,c1=2,c2=2,fc=4", 1, 4, 4, 3, 2, 1);
}

/* ---- spec: parser byte, parameter byte, spec, NUL, extra ---- */
static void spec_seed(int which, int param, const char *spec, const char *extra, size_t nextra)
{
    static int k;
    char name[32];
    snprintf(name, sizeof name, "s%d_%03d", which, k++);
    size_t ns = strlen(spec);
    unsigned char *body = malloc(ns + 1 + nextra);
    memcpy(body, spec, ns + 1);
    if (nextra) memcpy(body + ns + 1, extra, nextra);
    unsigned char head[2] = {(unsigned char)which, (unsigned char)param};
    seed("spec", name, head, 2, body, ns + (nextra ? 1 + nextra : 0));
    free(body);
}

static void spec_seeds(void)
{
    static const char *const losses[] = {
        "ce", "ce:smoothing=0.1", "bce:pos_weight=2", "wce:weights=inverse", "wce:weights=1,2,4",
        "wce:weights=effective,beta=0.99,reduction=sum", "focal:gamma=2,alpha=0.25,0.75",
        "sigmoid_focal:gamma=2,alpha=0.25", "cb_focal:gamma=1,beta=0.999", "ldam:max_m=0.5,s=30,drw=0.8",
        "ldam:drw_step=3", "logit_adjust:tau=1", "balanced_softmax:reduction=none", NULL};
    /* parameter 2: 3 classes with counts; 1: 2 classes; 72 (bit 6): no counts; 132 (bit 7): an empty class */
    for (int i = 0; losses[i]; i++) spec_seed(0, strstr(losses[i], "0.25,0.75") ? 1 : 2 + 10 * (i % 6), losses[i], NULL, 0);
    spec_seed(0, 72, "focal:gamma=1", NULL, 0);
    spec_seed(0, 132, "wce:weights=inverse", NULL, 0);
    static const char *const profiles[] = {"none", "longtail:100", "step:100,0.5", "binary:2,5", "binary:gamma,50",
                                           "counts:5,4,3", NULL};
    for (int i = 0; profiles[i]; i++) spec_seed(1, i == 5 ? 2 : 9, profiles[i], NULL, 0);
    static const char *const samplers[] = {"shuffle", "undersample:ratio=2", "oversample", "balanced", "sqrt:q=0.3",
                                           "progressive:epochs=5", NULL};
    const char labels[] = "\x00\x00\x00\x00\x01\x01\x02";
    for (int i = 0; samplers[i]; i++) spec_seed(2, 2, samplers[i], labels, sizeof labels - 1);
    for (int i = 0; lb_default_strategies[i]; i++) spec_seed(3, 2, lb_default_strategies[i], NULL, 0);
    spec_seed(3, 2, "focal:gamma=0.5|1|2,alpha=0.25|0.75@oversample:ratio=2+posthoc", NULL, 0);
    spec_seed(4, 0, "focal:gamma=2,alpha=0.25,ce@oversample", NULL, 0);
    spec_seed(4, 0, "ce; wce:weights=1,2,4 ;ldam:drw=0.8|0.9", NULL, 0);
    static const char *const sources[] = {"fmnist", "fmnist:/usr/share/datasets/fashion-mnist", "folder:datasets/x",
                                          "idx:a.gz,b.gz,c,d", "28x28", "32", NULL};
    for (int i = 0; sources[i]; i++) spec_seed(5, 0, sources[i], NULL, 0);
    spec_seed(6, 3, "natural", NULL, 0);
    spec_seed(6, 3, "random", NULL, 0);
    spec_seed(6, 3, "3,1,0,2", NULL, 0);
    static const char *const archs[] = {"smallcnn", "smallcnn:bn,dropout=0.3,c1=8,c2=16,fc=32", "mlp:hidden=64",
                                        "linear", "smallcnn:bn=0,c1=4", "resnet:depth=8,width=2",
                                        "conv:4,3;bn;relu;pool:2;conv:8,3,s=2,p=0;leaky_relu:0.1;gap;dense",
                                        "conv:2,1,bias=1;avgpool:2,s=1;dropout:0.5;flatten;dense:3;relu;dense", NULL};
    for (int i = 0; archs[i]; i++) spec_seed(7, 5 + 40 * i, archs[i], NULL, 0);
    static const char *const mixes[] = {"none", "mixup", "mixup:alpha=0.2", "remix", "remix:kappa=2,tau=0.3", NULL};
    for (int i = 0; mixes[i]; i++) spec_seed(8, 3 + i, mixes[i], labels, sizeof labels - 1);
    static const char *const stages[] = {"crt", "crt:steps=20+taunorm", "lws:steps=5", "fsmote:k=3,steps=2+crt", NULL};
    for (int i = 0; stages[i]; i++) spec_seed(9, 7 * i, stages[i], NULL, 0);
    static const char *const synths[] = {"smote", "smote:k=2", "borderline_smote:k=2,m=4", "adasyn:k=3",
                                         "ros_noise:shrinkage=0.5", "smote:ratio=0.5", "smote:counts=9,9,9", NULL};
    const char points[] = "\x01\x02\x03\x04\x05\x01\x09\x0c\x02\x02\x0e\x03\x07\x07\x08\x01\x0a\x0b\x04\x06";
    for (int i = 0; synths[i]; i++) spec_seed(10, i == 5 ? 1 : 2, synths[i], points, sizeof points - 1);
}

/* ---- preset: the file ---- */
static void preset_seeds(void)
{
    static const char *const names[] = {"fmnist-binary", "fmnist-lt100", "fmnist-step100", "sample-folder", NULL};
    for (int i = 0; names[i]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/datasets/%s.ini", g_root, names[i]);
        size_t n;
        unsigned char *b = slurp(p, &n);
        seed("preset", names[i], "", 0, b, n);
        free(b);
    }
    const char idx[] = "data = idx:a,b,/abs/c,d\nsize = 8x8\nchannels = 1\nstrict = yes\ntest = 0.3\n";
    seed("preset", "idx_paths", "", 0, idx, sizeof idx - 1);
}

/* ---- record: the file ---- */
static void record_seed(const char *name, int classes, int grid, int posthoc)
{
    lb_run_record r;
    lb_run_record_init(&r);
    if (lb_run_record_set_strategy(&r, grid ? "focal:gamma=1|2@oversample" : "ce")) die("strategy");
    r.seed = 42;
    r.steps = 120;
    r.wall_seconds = 1.5f;
    r.images_per_sec = 3000.25f;
    int64_t cm[9] = {5, 1, 0, 2, 3, 1, 0, 1, 4};
    int64_t cm2[4] = {7, 1, 2, 6};
    int train[3] = {100, 20, 5};
    if (lb_metrics_from_confusion(&r.metrics, classes == 3 ? cm : cm2, classes, train, NULL)) die("metrics");
    lb_curve_append(&r.loss, 10, 2.0f);
    lb_curve_append(&r.loss, 20, 1.25f);
    lb_curve_append(&r.val_bacc, 60, 0.5f);
    if (grid) {
        lb_run_record_add_grid(&r, "focal:gamma=1", 0.5f);
        lb_run_record_add_grid(&r, "focal:gamma=2", 0.625f);
        r.grid_chosen = 1;
    }
    if (posthoc) {
        lb_metrics m;
        if (lb_metrics_from_confusion(&m, classes == 3 ? cm : cm2, classes, NULL, NULL)) die("metrics");
        lb_run_record_add_posthoc(&r, "logit_adjust", 1.0f, &m);
        lb_metrics_free(&m);
    }
    if (classes == 2) { /* a binary task's curves and operating point */
        static float x[3] = {0, 0.5f, 1}, y[3] = {1, 0.75f, 0.5f}, fx[3] = {0, 0.25f, 1}, fy[3] = {0, 0.5f, 1};
        float *a = malloc(sizeof x), *b = malloc(sizeof x), *c = malloc(sizeof x), *d = malloc(sizeof x);
        if (!a || !b || !c || !d) die("curves");
        memcpy(a, x, sizeof x), memcpy(b, y, sizeof y), memcpy(c, fx, sizeof fx), memcpy(d, fy, sizeof fy);
        r.pr = (lb_xy){3, a, b};
        r.roc = (lb_xy){3, c, d};
        r.op = (lb_operating_point){1, 0, 0.95f, 0.25f, 1.0f, 0.5f, 0.875f, 0.625f};
    }
    const char *p = tmpfile_path("rec.json");
    if (lb_run_record_write_json(&r, p)) die("write json");
    size_t n;
    unsigned char *b = slurp(p, &n);
    seed("record", name, "", 0, b, n);
    free(b);
    lb_run_record_free(&r);
}

/* ---- csv: flags, file (see fuzz/fuzz_csv.c for the flag bits) ---- */
static void csv_seed(const char *name, int flags, const char *text)
{
    unsigned char f = (unsigned char)flags;
    seed("csv", name, &f, 1, text, strlen(text));
}

static void csv_seeds(void)
{
    csv_seed("plain", 0, "a.png,cat\nb/c.jpg,dog\n/abs/d.PNG,cat\n");
    csv_seed("header", 0, "file,label\na.png,cat\nb.webp,dog\n");
    csv_seed("named_split", 2 | 16, "path,label,split\na.png,cat,train\nb.png,dog,val\nc.png,cat,Test\n");
    csv_seed("index_split_root", 4 | 8 | 16, "a.png,cat,train\nb.tiff, dog ,VALID\nc.gif,cat,validation\n");
    csv_seed("quoted_crlf_bom", 0,
             "\xEF\xBB\xBF" "file,label\r\n\"a,1.png\",\"x \"\"y\"\"\"\r\n"
             "\"multi\nline.png\",z\r\n  \"s p.png\" , w \r\n");
    csv_seed("bad_rows", 16, "path,label,split\na.png\n,cat,train\nb.png, ,test\nc.png,cat,holdout\nd.png,cat,test\n");
    csv_seed("bad_rows_strict", 1 | 16, "path,label,split\nd.png,cat,test\nc.png,cat,\n");
    csv_seed("blank_lines_no_notes", 8 | 32, "\n  \na.png,cat\n\t\n\nb.png,dog\r\n  ");
    csv_seed("mixed_columns", 2 | 4, "path,label\na.png,cat\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds LIBRA_SOURCE_DIR\n");
        return 2;
    }
    g_root = argv[1];
    snprintf(g_tmp, sizeof g_tmp, "/tmp/libra-seeds-XXXXXX");
    if (!mkdtemp(g_tmp)) die("mkdtemp");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus", g_root);
    mkdir(dir, 0755);
    idx_seeds();
    folder_seeds();
    checkpoint_seeds();
    spec_seeds();
    preset_seeds();
    csv_seeds();
    record_seed("plain3", 3, 0, 0);
    record_seed("grid_posthoc3", 3, 1, 1);
    record_seed("binary2", 2, 0, 1);
    static const char *const left[] = {"i", "l", "img", "ckpt", "rec.json", NULL};
    for (int i = 0; left[i]; i++) unlink(tmpfile_path(left[i]));
    rmdir(g_tmp);
    return 0;
}
