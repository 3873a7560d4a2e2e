/* Small helpers shared by the Check suites. */
#ifndef LIBRA_CHECK_UTIL_H
#define LIBRA_CHECK_UTIL_H
#include <check.h>
#include <math.h>
#include <stdlib.h>

/* Runs a suite and returns the process exit status (0 when all tests pass). */
static inline int lb_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#define ck_assert_close(a, b, tol)                                                       \
    do {                                                                                 \
        double _a = (double)(a), _b = (double)(b), _t = (double)(tol);                   \
        ck_assert_msg(fabs(_a - _b) <= _t, "%s = %.9g, expected %s = %.9g (tol %g)", #a, \
                      _a, #b, _b, _t);                                                   \
    } while (0)

#endif
