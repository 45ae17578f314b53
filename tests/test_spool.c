/* test_spool.c - the disk spool: order across segments and reopens, segment
 * rollover and deletion, torn tails and flipped bytes, the size bound, the
 * acknowledged position surviving a torn ack write, and CRC-32C answers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "test.h"

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP) rmdir(path);
  else unlink(path);
  return 0;
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS); }

static void tmp_dir(char *out, size_t n) {
  const char *t = getenv("TMPDIR");
  snprintf(out, n, "%s/cwspool.XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(out)) out[0] = 0;
}

static int count_segments(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (!d) return -1;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l > 6 && strcmp(de->d_name + l - 6, ".spool") == 0) n++;
  }
  closedir(d);
  return n;
}

/* Path of segment number seq (1 is the first a fresh spool creates). */
static void seg_path(char *out, size_t n, const char *dir, unsigned seq) {
  snprintf(out, n, "%s/%020u.spool", dir, seq);
}

/* Record i: 4-byte index then a pattern; len varies with i when len < 0. */
static size_t make_rec(uint8_t *buf, int i, int len) {
  size_t n = len >= 0 ? (size_t)len : (size_t)((i * 7919) % 5000) + 4;
  if (n < 4) n = 4;
  memcpy(buf, &i, 4);
  for (size_t k = 4; k < n; k++) buf[k] = (uint8_t)(i * 31 + k);
  return n;
}

/* Peeks one record and checks it is record i of the given len; then acks. */
static int expect_rec(cw_spool_t *s, int i, int len) {
  static uint8_t want[8192];
  const void *d;
  size_t n;
  size_t wn = make_rec(want, i, len);
  int rc = cw_spool_peek(s, &d, &n);
  if (rc != 1) {
    fprintf(stderr, "    record %d: peek returned %d\n", i, rc);
    return -1;
  }
  if (n != wn || memcmp(d, want, wn) != 0) {
    int got = -1;
    if (n >= 4) memcpy(&got, d, 4);
    fprintf(stderr, "    record %d: got record %d of %zu bytes\n", i, got, n);
    return -1;
  }
  return cw_spool_ack(s);
}

static int append_rec(cw_spool_t *s, int i, int len) {
  static uint8_t buf[8192];
  size_t n = make_rec(buf, i, len);
  return cw_spool_append(s, buf, n);
}

static void flip_byte(const char *path, off_t off) {
  int fd = open(path, O_RDWR);
  uint8_t b;
  if (fd < 0) return;
  if (pread(fd, &b, 1, off) == 1) {
    b ^= 0x40;
    if (pwrite(fd, &b, 1, off) != 1) b = 0;
  }
  close(fd);
}

/* ---- tests ---- */

