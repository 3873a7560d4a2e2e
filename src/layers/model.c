/* The sequential model: building layer by layer (with shape checks), forward, summary. */
#include "libra/layers.h"

#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"conv2d", "dense", "batchnorm2d", "dropout", "relu",
                                         "maxpool2d", "avgpool2d", "global_avgpool", "flatten"};

lb_model *lb_model_new(int c, int h, int w)
{
    if (c <= 0 || h <= 0 || w <= 0) {
        lb_error(LB_ESHAPE, "model: input shape [%d, %d, %d] must be positive", c, h, w);
        return NULL;
    }
    lb_model *m = lb_calloc(1, sizeof *m);
    if (!m || !(m->params = lb_params_new())) {
        lb_free(m);
        lb_error(LB_ENOMEM, "model: out of memory");
        return NULL;
    }
    m->in_c = c;
    m->in_h = h;
    m->in_w = w;
    lb_rng_seed(&m->rng, 0);
    return m;
}

void lb_model_free(lb_model *m)
{
    if (!m) return;
    lb_params_free(m->params);
    lb_free(m->layers);
    lb_free(m->state);
    lb_free(m);
}

/* The shape the next layer receives. */
static void current_shape(const lb_model *m, int *ndim, int *shape)
{
    if (m->n_layers == 0) {
        *ndim = 3;
        shape[0] = m->in_c;
        shape[1] = m->in_h;
        shape[2] = m->in_w;
    } else {
        const lb_layer *l = &m->layers[m->n_layers - 1];
        *ndim = l->out_ndim;
        memcpy(shape, l->out_shape, sizeof l->out_shape);
    }
}

static const char *shape_str(int ndim, const int *s, char *buf)
{
    if (ndim == 3) sprintf(buf, "[%d, %d, %d]", s[0], s[1], s[2]);
    else sprintf(buf, "[%d]", s[0]);
    return buf;
}

/* Appends a layer of `kind` with the current shape as input; the caller fills the rest. */
static lb_layer *push(lb_model *m, lb_layer_kind kind)
{
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 16;
        lb_layer *l = lb_realloc(m->layers, (size_t)cap * sizeof *l);
        if (!l) {
            lb_error(LB_ENOMEM, "model: out of memory adding a layer");
            return NULL;
        }
        m->layers = l;
        m->cap_layers = cap;
    }
    int same = 0;
    for (int i = 0; i < m->n_layers; i++) same += m->layers[i].kind == kind;
    lb_layer *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s_%d", kind_names[kind], same + 1);
    current_shape(m, &l->in_ndim, l->in_shape);
    l->out_ndim = l->in_ndim;
    memcpy(l->out_shape, l->in_shape, sizeof l->in_shape);
    l->w = l->b = -1;
    return l;
}

