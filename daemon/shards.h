/* shards.h - what the daemon keeps per ingest client k (one in single
 * mode, k = 0; with [cluster] one per shard), besides the client and the
 * pipeline themselves:
 *  - its ingest journal (lib/journal.h, docs/ARCHITECTURE.md section 2a):
 *    opened once, registered with the writer that commits it, replayed
 *    through the pipeline before the client connects, then appended to by
 *    the client;
 *  - [cluster] its watch: whether its lease is held, when its client
 *    connected, its own blindness (lib/blind.h over its own lag) and when
 *    its engines are told sighted; the lease thread's callbacks (lease.h)
 *    and the handover of a shard on rebalance.
 * It knows the client, the pipeline and the writers of a shard only through
 * the port main.c wires (cw_shard_port_t). */
#ifndef CW_SHARDS_H
#define CW_SHARDS_H

#include <stdint.h>

#include "blind.h"
#include "ctl.h"
#include "env.h"
#include "journal.h"

typedef struct cw_shards cw_shards_t;

/* Ingest client k's other parts, as main.c wires them. Any thread unless
 * said. */
typedef struct cw_shard_port {
  void *ctx;
  /* its MQTT ingest client: connect (async) unless up, drop at once, up
   * (connected or connecting), how long a delivery has waited (a full
   * ring, 0: none), and append every message to j from now on (before
   * it connects) */
  void (*connect)(void *ctx, int k);
  void (*drop)(void *ctx, int k);
  int (*up)(void *ctx, int k);
  int64_t (*stalled_ms)(void *ctx, int k, int64_t now_ms);
  void (*journal)(void *ctx, int k, cw_journal_t *j);
  /* its pipeline: every worker blind until until_ms; a control message for
   * every worker (takes ownership of malloc'd c); its rings empty (1); the
   * last jpos handed to it; one journal message fed to it (the replay) */
  void (*set_blind)(void *ctx, int k, int64_t until_ms);
  void (*post_all)(void *ctx, int k, cw_ctl_t *c);
  int (*rings_empty)(void *ctx, int k);
  int64_t (*jpos_handed)(void *ctx, int k);
  void (*ingest)(void *ctx, int k, const cw_journal_entry_t *e);
  /* the writers that store its readings and the alerts it raised: commit
   * journal j as its readings are stored (cw_writer_journal); wait until
   * what its rings held is stored (0, else -errno) */
  void (*commit_journal)(void *ctx, int k, cw_journal_t *j);
  int (*sync)(void *ctx, int k, int timeout_ms);
  /* the thread that consumes the alert rings, while it waits for a replay
   * running on another thread (a worker may wait on a full alert ring) */
  void (*drain_alerts)(void *ctx);
} cw_shard_port_t;

/* The ingest clients of env->cfg (1 in single mode, [cluster] shards);
 * port is copied. 0 or -ENOMEM. */
int cw_shards_create(const cw_env_t *env, const cw_shard_port_t *port, cw_shards_t **out);
/* Closes the journals: after the writers have stopped. NULL is a no-op. */
void cw_shards_free(cw_shards_t *s);

/* Where shard k's workers store their lag (cw_pipeline_cfg_t lag_*). */
_Atomic int64_t *cw_shards_lag_latest(cw_shards_t *s, int k);
_Atomic int64_t *cw_shards_lag_fresh(cw_shards_t *s, int k);

/* Single mode, before the loop runs: client 0's journal attached (what was
 * not committed replayed through pipeline 0) on a thread of its own while
 * this thread, the alert rings' consumer, calls port.drain_alerts. 0 or
 * -errno (logged). */
int cw_shards_journal_start(cw_shards_t *s);

/* [cluster] The lease thread's callbacks (cw_lease_cfg_t, ctx: the
 * cw_shards_t) and the shard clients' connected callback (cw_mqtt_in_cfg_t,
 * paho's thread). */
void cw_shards_taking(void *ctx, int k);
void cw_shards_acquired(void *ctx, int k);
void cw_shards_lost(void *ctx, int k);
int cw_shards_up(void *ctx, int k);
void cw_shards_reconnect(void *ctx, int k);
int cw_shards_release(void *ctx, int k);
void cw_shards_connected(void *ctx, int k);

/* [cluster] Main loop. blind_init: every shard's lib/blind.h state starts
 * now (blind). tick: each owned shard's blindness, its engines told when it
 * changes; o (o->connected already the command client's) gets what the
 * daemon-level state watches: every owned shard's client connected, the
 * longest stall, and lagging while a connected shard is not sighted. */
void cw_shards_blind_init(cw_shards_t *s, int64_t now_ms, int64_t stall_ms);
void cw_shards_tick(cw_shards_t *s, int64_t now_ms, cw_blind_obs_t *o);
/* [cluster] Main loop (cw_http_cfg_t.shards, ctx: the cw_shards_t): bit k of
 * *owned = shard k's lease held, of *sighted = owned and caught up. */
void cw_shards_held(void *ctx, uint64_t *owned, uint64_t *sighted);

#endif