CW_TEST(spool_crc32c_known) {
  /* RFC 3720 B.4 check value and its test vectors */
  CHECK_EQ(cw_crc32c(0, "123456789", 9), 0xE3069283u);
  CHECK_EQ(cw_crc32c_sw(0, "123456789", 9), 0xE3069283u);
  uint8_t z[32] = {0}, ff[32];
  memset(ff, 0xff, sizeof(ff));
  CHECK_EQ(cw_crc32c(0, z, 32), 0x8A9136AAu);
  CHECK_EQ(cw_crc32c_sw(0, ff, 32), 0x62A8AB43u);
  CHECK_EQ(cw_crc32c(0, "", 0), 0);
  /* chaining, and the two paths agree at every length and alignment */
  CHECK_EQ(cw_crc32c(cw_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
  static uint8_t buf[600];
  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(i * 131 + 7);
  for (size_t off = 0; off < 8; off++)
    for (size_t len = 0; len + off <= 300; len++)
      CHECK_EQ(cw_crc32c(0, buf + off, len), cw_crc32c_sw(0, buf + off, len));
}

CW_TEST(spool_order) {
  char dir[256];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *d;
  size_t n;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  for (int i = 0; i < 10; i++) CHECK_EQ(append_rec(s, i, 100 + i), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.records, 10);
  CHECK_EQ(st.appended, 10);
  CHECK_EQ(st.bytes, 10 * 12 + 1045);
  CHECK_EQ(cw_spool_ack(s), -EINVAL); /* nothing peeked */
  /* peek twice without ack: the same record */
  CHECK_EQ(cw_spool_peek(s, &d, &n), 1);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 1);
  CHECK_EQ(n, 100);
  for (int i = 0; i < 10; i++) CHECK_EQ(expect_rec(s, i, 100 + i), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.records, 0);
  CHECK_EQ(st.replayed, 10);
  CHECK_EQ(st.bytes, 0);
  CHECK_EQ(st.torn, 0);
  /* appending after the queue drained still works, in order */
  CHECK_EQ(append_rec(s, 10, 5), 0);
  CHECK_EQ(append_rec(s, 11, 6), 0);
  CHECK_EQ(expect_rec(s, 10, 5), 0);
  CHECK_EQ(expect_rec(s, 11, 6), 0);
  cw_spool_close(s);
  rm_rf(dir);
}

CW_TEST(spool_reopen_keeps_order) {
  char dir[256];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *d;
  size_t n;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  for (int i = 0; i < 5; i++) CHECK_EQ(append_rec(s, i, 50), 0);
  CHECK_EQ(expect_rec(s, 0, 50), 0);
  CHECK_EQ(expect_rec(s, 1, 50), 0);
  cw_spool_close(s); /* every ack is on disk: close is as good as a crash here */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.records, 3);
  CHECK_EQ(append_rec(s, 5, 50), 0); /* goes to a new segment, after the old ones */
  CHECK_EQ(count_segments(dir), 2);
  cw_spool_close(s);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  for (int i = 2; i < 6; i++) CHECK_EQ(expect_rec(s, i, 50), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_close(s);
  /* everything acknowledged and deleted: a new segment must not reuse a
   * number the ack file already covers, or it would be skipped on reopen */
  CHECK_EQ(count_segments(dir), 0);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  CHECK_EQ(append_rec(s, 6, 50), 0);
  cw_spool_close(s);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  CHECK_EQ(expect_rec(s, 6, 50), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_close(s);
  rm_rf(dir);
}

CW_TEST(spool_segment_rollover) {
  char dir[256];
  cw_spool_t *s;
  cw_spool_stats_t st;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  /* 112-byte records, 300-byte segments: two records per segment */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 300), 0);
  for (int i = 0; i < 20; i++) CHECK_EQ(append_rec(s, i, 100), 0);
  CHECK_EQ(count_segments(dir), 10);
  char p[300];
  struct stat sb;
  seg_path(p, sizeof(p), dir, 1);
  CHECK(stat(p, &sb) == 0 && sb.st_size == 224);
  CHECK_EQ(expect_rec(s, 0, 100), 0);
  CHECK_EQ(count_segments(dir), 10); /* half of segment 1 still pending */
  CHECK_EQ(expect_rec(s, 1, 100), 0);
  CHECK_EQ(count_segments(dir), 9); /* segment 1 fully acknowledged: gone */
  CHECK(stat(p, &sb) < 0 && errno == ENOENT);
  for (int i = 2; i < 20; i++) CHECK_EQ(expect_rec(s, i, 100), 0);
  CHECK_EQ(count_segments(dir), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.bytes, 0);
  CHECK_EQ(st.records, 0);
  /* a record bigger than a segment gets a segment of its own */
  CHECK_EQ(append_rec(s, 20, 1000), 0);
  CHECK_EQ(append_rec(s, 21, 10), 0);
  CHECK_EQ(count_segments(dir), 2);
  CHECK_EQ(expect_rec(s, 20, 1000), 0);
  CHECK_EQ(expect_rec(s, 21, 10), 0);
  cw_spool_close(s);
  rm_rf(dir);
}

CW_TEST(spool_torn_tail) {
  char dir[256], p[300];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *d;
  size_t n;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  for (int i = 0; i < 5; i++) CHECK_EQ(append_rec(s, i, 200), 0);
  cw_spool_close(s);
  /* a crash in the middle of writing record 4: its payload is cut short */
  seg_path(p, sizeof(p), dir, 1);
  CHECK_EQ(truncate(p, 4 * 212 + 12 + 50), 0);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.records, 4);
  CHECK_EQ(append_rec(s, 5, 200), 0); /* written after restart: must survive */
  for (int i = 0; i < 4; i++) CHECK_EQ(expect_rec(s, i, 200), 0);
  CHECK_EQ(expect_rec(s, 5, 200), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.torn, 1);
  CHECK_EQ(st.records, 0);
  CHECK_EQ(count_segments(dir), 0);
  cw_spool_close(s);
  /* a tail cut inside the 12-byte header is torn too */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  CHECK_EQ(append_rec(s, 6, 20), 0);
  CHECK_EQ(append_rec(s, 7, 20), 0);
  cw_spool_close(s);
  seg_path(p, sizeof(p), dir, 3);
  CHECK_EQ(truncate(p, 32 + 5), 0);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  CHECK_EQ(expect_rec(s, 6, 20), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.torn, 1);
  cw_spool_close(s);
  rm_rf(dir);
}

