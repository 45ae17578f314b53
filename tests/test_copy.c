/* test_copy.c - binary COPY encoding: exact bytes, decode round trips,
 * malformed input, and rows pushed through a real PostgreSQL (tests/pgtmp.c)
 * and read back field by field. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>

#include "copy.h"
#include "test.h"

#define TS_2025 INT64_C(1764374400123) /* 2025-11-29 00:00:00.123 UTC */

static const char create_sql[] =
    "CREATE TEMP TABLE readings(ts timestamptz, station text, socket smallint, v real, a real, "
    "w real, wh double precision, t real, t_amb real, smoke bool, state smallint)";

static cw_reading_t full_reading(void) {
  cw_reading_t r = {0};
  r.ts_ms = TS_2025;
  strcpy(r.station, "CX-0423");
  r.socket = 7;
  r.v = 229.8f;
  r.a = 1.32f;
  r.w = 301.5f;
  r.wh = 1532.4;
  r.t = 31.7f;
  r.t_amb = -12.25f;
  r.smoke = 1;
  r.state = CW_STATE_FAULT;
  r.have = CW_HAVE_V | CW_HAVE_A | CW_HAVE_W | CW_HAVE_WH | CW_HAVE_T | CW_HAVE_T_AMB |
           CW_HAVE_SMOKE | CW_HAVE_STATE;
  return r;
}

/* Varied reading i: every combination of present fields over 256 rows. */
static cw_reading_t varied_reading(int i) {
  cw_reading_t r = {0};
  r.ts_ms = TS_2025 + (int64_t)i * 1000 - (i % 5 == 0 ? INT64_C(900000000000) : 0);
  snprintf(r.station, sizeof(r.station), "ST-%d", i % 97);
  r.socket = (uint8_t)(i % 255 + 1);
  r.have = (uint16_t)(i & 0xff);
  r.v = 200.0f + (float)i / 8.0f;
  r.a = (float)i / 64.0f;
  r.w = (float)(i % 1000);
  r.wh = (double)i * 0.25;
  r.t = -40.5f + (float)(i % 100);
  r.t_amb = (float)(i % 40) - 10.0f;
  r.smoke = (int8_t)(i % 2);
  r.state = (int8_t)(i % 4);
  return r;
}

static bool same_reading(const cw_reading_t *x, const cw_reading_t *y) {
  unsigned h = x->have;
  if (x->ts_ms != y->ts_ms || x->socket != y->socket || x->have != y->have) return false;
  if (strcmp(x->station, y->station) != 0) return false;
  if ((h & CW_HAVE_V) && x->v != y->v) return false;
  if ((h & CW_HAVE_A) && x->a != y->a) return false;
  if ((h & CW_HAVE_W) && x->w != y->w) return false;
  if ((h & CW_HAVE_WH) && x->wh != y->wh) return false;
  if ((h & CW_HAVE_T) && x->t != y->t) return false;
  if ((h & CW_HAVE_T_AMB) && x->t_amb != y->t_amb) return false;
  if ((h & CW_HAVE_SMOKE) && (x->smoke != 0) != (y->smoke != 0)) return false;
  if ((h & CW_HAVE_STATE) && x->state != y->state) return false;
  return true;
}

typedef struct {
  cw_reading_t rows[300];
  int n;
} sink_t;

static int sink_row(void *ctx, const cw_reading_t *r) {
  sink_t *s = ctx;
  if (s->n >= 300) return -E2BIG;
  s->rows[s->n++] = *r;
  return 0;
}

static uint32_t be32_at(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- PostgreSQL helpers: 0 on success, else print why and return -1 ---- */

static PGconn *pg_open(void) {
  const char *ci = cw_test_pg();
  if (!ci) return NULL;
  PGconn *c = PQconnectdb(ci);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "    connect: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  PGresult *r = PQexec(c, create_sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "    create: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return NULL;
  }
  PQclear(r);
  return c;
}

