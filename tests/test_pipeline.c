/* test_pipeline.c - the daemon's hot path on real threads, with the code
 * the daemon runs: cw_pipeline_ingest on the producer side (the MQTT
 * receive thread's call), the real worker threads (decode, detect, reading
 * and alert rings), and a consumer thread standing in for the writer and
 * the alert sink. Both modes: threaded (two workers, an ingest ring each)
 * and inline (one worker: the producer's thread runs decode + detect, the
 * worker's thread applies control and sweeps under the same engine mutex).
 * Checks that every reading arrives exactly once and in order per socket,
 * that duplicates are refused (and reach the reject sink), that the alert
 * the data contains is raised once, that control messages reach the
 * owning engine, that the offline sweep runs while no message arrives and
 * that a full reading ring holds the producer back. Run under
 * ThreadSanitizer by `make check` (tests whose name starts with pipeline_). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "clock.h"
#include "fixture.h"
#include "pipeline.h"
#include "test.h"
#include "worker.h"

#define P_STATIONS 20
#define P_SOCKETS 10
#define P_TICKS 500 /* 100,000 readings */
#define P_T0 1764374400000LL
#define P_WORKERS 2
#define P_WAIT_MS 20000 /* a bound on waiting for another thread, not a timing assertion */

typedef struct pipe_ctx {
  cw_fx_t fx;
  cw_pipeline_t *p;
  int nworkers;
  cw_decode_cfg_t dcfg;
  _Atomic int stop;
  int64_t last_ts[P_STATIONS][P_SOCKETS + 1];
  long accepted, out_of_order, foreign, alerts_thermal, alerts_offline, closed_777;
} pipe_ctx_t;

static int on_reading(void *ctx, const void *rec, size_t len) {
  pipe_ctx_t *c = ctx;
  cw_reading_t r;
  if (len != sizeof r) return 0;
  memcpy(&r, rec, sizeof r);
  int st = atoi(r.station + 2);
  if (st < 0 || st >= P_STATIONS || r.socket > P_SOCKETS) {
    c->foreign++;
    return 0;
  }
  if (r.ts_ms <= c->last_ts[st][r.socket]) c->out_of_order++;
  c->last_ts[st][r.socket] = r.ts_ms;
  c->accepted++;
  return 0;
}

static int on_alert(void *ctx, const void *rec, size_t len) {
  pipe_ctx_t *c = ctx;
  cw_alert_event_t ev;
  if (len != sizeof ev) return 0;
  memcpy(&ev, rec, sizeof ev);
  if (ev.kind == CW_KIND_THERMAL_RUNAWAY && ev.event == CW_EV_RAISED) c->alerts_thermal++;
  if (ev.kind == CW_KIND_OFFLINE && ev.event == CW_EV_RAISED) c->alerts_offline++;
  if (ev.id == 777 && ev.event == CW_EV_CLOSED) c->closed_777++;
  return 0;
}

/* The writer's and the alert sink's side, on one thread. */
static void *consumer(void *arg) {
  pipe_ctx_t *c = arg;
  for (;;) {
    size_t n = 0;
    for (int i = 0; i < c->nworkers; i++) {
      n += cw_ring_pop_burst(cw_pipeline_readings(c->p, i), 256, on_reading, c);
      n += cw_ring_pop_burst(cw_pipeline_alerts(c->p, i), 64, on_alert, c);
    }
    if (n == 0) {
      if (atomic_load(&c->stop)) break;
      cw_ring_wait(cw_pipeline_readings(c->p, 0), 2);
    }
  }
  return NULL;
}

/* Socket 7 of station ST03 heats up to 95 C; everything else is a quiet
 * charger. Each tick sends every socket once; the last tick is repeated to
 * exercise the duplicate path. */
static int produce(pipe_ctx_t *c) {
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
        int rc = cw_pipeline_ingest(c->p, topic, (size_t)tl, payload, (size_t)pl, ts, 0);
        if (rc < 0) return rc;
      }
    }
  }
  return 0;
}

static int setup_ring(pipe_ctx_t *c, int nworkers, size_t ring_bytes) {
  if (cw_fx_init(&c->fx)) return -1;
  c->nworkers = nworkers;
  cw_decode_cfg_defaults(&c->dcfg);
  c->dcfg.max_age_ms = INT64_MAX / 4; /* fixed 2025 timestamps */
  cw_pipeline_cfg_t pc = {.env = &c->fx.env,
                          .nworkers = nworkers,
                          .ring_bytes = ring_bytes,
                          .dcfg = &c->dcfg,
                          .ids = &c->fx.ids};
  return cw_pipeline_create(&pc, &c->p);
}

