/* The dist module without MPI: a job's message and back, the order jobs are handed out in,
 * how a process tells that an MPI launcher started it, and lb_dist_init outside a launcher
 * (and, in a build without MPI, its refusal under one). */
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "dist/internal.h"

static lb_job job_of(int index, const char *loss, const char *sampler, const char *mix, const char *stages,
                     uint64_t seed, const char *name)
{
    lb_job j;
    memset(&j, 0, sizeof j);
    j.index = index;
    j.loss = (char *)loss;
    j.sampler = (char *)sampler;
    j.mix = (char *)mix;
    j.stages = (char *)stages;
    j.seed = seed;
    j.name = (char *)name;
    return j;
}

/* Every field survives; no mix / no stages stay NULL; the largest seed is exact. */
START_TEST(test_job_message_roundtrip)
{
    lb_job a = job_of(17, "focal:gamma=2", "oversample", "remix", "crt+taunorm", UINT64_MAX, "focal_gamma_2@oversample-s1");
    lb_buf b = {0};
    ck_assert_int_eq(lb__job_encode(&a, &b), LB_OK);
    lb_job back;
    ck_assert_int_eq(lb__job_decode(b.p, &back), LB_OK);
    ck_assert_int_eq(back.index, 17);
    ck_assert(back.seed == UINT64_MAX);
    ck_assert_str_eq(back.loss, a.loss);
    ck_assert_str_eq(back.sampler, a.sampler);
    ck_assert_str_eq(back.mix, "remix");
    ck_assert_str_eq(back.stages, "crt+taunorm");
    ck_assert_str_eq(back.name, a.name);
    ck_assert_int_eq(back.oracle, 0);
    lb_buf_free(&b);

    lb_job o = job_of(3, "ce", "shuffle", NULL, NULL, 2, "oracle_full-s2");
    o.oracle = 2; /* a worker that lost this trained the oracle on the study's own data */
    ck_assert_int_eq(lb__job_encode(&o, &b), LB_OK);
    ck_assert_int_eq(lb__job_decode(b.p, &back), LB_OK);
    ck_assert_int_eq(back.oracle, 2);
    lb_buf_free(&b);

    lb_job c = job_of(0, "ce", "shuffle", NULL, NULL, 1, "ce@shuffle-s1");
    ck_assert_int_eq(lb__job_encode(&c, &b), LB_OK);
    ck_assert_int_eq(lb__job_decode(b.p, &back), LB_OK);
    ck_assert_ptr_null(back.mix);
    ck_assert_ptr_null(back.stages);
    lb_buf_free(&b);
}
END_TEST

START_TEST(test_job_message_errors)
{
    char short_text[] = "1\n2\nce\n";
    lb_job j;
    ck_assert_int_eq(lb__job_decode(short_text, &j), LB_EFORMAT);
    ck_error_mentions("3 lines, expected 8");
    char bad_index[] = "x\n1\nce\nshuffle\n\n\nn\n0\n";
    ck_assert_int_eq(lb__job_decode(bad_index, &j), LB_EFORMAT);
    ck_error_mentions("index 'x'");
    char no_loss[] = "1\n1\n\nshuffle\n\n\nn\n0\n";
    ck_assert_int_eq(lb__job_decode(no_loss, &j), LB_EFORMAT);
    char bad_oracle[] = "1\n1\nce\nshuffle\n\n\nn\n3\n";
    ck_assert_int_eq(lb__job_decode(bad_oracle, &j), LB_EFORMAT);
    ck_error_mentions("oracle '3'");
}
END_TEST

