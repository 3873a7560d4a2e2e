/* matmul: one sgemm forward, two backward. */
#include "internal.h"

/* Whether each operand is transposed, and the inner dimension. */
typedef struct {
    int ta, tb, K;
} matmul_args;

static int matmul_backward(lb_node *y)
{
    lb_node *a = y->in[0], *b = y->in[1];
    const matmul_args *q = LB_ARGS(y, matmul_args);
    int ta = q->ta, tb = q->tb, M = y->shape[0], N = y->shape[1], K = q->K;
    /* y = A'B' with A' = op(A), B' = op(B): dA' = dY B'^T, dB' = A'^T dY */
    if (a->requires_grad) {
        if (!ta) /* dA [M,K] = dY [M,N] op(B)^T */
            lb__gemm(0, !tb, M, K, N, y->grad, b->val, 1.0f, a->grad);
        else /* dA [K,M] = op(B) [K,N] dY^T */
            lb__gemm(tb, 1, K, M, N, b->val, y->grad, 1.0f, a->grad);
    }
    if (b->requires_grad) {
        if (!tb) /* dB [K,N] = op(A)^T [K,M] dY */
            lb__gemm(!ta, 0, K, N, M, a->val, y->grad, 1.0f, b->grad);
        else /* dB [N,K] = dY^T [N,M] op(A) */
            lb__gemm(1, ta, N, K, M, y->grad, a->val, 1.0f, b->grad);
    }
    return LB_OK;
}

lb_node *lb_matmul(lb_graph *g, lb_node *a, lb_node *b, int transpose_a, int transpose_b)
{
    LB_NEED(a);
    LB_NEED(b);
    if (a->ndim != 2 || b->ndim != 2) return lb__shape_error("matmul", a, b, "expects 2-D inputs");
    int M = transpose_a ? a->shape[1] : a->shape[0];
    int K = transpose_a ? a->shape[0] : a->shape[1];
    int Kb = transpose_b ? b->shape[1] : b->shape[0];
    int N = transpose_b ? b->shape[0] : b->shape[1];
    if (K != Kb) return lb__shape_error("matmul", a, b, "inner dimensions differ");
    int shape[2] = {M, N};
    lb_node *in[2] = {a, b};
    lb_node *y = lb_node_new(g, "matmul", 2, shape, 2, in, matmul_backward);
    if (!y) return NULL;
    matmul_args *q = LB_ARGS(y, matmul_args);
    *q = (matmul_args){transpose_a != 0, transpose_b != 0, K};
    lb__gemm(q->ta, q->tb, M, N, K, a->val, b->val, 0.0f, y->val);
    return y;
}
