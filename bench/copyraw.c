/* copyraw.c - the database ceiling for `make bench`: decode a capture once
 * (not timed), then time plain binary COPY of exactly those rows into the
 * readings table, in batches like the daemon's, one transaction per batch.
 *   copyraw -f CAPTURE -c CONNINFO [-b batch_rows] [--table NAME]
 * Timestamps are shifted so the capture's first record maps to now (the
 * rows then fall in the partitions the daemon keeps). Prints one line:
 *   copyraw: rows=N seconds=S rows_per_s=R */
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "copy.h"
#include "decode.h"

typedef struct rows {
  cw_reading_t *v;
  size_t n, cap;
} rows_t;

static void collect(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  (void)index;
  rows_t *rs = ctx;
  if (!r || why != CW_REJ_OK) return;
  if (rs->n == rs->cap) {
    size_t cap = rs->cap ? rs->cap * 2 : 65536;
    cw_reading_t *v = realloc(rs->v, cap * sizeof *v);
    if (!v) {
      fprintf(stderr, "copyraw: out of memory\n");
      exit(1);
    }
    rs->v = v;
    rs->cap = cap;
  }
  rs->v[rs->n++] = *r;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int exec_ok(PGconn *pg, const char *sql, ExecStatusType want) {
  PGresult *res = PQexec(pg, sql);
  int ok = PQresultStatus(res) == want;
  if (!ok) fprintf(stderr, "copyraw: %s: %s", sql, PQerrorMessage(pg));
  PQclear(res);
  return ok;
}

int main(int argc, char **argv) {
  const char *file = NULL, *conninfo = "dbname=chargewatch", *table = "readings";
  int batch = 5000, opt;
  static struct option opts[] = {{"table", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0}};
  while ((opt = getopt_long(argc, argv, "f:c:b:h", opts, NULL)) != -1) {
    switch (opt) {
    case 'f': file = optarg; break;
    case 'c': conninfo = optarg; break;
    case 'b': batch = atoi(optarg); break;
    case 'T': table = optarg; break;
    default:
      fprintf(stderr, "usage: copyraw -f CAPTURE -c CONNINFO [-b batch_rows] [--table NAME]\n");
      return 2;
    }
  }
  if (!file || batch <= 0) {
    fprintf(stderr, "copyraw: -f CAPTURE is required\n");
    return 2;
  }
  cw_cap_t cap;
  int rc = cw_cap_load(&cap, file);
  if (rc) {
    fprintf(stderr, "copyraw: %s: %s\n", file, strerror(-rc));
    return 1;
  }
  cw_decode_cfg_t dc;
  cw_decode_cfg_defaults(&dc);
  dc.max_age_ms = INT64_MAX / 4;
  rows_t rs = {0};
  size_t off = CW_CAP_MAGIC_LEN;
  cw_cap_rec_t rec;
  while (cw_cap_parse(cap.buf, cap.len, &off, &rec) == 1)
    cw_decode(&dc, rec.topic, rec.topic_len, rec.payload, rec.payload_len,
              (int64_t)(rec.recv_us / 1000), collect, &rs);
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  int64_t shift = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 - (int64_t)(cap.first_us / 1000);
  for (size_t i = 0; i < rs.n; i++) rs.v[i].ts_ms += shift;

  PGconn *pg = PQconnectdb(conninfo);
  if (PQstatus(pg) != CONNECTION_OK) {
    fprintf(stderr, "copyraw: %s", PQerrorMessage(pg));
    return 1;
  }
  char sql[256];
  snprintf(sql, sizeof sql, "COPY %s (" CW_COPY_COLUMNS ") FROM STDIN (FORMAT binary)", table);
  cw_copy_t c;
  if (cw_copy_init(&c, (size_t)batch * 96) != 0) return 1;
  double t0 = now_s();
  for (size_t i = 0; i < rs.n; i += (size_t)batch) {
    size_t end = i + (size_t)batch < rs.n ? i + (size_t)batch : rs.n;
    cw_copy_reset(&c);
    for (size_t j = i; j < end; j++) cw_copy_add(&c, &rs.v[j]);
    cw_copy_finish(&c);
    if (!exec_ok(pg, "BEGIN", PGRES_COMMAND_OK) || !exec_ok(pg, sql, PGRES_COPY_IN)) return 1;
    if (PQputCopyData(pg, (const char *)c.buf, (int)c.len) != 1 || PQputCopyEnd(pg, NULL) != 1) {
      fprintf(stderr, "copyraw: %s", PQerrorMessage(pg));
      return 1;
    }
    PGresult *res = PQgetResult(pg);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      fprintf(stderr, "copyraw: COPY: %s", PQerrorMessage(pg));
      return 1;
    }
    PQclear(res);
    while ((res = PQgetResult(pg))) PQclear(res);
    if (!exec_ok(pg, "COMMIT", PGRES_COMMAND_OK)) return 1;
  }
  double secs = now_s() - t0;
  printf("copyraw: rows=%zu seconds=%.3f rows_per_s=%.0f\n", rs.n, secs, secs > 0 ? rs.n / secs : 0);
  cw_copy_free(&c);
  PQfinish(pg);
  free(rs.v);
  cw_cap_free(&cap);
  return 0;
}
