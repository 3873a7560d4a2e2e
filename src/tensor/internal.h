/* Shared by the tensor sources: argument checks and the gemm wrapper. */
#ifndef LIBRA_TENSOR_INTERNAL_H
#define LIBRA_TENSOR_INTERNAL_H

#include "libra/tensor.h"

/* Ops given a NULL input return NULL and keep the first error message. */
#define LB_NEED(x) \
    do {           \
        if (!(x)) return NULL; \
    } while (0)

/* Row-major C (+)= op(A) op(B): op(A) is [M,K], op(B) is [K,N]; beta 0 overwrites, 1 accumulates.
 * Split over lb_get_threads() threads by rows or columns of C when it is large enough. */
void lb__gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, const float *B, float beta,
             float *C);
/* The same on the calling thread only, with explicit leading dimensions (for use inside
 * lb_parallel parts). */
void lb__gemm_serial(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);

/* lb_parallel and lb_split_range are in libra/tensor.h. */

/* Makes OpenBLAS's work buffers for n threads certain before any product (src/tensor/blas.c):
 * LB_OK, or LB_ENOMEM saying how much address space they need and how much is left. */
int lb__blas_reserve(int n);

/* The typed arguments of an op's node (see LB_NODE_ARGS); checked to fit at compile time. */
#define LB_ARGS(node, type) \
    (LB_NODE_ARGS(node, type) + 0 * sizeof(char[sizeof(type) <= sizeof(((lb_node *)0)->args) ? 1 : -1]))

/* Records "op: message (shape a[, shape b])" and returns NULL. */
lb_node *lb__shape_error(const char *op, const lb_node *a, const lb_node *b, const char *what);

#endif
