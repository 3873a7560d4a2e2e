/* Sequential models written as a list of layers, one spec per layer, ';' between them:
 *   conv:32,3;bn;relu;pool:2;conv:64,3;bn;relu;pool:2;gap;dense
 * Each item is read with the one spec grammar (lb_spec); the canonical form spells out
 * every default, so a checkpoint rebuilds exactly the model it was trained with. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const char *const layer_words[] = {"conv",    "bn",      "relu",    "leaky_relu", "pool", "avgpool",
                                          "gap",     "dropout", "flatten", "dense",      NULL};

int lb__is_layer_list(const char *arch)
{
    if (strchr(arch, ';')) return 1;
    size_t n = strcspn(arch, ":");
    for (int i = 0; layer_words[i]; i++)
        if (strlen(layer_words[i]) == n && strncmp(arch, layer_words[i], n) == 0) return 1;
    return 0;
}

/* A positional integer argument in [lo, hi]; `def` when absent (def < 0: required). */
static int int_arg(const lb_spec *sp, int i, int lo, int hi, int def, const char *what, int *out)
{
    const char *v = lb_spec_arg(sp, i);
    if (!v) {
        if (def >= 0) {
            *out = def;
            return LB_OK;
        }
        return lb_error(LB_EINVAL, "'%s' needs its %s", lb_spec_text(sp), what);
    }
    if (lb_parse_int(v, out) != 0 || *out < lo || *out > hi)
        return lb_error(LB_EINVAL, "'%s': %s '%s' must be an integer in [%d, %d]", lb_spec_text(sp), what, v, lo, hi);
    return LB_OK;
}

/* The value of key as an integer in [lo, hi], or def when absent. */
static int int_key(const lb_spec *sp, const char *key, int lo, int hi, int def, int *out)
{
    double v = def;
    if (lb_spec_get(sp, key) && lb_spec_number(sp, key, lo, hi, &v) != LB_OK) return lb_last_status();
    if (v != (int)v) return lb_error(LB_EINVAL, "'%s': %s=%g must be an integer", lb_spec_text(sp), key, v);
    *out = (int)v;
    return LB_OK;
}

static int next_is_bn(const char *rest)
{
    while (*rest == ' ' || *rest == ';') rest++;
    return strncmp(rest, "bn", 2) == 0 && (rest[2] == '\0' || rest[2] == ';' || rest[2] == ' ');
}

static int add_conv(lb_model *m, const lb_spec *sp, const char *rest, lb_buf *canon)
{
    static const char *const keys[] = {"s", "p", "bias", NULL};
    int f = 0, k = 0, s = 0, p = 0, bias = 0, rc = lb_spec_check(sp, "layer conv", keys, 2);
    if (rc == LB_OK) rc = int_arg(sp, 0, 1, 65536, -1, "number of filters (conv:F,K)", &f);
    if (rc == LB_OK) rc = int_arg(sp, 1, 1, 64, -1, "kernel size (conv:F,K)", &k);
    if (rc == LB_OK) rc = int_key(sp, "s", 1, 64, 1, &s);
    if (rc == LB_OK) rc = int_key(sp, "p", 0, 64, k / 2, &p);
    if (rc == LB_OK) rc = int_key(sp, "bias", 0, 1, !next_is_bn(rest), &bias);
    if (rc == LB_OK) rc = lb_model_add_conv2d(m, f, k, s, p, bias);
    lb_buf_printf(canon, "conv:%d,%d,s=%d,p=%d,bias=%d", f, k, s, p, bias);
    return rc;
}

static int add_pool(lb_model *m, const lb_spec *sp, int avg, lb_buf *canon)
{
    static const char *const keys[] = {"s", NULL};
    int k = 0, s = 0, rc = lb_spec_check(sp, avg ? "layer avgpool" : "layer pool", keys, 1);
    if (rc == LB_OK) rc = int_arg(sp, 0, 1, 4096, -1, "window size (pool:K)", &k);
    if (rc == LB_OK) rc = int_key(sp, "s", 1, 4096, k, &s);
    if (rc == LB_OK) rc = avg ? lb_model_add_avgpool2d(m, k, s) : lb_model_add_maxpool2d(m, k, s);
    lb_buf_printf(canon, "%s:%d,s=%d", avg ? "avgpool" : "pool", k, s);
    return rc;
}

