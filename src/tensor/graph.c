/* The tape, its arena, parameters, leaves and backward. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define ARENA_ALIGN 64

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    unsigned char *mem; /* ARENA_ALIGN-aligned start inside the allocation */
} chunk;

struct lb_graph {
    chunk *chunks;      /* newest first */
    size_t step_bytes;  /* bytes used in this step (all chunks) */
    size_t peak_bytes;
    size_t reserved;
    lb_node **nodes;
    int n_nodes, cap_nodes;
    int training, grad_enabled, backward_done;
};

static chunk *chunk_new(size_t cap)
{
    unsigned char *raw = lb_malloc(sizeof(chunk) + cap + ARENA_ALIGN);
    if (!raw) return NULL;
    chunk *c = (chunk *)raw;
    uintptr_t p = (uintptr_t)(raw + sizeof(chunk));
    p = (p + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
    c->mem = (unsigned char *)p;
    c->cap = cap;
    c->used = 0;
    c->next = NULL;
    return c;
}

lb_graph *lb_graph_new(void)
{
    lb_graph *g = lb_calloc(1, sizeof *g);
    if (!g) {
        lb_error(LB_ENOMEM, "graph: out of memory");
        return NULL;
    }
    g->training = 1;
    g->grad_enabled = 1;
    return g;
}

void lb_graph_free(lb_graph *g)
{
    if (!g) return;
    for (chunk *c = g->chunks, *n; c; c = n) {
        n = c->next;
        lb_free(c);
    }
    lb_free(g->nodes);
    lb_free(g);
}

void lb_graph_reset(lb_graph *g)
{
    /* Several chunks mean the step outgrew the arena: replace them by one chunk of the
     * high-water size, so later steps fit in one block and allocate nothing. */
    if (g->chunks && g->chunks->next) {
        size_t total = 0;
        for (chunk *c = g->chunks, *n; c; c = n) {
            n = c->next;
            total += c->cap;
            lb_free(c);
        }
        g->chunks = chunk_new(total);
        g->reserved = g->chunks ? total : 0;
    }
    if (g->chunks) g->chunks->used = 0;
    g->step_bytes = 0;
    g->n_nodes = 0;
    g->backward_done = 0;
}

void lb_graph_set_training(lb_graph *g, int training) { g->training = training != 0; }
int lb_graph_training(const lb_graph *g) { return g->training; }
void lb_graph_set_grad(lb_graph *g, int enabled) { g->grad_enabled = enabled != 0; }
size_t lb_graph_arena_reserved(const lb_graph *g) { return g->reserved; }
size_t lb_graph_arena_peak(const lb_graph *g) { return g->peak_bytes; }
int lb_graph_n_nodes(const lb_graph *g) { return g->n_nodes; }
lb_node *lb_graph_node(const lb_graph *g, int i) { return i >= 0 && i < g->n_nodes ? g->nodes[i] : NULL; }

void *lb_graph_alloc(lb_graph *g, size_t bytes)
{
    bytes = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (bytes == 0) bytes = ARENA_ALIGN;
    chunk *c = g->chunks;
    if (!c || c->cap - c->used < bytes) {
        size_t cap = bytes > (1u << 20) ? bytes : (1u << 20);
        if (c && cap < 2 * c->cap) cap = 2 * c->cap;
        chunk *n = chunk_new(cap);
        if (!n) {
            lb_error(LB_ENOMEM, "graph: out of memory allocating %zu bytes", bytes);
            return NULL;
        }
        n->next = c;
        g->chunks = c = n;
        g->reserved += cap;
    }
    void *p = c->mem + c->used;
    c->used += bytes;
    g->step_bytes += bytes;
    if (g->step_bytes > g->peak_bytes) g->peak_bytes = g->step_bytes;
    return p;
}

float *lb_graph_floats(lb_graph *g, size_t n) { return lb_graph_alloc(g, n * sizeof(float)); }

float *lb_graph_zeros(lb_graph *g, size_t n)
{
    float *p = lb_graph_floats(g, n);
    if (p) memset(p, 0, n * sizeof(float));
    return p;
}

const char *lb_shape_str(const lb_node *x, char *buf, size_t bufsize)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, bufsize - k, "[");
    for (int i = 0; i < x->ndim && k < bufsize; i++)
        k += (size_t)snprintf(buf + k, bufsize - k, i ? ", %d" : "%d", x->shape[i]);
    if (k < bufsize) snprintf(buf + k, bufsize - k, "]");
    return buf;
}

