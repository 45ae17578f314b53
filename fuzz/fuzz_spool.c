/* fuzz-sources: lib/spool.c lib/fsutil.c */
/* fuzz_spool.c - libFuzzer target for the spool reader: the input becomes
 * the first segment file of an empty spool directory, which is then opened
 * and drained with peek/ack. Whatever the bytes, the reader must not crash,
 * read out of bounds, loop, or lose count: once drained, the spool holds no
 * records and no bytes, and a record appended afterwards replays intact. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

static char dir[128];

/* tmpfs where there is one: the reader fdatasyncs its position per ack. */
static void make_dir(void) {
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(dir, sizeof(dir), "%s/cwfuzz.XXXXXX", base);
  if (!mkdtemp(dir)) abort();
}

static void clear_dir(void) {
  DIR *d = opendir(dir);
  struct dirent *de;
  if (!d) abort();
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') unlinkat(dirfd(d), de->d_name, 0);
  closedir(d);
}

static void cleanup(void) {
  if (!dir[0]) return;
  clear_dir();
  rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[192];
  cw_spool_t *s;
  cw_spool_stats_t st;
  const void *rec;
  size_t len;
  if (!dir[0]) {
    make_dir();
    atexit(cleanup);
  }
  clear_dir();
  snprintf(path, sizeof(path), "%s/00000000000000000001.spool", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) abort();
  if (size && write(fd, data, size) != (ssize_t)size) abort();
  close(fd);
  if (cw_spool_open(&s, dir, 0, 4096) != 0) abort();
  /* every record is at least 12 bytes: more iterations than that is a loop */
  size_t limit = size / 12 + 2, n = 0;
  int rc;
  while ((rc = cw_spool_peek(s, &rec, &len)) == 1) {
    if (len > size || ++n > limit) abort();
    if (len) (void)*(volatile const uint8_t *)rec; /* ASan checks the first... */
    if (len) (void)*((volatile const uint8_t *)rec + len - 1); /* ...and last byte */
    if (cw_spool_ack(s) != 0) abort();
  }
  if (rc != 0) abort();
  cw_spool_stats(s, &st);
  if (st.records != 0 || st.bytes != 0 || st.replayed != n) abort();
  static const char probe[] = "after a fuzzed segment";
  if (cw_spool_append(s, probe, sizeof(probe)) != 0) abort();
  if (cw_spool_peek(s, &rec, &len) != 1 || len != sizeof(probe) || memcmp(rec, probe, len) != 0) abort();
  if (cw_spool_ack(s) != 0) abort();
  cw_spool_close(s);
  return 0;
}
