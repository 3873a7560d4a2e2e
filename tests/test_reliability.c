/* Reliability of the training step and of file writes: the NaN/Inf check (which step, which
 * parameter tensor or layer, parameters left as they were), and atomic writes that leave no
 * temporary files behind and never replace a file with a partial one (a full disk is
 * simulated with RLIMIT_FSIZE). The expected names come from the model's own parameter
 * table; the poisoned tensor is chosen by the test, so the right answer is known. */
#include "check_util.h"
#include "libra/losses.h"
#include "libra/train.h"

#include <errno.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- a small model and batch */

enum { N = 4, IMG = 8, NCLS = 3 };
#define ARCH "smallcnn:c1=4,c2=4,fc=8"

static float batch_x[N * IMG * IMG];
static int batch_y[N] = {0, 1, 2, 1};

static lb_model *new_model(void)
{
    lb_model *m = lb_model_new_arch(ARCH, 1, IMG, IMG, NCLS);
    ck_assert_ptr_nonnull(m);
    lb_rng r;
    lb_rng_seed(&r, 5);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    for (int i = 0; i < N * IMG * IMG; i++) batch_x[i] = (float)lb_rng_normal(&r);
    return m;
}

/* ---------------------------------------------------------------- a loss that can misbehave */

enum { POISON_NONE = -1, POISON_LOGITS = -2 };

typedef struct {
    lb_model *m;
    int poison;      /* a parameter index whose gradient turns NaN, or POISON_* */
    float scale;     /* the loss is scale * mean(logits) */
    int nan_value;   /* the loss's value is NaN */
} test_loss_ctx;

/* A scalar 0 whose backward writes NaN into one gradient element of its input: the loss
 * value stays finite while the gradient does not. */
static int poison_backward(lb_node *self)
{
    lb_node *in = self->in[0];
    if (in->grad) in->grad[0] = NAN;
    return LB_OK;
}

static lb_node *poison(lb_graph *g, lb_node *x)
{
    int one = 1;
    lb_node *n = lb_node_new(g, "poison", 1, &one, 1, &x, poison_backward);
    if (n) n->val[0] = 0.0f;
    return n;
}

static lb_node *test_loss(void *vctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    (void)targets, (void)step, (void)total;
    test_loss_ctx *c = vctx;
    lb_node *l = lb_scale(g, lb_mean(g, logits), c->scale);
    if (c->poison == POISON_LOGITS) l = lb_add(g, l, poison(g, logits));
    else if (c->poison >= 0) l = lb_add(g, l, poison(g, lb_param(g, c->m->params, c->poison)));
    if (c->nan_value) l = lb_scale(g, l, NAN);
    return l;
}

static lb_trainer *new_trainer(lb_model *m, test_loss_ctx *c, lb_optim_kind kind, float lr)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    c->poison = POISON_NONE;
    c->scale = 1.0f;
    lb_optim_config oc = lb_optim_defaults(kind);
    oc.lr = lr;
    lb_trainer *t = lb_trainer_new(m, &oc, NULL, test_loss, c, 100);
    ck_assert_ptr_nonnull(t);
    return t;
}

static float *copy_params(const lb_model *m)
{
    float *p = malloc(m->params->size * sizeof(float));
    ck_assert_ptr_nonnull(p);
    memcpy(p, m->params->data, m->params->size * sizeof(float));
    return p;
}

static int tensor_finite(const lb_params *p, const float *buf, int k)
{
    for (size_t i = 0; i < p->info[k].size; i++)
        if (!isfinite(buf[p->info[k].offset + i])) return 0;
    return 1;
}

/* ---------------------------------------------------------------- the gradient check */

