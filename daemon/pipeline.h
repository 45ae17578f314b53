/* pipeline.h - one ingest shard: the workers fed by one ingest client and
 * every ring between them and their consumers. The pipeline creates and
 * owns the rings and hands out their ends. Two modes, by worker count:
 *  - one worker ([pipeline] workers = 1, the default): inline. The ingest
 *    client's thread runs decode + detect itself (cw_pipeline_deliver ->
 *    cw_worker_deliver, the engine under the worker's mutex); the worker's
 *    thread only applies control messages, sweeps and pays owed wake-ups.
 *      reading ring  producer: whoever holds the engine mutex (the ingest
 *                    client's thread; never the worker's thread in practice)
 *                    consumer: the writer thread
 *      alert ring    producer: whoever holds the engine mutex (the ingest
 *                    client's thread, or the worker's thread for sweeps and
 *                    control); consumer: the alert sink (main loop)
 *  - several workers: threaded. The ingest client's thread copies each
 *    message into the owning worker's ingest ring; each worker runs decode
 *    + detect on its own thread.
 *      ingest ring i   producer: the ingest client's thread; consumer: worker i
 *      reading ring i  producer: worker i; consumer: the writer thread
 *      alert ring i    producer: worker i; consumer: the alert sink
 * Stations are routed to workers by FNV-1a of the station name modulo the
 * worker count, stable across restarts. A process may create several
 * pipelines (one per MQTT ingest connection); each is independent. */
#ifndef CW_PIPELINE_H
#define CW_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "decode.h"
#include "env.h"
#include "idgen.h"
#include "ingest.h"
#include "ring.h"

typedef struct cw_pipeline cw_pipeline_t;

typedef struct cw_pipeline_cfg {
  const cw_env_t *env;
  int nworkers;              /* >= 1; 1: inline mode */
  size_t ring_bytes;         /* ingest and reading rings (power of two >= 4096);
                              * inline: the reading ring has twice this */
  const cw_decode_cfg_t *dcfg; /* topic patterns and limits (copied) */
  cw_idgen_t *ids;           /* alert ids */
  void (*alert_wake)(void *ctx); /* any worker thread, after a push into an empty alert ring */
  void *alert_wake_ctx;
  _Atomic int64_t *lag_latest_ms, *lag_fresh_ms; /* this pipeline's lag (cw_worker_cfg_t); may be NULL */
} cw_pipeline_cfg_t;

int cw_pipeline_create(const cw_pipeline_cfg_t *cfg, cw_pipeline_t **out); /* 0 or -errno */
int cw_pipeline_start(cw_pipeline_t *p); /* starts the worker threads; 0 or -errno */
int cw_pipeline_nworkers(const cw_pipeline_t *p);

/* Producer side, one thread at a time (the ingest client's receive
 * thread). Inline: decode + detect the message here, its readings into the
 * reading ring. Threaded: copy it into the owning worker's ingest ring
 * (a message too large for any ring is rejected, oversize, here). Either
 * way waits while a ring is full (backpressure, never a drop); the message
 * bytes need to live only during the call. 0, or -errno from the ring. */
int cw_pipeline_deliver(cw_pipeline_t *p, const cw_msg_t *msg);
/* The same from loose fields (tests, tools). */
int cw_pipeline_ingest(cw_pipeline_t *p, const char *topic, size_t topic_len, const void *payload,
                       size_t len, int64_t recv_ms, int64_t jpos);

/* Journal positions (lib/journal.h), any thread. handed: the last jpos given
 * to cw_pipeline_ingest. processed: every message with jpos <= it has been
 * through its worker (its readings are in a reading ring, or it was
 * rejected): what the writer may commit once it has drained the reading
 * rings after this call and stored what it took. */
int64_t cw_pipeline_jpos_handed(const cw_pipeline_t *p);
int64_t cw_pipeline_jpos_processed(const cw_pipeline_t *p);

/* Worker index owning a station. */
int cw_pipeline_route(const cw_pipeline_t *p, const char *station, size_t len);
/* Any thread: route a malloc'd control message (see cw_ctl_port_t). */
void cw_pipeline_post(cw_pipeline_t *p, int worker, cw_ctl_t *c);
/* A port that posts to this pipeline, for the parts that produce controls. */
cw_ctl_port_t cw_pipeline_ctl_port(cw_pipeline_t *p);

/* Any thread: every worker blind (no offline alerts) until until_ms. */
void cw_pipeline_set_blind(cw_pipeline_t *p, int64_t until_ms);

/* Consumer ends. */
cw_ring_t *cw_pipeline_readings(cw_pipeline_t *p, int i);
cw_ring_t *cw_pipeline_alerts(cw_pipeline_t *p, int i);

/* Occupancy for /metrics: bytes used in the ingest, reading and alert ring
 * of worker i, and the ingest ring's capacity (0 and 0 inline: no ring). */
typedef struct cw_pipeline_gauges {
  size_t ingest_used, readings_used, alerts_used, ingest_cap, readings_cap, alerts_cap;
} cw_pipeline_gauges_t;
void cw_pipeline_gauges(const cw_pipeline_t *p, int i, cw_pipeline_gauges_t *out);

/* Shutdown, once the ingest client delivers no more (cw_mqtt_in_pause):
 * ask every worker to drain its ingest ring and end; poll
 * cw_pipeline_stopped until 1 while consuming the alert rings (a worker
 * may be waiting on a full one); then join. */
void cw_pipeline_request_stop(cw_pipeline_t *p);
int cw_pipeline_stopped(cw_pipeline_t *p);
void cw_pipeline_join(cw_pipeline_t *p);
void cw_pipeline_free(cw_pipeline_t *p); /* joins running workers first */

#endif