static int pg_copy(PGconn *c, const cw_copy_t *cp) {
  int rc = -1;
  PGresult *r = PQexec(c, "COPY readings (" CW_COPY_COLUMNS ") FROM STDIN (FORMAT binary)");
  if (PQresultStatus(r) != PGRES_COPY_IN) goto out;
  PQclear(r);
  /* in 64 KiB pieces, as the writer sends big batches */
  for (size_t off = 0; off < cp->len; off += 65536) {
    size_t n = cp->len - off < 65536 ? cp->len - off : 65536;
    if (PQputCopyData(c, (const char *)cp->buf + off, (int)n) != 1) return -1;
  }
  if (PQputCopyEnd(c, NULL) != 1) return -1;
  r = PQgetResult(c);
  if (PQresultStatus(r) == PGRES_COMMAND_OK) rc = 0;
out:
  if (rc) fprintf(stderr, "    copy: %s", PQerrorMessage(c));
  PQclear(r);
  while ((r = PQgetResult(c))) PQclear(r);
  return rc;
}

static PGresult *pg_query(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "    query: %s", PQerrorMessage(c));
    PQclear(r);
    return NULL;
  }
  return r;
}

/* ---- tests ---- */

CW_TEST(copy_header_trailer) {
  static const uint8_t want[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0};
  cw_copy_t c;
  CHECK_EQ(cw_copy_init(&c, 0), 0);
  CHECK_EQ(c.len, 19);
  CHECK_EQ(c.rows, 0);
  CHECK(memcmp(c.buf, want, 19) == 0);
  CHECK_EQ(cw_copy_finish(&c), 0);
  CHECK_EQ(c.len, 21);
  CHECK(c.buf[19] == 0xff && c.buf[20] == 0xff);
  CHECK_EQ(cw_copy_parse(c.buf, c.len, NULL, NULL), 0);
  cw_copy_free(&c);
}

/* The bytes of one tuple, checked against the format by hand. */
CW_TEST(copy_tuple_bytes) {
  cw_copy_t c;
  cw_reading_t r = {0};
  r.ts_ms = INT64_C(946684800001); /* 2000-01-01 00:00:00.001 -> 1000 us */
  strcpy(r.station, "AB");
  r.socket = 200;
  r.have = CW_HAVE_T | CW_HAVE_SMOKE;
  r.t = 1.0f;
  r.smoke = 1;
  CHECK_EQ(cw_copy_init(&c, 16), 0);
  CHECK_EQ(cw_copy_add(&c, &r), 0);
  CHECK_EQ(c.rows, 1);
  const uint8_t *p = c.buf + 19;
  CHECK(p[0] == 0 && p[1] == 11);
  CHECK_EQ(be32_at(p + 2), 8);
  CHECK_EQ(be32_at(p + 6), 0); /* high half of int64 1000 */
  CHECK_EQ(be32_at(p + 10), 1000);
  CHECK_EQ(be32_at(p + 14), 2);
  CHECK(p[18] == 'A' && p[19] == 'B');
  CHECK_EQ(be32_at(p + 20), 2);
  CHECK(p[24] == 0 && p[25] == 200);
  for (int i = 0; i < 4; i++) CHECK_EQ(be32_at(p + 26 + 4 * i), UINT32_MAX); /* v a w wh */
  CHECK_EQ(be32_at(p + 42), 4);
  CHECK_EQ(be32_at(p + 46), 0x3f800000u); /* 1.0f */
  CHECK_EQ(be32_at(p + 50), UINT32_MAX);  /* t_amb */
  CHECK_EQ(be32_at(p + 54), 1);
  CHECK(p[58] == 1);
  CHECK_EQ(be32_at(p + 59), UINT32_MAX); /* state */
  CHECK_EQ(c.len, 19 + 63);
  cw_copy_free(&c);
}

