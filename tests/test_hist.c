/* test_hist.c - the latency histograms (lib/hist.c): the bucket search
 * against the bounds in seconds as the metrics page prints them, the plain
 * histogram added to the shared one, and a batch's noted row timestamps
 * observed at a commit time against parsing the same COPY buffer. */
#include <stdlib.h>

#include "copy.h"
#include "hist.h"
#include "test.h"

/* The first bound (seconds, as rendered) a value in ms does not exceed:
 * the definition, searched linearly. */
static int ref_bucket(int64_t ms) {
  if (ms < 0) ms = 0;
  int i = 0;
  while (i < CW_HIST_NB && (double)ms > cw_hist_bounds[i] * 1000.0) i++;
  return i;
}

static void ref_observe(cw_hist_local_t *l, int64_t ms) {
  if (ms < 0) ms = 0;
  l->b[ref_bucket(ms)]++;
  l->count++;
  l->sum_ms += (uint64_t)ms;
}

/* 0 when h holds exactly l. */
static int differs(cw_hist_t *h, const cw_hist_local_t *l) {
  cw_hist_local_t got;
  cw_hist_snapshot(h, &got);
  return memcmp(&got, l, sizeof got);
}

CW_TEST(hist_bucket_matches_bounds) {
  for (int i = 0; i < CW_HIST_NB; i++) {
    CHECK_EQ((double)cw_hist_bound_ms[i], cw_hist_bounds[i] * 1000.0);
    if (i) CHECK(cw_hist_bound_ms[i] > cw_hist_bound_ms[i - 1]);
    for (int64_t d = -2; d <= 2; d++) CHECK_EQ(cw_hist_bucket(cw_hist_bound_ms[i] + d), ref_bucket(cw_hist_bound_ms[i] + d));
  }
  for (int64_t ms = -5; ms < 4000000; ms += 7) CHECK_EQ(cw_hist_bucket(ms), ref_bucket(ms));
  CHECK_EQ(cw_hist_bucket(INT64_MIN), 0);
  CHECK_EQ(cw_hist_bucket(INT64_MAX), CW_HIST_NB);
  CHECK_EQ(cw_hist_bucket(10), 0);
  CHECK_EQ(cw_hist_bucket(11), 1);
  CHECK_EQ(cw_hist_bucket(3600000), CW_HIST_NB - 1);
  CHECK_EQ(cw_hist_bucket(3600001), CW_HIST_NB);
}

/* Known values observed into a plain histogram and added twice to a shared
 * one give what cw_hist_observe gives, value by value; the plain one is
 * empty after each addition. */
CW_TEST(hist_local_add_exact) {
  static const int64_t v[] = {-7, 0, 10, 11, 25, 26, 100, 101, 999, 1000, 1001, 2500,
                              59999, 60000, 60001, 3599999, 3600000, 3600001, 86400000};
  int n = (int)(sizeof v / sizeof v[0]);
  cw_hist_t shared = {0}, direct = {0};
  cw_hist_local_t l = {0}, want = {0};
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < n; i++) {
      cw_hist_local_observe(&l, v[i]);
      cw_hist_observe(&direct, v[i]);
      ref_observe(&want, v[i]);
    }
    cw_hist_add(&shared, &l);
    cw_hist_local_t zero = {0};
    CHECK(memcmp(&l, &zero, sizeof l) == 0);
    cw_hist_add(&shared, &l); /* empty: adds nothing */
  }
  CHECK_EQ(want.count, 2u * (unsigned)n);
  CHECK_EQ(want.b[0], 2 * 3); /* -7 (as 0), 0, 10 */
  CHECK_EQ(want.b[CW_HIST_NB], 2 * 2); /* 3600001, one day */
  CHECK_EQ(differs(&shared, &want), 0);
  CHECK_EQ(differs(&direct, &want), 0);
}

/* A batch's rows (runs of one ts, ts going back, a ts after the commit,
 * more runs than the first allocation) noted while encoded and observed at
 * a commit time give exactly what parsing the finished buffer gives, and
 * what the definition gives row by row. */
CW_TEST(hist_rows_match_copy_parse) {
  const int64_t now = 1764374400000LL;
  cw_copy_t c;
  cw_hist_rows_t rows = {0};
  cw_hist_local_t want = {0};
  CHECK_EQ(cw_copy_init(&c, 1024), 0);
  int n = 0;
  for (int i = 0; i < 3000; i++) {
    /* ages spread over every bucket (the first ones on and beside their
     * bounds), 1..4 rows per ts, some in the future */
    int64_t age = i % 3 ? (i * 7919LL) % 4000000 - 50000 * (i % 9 == 1)
                        : cw_hist_bound_ms[(i / 3) % CW_HIST_NB] + (i / 48) % 3 - 1;
    int k = 1 + i % 4;
    for (int j = 0; j < k; j++, n++) {
      cw_reading_t r = {.ts_ms = now - age, .socket = (uint8_t)(1 + j), .w = 1, .have = CW_HAVE_W};
      snprintf(r.station, sizeof r.station, "H%d", i % 50);
      CHECK_EQ(cw_copy_add(&c, &r), 0);
      cw_hist_rows_note(&rows, r.ts_ms);
      ref_observe(&want, now - r.ts_ms);
    }
  }
  CHECK_EQ(cw_copy_finish(&c), 0);
  CHECK_EQ(rows.lost, 0);
  CHECK_EQ(rows.nrun, 3000);
  cw_hist_t from_rows = {0}, parsed = {0};
  cw_hist_local_t l = {0};
  cw_hist_rows_observe(&rows, now, &l);
  cw_hist_add(&from_rows, &l);
  cw_hist_observe_copy(&parsed, c.buf, c.len, now);
  CHECK_EQ(want.count, (uint64_t)n);
  for (int i = 0; i <= CW_HIST_NB; i++) CHECK(want.b[i] > 0); /* every bucket exercised */
  CHECK_EQ(differs(&from_rows, &want), 0);
  CHECK_EQ(differs(&parsed, &want), 0);
  cw_hist_rows_reset(&rows);
  CHECK_EQ(rows.nrun, 0);
  cw_hist_local_t none = {0};
  cw_hist_rows_observe(&rows, now, &none);
  CHECK_EQ(none.count, 0);
  cw_hist_rows_free(&rows);
  cw_copy_free(&c);
}
