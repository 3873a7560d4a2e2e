/* The MPI layer: a study across the ranks of an MPI job. Rank 0 plans, hands the jobs out
 * one at a time (largest first), runs jobs itself while it answers the others between its
 * training steps, and writes every file; the other ranks run what they are handed and send
 * each record back as the text of its JSON file. The messages (MPI_CHAR on MPI_COMM_WORLD):
 *   rank r -> 0   HELLO  its study's settings (rank 0 refuses other settings)
 *                 RESULT "INDEX\n" + the record's JSON text
 *                 FAIL   "INDEX\nSTATUS\nmessage" (INDEX -1: not about a job; LB_EINTR: a signal)
 *                 GONE   a message: ending before rank 0 said stop
 *                 BYE    told to stop, about to call MPI_Finalize
 *                 DONE   told that the study is over (NEXT): about to serve the next one
 *   0 -> rank r   JOB    lb__job_encode's text;  CANCEL  stop the job you run;  STOP  [why]
 *                 NEXT   this study is over, another follows (a sweep: one study per profile)
 * Waiting is polling (MPI_Iprobe, MPI_Test) with a 5 ms sleep: a blocking receive of Open
 * MPI spins a core, which on a shared node takes it from a training run. */
#include <mpi.h>

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/mpi/layer.h"

enum { TAG_HELLO = 1, TAG_RESULT, TAG_FAIL, TAG_GONE, TAG_BYE, TAG_JOB, TAG_CANCEL, TAG_STOP, TAG_NEXT, TAG_DONE };
enum { W_NEW, W_IDLE, W_BUSY, W_GONE };

typedef struct peer {
    int state;                  /* W_NEW until its hello */
    int stop_sent, cancel_sent, bye, done;
    lb_job *job;                /* W_BUSY: the job it runs */
    double t0;
} peer;

typedef struct mpi_state {
    int rank, size, finalized;
    lb_study *st;               /* rank 0 during a phase; a worker while it serves */
    peer *peers;                /* rank 0: [size] (0 unused) */
    lb_job **queue;             /* rank 0: the phase's jobs, largest first */
    int n, next;
    int rc, interrupted;        /* rank 0: the first failure (message in msg); a rank's signal */
    char msg[2048];
    int got_stop, got_next, cancelled; /* a worker */
    struct lb__reducer_state *red; /* data-parallel training (reduce.c), made on demand */
} mpi_state;

#define COMM MPI_COMM_WORLD

static void nap(void)
{
    struct timespec ts = {0, 5000000}; /* 5 ms: jobs last seconds */
    nanosleep(&ts, NULL);
}

/* Sends text[0..n) and waits, sleeping, until the send is complete. */
static int send_text(int dest, int tag, const char *text, size_t n)
{
    MPI_Request req;
    if (n > INT_MAX) return lb_error(LB_ENOMEM, "MPI: a message of %zu bytes to rank %d is too long", n, dest);
    if (MPI_Isend((void *)(text ? text : ""), (int)n, MPI_CHAR, dest, tag, COMM, &req) != MPI_SUCCESS)
        return lb_error(LB_EIO, "MPI: sending to rank %d failed", dest);
    for (int done = 0; !done;) {
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return lb_error(LB_EIO, "MPI: sending to rank %d failed", dest);
        if (!done) nap();
    }
    return LB_OK;
}

static int send_str(int dest, int tag, const char *s) { return send_text(dest, tag, s, s ? strlen(s) : 0); }

/* The message probed in s as a NUL-terminated text (lb_free it); NULL (status stored) when
 * it cannot be held, the message then taken off the queue all the same. */
static char *recv_text(const MPI_Status *s)
{
    int count = 0;
    MPI_Get_count(s, MPI_CHAR, &count);
    char *buf = lb_malloc((size_t)count + 1), spare;
    MPI_Recv(buf ? buf : &spare, buf ? count : 1, MPI_CHAR, s->MPI_SOURCE, s->MPI_TAG, COMM, MPI_STATUS_IGNORE);
    if (!buf) {
        lb_error(LB_ENOMEM, "MPI: out of memory for a message of %d bytes from rank %d", count, s->MPI_SOURCE);
        return NULL;
    }
    buf[count] = '\0';
    return buf;
}

/* One waiting message from `source` (MPI_ANY_SOURCE: any), or 0. */
static int poll_msg(int source, MPI_Status *s)
{
    int flag = 0;
    return MPI_Iprobe(source, MPI_ANY_TAG, COMM, &flag, s) == MPI_SUCCESS && flag;
}

/* ======================================================================== rank 0 */

