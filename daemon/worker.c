/* worker.c - one detection worker (worker.h). Hot path: a message in
 * (inline: on the MQTT receive thread; threaded: off the ingest ring),
 * decode + validate (no lock), detect (engine mutex), reading ring out (to
 * the writer, published per message, woken lazily), alert ring out (to the
 * main loop's alert sink, at once). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "ingest.h"
#include "worker.h"

#define IDLE_WAIT_MS 100
#define SWEEP_MS 1000
/* Lazy wake-up of the writer: readings published while it sleeps wake it
 * once WAKE_RECORDS of them wait or the oldest is WAKE_MS old (the next
 * message or the worker's thread pays the wake-up). The writer batches for
 * [postgres] batch_ms anyway, so this adds at most WAKE_MS to a row's way
 * into the database, and spares a futex wake-up per message. */
#define WAKE_RECORDS 256
#define WAKE_MS 10
/* Readings decoded before the engine lock is taken (a station-batched
 * message is usually one chunk). */
#define CHUNK 32

struct cw_worker {
  const cw_env_t *env;
  int index;
  pthread_t thread;
  int started;
  cw_engine_t *engine;
  cw_decode_cfg_t dcfg;
  cw_ring_t *ingest;   /* consumer end; producer: the MQTT receive thread */
  cw_ring_t *readings; /* producer end; consumer: the writer thread */
  cw_ring_t *alerts;   /* producer end; consumer: the alert sink (main loop) */
  cw_idgen_t *ids;
  void (*alert_wake)(void *ctx);
  void *alert_wake_ctx;
  int inline_mode;     /* no ingest ring: cw_worker_deliver on the producer's thread */
  /* The engine, the producer ends of the reading and alert rings and the
   * fields below it: the delivering thread and the worker's thread. */
  pthread_mutex_t engine_mu;
  _Atomic int64_t *jpos_done;
  pthread_mutex_t ctl_mu;
  pthread_cond_t ctl_cv; /* inline mode: the worker's thread sleeps on it (with ctl_mu) */
  cw_ctl_t *ctl_head, *ctl_tail; /* FIFO: restore order matters (policies before state) */
  _Atomic int ctl_pending;        /* set after an enqueue: spares the mutex per burst */
  _Atomic int stop;   /* set by cw_worker_request_stop: drain the ingest ring, then exit */
  _Atomic int done;   /* set by the thread as it exits */
  uint64_t sockets;   /* last value added to m.sockets_tracked */
  uint64_t sensor_events, sensor_suspect; /* last values added to m.sensor_* */
  int64_t last_sweep;
  _Atomic int64_t blind_until_ms; /* no sweep (offline) before this wall-clock time */
  int64_t pub_latest, pub_fresh; /* last values stored in m.recv_latest_ms / recv_fresh_ms */
  cw_hist_local_t lag;           /* m.ingest_lag observations not yet added to it */
  int64_t lag_added_ms;          /* when lag was last added to m.ingest_lag */
  int lag_napping;               /* the worker's thread sleeps long: wake it for lag (inline) */
  /* the worker's thread's, set by housekeep: add lag by then (0: nothing
   * flows); lag_added_ms as housekeep last saw it */
  int64_t lag_due_ms, lag_looked_ms;
  _Atomic int lag_wake;          /* inline: lag to add, set with ctl_mu held before a signal */
  unsigned unwoken;              /* readings published since the writer was last awake */
  _Atomic int64_t owed_since_ms; /* a wake-up of the writer is owed since (0: none) */
  /* the delivering thread's: the current message and its decoded readings */
  const cw_msg_t *msg;
  int nchunk;
  struct {
    cw_reading_t r;
    int index;
  } chunk[CHUNK];
  _Atomic int64_t *lag_latest, *lag_fresh; /* the same for this pipeline only, or NULL */
};

static const _Atomic int never = 0; /* stop flag for pushes that must not give up */

static int64_t next_id(void *ctx) { return cw_idgen_next(((cw_worker_t *)ctx)->ids); }
static int next_ref(void *ctx, int64_t now_ms, char *out, size_t cap) {
  return cw_idgen_ref(((cw_worker_t *)ctx)->ids, now_ms, out, cap);
}

