/* libra layers: a sequential model of parameterised layers (conv2d, dense, batchnorm2d,
 * dropout) and parameter-free ones (relu, pooling, flatten), with initialisation, a
 * Keras-like summary, and the reference network `smallcnn` built by name.
 *
 * All parameters live in one flat lb_params buffer (values + gradients); the batchnorm
 * running statistics, which are state but not parameters, live in a second flat buffer
 * (model->state), so a checkpoint is two arrays.
 *
 *   lb_model *m = lb_model_new_arch("smallcnn:bn", 1, 28, 28, 10);
 *   lb_rng r; lb_rng_seed(&r, 42);
 *   lb_model_init(m, LB_INIT_DEFAULT, &r);
 *   lb_node *logits = lb_model_forward(m, g, x);   // x: [N, 1, 28, 28] -> [N, 10]
 */
#ifndef LIBRA_LAYERS_H
#define LIBRA_LAYERS_H

#include "libra/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LB_LAYER_CONV2D = 0,
    LB_LAYER_DENSE,
    LB_LAYER_BATCHNORM2D,   /* per channel of [C,H,W], or per feature of [F] */
    LB_LAYER_DROPOUT,
    LB_LAYER_RELU,
    LB_LAYER_MAXPOOL2D,
    LB_LAYER_AVGPOOL2D,
    LB_LAYER_GLOBAL_AVGPOOL,
    LB_LAYER_FLATTEN,
    LB_LAYER_LEAKY_RELU,
    LB_LAYER_ADD            /* the sum of two earlier outputs of one shape (a residual shortcut) */
} lb_layer_kind;

/* The longest architecture spec, with its terminating NUL (a layer list can be long). */
#define LB_ARCH_MAX 1024

/* Shapes are per sample (no batch dimension): [C, H, W] (ndim 3) or [F] (ndim 1). */
typedef struct lb_layer {
    lb_layer_kind kind;
    char name[32];            /* "conv2d_1", "dense_2", ... */
    int in_ndim, in_shape[3];
    int out_ndim, out_shape[3];
    int src, src2;            /* the layers whose outputs it reads (-1: the model's input); src2: add only */
    int n_uses;               /* later layers that read its output */
    int k, stride, pad;       /* conv2d, pooling */
    float p;                  /* dropout probability; leaky_relu's slope */
    float momentum, eps;      /* batchnorm (PyTorch's 0.1 and 1e-5) */
    int w, b;                 /* parameter indices in model->params (-1: none) */
    size_t state_offset;      /* batchnorm: running mean at state + offset, var after it */
} lb_layer;

typedef struct lb_model {
    int in_c, in_h, in_w;     /* input per sample */
    int n_layers, cap_layers;
    lb_layer *layers;
    lb_params *params;
    float *state;             /* non-trainable buffers (batchnorm running statistics) */
    size_t state_size;
    lb_rng rng;               /* dropout's RNG (part of a checkpoint) */
    char arch[LB_ARCH_MAX];   /* canonical spec it was built from; "" when built by hand */
    int next_src;             /* the output the next layer reads (lb_model_from), else the last */
    lb_node **outs;           /* per layer, its node in the forward pass being recorded */
} lb_model;

/* ---- building by hand ---- */
/* An empty model for inputs of c x h x w. */
lb_model *lb_model_new(int c, int h, int w);
void lb_model_free(lb_model *m);
/* Each add checks the layer against the current output shape and returns LB_OK or an
 * error naming the layer and both shapes. Parameters are registered at once (values 0
 * until lb_model_init). */