static int stopping(const mpi_state *m) { return m->interrupted || (m->st && lb_study_stopping(m->st)); }
static int can_start(const mpi_state *m) { return m->rc == LB_OK && !stopping(m) && m->next < m->n; }

/* The study's first failure is kept (with its message); later ones are dropped. */
static void fail(mpi_state *m, int rc)
{
    if (m->rc != LB_OK || rc == LB_OK) return;
    m->rc = rc;
    snprintf(m->msg, sizeof m->msg, "%s", lb_last_error());
}

static int n_busy(const mpi_state *m)
{
    int n = 0;
    for (int w = 1; w < m->size; w++) n += m->peers[w].state == W_BUSY;
    return n;
}

static void on_hello(mpi_state *m, int w, const char *settings)
{
    char diff[512];
    if (lb_study_same_settings(m->st, settings, diff, sizeof diff)) {
        m->peers[w].state = W_IDLE;
        return;
    }
    char why[700], *there = strstr(diff, "' there, '"), *here = strrchr(diff, ' ');
    if (there && here && !strcmp(here, " here") && here > there) { /* "KEY: 'A' there, 'B' here" */
        *here = '\0';
        *there = '\0';
        snprintf(why, sizeof why, "rank %d's settings differ from rank 0's (%s' on rank %d, '%s on rank 0)", w, diff, w,
                 there + 10);
    } else {
        snprintf(why, sizeof why, "rank %d's settings differ from rank 0's (%s)", w, diff);
    }
    fail(m, lb_error(LB_EINVAL, "%s: every rank needs the same flags and the same data (the same files on every "
                                "machine)", why));
    m->peers[w].state = W_GONE;
    m->peers[w].stop_sent = 1;
    send_str(w, TAG_STOP, why);
}

/* A record from rank w: stored as if this process had made it, then reported. */
static void on_result(mpi_state *m, int w, char *text)
{
    peer *p = &m->peers[w];
    char *end;
    long index = strtol(text, &end, 10);
    if (p->state != W_BUSY || *end != '\n' || index != p->job->index) {
        fail(m, lb_error(LB_ESTATE, "MPI: rank %d sent a record of job %ld, which it was not running", w, index));
        return;
    }
    lb_job *job = p->job;
    p->state = W_IDLE;
    p->job = NULL;
    lb_run_record rec;
    char *csv = strchr(end + 1, '\f'); /* the predictions follow the record (JSON has no raw form feed) */
    if (csv) *csv++ = '\0';
    int rc = lb_run_record_parse_json(&rec, end + 1, strlen(end + 1), job->name);
    if (rc == LB_OK && csv) rc = lb_predictions_parse_csv(&rec.pred, csv, strlen(csv), job->name);
    if (rc == LB_OK) {
        rec.rank = w;
        rc = lb_study_store(m->st, job, &rec);
        lb_run_record_free(&rec);
    }
    if (rc == LB_OK) rc = lb_study_job_done(m->st, job, lb_now() - p->t0);
    if (rc != LB_OK) lb_error_prefix("the record of %s from rank %d", job->name, w);
    fail(m, rc);
}

static void on_fail(mpi_state *m, int w, const char *text)
{
    peer *p = &m->peers[w];
    char *end;
    long index = strtol(text, &end, 10);
    long status = *end == '\n' ? strtol(end + 1, &end, 10) : LB_ESTATE;
    const char *msg = *end == '\n' ? end + 1 : text;
    if (p->state == W_BUSY && index == p->job->index) {
        p->state = W_IDLE;
        p->job = NULL;
    }
    if (status == LB_EINTR) m->interrupted = 1;
    else fail(m, lb_error(status < 0 && status >= LB_EINTR ? (int)status : LB_ESTATE, "rank %d: %s", w, msg));
}

static void on_gone(mpi_state *m, int w, const char *text)
{
    int busy = m->peers[w].state == W_BUSY;
    m->peers[w].state = W_GONE;
    fail(m, lb_error(LB_ESTATE, "rank %d ended before rank 0 told it to%s%s%s", w, busy ? " (in the middle of a job)" : "",
                     text[0] ? ": " : "", text));
}