int lb_same_shape(const lb_node *a, const lb_node *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

lb_node *lb__shape_error(const char *op, const lb_node *a, const lb_node *b, const char *what)
{
    char sa[80], sb[80];
    if (b)
        lb_error(LB_ESHAPE, "%s: %s (shapes %s and %s)", op, what, lb_shape_str(a, sa, sizeof sa),
                 lb_shape_str(b, sb, sizeof sb));
    else
        lb_error(LB_ESHAPE, "%s: %s (shape %s)", op, what, lb_shape_str(a, sa, sizeof sa));
    return NULL;
}

static int push_node(lb_graph *g, lb_node *n)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        lb_node **p = lb_realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) return lb_error(LB_ENOMEM, "graph: out of memory growing the tape");
        g->nodes = p;
        g->cap_nodes = cap;
    }
    n->id = g->n_nodes;
    g->nodes[g->n_nodes++] = n;
    return LB_OK;
}

static lb_node *node_alloc(lb_graph *g, const char *op, int ndim, const int *shape)
{
    if (ndim < 1 || ndim > LB_MAX_DIMS) {
        lb_error(LB_ESHAPE, "%s: %d dimensions (1 to %d supported)", op, ndim, LB_MAX_DIMS);
        return NULL;
    }
    size_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            lb_error(LB_ESHAPE, "%s: dimension %d is %d (must be positive)", op, i, shape[i]);
            return NULL;
        }
        size *= (size_t)shape[i];
    }
    lb_node *n = lb_graph_alloc(g, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    n->ndim = ndim;
    memcpy(n->shape, shape, (size_t)ndim * sizeof(int));
    n->size = size;
    n->g = g;
    if (push_node(g, n)) return NULL;
    return n;
}

lb_node *lb_node_new(lb_graph *g, const char *op, int ndim, const int *shape, int n_in, lb_node *const *in,
                     lb_backward_fn backward)
{
    if (n_in < 0 || n_in > LB_MAX_INPUTS) {
        lb_error(LB_EINVAL, "%s: %d inputs (at most %d)", op, n_in, LB_MAX_INPUTS);
        return NULL;
    }
    int rg = 0;
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) return NULL; /* an earlier op failed; keep its message */
        rg |= in[i]->requires_grad;
    }
    lb_node *n = node_alloc(g, op, ndim, shape);
    if (!n) return NULL;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->val = lb_graph_floats(g, n->size);
    if (!n->val) return NULL;
    n->requires_grad = g->grad_enabled && rg;
    if (n->requires_grad) {
        n->grad = lb_graph_zeros(g, n->size);
        if (!n->grad) return NULL;
        n->backward = backward;
    }
    return n;
}

lb_node *lb_input(lb_graph *g, int ndim, const int *shape, float *data)
{
    lb_node *n = node_alloc(g, "input", ndim, shape);
    if (!n) return NULL;
    n->val = data;
    return n;
}

lb_node *lb_leaf(lb_graph *g, int ndim, const int *shape, const float *data, int requires_grad)
{
    lb_node *n = node_alloc(g, "leaf", ndim, shape);
    if (!n) return NULL;
    n->val = lb_graph_floats(g, n->size);
    if (!n->val) return NULL;
    if (data)
        memcpy(n->val, data, n->size * sizeof(float));
    else
        memset(n->val, 0, n->size * sizeof(float));
    n->requires_grad = requires_grad && g->grad_enabled;
    if (n->requires_grad && !(n->grad = lb_graph_zeros(g, n->size))) return NULL;
    return n;
}

int lb_backward(lb_graph *g, lb_node *root)
{
    if (!root) return lb_error(LB_EINVAL, "backward: root is NULL (an op failed earlier?)");
    if (root->g != g) return lb_error(LB_EINVAL, "backward: root belongs to another graph");
    if (g->backward_done)
        return lb_error(LB_ESTATE, "backward: already run on this tape; call lb_graph_reset first "
                                   "(gradients were not accumulated twice)");
    if (!root->requires_grad)
        return lb_error(LB_ESTATE, "backward: '%s' does not depend on anything that needs a gradient "
                                   "(or gradients are disabled)", root->op);
    for (size_t i = 0; i < root->size; i++) root->grad[i] = 1.0f;
    g->backward_done = 1;
    for (int i = root->id; i >= 0; i--) {
        lb_node *n = g->nodes[i];
        if (!n->requires_grad || !n->backward) continue;
        int rc = n->backward(n);
        if (rc != LB_OK) {
            lb_error_prefix("backward of %s (tape node %d); the gradients are incomplete", n->op, i);
            return rc;
        }
    }
    return LB_OK;
}

