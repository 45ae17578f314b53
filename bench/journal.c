/* journal.c (bench) - the per-message cost of the ingest journal
 * (lib/journal.c): cw_journal_append of a socket message (~150 B payload)
 * and of a station message (~1.2 KiB), with cw_journal_commit every 1000
 * messages: on the first lap (fresh pages: page faults into the page cache),
 * on a lap after the pages were written back (sync(): each page faults once
 * more for dirty tracking, as after the kernel's periodic writeback) and
 * with the pages dirty and resident (steady), beside the ceilings
 * measured in the same run: a bare memcpy of the same bytes into a heap
 * buffer, and that memcpy plus the record's CRC-32C.
 * Usage: journal [-n messages] [-r runs] [-c capacity_bytes] [-d dir] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "spool.h" /* cw_crc32c */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile uint64_t sink;

/* ns per message of one way of writing n messages of plen bytes */
typedef enum { W_MEMCPY, W_MEMCPY_CRC, W_JOURNAL } way_t;

static double run(way_t way, cw_journal_t *j, uint8_t *heap, size_t heap_cap, const char *topic,
                  const char *pl, size_t plen, uint64_t n) {
  size_t tlen = strlen(topic), off = 0, rec = (32 + tlen + plen + 7) & ~(size_t)7;
  double t0 = now_s();
  for (uint64_t i = 0; i < n; i++) {
    if (way == W_JOURNAL) {
      int64_t p = cw_journal_append(j, (int64_t)i, topic, tlen, pl, plen, NULL, NULL);
      if ((i + 1) % 1000 == 0) cw_journal_commit(j, p);
    } else {
      if (off + rec > heap_cap) off = 0;
      memcpy(heap + off + 32, topic, tlen);
      memcpy(heap + off + 32 + tlen, pl, plen);
      if (way == W_MEMCPY_CRC) sink += cw_crc32c(0, heap + off + 8, 24 + tlen + plen);
      off += rec;
    }
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  uint64_t n = 1000000, cap = CW_JOURNAL_DEFAULT_BYTES;
  int runs = 5;
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  int opt;
  while ((opt = getopt(argc, argv, "n:r:c:d:")) != -1) {
    if (opt == 'n') n = strtoull(optarg, NULL, 10);
    else if (opt == 'r') runs = atoi(optarg);
    else if (opt == 'c') cap = strtoull(optarg, NULL, 10);
    else if (opt == 'd') dir = optarg;
    else {
      fprintf(stderr, "usage: journal [-n messages] [-r runs] [-c capacity_bytes] [-d dir]\n");
      return 2;
    }
  }
  if (runs < 1 || runs > 64) runs = 5;
  static const struct {
    const char *name, *topic;
    size_t plen;
  } kinds[] = {{"socket message", "cw/CX-0001/3/telemetry", 150},
               {"station message", "cw/CX-0001/telemetry", 1200}};
  char path[512];
  char *pl = malloc(2048);
  uint8_t *heap = malloc(cap);
  if (!pl || !heap) return 1;
  for (int i = 0; i < 2048; i++) pl[i] = (char)('a' + i % 26);
  printf("journal: %llu messages per run, %d runs (median), capacity %llu B in %s\n",
         (unsigned long long)n, runs, (unsigned long long)cap, dir);
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    double v[3][64], first[64], wb[64];
    for (int r = 0; r < runs; r++) {
      cw_journal_t *j;
      snprintf(path, sizeof path, "%s/cwbench-%d.journal", dir, (int)getpid());
      unlink(path);
      if (cw_journal_open(path, cap, &j) != 0) {
        fprintf(stderr, "journal: cannot open %s\n", path);
        return 1;
      }
      uint64_t lap = cap / ((32 + strlen(kinds[k].topic) + kinds[k].plen + 7) & ~7ull);
      first[r] = run(W_JOURNAL, j, NULL, 0, kinds[k].topic, pl, kinds[k].plen, lap);
      /* the page cache written back (as the kernel does within ~30 s): the
       * next lap write-faults each page once more */
      sync();
      wb[r] = run(W_JOURNAL, j, NULL, 0, kinds[k].topic, pl, kinds[k].plen, lap);
      v[W_JOURNAL][r] = run(W_JOURNAL, j, NULL, 0, kinds[k].topic, pl, kinds[k].plen, n);
      v[W_MEMCPY][r] = run(W_MEMCPY, NULL, heap, cap, kinds[k].topic, pl, kinds[k].plen, n);
      v[W_MEMCPY_CRC][r] = run(W_MEMCPY_CRC, NULL, heap, cap, kinds[k].topic, pl, kinds[k].plen, n);
      cw_journal_close(j);
      unlink(path);
    }
    for (int w = 0; w < 3; w++) qsort(v[w], (size_t)runs, sizeof(double), cmp_d);
    qsort(first, (size_t)runs, sizeof(double), cmp_d);
    qsort(wb, (size_t)runs, sizeof(double), cmp_d);
    printf("journal: %-15s (%4zu B payload): append+commit %6.1f ns/msg steady, %6.1f first lap, "
           "%6.1f lap after writeback; ceilings: memcpy %5.1f ns, memcpy+crc32c %5.1f ns\n",
           kinds[k].name, kinds[k].plen, v[W_JOURNAL][runs / 2], first[runs / 2], wb[runs / 2],
           v[W_MEMCPY][runs / 2], v[W_MEMCPY_CRC][runs / 2]);
  }
  free(pl);
  free(heap);
  return 0;
}
