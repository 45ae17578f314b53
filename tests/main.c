/* main.c - unit test runner: runs every test of test_list.h (or those whose
 * name contains argv[1]) and ends with "N passed, M failed". */
#include <stdarg.h>
#include <stdlib.h>

#include "test.h"

#define TEST(name) CW_TEST(name);
#include "test_list.h"
#undef TEST

static int failed_now;

void cw_test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  failed_now = 1;
  fprintf(stderr, "    %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int cw_test_failed(void) { return failed_now; }

const char *cw_test_data_dir(void) {
  const char *d = getenv("CW_TEST_DATA");
  return d && *d ? d : "tests/data";
}

typedef struct {
  const char *name;
  void (*fn)(void);
} test_entry_t;

static const test_entry_t tests[] = {
#define TEST(name) {#name, cw_test_##name},
#include "test_list.h"
#undef TEST
    {NULL, NULL}};

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  const char *label = getenv("CW_TEST_LABEL");
  int passed = 0, nfailed = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (const test_entry_t *t = tests; t->name; t++) {
    if (filter && !strstr(t->name, filter)) continue;
    failed_now = 0;
    t->fn();
    if (failed_now) {
      nfailed++;
      printf("FAIL %s%s%s\n", label ? label : "", label ? " " : "", t->name);
    } else {
      passed++;
      printf("ok   %s%s%s\n", label ? label : "", label ? " " : "", t->name);
    }
  }
  printf("%d passed, %d failed\n", passed, nfailed);
  return nfailed ? 1 : 0;
}