/* ---- parameters ---- */

lb_params *lb_params_new(void)
{
    lb_params *p = lb_calloc(1, sizeof *p);
    if (!p) lb_error(LB_ENOMEM, "params: out of memory");
    return p;
}

void lb_params_free(lb_params *p)
{
    if (!p) return;
    lb_free(p->data);
    lb_free(p->grad);
    lb_free(p->info);
    lb_free(p);
}

int lb_params_add(lb_params *p, const char *name, int ndim, const int *shape)
{
    if (ndim < 1 || ndim > LB_MAX_DIMS) {
        lb_error(LB_ESHAPE, "params: '%s' has %d dimensions (1 to %d supported)", name, ndim, LB_MAX_DIMS);
        return -1;
    }
    size_t size = 1;
    double exact = 1; /* the size as asked, for the message (size stops growing at the cap) */
    for (int i = 0; i < ndim; i++) exact *= shape[i] > 0 ? shape[i] : 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            lb_error(LB_ESHAPE, "params: '%s' dimension %d is %d", name, i, shape[i]);
            return -1;
        }
        size *= (size_t)shape[i];
        if (size > LB_MAX_PARAMS) break; /* (before the product can wrap) */
    }
    if (size > LB_MAX_PARAMS - p->size) {
        char dims[96];
        int at = 0;
        for (int i = 0; i < ndim && at < (int)sizeof dims - 16; i++) at += snprintf(dims + at, sizeof dims - (size_t)at, "%s%d", i ? "x" : "", shape[i]);
        lb_error(LB_EINVAL,
                 "params: '%s' is %s = %.0f weights, which with the %zu before it is more than the %d a model may "
                 "have (%d MB as float32, %d MB with the gradients and Adam's two moments)",
                 name, dims, exact, p->size, LB_MAX_PARAMS, LB_MAX_PARAMS / (1 << 20) * 4, LB_MAX_PARAMS / (1 << 20) * 16);
        return -1;
    }
    if (p->count == p->info_cap) {
        int cap = p->info_cap ? 2 * p->info_cap : 16;
        lb_param_info *info = lb_realloc(p->info, (size_t)cap * sizeof *info);
        if (!info) goto oom;
        p->info = info;
        p->info_cap = cap;
    }
    float *d = lb_realloc(p->data, (p->size + size) * sizeof(float));
    if (!d) goto oom;
    p->data = d;
    float *gr = lb_realloc(p->grad, (p->size + size) * sizeof(float));
    if (!gr) goto oom;
    p->grad = gr;
    memset(p->data + p->size, 0, size * sizeof(float));
    memset(p->grad + p->size, 0, size * sizeof(float));
    lb_param_info *in = &p->info[p->count];
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", name);
    in->ndim = ndim;
    memcpy(in->shape, shape, (size_t)ndim * sizeof(int));
    in->offset = p->size;
    in->size = size;
    p->size += size;
    return p->count++;
oom:
    lb_error(LB_ENOMEM, "params: out of memory adding '%s'", name);
    return -1;
}

float *lb_params_value(lb_params *p, int index)
{
    return index >= 0 && index < p->count ? p->data + p->info[index].offset : NULL;
}

float *lb_params_gradient(lb_params *p, int index)
{
    return index >= 0 && index < p->count ? p->grad + p->info[index].offset : NULL;
}

void lb_params_zero_grad(lb_params *p)
{
    if (p->size) memset(p->grad, 0, p->size * sizeof(float));
}

lb_node *lb_param(lb_graph *g, lb_params *p, int index)
{
    if (!p || index < 0 || index >= p->count) {
        lb_error(LB_EINVAL, "param: index %d out of range (%d parameters)", index, p ? p->count : 0);
        return NULL;
    }
    const lb_param_info *in = &p->info[index];
    lb_node *n = node_alloc(g, "param", in->ndim, in->shape);
    if (!n) return NULL;
    n->val = p->data + in->offset;
    if (g->grad_enabled) {
        n->grad = p->grad + in->offset;
        n->requires_grad = 1;
    }
    return n;
}
