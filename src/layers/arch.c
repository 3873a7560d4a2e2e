/* Models built by name: the reference `smallcnn`, plus `mlp` and `linear`. */
#include "libra/layers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int bn, c1, c2, fc, hidden;
    float dropout;
} arch_opts;

static int parse_int_opt(const char *arch, const char *k, const char *v, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 1 || x > 65536)
        return lb_error(LB_EINVAL, "model '%s': %s='%s' must be an integer in [1, 65536]", arch, k, v);
    *out = (int)x;
    return LB_OK;
}

/* Reads "key[=value],..." into o, accepting only the keys in `allowed` (space-separated). */
static int parse_opts(const char *arch, char *opts, const char *allowed, arch_opts *o)
{
    char *save = NULL;
    for (char *tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        const char *v = eq ? eq + 1 : NULL;
        if (eq) *eq = '\0';
        char key[24];
        snprintf(key, sizeof key, " %s ", tok);
        char padded[128];
        snprintf(padded, sizeof padded, " %s ", allowed);
        if (!*tok || !strstr(padded, key))
            return lb_error(LB_EINVAL, "model '%s': unknown option '%s' (options: %s)", arch, tok, allowed);
        int rc = LB_OK;
        if (strcmp(tok, "bn") == 0) {
            if (v && strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
                return lb_error(LB_EINVAL, "model '%s': bn='%s' must be 0 or 1", arch, v);
            o->bn = !v || strcmp(v, "1") == 0;
        } else if (!v) {
            return lb_error(LB_EINVAL, "model '%s': option '%s' needs a value (%s=...)", arch, tok, tok);
        } else if (strcmp(tok, "dropout") == 0) {
            char *end;
            errno = 0;
            double p = strtod(v, &end);
            if (errno || end == v || *end || !(p >= 0.0 && p < 1.0))
                return lb_error(LB_EINVAL, "model '%s': dropout='%s' must be a number in [0, 1)", arch, v);
            o->dropout = (float)p;
        } else if (strcmp(tok, "c1") == 0) rc = parse_int_opt(arch, tok, v, &o->c1);
        else if (strcmp(tok, "c2") == 0) rc = parse_int_opt(arch, tok, v, &o->c2);
        else if (strcmp(tok, "fc") == 0) rc = parse_int_opt(arch, tok, v, &o->fc);
        else if (strcmp(tok, "hidden") == 0) rc = parse_int_opt(arch, tok, v, &o->hidden);
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

lb_model *lb_model_build(const char *arch, int c, int h, int w, int n_classes)
{
    if (!arch || !*arch) arch = "smallcnn";
    char buf[160];
    if (strlen(arch) >= sizeof buf) {
        lb_error(LB_EINVAL, "model '%.40s...': spec too long", arch);
        return NULL;
    }
    if (n_classes < 1) {
        lb_error(LB_EINVAL, "model '%s': n_classes %d must be >= 1", arch, n_classes);
        return NULL;
    }
    strcpy(buf, arch);
    char *colon = strchr(buf, ':');
    char *opts = colon ? colon + 1 : buf + strlen(buf);
    if (colon) *colon = '\0';
    arch_opts o = {0, 32, 64, 128, 128, 0.0f};
    lb_model *m = NULL;
    if (strcmp(buf, "smallcnn") == 0) {
        if (parse_opts(arch, opts, "bn dropout c1 c2 fc", &o) != LB_OK) return NULL;
        if (h < 4 || w < 4) {
            lb_error(LB_ESHAPE, "model '%s': input %dx%d is smaller than the 4x4 two poolings need", arch, h, w);
            return NULL;
        }
        if (!(m = lb_model_new(c, h, w))) return NULL;
        if (build_smallcnn(m, &o, n_classes) != LB_OK) goto fail;
        snprintf(m->arch, sizeof m->arch, "smallcnn:bn=%d,dropout=%g,c1=%d,c2=%d,fc=%d", o.bn, o.dropout, o.c1, o.c2,
                 o.fc);
    } else if (strcmp(buf, "mlp") == 0) {
        if (parse_opts(arch, opts, "hidden dropout", &o) != LB_OK) return NULL;
        if (!(m = lb_model_new(c, h, w))) return NULL;
        if (build_mlp(m, &o, n_classes) != LB_OK) goto fail;
        snprintf(m->arch, sizeof m->arch, "mlp:hidden=%d,dropout=%g", o.hidden, o.dropout);
    } else if (strcmp(buf, "linear") == 0) {
        if (*opts) {
            lb_error(LB_EINVAL, "model '%s': linear takes no options", arch);
            return NULL;
        }
        if (!(m = lb_model_new(c, h, w))) return NULL;
        if (lb_model_add_flatten(m) != LB_OK || lb_model_add_dense(m, n_classes, 1) != LB_OK) goto fail;
        snprintf(m->arch, sizeof m->arch, "linear");
    } else {
        lb_error(LB_EINVAL, "model '%s': unknown architecture '%s' (smallcnn, mlp or linear)", arch, buf);
        return NULL;
    }
    return m;
fail:
    lb_error_prefix("model '%s'", arch);
    lb_model_free(m);
    return NULL;
}