static int setup(pipe_ctx_t *c, int nworkers) { return setup_ring(c, nworkers, 64 * 1024); }

static void stop_workers(pipe_ctx_t *c) {
  cw_pipeline_request_stop(c->p);
  while (!cw_pipeline_stopped(c->p)) cw_ring_kick(cw_pipeline_readings(c->p, 0));
  cw_pipeline_join(c->p);
}

static cw_ctl_t *restore_777(void) {
  cw_ctl_t *ctl = calloc(1, sizeof *ctl);
  if (!ctl) return NULL;
  ctl->type = CW_CTL_RESTORE_ALERT;
  snprintf(ctl->station, sizeof ctl->station, "ST05");
  ctl->socket = 2;
  ctl->alert = (cw_alert_event_t){.id = 777, .ts_ms = P_T0, .kind = CW_KIND_OVERLOAD,
                                  .severity = CW_SEV_WARNING, .event = CW_EV_RAISED,
                                  .state = CW_ALERT_OPEN, .socket = 2};
  snprintf(ctl->alert.station, sizeof ctl->alert.station, "ST05");
  return ctl;
}

static cw_ctl_t *close_777(void) {
  cw_ctl_t *ctl = calloc(1, sizeof *ctl);
  if (!ctl) return NULL;
  ctl->type = CW_CTL_OPERATOR;
  ctl->alert.id = 777;
  ctl->alert.event = CW_EV_CLOSED;
  snprintf(ctl->alert.by, sizeof ctl->alert.by, "test");
  return ctl;
}

static void *post_restore_and_close(void *arg) {
  pipe_ctx_t *c = arg;
  cw_ctl_t *r = restore_777(), *x = close_777();
  if (r) cw_pipeline_post(c->p, CW_CTL_BY_STATION, r);
  if (x) cw_pipeline_post(c->p, CW_CTL_ALL, x);
  return NULL;
}

/* Every reading through nworkers workers (threads started) to the
 * consumer thread; while it runs, a control thread posts the restore of an
 * open alert and its operator close (the writer's and control's calls). */
static void *post_restore_and_close(void *arg);

static void exactly_once(int nworkers) {
  pipe_ctx_t *c = calloc(1, sizeof *c);
  pthread_t th, ctl;
  CHECK(c != NULL);
  CHECK_EQ(setup(c, nworkers), 0);
  CHECK_EQ(cw_pipeline_start(c->p), 0);
  CHECK_EQ(pthread_create(&th, NULL, consumer, c), 0);
  CHECK_EQ(pthread_create(&ctl, NULL, post_restore_and_close, c), 0);
  int rc = produce(c);
  pthread_join(ctl, NULL);
  stop_workers(c); /* every ingest ring drained into the reading rings */
  atomic_store(&c->stop, 1);
  pthread_join(th, NULL);
  consumer(c); /* what arrived after the consumer's last look */
  long accepted = c->accepted, ooo = c->out_of_order, foreign = c->foreign;
  long thermal = c->alerts_thermal, closed = c->closed_777;
  uint64_t dups = atomic_load(&c->fx.m.rejects[CW_REJ_DUPLICATE]);
  uint64_t other = atomic_load(&c->fx.rejects) - dups;
  uint64_t sockets = atomic_load(&c->fx.m.sockets_tracked);
  uint64_t counted = atomic_load(&c->fx.m.readings_accepted);
  cw_pipeline_free(c->p);
  cw_fx_free(&c->fx);
  free(c);
  CHECK_EQ(rc, 0);
  CHECK_EQ(accepted, (long)P_STATIONS * P_SOCKETS * P_TICKS);
  CHECK_EQ(counted, (uint64_t)accepted);
  CHECK_EQ(dups, (uint64_t)P_STATIONS * P_SOCKETS); /* the repeated last tick */
  CHECK_EQ(other, 0);
  CHECK_EQ(ooo, 0);
  CHECK_EQ(foreign, 0);
  CHECK_EQ(sockets, (uint64_t)P_STATIONS * P_SOCKETS);
  CHECK_EQ(thermal, 1);
  CHECK_EQ(closed, 1);
}