/* Engine -> alert ring. Waits while the ring is full (the alert sink drains
 * it; at shutdown main.c keeps draining while it waits for the workers). */
static void on_alert(void *ctx, const cw_alert_event_t *ev) {
  cw_worker_t *w = ctx;
  cw_ring_part_t part = {ev, sizeof *ev};
  int rc = cw_ring_pushv_wait(w->alerts, &part, 1, &never);
  if (rc == 1 && w->alert_wake) w->alert_wake(w->alert_wake_ctx);
  else if (rc < 0) cw_log(CW_LOG_ERROR, "worker %d: alert ring push: %s", w->index, strerror(-rc));
}

/* Engine -> alert ring: a finished charging session rides the alert path
 * in an alert-sized envelope (lib/session.h), spooled like an alert. */
static void on_session(void *ctx, const cw_session_t *s) {
  cw_alert_event_t ev;
  cw_session_wrap(s, &ev);
  on_alert(ctx, &ev);
}

static void reject(cw_worker_t *w, cw_reject_t why, int index, const char *detail) {
  const cw_msg_t *m = w->msg;
  cw_env_reject(w->env, why, index, detail, m->topic, m->topic_len, m->payload, m->payload_len);
}

/* For lib/blind.h: receive time of the newest reading and of the newest live
 * one, shared by every worker (max), stored at most every 50 ms each. The
 * ingest_lag histogram likewise: observed into the worker's plain one (no
 * atomics per reading) and added to the shared one at most every 50 ms by
 * the delivering thread. What is left when messages stop is added by the
 * worker's own thread within about 100 ms: while readings flow it looks
 * every 50 ms (lag_due_ms); idle, it sleeps long, and in inline mode the
 * first reading that stays in the plain histogram wakes it (lag_napping).
 * Its end adds whatever remains. */
#define LAG_PUBLISH_MS 50
static void store_max(_Atomic int64_t *a, int64_t v) {
  int64_t cur = atomic_load_explicit(a, memory_order_relaxed);
  while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
  }
}
/* Engine lock held: add the worker's ingest_lag observations to the shared
 * histogram if the last addition is LAG_PUBLISH_MS old (or the clock went
 * back), or always when force is set. */
static void add_lag(cw_worker_t *w, int64_t now, int force) {
  if (!w->lag.count) return;
  if (!force && now - w->lag_added_ms < LAG_PUBLISH_MS && now >= w->lag_added_ms) return;
  cw_hist_add(&w->env->m->ingest_lag, &w->lag);
  w->lag_added_ms = now;
}

/* The worker's thread, after housekeep (lag_due_ms is its own): how long it
 * may sleep for the ingest_lag observations still pending (-1: none). */
static int64_t lag_wait_ms(const cw_worker_t *w, int64_t now) {
  if (!w->lag_due_ms) return -1;
  return w->lag_due_ms > now ? w->lag_due_ms - now : 1;
}

static void wake_for_lag(cw_worker_t *w);

static void note_lag(cw_worker_t *w, int64_t recv_ms, int64_t ts_ms) {
  cw_metrics_t *m = w->env->m;
  cw_hist_local_observe(&w->lag, recv_ms - ts_ms);
  add_lag(w, recv_ms, 0);
  if (w->lag_napping && w->lag.count) { /* once per idle spell */
    w->lag_napping = 0;
    wake_for_lag(w);
  }
  if (recv_ms - w->pub_latest >= LAG_PUBLISH_MS) {
    store_max(&m->recv_latest_ms, recv_ms);
    if (w->lag_latest) store_max(w->lag_latest, recv_ms);
    w->pub_latest = recv_ms;
  }
  if (recv_ms - ts_ms <= (int64_t)w->env->cfg->ingest_lag_s * 1000 &&
      recv_ms - w->pub_fresh >= LAG_PUBLISH_MS) {
    store_max(&m->recv_fresh_ms, recv_ms);
    if (w->lag_fresh) store_max(w->lag_fresh, recv_ms);
    w->pub_fresh = recv_ms;
  }
}

