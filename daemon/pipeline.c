/* pipeline.c - one ingest shard (pipeline.h): rings, workers, routing.
 * One worker: inline mode (no ingest ring, the engine driven on the
 * delivering thread); several: threaded mode (an ingest ring each). */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "ingest.h"
#include "pipeline.h"
#include "worker.h"

#define ALERT_RING_MAX (256u << 10) /* ~800 events; the sink drains it in microseconds */

static const _Atomic int never = 0;

typedef struct lane {
  cw_ring_t ingest, readings, alerts; /* cache-line aligned (ring.h); ingest unused inline */
  cw_worker_t *worker;
  /* journal positions: the last pushed into the ingest ring (producer,
   * release after the push) and the last the worker is done with (worker,
   * release after pushing its readings); equal when the lane is idle */
  alignas(CW_CACHELINE) _Atomic int64_t jpos_pushed;
  alignas(CW_CACHELINE) _Atomic int64_t jpos_done;
} lane_t;

struct cw_pipeline {
  const cw_env_t *env;
  int n;
  int inline_mode; /* one worker, driven by cw_pipeline_deliver */
  lane_t *lanes; /* aligned_alloc: each ring keeps its indices on their own lines */
  cw_decode_cfg_t dcfg;
  _Atomic int64_t jpos_handed; /* producer: after each message, pushed or rejected */
};

int cw_pipeline_route(const cw_pipeline_t *p, const char *station, size_t len) {
  if (p->n <= 1) return 0;
  return (int)(cw_fnv1a32(station, len) % (uint32_t)p->n);
}

int cw_pipeline_nworkers(const cw_pipeline_t *p) { return p->n; }
cw_ring_t *cw_pipeline_readings(cw_pipeline_t *p, int i) { return &p->lanes[i].readings; }
cw_ring_t *cw_pipeline_alerts(cw_pipeline_t *p, int i) { return &p->lanes[i].alerts; }

int cw_pipeline_create(const cw_pipeline_cfg_t *cfg, cw_pipeline_t **out) {
  cw_pipeline_t *p = calloc(1, sizeof *p);
  int rc = -ENOMEM;
  if (!p) return -ENOMEM;
  p->env = cfg->env;
  p->dcfg = *cfg->dcfg;
  size_t sz = (size_t)cfg->nworkers * sizeof(lane_t);
  p->lanes = aligned_alloc(CW_CACHELINE, (sz + CW_CACHELINE - 1) / CW_CACHELINE * CW_CACHELINE);
  if (!p->lanes) goto fail;
  memset(p->lanes, 0, sz);
  size_t acap = cfg->ring_bytes < ALERT_RING_MAX ? cfg->ring_bytes : ALERT_RING_MAX;
  p->inline_mode = cfg->nworkers == 1;
  for (int i = 0; i < cfg->nworkers; i++) {
    lane_t *l = &p->lanes[i];
    if (!p->inline_mode && (rc = cw_ring_init(&l->ingest, cfg->ring_bytes))) goto fail;
    p->n = i + 1; /* rings of lanes [0, n) are initialised (the others zero) */
    /* inline, the lane has no ingest ring: its bytes go to the reading
     * ring, which carries ingest through the writer's commits */
    if ((rc = cw_ring_init(&l->readings, p->inline_mode ? 2 * cfg->ring_bytes : cfg->ring_bytes)) ||
        (rc = cw_ring_init(&l->alerts, acap)))
      goto fail;
    cw_worker_cfg_t wc = {.index = i,
                          .env = cfg->env,
                          .dcfg = cfg->dcfg,
                          .ingest = p->inline_mode ? NULL : &l->ingest,
                          .readings = &l->readings,
                          .alerts = &l->alerts,
                          .ids = cfg->ids,
                          .alert_wake = cfg->alert_wake,
                          .alert_wake_ctx = cfg->alert_wake_ctx,
                          .jpos_done = &l->jpos_done,
                          .lag_latest_ms = cfg->lag_latest_ms,
                          .lag_fresh_ms = cfg->lag_fresh_ms};
    if ((rc = cw_worker_create(&wc, &l->worker))) goto fail;
  }
  *out = p;
  return 0;
fail:
  cw_pipeline_free(p);
  return rc;
}