/* Error about the layer being added (not yet counted in n_layers). */
static int layer_error(const lb_layer *l, const char *fmt, ...)
{
    char msg[256], sh[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lb_error(LB_ESHAPE, "model: layer %s (input %s): %s", l->name, shape_str(l->in_ndim, l->in_shape, sh),
                    msg);
}

static int add_param(lb_model *m, lb_layer *l, const char *what, int ndim, const int *shape)
{
    char name[48];
    snprintf(name, sizeof name, "%s.%s", l->name, what);
    int idx = lb_params_add(m->params, name, ndim, shape);
    if (idx < 0) lb_error_prefix("layer %s", l->name);
    return idx;
}

int lb_model_add_conv2d(lb_model *m, int out_channels, int k, int stride, int pad, int bias)
{
    lb_layer *l = push(m, LB_LAYER_CONV2D);
    if (!l) return LB_ENOMEM;
    if (l->in_ndim != 3) return layer_error(l, "needs a [C, H, W] input");
    if (out_channels <= 0 || k <= 0 || stride <= 0 || pad < 0)
        return layer_error(l, "out_channels %d, kernel %d, stride %d, padding %d are not valid", out_channels, k,
                           stride, pad);
    int oh = (l->in_shape[1] + 2 * pad - k) / stride + 1;
    int ow = (l->in_shape[2] + 2 * pad - k) / stride + 1;
    if (l->in_shape[1] + 2 * pad < k || l->in_shape[2] + 2 * pad < k)
        return layer_error(l, "kernel %d with padding %d does not fit", k, pad);
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    l->out_shape[0] = out_channels;
    l->out_shape[1] = oh;
    l->out_shape[2] = ow;
    int ws[4] = {out_channels, l->in_shape[0], k, k};
    if ((l->w = add_param(m, l, "weight", 4, ws)) < 0) return lb_last_status();
    if (bias && (l->b = add_param(m, l, "bias", 1, &out_channels)) < 0) return lb_last_status();
    m->n_layers++;
    return LB_OK;
}

int lb_model_add_dense(lb_model *m, int units, int bias)
{
    lb_layer *l = push(m, LB_LAYER_DENSE);
    if (!l) return LB_ENOMEM;
    if (l->in_ndim != 1) return layer_error(l, "needs a flat [F] input (add flatten first)");
    if (units <= 0) return layer_error(l, "units %d must be positive", units);
    l->out_ndim = 1;
    l->out_shape[0] = units;
    int ws[2] = {units, l->in_shape[0]};   /* [out, in] as PyTorch's Linear */
    if ((l->w = add_param(m, l, "weight", 2, ws)) < 0) return lb_last_status();
    if (bias && (l->b = add_param(m, l, "bias", 1, &units)) < 0) return lb_last_status();
    m->n_layers++;
    return LB_OK;
}

int lb_model_add_batchnorm2d(lb_model *m)
{
    lb_layer *l = push(m, LB_LAYER_BATCHNORM2D);
    if (!l) return LB_ENOMEM;
    int C = l->in_shape[0];
    l->momentum = 0.1f;
    l->eps = 1e-5f;
    if ((l->w = add_param(m, l, "weight", 1, &C)) < 0) return lb_last_status();
    if ((l->b = add_param(m, l, "bias", 1, &C)) < 0) return lb_last_status();
    float *st = lb_realloc(m->state, (m->state_size + 2 * (size_t)C) * sizeof(float));
    if (!st) return lb_error(LB_ENOMEM, "model: out of memory for %s running statistics", l->name);
    m->state = st;
    l->state_offset = m->state_size;
    for (int c = 0; c < C; c++) {
        st[m->state_size + c] = 0.0f;
        st[m->state_size + C + c] = 1.0f;
    }
    m->state_size += 2 * (size_t)C;
    m->n_layers++;
    return LB_OK;
}

int lb_model_add_dropout(lb_model *m, float p)
{
    lb_layer *l = push(m, LB_LAYER_DROPOUT);
    if (!l) return LB_ENOMEM;
    if (!(p >= 0.0f && p < 1.0f)) return layer_error(l, "p = %g must be in [0, 1)", p);
    l->p = p;
    m->n_layers++;
    return LB_OK;
}

int lb_model_add_relu(lb_model *m)
{
    if (!push(m, LB_LAYER_RELU)) return LB_ENOMEM;
    m->n_layers++;
    return LB_OK;
}

static int add_pool(lb_model *m, lb_layer_kind kind, int k, int stride)
{
    lb_layer *l = push(m, kind);
    if (!l) return LB_ENOMEM;
    if (l->in_ndim != 3) return layer_error(l, "needs a [C, H, W] input");
    if (k <= 0 || stride <= 0) return layer_error(l, "window %d and stride %d must be positive", k, stride);
    if (l->in_shape[1] < k || l->in_shape[2] < k) return layer_error(l, "window %d is larger than the input", k);
    l->k = k;
    l->stride = stride;
    l->out_shape[1] = (l->in_shape[1] - k) / stride + 1;
    l->out_shape[2] = (l->in_shape[2] - k) / stride + 1;
    m->n_layers++;
    return LB_OK;
}

int lb_model_add_maxpool2d(lb_model *m, int k, int stride) { return add_pool(m, LB_LAYER_MAXPOOL2D, k, stride); }
int lb_model_add_avgpool2d(lb_model *m, int k, int stride) { return add_pool(m, LB_LAYER_AVGPOOL2D, k, stride); }

int lb_model_add_global_avgpool(lb_model *m)
{
    lb_layer *l = push(m, LB_LAYER_GLOBAL_AVGPOOL);
    if (!l) return LB_ENOMEM;
    if (l->in_ndim != 3) return layer_error(l, "needs a [C, H, W] input");
    l->out_ndim = 1;
    m->n_layers++;
    return LB_OK;
}

int lb_model_add_flatten(lb_model *m)
{
    lb_layer *l = push(m, LB_LAYER_FLATTEN);
    if (!l) return LB_ENOMEM;
    l->out_ndim = 1;
    int64_t f = l->in_ndim == 3 ? (int64_t)l->in_shape[0] * l->in_shape[1] * l->in_shape[2] : l->in_shape[0];
    if (f > INT32_MAX) return layer_error(l, "%" PRId64 " features per sample do not fit an int", f);
    l->out_shape[0] = (int)f;
    l->out_shape[1] = l->out_shape[2] = 0;
    m->n_layers++;
    return LB_OK;
}

size_t lb_model_n_params(const lb_model *m) { return m->params->size; }

int lb_model_n_outputs(const lb_model *m)
{
    int ndim, s[3];
    current_shape(m, &ndim, s);
    return ndim == 3 ? s[0] * s[1] * s[2] : s[0];
}

lb_node *lb_model_forward_layer(lb_model *m, lb_graph *g, int i, lb_node *x, int *n_layers)
{
    *n_layers = 1;
    if (!x) return NULL;
    if (i < 0 || i >= m->n_layers) {
        lb_error(LB_EINVAL, "model: layer %d out of range (%d layers)", i, m->n_layers);
        return NULL;
    }
    lb_layer *l = &m->layers[i];
    lb_node *w = l->w >= 0 ? lb_param(g, m->params, l->w) : NULL;
    lb_node *b = l->b >= 0 ? lb_param(g, m->params, l->b) : NULL;
    switch (l->kind) {
    case LB_LAYER_CONV2D:
        /* conv + relu [+ 2x2 max-pool]: one fused node (same values, no intermediate tensors) */
        if (i + 1 < m->n_layers && m->layers[i + 1].kind == LB_LAYER_RELU) {
            const lb_layer *p = i + 2 < m->n_layers ? &m->layers[i + 2] : NULL;
            int pool = p && p->kind == LB_LAYER_MAXPOOL2D && p->k == 2 && p->stride == 2;
            x = pool ? lb_conv2d_relu_maxpool2(g, x, w, b, l->stride, l->pad)
                     : lb_conv2d_relu(g, x, w, b, l->stride, l->pad);
            if (!x) lb_error_prefix("model: layers %s + %s%s", l->name, m->layers[i + 1].name, pool ? " + pool" : "");
            *n_layers = 2 + pool;
            return x;
        }
        x = lb_conv2d(g, x, w, b, l->stride, l->pad);
        break;
    case LB_LAYER_DENSE:
        x = lb_matmul(g, x, w, 0, 1);
        if (b) x = lb_add(g, x, b);
        break;
    case LB_LAYER_BATCHNORM2D: {
        float *rm = m->state + l->state_offset;
        x = lb_batchnorm2d(g, x, w, b, rm, rm + l->in_shape[0], l->momentum, l->eps);
        break;
    }
    case LB_LAYER_DROPOUT:
        /* identity in evaluation: skip the op (and its copy) altogether */
        if (lb_graph_training(g) && l->p > 0.0f) x = lb_dropout(g, x, l->p, &m->rng);
        break;
    case LB_LAYER_RELU: x = lb_relu(g, x); break;
    case LB_LAYER_MAXPOOL2D: x = lb_maxpool2d(g, x, l->k, l->stride, 0); break;
    case LB_LAYER_AVGPOOL2D: x = lb_avgpool2d(g, x, l->k, l->stride, 0); break;
    case LB_LAYER_GLOBAL_AVGPOOL: x = lb_global_avgpool(g, x); break;
    case LB_LAYER_FLATTEN: x = lb_flatten(g, x); break;
    }
    if (!x) lb_error_prefix("model: layer %s", l->name);
    return x;
}

lb_node *lb_model_forward(lb_model *m, lb_graph *g, lb_node *x)
{
    if (!x) return NULL;
    if (x->ndim != 4 || x->shape[1] != m->in_c || x->shape[2] != m->in_h || x->shape[3] != m->in_w) {
        char a[64];
        lb_error(LB_ESHAPE, "model: input %s does not match the model's [N, %d, %d, %d]", lb_shape_str(x, a, sizeof a),
                 m->in_c, m->in_h, m->in_w);
        return NULL;
    }
    for (int i = 0, used = 1; i < m->n_layers && x; i += used) x = lb_model_forward_layer(m, g, i, x, &used);
    return x;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(size_t v, char *out)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), j = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[j++] = ',';
        out[j++] = tmp[i];
    }
    out[j] = '\0';
    return out;
}

