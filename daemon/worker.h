/* worker.h - one detection worker: it owns one detection engine and the
 * sockets of the stations routed to it, so its hot path takes no lock.
 * It is given three ring ends (pipeline.c owns the rings): the consumer end
 * of its ingest ring, the producer ends of its reading ring and alert ring.
 * It knows no other part: alerts wake their consumer through a callback,
 * rejects go to env->reject. */
#ifndef CW_WORKER_H
#define CW_WORKER_H

#include <stddef.h>

#include "ctl.h"
#include "decode.h"
#include "env.h"
#include "idgen.h"
#include "ring.h"

typedef struct cw_worker cw_worker_t;

typedef struct cw_worker_cfg {
  int index;               /* for logs */
  const cw_env_t *env;
  const cw_decode_cfg_t *dcfg; /* copied */
  cw_ring_t *ingest;       /* consumer end: cw_ingest_hdr_t records (lib/ingest.h) */
  cw_ring_t *readings;     /* producer end: one cw_reading_t per record */
  cw_ring_t *alerts;       /* producer end: one cw_alert_event_t per record */
  cw_idgen_t *ids;         /* alert ids */
  void (*alert_wake)(void *ctx); /* after a push into an empty alert ring (may be NULL) */
  void *alert_wake_ctx;
  /* May be NULL: also kept here, as in m->recv_latest_ms / recv_fresh_ms,
   * for the workers of one pipeline only ([cluster]: a shard's lag). */
  _Atomic int64_t *lag_latest_ms, *lag_fresh_ms;
} cw_worker_cfg_t;

int cw_worker_create(const cw_worker_cfg_t *cfg, cw_worker_t **out); /* 0 or -errno */
/* Runs cw_worker_poll on a thread of its own until stopped. 0 or -errno. */
int cw_worker_start(cw_worker_t *w);
/* One step on the calling thread: apply posted control messages, take up to
 * max ingest records through decode + detect into the reading ring, and
 * sweep (offline) once a second. Returns the records taken. The thread of
 * cw_worker_start loops on it; tests and bench/pipeline.c call it directly
 * (then no thread must have been started). */
size_t cw_worker_poll(cw_worker_t *w, size_t max);
/* Any thread: queue a malloc'd control message (the worker frees it). */
void cw_worker_post(cw_worker_t *w, cw_ctl_t *ctl);
/* Any thread: no offline detection until the wall-clock time until_ms
 * (0: none). A shard being taken over is blind until its backlog is in. */
void cw_worker_set_blind(cw_worker_t *w, int64_t until_ms);
/* Any thread: drain the ingest ring, then let the thread end. */
void cw_worker_request_stop(cw_worker_t *w);
/* 1 once the thread has ended (or never started). */
int cw_worker_done(cw_worker_t *w);
/* Join the thread; call after cw_worker_done (or it waits). */
void cw_worker_join(cw_worker_t *w);
void cw_worker_free(cw_worker_t *w); /* joins a started thread first */

#endif
