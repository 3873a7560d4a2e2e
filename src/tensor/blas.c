/* OpenBLAS's memory, made certain before any matrix product. OpenBLAS 0.3.21 gives each thread
 * that calls sgemm a 128 MB work buffer, mapped on first use and kept; when the mapping is
 * refused (an address-space limit) its allocator retries forever, and a run hangs instead of
 * failing. So libra reserves the buffers itself, once per thread count: it checks the limits,
 * tries the mapping, and then has OpenBLAS map its buffers while the room is known to be there;
 * later products by at most that many threads reuse them and never map again. Its own thread
 * pool, which libra does not use, is kept from starting by OPENBLAS_NUM_THREADS=1 (the programs
 * set it before OpenBLAS loads; see docs/reliability.md). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "internal.h"

#include <cblas.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>

/* OpenBLAS's buffer allocator: internal, but exported by its builds (0.3.x); weak, so that a
 * BLAS without them still links (then only the check and the trial mapping are made). */
extern void *blas_memory_alloc(int procpos) __attribute__((weak));
extern void blas_memory_free(void *area) __attribute__((weak));

#define BLAS_BUFFER ((uint64_t)(32 << 22) + 4096) /* BUFFER_SIZE of x86_64 builds, and a page */
#define THREAD_EXTRA ((uint64_t)72 << 20)       /* a thread's stack and malloc arena, measured */
#define MB(x) ((unsigned long long)((x) >> 20))

static int reserved = 1; /* the calling thread's buffer is counted at the first check */
static int checked;

static int refuse(int n, uint64_t need, uint64_t room)
{
    return lb_error(LB_ENOMEM,
                    "not enough memory: %d thread%s of matrix products need %llu MB of address space (OpenBLAS maps a 128 MB work "
                    "buffer for each thread that multiplies matrices) but the limit leaves %llu MB (ulimit -v / -d); "
                    "use fewer threads or raise the limit",
                    n, n == 1 ? "" : "s", MB(need), MB(room));
}

int lb__blas_reserve(int n)
{
    if (n < 1) n = 1;
    if (checked && n <= reserved) return LB_OK;
    int have = checked ? reserved : 0;
    uint64_t need = (uint64_t)(n - have) * BLAS_BUFFER + (uint64_t)(n - 1) * THREAD_EXTRA;
    lb_memory_room r = lb_memory_headroom();
    uint64_t room = r.address_space < r.data ? r.address_space : r.data;
    if (need > room) return refuse(n, need, room);
    if (room != UINT64_MAX) { /* a limit: try the whole mapping before OpenBLAS does */
        void *p = mmap(NULL, need, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return refuse(n, need, room);
        munmap(p, need);
    }
    if (blas_memory_alloc && blas_memory_free) {
        void *held[64];
        int k = 0;
        for (; k < n && k < 64; k++) held[k] = blas_memory_alloc(0);
        while (k > 0) blas_memory_free(held[--k]);
    }
    checked = 1;
    if (n > reserved) reserved = n;
    return LB_OK;
}
