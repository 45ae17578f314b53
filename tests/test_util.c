/* test_util.c - the pure helpers of lib/: UTF-8 lengths, escaping, ISO
 * times, conninfo redaction (text.h), FNV-1a (hash.h), mkdir -p
 * (fsutil.h), alert ids (idgen.h), ring sizes (ring.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "hash.h"
#include "log.h"
#include "idgen.h"
#include "ring.h"
#include "test.h"
#include "text.h"

CW_TEST(util_utf8_len) {
  CHECK_EQ(cw_utf8_len((const unsigned char *)"a", 1), 1);
  CHECK_EQ(cw_utf8_len((const unsigned char *)"\xc3\xa9", 2), 2);
  CHECK_EQ(cw_utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
  CHECK_EQ(cw_utf8_len((const unsigned char *)"\xf0\x9f\x94\xa5", 4), 4);
  CHECK_EQ(cw_utf8_len((const unsigned char *)"\xc0\xaf", 2), 0);     /* overlong */
  CHECK_EQ(cw_utf8_len((const unsigned char *)"\xed\xa0\x80", 3), 0); /* surrogate */
  CHECK_EQ(cw_utf8_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
  CHECK_EQ(cw_utf8_len((const unsigned char *)"\xe2\x82", 2), 0);     /* truncated */
}

CW_TEST(util_escape_modes) {
  char out[64];
  const char in[] = "a\"\\\n\x01\xff\xc3\xa9";
  CHECK_EQ(cw_escape(out, sizeof out, in, sizeof in - 1, CW_ESC_JSON), 21);
  CHECK_STR(out, "a\\\"\\\\\\n\\u0001\\ufffd\xc3\xa9");
  CHECK(cw_escape(out, sizeof out, in, sizeof in - 1, CW_ESC_HEX) > 0);
  CHECK_STR(out, "a\\\"\\\\\\n\\u0001\\xff\xc3\xa9");
  CHECK_EQ(cw_escape(out, 5, "abcdef", 6, CW_ESC_JSON), -ENOSPC);
  CHECK_STR(out, "abcd");
}

CW_TEST(util_iso_time) {
  char out[48];
  CHECK(cw_iso_time(out, sizeof out, 1764374400123LL, 480) > 0);
  CHECK_STR(out, "2025-11-29T08:00:00.123+08:00");
  CHECK(cw_iso_time(out, sizeof out, -1, -150) > 0);
  CHECK_STR(out, "1969-12-31T21:29:59.999-02:30");
  CHECK_EQ(cw_iso_time(out, 10, 0, 0), -ENOSPC);
}

CW_TEST(util_conninfo_redacted) {
  char out[256];
  cw_conninfo_redact(out, sizeof out, "host=db password=s3cret dbname=cw");
  CHECK_STR(out, "host=db password=*** dbname=cw");
  cw_conninfo_redact(out, sizeof out, "password = 'a b\\' c' user=x");
  CHECK_STR(out, "password = *** user=x");
  cw_conninfo_redact(out, sizeof out, "postgresql://u:s3cret@h:5432/cw?password=x&sslmode=off");
  CHECK_STR(out, "postgresql://u:***@h:5432/cw?password=***&sslmode=off");
  cw_conninfo_redact(out, sizeof out, "dbname=chargewatch host=127.0.0.1");
  CHECK_STR(out, "dbname=chargewatch host=127.0.0.1");
  cw_conninfo_redact(out, sizeof out, "mypassword=x");
  CHECK_STR(out, "mypassword=x"); /* not the password keyword */
  CHECK(strstr(out, "s3cret") == NULL);
}

CW_TEST(util_fnv1a_vectors) {
  /* reference values of the FNV authors' test suite */
  CHECK_EQ(cw_fnv1a32("", 0), 0x811c9dc5u);
  CHECK_EQ(cw_fnv1a32("a", 1), 0xe40c292cu);
  CHECK_EQ(cw_fnv1a32("foobar", 6), 0xbf9cf968u);
  CHECK(cw_fnv1a64_str_byte("ST1", 1) != cw_fnv1a64_str_byte("ST1", 2));
}