CW_TEST(pipeline_two_threads_exactly_once) { exactly_once(P_WORKERS); }

/* Inline mode: the producer's thread drives the engine, the worker's
 * thread applies the control messages posted meanwhile. */
CW_TEST(pipeline_inline_exactly_once) { exactly_once(1); }

/* Control messages take the routes the daemon uses: an open alert restored
 * to the worker owning its station (as the writer does at start), then an
 * operator close broadcast to every worker (as control does for an id it
 * does not know): exactly one worker holds the alert and emits the closed
 * event. Also: an oversize message is rejected at the producer. */
CW_TEST(pipeline_control_reaches_owner) {
  pipe_ctx_t *c = calloc(1, sizeof *c);
  CHECK(c != NULL);
  CHECK_EQ(setup(c, P_WORKERS), 0);
  CHECK_EQ(cw_pipeline_start(c->p), 0);
  post_restore_and_close(c);
  static char big[70 * 1024]; /* larger than any record of a 64 KiB ring */
  memset(big, ' ', sizeof big);
  const char topic[] = "cw/ST05/2/telemetry";
  CHECK_EQ(cw_pipeline_ingest(c->p, topic, strlen(topic), big, sizeof big, P_T0, 0), 0);
  stop_workers(c);
  long closed = 0, owner_ok = 0;
  int owner = cw_pipeline_route(c->p, "ST05", 4);
  for (int i = 0; i < P_WORKERS; i++) {
    cw_alert_event_t ev;
    while (cw_ring_pop(cw_pipeline_alerts(c->p, i), &ev, sizeof ev) == (long)sizeof ev)
      if (ev.id == 777 && ev.event == CW_EV_CLOSED) closed++, owner_ok += i == owner;
  }
  uint64_t oversize = atomic_load(&c->fx.m.rejects[CW_REJ_OVERSIZE]);
  cw_pipeline_free(c->p);
  cw_fx_free(&c->fx);
  free(c);
  CHECK_EQ(closed, 1);
  CHECK_EQ(owner_ok, 1);
  CHECK_EQ(oversize, 1);
}

/* A blind pipeline (a shard just taken over) stores a reading that is not
 * after its socket's last ts (a broker's late redelivery of a message the
 * previous owner never acknowledged) instead of rejecting it; once sighted
 * again the same reading is a duplicate as before. One worker: inline. */
CW_TEST(pipeline_blind_stores_late_redelivery) {
  pipe_ctx_t *c = calloc(1, sizeof *c);
  CHECK(c != NULL);
  CHECK_EQ(setup(c, 1), 0);
  CHECK_EQ(cw_pipeline_start(c->p), 0);
  const char topic[] = "cw/ST01/1/telemetry";
  char pl[128];
  int64_t ts[4] = {P_T0 + 2000, P_T0 + 1000, P_T0 + 3000, P_T0 + 1000}; /* 2nd, 4th: late */
  for (int i = 0; i < 4; i++) {
    if (i == 1) cw_pipeline_set_blind(c->p, INT64_MAX);
    if (i == 3) cw_pipeline_set_blind(c->p, 0);
    int n = snprintf(pl, sizeof pl, "{\"ts\":%lld,\"v\":230.0,\"a\":0.1,\"w\":23}", (long long)ts[i]);
    CHECK_EQ(cw_pipeline_ingest(c->p, topic, strlen(topic), pl, (size_t)n, cw_now_ms(), 0), 0);
    /* in order: let the worker take each before the blind state changes */
    while (!cw_ring_empty(cw_pipeline_readings(c->p, 0)) || atomic_load(&c->fx.m.readings_accepted) +
           atomic_load(&c->fx.m.rejects[CW_REJ_DUPLICATE]) < (uint64_t)i + 1)
      if (cw_ring_pop_burst(cw_pipeline_readings(c->p, 0), 16, on_reading, c) == 0) cw_sleep_ms(1);
  }
  stop_workers(c);
  uint64_t dups = atomic_load(&c->fx.m.rejects[CW_REJ_DUPLICATE]);
  uint64_t stored = atomic_load(&c->fx.m.readings_accepted);
  cw_pipeline_free(c->p);
  cw_fx_free(&c->fx);
  free(c);
  CHECK_EQ(stored, 3); /* 2000, late 1000 (blind), 3000 */
  CHECK_EQ(dups, 1);   /* late 1000 again, not blind */
}

