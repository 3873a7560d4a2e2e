/* libra tensor: nodes on a define-by-run tape, a per-step arena, flat parameter and
 * gradient buffers, and the ops (each with its backward next to its forward).
 *
 * Life of a training step:
 *   lb_graph_reset(g);                       // releases the previous step's nodes at once
 *   x = lb_input(g, 4, shape, batch);        // no copy, no gradient
 *   h = lb_relu(g, lb_conv2d(g, x, lb_param(g, P, 0), lb_param(g, P, 1), 1, 1));
 *   ...
 *   loss = some_loss(g, logits, targets);    // a scalar node
 *   lb_params_zero_grad(P);
 *   lb_backward(g, loss);                    // gradients += into P->grad
 *
 * Ops return NULL on error (message in lb_last_error()); an op given a NULL input
 * returns NULL and keeps the first message, so calls can be nested. */
#ifndef LIBRA_TENSOR_H
#define LIBRA_TENSOR_H

#include "libra/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LB_MAX_DIMS 4
#define LB_MAX_INPUTS 5

typedef struct lb_graph lb_graph;
typedef struct lb_node lb_node;
typedef struct lb_params lb_params;

/* Computes the gradients of self's inputs from self->grad (accumulating with +=, and only
 * into inputs whose requires_grad is set). Returns LB_OK, or an error (with its message),
 * e.g. LB_ENOMEM when scratch memory cannot be had; lb_backward then stops and reports it. */
typedef int (*lb_backward_fn)(lb_node *self);

struct lb_node {
    const char *op;            /* op name, for messages and summaries */
    int ndim;
    int shape[LB_MAX_DIMS];
    size_t size;               /* product of shape */
    float *val;                /* values (arena, parameter buffer, or caller's data) */
    float *grad;               /* gradient, same size; NULL if !requires_grad */
    int requires_grad;
    int n_in;
    lb_node *in[LB_MAX_INPUTS];
    lb_backward_fn backward;   /* NULL for leaves */
    lb_graph *g;
    int id;                    /* position on the tape */
    /* The op's own arguments (strides, padding, a slope, a reduction, ...) as the op's typed
     * struct, read and written through LB_NODE_ARGS (each op file declares its struct). */
    _Alignas(8) unsigned char args[64];
    void *aux;                 /* op-specific saved data (argmax, masks, statistics) */
};

/* The arguments of `node` as a pointer to the op's struct `type` (at most 64 bytes). */
#define LB_NODE_ARGS(node, type) ((type *)(void *)(node)->args)

/* ---- the graph (tape + arena) ---- */
lb_graph *lb_graph_new(void);
void lb_graph_free(lb_graph *g);
/* Forget every node and release the arena for reuse. After the first steps the arena has
 * reached its high-water mark and a step allocates nothing. */
void lb_graph_reset(lb_graph *g);
/* Training mode changes dropout and batchnorm; it is the graph's alone (a model reads it
 * from the graph it is recorded on). Default: training. */
void lb_graph_set_training(lb_graph *g, int training);
int lb_graph_training(const lb_graph *g);
/* Whether ops record what backward needs (default on). With it off (evaluation),
 * no gradient buffers are allocated and backward is refused. */
void lb_graph_set_grad(lb_graph *g, int enabled);
/* Arena memory, in bytes: reserved in total, and the most used by one step. */
size_t lb_graph_arena_reserved(const lb_graph *g);
size_t lb_graph_arena_peak(const lb_graph *g);
int lb_graph_n_nodes(const lb_graph *g);
lb_node *lb_graph_node(const lb_graph *g, int i);
/* Scratch memory from the arena, 64-byte aligned, valid until the next reset. */
void *lb_graph_alloc(lb_graph *g, size_t bytes);
float *lb_graph_floats(lb_graph *g, size_t n);     /* uninitialised */
float *lb_graph_zeros(lb_graph *g, size_t n);