int cw_pipeline_start(cw_pipeline_t *p) {
  for (int i = 0; i < p->n; i++) {
    int rc = cw_worker_start(p->lanes[i].worker);
    if (rc) {
      cw_log(CW_LOG_ERROR, "worker %d: cannot start: %s", i, strerror(-rc));
      return rc;
    }
  }
  return 0;
}

/* The producer's marks (release: pairs with the acquire loads in
 * cw_pipeline_jpos_processed); lane NULL for a message finished here
 * (inline mode, or rejected before any ring). */
static void jpos_mark(cw_pipeline_t *p, lane_t *l, int64_t jpos) {
  if (jpos <= 0) return;
  if (l) atomic_store_explicit(&l->jpos_pushed, jpos, memory_order_release);
  atomic_store_explicit(&p->jpos_handed, jpos, memory_order_release);
}

int64_t cw_pipeline_jpos_handed(const cw_pipeline_t *p) {
  return atomic_load_explicit(&p->jpos_handed, memory_order_acquire);
}

int64_t cw_pipeline_jpos_processed(const cw_pipeline_t *p) {
  /* handed first: every message up to it is in a lane by then (inline: its
   * readings are already in the reading ring). A lane with done == pushed
   * has finished all of them; a busy lane's next message ends after its
   * done. */
  int64_t s = atomic_load_explicit(&p->jpos_handed, memory_order_acquire);
  for (int i = 0; i < p->n; i++) {
    int64_t d = atomic_load_explicit(&p->lanes[i].jpos_done, memory_order_acquire);
    if (d != atomic_load_explicit(&p->lanes[i].jpos_pushed, memory_order_acquire) && d < s) s = d;
  }
  return s;
}

int cw_pipeline_deliver(cw_pipeline_t *p, const cw_msg_t *msg) {
  cw_metrics_t *m = p->env->m;
  char station[CW_STATION_MAX + 1];
  int sock, w = 0;
  if (p->inline_mode) {
    /* decoded, detected and its readings published in the reading ring
     * when this returns: processed */
    cw_worker_deliver(p->lanes[0].worker, msg);
    jpos_mark(p, NULL, msg->jpos);
    return 0;
  }
  /* Routing needs the station. A topic that matches no pattern goes to
   * worker 0, which rejects it as bad_topic with the bytes in the
   * dead-letter file. */
  const char *topic = msg->topic;
  size_t tlen = msg->topic_len, plen = msg->payload_len;
  if (cw_topic_match(&p->dcfg.socket_topic, topic, tlen, station, &sock) == CW_REJ_OK ||
      cw_topic_match(&p->dcfg.station_topic, topic, tlen, station, &sock) == CW_REJ_OK)
    w = cw_pipeline_route(p, station, strlen(station));
  cw_ring_t *r = &p->lanes[w].ingest;
  cw_ingest_hdr_t h = {.recv_ms = msg->recv_ms, .jpos = msg->jpos, .topic_len = (uint32_t)tlen,
                       .payload_len = (uint32_t)plen};
  if (sizeof h + tlen + plen > r->max_record) {
    /* only possible above max_payload: rejected here since no ring can take it */
    cw_env_reject(p->env, CW_REJ_OVERSIZE, -1, "larger than a ring record", topic, tlen,
                  msg->payload, plen);
    jpos_mark(p, NULL, msg->jpos);
    return 0;
  }
  cw_ring_part_t parts[3] = {{&h, sizeof h}, {topic, tlen}, {msg->payload, plen}};
  uint64_t before = r->stalls; /* producer-only field: this thread is the producer */
  int rc = cw_ring_pushv_wait(r, parts, 3, &never);
  if (r->stalls != before)
    atomic_fetch_add_explicit(&m->ingest_stalls, r->stalls - before, memory_order_relaxed);
  if (rc >= 0) jpos_mark(p, &p->lanes[w], msg->jpos);
  return rc < 0 ? rc : 0;
}

