/* lease.h - shard ownership for [cluster] (docs/SCALING.md): a thread with
 * its own PostgreSQL control connection holds one session advisory lock per
 * owned shard, pg_try_advisory_lock(hashtext('chargewatch.shard'), k), and
 * one member lock that gives the process its alert-id slot. Every
 * lease_check_ms it probes the connection; a failed probe or a lost
 * connection drops every owned shard's MQTT client at once. With the lease
 * confirmed it reconnects owned shards whose client is down (shard clients
 * never reconnect by themselves), and takes free shards up to its share:
 * min(max_shards, ceil(shards / live members)); above it, while a member
 * that may own one of its shards is below its share, it gives one away
 * (release). Taking a shard restores its
 * stations (sockets.last_ts, alerts not closed) through the control port
 * before the shard's client connects. Implemented in db_lease.c. */
#ifndef CW_LEASE_H
#define CW_LEASE_H

#include "ctl.h"
#include "env.h"
#include "idgen.h"

typedef struct cw_lease cw_lease_t;

typedef struct cw_lease_cfg {
  const cw_env_t *env;
  cw_idgen_t *ids;       /* gets the member slot (cw_idgen_set_slot) */
  cw_ctl_port_t port;    /* restores are posted here, by station */
  /* All on the lease thread. taking: the shard's lock is ours, its restore
   * comes next (may be NULL). acquired: the shard is ours and restored:
   * connect its client. lost: drop its client now. up: is its client
   * connected or connecting. reconnect: connect it again (lease held). */
  void (*taking)(void *ctx, int shard);
  void (*acquired)(void *ctx, int shard);
  void (*lost)(void *ctx, int shard);
  int (*up)(void *ctx, int shard);
  void (*reconnect)(void *ctx, int shard);
  /* Rebalance: stop the shard's client, let its rings drain and the writer
   * store what they held; 0 when done (the lock is then released), else
   * the shard is kept. May be NULL (no shard is ever given away). */
  int (*release)(void *ctx, int shard);
  void *ctx;
} cw_lease_cfg_t;

int cw_lease_start(const cw_lease_cfg_t *cfg, cw_lease_t **out); /* 0 or -errno */
/* Shutdown, step 1: take no more shards and reconnect none (the clients
 * are being paused); the locks are kept until cw_lease_free, after the
 * writer has stored everything, so the next owner restores the latest. */
void cw_lease_quiesce(cw_lease_t *l);
void cw_lease_free(cw_lease_t *l); /* ends the thread, closes the connection: locks released */

#endif