CW_TEST(spool_corrupt_middle) {
  char dir[256], p[300];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *d;
  size_t n;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  /* 3 records of 112 bytes per 400-byte segment: 0-2, 3-5, 6-8 */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 400), 0);
  for (int i = 0; i < 9; i++) CHECK_EQ(append_rec(s, i, 100), 0);
  cw_spool_close(s);
  CHECK_EQ(count_segments(dir), 3);
  seg_path(p, sizeof(p), dir, 1);
  flip_byte(p, 112 + 12 + 60); /* payload of record 1: CRC mismatch */
  seg_path(p, sizeof(p), dir, 2);
  flip_byte(p, 224 + 1); /* magic of record 5 */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 400), 0);
  /* record 1 (bad CRC) and record 5 (bad header) skipped alone */
  CHECK_EQ(expect_rec(s, 0, 100), 0);
  CHECK_EQ(expect_rec(s, 2, 100), 0);
  CHECK_EQ(expect_rec(s, 3, 100), 0);
  CHECK_EQ(expect_rec(s, 4, 100), 0);
  for (int i = 6; i < 9; i++) CHECK_EQ(expect_rec(s, i, 100), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.torn, 2);
  CHECK_EQ(st.replayed, 7);
  CHECK_EQ(st.records, 0);
  CHECK_EQ(st.bytes, 0);
  cw_spool_close(s);
  rm_rf(dir);
}

CW_TEST(spool_enospc) {
  char dir[256];
  cw_spool_t *s;
  cw_spool_stats_t st;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  /* 112-byte records under a 1000-byte bound: 8 fit */
  CHECK_EQ(cw_spool_open(&s, dir, 1000, 500), 0);
  for (int i = 0; i < 8; i++) CHECK_EQ(append_rec(s, i, 100), 0);
  CHECK_EQ(append_rec(s, 8, 100), -ENOSPC);
  CHECK_EQ(append_rec(s, 8, 2000), -ENOSPC);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.records, 8);
  CHECK_EQ(st.appended, 8);
  CHECK_EQ(st.bytes, 896);
  CHECK_EQ(append_rec(s, 8, 92), 0); /* exactly 1000 */
  CHECK_EQ(append_rec(s, 9, 4), -ENOSPC);
  /* space comes back only when a whole segment (4 records) is gone */
  for (int i = 0; i < 3; i++) CHECK_EQ(expect_rec(s, i, 100), 0);
  CHECK_EQ(append_rec(s, 9, 100), -ENOSPC);
  CHECK_EQ(expect_rec(s, 3, 100), 0);
  CHECK_EQ(append_rec(s, 9, 100), 0);
  cw_spool_close(s);
  /* the bound holds across a reopen too */
  CHECK_EQ(cw_spool_open(&s, dir, 1000, 500), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.bytes, 4 * 112 + 104 + 112);
  CHECK_EQ(append_rec(s, 10, 400), -ENOSPC);
  CHECK_EQ(append_rec(s, 10, 300), 0);
  for (int i = 4; i < 8; i++) CHECK_EQ(expect_rec(s, i, 100), 0);
  CHECK_EQ(expect_rec(s, 8, 92), 0);
  CHECK_EQ(expect_rec(s, 9, 100), 0);
  CHECK_EQ(expect_rec(s, 10, 300), 0);
  cw_spool_close(s);
  rm_rf(dir);
}