int cw_pipeline_ingest(cw_pipeline_t *p, const char *topic, size_t tlen, const void *payload,
                       size_t plen, int64_t recv_ms, int64_t jpos) {
  cw_msg_t msg = {topic, tlen, payload, plen, recv_ms, jpos};
  return cw_pipeline_deliver(p, &msg);
}

void cw_pipeline_post(cw_pipeline_t *p, int worker, cw_ctl_t *c) {
  if (worker == CW_CTL_ALL) {
    for (int i = 0; i < p->n; i++) {
      cw_ctl_t *copy = i + 1 < p->n ? malloc(sizeof *copy) : c;
      if (!copy) continue; /* ENOMEM: this worker misses it, as a lost command would */
      if (copy != c) *copy = *c;
      cw_worker_post(p->lanes[i].worker, copy);
    }
    return;
  }
  if (worker == CW_CTL_BY_STATION) worker = cw_pipeline_route(p, c->station, strlen(c->station));
  if (worker < 0 || worker >= p->n) {
    free(c);
    return;
  }
  cw_worker_post(p->lanes[worker].worker, c);
}

void cw_pipeline_set_blind(cw_pipeline_t *p, int64_t until_ms) {
  for (int i = 0; i < p->n; i++) cw_worker_set_blind(p->lanes[i].worker, until_ms);
}

static void port_post(void *ctx, int worker, cw_ctl_t *c) { cw_pipeline_post(ctx, worker, c); }
static int port_route(void *ctx, const char *station, size_t len) {
  return cw_pipeline_route(ctx, station, len);
}

cw_ctl_port_t cw_pipeline_ctl_port(cw_pipeline_t *p) {
  return (cw_ctl_port_t){p, port_post, port_route};
}

void cw_pipeline_gauges(const cw_pipeline_t *p, int i, cw_pipeline_gauges_t *out) {
  const lane_t *l = &p->lanes[i];
  out->ingest_used = p->inline_mode ? 0 : cw_ring_used(&l->ingest);
  out->readings_used = cw_ring_used(&l->readings);
  out->alerts_used = cw_ring_used(&l->alerts);
  out->ingest_cap = p->inline_mode ? 0 : (size_t)l->ingest.mask + 1;
  out->readings_cap = (size_t)l->readings.mask + 1;
  out->alerts_cap = (size_t)l->alerts.mask + 1;
}

void cw_pipeline_request_stop(cw_pipeline_t *p) {
  for (int i = 0; i < p->n; i++)
    if (p->lanes[i].worker) cw_worker_request_stop(p->lanes[i].worker);
}

int cw_pipeline_stopped(cw_pipeline_t *p) {
  int all = 1;
  for (int i = 0; i < p->n; i++)
    if (p->lanes[i].worker && !cw_worker_done(p->lanes[i].worker)) all = 0;
  return all;
}

void cw_pipeline_join(cw_pipeline_t *p) {
  for (int i = 0; i < p->n; i++)
    if (p->lanes[i].worker) cw_worker_join(p->lanes[i].worker);
}

void cw_pipeline_free(cw_pipeline_t *p) {
  if (!p) return;
  for (int i = 0; p->lanes && i < p->n; i++) {
    lane_t *l = &p->lanes[i];
    cw_worker_free(l->worker);
    cw_ring_destroy(&l->alerts);
    cw_ring_destroy(&l->readings);
    cw_ring_destroy(&l->ingest);
  }
  free(p->lanes);
  free(p);
}
