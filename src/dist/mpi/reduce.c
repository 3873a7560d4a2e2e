/* The data-parallel reducer of the MPI layer (libra/train.h's lb_reducer): the fixed pairwise
 * tree over rank index in point-to-point messages, then the total from rank 0 to every rank;
 * and a hash compared across ranks. On a communicator of its own, so that no message of the
 * study's scheduler is ever taken for one of these. */
#include <mpi.h>

#include <limits.h>
#include <stdint.h>

#include "dist/mpi/layer.h"
#include "libra/tensor.h"

enum { TAG_TREE = 1 };

struct lb__reducer_state {
    lb_reducer r;        /* what the trainer gets; r.ctx is this state */
    MPI_Comm comm;
    float *buf;          /* a peer's partial sum */
    size_t cap;
};

static int tree_sum(void *ctx, float *x, size_t n)
{
    struct lb__reducer_state *s = ctx;
    if (n > INT_MAX) return lb_error(LB_ENOMEM, "reducer: %zu floats are more than one MPI message holds", n);
    if (n > s->cap) {
        float *b = lb_realloc(s->buf, n * sizeof *b);
        if (!b) return lb_error(LB_ENOMEM, "reducer: out of memory for %zu floats", n);
        s->buf = b;
        s->cap = n;
    }
    int ok = MPI_SUCCESS;
    for (int level = 1; level < s->r.size && ok == MPI_SUCCESS; level *= 2) {
        int peer = -1, what = lb_tree_step(s->r.rank, s->r.size, level, &peer);
        if (what == LB_TREE_RECV) {
            ok = MPI_Recv(s->buf, (int)n, MPI_FLOAT, peer, TAG_TREE, s->comm, MPI_STATUS_IGNORE);
            if (ok == MPI_SUCCESS) lb_tree_add(x, s->buf, n);
        } else if (what == LB_TREE_SEND) {
            ok = MPI_Send(x, (int)n, MPI_FLOAT, peer, TAG_TREE, s->comm);
        }
    }
    if (ok == MPI_SUCCESS) ok = MPI_Bcast(x, (int)n, MPI_FLOAT, 0, s->comm); /* rank 0 holds the tree's total */
    return ok == MPI_SUCCESS ? LB_OK : lb_error(LB_EIO, "reducer: an MPI message of rank %d failed", s->r.rank);
}

/* The hash h and ~h, each the largest over the ranks: every rank's is the same exactly when
 * max(h) == ~max(~h) (= min(h)). */
static int same_everywhere(void *ctx, const void *bytes, size_t n)
{
    struct lb__reducer_state *s = ctx;
    uint64_t h = lb_hash64(bytes, n, LB_HASH_INIT), mine[2] = {h, ~h}, all[2];
    if (MPI_Allreduce(mine, all, 2, MPI_UINT64_T, MPI_MAX, s->comm) != MPI_SUCCESS)
        return lb_error(LB_EIO, "reducer: comparing a hash across ranks failed on rank %d", s->r.rank);
    return all[0] == ~all[1];
}

void lb__reducer_free(struct lb__reducer_state *s)
{
    if (!s) return;
    MPI_Comm_free(&s->comm);
    lb_free(s->buf);
    lb_free(s);
}

const lb_reducer *lb_dist_reducer(lb_dist *d)
{
    struct lb__reducer_state **slot = lb__dist_reducer_slot(d);
    if (!slot) return NULL;
    if (*slot) return &(*slot)->r;
    struct lb__reducer_state *s = lb_calloc(1, sizeof *s);
    if (!s) {
        lb_error(LB_ENOMEM, "reducer: out of memory");
        return NULL;
    }
    if (MPI_Comm_dup(MPI_COMM_WORLD, &s->comm) != MPI_SUCCESS) {
        lb_free(s);
        lb_error(LB_EIO, "reducer: MPI_Comm_dup failed");
        return NULL;
    }
    MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
    s->r = (lb_reducer){s, d->rank, d->size, tree_sum, same_everywhere};
    *slot = s;
    return &s->r;
}

int lb_dist_any(lb_dist *d, int flag)
{
    if (!d || !d->active || d->size <= 1) return flag != 0;
    int mine = flag != 0, any = 0;
    if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return lb_error(LB_EIO, "MPI: agreeing across ranks failed on rank %d", d->rank);
    return any;
}