/* Largest first: a synthetic sampler, then more stages; equals keep plan order. */
START_TEST(test_jobs_by_cost)
{
    lb_job j[5] = {job_of(0, "ce", "shuffle", NULL, NULL, 1, "a"), job_of(1, "ce", "shuffle", NULL, "crt", 1, "b"),
                   job_of(2, "ce", "smote", NULL, NULL, 1, "c"), job_of(3, "ce", "shuffle", NULL, NULL, 2, "d"),
                   job_of(4, "ce", "shuffle", NULL, "crt+taunorm", 1, "e")};
    lb_job *todo[5], *out[5];
    for (int i = 0; i < 5; i++) todo[i] = &j[i];
    ck_assert(lb__job_cost(&j[2]) > lb__job_cost(&j[4]) && lb__job_cost(&j[4]) > lb__job_cost(&j[1]));
    lb__jobs_by_cost(todo, 5, out);
    const char *want = "cebad";
    for (int i = 0; i < 5; i++) ck_assert_int_eq(out[i]->name[0], want[i]);
}
END_TEST

static void clear_launcher_env(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK",
                                       "PMIX_RANK", NULL};
    for (int i = 0; vars[i]; i++) unsetenv(vars[i]);
}

START_TEST(test_launcher_detection)
{
    clear_launcher_env();
    int size = -1, rank = -1;
    const char *var = NULL;
    ck_assert_int_eq(lb__dist_launcher(&size, &rank, &var), 0);
    setenv("PMI_SIZE", "4", 1);
    setenv("PMI_RANK", "3", 1);
    ck_assert_int_eq(lb__dist_launcher(&size, &rank, &var), 1);
    ck_assert_int_eq(size, 4);
    ck_assert_int_eq(rank, 3);
    ck_assert_str_eq(var, "PMI_SIZE");
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1); /* Open MPI's first */
    setenv("OMPI_COMM_WORLD_RANK", "1", 1);
    ck_assert_int_eq(lb__dist_launcher(&size, &rank, &var), 1);
    ck_assert_int_eq(size, 2);
    ck_assert_int_eq(rank, 1);
    clear_launcher_env();
    setenv("OMPI_COMM_WORLD_SIZE", "two", 1); /* not a number: not a launcher's */
    ck_assert_int_eq(lb__dist_launcher(&size, &rank, &var), 0);
    clear_launcher_env();
}
END_TEST

/* Outside a launcher: one rank of one, inactive, and the MPI scheduler is the serial one. In
 * a build without MPI, started as one of 3 processes: refused, saying so. */
START_TEST(test_dist_init)
{
    clear_launcher_env();
    lb_dist d;
    ck_assert_int_eq(lb_dist_init(NULL, NULL, &d), LB_OK);
    ck_assert_int_eq(d.rank, 0);
    ck_assert_int_eq(d.size, 1);
    ck_assert_int_eq(d.active, 0);
    lb_scheduler s = lb_scheduler_mpi(&d);
    ck_assert_str_eq(s.name, "serial");
    lb_dist_finalize(&d);
    lb_dist_finalize(&d); /* twice: nothing */
#if !LIBRA_TEST_MPI
    ck_assert_ptr_null(lb_dist_mpi_library());
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    setenv("OMPI_COMM_WORLD_RANK", "2", 1);
    ck_assert_int_eq(lb_dist_init(NULL, NULL, &d), LB_EINVAL);
    ck_error_mentions("one of 3 processes started by an MPI launcher (OMPI_COMM_WORLD_SIZE=3)");
    ck_error_mentions("built without MPI");
    ck_assert_int_eq(d.rank, 2);
    ck_assert_int_eq(d.size, 3);
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1); /* mpirun -np 1: one process does the work once */
    ck_assert_int_eq(lb_dist_init(NULL, NULL, &d), LB_OK);
    clear_launcher_env();
#else
    ck_assert_ptr_nonnull(lb_dist_mpi_library());
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dist");
    tcase_add_test(tc, test_job_message_roundtrip);
    tcase_add_test(tc, test_job_message_errors);
    tcase_add_test(tc, test_jobs_by_cost);
    tcase_add_test(tc, test_launcher_detection);
    tcase_add_test(tc, test_dist_init);
    suite_add_tcase(s, tc);
    return lb_run_suite(s);
}
