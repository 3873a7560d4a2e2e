/* Small helpers shared by the Check suites. */
#ifndef LIBRA_CHECK_UTIL_H
#define LIBRA_CHECK_UTIL_H
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libra/base.h"

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

/* Runs a constructor into `out` and gives its status: LB_OK, or the stored status of the
 * failure (for ck_assert_int_eq / ck_assert_err around lb_X_new calls). */
#define NEW_OK(out, expr) (((out) = (expr)) != NULL ? LB_OK : lb_last_status())

/* The library's last message mentions `text`. */
#define ck_error_mentions(text)                                                                \
    ck_assert_msg(strstr(lb_last_error(), text) != NULL, "error '%s' does not mention '%s'", \
                  lb_last_error(), text)

/* expr returns `code` (and the stored status agrees), and the message mentions `needle`. */
#define ck_assert_err(expr, code, needle)                                                         \
    do {                                                                                          \
        int _rc = (expr);                                                                         \
        ck_assert_msg(_rc == (code), "%s returned %d, expected %d (%s)", #expr, _rc, (code),      \
                      lb_last_error());                                                           \
        ck_assert_msg(lb_last_status() == (code), "%s: the stored status is %d, not %d", #expr,   \
                      lb_last_status(), (code));                                                  \
        ck_assert_msg(strstr(lb_last_error(), (needle)) != NULL, "message '%s' lacks '%s'",       \
                      lb_last_error(), (needle));                                                 \
    } while (0)

#endif