/* An inline pipeline with its engine thread started, or NULL. */
static pipe_ctx_t *inline_started(void) {
  pipe_ctx_t *c = calloc(1, sizeof *c);
  if (c && (setup(c, 1) || cw_pipeline_start(c->p))) {
    if (c->p) cw_pipeline_free(c->p);
    cw_fx_free(&c->fx);
    free(c);
    c = NULL;
  }
  return c;
}

static void finish(pipe_ctx_t *c) {
  stop_workers(c);
  cw_pipeline_free(c->p);
  cw_fx_free(&c->fx);
  free(c);
}

/* Consume alert events until *seen is non-zero (bounded). */
static long await_alerts(pipe_ctx_t *c, const long *seen) {
  for (int i = 0; i < P_WAIT_MS && !*seen; i++)
    if (cw_ring_pop_burst(cw_pipeline_alerts(c->p, 0), 16, on_alert, c) == 0) cw_sleep_ms(1);
  return *seen;
}

/* Inline mode, no message at all: control posted from another thread
 * reaches the engine through the worker's own thread (restore, then close:
 * the closed event appears in the alert ring). */
CW_TEST(pipeline_inline_control_without_messages) {
  pipe_ctx_t *c = inline_started();
  CHECK(c != NULL);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, post_restore_and_close, c), 0);
  pthread_join(th, NULL);
  long closed = await_alerts(c, &c->closed_777);
  finish(c);
  CHECK_EQ(closed, 1);
}

/* Inline mode: three readings of a socket, received two hours ago, then
 * silence: the engine thread sweeps while no message arrives and raises
 * offline; blind first, it does not (the alert comes only once sighted). */
CW_TEST(pipeline_inline_sweep_without_messages) {
  pipe_ctx_t *c = inline_started();
  CHECK(c != NULL);
  cw_pipeline_set_blind(c->p, INT64_MAX);
  const char topic[] = "cw/ST09/4/telemetry";
  char pl[128];
  int64_t old = cw_now_ms() - 2 * 3600 * 1000LL;
  for (int i = 0; i < 3; i++) {
    int n = snprintf(pl, sizeof pl, "{\"ts\":%lld,\"v\":230.0,\"a\":0,\"w\":0}",
                     (long long)(P_T0 + i * 10000));
    CHECK_EQ(cw_pipeline_ingest(c->p, topic, strlen(topic), pl, (size_t)n, old + i * 10000, 0), 0);
  }
  /* blind: the sweeps skip it (two sweeps' worth of waiting, no alert) */
  cw_sleep_ms(2500);
  cw_ring_pop_burst(cw_pipeline_alerts(c->p, 0), 16, on_alert, c);
  long while_blind = c->alerts_offline;
  cw_pipeline_set_blind(c->p, 0);
  long offline = await_alerts(c, &c->alerts_offline);
  finish(c);
  CHECK_EQ(while_blind, 0);
  CHECK(offline >= 1);
}

/* Inline mode, backpressure: the smallest reading ring (inline it has the
 * 4 KiB ring budget twice, 8 KiB) and no consumer. The producer thread must
 * wait (not drop) once the ring is full; a consumer started then takes every
 * reading exactly once. */
#define BP_MSGS 600
typedef struct bp_ctx {
  pipe_ctx_t *c;
  _Atomic int sent, done;
} bp_ctx_t;

static void *bp_produce(void *arg) {
  bp_ctx_t *b = arg;
  char topic[64], pl[160];
  for (int i = 0; i < BP_MSGS; i++) {
    int tl = snprintf(topic, sizeof topic, "cw/ST%02d/%d/telemetry", i % P_STATIONS, 1 + i % 5);
    int n = snprintf(pl, sizeof pl, "{\"ts\":%lld,\"v\":230.0,\"a\":0.5,\"w\":115}",
                     (long long)(P_T0 + i * 1000LL));
    cw_pipeline_ingest(b->c->p, topic, (size_t)tl, pl, (size_t)n, P_T0 + i * 1000LL, 0);
    atomic_fetch_add(&b->sent, 1);
  }
  atomic_store(&b->done, 1);
  return NULL;
}