/* Engine lock held. The one place a reading record is handed to the
 * writer (the journal position travels per message, not per reading:
 * cw_pipeline_jpos_processed). Staged, published by publish_readings once
 * per message; waits while the ring is full (backpressure, never a drop). */
static int hand_reading(cw_worker_t *w, const cw_reading_t *r) {
  cw_ring_part_t part = {r, sizeof *r};
  int rc = cw_ring_stage(w->readings, &part, 1);
  if (rc == -EAGAIN) {
    /* full: what is staged goes to the writer, woken, before we wait */
    cw_ring_publish(w->readings, 1);
    uint64_t before = w->readings->stalls;
    rc = cw_ring_pushv_wait(w->readings, &part, 1, &never);
    if (w->readings->stalls != before)
      atomic_fetch_add_explicit(&w->env->m->writer_stalls, w->readings->stalls - before,
                                memory_order_relaxed);
    w->unwoken = 0;
    atomic_store_explicit(&w->owed_since_ms, 0, memory_order_relaxed);
    return rc < 0 ? rc : 0;
  }
  if (rc == 0) w->unwoken++;
  return rc;
}

/* Engine lock held: publish the staged readings; wake the writer if it
 * sleeps and enough wait (WAKE_RECORDS, WAKE_MS), else note the wake-up as
 * owed. */
static void publish_readings(cw_worker_t *w, int64_t now) {
  int64_t since = atomic_load_explicit(&w->owed_since_ms, memory_order_relaxed);
  if (!w->unwoken && !since) return;
  int wake = w->unwoken >= WAKE_RECORDS || (since && (now - since >= WAKE_MS || now < since));
  if (cw_ring_publish(w->readings, wake)) {
    if (!since) atomic_store_explicit(&w->owed_since_ms, now ? now : 1, memory_order_relaxed);
    return;
  }
  w->unwoken = 0;
  if (since) atomic_store_explicit(&w->owed_since_ms, 0, memory_order_relaxed);
}

/* Engine lock held: detect one decoded reading of w->msg and hand it on. */
static void detect_one(cw_worker_t *w, const cw_reading_t *r, int index) {
  const cw_msg_t *msg = w->msg;
  cw_reject_t rc = cw_engine_process(w->engine, r, msg->recv_ms);
  /* While blind (a shard taken over or reconnected), a broker may redeliver
   * a message its previous consumer never acknowledged after newer ones:
   * not after the last ts is then not proof of a stored reading. It goes to
   * the writer without detection; the unique index drops a real duplicate. */
  if (rc == CW_REJ_DUPLICATE &&
      msg->recv_ms < atomic_load_explicit(&w->blind_until_ms, memory_order_relaxed))
    rc = CW_REJ_OK;
  if (rc == CW_REJ_DUPLICATE) {
    char detail[96];
    snprintf(detail, sizeof detail, "socket %u ts %lld not after the last stored ts",
             (unsigned)r->socket, (long long)r->ts_ms);
    reject(w, CW_REJ_DUPLICATE, index, detail);
    return;
  }
  if (rc != CW_REJ_OK) /* out of memory for socket state: store it, detection skipped */
    cw_log(CW_LOG_ERROR, "worker %d: detection failed for %s/%u (out of memory)", w->index,
           r->station, (unsigned)r->socket);
  int prc = hand_reading(w, r);
  if (prc < 0) {
    cw_log(CW_LOG_ERROR, "worker %d: reading ring push: %s", w->index, strerror(-prc));
    return;
  }
  atomic_fetch_add_explicit(&w->env->m->readings_accepted, 1, memory_order_relaxed);
  note_lag(w, msg->recv_ms, r->ts_ms);
}

static void drain_ctl(cw_worker_t *w);

/* The decoded readings of the current message through the engine: one lock
 * per chunk; control messages posted meanwhile are applied first. */
static void run_chunk(cw_worker_t *w) {
  pthread_mutex_lock(&w->engine_mu);
  drain_ctl(w);
  for (int i = 0; i < w->nchunk; i++) detect_one(w, &w->chunk[i].r, w->chunk[i].index);
  publish_readings(w, w->msg->recv_ms);
  pthread_mutex_unlock(&w->engine_mu);
  w->nchunk = 0;
}

