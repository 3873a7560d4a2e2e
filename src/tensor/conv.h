/* The convolution's geometry, shared by its two algorithms: im2col + sgemm (ops_conv.c) and
 * Winograd F(2x2, 3x3) for 3x3 stride-1 kernels (ops_winograd.c). */
#ifndef LIBRA_TENSOR_CONV_H
#define LIBRA_TENSOR_CONV_H

#include <stddef.h>

typedef struct {
    int N, C, H, W, F, KH, KW, OH, OW, sh, sw, pt, pl;
} conv_geom;

/* Winograd F(2x2, 3x3) (Lavin and Gray, 2016): each 2x2 output tile is A^T [U (.) V] A with
 * U = G g G^T (the 3x3 kernel as 4x4) and V = B^T d B (the tile's 4x4 input window), 16
 * products per tile instead of 36. Over a chunk of images and all channels the 16 elementwise
 * products become 16 sgemms [F, C] x [C, tiles]. The three passes are the exact adjoints of the
 * forward's steps, so they are the gradients of what the forward computes. */

/* Tiles per chunk, the sgemms' N (so a chunk has at most this many images). 256 keeps a
 * chunk of the reference net's conv2 (49 tiles per image: 5 images) and of ResNet-20's 32x32
 * stage (256: one image) in a few hundred KB. */
#define LB_WINO_TILES 128

/* Whether q takes the Winograd path: a 3x3 kernel at stride 1 with enough channels for its
 * sgemms ([tiles, C] x [C, F]) to pay: C and F >= LB_WINO_MIN. Measured (batch 128, 1 thread,
 * forward + backward): 16 channels on 32x32 lose (75 ms against im2col's 71), 32 on 16x16 win
 * (47 against 56), 64 on 8x8 win (26 against 37); the reference net's conv2 (32 -> 64 on 14x14)
 * wins by 1.5x. */
#define LB_WINO_MIN 32
int lb__wino_applies(const conv_geom *q);
/* Tiles per image, and images per chunk (at most n). */
int lb__wino_tiles(const conv_geom *q);
int lb__wino_chunk(const conv_geom *q, int n);
/* Floats of scratch one part needs for chunks of `chunk` images: forward (V, M and rows) and
 * backward (V, dV, dM and rows). */
size_t lb__wino_forward_floats(const conv_geom *q, int chunk);
size_t lb__wino_backward_floats(const conv_geom *q, int chunk);
/* U [16, F, C] from w [F, C, 3, 3]. */
void lb__wino_weights(const conv_geom *q, const float *w, float *U);
/* y_i [F, OH, OW] (i = 0 .. n-1, y_i = y + i * ys) = conv(x_i) for the n images x_i = x + i * xs,
 * without bias. */
void lb__wino_forward(const conv_geom *q, const float *U, const float *x, size_t xs, int n, float *y, size_t ys,
                      float *scratch);
/* For the n images of a chunk, with dy_i = dy + i * ys: dU [16, F, C] += the chunk's
 * Winograd-domain weight gradient (when dU is not NULL) and dx_i += the input gradient (when dx
 * is not NULL; dx_i = dx + i * xs). */
void lb__wino_backward(const conv_geom *q, const float *U, const float *x, const float *dy, size_t xs, size_t ys,
                       int n, float *dU, float *dx, float *scratch);
/* dw [F, C, 3, 3] += G^T dU G. */
void lb__wino_weight_grad(const conv_geom *q, const float *dU, float *dw);

#endif