CW_TEST(pipeline_inline_backpressure) {
  pipe_ctx_t *c = calloc(1, sizeof *c);
  bp_ctx_t b = {.c = c};
  pthread_t prod, cons;
  CHECK(c != NULL);
  CHECK_EQ(setup_ring(c, 1, 4096), 0); /* the smallest ring */
  CHECK_EQ(cw_pipeline_start(c->p), 0);
  CHECK_EQ(pthread_create(&prod, NULL, bp_produce, &b), 0);
  cw_ring_t *rr = cw_pipeline_readings(c->p, 0);
  size_t cap = (size_t)rr->mask + 1;
  /* wait until the ring cannot take another reading */
  for (int i = 0; i < P_WAIT_MS && cw_ring_used(rr) + sizeof(cw_reading_t) + 16 <= cap; i++)
    cw_sleep_ms(1);
  int sent_full = atomic_load(&b.sent), done_full = atomic_load(&b.done);
  CHECK_EQ(pthread_create(&cons, NULL, consumer, c), 0);
  pthread_join(prod, NULL);
  stop_workers(c);
  atomic_store(&c->stop, 1);
  pthread_join(cons, NULL);
  consumer(c);
  long accepted = c->accepted, ooo = c->out_of_order;
  uint64_t stalls = atomic_load(&c->fx.m.writer_stalls);
  uint64_t rejects = atomic_load(&c->fx.rejects);
  finish(c);
  CHECK_EQ(cap, 2 * 4096); /* inline: the lane's two ring budgets */
  CHECK_EQ(done_full, 0); /* 8 KiB holds far fewer than BP_MSGS readings */
  CHECK(sent_full < BP_MSGS);
  CHECK_EQ(accepted, BP_MSGS);
  CHECK_EQ(ooo, 0);
  CHECK_EQ(rejects, 0);
  CHECK(stalls >= 1);
}

/* The journal marks (cw_pipeline_jpos_processed), as the writer uses them:
 * a consumer thread takes the processed mark, empties both reading rings,
 * and then must have seen the reading of every message up to the mark.
 * Message i (jpos i + 1) is station ST<i % 20>, socket 1, ts P_T0 + i s, so
 * both workers take part and the one reading says which message it was. */
#define J_MSGS 20000
typedef struct jpos_ctx {
  pipe_ctx_t *c;
  uint8_t *seen;   /* by message */
  long missing;    /* messages under a mark whose reading was not there */
  int64_t last_mark;
  _Atomic int stop;
} jpos_ctx_t;

static int jpos_reading(void *ctx, const void *rec, size_t len) {
  jpos_ctx_t *j = ctx;
  cw_reading_t r;
  if (len != sizeof r) return 0;
  memcpy(&r, rec, sizeof r);
  int64_t i = (r.ts_ms - P_T0) / 1000;
  if (i >= 0 && i < J_MSGS) j->seen[i] = 1;
  return 0;
}

static void *jpos_consumer(void *arg) {
  jpos_ctx_t *j = arg;
  int64_t checked = 0; /* messages [0, checked) verified */
  for (int done = 0; !done;) {
    done = atomic_load(&j->stop);
    int64_t mark = cw_pipeline_jpos_processed(j->c->p);
    for (int w = 0; w < P_WORKERS; w++) {
      while (cw_ring_pop_burst(cw_pipeline_readings(j->c->p, w), 256, jpos_reading, j) == 256) {
      }
      while (cw_ring_pop_burst(cw_pipeline_alerts(j->c->p, w), 256, on_alert, j->c) == 256) {
      }
    }
    for (; checked < mark && checked < J_MSGS; checked++)
      if (!j->seen[checked]) j->missing++;
    if (mark > j->last_mark) j->last_mark = mark;
    cw_sleep_ms(0);
  }
  return NULL;
}

CW_TEST(pipeline_jpos_processed) {
  pipe_ctx_t *c = calloc(1, sizeof *c);
  jpos_ctx_t j = {.c = c, .seen = calloc(J_MSGS, 1)};
  pthread_t th;
  char topic[64], pl[128];
  CHECK(c != NULL && j.seen != NULL);
  CHECK_EQ(setup(c, P_WORKERS), 0);
  CHECK_EQ(cw_pipeline_jpos_processed(c->p), 0);
  CHECK_EQ(cw_pipeline_start(c->p), 0);
  CHECK_EQ(pthread_create(&th, NULL, jpos_consumer, &j), 0);
  for (int i = 0; i < J_MSGS; i++) {
    int tl = snprintf(topic, sizeof topic, "cw/ST%02d/1/telemetry", i % P_STATIONS);
    int n = snprintf(pl, sizeof pl, "{\"ts\":%lld,\"v\":230.0,\"a\":0.1,\"w\":23}",
                     (long long)(P_T0 + (int64_t)i * 1000));
    CHECK_EQ(cw_pipeline_ingest(c->p, topic, (size_t)tl, pl, (size_t)n, cw_now_ms(), i + 1), 0);
  }
  CHECK_EQ(cw_pipeline_jpos_handed(c->p), J_MSGS);
  while (cw_pipeline_jpos_processed(c->p) < J_MSGS) cw_sleep_ms(1);
  atomic_store(&j.stop, 1);
  pthread_join(th, NULL);
  stop_workers(c);
  cw_pipeline_free(c->p);
  cw_fx_free(&c->fx);
  free(c);
  free(j.seen);
  CHECK_EQ(j.missing, 0);
  CHECK_EQ(j.last_mark, J_MSGS);
}

