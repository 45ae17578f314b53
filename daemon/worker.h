/* worker.h - one detection worker: it owns one detection engine and the
 * sockets of the stations routed to it. Two modes:
 *  - inline (no ingest ring): the ingest client's receive thread calls
 *    cw_worker_deliver, which decodes (no lock) and drives the engine under
 *    the worker's engine mutex; the worker's own thread only wakes for
 *    control messages, the offline sweep (once a second) and an owed
 *    wake-up of the writer, taking the same mutex.
 *  - threaded (an ingest ring): the worker's thread takes the messages off
 *    the ring (cw_worker_poll) and runs the same per-message path.
 * It is given the ring ends pipeline.c owns: the consumer end of its ingest
 * ring (threaded mode), the producer ends of its reading ring and alert
 * ring. Readings are staged and published once per message; the writer is
 * woken lazily (when WAKE_RECORDS readings wait or the oldest unwoken one is
 * WAKE_MS old, worker.c); alerts are pushed and woken at once. It knows no
 * other part: alerts wake their consumer through a callback, rejects go to
 * env->reject. */
#ifndef CW_WORKER_H
#define CW_WORKER_H

#include <stddef.h>

#include "ctl.h"
#include "decode.h"
#include "env.h"
#include "idgen.h"
#include "ingest.h"
#include "ring.h"

typedef struct cw_worker cw_worker_t;

typedef struct cw_worker_cfg {
  int index;               /* for logs */
  const cw_env_t *env;
  const cw_decode_cfg_t *dcfg; /* copied */
  cw_ring_t *ingest;       /* consumer end: cw_ingest_hdr_t records (lib/ingest.h);
                            * NULL: inline mode (cw_worker_deliver) */
  cw_ring_t *readings;     /* producer end: one cw_reading_t per record */
  cw_ring_t *alerts;       /* producer end: one cw_alert_event_t per record */
  cw_idgen_t *ids;         /* alert ids */
  void (*alert_wake)(void *ctx); /* after a push into an empty alert ring (may be NULL) */
  void *alert_wake_ctx;
  _Atomic int64_t *jpos_done; /* the last record's jpos once done with it (may be NULL) */
  /* May be NULL: also kept here, as in m->recv_latest_ms / recv_fresh_ms,
   * for the workers of one pipeline only ([cluster]: a shard's lag). */
  _Atomic int64_t *lag_latest_ms, *lag_fresh_ms;
} cw_worker_cfg_t;

int cw_worker_create(const cw_worker_cfg_t *cfg, cw_worker_t **out); /* 0 or -errno */
/* Starts the worker's thread: threaded mode, cw_worker_poll until stopped;
 * inline mode, control, sweep and owed wake-ups until stopped. 0 or -errno. */
int cw_worker_start(cw_worker_t *w);
/* Inline mode, one producer thread at a time (the ingest client's receive
 * thread): decode + detect one message, its readings into the reading ring
 * (waiting while it is full: backpressure, never a drop), its alerts into
 * the alert ring. The message's bytes need to live only during the call. */
void cw_worker_deliver(cw_worker_t *w, const cw_msg_t *msg);
/* Threaded mode. One step on the calling thread: take up to max ingest
 * records through decode + detect into the reading ring, apply posted
 * control messages, sweep (offline) once a second and pay an owed wake-up
 * of the writer. Returns the records taken. The thread of
 * cw_worker_start loops on it; tests and bench/pipeline.c call it directly
 * (then no thread must have been started). */
size_t cw_worker_poll(cw_worker_t *w, size_t max);
/* Any thread: queue a malloc'd control message (the worker frees it). */
void cw_worker_post(cw_worker_t *w, cw_ctl_t *ctl);
/* Any thread: no offline detection until the wall-clock time until_ms
 * (0: none). A shard being taken over is blind until its backlog is in. */
void cw_worker_set_blind(cw_worker_t *w, int64_t until_ms);
/* Any thread: drain the ingest ring (threaded mode), then let the thread
 * end. Inline mode: call once no delivery is in progress or can start. */
void cw_worker_request_stop(cw_worker_t *w);
/* 1 once the thread has ended (or never started). */
int cw_worker_done(cw_worker_t *w);
/* Join the thread; call after cw_worker_done (or it waits). */
void cw_worker_join(cw_worker_t *w);
void cw_worker_free(cw_worker_t *w); /* joins a started thread first */

#endif
