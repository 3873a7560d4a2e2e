/* The fixed pairwise tree that sums the gradients of a data-parallel step (the shards' and
 * then the ranks' partial sums), so a total depends on the number of leaves, never on who
 * computed them. One definition, three forms: the schedule (lb_tree_step, what the MPI
 * layer follows rank by rank), the sum of n buffers in place (lb_tree_sum) and the
 * incremental one that needs log2 n buffers (lb_tree_acc, the trainer's shards). */
#include "internal.h"

#include <string.h>

void lb_tree_add(float *acc, const float *right, size_t len)
{
    /* IEEE addition is commutative: acc + right and right + acc are the same bits */
    for (size_t i = 0; i < len; i++) acc[i] = acc[i] + right[i];
}

int lb_tree_step(int rank, int size, int level, int *peer)
{
    *peer = -1;
    if (level < 1 || rank < 0 || rank >= size || rank % level != 0) return LB_TREE_IDLE;
    if (rank % (2 * level) == level) {
        *peer = rank - level;
        return LB_TREE_SEND;
    }
    if (rank + level >= size) return LB_TREE_IDLE;
    *peer = rank + level;
    return LB_TREE_RECV;
}

void lb_tree_sum(float *const *x, int n, size_t len)
{
    for (int level = 1; level < n; level *= 2)
        for (int i = 0; i < n; i += 2 * level) {
            int peer;
            if (lb_tree_step(i, n, level, &peer) == LB_TREE_RECV) lb_tree_add(x[i], x[peer], len);
        }
}

/* The levels a tree of n leaves keeps partial sums at: the bits of the counts 1 .. n-1. */
static int depth_of(int n)
{
    int d = 0;
    for (int k = n - 1; k > 0; k >>= 1) d++;
    return d;
}

int lb_tree_acc_init(lb_tree_acc *a, int n, size_t len)
{
    memset(a, 0, sizeof *a);
    if (n < 1) return lb_error(LB_EINVAL, "tree sum: %d leaves (at least 1)", n);
    a->n = n;
    a->len = len;
    a->depth = depth_of(n);
    if (a->depth && !(a->level = lb_malloc((size_t)a->depth * len * sizeof(float) + 1)))
        return lb_error(LB_ENOMEM, "tree sum: out of memory for %d partial sums of %zu floats", a->depth, len);
    return LB_OK;
}

void lb_tree_acc_free(lb_tree_acc *a)
{
    if (!a) return;
    lb_free(a->level);
    memset(a, 0, sizeof *a);
}

/* The binary counter: leaf k first takes in the stored sums of the trailing one bits of k
 * (the complete left siblings), then is stored at the level of its first zero bit; the last
 * leaf instead takes in every stored sum, lowest first, which is the right spine of the tree
 * split at the largest power of two below n. */
int lb_tree_acc_push(lb_tree_acc *a, float *x)
{
    int k = a->count, l = 0;
    for (; (k >> l) & 1; l++) lb_tree_add(x, a->level + (size_t)l * a->len, a->len);
    if (++a->count < a->n) {
        memcpy(a->level + (size_t)l * a->len, x, a->len * sizeof(float));
        return 0;
    }
    for (l++; l < a->depth; l++)
        if ((k >> l) & 1) lb_tree_add(x, a->level + (size_t)l * a->len, a->len);
    a->count = 0;
    return 1;
}