START_TEST(test_defaults_on)
{
    lb_train_opts o;
    lb_train_opts_init(&o);
    ck_assert_int_eq(o.nan_check, 1);
    lb_model *m = new_model();
    test_loss_ctx c;
    lb_trainer *t = new_trainer(m, &c, LB_OPTIM_ADAM, 1e-3f);
    ck_assert_int_eq(t->nan_check, 1);
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

/* Each parameter tensor in turn gets a NaN gradient: the message names exactly that tensor
 * and the step, and neither the parameters nor the optimizer move. */
START_TEST(test_grad_names_each_tensor)
{
    lb_model *m = new_model();
    const lb_params *p = m->params;
    ck_assert_int_ge(p->count, 6);
    ck_assert_str_eq(p->info[0].name, "conv2d_1.weight");
    for (int k = 0; k < p->count; k++) {
        test_loss_ctx c;
        lb_trainer *t = new_trainer(m, &c, LB_OPTIM_ADAM, 1e-3f);
        float *before = copy_params(m);
        c.poison = k;
        ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
        char want[160];
        snprintf(want, sizeof want, "step 1: non-finite gradient in %s; parameters left unchanged", p->info[k].name);
        ck_assert_str_eq(lb_last_error(), want);
        ck_assert_int_eq(memcmp(before, p->data, p->size * sizeof(float)), 0);
        ck_assert_int_eq(t->optim->step, 0);
        free(before);
        lb_trainer_free(t);
    }
    lb_model_free(m);
}
END_TEST

/* After three good steps the fourth is poisoned: "step 4", and the parameters are those
 * after step 3. */
START_TEST(test_grad_step_number)
{
    lb_model *m = new_model();
    test_loss_ctx c;
    lb_trainer *t = new_trainer(m, &c, LB_OPTIM_SGD, 0.01f);
    for (int s = 0; s < 3; s++) ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_OK);
    float *before = copy_params(m);
    c.poison = 2;
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
    ck_assert_msg(strncmp(lb_last_error(), "step 4: non-finite gradient in ", 31) == 0, "%s", lb_last_error());
    ck_assert_int_eq(memcmp(before, m->params->data, m->params->size * sizeof(float)), 0);
    ck_assert_int_eq(t->optim->step, 3);
    /* the run can go on once the cause is gone */
    c.poison = POISON_NONE;
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_OK);
    ck_assert_int_eq(t->optim->step, 4);
    free(before);
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

/* A NaN in the logits' gradient spreads backwards: the first tensor in model order is
 * named, with the number of the others, counted here from the gradients left in place. */
START_TEST(test_grad_from_logits)
{
    lb_model *m = new_model();
    test_loss_ctx c;
    lb_trainer *t = new_trainer(m, &c, LB_OPTIM_ADAM, 1e-3f);
    c.poison = POISON_LOGITS;
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
    const lb_params *p = m->params;
    int bad = 0, first = -1;
    for (int k = 0; k < p->count; k++)
        if (!tensor_finite(p, p->grad, k)) {
            bad++;
            if (first < 0) first = k;
        }
    ck_assert_int_ge(bad, 2);
    char want[200];
    snprintf(want, sizeof want, "step 1: non-finite gradient in %s (and %d more of %d parameter tensors)",
             p->info[first].name, bad - 1, p->count);
    ck_assert_msg(strncmp(lb_last_error(), want, strlen(want)) == 0, "%s", lb_last_error());
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

/* With the check off the same step goes through and the NaN reaches the parameters: the
 * switch really switches. */
START_TEST(test_check_off)
{
    lb_model *m = new_model();
    test_loss_ctx c;
    lb_trainer *t = new_trainer(m, &c, LB_OPTIM_SGD, 0.01f);
    t->nan_check = 0;
    c.poison = 1;
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_OK);
    ck_assert(!tensor_finite(m->params, m->params->data, 1));
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

/* Finite gradients times a huge learning rate overflow a parameter: refused after the
 * update, naming the first tensor that is non-finite now. */
START_TEST(test_update_overflow)
{
    lb_model *m = new_model();
    test_loss_ctx c;
    lb_trainer *t = new_trainer(m, &c, LB_OPTIM_SGD, 3e38f);
    t->optim->cfg.momentum = 0.0f;
    c.scale = 1000.0f; /* the last bias's gradient is 1000 / NCLS per class: lr * it overflows */
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
    const lb_params *p = m->params;
    int first = -1;
    for (int k = 0; k < p->count && first < 0; k++)
        if (!tensor_finite(p, p->data, k)) first = k;
    ck_assert_int_ge(first, 0);
    char want[160];
    snprintf(want, sizeof want, "step 1: non-finite parameter in %s", p->info[first].name);
    ck_assert_msg(strncmp(lb_last_error(), want, strlen(want)) == 0, "%s", lb_last_error());
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "after the update"));
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

/* A NaN in batchnorm's running statistics does not touch a training step (which uses the
 * batch's statistics) but would poison evaluation and the checkpoint: refused after the
 * update. */