/* Backward from `root`. The root's gradient is seeded with 1 (each element, if root is
 * not a scalar). Calling it a second time on the same tape (without reset) is refused with
 * LB_ESTATE and changes nothing, so gradients are never counted twice. If an op's backward
 * fails (e.g. out of memory for scratch) the walk stops and the error names the op: the
 * gradients are then partial and must not be used. */
int lb_backward(lb_graph *g, lb_node *root);

/* ---- leaves ---- */
/* Wraps caller-owned data (e.g. a batch buffer) without copying; no gradient. */
lb_node *lb_input(lb_graph *g, int ndim, const int *shape, float *data);
/* A leaf with its own arena copy of `data` (zeros if NULL); requires_grad as given.
 * Gradient checks use these. */
lb_node *lb_leaf(lb_graph *g, int ndim, const int *shape, const float *data, int requires_grad);

/* ---- parameters: one flat buffer of values, one of gradients ---- */
typedef struct lb_param_info {
    char name[48];
    int ndim;
    int shape[LB_MAX_DIMS];
    size_t offset;   /* into data / grad */
    size_t size;
} lb_param_info;

struct lb_params {
    float *data;
    float *grad;
    size_t size;     /* total floats */
    int count;
    lb_param_info *info;
    int info_cap;
};

lb_params *lb_params_new(void);
void lb_params_free(lb_params *p);
/* A model has at most this many parameters (2^26 floats: 256 MB, 1 GB with the gradients
 * and Adam's moments). A spec or an input size asking for more (smallcnn on 3000x2000
 * images: 3 billion weights in its first dense layer) is refused with the arithmetic. */
#define LB_MAX_PARAMS (1 << 26)
/* Registers a parameter tensor (values zero) and returns its index, or -1 (status stored:
 * LB_ESHAPE, LB_EINVAL above LB_MAX_PARAMS, LB_ENOMEM). Registering may move the buffers:
 * take pointers only after all parameters are added. */
int lb_params_add(lb_params *p, const char *name, int ndim, const int *shape);
float *lb_params_value(lb_params *p, int index);
float *lb_params_gradient(lb_params *p, int index);
void lb_params_zero_grad(lb_params *p);
/* A leaf node on the tape whose values and gradient live in the flat buffers. */
lb_node *lb_param(lb_graph *g, lb_params *p, int index);

/* ---- creating nodes (for ops outside the core, e.g. losses) ---- */
/* A new node with `n_in` inputs, arena values of the given shape (uninitialised), and a
 * gradient buffer if any input requires one. Returns NULL if an input is NULL. */
lb_node *lb_node_new(lb_graph *g, const char *op, int ndim, const int *shape,
                     int n_in, lb_node *const *in, lb_backward_fn backward);
/* "[2, 3, 4]" into buf (size >= 64). */
const char *lb_shape_str(const lb_node *x, char *buf, size_t bufsize);
int lb_same_shape(const lb_node *a, const lb_node *b);

/* ---- libra's threads (the one threading layer; OpenBLAS runs on 1 thread) ---- */
/* Threads of libra's own threading layer (src/tensor/parallel.c), which splits convolutions
 * by image, large GEMMs by rows or columns and the optimizer's buffers, each by a partition
 * fixed by n (so a result depends only on the seed and n). OpenBLAS is kept at one thread:
 * one threading layer at a time. Before any product, OpenBLAS's work buffer for each of the n
 * threads (128 MB of address space each) is made certain: under an address-space limit too
 * low for them this returns LB_ENOMEM saying how much is needed (and keeps the old count),
 * where OpenBLAS itself would retry its mapping forever. */
int lb_set_threads(int n);
int lb_get_threads(void);
/* Runs fn(arg, part, n_parts) for every part in [0, n_parts), each on its own thread (the
 * caller runs part 0). A part's work must depend only on (part, n_parts), so results depend
 * on the thread count only. Inside a part lb_get_threads() is 1: what a part starts runs on
 * its own thread. fn must not allocate from an arena another part uses (arenas are not
 * thread-safe; a part may own a graph). */
