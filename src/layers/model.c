/* The model: layers added one by one (with shape checks), each reading the output of the
 * one before it or, for branches and residual sums, of any earlier one; forward; summary. */
#include "libra/layers.h"

#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"conv2d",    "dense",          "batchnorm2d", "dropout",
                                         "relu",      "maxpool2d",      "avgpool2d",   "global_avgpool",
                                         "flatten",   "leaky_relu",     "add"};

#define LAST (-2) /* next_src: the next layer reads the last one */

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
    m->next_src = LAST;
    lb_rng_seed(&m->rng, 0);
    return m;
}

void lb_model_free(lb_model *m)
{
    if (!m) return;
    lb_params_free(m->params);
    lb_free(m->layers);
    lb_free(m->outs);
    lb_free(m->state);
    lb_free(m);
}

/* The shape of output `id` (-1: the model's input). */
static void shape_of(const lb_model *m, int id, int *ndim, int *shape)
{
    if (id < 0) {
        *ndim = 3;
        shape[0] = m->in_c;
        shape[1] = m->in_h;
        shape[2] = m->in_w;
    } else {
        const lb_layer *l = &m->layers[id];
        *ndim = l->out_ndim;
        memcpy(shape, l->out_shape, sizeof l->out_shape);
    }
}

int lb_model_top(const lb_model *m) { return m->n_layers - 1; }

int lb_model_from(lb_model *m, int id)
{
    if (id < -1 || id >= m->n_layers)
        return lb_error(LB_EINVAL, "model: no output %d to read from (%d layers)", id, m->n_layers);
    m->next_src = id;
    return LB_OK;
}

static int next_src(const lb_model *m) { return m->next_src == LAST ? m->n_layers - 1 : m->next_src; }

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
        if (l) m->layers = l;
        lb_node **o = l ? lb_realloc(m->outs, (size_t)(cap + 1) * sizeof *o) : NULL;
        if (!o) {
            lb_error(LB_ENOMEM, "model: out of memory adding a layer");
            return NULL;
        }
        m->outs = o;
        m->cap_layers = cap;
    }
    int same = 0;
    for (int i = 0; i < m->n_layers; i++) same += m->layers[i].kind == kind;
    lb_layer *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s_%d", kind_names[kind], same + 1);
    l->src = next_src(m);
    l->src2 = -1;
    shape_of(m, l->src, &l->in_ndim, l->in_shape);
    l->out_ndim = l->in_ndim;
    memcpy(l->out_shape, l->in_shape, sizeof l->in_shape);
    l->w = l->b = -1;
    return l;
}

/* The layer pushed last becomes part of the model. */
static int commit(lb_model *m)
{
    lb_layer *l = &m->layers[m->n_layers];
    if (l->src >= 0) m->layers[l->src].n_uses++;
    if (l->src2 >= 0) m->layers[l->src2].n_uses++;
    m->next_src = LAST;
    m->n_layers++;
    return LB_OK;
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
    return commit(m);
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
    return commit(m);
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
    return commit(m);
}

int lb_model_add_dropout(lb_model *m, float p)
{
    lb_layer *l = push(m, LB_LAYER_DROPOUT);
    if (!l) return LB_ENOMEM;
    if (!(p >= 0.0f && p < 1.0f)) return layer_error(l, "p = %g must be in [0, 1)", p);
    l->p = p;
    return commit(m);
}

int lb_model_add_relu(lb_model *m)
{
    if (!push(m, LB_LAYER_RELU)) return LB_ENOMEM;
    return commit(m);
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
    return commit(m);
}

int lb_model_add_maxpool2d(lb_model *m, int k, int stride) { return add_pool(m, LB_LAYER_MAXPOOL2D, k, stride); }
int lb_model_add_avgpool2d(lb_model *m, int k, int stride) { return add_pool(m, LB_LAYER_AVGPOOL2D, k, stride); }

int lb_model_add_global_avgpool(lb_model *m)
{
    lb_layer *l = push(m, LB_LAYER_GLOBAL_AVGPOOL);
    if (!l) return LB_ENOMEM;
    if (l->in_ndim != 3) return layer_error(l, "needs a [C, H, W] input");
    l->out_ndim = 1;
    return commit(m);
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
    return commit(m);
}

int lb_model_add_leaky_relu(lb_model *m, float slope)
{
    lb_layer *l = push(m, LB_LAYER_LEAKY_RELU);
    if (!l) return LB_ENOMEM;
    if (!(slope >= 0.0f && slope < 1.0f)) return layer_error(l, "slope %g must be in [0, 1)", slope);
    l->p = slope;
    return commit(m);
}

