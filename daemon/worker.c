/* worker.c - one detection worker (worker.h). Hot path: ingest ring in
 * (from the MQTT receive thread), decode + validate + detect, reading ring
 * out (to the writer), alert ring out (to the main loop's alert sink). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ingest.h"
#include "worker.h"

#define IDLE_WAIT_MS 100
#define SWEEP_MS 1000

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
  pthread_mutex_t ctl_mu;
  cw_ctl_t *ctl_head, *ctl_tail; /* FIFO: restore order matters (policies before state) */
  _Atomic int ctl_pending;        /* set after an enqueue: spares the mutex per burst */
  _Atomic int stop;   /* set by cw_worker_request_stop: drain the ingest ring, then exit */
  _Atomic int done;   /* set by the thread as it exits */
  uint64_t sockets;   /* last value added to m.sockets_tracked */
  uint64_t sensor_events, sensor_suspect; /* last values added to m.sensor_* */
  int64_t last_sweep;
  _Atomic int64_t blind_until_ms; /* no sweep (offline) before this wall-clock time */
  int64_t pub_latest, pub_fresh; /* last values stored in m.recv_latest_ms / recv_fresh_ms */
  _Atomic int64_t *lag_latest, *lag_fresh; /* the same for this pipeline only, or NULL */
  /* current record, for the decode callback */
  const char *topic;
  size_t topic_len;
  const void *payload;
  size_t payload_len;
  int64_t recv_ms;
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

static void reject(cw_worker_t *w, cw_reject_t why, int index, const char *detail) {
  cw_env_reject(w->env, why, index, detail, w->topic, w->topic_len, w->payload, w->payload_len);
}

/* For lib/blind.h: receive time of the newest reading and of the newest live
 * one, shared by every worker (max), stored at most every 50 ms each. */
#define LAG_PUBLISH_MS 50
static void store_max(_Atomic int64_t *a, int64_t v) {
  int64_t cur = atomic_load_explicit(a, memory_order_relaxed);
  while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
  }
}
static void note_lag(cw_worker_t *w, int64_t ts_ms) {
  cw_metrics_t *m = w->env->m;
  if (w->recv_ms - w->pub_latest >= LAG_PUBLISH_MS) {
    store_max(&m->recv_latest_ms, w->recv_ms);
    if (w->lag_latest) store_max(w->lag_latest, w->recv_ms);
    w->pub_latest = w->recv_ms;
  }
  if (w->recv_ms - ts_ms <= (int64_t)w->env->cfg->ingest_lag_s * 1000 &&
      w->recv_ms - w->pub_fresh >= LAG_PUBLISH_MS) {
    store_max(&m->recv_fresh_ms, w->recv_ms);
    if (w->lag_fresh) store_max(w->lag_fresh, w->recv_ms);
    w->pub_fresh = w->recv_ms;
  }
}

static void on_reading(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  cw_worker_t *w = ctx;
  cw_metrics_t *m = w->env->m;
  if (!r) {
    reject(w, why, index, NULL);
    return;
  }
  cw_reject_t rc = cw_engine_process(w->engine, r, w->recv_ms);
  /* While blind (a shard taken over or reconnected), a broker may redeliver
   * a message its previous consumer never acknowledged after newer ones:
   * not after the last ts is then not proof of a stored reading. It goes to
   * the writer without detection; the unique index drops a real duplicate. */
  if (rc == CW_REJ_DUPLICATE &&
      w->recv_ms < atomic_load_explicit(&w->blind_until_ms, memory_order_relaxed))
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
  uint64_t before = w->readings->stalls;
  cw_ring_part_t part = {r, sizeof *r};
  int prc = cw_ring_pushv_wait(w->readings, &part, 1, &never);
  if (w->readings->stalls != before)
    atomic_fetch_add_explicit(&m->writer_stalls, w->readings->stalls - before,
                              memory_order_relaxed);
  if (prc < 0) {
    cw_log(CW_LOG_ERROR, "worker %d: reading ring push: %s", w->index, strerror(-prc));
    return;
  }
  atomic_fetch_add_explicit(&m->readings_accepted, 1, memory_order_relaxed);
  note_lag(w, r->ts_ms);
}