void lb_parallel(int n_parts, void (*fn)(void *arg, int part, int n_parts), void *arg);
/* [lo, hi) of part `part` when n items are split into n_parts near-equal blocks. */
void lb_split_range(int n, int part, int n_parts, int *lo, int *hi);

/* ---- the fixed pairwise tree (data-parallel gradient sums, docs/distributed.md) ---- */
/* The sum of n buffers x[0..n) in one fixed tree, so the bits depend on n and the leaves
 * only, never on how many processes or threads computed them:
 *     tree(a, b) = tree(a, a + h) + tree(a + h, b),  h the largest power of two below b - a
 * (a perfect binary tree when n is a power of two; for n = 6: ((x0+x1)+(x2+x3)) + (x4+x5)).
 * Any aligned block of 2^j leaves is a subtree, so the K block sums of K ranks, each summing
 * its own 2^j leaves, combine in tree(K) to the same bits as tree(K 2^j). */
/* acc[i] = acc[i] + right[i]: the one addition of every node of the tree. */
void lb_tree_add(float *acc, const float *right, size_t len);
/* The tree as a schedule over ranks (binomial): at level l = 1, 2, 4, ... < size, a rank
 * with rank % 2l == 0 and a peer rank + l < size receives the peer's partial sum and adds
 * it to its own (LB_TREE_RECV: x = x + peer's x), a rank with rank % 2l == l sends its
 * partial sum to rank - l and is done (LB_TREE_SEND), every other rank waits
 * (LB_TREE_IDLE, *peer = -1). After the last level rank 0 holds tree(size); an MPI
 * reducer then sends it to every rank. */
enum { LB_TREE_IDLE = 0, LB_TREE_RECV = 1, LB_TREE_SEND = 2 };
int lb_tree_step(int rank, int size, int level, int *peer);
/* tree(n) in place by that schedule: x[0] gets the total; the other buffers are
 * overwritten with partial sums. */
void lb_tree_sum(float *const *x, int n, size_t len);
/* The same tree, leaf by leaf, with ceil(log2 n) buffers of len floats instead of
 * n (the trainer's shards, one gradient at a time). Push the leaves in order: each push
 * reads x and may change it; the n-th push leaves tree(n) in its x and returns 1 (the
 * others 0), and the accumulator starts over. */
typedef struct lb_tree_acc {
    int n, depth, count;
    size_t len;
    float *level;     /* [depth][len]: the stored partial sum of 2^l leaves at level l */
} lb_tree_acc;
int lb_tree_acc_init(lb_tree_acc *a, int n, size_t len);
int lb_tree_acc_push(lb_tree_acc *a, float *x);
void lb_tree_acc_free(lb_tree_acc *a);

/* ---- ops ---- */
/* elementwise, same shapes; or b of shape [a.shape[1]] broadcast over every other dim
 * (a bias over N, or over N, H, W for NCHW) */
lb_node *lb_add(lb_graph *g, lb_node *a, lb_node *b);
lb_node *lb_sub(lb_graph *g, lb_node *a, lb_node *b);
lb_node *lb_mul(lb_graph *g, lb_node *a, lb_node *b);
lb_node *lb_scale(lb_graph *g, lb_node *a, float s);
/* 2-D: op(a) [M,K] x op(b) [K,N] -> [M,N], op = transpose if the flag is set */
lb_node *lb_matmul(lb_graph *g, lb_node *a, lb_node *b, int transpose_a, int transpose_b);

lb_node *lb_relu(lb_graph *g, lb_node *a);
lb_node *lb_leaky_relu(lb_graph *g, lb_node *a, float slope);
lb_node *lb_sigmoid(lb_graph *g, lb_node *a);
lb_node *lb_tanh(lb_graph *g, lb_node *a);
lb_node *lb_exp(lb_graph *g, lb_node *a);
lb_node *lb_log(lb_graph *g, lb_node *a);   /* inputs <= 0 give -inf/NaN, as in C */