int lb_model_add_sum(lb_model *m, int a, int b)
{
    if (a < -1 || a >= m->n_layers || b < -1 || b >= m->n_layers)
        return lb_error(LB_EINVAL, "model: add of outputs %d and %d: there are %d layers", a, b, m->n_layers);
    m->next_src = a;
    lb_layer *l = push(m, LB_LAYER_ADD);
    if (!l) return LB_ENOMEM;
    l->src2 = b;
    int nd, sh[3] = {0, 0, 0};
    shape_of(m, b, &nd, sh);
    if (nd != l->in_ndim || memcmp(sh, l->in_shape, (size_t)nd * sizeof(int)) != 0) {
        char s1[64], s2[64];
        return layer_error(l, "the shapes of %s %s and %s %s differ", a < 0 ? "the input" : m->layers[a].name,
                           shape_str(l->in_ndim, l->in_shape, s1), b < 0 ? "the input" : m->layers[b].name,
                           shape_str(nd, sh, s2));
    }
    return commit(m);
}

size_t lb_model_n_params(const lb_model *m) { return m->params->size; }

uint64_t lb_model_hash(const lb_model *m)
{
    uint64_t h = lb_hash64(m->params->data, m->params->size * sizeof(float), LB_HASH_INIT);
    return lb_hash64(m->state, m->state_size * sizeof(float), h);
}

int lb_model_n_outputs(const lb_model *m)
{
    int ndim, s[3];
    shape_of(m, m->n_layers - 1, &ndim, s);
    return ndim == 3 ? s[0] * s[1] * s[2] : s[0];
}

/* Layer i's output feeds layer i + 1 alone, which reads nothing else. */
static int feeds_next_only(const lb_model *m, int i)
{
    return i + 1 < m->n_layers && m->layers[i].n_uses == 1 && m->layers[i + 1].src == i &&
           m->layers[i + 1].kind != LB_LAYER_ADD;
}

/* The node of output id in the pass being recorded (-1: the input). */
static lb_node *output_node(const lb_model *m, int id) { return m->outs[id + 1]; }

/* conv + relu [+ 2x2 max-pool] as one fused node (same values, no intermediate tensors),
 * when nothing else reads the conv's (and relu's) output; *n_layers says how many. */
static lb_node *fused_conv(lb_model *m, lb_graph *g, int i, lb_node *x, lb_node *w, lb_node *b, int *n_layers)
{
    const lb_layer *l = &m->layers[i];
    if (!feeds_next_only(m, i) || m->layers[i + 1].kind != LB_LAYER_RELU) return NULL;
    const lb_layer *p = i + 2 < m->n_layers ? &m->layers[i + 2] : NULL;
    int pool = p && feeds_next_only(m, i + 1) && p->kind == LB_LAYER_MAXPOOL2D && p->k == 2 && p->stride == 2;
    x = pool ? lb_conv2d_relu_maxpool2(g, x, w, b, l->stride, l->pad) : lb_conv2d_relu(g, x, w, b, l->stride, l->pad);
    if (!x) lb_error_prefix("model: layers %s + %s%s", l->name, m->layers[i + 1].name, pool ? " + pool" : "");
    *n_layers = 2 + pool;
    return x;
}

/* batchnorm + relu, or batchnorm + add + relu (a residual block's end, the batchnorm being
 * either side of the sum), as one node when nothing else reads the parts; *n_layers says how
 * many layers it took (1: not fused, NULL returned). */
static lb_node *fused_bn(lb_model *m, lb_graph *g, int i, lb_node *x, lb_node *gamma, lb_node *beta, int *n_layers)
{
    const lb_layer *l = &m->layers[i], *s = i + 1 < m->n_layers ? &m->layers[i + 1] : NULL;
    float *rm = m->state + l->state_offset, *rv = rm + l->in_shape[0];
    if (feeds_next_only(m, i) && s->kind == LB_LAYER_RELU) {
        *n_layers = 2;
        x = lb_batchnorm2d_relu(g, x, gamma, beta, rm, rv, l->momentum, l->eps);
    } else if (s && s->kind == LB_LAYER_ADD && l->n_uses == 1 && (s->src == i) != (s->src2 == i) &&
               feeds_next_only(m, i + 1) && m->layers[i + 2].kind == LB_LAYER_RELU) {
        lb_node *r = output_node(m, s->src == i ? s->src2 : s->src);
        *n_layers = 3;
        if (!r) {
            lb_error(LB_ESTATE, "model: layer %s reads an output not recorded in this pass", s->name);
            return NULL;
        }
        x = lb_batchnorm2d_add_relu(g, x, gamma, beta, r, rm, rv, l->momentum, l->eps);
    } else {
        return NULL;
    }
    if (!x) lb_error_prefix("model: layers %s + %s%s", l->name, s->name, *n_layers == 3 ? " + relu" : "");
    return x;
}