/* ------------------------------------------------------------ ingest_lag */

/* Lags on and beside bucket bounds, 0 and negative (a station clock ahead). */
static const int64_t lags[] = {-2000, 0, 10, 11, 25, 26, 99, 100, 101, 999, 1000, 1001,
                               59999, 60000, 60001, 3600000, 3600001, 7200000};
#define NLAGS ((int)(sizeof lags / sizeof lags[0]))

/* What the shared histogram should hold: observed with lib/hist.h's plain
 * histogram (tests/test_hist.c holds it to the bounds' definition). */
typedef cw_hist_local_t lag_want_t;
static void want_lag(lag_want_t *w, int64_t lag) { cw_hist_local_observe(w, lag); }

/* 0 when h holds exactly w. */
static int lag_differs(cw_hist_t *h, const lag_want_t *w) {
  cw_hist_local_t got;
  cw_hist_snapshot(h, &got);
  return memcmp(&got, w, sizeof got) != 0;
}

static void deliver_lag(cw_worker_t *wk, int st, int so, int64_t ts, int64_t recv) {
  char topic[64], payload[160];
  int tl = snprintf(topic, sizeof topic, "cw/ST%02d/%d/telemetry", st, so);
  int pl = snprintf(payload, sizeof payload,
                    "{\"ts\":%lld,\"v\":229.5,\"a\":0.8,\"w\":181,\"wh\":1000,\"t\":30,"
                    "\"smoke\":0,\"state\":\"charging\"}",
                    (long long)ts);
  cw_msg_t msg = {topic, (size_t)tl, payload, (size_t)pl, recv, 0};
  cw_worker_deliver(wk, &msg);
}

/* One worker in inline mode driven on this thread, its own thread not
 * started (no housekeeping): the shared ingest_lag histogram gets the
 * worker's observations when a delivery comes 50 ms after the last
 * addition, not before; freeing the worker adds what is left. Exact bucket
 * counts, count and sum at each step. */
CW_TEST(pipeline_lag_added_every_50ms) {
  static cw_fx_t f;
  cw_ring_t *alerts = aligned_alloc(CW_CACHELINE, sizeof *alerts);
  CHECK(alerts != NULL);
  memset(alerts, 0, sizeof *alerts);
  CHECK_EQ(cw_fx_init(&f), 0);
  CHECK_EQ(cw_ring_init(alerts, 64 * 1024), 0);
  cw_decode_cfg_t dcfg;
  cw_decode_cfg_defaults(&dcfg);
  dcfg.max_age_ms = INT64_MAX / 4;
  cw_worker_cfg_t wc = {.env = &f.env, .dcfg = &dcfg, .readings = &f.ring, .alerts = alerts,
                        .ids = &f.ids};
  cw_worker_t *wk = NULL;
  CHECK_EQ(cw_worker_create(&wc, &wk), 0);
  cw_hist_t *h = &f.m.ingest_lag;
  lag_want_t first = {0}, all = {0};
  const int64_t R = P_T0 + 3600000;
  /* at R: the first reading is added at once (nothing was added before),
   * the others of the same receive time wait */
  for (int i = 0; i < NLAGS; i++) {
    deliver_lag(wk, i, 1, R - lags[i], R);
    if (i == 0) want_lag(&first, lags[i]);
    want_lag(&all, lags[i]);
  }
  CHECK_EQ(lag_differs(h, &first), 0);
  /* 49 ms later: still waiting; 50 ms later: added, with that one */
  deliver_lag(wk, 40, 1, R + 49 - 5000, R + 49);
  want_lag(&all, 5000);
  CHECK_EQ(lag_differs(h, &first), 0);
  deliver_lag(wk, 40, 2, R + 50 - 700, R + 50);
  want_lag(&all, 700);
  CHECK_EQ(lag_differs(h, &all), 0);
  /* fewer than 50 ms before the end: freeing the worker adds them */
  deliver_lag(wk, 40, 3, R + 60 - 30, R + 60);
  deliver_lag(wk, 40, 4, R + 61 - 3000000, R + 61);
  want_lag(&all, 30);
  want_lag(&all, 3000000);
  CHECK(lag_differs(h, &all) != 0);
  CHECK_EQ(atomic_load(&f.m.readings_accepted), all.count);
  cw_worker_free(wk);
  CHECK_EQ(lag_differs(h, &all), 0);
  cw_ring_destroy(alerts);
  free(alerts);
  cw_fx_free(&f);
}