/* Every message waiting for rank 0, handled. */
static void service(mpi_state *m)
{
    MPI_Status s;
    while (poll_msg(MPI_ANY_SOURCE, &s)) {
        int w = s.MPI_SOURCE;
        char *text = recv_text(&s);
        if (!text) {
            fail(m, lb_last_status());
            continue;
        }
        switch (s.MPI_TAG) {
        case TAG_HELLO: on_hello(m, w, text); break;
        case TAG_RESULT: on_result(m, w, text); break;
        case TAG_FAIL: on_fail(m, w, text); break;
        case TAG_GONE: on_gone(m, w, text); break;
        case TAG_BYE: m->peers[w].bye = 1; break;
        case TAG_DONE: m->peers[w].done = 1; break;
        default: fail(m, lb_error(LB_ESTATE, "MPI: rank %d sent a message of unknown kind %d", w, s.MPI_TAG));
        }
        lb_free(text);
    }
}

/* The next jobs to the ranks waiting for one; when stopping, a cancel to the busy ones. */
static void hand_out(mpi_state *m)
{
    for (int w = 1; w < m->size; w++) {
        peer *p = &m->peers[w];
        if (p->state == W_BUSY && stopping(m) && !p->cancel_sent) {
            p->cancel_sent = 1;
            fail(m, send_str(w, TAG_CANCEL, ""));
        }
        if (p->state != W_IDLE || !can_start(m)) continue;
        lb_job *job = m->queue[m->next++];
        lb_buf b = {0};
        int rc = lb__job_encode(job, &b);
        if (rc == LB_OK) rc = send_text(w, TAG_JOB, b.p, b.n);
        lb_buf_free(&b);
        if (rc == LB_OK) *p = (peer){.state = W_BUSY, .stop_sent = p->stop_sent, .job = job, .t0 = lb_now()};
        fail(m, rc);
    }
}

/* Between two steps of rank 0's own job: answer the others; stop the job when stopping. */
static int between_steps(void *ctx, const lb_train_progress *p)
{
    (void)p;
    mpi_state *m = ctx;
    service(m);
    hand_out(m);
    return stopping(m);
}

/* The next job, run here (rank 0 works too, answering the others between its steps). */
static void own_job(mpi_state *m)
{
    lb_job *job = m->queue[m->next++];
    lb_train_hooks hooks = {.ctx = m, .on_step = between_steps};
    double t0 = lb_now();
    lb_run_record rec;
    int rc = lb_study_run_job_hooked(m->st, job, &hooks, &rec);
    if (rc != LB_OK) {
        fail(m, rc);
        return;
    }
    if (!stopping(m)) { /* a stopped run is shortened: never stored */
        rec.rank = 0;
        rc = lb_study_store(m->st, job, &rec);
        if (rc == LB_OK) rc = lb_study_job_done(m->st, job, lb_now() - t0);
    }
    lb_run_record_free(&rec);
    fail(m, rc);
}

static int run_mpi(void *ctx, lb_study *st, lb_job *const *todo, int n)
{
    mpi_state *m = ctx;
    if (!(m->queue = lb_malloc(((size_t)n + 1) * sizeof *m->queue))) return lb_error(LB_ENOMEM, "study: out of memory");
    lb__jobs_by_cost(todo, n, m->queue);
    m->st = st;
    m->n = n;
    m->next = 0;
    m->rc = LB_OK;
    for (;;) {
        service(m);
        hand_out(m);
        if (can_start(m)) {
            own_job(m);
            continue;
        }
        if (!n_busy(m) && (m->next >= m->n || m->rc != LB_OK || stopping(m))) break;
        nap();
    }
    int stop = stopping(m);
    m->st = NULL;
    lb_free(m->queue);
    m->queue = NULL;
    if (m->rc != LB_OK) return lb_error(m->rc, "%s", m->msg);
    return stop ? lb_error(LB_EINTR, "interrupted") : LB_OK;
}

lb_scheduler lb_scheduler_mpi(lb_dist *d)
{
    if (!d || !d->active || d->size <= 1 || !d->impl || d->rank != 0) return lb_scheduler_serial();
    return (lb_scheduler){"mpi", 1, d->impl, run_mpi};
}

/* Between two studies of a sweep: every rank still in the job told that this one is over,
 * then each one's DONE awaited. The messages before it are handled as during a phase: a
 * HELLO rank 0 had not seen (a study with no job to hand out) is checked, a failure kept.
 * Each rank then says HELLO again, for the next study. */