/* Decode callback (no lock): a reject goes out at once, a reading waits in
 * the chunk for the engine. */
static void on_decoded(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  cw_worker_t *w = ctx;
  if (!r) {
    reject(w, why, index, NULL);
    return;
  }
  w->chunk[w->nchunk].r = *r;
  w->chunk[w->nchunk].index = index;
  if (++w->nchunk == CHUNK) run_chunk(w);
}

/* The one per-message path of both modes: decode outside the engine lock,
 * then detect and hand over under it. */
static void process_msg(cw_worker_t *w, const cw_msg_t *msg) {
  w->msg = msg;
  w->nchunk = 0;
  cw_decode(&w->dcfg, msg->topic, msg->topic_len, msg->payload, msg->payload_len, msg->recv_ms,
            on_decoded, w);
  if (w->nchunk) run_chunk(w);
  w->msg = NULL;
}

void cw_worker_deliver(cw_worker_t *w, const cw_msg_t *msg) { process_msg(w, msg); }

static int on_record(void *ctx, const void *rec, size_t len) {
  cw_worker_t *w = ctx;
  cw_ingest_hdr_t h;
  if (len < sizeof h) return 0;
  memcpy(&h, rec, sizeof h);
  if (sizeof h + (size_t)h.topic_len + h.payload_len > len) return 0; /* producer bug */
  const char *topic = (const char *)rec + sizeof h;
  cw_msg_t msg = {topic, h.topic_len, topic + h.topic_len, h.payload_len, h.recv_ms, h.jpos};
  process_msg(w, &msg);
  /* release: its readings are in the reading ring before the pipeline's
   * processed mark can cover it (cw_pipeline_jpos_processed) */
  if (h.jpos > 0 && w->jpos_done) atomic_store_explicit(w->jpos_done, h.jpos, memory_order_release);
  return 0;
}

static void apply_ctl(cw_worker_t *w, cw_ctl_t *c) {
  int rc = 0;
  switch (c->type) {
  case CW_CTL_STATION: rc = cw_engine_set_station(w->engine, c->station, &c->station_policy); break;
  case CW_CTL_SOCKET:
    for (int i = 0; i < c->sockets.n && i < CW_CTL_SOCKETS_MAX && !rc; i++) {
      const cw_ctl_socket_t *k = &c->sockets.s[i];
      rc = cw_engine_set_socket(w->engine, c->station, k->socket, &k->policy);
      if (!rc && k->ts_ms > 0) rc = cw_engine_restore_last_ts(w->engine, c->station, k->socket, k->ts_ms);
    }
    break;
  case CW_CTL_DETECT_CFG: cw_engine_set_cfg(w->engine, &c->det); break;
  case CW_CTL_RESTORE_TS:
    rc = cw_engine_restore_last_ts(w->engine, c->station, c->socket, c->ts_ms);
    break;
  case CW_CTL_RESTORE_ALERT: rc = cw_engine_restore_alert(w->engine, &c->alert); break;
  case CW_CTL_BLIND: cw_engine_set_blind(w->engine, c->socket != 0, c->ts_ms); break;
  case CW_CTL_FORGET: /* its open sessions written first, as a clean stop does */
    cw_engine_write_open_sessions(w->engine);
    cw_engine_forget(w->engine);
    break;
  case CW_CTL_OPERATOR: {
    int64_t t = c->ts_ms ? c->ts_ms : cw_now_ms(); /* the SQL functions send their time */
    if (c->alert.event != CW_EV_RECTIFIED)
      rc = cw_engine_operator(w->engine, c->alert.id, c->alert.event, c->alert.by, t);
    else if ((rc = cw_engine_rectify(w->engine, c->alert.id, c->alert.by, c->alert.message, t)) ==
                 -EINVAL &&
             /* rectified straight from open/cleared (as cw_alert_action allows): registered first */
             cw_engine_operator(w->engine, c->alert.id, CW_EV_ACKNOWLEDGED, c->alert.by, t) == 0)
      rc = cw_engine_rectify(w->engine, c->alert.id, c->alert.by, c->alert.message, t);
    if (rc == -ENOENT) rc = 0; /* another worker holds it (commands are broadcast) */
    else if (rc == -EINVAL)
      cw_log(CW_LOG_WARN, "worker %d: alert %lld: %s not allowed in its state", w->index,
             (long long)c->alert.id, cw_event_name(c->alert.event));
    break;
  }
  }
  if (rc && rc != -EINVAL)
    cw_log(CW_LOG_ERROR, "worker %d: control %d: %s", w->index, (int)c->type, strerror(-rc));
}