/* A number argument (dropout:P, leaky_relu:A) in [0, 1), def when absent. */
static int fraction_arg(const lb_spec *sp, double def, double *out)
{
    const char *v = lb_spec_arg(sp, 0);
    *out = def;
    if (v && (lb_parse_double(v, out) != 0 || !(*out >= 0 && *out < 1)))
        return lb_error(LB_EINVAL, "'%s': '%s' must be a number in [0, 1)", lb_spec_text(sp), v);
    return LB_OK;
}

static int add_dense(lb_model *m, const lb_spec *sp, int last, int n_classes, lb_buf *canon)
{
    int n = 0, rc = lb_spec_check(sp, "layer dense", NULL, 1);
    if (rc == LB_OK && !lb_spec_arg(sp, 0) && !last)
        rc = lb_error(LB_EINVAL, "'dense' without a size must be the last layer (it has one output per class)");
    if (rc == LB_OK) rc = int_arg(sp, 0, 1, 1 << 20, n_classes, "size (dense:N)", &n);
    if (rc == LB_OK) rc = lb_model_add_dense(m, n, 1);
    if (lb_spec_arg(sp, 0)) lb_buf_printf(canon, "dense:%d", n);
    else lb_buf_puts(canon, "dense");
    return rc;
}

/* One layer item; rest is the text after it (to see whether bn follows a conv). */
static int add_item(lb_model *m, const lb_spec *sp, const char *rest, int last, int n_classes, lb_buf *canon)
{
    const char *name = lb_spec_name(sp);
    double a = 0.01;
    int rc;
    if (!strcmp(name, "conv")) return add_conv(m, sp, rest, canon);
    if (!strcmp(name, "pool") || !strcmp(name, "avgpool")) return add_pool(m, sp, name[0] == 'a', canon);
    if (!strcmp(name, "dense")) return add_dense(m, sp, last, n_classes, canon);
    if (!strcmp(name, "dropout") || !strcmp(name, "leaky_relu")) {
        int drop = name[0] == 'd';
        rc = lb_spec_check(sp, drop ? "layer dropout" : "layer leaky_relu", NULL, 1);
        if (rc == LB_OK && drop && !lb_spec_arg(sp, 0)) return lb_error(LB_EINVAL, "'dropout' needs its probability (dropout:P)");
        if (rc == LB_OK) rc = fraction_arg(sp, 0.01, &a); /* PyTorch's LeakyReLU slope */
        if (rc == LB_OK) rc = drop ? lb_model_add_dropout(m, (float)a) : lb_model_add_leaky_relu(m, (float)a);
        char num[32];
        lb_buf_printf(canon, "%s:%s", name, lb_format_number(a, num, sizeof num));
        return rc;
    }
    if (!strcmp(name, "bn") || !strcmp(name, "relu") || !strcmp(name, "gap") || !strcmp(name, "flatten")) {
        char what[32];
        snprintf(what, sizeof what, "layer %s", name);
        if ((rc = lb_spec_check(sp, what, NULL, 0)) != LB_OK) return rc;
        lb_buf_puts(canon, name);
        return name[0] == 'b' ? lb_model_add_batchnorm2d(m)
               : name[0] == 'r' ? lb_model_add_relu(m)
               : name[0] == 'g' ? lb_model_add_global_avgpool(m)
                                : lb_model_add_flatten(m);
    }
    return lb_error(LB_EINVAL, "unknown layer '%s' (conv, bn, relu, leaky_relu, pool, avgpool, gap, dropout, "
                               "flatten, dense)", name);
}

/* Builds the list into m, the canonical spec into canon. n_classes > 0: a classifier, which
 * ends in n_classes features; 0: a trunk, which ends in [C, H, W] (lb_model_new_fcn). */
