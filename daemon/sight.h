/* sight.h - whether the daemon can see its stations, daemon-wide: the
 * lib/blind.h state fed by a 250 ms tick on the main loop, which tells the
 * engines (CW_CTL_BLIND) when it changes and raises, clears and closes the
 * daemon's own `ingest` alert. It knows the ingest client, the shards, the
 * alert sink and the publisher only through the port main.c wires
 * (cw_sight_port_t). */
#ifndef CW_SIGHT_H
#define CW_SIGHT_H

#include <stdint.h>
#include <uv.h>

#include "blind.h"
#include "ctl.h"
#include "env.h"
#include "idgen.h"

typedef struct cw_sight cw_sight_t;

/* The other parts the tick reads or drives, as main.c wires them. Main
 * loop. */
typedef struct cw_sight_port {
  void *ctx;
  /* the ingest client (with [cluster] the command client): how long a
   * delivery has waited on a full ring (0: none), and whether it is up */
  int64_t (*stalled_ms)(void *ctx, int64_t now_ms);
  int (*up)(void *ctx);
  /* [cluster] every shard's own blindness (cw_shards_blind_init,
   * cw_shards_tick); called in single mode too, where they do nothing */
  void (*shards_init)(void *ctx, int64_t now_ms, int64_t stall_ms);
  void (*shards_tick)(void *ctx, int64_t now_ms, cw_blind_obs_t *o);
  /* the alert sink: the daemon's own alert through every output */
  void (*emit)(void *ctx, const cw_alert_event_t *ev);
  /* what else runs on this tick, after the blindness update: the
   * publisher's retained-state reconciliation (cw_mqtt_out_tick) */
  void (*tick)(void *ctx, int64_t now_ms);
} cw_sight_port_t;

typedef struct cw_sight_cfg {
  const cw_env_t *env;
  uv_loop_t *loop;
  cw_idgen_t *ids;      /* the id of the `ingest` alert */
  cw_ctl_port_t ctl;    /* CW_CTL_BLIND to every worker of every pipeline */
  cw_sight_port_t port; /* copied */
} cw_sight_cfg_t;

/* Blind from now (not connected yet): the engines are told at once, then
 * the tick runs until cw_sight_free. Main loop. 0 or -ENOMEM. */
int cw_sight_start(const cw_sight_cfg_t *cfg, cw_sight_t **out);
/* Closes its timer (uv_run to finish). NULL is a no-op. */
void cw_sight_free(cw_sight_t *s);

#endif
