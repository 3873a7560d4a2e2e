/* Models built by name: the reference `smallcnn`, `mlp`, `linear`, the CIFAR ResNets, and
 * layer lists (layer_list.c). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int bn, c1, c2, fc, hidden, depth, width;
    float dropout;
} arch_opts;

static int parse_int_opt(const char *arch, const char *k, const char *v, int *out)
{
    int x;
    if (lb_parse_int(v, &x) != 0 || x < 1 || x > 65536)
        return lb_error(LB_EINVAL, "model '%s': %s='%s' must be an integer in [1, 65536]", arch, k, v);
    *out = x;
    return LB_OK;
}

/* One option of an architecture spec: a flag word (bn) or key=value. */
static int read_opt(const char *arch, const char *k, const char *v, arch_opts *o)
{
    if (strcmp(k, "bn") == 0) {
        if (v && strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
            return lb_error(LB_EINVAL, "model '%s': bn='%s' must be 0 or 1", arch, v);
        o->bn = !v || strcmp(v, "1") == 0;
        return LB_OK;
    }
    if (!v) return lb_error(LB_EINVAL, "model '%s': option '%s' needs a value (%s=...)", arch, k, k);
    if (strcmp(k, "dropout") == 0) {
        double p;
        if (lb_parse_double(v, &p) != 0 || !(p >= 0.0 && p < 1.0))
            return lb_error(LB_EINVAL, "model '%s': dropout='%s' must be a number in [0, 1)", arch, v);
        o->dropout = (float)p;
        return LB_OK;
    }
    int *slot = !strcmp(k, "c1") ? &o->c1 : !strcmp(k, "c2") ? &o->c2 : !strcmp(k, "fc") ? &o->fc
              : !strcmp(k, "depth") ? &o->depth : !strcmp(k, "width") ? &o->width : &o->hidden;
    return parse_int_opt(arch, k, v, slot);
}

/* Reads the options of `sp` into o, accepting only the names in `allowed` (space-separated);
 * a positional word is a flag (only bn is one). */
static int parse_opts(const char *arch, const lb_spec *sp, const char *allowed, arch_opts *o)
{
    char padded[128], key[40];
    snprintf(padded, sizeof padded, " %s ", allowed);
    int n = lb_spec_n_args(sp), total = n + lb_spec_count(sp);
    for (int i = 0; i < total; i++) {
        const char *k = i < n ? lb_spec_arg(sp, i) : lb_spec_key(sp, i - n);
        const char *v = i < n ? NULL : lb_spec_value(sp, i - n);
        snprintf(key, sizeof key, " %s ", k);
        if (!*allowed) return lb_error(LB_EINVAL, "model '%s': %s takes no options", arch, lb_spec_name(sp));
        if (!*k || !strstr(padded, key))
            return lb_error(LB_EINVAL, "model '%s': unknown option '%s' (options: %s)", arch, k, allowed);
        int rc = read_opt(arch, k, v, o);
        if (rc != LB_OK) return rc;
    }
    return LB_OK;
}

static int build_smallcnn(lb_model *m, const arch_opts *o, int n_classes)
{
    int rc = LB_OK;
    int ch[2] = {o->c1, o->c2};
    for (int i = 0; i < 2 && rc == LB_OK; i++) {
        rc = lb_model_add_conv2d(m, ch[i], 3, 1, 1, !o->bn);
        if (rc == LB_OK && o->bn) rc = lb_model_add_batchnorm2d(m);
        if (rc == LB_OK) rc = lb_model_add_relu(m);
        if (rc == LB_OK) rc = lb_model_add_maxpool2d(m, 2, 2);
    }
    if (rc == LB_OK) rc = lb_model_add_flatten(m);
    if (rc == LB_OK) rc = lb_model_add_dense(m, o->fc, 1);
    if (rc == LB_OK) rc = lb_model_add_relu(m);
    if (rc == LB_OK && o->dropout > 0.0f) rc = lb_model_add_dropout(m, o->dropout);
    if (rc == LB_OK) rc = lb_model_add_dense(m, n_classes, 1);
    return rc;
}

static int build_mlp(lb_model *m, const arch_opts *o, int n_classes)
{
    int rc = lb_model_add_flatten(m);
    if (rc == LB_OK) rc = lb_model_add_dense(m, o->hidden, 1);
    if (rc == LB_OK) rc = lb_model_add_relu(m);
    if (rc == LB_OK && o->dropout > 0.0f) rc = lb_model_add_dropout(m, o->dropout);
    if (rc == LB_OK) rc = lb_model_add_dense(m, n_classes, 1);
    return rc;
}

/* One basic block of He et al. 2016 (two 3x3 convs with BN; the shortcut is the identity,
 * or a 1x1 conv + BN where the shape changes: option B). */
static int residual_block(lb_model *m, int width, int stride)
{
    int in = lb_model_top(m), rc = lb_model_add_conv2d(m, width, 3, stride, 1, 0);
    int in_c = in < 0 ? m->in_c : m->layers[in].out_shape[0];
    if (rc == LB_OK) rc = lb_model_add_batchnorm2d(m);
    if (rc == LB_OK) rc = lb_model_add_relu(m);
    if (rc == LB_OK) rc = lb_model_add_conv2d(m, width, 3, 1, 1, 0);
    if (rc == LB_OK) rc = lb_model_add_batchnorm2d(m);
    int a = lb_model_top(m), b = in;
    if (rc == LB_OK && (stride != 1 || in_c != width)) {
        rc = lb_model_from(m, in);
        if (rc == LB_OK) rc = lb_model_add_conv2d(m, width, 1, stride, 0, 0);
        if (rc == LB_OK) rc = lb_model_add_batchnorm2d(m);
        b = lb_model_top(m);
    }
    if (rc == LB_OK) rc = lb_model_add_sum(m, a, b);
    if (rc == LB_OK) rc = lb_model_add_relu(m);
    return rc;
}

/* The CIFAR ResNet of depth 6n + 2: a 3x3 conv of width W, three stages of n blocks at
 * widths W, 2W, 4W (the first block of stages 2 and 3 at stride 2), global average pooling,
 * one dense layer; n_classes 0: the trunk alone, ending in [4W, H/4, W/4]. */
static int build_resnet(lb_model *m, const arch_opts *o, int n_classes)
{
    if (o->depth < 8 || (o->depth - 2) % 6 != 0)
        return lb_error(LB_EINVAL, "depth=%d must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110)", o->depth);
    if (o->width > 1024) return lb_error(LB_EINVAL, "width=%d is more than 1024", o->width);
    int rc = lb_model_add_conv2d(m, o->width, 3, 1, 1, 0);
    if (rc == LB_OK) rc = lb_model_add_batchnorm2d(m);
    if (rc == LB_OK) rc = lb_model_add_relu(m);
    for (int stage = 0; stage < 3 && rc == LB_OK; stage++)
        for (int blk = 0; blk < (o->depth - 2) / 6 && rc == LB_OK; blk++)
            rc = residual_block(m, o->width << stage, stage > 0 && blk == 0 ? 2 : 1);
    if (rc == LB_OK && n_classes > 0) rc = lb_model_add_global_avgpool(m);
    if (rc == LB_OK && n_classes > 0) rc = lb_model_add_dense(m, n_classes, 1);
    return rc;
}

int lb__resnet_trunk(lb_model *m, const char *arch, lb_buf *canon)
{
    lb_spec *sp = lb_spec_new(arch);
    if (!sp) return lb_last_status();
    arch_opts o = {0, 32, 64, 128, 128, 20, 16, 0.0f};
    int rc = strcmp(lb_spec_name(sp), "resnet") == 0
                 ? parse_opts(arch, sp, "depth width", &o)
                 : lb_error(LB_EINVAL, "a trunk is a layer list or resnet[:depth=D,width=W], not '%s'", lb_spec_name(sp));
    lb_spec_free(sp);
    if (rc == LB_OK) rc = build_resnet(m, &o, 0);
    if (rc == LB_OK) lb_buf_printf(canon, "resnet:depth=%d,width=%d", o.depth, o.width);
    return rc;
}

static lb_model *new_arch(const char *arch, int c, int h, int w, int n_classes, int probe);

int lb_arch_check(const char *arch)
{
    /* building on a generous input checks the name and every option; the real input's
     * shape is checked when the model is built for the data */
    lb_model *m = new_arch(arch, 1, 32, 32, 2, 1);
    int rc = m ? LB_OK : lb_last_status();
    lb_model_free(m);
    return rc == LB_ESHAPE ? LB_OK : rc;
}

/* probe: built only to check the spec (lb_arch_check), so messages do not name the input. */
static lb_model *new_arch(const char *arch, int c, int h, int w, int n_classes, int probe)
{
    if (!arch || !*arch) arch = "smallcnn";
    if (strlen(arch) >= LB_ARCH_MAX) {
        lb_error(LB_EINVAL, "model '%.40s...': spec too long", arch);
        return NULL;
    }
    if (n_classes < 1) {
        lb_error(LB_EINVAL, "model '%s': n_classes %d must be >= 1", arch, n_classes);
        return NULL;
    }
    if (lb__is_layer_list(arch)) {
        lb_model *m = lb_model_new(c, h, w);
        if (m && lb__model_layers(m, arch, n_classes) != LB_OK) {
            if (probe) lb_error_prefix("model '%s'", arch);
            else lb_error_prefix("model '%s' on %dx%dx%d inputs", arch, c, h, w);
            lb_model_free(m);
            return NULL;
        }
        return m;
    }
    lb_spec *sp = lb_spec_new(arch);
    if (!sp) {
        lb_error_prefix("model");
        return NULL;
    }
    const char *name = lb_spec_name(sp);
    arch_opts o = {0, 32, 64, 128, 128, 20, 16, 0.0f};
    lb_model *m = NULL;
    int rc = LB_OK;
    if (strcmp(name, "smallcnn") == 0) {
        rc = parse_opts(arch, sp, "bn dropout c1 c2 fc", &o);
        if (rc == LB_OK && (h < 4 || w < 4))
            rc = lb_error(LB_ESHAPE, "model '%s': input %dx%d is smaller than the 4x4 two poolings need", arch, h, w);
        if (rc == LB_OK && !(m = lb_model_new(c, h, w))) rc = lb_last_status();
        if (rc == LB_OK && (rc = build_smallcnn(m, &o, n_classes)) == LB_OK)
            snprintf(m->arch, sizeof m->arch, "smallcnn:bn=%d,dropout=%g,c1=%d,c2=%d,fc=%d", o.bn, o.dropout, o.c1,
                     o.c2, o.fc);
    } else if (strcmp(name, "mlp") == 0) {
        rc = parse_opts(arch, sp, "hidden dropout", &o);
        if (rc == LB_OK && !(m = lb_model_new(c, h, w))) rc = lb_last_status();
        if (rc == LB_OK && (rc = build_mlp(m, &o, n_classes)) == LB_OK)
            snprintf(m->arch, sizeof m->arch, "mlp:hidden=%d,dropout=%g", o.hidden, o.dropout);
    } else if (strcmp(name, "linear") == 0) {
        rc = parse_opts(arch, sp, "", &o);
        if (rc == LB_OK && !(m = lb_model_new(c, h, w))) rc = lb_last_status();
        if (rc == LB_OK && (rc = lb_model_add_flatten(m)) == LB_OK && (rc = lb_model_add_dense(m, n_classes, 1)) == LB_OK)
            snprintf(m->arch, sizeof m->arch, "linear");
    } else if (strcmp(name, "resnet") == 0) {
        rc = parse_opts(arch, sp, "depth width", &o);
        if (rc == LB_OK && !(m = lb_model_new(c, h, w))) rc = lb_last_status();
        if (rc == LB_OK && (rc = build_resnet(m, &o, n_classes)) == LB_OK)
            snprintf(m->arch, sizeof m->arch, "resnet:depth=%d,width=%d", o.depth, o.width);
    } else {
        rc = lb_error(LB_EINVAL,
                      "model '%s': unknown architecture '%s' (smallcnn, mlp, linear, resnet, or a layer list such as "
                      "'conv:32,3;bn;relu;pool:2;gap;dense')",
                      arch, name);
    }
    lb_spec_free(sp);
    if (rc != LB_OK) {
        if (m && probe) lb_error_prefix("model '%s'", arch);
        else if (m) lb_error_prefix("model '%s' on %dx%dx%d inputs", arch, c, h, w);
        lb_model_free(m);
        return NULL;
    }
    return m;
}

lb_model *lb_model_new_arch(const char *arch, int c, int h, int w, int n_classes)
{
    return new_arch(arch, c, h, w, n_classes, 0);
}