static void drain_ctl(cw_worker_t *w) {
  /* acquire pairs with the release store in cw_worker_post: a post made
   * before this exchange is seen now, a later one sets the flag again */
  if (!atomic_exchange_explicit(&w->ctl_pending, 0, memory_order_acquire)) return;
  pthread_mutex_lock(&w->ctl_mu);
  cw_ctl_t *c = w->ctl_head;
  w->ctl_head = w->ctl_tail = NULL;
  pthread_mutex_unlock(&w->ctl_mu);
  while (c) {
    cw_ctl_t *n = c->next;
    apply_ctl(w, c);
    free(c);
    c = n;
  }
}

/* Each worker adds its own delta (unsigned wrap-around subtracts): the
 * metric is the sum over workers. */
static void add_delta(_Atomic uint64_t *metric, uint64_t *last, uint64_t now) {
  if (now == *last) return;
  atomic_fetch_add_explicit(metric, now - *last, memory_order_relaxed);
  *last = now;
}

static void update_sockets(cw_worker_t *w) {
  cw_metrics_t *m = w->env->m;
  add_delta(&m->sockets_tracked, &w->sockets, cw_engine_sockets(w->engine));
  add_delta(&m->sensor_events, &w->sensor_events, cw_engine_sensor_events(w->engine));
  add_delta(&m->sensor_suspect, &w->sensor_suspect, cw_engine_sensor_suspect(w->engine));
}

static void on_sensor(void *ctx, const char *station, uint8_t socket, int64_t ts_ms, double from_c,
                      double to_c) {
  (void)ctx;
  cw_log(CW_LOG_INFO,
         "%s/%u: temperature step %.1f->%.1f C at no current, no continuation: sensor event (ts %lld)",
         station, (unsigned)socket, from_c, to_c, (long long)ts_ms);
}

/* Engine lock held: the offline sweep once a second (not while blind), and
 * the engine's counters into the metrics. */
static void sweep_if_due(cw_worker_t *w, int64_t now) {
  if (now - w->last_sweep < SWEEP_MS && now >= w->last_sweep) return;
  if (now >= atomic_load_explicit(&w->blind_until_ms, memory_order_relaxed))
    cw_engine_sweep(w->engine, now);
  update_sockets(w);
  w->last_sweep = now;
}

/* Control, sweep, an owed wake-up of the writer and the ingest_lag
 * observations, under the engine lock; notes when what is left of those is
 * due (lag_due_ms). */
static void housekeep(cw_worker_t *w, int64_t now) {
  pthread_mutex_lock(&w->engine_mu);
  drain_ctl(w);
  sweep_if_due(w, now);
  publish_readings(w, now);
  int flowed = w->lag.count || w->lag_added_ms != w->lag_looked_ms; /* since the last look */
  add_lag(w, now, 0);
  w->lag_looked_ms = w->lag_added_ms;
  w->lag_due_ms = w->lag.count ? w->lag_added_ms + LAG_PUBLISH_MS : flowed ? now + LAG_PUBLISH_MS : 0;
  w->lag_napping = w->inline_mode && !w->lag_due_ms;
  pthread_mutex_unlock(&w->engine_mu);
}

size_t cw_worker_poll(cw_worker_t *w, size_t max) {
  size_t n = cw_ring_pop_burst(w->ingest, max, on_record, w);
  housekeep(w, cw_now_ms());
  return n;
}

#define BURST 64