int lb_model_add_conv2d(lb_model *m, int out_channels, int k, int stride, int pad, int bias);
int lb_model_add_dense(lb_model *m, int units, int bias);   /* input [F]: flatten first */
int lb_model_add_batchnorm2d(lb_model *m);
int lb_model_add_dropout(lb_model *m, float p);
int lb_model_add_relu(lb_model *m);
int lb_model_add_maxpool2d(lb_model *m, int k, int stride);
int lb_model_add_avgpool2d(lb_model *m, int k, int stride);
int lb_model_add_global_avgpool(lb_model *m);
int lb_model_add_flatten(lb_model *m);
int lb_model_add_leaky_relu(lb_model *m, float slope);
/* Layers form a graph in the order they are added: each reads the output of the layer
 * before it, unless lb_model_from(m, id) names another for the next layer (id from
 * lb_model_top; -1 is the model's input). lb_model_add_sum adds the outputs a and b, which
 * must have one shape (the error names both): a residual block is
 *   in = top; conv; bn; relu; conv; bn; a = top; [from(in); conv 1x1; bn; b = top | b = in];
 *   sum(a, b); relu. */
int lb_model_top(const lb_model *m);
int lb_model_from(lb_model *m, int id);
int lb_model_add_sum(lb_model *m, int a, int b);

/* ---- building by name ---- */
/* Architectures (options after ':', comma-separated, in any order):
 *   smallcnn[:bn][,dropout=P][,c1=32][,c2=64][,fc=128]
 *     conv(c->c1, 3x3, pad 1) [+BN] + ReLU + maxpool 2 -> conv(c1->c2, 3x3, pad 1) [+BN]
 *     + ReLU + maxpool 2 -> flatten -> dense(c2*(h/4)*(w/4) -> fc) + ReLU [+ dropout P]
 *     -> dense(fc -> n_classes). With bn the convolutions have no bias (BN's beta is one).
 *   mlp[:hidden=128][,dropout=P]   flatten -> dense(hidden) + ReLU [+ dropout] -> dense(C)
 *   linear                          flatten -> dense(C) (multinomial logistic regression)
 * m->arch gets the canonical spec (every option spelled out), which checkpoints compare. */
lb_model *lb_model_new_arch(const char *arch, int c, int h, int w, int n_classes);
/* A fully convolutional model for a dense task (docs/dense.md): a trunk written as a layer list
 * that ends in [C, H/stride, W/stride] (no gap, flatten or dense), or resnet[:depth=D,width=W]
 * without its pooling and dense layer (it ends at stride 4), then a head convolution of
 * n_outputs channels, head_k x head_k (odd), stride 1, padding head_k/2, with a bias: the output
 * is [N, n_outputs, H/stride, W/stride], RetinaNet's classification subnet in one layer.
 * m->arch = the trunk's canonical spec + ";head:K,k". Errors name both the trunk's output and
 * the grid the stride needs. */
lb_model *lb_model_new_fcn(const char *trunk, int c, int h, int w, int n_outputs, int stride, int head_k);
/* LB_OK if `arch` names an architecture with valid options (checked without data: errors
 * that depend on the input's shape are left to lb_model_new_arch). */
int lb_arch_check(const char *arch);

/* ---- use ---- */
/* Records the forward pass of x [N, in_c, in_h, in_w] on g in g's mode (lb_graph_set_training:
 * training = dropout active, batchnorm on and updating batch statistics; evaluation = neither)
 * and returns the output node ([N, F] for a classifier). */
lb_node *lb_model_forward(lb_model *m, lb_graph *g, lb_node *x);
/* Records layer i alone (or, where lb_model_forward fuses them, conv + relu [+ 2x2 pool]),
 * setting *n_layers to how many layers that was. lb_model_forward is a loop over this; a
 * caller that times each layer (libra-bench) uses it directly. */
lb_node *lb_model_forward_layer(lb_model *m, lb_graph *g, int i, lb_node *x, int *n_layers);
size_t lb_model_n_params(const lb_model *m);
/* The model's classifier: the index of its last layer when that is a dense layer with a bias
 * reading [F] features; LB_EINVAL naming the last layer otherwise. */