int lb_dist_next_study(lb_dist *d, lb_study *st)
{
    mpi_state *m = d && d->active && d->size > 1 ? d->impl : NULL;
    if (!m) return LB_OK;
    if (m->rank != 0) return lb_error(LB_ESTATE, "lb_dist_next_study: rank %d is not rank 0", m->rank);
    m->st = st;
    m->rc = LB_OK;
    for (int w = 1; w < m->size && m->rc == LB_OK; w++)
        if (m->peers[w].state != W_GONE) fail(m, send_str(w, TAG_NEXT, ""));
    for (int left = 1; left && m->rc == LB_OK;) {
        service(m);
        left = 0;
        for (int w = 1; w < m->size; w++) left += m->peers[w].state != W_GONE && !m->peers[w].done;
        if (left) nap();
    }
    for (int w = 1; w < m->size; w++)
        if (m->peers[w].state != W_GONE) m->peers[w] = (peer){.state = W_NEW};
    m->st = NULL;
    if (m->interrupted && m->rc == LB_OK) return lb_error(LB_EINTR, "interrupted");
    return m->rc == LB_OK ? LB_OK : lb_error(m->rc, "%s", m->msg);
}

int lb_dist_stopped(const lb_dist *d)
{
    const mpi_state *m = d && d->active ? d->impl : NULL;
    return m && m->got_stop;
}

/* Rank 0's end: every rank told to stop (a cancel first to a busy one), then every BYE
 * awaited; what still arrives (a late record of an interrupted study) is dropped. */
static void finish_rank0(mpi_state *m)
{
    for (int w = 1; w < m->size; w++) {
        peer *p = &m->peers[w];
        if (p->state == W_BUSY && !p->cancel_sent) send_str(w, TAG_CANCEL, "");
        if (!p->stop_sent) send_str(w, TAG_STOP, "");
        p->stop_sent = 1;
    }
    int left = 0;
    for (int w = 1; w < m->size; w++) left += !m->peers[w].bye; /* a refused rank may have said it already */
    while (left > 0) {
        MPI_Status s;
        if (!poll_msg(MPI_ANY_SOURCE, &s)) {
            nap();
            continue;
        }
        char *text = recv_text(&s);
        if (s.MPI_TAG == TAG_BYE && !m->peers[s.MPI_SOURCE].bye) {
            m->peers[s.MPI_SOURCE].bye = 1;
            left--;
        }
        lb_free(text);
    }
}

/* ======================================================================== the other ranks */

static int send_fail(int index, int status, const char *msg)
{
    char *text = lb_strfmt("%d\n%d\n%s", index, status, msg ? msg : "");
    int rc = text ? send_str(0, TAG_FAIL, text) : lb_error(LB_ENOMEM, "MPI: out of memory");
    lb_free(text);
    return rc;
}

/* Between two steps of a worker's job: a cancel (or a stop) from rank 0, or a signal here. */
static int worker_step(void *ctx, const lb_train_progress *p)
{
    (void)p;
    mpi_state *m = ctx;
    MPI_Status s;
    if (poll_msg(0, &s) && (s.MPI_TAG == TAG_CANCEL || s.MPI_TAG == TAG_STOP)) {
        if (s.MPI_TAG == TAG_CANCEL) lb_free(recv_text(&s)); /* a stop stays for the serving loop */
        m->cancelled = 1;
    }
    return m->cancelled || lb_study_stopping(m->st);
}

/* One job handed out by rank 0: run, and its record (or its failure) sent back. */
static int worker_job(mpi_state *m, char *text)
{
    lb_job job;
    int rc = lb__job_decode(text, &job);
    if (rc != LB_OK) return send_fail(-1, rc, lb_last_error());
    if (lb_study_stopping(m->st)) return send_fail(job.index, LB_EINTR, "interrupted");
    m->cancelled = 0;
    lb_train_hooks hooks = {.ctx = m, .on_step = worker_step};
    lb_run_record rec;
    rc = lb_study_run_job_hooked(m->st, &job, &hooks, &rec);
    if (rc != LB_OK) return send_fail(job.index, rc, lb_last_error());
    lb_buf b = {0};
    if (!m->cancelled && !lb_study_stopping(m->st)) {
        rec.rank = m->rank;
        lb_buf_printf(&b, "%d\n", job.index);
        rc = lb_run_record_to_json(&rec, &b);
        if (rc == LB_OK && rec.pred.n > 0) {
            lb_buf_puts(&b, "\f");
            rc = lb_predictions_to_csv(&rec.pred, &b);
        }
    }
    lb_run_record_free(&rec);
    if (m->cancelled || lb_study_stopping(m->st)) rc = send_fail(job.index, LB_EINTR, "interrupted");
    else rc = rc == LB_OK ? send_text(0, TAG_RESULT, b.p, b.n) : send_fail(job.index, rc, lb_last_error());
    lb_buf_free(&b);
    return rc;
}

