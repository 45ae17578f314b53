/* test_pipeline.c - the daemon's hot path on two real threads, as the worker
 * runs it: a producer pushes MQTT messages (ingest header + topic + payload)
 * into a lib/ring.h ring; the consumer pops bursts, decodes, runs the
 * detection engine and encodes COPY rows. Checks that every reading arrives
 * exactly once and in order per socket, that duplicates are refused and that
 * the alert the data contains is raised. Run under ThreadSanitizer by
 * `make check` (tests whose name starts with pipeline_). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "copy.h"
#include "daemon.h"
#include "decode.h"
#include "detect.h"
#include "ring.h"
#include "test.h"

#define P_STATIONS 20
#define P_SOCKETS 10
#define P_TICKS 500 /* 100,000 readings */
#define P_T0 1764374400000LL

typedef struct pipe_ctx {
  cw_ring_t ring;
  _Atomic int stop;
  cw_decode_cfg_t dcfg;
  cw_engine_t *eng;
  cw_copy_t copy;
  int64_t last_ts[P_STATIONS][P_SOCKETS + 1];
  long accepted, rejected, duplicates, out_of_order, rows;
  long alerts_thermal;
  int64_t next_id;
  cw_reading_t cur;
} pipe_ctx_t;

static void on_alert(void *ctx, const cw_alert_event_t *ev) {
  pipe_ctx_t *p = ctx;
  if (ev->kind == CW_KIND_THERMAL_RUNAWAY && ev->event == CW_EV_RAISED) p->alerts_thermal++;
}

static int64_t next_id(void *ctx) { return ++((pipe_ctx_t *)ctx)->next_id; }

static void on_reading(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  pipe_ctx_t *p = ctx;
  (void)index;
  if (!r || why != CW_REJ_OK) {
    p->rejected++;
    return;
  }
  cw_reject_t e = cw_engine_process(p->eng, r, r->ts_ms);
  if (e == CW_REJ_DUPLICATE) {
    p->duplicates++;
    return;
  }
  int st = atoi(r->station + 2);
  if (st < 0 || st >= P_STATIONS || r->socket > P_SOCKETS) {
    p->rejected++;
    return;
  }
  if (r->ts_ms <= p->last_ts[st][r->socket]) p->out_of_order++;
  p->last_ts[st][r->socket] = r->ts_ms;
  p->accepted++;
  if (cw_copy_add(&p->copy, r) == 0) p->rows++;
  if (p->copy.rows >= 5000) cw_copy_reset(&p->copy);
}

static int visit(void *ctx, const void *rec, size_t len) {
  pipe_ctx_t *p = ctx;
  cw_ingest_hdr_t h;
  if (len < sizeof h) return 0;
  memcpy(&h, rec, sizeof h);
  const char *topic = (const char *)rec + sizeof h;
  cw_decode(&p->dcfg, topic, h.topic_len, topic + h.topic_len, h.payload_len, h.recv_ms,
            on_reading, p);
  return 0;
}

static void *consumer(void *arg) {
  pipe_ctx_t *p = arg;
  for (;;) {
    size_t n = cw_ring_pop_burst(&p->ring, 64, visit, p);
    if (n == 0) {
      if (atomic_load(&p->stop) && cw_ring_empty(&p->ring)) break;
      cw_ring_wait(&p->ring, 10);
    }
  }
  return NULL;
}

/* Socket 7 of station ST03 heats up to 95 C; everything else is a quiet
 * charger. Each tick sends every socket once; the last tick is repeated to
 * exercise the duplicate path. */
static int produce(pipe_ctx_t *p) {
  char topic[64], payload[256];
  for (int tick = 0; tick <= P_TICKS; tick++) {
    int real = tick < P_TICKS ? tick : P_TICKS - 1;
    for (int st = 0; st < P_STATIONS; st++) {
      for (int so = 1; so <= P_SOCKETS; so++) {
        double t = 30.0 + (real % 7) * 0.1;
        if (st == 3 && so == 7 && real > P_TICKS / 2) t = 95.0;
        int64_t ts = P_T0 + (int64_t)real * 10000;
        int tl = snprintf(topic, sizeof topic, "cw/ST%02d/%d/telemetry", st, so);
        int pl = snprintf(payload, sizeof payload,
                          "{\"ts\":%lld,\"v\":229.5,\"a\":0.8,\"w\":%.1f,\"wh\":%d,\"t\":%.1f,"
                          "\"smoke\":0,\"state\":\"charging\"}",
                          (long long)ts, 180.0 + so, 1000 + real, t);
        cw_ingest_hdr_t h = {.recv_ms = ts, .topic_len = (uint32_t)tl, .payload_len = (uint32_t)pl};
        cw_ring_part_t parts[3] = {{&h, sizeof h}, {topic, (size_t)tl}, {payload, (size_t)pl}};
        int rc = cw_ring_pushv_wait(&p->ring, parts, 3, &p->stop);
        if (rc < 0) return rc; /* the ring wakes a sleeping consumer itself */
      }
    }
  }
  return 0;
}

CW_TEST(pipeline_two_threads_exactly_once) {
  pipe_ctx_t *p = calloc(1, sizeof *p);
  cw_detect_cfg_t det;
  pthread_t th;
  CHECK(p != NULL);
  CHECK_EQ(cw_ring_init(&p->ring, 64 * 1024), 0);
  cw_decode_cfg_defaults(&p->dcfg);
  p->dcfg.max_age_ms = INT64_MAX / 4; /* fixed 2025 timestamps */
  cw_detect_cfg_defaults(&det);
  p->eng = cw_engine_new(&det, on_alert, next_id, p);
  CHECK(p->eng != NULL);
  CHECK_EQ(cw_copy_init(&p->copy, 1 << 16), 0);
  CHECK_EQ(pthread_create(&th, NULL, consumer, p), 0);
  int rc = produce(p);
  atomic_store(&p->stop, 1);
  cw_ring_kick(&p->ring);
  pthread_join(th, NULL);
  long accepted = p->accepted, dups = p->duplicates, ooo = p->out_of_order, rej = p->rejected;
  long rows = p->rows, thermal = p->alerts_thermal;
  size_t sockets = cw_engine_sockets(p->eng);
  cw_copy_free(&p->copy);
  cw_engine_free(p->eng);
  cw_ring_destroy(&p->ring);
  free(p);
  CHECK_EQ(rc, 0);
  CHECK_EQ(accepted, (long)P_STATIONS * P_SOCKETS * P_TICKS);
  CHECK_EQ(rows, accepted);
  CHECK_EQ(dups, (long)P_STATIONS * P_SOCKETS); /* the repeated last tick */
  CHECK_EQ(ooo, 0);
  CHECK_EQ(rej, 0);
  CHECK_EQ(sockets, (size_t)P_STATIONS * P_SOCKETS);
  CHECK_EQ(thermal, 1);
}