static size_t param_size(const lb_model *m, int idx) { return idx >= 0 ? m->params->info[idx].size : 0; }

void lb_model_summary(const lb_model *m, lb_buf *out)
{
    size_t total = 0;
    char sh[64], n1[32];
    lb_buf_printf(out, "%-18s %-20s %12s\n", "Layer", "Output shape", "Params");
    snprintf(sh, sizeof sh, "[N, %d, %d, %d]", m->in_c, m->in_h, m->in_w);
    lb_buf_printf(out, "%-18s %-20s %12s\n", "input", sh, "0");
    for (int i = 0; i < m->n_layers; i++) {
        const lb_layer *l = &m->layers[i];
        size_t np = param_size(m, l->w) + param_size(m, l->b);
        total += np;
        if (l->out_ndim == 3) snprintf(sh, sizeof sh, "[N, %d, %d, %d]", l->out_shape[0], l->out_shape[1], l->out_shape[2]);
        else snprintf(sh, sizeof sh, "[N, %d]", l->out_shape[0]);
        lb_buf_printf(out, "%-18s %-20s %12s\n", l->name, sh, grouped(np, n1));
    }
    lb_buf_printf(out, "Total params: %s (%.2f MB as float32)", grouped(total, n1), total * 4.0 / 1e6);
    if (m->state_size) lb_buf_printf(out, "; buffers: %s", grouped(m->state_size, n1));
    lb_buf_puts(out, "\n");
}

void lb_model_layout(const lb_model *m, lb_buf *out)
{
    for (int i = 0; i < m->params->count; i++) {
        const lb_param_info *in = &m->params->info[i];
        lb_buf_printf(out, "%s%s:", i ? ";" : "", in->name);
        for (int d = 0; d < in->ndim; d++) lb_buf_printf(out, d ? "x%d" : "%d", in->shape[d]);
    }
}