CW_TEST(util_mkdir_p) {
  char dir[] = "/tmp/cwmkXXXXXX", path[128];
  struct stat st;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/a/b/c", dir);
  CHECK_EQ(cw_mkdir_p(path), 0);
  CHECK_EQ(cw_mkdir_p(path), 0); /* exists: fine */
  CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_EQ(st.st_mode & 0777, 0700);
  char *longp = malloc(5000);
  CHECK(longp != NULL);
  memset(longp, 'x', 4999);
  longp[4999] = 0;
  CHECK_EQ(cw_mkdir_p(longp), -ENAMETOOLONG);
  free(longp);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK_EQ(system(cmd), 0);
}

CW_TEST(util_idgen_and_ring_sizes) {
  cw_idgen_t g;
  cw_idgen_init(&g, 100);
  CHECK_EQ(cw_idgen_next(&g), 100);
  cw_idgen_raise(&g, 50); /* never lowers */
  CHECK_EQ(cw_idgen_next(&g), 101);
  cw_idgen_raise(&g, 500);
  CHECK_EQ(cw_idgen_next(&g), 500);
  /* a cluster member's slot: ids counter << 10 | slot, above all given so
   * far and the wall clock in ms, below the 9e15 an operator command takes */
  cw_idgen_init(&g, 1764374400123456LL); /* µs, as main.c seeds it */
  cw_idgen_set_slot(&g, 5, 1764374400123LL);
  int64_t id = cw_idgen_next(&g);
  CHECK_EQ(id & 1023, 5);
  CHECK(id > 1764374400123456LL && id < 9000000000000000LL);
  CHECK_EQ(cw_idgen_next(&g), id + 1024);
  cw_idgen_raise(&g, id + 100000); /* max(id) stored by another member */
  CHECK(cw_idgen_next(&g) > id + 100000);
  cw_idgen_set_slot(&g, 7, 0); /* a new slot after a reconnect: the counter goes on */
  int64_t id2 = cw_idgen_next(&g);
  CHECK_EQ(id2 & 1023, 7);
  CHECK(id2 > id + 100000);
  CHECK_EQ(cw_ring_capacity_for_slots(1), 4096);
  CHECK_EQ(cw_ring_capacity_for_slots(16), 4096);
  CHECK_EQ(cw_ring_capacity_for_slots(17), 8192);
  CHECK_EQ(cw_ring_capacity_for_slots(1024), 256 * 1024);
  CHECK(cw_mono_ms() > 0 && cw_now_ms() > 1700000000000LL);
}

/* The diagnostic log picks "<N>" prefixes only when stderr is journald's
 * stream: JOURNAL_STREAM must name stderr's own device and inode. */
CW_TEST(util_log_journal_stream) {
  struct stat st;
  char v[64];
  const char *old = getenv("JOURNAL_STREAM");
  char saved[64] = "";
  if (old) snprintf(saved, sizeof saved, "%s", old);
  CHECK_EQ(fstat(STDERR_FILENO, &st), 0);
  snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  setenv("JOURNAL_STREAM", v, 1);
  CHECK_EQ(cw_log_journal_stream(), 1);
  snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
  setenv("JOURNAL_STREAM", v, 1); /* inherited by a child whose stderr went elsewhere */
  CHECK_EQ(cw_log_journal_stream(), 0);
  setenv("JOURNAL_STREAM", "junk", 1);
  CHECK_EQ(cw_log_journal_stream(), 0);
  unsetenv("JOURNAL_STREAM");
  CHECK_EQ(cw_log_journal_stream(), 0);
  if (saved[0]) setenv("JOURNAL_STREAM", saved, 1);
}

CW_TEST(util_csv_split) {
  char line[] = "1,,x y,4";
  char *f[3];
  CHECK_EQ(cw_csv_split(line, f, 3), 3); /* at most max fields; what follows is cut off */
  CHECK_STR(f[0], "1");
  CHECK_STR(f[1], "");
  CHECK_STR(f[2], "x y");
  char one[] = "solo";
  CHECK_EQ(cw_csv_split(one, f, 3), 1);
  CHECK_STR(f[0], "solo");
}