CW_TEST(copy_pg_fields) {
  cw_copy_t c;
  cw_reading_t rows[5];
  rows[0] = full_reading();
  rows[1] = (cw_reading_t){.ts_ms = TS_2025 + 1, .socket = 1, .t = 95.5f, .have = CW_HAVE_T};
  strcpy(rows[1].station, "S1");
  rows[2] = full_reading();
  strcpy(rows[2].station, "q'\"\\;\t,\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"); /* quotes, backslash, UTF-8 */
  rows[2].ts_ms = TS_2025 + 2;
  rows[2].smoke = 0;
  rows[2].state = CW_STATE_IDLE;
  rows[3] = full_reading();
  strcpy(rows[3].station, "'); DROP TABLE readings;--");
  rows[3].ts_ms = INT64_C(946684799999); /* before the PostgreSQL epoch: negative us */
  rows[4] = full_reading();
  strcpy(rows[4].station, "12345678901234567890123456789012"); /* 32 bytes */
  rows[4].ts_ms = 0;
  PGconn *pc = pg_open();
  CHECK(pc != NULL);
  CHECK_EQ(cw_copy_init(&c, 0), 0);
  for (int i = 0; i < 5; i++) CHECK_EQ(cw_copy_add(&c, &rows[i]), 0);
  CHECK_EQ(cw_copy_finish(&c), 0);
  CHECK_EQ(pg_copy(pc, &c), 0);
  cw_copy_free(&c);
  PGresult *r = pg_query(pc,
                         "SELECT (extract(epoch FROM ts) * 1000)::int8, station, socket, v, a, w, wh, t, "
                         "t_amb, smoke, state FROM readings ORDER BY socket, ts");
  CHECK(r != NULL);
  CHECK_EQ(PQntuples(r), 5);
  /* ORDER BY socket, ts: row 1 (socket 1), then 4, 3, 0, 2 (socket 7 by ts) */
  static const int order[5] = {1, 4, 3, 0, 2};
  for (int k = 0; k < 5; k++) {
    const cw_reading_t *w = &rows[order[k]];
    CHECK_EQ(strtoll(PQgetvalue(r, k, 0), NULL, 10), w->ts_ms);
    CHECK_STR(PQgetvalue(r, k, 1), w->station);
    CHECK_EQ(atoi(PQgetvalue(r, k, 2)), w->socket);
    const float want_f[5] = {w->v, w->a, w->w, w->t, w->t_amb};
    const uint16_t bits[5] = {CW_HAVE_V, CW_HAVE_A, CW_HAVE_W, CW_HAVE_T, CW_HAVE_T_AMB};
    const int col[5] = {3, 4, 5, 7, 8};
    for (int f = 0; f < 5; f++) {
      if (w->have & bits[f]) {
        CHECK(!PQgetisnull(r, k, col[f]));
        CHECK(strtof(PQgetvalue(r, k, col[f]), NULL) == want_f[f]); /* exact: shortest round-trip text */
      } else {
        CHECK(PQgetisnull(r, k, col[f]));
      }
    }
    if (w->have & CW_HAVE_WH) CHECK(strtod(PQgetvalue(r, k, 6), NULL) == w->wh);
    else CHECK(PQgetisnull(r, k, 6));
    if (w->have & CW_HAVE_SMOKE) CHECK_STR(PQgetvalue(r, k, 9), w->smoke ? "t" : "f");
    else CHECK(PQgetisnull(r, k, 9));
    if (w->have & CW_HAVE_STATE) CHECK_EQ(atoi(PQgetvalue(r, k, 10)), w->state);
    else CHECK(PQgetisnull(r, k, 10));
  }
  PQclear(r);
  PQfinish(pc);
}

CW_TEST(copy_pg_10000_rows) {
  enum { N = 10000 };
  cw_copy_t c;
  long long want_t = 0, want_sock = 0, want_smoke = 0;
  double want_w = 0, want_wh = 0;
  PGconn *pc = pg_open();
  CHECK(pc != NULL);
  CHECK_EQ(cw_copy_init(&c, 0), 0);
  for (int i = 0; i < N; i++) {
    cw_reading_t r = varied_reading(i);
    r.have |= CW_HAVE_W | CW_HAVE_WH;
    r.ts_ms = TS_2025 + (int64_t)i * 1000;
    CHECK_EQ(cw_copy_add(&c, &r), 0);
    want_w += r.w; /* integers below 1000: the sums are exact in double */
    want_wh += r.wh;
    want_sock += r.socket;
    want_t += (r.have & CW_HAVE_T) != 0;
    want_smoke += (r.have & CW_HAVE_SMOKE) && r.smoke;
  }
  CHECK_EQ(c.rows, N);
  CHECK_EQ(cw_copy_finish(&c), 0);
  CHECK_EQ(cw_copy_parse(c.buf, c.len, NULL, NULL), N);
  CHECK_EQ(pg_copy(pc, &c), 0);
  cw_copy_free(&c);
  PGresult *r = pg_query(pc,
                         "SELECT count(*), count(t), sum(w::float8), sum(wh), sum(socket), "
                         "count(*) FILTER (WHERE smoke), (extract(epoch FROM min(ts)) * 1000)::int8, "
                         "(extract(epoch FROM max(ts)) * 1000)::int8, count(DISTINCT station) FROM readings");
  CHECK(r != NULL);
  CHECK_EQ(atoll(PQgetvalue(r, 0, 0)), N);
  CHECK_EQ(atoll(PQgetvalue(r, 0, 1)), want_t);
  CHECK(strtod(PQgetvalue(r, 0, 2), NULL) == want_w);
  CHECK(strtod(PQgetvalue(r, 0, 3), NULL) == want_wh);
  CHECK_EQ(atoll(PQgetvalue(r, 0, 4)), want_sock);
  CHECK_EQ(atoll(PQgetvalue(r, 0, 5)), want_smoke);
  CHECK_EQ(atoll(PQgetvalue(r, 0, 6)), TS_2025);
  CHECK_EQ(atoll(PQgetvalue(r, 0, 7)), TS_2025 + (N - 1) * INT64_C(1000));
  CHECK_EQ(atoll(PQgetvalue(r, 0, 8)), 97);
  PQclear(r);
  PQfinish(pc);
}