/* Through a started pipeline (inline: one worker; threaded: two), received
 * now, within a few ms of each other, and stopped at once (usually before
 * the 50 ms after which a worker's thread adds what it holds): the stop
 * adds every observation the workers still hold, exactly. */
static void lag_after_stop(int nworkers) {
  pipe_ctx_t *c = calloc(1, sizeof *c);
  CHECK(c != NULL);
  CHECK_EQ(setup(c, nworkers), 0);
  CHECK_EQ(cw_pipeline_start(c->p), 0);
  lag_want_t want = {0};
  int rc = 0;
  int64_t now = cw_now_ms();
  for (int rep = 0; rep < P_SOCKETS; rep++) {
    for (int i = 0; i < NLAGS && rc == 0; i++) {
      char topic[64], payload[160];
      int64_t recv = now + rep, ts = recv - lags[i];
      int tl = snprintf(topic, sizeof topic, "cw/ST%02d/%d/telemetry", i, rep + 1);
      int pl = snprintf(payload, sizeof payload,
                        "{\"ts\":%lld,\"v\":229.5,\"a\":0.8,\"w\":181,\"wh\":1000,\"t\":30,"
                        "\"smoke\":0,\"state\":\"charging\"}",
                        (long long)ts);
      rc = cw_pipeline_ingest(c->p, topic, (size_t)tl, payload, (size_t)pl, recv, 0);
      want_lag(&want, lags[i]);
    }
  }
  stop_workers(c);
  int differs = lag_differs(&c->fx.m.ingest_lag, &want);
  uint64_t accepted = atomic_load(&c->fx.m.readings_accepted);
  cw_pipeline_free(c->p);
  cw_fx_free(&c->fx);
  free(c);
  CHECK_EQ(rc, 0);
  CHECK_EQ(accepted, want.count);
  CHECK_EQ(want.count, (uint64_t)P_SOCKETS * NLAGS);
  CHECK_EQ(differs, 0);
}

CW_TEST(pipeline_inline_lag_after_stop) { lag_after_stop(1); }
CW_TEST(pipeline_threaded_lag_after_stop) { lag_after_stop(P_WORKERS); }

/* Inline mode, messages then silence, no stop: what the delivering thread
 * left in the worker's plain histogram reaches the shared one all the same
 * (the worker's own thread adds it). */
CW_TEST(pipeline_inline_lag_added_while_idle) {
  pipe_ctx_t *c = inline_started();
  CHECK(c != NULL);
  lag_want_t want = {0};
  int64_t now = cw_now_ms();
  for (int i = 0; i < 3; i++) {
    char topic[64], payload[160];
    int tl = snprintf(topic, sizeof topic, "cw/ST%02d/1/telemetry", 50 + i);
    int pl = snprintf(payload, sizeof payload,
                      "{\"ts\":%lld,\"v\":229.5,\"a\":0.8,\"w\":181,\"wh\":1000,\"t\":30,"
                      "\"smoke\":0,\"state\":\"charging\"}",
                      (long long)(now - 20 * i));
    CHECK_EQ(cw_pipeline_ingest(c->p, topic, (size_t)tl, payload, (size_t)pl, now, 0), 0);
    want_lag(&want, 20 * i);
  }
  int differs = 1;
  for (int i = 0; i < P_WAIT_MS && (differs = lag_differs(&c->fx.m.ingest_lag, &want)); i++)
    cw_sleep_ms(1);
  finish(c);
  CHECK_EQ(differs, 0);
}