START_TEST(test_running_stats)
{
    lb_model *m = lb_model_new_arch("smallcnn:bn,c1=4,c2=4,fc=8", 1, IMG, IMG, NCLS);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_gt(m->state_size, 0);
    lb_rng r;
    lb_rng_seed(&r, 5);
    lb_model_init(m, LB_INIT_DEFAULT, &r);
    for (int i = 0; i < N * IMG * IMG; i++) batch_x[i] = (float)lb_rng_normal(&r);
    test_loss_ctx c;
    lb_trainer *t = new_trainer(m, &c, LB_OPTIM_ADAM, 1e-3f);
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_OK);
    m->state[0] = NAN;
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
    ck_assert_str_eq(lb_last_error(), "step 2: non-finite batchnorm running statistics");
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- the loss check */

START_TEST(test_loss_names_step)
{
    lb_model *m = new_model();
    test_loss_ctx c;
    lb_trainer *t = new_trainer(m, &c, LB_OPTIM_ADAM, 1e-3f);
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_OK);
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_OK);
    c.nan_value = 1;
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
    ck_assert_msg(strncmp(lb_last_error(), "step 3: the loss is nan; ", 25) == 0, "%s", lb_last_error());
    /* the NaN first appears in the loss's own scale op, after every layer */
    ck_assert_ptr_nonnull(strstr(lb_last_error(), "at op scale"));
    lb_trainer_free(t);
    lb_model_free(m);
}
END_TEST

static lb_node *ce_adapter(void *ctx, lb_graph *g, lb_node *logits, const int *targets, long step, long total)
{
    return lb_loss_forward((lb_loss *)ctx, g, logits, targets, step, total);
}

/* A NaN parameter (check off, as if it came from elsewhere) or input makes the real
 * cross-entropy refuse its logits: a numeric error naming the layer the NaN entered at. */
START_TEST(test_forward_names_layer)
{
    int counts[NCLS] = {5, 5, 5};
    lb_loss *ce = lb_loss_new("ce", NCLS, counts);
    ck_assert_ptr_nonnull(ce);
    lb_optim_config oc = lb_optim_defaults(LB_OPTIM_SGD);
    lb_model *m = new_model();
    const lb_params *p = m->params;
    int tried = 0;
    for (int k = 0; k < p->count; k++) {
        if (!strstr(p->info[k].name, ".weight")) continue;
        float *before = copy_params(m);
        p->data[p->info[k].offset + 1] = NAN;
        lb_trainer *t = lb_trainer_new(m, &oc, NULL, ce_adapter, ce, 10);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
        char layer[48], want[160];
        snprintf(layer, sizeof layer, "%s", p->info[k].name);
        *strchr(layer, '.') = '\0';
        snprintf(want, sizeof want, "step 1: the forward pass is first non-finite at layer %s ", layer);
        ck_assert_msg(strncmp(lb_last_error(), want, strlen(want)) == 0, "%s", lb_last_error());
        lb_trainer_free(t);
        memcpy(m->params->data, before, p->size * sizeof(float));
        free(before);
        tried++;
    }
    ck_assert_int_ge(tried, 3);

    lb_trainer *t = lb_trainer_new(m, &oc, NULL, ce_adapter, ce, 10);
    batch_x[17] = NAN;
    ck_assert_int_eq(lb_trainer_step(t, batch_x, batch_y, N), LB_ENUMERIC);
    ck_assert_msg(strncmp(lb_last_error(), "step 1: the input batch is not finite; loss: ", 45) == 0, "%s",
                  lb_last_error());
    lb_trainer_free(t);
    lb_model_free(m);
    lb_loss_free(ce);
}
END_TEST

/* ---------------------------------------------------------------- atomic writes */

static char dir[256];

static void make_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/libra_test_rel_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void put(const char *name, const char *text)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *name)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void read_back(const char *name, char *buf, size_t n)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* A pid that no process has: a child that has exited and been reaped. */
static long dead_pid(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    return (long)pid;
}

/* A write removes the temporary files of dead writers of the same path, and only those. */
START_TEST(test_stale_temps_removed)
{
    make_dir();
    char dead[64], alive[64], other[64], path[400], got[64];
    long pid = dead_pid();
    snprintf(dead, sizeof dead, "F.tmp.%ld", pid);
    snprintf(alive, sizeof alive, "F.tmp.%ld", (long)getppid());
    snprintf(other, sizeof other, "G.tmp.%ld", pid);
    put(dead, "half");
    put(alive, "being written");
    put(other, "another file's");
    put("F.tmp.notapid", "x");
    snprintf(path, sizeof path, "%s/F", dir);
    ck_assert_int_eq(lb_write_file_atomic(path, "new\n", 4), LB_OK);
    read_back("F", got, sizeof got);
    ck_assert_str_eq(got, "new\n");
    ck_assert(!exists(dead));
    ck_assert(exists(alive) && exists(other) && exists("F.tmp.notapid"));
    ck_assert_int_eq(count_entries(), 4);
    remove_dir();
}
END_TEST