int lb_dist_serve(lb_dist *d, lb_study *st)
{
    mpi_state *m = d ? d->impl : NULL;
    if (!m || d->rank == 0) return lb_error(LB_ESTATE, "lb_dist_serve: not a rank other than 0 of an MPI job");
    m->st = st;
    m->got_next = 0;
    int rc = send_str(0, TAG_HELLO, lb_study_settings(st)), told = 0;
    char *why = NULL;
    while (rc == LB_OK && !m->got_stop && !m->got_next) {
        MPI_Status s;
        if (lb_study_stopping(st) && !told) { /* a signal here: rank 0 stops the study */
            told = 1;
            rc = send_fail(-1, LB_EINTR, "interrupted");
        }
        if (!poll_msg(0, &s)) {
            nap();
            continue;
        }
        char *text = recv_text(&s);
        if (!text) rc = lb_last_status();
        else if (s.MPI_TAG == TAG_JOB) rc = worker_job(m, text);
        else if (s.MPI_TAG == TAG_STOP) {
            m->got_stop = 1;
            why = text[0] ? text : NULL;
        } else if (s.MPI_TAG == TAG_NEXT) {
            m->got_next = 1;
            rc = send_str(0, TAG_DONE, "");
        } /* a late cancel: nothing to stop */
        if (text != why) lb_free(text);
    }
    m->st = NULL;
    if (rc == LB_OK && why) rc = lb_error(LB_EINVAL, "rank 0 refused this rank: %s", why);
    lb_free(why);
    if (rc == LB_OK && lb_study_stopping(st)) rc = lb_error(LB_EINTR, "interrupted");
    return rc;
}

/* A worker's end: gone (with the last message) if rank 0 has not said stop, then wait for
 * it (refusing any job), then BYE. */
static void finish_worker(mpi_state *m)
{
    if (!m->got_stop) send_str(0, TAG_GONE, lb_last_status() != LB_OK ? lb_last_error() : "");
    while (!m->got_stop) {
        MPI_Status s;
        if (!poll_msg(0, &s)) {
            nap();
            continue;
        }
        char *text = recv_text(&s);
        if (s.MPI_TAG == TAG_STOP) m->got_stop = 1;
        if (s.MPI_TAG == TAG_JOB && text) {
            lb_job job;
            if (lb__job_decode(text, &job) == LB_OK) send_fail(job.index, LB_ESTATE, "this rank is ending");
        }
        lb_free(text);
    }
    send_str(0, TAG_BYE, "");
}

/* ======================================================================== life */

const char *lb_dist_mpi_library(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    if (!v[0] && MPI_Get_library_version(v, &n) == MPI_SUCCESS) v[strcspn(v, ",\n")] = '\0';
    return v[0] ? v : "MPI";
}

int lb_dist_init(int *argc, char ***argv, lb_dist *out)
{
    memset(out, 0, sizeof *out);
    out->size = 1;
    int size = 0, rank = 0, provided = 0;
    const char *var = NULL;
    if (!lb__dist_launcher(&size, &rank, &var) || size == 1) return LB_OK; /* a plain program (one rank of one) */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return lb_error(LB_EIO, "MPI: MPI_Init failed (started by a launcher: %s is set)", var);
    MPI_Comm_set_errhandler(COMM, MPI_ERRORS_RETURN);
    MPI_Comm_rank(COMM, &out->rank);
    MPI_Comm_size(COMM, &out->size);
    out->active = 1;
    mpi_state *m = lb_calloc(1, sizeof *m);
    if (m) m->peers = lb_calloc((size_t)out->size, sizeof *m->peers);
    if (!m || !m->peers) {
        lb_free(m);
        return lb_error(LB_ENOMEM, "MPI: out of memory for %d ranks", out->size);
    }
    m->rank = out->rank;
    m->size = out->size;
    out->impl = m;
    return LB_OK;
}

struct lb__reducer_state **lb__dist_reducer_slot(lb_dist *d)
{
    mpi_state *m = d && d->active && d->size > 1 ? d->impl : NULL;
    return m ? &m->red : NULL;
}

void lb_dist_finalize(lb_dist *d)
{
    if (!d || !d->active) return;
    mpi_state *m = d->impl;
    if (m && m->finalized) return;
    if (m && m->size > 1) {
        if (m->rank == 0) finish_rank0(m);
        else finish_worker(m);
    }
    if (m) {
        lb__reducer_free(m->red);
        m->finalized = 1;
        lb_free(m->peers);
        lb_free(m);
    }
    d->impl = NULL;
    d->active = 0;
    MPI_Finalize();
}

void lb_dist_abort(lb_dist *d, int status)
{
    if (!d || !d->active || d->size <= 1) return;
    MPI_Abort(MPI_COMM_WORLD, status);
}
