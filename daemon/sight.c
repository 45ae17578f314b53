/* sight.c - whether the daemon can see its stations, as a whole. Silence
 * is evidence only while ingest is connected, caught up and not
 * back-pressured (lib/blind.h); this part watches that on a main-loop tick,
 * pauses the engines' offline detection while blind and raises the
 * daemon's own `ingest` alert, so an operator learns that the daemon, not
 * the stations, went quiet. */
#include "sight.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define BLIND_TICK_MS 250
#define BLIND_STALL_MS 1000 /* a delivery waiting this long on a full ring: back-pressured */
#define DAEMON_STATION "_daemon"
#define DAEMON_BY "chargewatchd"

struct cw_sight {
  cw_sight_cfg_t c;
  const cw_config_t *cfg;
  cw_blind_t blind;
  uv_timer_t tick;
  cw_alert_event_t ingest_alert; /* the raised `ingest` alert (id 0: none) */
};

/* The station code of the daemon's own alert: "_daemon"; with [cluster],
 * one per process ("_d-" and its MQTT client id, in the station alphabet),
 * since every member is blind or sighted on its own. */
static void daemon_station(const cw_config_t *cfg, char *out, size_t cap) {
  if (!cfg->shards) {
    snprintf(out, cap, "%s", DAEMON_STATION);
    return;
  }
  size_t n = (size_t)snprintf(out, cap, "_d-%.29s", cfg->mqtt_client_id);
  for (size_t i = 3; i < n && i < cap; i++)
    if (!isalnum((unsigned char)out[i]) && out[i] != '_' && out[i] != '-') out[i] = '-';
}

/* The daemon's own alert: `ingest` on station _daemon, socket 0; raised once
 * per blind spell, cleared and closed (by chargewatchd) when it ends. */
static void ingest_alert(cw_sight_t *s, cw_event_t ev, int64_t now, int64_t blind_ms) {
  cw_alert_event_t *e = &s->ingest_alert;
  char why[64];
  if (ev == CW_EV_RAISED) {
    memset(e, 0, sizeof *e);
    e->id = cw_idgen_next(s->c.ids);
    e->kind = CW_KIND_INGEST;
    e->severity = CW_SEV_CRITICAL;
    e->threshold = s->cfg->ingest_alert_s;
    daemon_station(s->cfg, e->station, sizeof e->station);
    snprintf(e->unit, sizeof e->unit, "s");
    snprintf(e->message, sizeof e->message,
             "daemon blind (%s): offline detection paused, stations not judged",
             cw_blind_why_name(s->blind.why, why, sizeof why));
  } else if (!e->id) {
    return;
  }
  e->event = ev;
  e->state = ev == CW_EV_RAISED ? CW_ALERT_OPEN : ev == CW_EV_CLEARED ? CW_ALERT_CLEARED
                                                                      : CW_ALERT_CLOSED;
  e->ts_ms = e->recv_ms = now;
  e->value = (double)blind_ms / 1000.0;
  if (ev == CW_EV_CLOSED) snprintf(e->by, sizeof e->by, "%s", DAEMON_BY);
  s->c.port.emit(s->c.port.ctx, e);
  if (ev == CW_EV_CLOSED) e->id = 0;
}

static void post_blind(cw_sight_t *s, int blind, int64_t now) {
  cw_ctl_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->type = CW_CTL_BLIND;
  c->socket = (uint8_t)blind;
  c->ts_ms = now;
  s->c.ctl.post(s->c.ctl.ctx, CW_CTL_ALL, c); /* every shard's pipeline */
}

static void on_tick(uv_timer_t *t) {
  cw_sight_t *s = t->data;
  const cw_sight_port_t *p = &s->c.port;
  cw_metrics_t *m = s->c.env->m;
  int64_t now = cw_now_ms();
  cw_blind_obs_t o = {.connected = atomic_load(&m->mqtt_connected) != 0,
                      .latest_recv_ms = atomic_load(&m->recv_latest_ms),
                      .fresh_recv_ms = atomic_load(&m->recv_fresh_ms),
                      .stalled_ms = p->stalled_ms(p->ctx, now)};
  if (s->cfg->shards) { /* the command client and every owned shard's */
    o.connected = p->up(p->ctx);
    p->shards_tick(p->ctx, now, &o);
  }
  int was = s->blind.blind;
  int64_t since = s->blind.since_ms;
  int r = cw_blind_update(&s->blind, &o, now);
  p->tick(p->ctx, now); /* the retained-state reconciliation, once connected */
  char why[64];
  if (r & CW_BLIND_CHANGED) {
    atomic_store(&m->ingest_blind, s->blind.blind);
    if (!s->cfg->shards) post_blind(s, s->blind.blind, now); /* [cluster]: per shard */
    if (s->blind.blind)
      cw_log(CW_LOG_WARN, "ingest: blind (%s): offline detection paused",
             cw_blind_why_name(s->blind.why, why, sizeof why));
    else if (was)
      cw_log(CW_LOG_INFO, "ingest: sighted after %.1f s blind: offline timers restart now",
             (double)(now - since) / 1000.0);
  }
  if (r & CW_BLIND_CLEAR) {
    ingest_alert(s, CW_EV_CLEARED, now, now - since);
    ingest_alert(s, CW_EV_CLOSED, now, now - since);
  }
  if (r & CW_BLIND_RAISE) ingest_alert(s, CW_EV_RAISED, now, now - s->blind.since_ms);
}

/* Blind from the start (not connected yet): the engines wait until the
 * ingest client is connected and caught up. */
int cw_sight_start(const cw_sight_cfg_t *cfg, cw_sight_t **out) {
  cw_sight_t *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->c = *cfg;
  s->cfg = cfg->env->cfg;
  int64_t now = cw_now_ms();
  cw_blind_init(&s->blind, (int64_t)s->cfg->ingest_lag_s * 1000,
                (int64_t)s->cfg->ingest_alert_s * 1000, BLIND_STALL_MS, now);
  atomic_store(&s->c.env->m->ingest_blind, 1);
  post_blind(s, 1, now);
  s->c.port.shards_init(s->c.port.ctx, now, BLIND_STALL_MS);
  uv_timer_init(cfg->loop, &s->tick);
  s->tick.data = s;
  uv_timer_start(&s->tick, on_tick, BLIND_TICK_MS, BLIND_TICK_MS);
  *out = s;
  return 0;
}

static void free_self(uv_handle_t *h) { free(h->data); }

void cw_sight_free(cw_sight_t *s) {
  if (!s) return;
  /* the timer lives inside s: free it once libuv has let go of it */
  uv_close((uv_handle_t *)&s->tick, free_self);
}
