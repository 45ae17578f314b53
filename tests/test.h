/* test.h - the unit test harness: CW_TEST(name) defines a test, CHECK*
 * macros fail it with file:line. Tests are registered in tests/test_list.h
 * (one list, assembled from per-unit fragments tests/list_<unit>.h). */
#ifndef CW_TEST_H
#define CW_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

void cw_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cw_test_failed(void); /* has the running test failed? */

#define CW_TEST(name) void cw_test_##name(void)

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      cw_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);           \
      return;                                                         \
    }                                                                 \
  } while (0)

#define CHECK_EQ(a, b)                                                               \
  do {                                                                               \
    long long cw_a_ = (long long)(a), cw_b_ = (long long)(b);                        \
    if (cw_a_ != cw_b_) {                                                            \
      cw_test_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, cw_a_, cw_b_); \
      return;                                                                        \
    }                                                                                \
  } while (0)

#define CHECK_NEAR(a, b, eps)                                                           \
  do {                                                                                  \
    double cw_a_ = (double)(a), cw_b_ = (double)(b);                                    \
    if (!(fabs(cw_a_ - cw_b_) <= (eps))) {                                              \
      cw_test_fail(__FILE__, __LINE__, "%s ~ %s (%.9g vs %.9g)", #a, #b, cw_a_, cw_b_); \
      return;                                                                           \
    }                                                                                   \
  } while (0)

#define CHECK_STR(a, b)                                                                  \
  do {                                                                                   \
    const char *cw_a_ = (a), *cw_b_ = (b);                                               \
    if (strcmp(cw_a_, cw_b_) != 0) {                                                     \
      cw_test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a, #b, cw_a_, cw_b_); \
      return;                                                                            \
    }                                                                                    \
  } while (0)

/* Directory of test data (tests/data), overridable with CW_TEST_DATA. */
const char *cw_test_data_dir(void);

/* A throwaway PostgreSQL cluster for tests that need a real server
 * (tests/pgtmp.c): initdb in a temp dir, listens on a unix socket only,
 * stopped by PID at exit. Reused by every test in one run. Returns a libpq
 * conninfo string for database "cwtest", or NULL (with a message) when the
 * server binaries are missing or it fails to start. */
const char *cw_test_pg(void);

#endif