CW_TEST(copy_parse_roundtrip) {
  cw_copy_t c;
  static sink_t s;
  s.n = 0;
  CHECK_EQ(cw_copy_init(&c, 0), 0);
  for (int i = 0; i < 256; i++) {
    cw_reading_t r = varied_reading(i);
    CHECK_EQ(cw_copy_add(&c, &r), 0);
  }
  /* without the trailer (an unfinished batch), then with it */
  CHECK_EQ(cw_copy_parse(c.buf, c.len, sink_row, &s), 256);
  CHECK_EQ(s.n, 256);
  CHECK_EQ(cw_copy_finish(&c), 0);
  s.n = 0;
  CHECK_EQ(cw_copy_parse(c.buf, c.len, sink_row, &s), 256);
  CHECK_EQ(s.n, 256);
  for (int i = 0; i < 256; i++) {
    cw_reading_t w = varied_reading(i);
    CHECK(same_reading(&s.rows[i], &w));
  }
  cw_copy_free(&c);
}

static int stop_at_3(void *ctx, const cw_reading_t *r) {
  (void)r;
  return ++*(int *)ctx == 3 ? -ECANCELED : 0;
}

CW_TEST(copy_parse_callback_stops) {
  cw_copy_t c;
  int calls = 0;
  cw_reading_t r = full_reading();
  CHECK_EQ(cw_copy_init(&c, 0), 0);
  for (int i = 0; i < 5; i++) CHECK_EQ(cw_copy_add(&c, &r), 0);
  CHECK_EQ(cw_copy_parse(c.buf, c.len, stop_at_3, &calls), -ECANCELED);
  CHECK_EQ(calls, 3);
  cw_copy_free(&c);
}

static int count_row(void *ctx, const cw_reading_t *r) {
  (void)r;
  ++*(int *)ctx;
  return 0;
}

/* Parses an exact-size heap copy so ASan sees any read past the end. */
static long parse_copy(const uint8_t *buf, size_t len, int *calls) {
  uint8_t *b = malloc(len ? len : 1);
  if (!b) return -ENOMEM;
  memcpy(b, buf, len);
  long rc = cw_copy_parse(b, len, count_row, calls);
  free(b);
  return rc;
}