static int on_record(void *ctx, const void *rec, size_t len) {
  cw_worker_t *w = ctx;
  cw_ingest_hdr_t h;
  if (len < sizeof h) return 0;
  memcpy(&h, rec, sizeof h);
  if (sizeof h + (size_t)h.topic_len + h.payload_len > len) return 0; /* producer bug */
  w->topic = (const char *)rec + sizeof h;
  w->topic_len = h.topic_len;
  w->payload = w->topic + h.topic_len;
  w->payload_len = h.payload_len;
  w->recv_ms = h.recv_ms;
  cw_decode(&w->dcfg, w->topic, w->topic_len, w->payload, w->payload_len, h.recv_ms, on_reading,
            w);
  return 0;
}

static void apply_ctl(cw_worker_t *w, cw_ctl_t *c) {
  int rc = 0;
  switch (c->type) {
  case CW_CTL_STATION: rc = cw_engine_set_station(w->engine, c->station, &c->station_policy); break;
  case CW_CTL_SOCKET:
    rc = cw_engine_set_socket(w->engine, c->station, c->socket, &c->socket_policy);
    break;
  case CW_CTL_DETECT_CFG: cw_engine_set_cfg(w->engine, &c->det); break;
  case CW_CTL_RESTORE_TS:
    rc = cw_engine_restore_last_ts(w->engine, c->station, c->socket, c->ts_ms);
    break;
  case CW_CTL_RESTORE_ALERT: rc = cw_engine_restore_alert(w->engine, &c->alert); break;
  case CW_CTL_BLIND: cw_engine_set_blind(w->engine, c->socket != 0, c->ts_ms); break;
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

size_t cw_worker_poll(cw_worker_t *w, size_t max) {
  drain_ctl(w);
  size_t n = cw_ring_pop_burst(w->ingest, max, on_record, w);
  int64_t now = cw_now_ms();
  if (now - w->last_sweep >= SWEEP_MS || now < w->last_sweep) {
    if (now >= atomic_load_explicit(&w->blind_until_ms, memory_order_relaxed))
      cw_engine_sweep(w->engine, now);
    update_sockets(w);
    w->last_sweep = now;
  }
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
      cw_ring_wait(w->ingest, IDLE_WAIT_MS);
    }
  }
  drain_ctl(w); /* operator actions that raced the stop still get logged */
  update_sockets(w);
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
  w->readings = cfg->readings;
  w->alerts = cfg->alerts;
  w->ids = cfg->ids;
  w->alert_wake = cfg->alert_wake;
  w->alert_wake_ctx = cfg->alert_wake_ctx;
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
  cw_engine_on_ref(w->engine, next_ref);
  pthread_mutex_init(&w->ctl_mu, NULL);
  *out = w;
  return 0;
}

int cw_worker_start(cw_worker_t *w) {
  atomic_store(&w->done, 0);
  int rc = pthread_create(&w->thread, NULL, worker_main, w);
  if (rc) {
    atomic_store(&w->done, 1);
    return -rc;
  }
  w->started = 1;
  return 0;
}

void cw_worker_post(cw_worker_t *w, cw_ctl_t *ctl) {
  ctl->next = NULL;
  pthread_mutex_lock(&w->ctl_mu);
  if (w->ctl_tail) w->ctl_tail->next = ctl;
  else w->ctl_head = ctl;
  w->ctl_tail = ctl;
  pthread_mutex_unlock(&w->ctl_mu);
  atomic_store_explicit(&w->ctl_pending, 1, memory_order_release); /* pairs with drain_ctl */
  cw_ring_kick(w->ingest); /* the worker may be asleep in cw_ring_wait */
}

/* The one place that makes a worker blind: today it holds the offline
 * sweep back (silence proves nothing while a taken-over shard's backlog
 * arrives); an engine-level blind state would be set from here. */
void cw_worker_set_blind(cw_worker_t *w, int64_t until_ms) {
  atomic_store_explicit(&w->blind_until_ms, until_ms, memory_order_relaxed);
}

void cw_worker_request_stop(cw_worker_t *w) {
  atomic_store_explicit(&w->stop, 1, memory_order_release);
  cw_ring_kick(w->ingest);
}

int cw_worker_done(cw_worker_t *w) {
  if (!atomic_load_explicit(&w->done, memory_order_acquire)) {
    cw_ring_kick(w->ingest); /* a kick may race the thread going to sleep: repeat it */
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
  cw_ctl_t *c = w->ctl_head;
  while (c) {
    cw_ctl_t *n = c->next;
    free(c);
    c = n;
  }
  cw_engine_free(w->engine);
  pthread_mutex_destroy(&w->ctl_mu);
  free(w);
}