int lb_model_classifier(const lb_model *m, int *layer);
/* The penultimate features of x: records every layer but the classifier on g (in g's mode,
 * as lb_model_forward) and returns the node the classifier reads ([N, F]; in a graph of
 * branches not always the layer before it), so features W^T + b are lb_model_forward's
 * logits. NULL when the model has no classifier (LB_EINVAL, as lb_model_classifier) or x
 * has another shape than the model's input (LB_ESHAPE). */
lb_node *lb_model_features(lb_model *m, lb_graph *g, lb_node *x);
/* Output features per sample (the last layer's output size). */
int lb_model_n_outputs(const lb_model *m);
/* A 64-bit hash (lb_hash64) of the parameters then the buffers, bit for bit: two models hash
 * alike exactly when (but for a collision) they hold the same values, so runs that must give
 * the same bits (data-parallel ranks, resumes) can be compared without their files. */
uint64_t lb_model_hash(const lb_model *m);
/* Appends one line per layer (name, output shape with N for the batch, parameter count),
 * then the totals, like Keras' model.summary(). */
void lb_model_summary(const lb_model *m, lb_buf *out);
/* Appends "conv2d_1.weight:32x1x3x3;conv2d_1.bias:32;...": the parameter layout, which a
 * checkpoint must match. */
void lb_model_layout(const lb_model *m, lb_buf *out);

/* ---- initialisation (explicit RNG; same seed, same weights) ---- */
typedef enum {
    /* PyTorch's default for Conv2d/Linear: weight ~ U(+-1/sqrt(fan_in)) (kaiming_uniform_
     * with a = sqrt(5)), bias ~ U(+-1/sqrt(fan_in)). */
    LB_INIT_DEFAULT = 0,
    LB_INIT_KAIMING_NORMAL,   /* N(0, 2/fan_in), bias 0 (He et al., ReLU gain) */
    LB_INIT_KAIMING_UNIFORM,  /* U(+-sqrt(6/fan_in)), bias 0 */
    LB_INIT_XAVIER_NORMAL,    /* N(0, 2/(fan_in+fan_out)), bias 0 (Glorot & Bengio) */
    LB_INIT_XAVIER_UNIFORM    /* U(+-sqrt(6/(fan_in+fan_out))), bias 0 */
} lb_init_kind;

/* "default"/"pytorch", "kaiming-normal", "kaiming-uniform", "xavier-normal",
 * "xavier-uniform" (underscores accepted too). */
int lb_init_parse(const char *name, lb_init_kind *out);
const char *lb_init_name(lb_init_kind kind);
/* Initialises every parameter, layer by layer in order (fan_in of a conv is C*k*k, of a
 * dense layer its inputs); batchnorm: gamma 1, beta 0, running mean 0, running var 1. */
void lb_model_init(lb_model *m, lb_init_kind kind, lb_rng *rng);

typedef enum {
    LB_PRIOR_SOFTMAX = 0,  /* b_c = log(pi_c): softmax of the initial logits is the prior */
    LB_PRIOR_SIGMOID = 1   /* b_c = -log((1 - pi_c)/pi_c) (Lin et al., focal loss paper) */
} lb_prior_mode;
/* Sets the bias of the last dense layer from class priors pi_c = counts_c / sum (every
 * count > 0, n must equal the layer's outputs). */
int lb_model_prior_bias(lb_model *m, const int *class_counts, int n, lb_prior_mode mode);
/* The prior of a dense head (Lin et al. 2017, Sec. 3.3): the model's last layer is a convolution
 * with a bias, K outputs per location. LB_PRIOR_SIGMOID (one-vs-all, K object classes): every
 * b_c = -log((1 - pi)/pi), so every class starts at probability pi everywhere; LB_PRIOR_SOFTMAX
 * (K = C + 1, the last output the background): b_c = log(pi) for the C object classes and
 * log(1 - C pi) for the background, so softmax starts at pi per object class. pi in (0, 1). */
int lb_model_prior_bias_dense(lb_model *m, double pi, lb_prior_mode mode);

#ifdef __cplusplus
}
#endif
#endif