static void *worker_main(void *arg) {
  cw_worker_t *w = arg;
  for (;;) {
    if (cw_worker_poll(w, BURST) == 0) {
      /* stop only once the ring is empty: everything the ingest client
       * handed us is ours */
      if (atomic_load_explicit(&w->stop, memory_order_acquire) && cw_ring_empty(w->ingest)) break;
      int owed = atomic_load_explicit(&w->owed_since_ms, memory_order_relaxed) != 0;
      int64_t wait_ms = owed ? WAKE_MS : IDLE_WAIT_MS, lag = lag_wait_ms(w, cw_now_ms());
      cw_ring_wait(w->ingest, (int)(lag >= 0 && lag < wait_ms ? lag : wait_ms));
    }
  }
  return NULL;
}

/* Inline mode: the deliveries run on the producer's thread; this one
 * applies control messages that arrive while none does, sweeps once a
 * second and pays an owed wake-up of the writer. */
static void *inline_main(void *arg) {
  cw_worker_t *w = arg;
  for (;;) {
    int64_t now = cw_now_ms();
    int stop = atomic_load_explicit(&w->stop, memory_order_acquire);
    housekeep(w, now);
    if (stop) break;
    int64_t due = w->last_sweep + SWEEP_MS; /* last_sweep: this thread's under the lock above */
    int64_t owed = atomic_load_explicit(&w->owed_since_ms, memory_order_relaxed);
    if (owed && owed + WAKE_MS < due) due = owed + WAKE_MS;
    int64_t lag = lag_wait_ms(w, now); /* lag_due_ms: this thread's too */
    if (lag >= 0 && now + lag < due) due = now + lag;
    int64_t wait_ms = due - now;
    if (wait_ms < 1) wait_ms = 1;
    if (wait_ms > SWEEP_MS) wait_ms = SWEEP_MS;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&w->ctl_mu);
    /* cw_worker_post and request_stop set their flags under ctl_mu */
    if (!atomic_load_explicit(&w->ctl_pending, memory_order_relaxed) &&
        !atomic_load_explicit(&w->stop, memory_order_relaxed) &&
        !atomic_load_explicit(&w->lag_wake, memory_order_relaxed))
      pthread_cond_timedwait(&w->ctl_cv, &w->ctl_mu, &ts);
    atomic_store_explicit(&w->lag_wake, 0, memory_order_relaxed);
    pthread_mutex_unlock(&w->ctl_mu);
  }
  return NULL;
}

static void *thread_main(void *arg) {
  cw_worker_t *w = arg;
  if (w->inline_mode) inline_main(w);
  else worker_main(w);
  pthread_mutex_lock(&w->engine_mu);
  drain_ctl(w); /* operator actions that raced the stop still get logged */
  cw_engine_write_open_sessions(w->engine); /* open sessions as of the last reading */
  cw_ring_publish(w->readings, 1); /* nothing left unwoken */
  w->unwoken = 0;
  atomic_store_explicit(&w->owed_since_ms, 0, memory_order_relaxed);
  update_sockets(w);
  add_lag(w, 0, 1); /* nothing observed is lost at a stop */
  pthread_mutex_unlock(&w->engine_mu);
  atomic_store_explicit(&w->done, 1, memory_order_release);
  return NULL;
}

int cw_worker_create(const cw_worker_cfg_t *cfg, cw_worker_t **out) {
  cw_worker_t *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->env = cfg->env;
  w->index = cfg->index;
  w->dcfg = *cfg->dcfg;
  w->ingest = cfg->ingest;
  w->inline_mode = cfg->ingest == NULL;
  w->readings = cfg->readings;
  w->alerts = cfg->alerts;
  w->ids = cfg->ids;
  w->alert_wake = cfg->alert_wake;
  w->alert_wake_ctx = cfg->alert_wake_ctx;
  w->jpos_done = cfg->jpos_done;
  w->lag_latest = cfg->lag_latest_ms;
  w->lag_fresh = cfg->lag_fresh_ms;
  w->last_sweep = cw_now_ms();
  atomic_store(&w->done, 1); /* until started */
  w->engine = cw_engine_new(&cfg->env->cfg->det, on_alert, next_id, w);
  if (!w->engine) {
    free(w);
    return -ENOMEM;
  }
  cw_engine_on_sensor(w->engine, on_sensor, w);
  cw_engine_on_session(w->engine, on_session, w);
  cw_engine_on_ref(w->engine, next_ref);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->ctl_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w->ctl_mu, NULL);
  pthread_mutex_init(&w->engine_mu, NULL);
  *out = w;
  return 0;
}