static lb_node *layer_op(lb_model *m, lb_graph *g, int i, lb_node *x, int *n_layers)
{
    lb_layer *l = &m->layers[i];
    lb_node *w = l->w >= 0 ? lb_param(g, m->params, l->w) : NULL;
    lb_node *b = l->b >= 0 ? lb_param(g, m->params, l->b) : NULL;
    switch (l->kind) {
    case LB_LAYER_CONV2D: {
        lb_node *f = fused_conv(m, g, i, x, w, b, n_layers);
        return f || *n_layers > 1 ? f : lb_conv2d(g, x, w, b, l->stride, l->pad);
    }
    case LB_LAYER_DENSE:
        x = lb_matmul(g, x, w, 0, 1);
        return b && x ? lb_add(g, x, b) : x;
    case LB_LAYER_BATCHNORM2D: {
        lb_node *f = fused_bn(m, g, i, x, w, b, n_layers);
        float *rm = m->state + l->state_offset;
        return f || *n_layers > 1 ? f : lb_batchnorm2d(g, x, w, b, rm, rm + l->in_shape[0], l->momentum, l->eps);
    }
    case LB_LAYER_DROPOUT:
        /* identity in evaluation: skip the op (and its copy) altogether */
        return lb_graph_training(g) && l->p > 0.0f ? lb_dropout(g, x, l->p, &m->rng) : x;
    case LB_LAYER_RELU: return lb_relu(g, x);
    case LB_LAYER_LEAKY_RELU: return lb_leaky_relu(g, x, l->p);
    case LB_LAYER_MAXPOOL2D: return lb_maxpool2d(g, x, l->k, l->stride, 0);
    case LB_LAYER_AVGPOOL2D: return lb_avgpool2d(g, x, l->k, l->stride, 0);
    case LB_LAYER_GLOBAL_AVGPOOL: return lb_global_avgpool(g, x);
    case LB_LAYER_FLATTEN: return lb_flatten(g, x);
    case LB_LAYER_ADD: return lb_add(g, x, output_node(m, l->src2));
    }
    return NULL;
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
    /* x is the output of layer i - 1; a layer that reads another takes that one's node */
    m->outs[i] = x;
    lb_node *in = output_node(m, l->src);
    if (!in || (l->kind == LB_LAYER_ADD && !output_node(m, l->src2))) {
        lb_error(LB_ESTATE, "model: layer %s reads an output not recorded in this pass", l->name);
        return NULL;
    }
    lb_node *y = layer_op(m, g, i, in, n_layers);
    for (int k = 1; k < *n_layers; k++) m->outs[i + k] = NULL; /* fused away */
    m->outs[i + *n_layers] = y;
    if (!y && *n_layers == 1) lb_error_prefix("model: layer %s", l->name);
    return y;
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

int lb_model_classifier(const lb_model *m, int *layer)
{
    if (m->n_layers < 1) return lb_error(LB_EINVAL, "model: no layers, so no classifier");
    const lb_layer *l = &m->layers[m->n_layers - 1];
    if (l->kind != LB_LAYER_DENSE || l->b < 0 || l->in_ndim != 1)
        return lb_error(LB_EINVAL, "model: the last layer %s is not a dense layer with a bias (a classifier on "
                                   "[F] features)", l->name);
    *layer = m->n_layers - 1;
    return LB_OK;
}

lb_node *lb_model_features(lb_model *m, lb_graph *g, lb_node *x)
{
    int last;
    if (!x) return NULL;
    if (lb_model_classifier(m, &last) != LB_OK) return NULL;
    if (x->ndim != 4 || x->shape[1] != m->in_c || x->shape[2] != m->in_h || x->shape[3] != m->in_w) {
        char a[64];
        lb_error(LB_ESHAPE, "model: input %s does not match the model's [N, %d, %d, %d]", lb_shape_str(x, a, sizeof a),
                 m->in_c, m->in_h, m->in_w);
        return NULL;
    }
    m->outs[0] = x; /* the input (layer 0 records it too) */
    for (int i = 0, used = 1; i < last && x; i += used) x = lb_model_forward_layer(m, g, i, x, &used);
    if (!x) return NULL;
    /* the node the classifier reads: not always the layer before it (a DAG) */
    lb_node *f = output_node(m, m->layers[last].src);
    if (!f) lb_error(LB_ESTATE, "model: the classifier %s reads an output not recorded in this pass", m->layers[last].name);
    return f;
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
        lb_buf_printf(out, "%-18s %-20s %12s", l->name, sh, grouped(np, n1));
        if (l->kind == LB_LAYER_ADD || l->src != i - 1) /* where a branch or a sum reads from */
            lb_buf_printf(out, "  <- %s%s%s", l->src < 0 ? "input" : m->layers[l->src].name,
                          l->kind == LB_LAYER_ADD ? " + " : "",
                          l->kind != LB_LAYER_ADD ? "" : l->src2 < 0 ? "input" : m->layers[l->src2].name);
        lb_buf_puts(out, "\n");
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