static int build_list(lb_model *m, const char *arch, int n_classes, lb_buf *canon)
{
    int rc = LB_OK, item = 0;
    for (const char *p = arch; rc == LB_OK && *p; item++) {
        size_t n = strcspn(p, ";");
        char text[LB_ARCH_MAX];
        snprintf(text, sizeof text, "%.*s", (int)n, p);
        const char *rest = p[n] ? p + n + 1 : p + n;
        int last = strspn(rest, " ;") == strlen(rest);
        lb_spec *sp = lb_spec_new(text);
        if (!sp) rc = lb_last_status();
        if (rc == LB_OK && item) lb_buf_puts(canon, ";");
        if (rc == LB_OK) rc = add_item(m, sp, rest, last, n_classes, canon);
        lb_spec_free(sp);
        if (rc != LB_OK) lb_error_prefix("item %d '%s'", item + 1, text);
        p = rest;
        while (rc == LB_OK && (*p == ' ' || *p == ';')) p++;
    }
    if (rc == LB_OK && item == 0) rc = lb_error(LB_EINVAL, "no layers");
    if (rc == LB_OK && n_classes == 0 && m->layers[m->n_layers - 1].out_ndim != 3)
        rc = lb_error(LB_ESHAPE, "a trunk must end in [C, H, W] (no gap, flatten or dense)");
    if (rc == LB_OK && n_classes == 0) return lb_buf_status(canon, "model");
    if (rc == LB_OK && m->layers[m->n_layers - 1].out_ndim != 1)
        rc = lb_error(LB_ESHAPE, "the last layer's output is [C, H, W]: end with gap or flatten and dense");
    if (rc == LB_OK && lb_model_n_outputs(m) != n_classes)
        rc = lb_error(LB_ESHAPE, "the last layer has %d outputs for %d classes (end with 'dense', which has one per class)",
                      lb_model_n_outputs(m), n_classes);
    return rc == LB_OK ? lb_buf_status(canon, "model") : rc;
}

int lb__model_layers(lb_model *m, const char *arch, int n_classes)
{
    lb_buf canon = {0};
    int rc = build_list(m, arch, n_classes, &canon);
    if (rc == LB_OK && canon.n >= sizeof m->arch)
        rc = lb_error(LB_EINVAL, "the canonical spec is %zu characters, more than %d", canon.n, LB_ARCH_MAX - 1);
    if (rc == LB_OK) snprintf(m->arch, sizeof m->arch, "%s", canon.p);
    lb_buf_free(&canon);
    return rc;
}

lb_model *lb_model_new_fcn(const char *trunk, int c, int h, int w, int n_outputs, int stride, int head_k)
{
    if (!trunk || n_outputs < 1 || stride < 1 || head_k < 1 || head_k % 2 == 0) {
        lb_error(LB_EINVAL, "fcn: trunk '%s', %d outputs, stride %d, head %dx%d (need a trunk, outputs >= 1, stride "
                 ">= 1 and an odd head size)", trunk ? trunk : "(null)", n_outputs, stride, head_k, head_k);
        return NULL;
    }
    lb_model *m = lb_model_new(c, h, w);
    lb_buf canon = {0};
    int rc = !m ? lb_last_status() : lb__is_layer_list(trunk) ? build_list(m, trunk, 0, &canon)
                                                               : lb__resnet_trunk(m, trunk, &canon);
    const lb_layer *top = rc == LB_OK ? &m->layers[m->n_layers - 1] : NULL;
    if (top && (h % stride || w % stride || top->out_shape[1] != h / stride || top->out_shape[2] != w / stride))
        rc = lb_error(LB_ESHAPE, "the trunk ends in [%d, %d, %d]; stride %d on %dx%d inputs needs a %dx%d grid",
                      top->out_shape[0], top->out_shape[1], top->out_shape[2], stride, h, w, h / stride, w / stride);
    if (rc == LB_OK) rc = lb_model_add_conv2d(m, n_outputs, head_k, 1, head_k / 2, 1);
    if (rc == LB_OK) lb_buf_printf(&canon, ";head:%d,%d", n_outputs, head_k);
    if (rc == LB_OK) rc = lb_buf_status(&canon, "model");
    if (rc == LB_OK && canon.n >= sizeof m->arch)
        rc = lb_error(LB_EINVAL, "the canonical spec is %zu characters, more than %d", canon.n, LB_ARCH_MAX - 1);
    if (rc == LB_OK) snprintf(m->arch, sizeof m->arch, "%s", canon.p);
    lb_buf_free(&canon);
    if (rc != LB_OK) {
        lb_error_prefix("fcn '%s' on %dx%dx%d inputs", trunk, c, h, w);
        lb_model_free(m);
        return NULL;
    }
    return m;
}