/* Temporary files carry the writer's machine: a dead pid's file of this machine goes, one
 * of another machine (a folder shared by --only shards) stays, whatever its pid. */
START_TEST(test_stale_temps_of_other_hosts_kept)
{
    make_dir();
    char full[256] = "", host[40] = "", mine[96], theirs[128], path[400];
    ck_assert_int_eq(gethostname(full, sizeof full - 1), 0);
    if (strlen(full) >= sizeof host) { /* the test's names stay short: only another machine's file */
        snprintf(theirs, sizeof theirs, "F.tmp.%ld.other-machine", dead_pid());
        put(theirs, "being written elsewhere");
        snprintf(path, sizeof path, "%s/F", dir);
        ck_assert_int_eq(lb_write_file_atomic(path, "new\n", 4), LB_OK);
        ck_assert(exists(theirs));
        remove_dir();
        return;
    }
    strcpy(host, full);
    for (char *c = host; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-')) *c = '_';
    long pid = dead_pid();
    snprintf(mine, sizeof mine, "F.tmp.%ld.%s", pid, host);
    snprintf(theirs, sizeof theirs, "F.tmp.%ld.other-machine-%s", pid, host);
    put(mine, "half");
    put(theirs, "being written elsewhere");
    snprintf(path, sizeof path, "%s/F", dir);
    ck_assert_int_eq(lb_write_file_atomic(path, "new\n", 4), LB_OK);
    ck_assert(!exists(mine));
    ck_assert(exists(theirs));
    ck_assert_int_eq(count_entries(), 2);
    remove_dir();
}
END_TEST

/* A file-size limit (a full disk, as far as write() can tell) fails the write naming the
 * file; the previous file stays whole and no temporary file is left. */
START_TEST(test_full_disk)
{
    make_dir();
    char path[400], got[64];
    snprintf(path, sizeof path, "%s/results.json", dir);
    ck_assert_int_eq(lb_write_file_atomic(path, "old\n", 4), LB_OK);
    size_t n = 64 * 1024;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', n);
    struct rlimit saved, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* then write() fails with EFBIG */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = lb_write_file_atomic(path, big, n);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, old_handler);
    ck_assert_int_eq(rc, LB_EIO);
    ck_assert_msg(strstr(lb_last_error(), path) && strstr(lb_last_error(), "write failed"), "%s", lb_last_error());
    read_back("results.json", got, sizeof got);
    ck_assert_str_eq(got, "old\n");
    ck_assert_int_eq(count_entries(), 1);
    free(big);
    remove_dir();
}
END_TEST

START_TEST(test_missing_dir)
{
    make_dir();
    char path[400];
    snprintf(path, sizeof path, "%s/no/such/dir/model.ckpt", dir);
    ck_assert_int_eq(lb_write_file_atomic(path, "x", 1), LB_EIO);
    ck_assert_ptr_nonnull(strstr(lb_last_error(), path));
    ck_assert_int_eq(count_entries(), 0);
    remove_dir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reliability");
    TCase *tc = tcase_create("nan_check");
    tcase_add_test(tc, test_defaults_on);
    tcase_add_test(tc, test_grad_names_each_tensor);
    tcase_add_test(tc, test_grad_step_number);
    tcase_add_test(tc, test_grad_from_logits);
    tcase_add_test(tc, test_check_off);
    tcase_add_test(tc, test_update_overflow);
    tcase_add_test(tc, test_running_stats);
    tcase_add_test(tc, test_loss_names_step);
    tcase_add_test(tc, test_forward_names_layer);
    suite_add_tcase(s, tc);
    tc = tcase_create("atomic_write");
    tcase_add_test(tc, test_stale_temps_removed);
    tcase_add_test(tc, test_stale_temps_of_other_hosts_kept);
    tcase_add_test(tc, test_full_disk);
    tcase_add_test(tc, test_missing_dir);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