CW_TEST(copy_parse_malformed) {
  cw_copy_t c;
  size_t ends[4]; /* buffer length after 0..3 tuples */
  int calls = 0;
  cw_reading_t r = full_reading();
  CHECK_EQ(cw_copy_init(&c, 0), 0);
  ends[0] = c.len;
  CHECK_EQ(cw_copy_add(&c, &r), 0);
  ends[1] = c.len;
  r.have = CW_HAVE_T;
  CHECK_EQ(cw_copy_add(&c, &r), 0);
  ends[2] = c.len;
  strcpy(r.station, "x");
  CHECK_EQ(cw_copy_add(&c, &r), 0);
  ends[3] = c.len;
  CHECK_EQ(cw_copy_finish(&c), 0);
  /* truncated anywhere: only tuple boundaries parse */
  for (size_t n = 0; n < c.len; n++) {
    long want = -EINVAL;
    for (int k = 0; k < 4; k++)
      if (n == ends[k]) want = k;
    calls = 0;
    CHECK_EQ(parse_copy(c.buf, n, &calls), want);
    if (want < 0) CHECK_EQ(calls, 0); /* fn never sees part of a bad batch */
  }
  uint8_t *b = malloc(c.len + 1);
  CHECK(b != NULL);
#define MUTATE(off, val, expect)                                 \
  do {                                                           \
    memcpy(b, c.buf, c.len);                                     \
    b[(off)] = (uint8_t)(val);                                   \
    calls = 0;                                                   \
    CHECK_EQ(parse_copy(b, c.len, &calls), (expect));            \
  } while (0)
  MUTATE(0, 'X', -EINVAL);            /* signature */
  MUTATE(12, 1, -EINVAL);             /* flags bit 16: OIDs */
  MUTATE(11, 0x80, -EINVAL);          /* flags bit 31: unknown critical flag */
  MUTATE(13, 1, 3);                   /* flags bit 8: non-critical, ignored */
  MUTATE(17, 1, -EINVAL);             /* header extension longer than the buffer */
  MUTATE(20, 10, -EINVAL);            /* field count 10 */
  MUTATE(20, 12, -EINVAL);            /* field count 12 */
  MUTATE(19 + 2, 0xff, -EINVAL);      /* ts length negative (-16777208) */
  MUTATE(19 + 2 + 3, 4, -EINVAL);     /* ts length 4 */
  MUTATE(19 + 14, 0xff, -EINVAL);     /* station length negative */
  MUTATE(19 + 17, 200, -EINVAL);      /* station length past the end */
  MUTATE(19 + 17, 33, -EINVAL);       /* station longer than 32 */
  MUTATE(19 + 18, 0, -EINVAL);        /* NUL inside station */
  MUTATE(c.len - 1, 0xfe, -EINVAL);   /* trailer not -1 */
  memcpy(b, c.buf, c.len);
  b[c.len] = 0; /* a byte after the trailer */
  calls = 0;
  CHECK_EQ(parse_copy(b, c.len + 1, &calls), -EINVAL);
  MUTATE(19 + 2 + 3, 0xff, -EINVAL);  /* ts length 255 */
  memcpy(b, c.buf, c.len);
  memset(b + 19 + 2, 0xff, 4); /* ts NULL: required */
  CHECK_EQ(parse_copy(b, c.len, &calls), -EINVAL);
  MUTATE(19 + 2 + 11, 0x7f, 3);       /* a ts bit flip is still a well-formed tuple */
  CHECK_EQ(cw_copy_parse(NULL, 0, NULL, NULL), -EINVAL);
#undef MUTATE
  free(b);
  cw_copy_free(&c);
}

CW_TEST(copy_reset_reuses_buffer) {
  cw_copy_t c;
  CHECK_EQ(cw_copy_init(&c, 64), 0);
  for (int i = 0; i < 1000; i++) {
    cw_reading_t r = varied_reading(i);
    CHECK_EQ(cw_copy_add(&c, &r), 0);
  }
  size_t len1 = c.len, cap1 = c.cap;
  uint8_t *buf1 = c.buf;
  uint8_t *saved = malloc(len1);
  CHECK(saved != NULL);
  memcpy(saved, c.buf, len1);
  CHECK(cap1 >= len1);
  cw_copy_reset(&c);
  CHECK_EQ(c.len, 19);
  CHECK_EQ(c.rows, 0);
  CHECK(c.buf == buf1);
  CHECK_EQ(c.cap, cap1);
  for (int i = 0; i < 1000; i++) {
    cw_reading_t r = varied_reading(i);
    CHECK_EQ(cw_copy_add(&c, &r), 0);
  }
  CHECK(c.buf == buf1); /* same size again: no reallocation */
  CHECK_EQ(c.cap, cap1);
  CHECK_EQ(c.len, len1);
  CHECK(memcmp(c.buf, saved, len1) == 0);
  CHECK_EQ(c.rows, 1000);
  free(saved);
  cw_copy_free(&c);
}

CW_TEST(copy_ts_out_of_range) {
  cw_copy_t c;
  cw_reading_t r = full_reading();
  r.ts_ms = INT64_MAX / 100;
  CHECK_EQ(cw_copy_init(&c, 0), 0);
  CHECK_EQ(cw_copy_add(&c, &r), -ERANGE);
  CHECK_EQ(c.rows, 0);
  CHECK_EQ(c.len, 19);
  cw_copy_free(&c);
}
