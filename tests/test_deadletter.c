/* test_deadletter.c - the dead-letter file: escaping of hostile topics and
 * payloads, the per-line payload cap, rotation at max_bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deadletter.h"
#include "test.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (len) *len = n;
  return buf;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; s && *s; s++) n += *s == '\n';
  return n;
}

CW_TEST(deadletter_escaping) {
  char dir[] = "/tmp/cwdlXXXXXX", path[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/dl.log", dir);
  cw_deadletter_t *dl = NULL;
  CHECK_EQ(cw_deadletter_open(&dl, path, 1 << 20, NULL), 0);
  const char payload[] = "a\"b\\c\n\x01\xff\xc3\xa9\0z";
  const char topic[] = "cw/\"evil\"\n/1/telemetry";
  cw_deadletter_write(dl, CW_REJ_INVALID_JSON, 2, "bad\tthing", topic, strlen(topic), payload,
                      sizeof payload - 1);
  cw_deadletter_close(dl);
  size_t len = 0;
  char *s = slurp(path, &len);
  unlink(path);
  rmdir(dir);
  CHECK(s != NULL);
  CHECK_EQ(count_lines(s), 1);
  CHECK_EQ(strlen(s), len); /* the NUL in the payload was escaped */
  CHECK(strstr(s, " reason=invalid_json index=2 detail=\"bad\\tthing\" ") != NULL);
  CHECK(strstr(s, " topic=\"cw/\\\"evil\\\"\\n/1/telemetry\" ") != NULL);
  CHECK(strstr(s, " len=12 payload=\"a\\\"b\\\\c\\n\\u0001\\xff\xc3\xa9\\u0000z\"\n") != NULL);
  free(s);
}

CW_TEST(deadletter_cap_and_rotation) {
  char dir[] = "/tmp/cwdlXXXXXX", path[64], old[80];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/dl.log", dir);
  snprintf(old, sizeof old, "%s/dl.log.1", dir);
  cw_deadletter_t *dl = NULL;
  const uint64_t max = 4096;
  /* one long payload is cut to 4 KiB, with its true length and a marker */
  CHECK_EQ(cw_deadletter_open(&dl, path, 1 << 20, NULL), 0);
  char big[10000];
  memset(big, 'q', sizeof big);
  cw_deadletter_write(dl, CW_REJ_OVERSIZE, -1, NULL, "t", 1, big, sizeof big);
  cw_deadletter_close(dl);
  size_t nb = 0;
  char *sb = slurp(path, &nb);
  unlink(path);
  CHECK(sb != NULL);
  CHECK(strstr(sb, "len=10000 payload=\"") != NULL);
  CHECK(strstr(sb, "qqq...\"\n") != NULL);
  CHECK(nb < 4096 + 200);
  free(sb);
  /* ~690-byte lines into a 4096-byte file: rotated to .1 once, nothing lost */
  CHECK_EQ(cw_deadletter_open(&dl, path, max, NULL), 0);
  char small[600];
  memset(small, 'p', sizeof small);
  for (int i = 0; i < 9; i++)
    cw_deadletter_write(dl, CW_REJ_OUT_OF_RANGE, i, NULL, "t", 1, small, sizeof small);
  cw_deadletter_close(dl);
  size_t n1 = 0, n0 = 0;
  char *s1 = slurp(old, &n1), *s0 = slurp(path, &n0);
  unlink(path);
  unlink(old);
  rmdir(dir);
  CHECK(s0 != NULL && s1 != NULL);
  CHECK(n0 <= max && n1 <= max);
  CHECK_EQ(count_lines(s0) + count_lines(s1), 9);
  CHECK(strstr(s1, "reason=out_of_range index=0 ") != NULL);
  CHECK(strstr(s0, "reason=out_of_range index=8 ") != NULL);
  free(s0);
  free(s1);
}