/* over the last dimension of a 2-D [N, C] node, max-subtracted */
lb_node *lb_softmax(lb_graph *g, lb_node *a);
lb_node *lb_log_softmax(lb_graph *g, lb_node *a);

lb_node *lb_sum(lb_graph *g, lb_node *a);    /* -> scalar [1] */
lb_node *lb_mean(lb_graph *g, lb_node *a);   /* -> scalar [1] */
lb_node *lb_reshape(lb_graph *g, lb_node *a, int ndim, const int *shape);
lb_node *lb_flatten(lb_graph *g, lb_node *a); /* [N, ...] -> [N, rest] */
/* [N, C] -> [N]: out[i] = a[i, index[i]]; index values must be in [0, C) */
lb_node *lb_pick(lb_graph *g, lb_node *a, const int *index);

/* Convolution, NCHW input [N,C,H,W], weight [F,C,KH,KW], bias [F] or NULL.
 * Padding per side as in PyTorch's F.pad order (top, bottom, left, right). */
lb_node *lb_conv2d_ex(lb_graph *g, lb_node *x, lb_node *w, lb_node *b,
                      int stride_h, int stride_w, int pad_top, int pad_bottom,
                      int pad_left, int pad_right);
/* square stride, same padding on every side (PyTorch's Conv2d(padding=pad)) */
lb_node *lb_conv2d(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride, int pad);
/* lb_relu(lb_conv2d(...)) as one node: same values and gradients, without the
 * intermediate tensor (its memory and one pass over it each way). */
lb_node *lb_conv2d_relu(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride, int pad);
/* lb_maxpool2d(lb_conv2d_relu(...), 2, 2, 0) as one node: only the pooled output is stored. */
lb_node *lb_conv2d_relu_maxpool2(lb_graph *g, lb_node *x, lb_node *w, lb_node *b, int stride, int pad);
/* Pooling with a square window; padding on every side (max pads with -inf, average
 * counts the padding as PyTorch's count_include_pad=True). */
lb_node *lb_maxpool2d(lb_graph *g, lb_node *x, int k, int stride, int pad);
lb_node *lb_avgpool2d(lb_graph *g, lb_node *x, int k, int stride, int pad);
lb_node *lb_global_avgpool(lb_graph *g, lb_node *x);  /* [N,C,H,W] -> [N,C] */
/* Inverted dropout: in training, zero with probability p and scale by 1/(1-p);
 * identity in evaluation. */
lb_node *lb_dropout(lb_graph *g, lb_node *x, float p, lb_rng *rng);
/* Batch normalisation over N,H,W per channel of [N,C,H,W] (or over N of [N,C]).
 * Training: batch statistics (biased variance for normalising), and running statistics
 * updated with momentum using the unbiased variance, as PyTorch. Evaluation: running
 * statistics. gamma, beta: [C] nodes; running_mean/var: caller-owned arrays of C floats. */
lb_node *lb_batchnorm2d(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta,
                        float *running_mean, float *running_var, float momentum, float eps);
/* lb_relu(lb_batchnorm2d(...)) and lb_relu(lb_add(lb_batchnorm2d(...), residual)) as one node:
 * the same values and gradients, bit for bit, with one tensor stored instead of three (a
 * residual block's end). residual: the shape of x. */
lb_node *lb_batchnorm2d_relu(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta,
                             float *running_mean, float *running_var, float momentum, float eps);
lb_node *lb_batchnorm2d_add_relu(lb_graph *g, lb_node *x, lb_node *gamma, lb_node *beta, lb_node *residual,
                                 float *running_mean, float *running_var, float momentum, float eps);

#ifdef __cplusplus
}
#endif
#endif