int cw_worker_start(cw_worker_t *w) {
  atomic_store(&w->done, 0);
  int rc = pthread_create(&w->thread, NULL, thread_main, w);
  if (rc) {
    atomic_store(&w->done, 1);
    return -rc;
  }
  w->started = 1;
  pthread_setname_np(w->thread, w->inline_mode ? "cw-engine" : "cw-worker"); /* for perf, top */
  return 0;
}

/* The worker may be asleep: on its ingest ring (threaded) or its condition
 * variable (inline; the caller holds ctl_mu). */
static void wake_worker(cw_worker_t *w) {
  if (w->inline_mode) pthread_cond_signal(&w->ctl_cv);
  else cw_ring_kick(w->ingest);
}

/* Inline mode, engine lock held: the worker's thread sleeps long and
 * ingest_lag observations wait in the plain histogram (note_lag). */
static void wake_for_lag(cw_worker_t *w) {
  pthread_mutex_lock(&w->ctl_mu);
  atomic_store_explicit(&w->lag_wake, 1, memory_order_relaxed); /* read in inline_main, ctl_mu held */
  wake_worker(w);
  pthread_mutex_unlock(&w->ctl_mu);
}

void cw_worker_post(cw_worker_t *w, cw_ctl_t *ctl) {
  ctl->next = NULL;
  pthread_mutex_lock(&w->ctl_mu);
  if (w->ctl_tail) w->ctl_tail->next = ctl;
  else w->ctl_head = ctl;
  w->ctl_tail = ctl;
  atomic_store_explicit(&w->ctl_pending, 1, memory_order_release); /* pairs with drain_ctl */
  if (w->inline_mode) wake_worker(w);
  pthread_mutex_unlock(&w->ctl_mu);
  if (!w->inline_mode) wake_worker(w);
}

/* The one place that makes a worker blind: today it holds the offline
 * sweep back (silence proves nothing while a taken-over shard's backlog
 * arrives); an engine-level blind state would be set from here. */
void cw_worker_set_blind(cw_worker_t *w, int64_t until_ms) {
  atomic_store_explicit(&w->blind_until_ms, until_ms, memory_order_relaxed);
}

void cw_worker_request_stop(cw_worker_t *w) {
  pthread_mutex_lock(&w->ctl_mu);
  atomic_store_explicit(&w->stop, 1, memory_order_release);
  if (w->inline_mode) wake_worker(w);
  pthread_mutex_unlock(&w->ctl_mu);
  if (!w->inline_mode) wake_worker(w);
}

int cw_worker_done(cw_worker_t *w) {
  if (!atomic_load_explicit(&w->done, memory_order_acquire)) {
    /* a kick may race the thread going to sleep: repeat it */
    if (w->inline_mode) {
      pthread_mutex_lock(&w->ctl_mu);
      wake_worker(w);
      pthread_mutex_unlock(&w->ctl_mu);
    } else {
      wake_worker(w);
    }
    return 0;
  }
  return 1;
}

void cw_worker_join(cw_worker_t *w) {
  if (!w->started) return;
  pthread_join(w->thread, NULL);
  w->started = 0;
}

void cw_worker_free(cw_worker_t *w) {
  if (!w) return;
  if (w->started) {
    cw_worker_request_stop(w);
    cw_worker_join(w);
  }
  add_lag(w, 0, 1); /* a delivery that raced the thread's end (inline mode) */
  cw_ctl_t *c = w->ctl_head;
  while (c) {
    cw_ctl_t *n = c->next;
    free(c);
    c = n;
  }
  cw_engine_free(w->engine);
  pthread_mutex_destroy(&w->engine_mu);
  pthread_mutex_destroy(&w->ctl_mu);
  pthread_cond_destroy(&w->ctl_cv);
  free(w);
}