CW_TEST(spool_empty_dir) {
  char dir[256], sub[300];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *d = (void *)1;
  size_t n = 1;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  snprintf(sub, sizeof(sub), "%s/a/b/spool", dir); /* created on open */
  CHECK_EQ(cw_spool_open(&s, sub, 0, 0), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  CHECK(d == NULL && n == 0);
  CHECK_EQ(cw_spool_ack(s), -EINVAL);
  cw_spool_stats(s, &st);
  CHECK(st.bytes == 0 && st.records == 0 && st.appended == 0 && st.replayed == 0 && st.torn == 0);
  cw_spool_close(s);
  CHECK_EQ(count_segments(sub), 0);
  /* a file where the directory should be */
  snprintf(sub, sizeof(sub), "%s/file", dir);
  int fd = open(sub, O_WRONLY | O_CREAT, 0600);
  CHECK(fd >= 0);
  close(fd);
  CHECK(cw_spool_open(&s, sub, 0, 0) < 0);
  CHECK(s == NULL);
  rm_rf(dir);
}

CW_TEST(spool_1000_varied) {
  char dir[256];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *d;
  size_t n;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 64 << 10), 0);
  for (int i = 0; i < 600; i++) CHECK_EQ(append_rec(s, i, -1), 0);
  for (int i = 0; i < 250; i++) CHECK_EQ(expect_rec(s, i, -1), 0);
  cw_spool_close(s);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 64 << 10), 0);
  for (int i = 600; i < 1000; i++) CHECK_EQ(append_rec(s, i, -1), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.records, 750);
  for (int i = 250; i < 700; i++) CHECK_EQ(expect_rec(s, i, -1), 0);
  cw_spool_close(s);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 64 << 10), 0);
  for (int i = 700; i < 1000; i++) CHECK_EQ(expect_rec(s, i, -1), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.torn, 0);
  CHECK_EQ(st.records, 0);
  CHECK_EQ(st.bytes, 0);
  cw_spool_close(s);
  CHECK_EQ(count_segments(dir), 0);
  rm_rf(dir);
}

/* The ack file keeps two slots: a torn write of the newest one falls back
 * to the one before it (one record replayed again, none lost). */
CW_TEST(spool_ack_slot_fallback) {
  char dir[256], p[300];
  cw_spool_t *s;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  for (int i = 0; i < 4; i++) CHECK_EQ(append_rec(s, i, 30), 0);
  CHECK_EQ(expect_rec(s, 0, 30), 0); /* generation 1: slot 1 */
  CHECK_EQ(expect_rec(s, 1, 30), 0); /* generation 2: slot 0 */
  cw_spool_close(s);
  snprintf(p, sizeof(p), "%s/ack", dir);
  flip_byte(p, 20); /* inside slot 0 */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  for (int i = 1; i < 4; i++) CHECK_EQ(expect_rec(s, i, 30), 0);
  cw_spool_close(s);
  /* both slots gone: replay from the start of what is left, never skip */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  CHECK_EQ(append_rec(s, 9, 30), 0);
  cw_spool_close(s);
  CHECK_EQ(truncate(p, 0), 0);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  CHECK_EQ(expect_rec(s, 9, 30), 0);
  cw_spool_close(s);
  rm_rf(dir);
}

/* A damaged header in the middle of a segment: the reader resynchronises at
 * the next whole record with a good CRC; the records after it replay. */
CW_TEST(spool_resync_mid_segment) {
  char dir[256], p[300];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *d;
  size_t n;
  tmp_dir(dir, sizeof(dir));
  CHECK(dir[0]);
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  for (int i = 0; i < 6; i++) CHECK_EQ(append_rec(s, i, 100), 0);
  cw_spool_close(s);
  seg_path(p, sizeof(p), dir, 1);
  flip_byte(p, 2 * 112 + 5); /* length field of record 2 */
  CHECK_EQ(cw_spool_open(&s, dir, 0, 0), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.records, 5); /* counted as replay will walk: 0, 1, 3, 4, 5 */
  CHECK_EQ(expect_rec(s, 0, 100), 0);
  CHECK_EQ(expect_rec(s, 1, 100), 0);
  for (int i = 3; i < 6; i++) CHECK_EQ(expect_rec(s, i, 100), 0);
  CHECK_EQ(cw_spool_peek(s, &d, &n), 0);
  cw_spool_stats(s, &st);
  CHECK_EQ(st.torn, 1);
  CHECK_EQ(st.records, 0);
  CHECK_EQ(count_segments(dir), 0);
  cw_spool_close(s);
  rm_rf(dir);
}
