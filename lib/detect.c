/* detect.c - the detection engine facade: thresholds and their sources,
 * policies, restart state, and the per-reading path (socket state, then the
 * detectors thermal_runaway, overload, overnight_charging in that order on
 * event time; offline on receive time in cw_engine_sweep). One engine per
 * worker thread; no locks, no I/O: alerts leave through the caller's sink. */
#include "detect.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "detect_int.h"

void cw_detect_cfg_defaults(cw_detect_cfg_t *c) {
  memset(c, 0, sizeof(*c));
  /* thermal_runaway. docs/DETECTORS.md. 60/90 C: socket/connector
   * temperatures far above any normal charger (UL FSRI cell test, DOI
   * 10.5281/zenodo.7003380: the heated 18650 passes 60 C ~13 min and 90 C
   * ~13 min before venting at t=1700 s, from a 25 C start). */
  c->thermal_warn_c = 60.0;
  c->thermal_crit_c = 90.0;
  /* 2 C/min over 60 s, twice in a row: docs/DETECTORS.md; sun-driven warming
   * is < 0.5 C/min, the FSRI pre-runaway heating ramp is 5-6 C/min. */
  c->thermal_rise_warn_c_min = 2.0;
  c->thermal_rise_window_s = 60.0;
  c->thermal_rise_warn_count = 2;
  /* 1 C/s for >= 3 s: GB 38031-2020 annex C.5.3.7 thermal-runaway criterion. */
  c->thermal_rate_crit_c_s = 1.0;
  c->thermal_rate_crit_s = 3.0;
  /* overload. docs/DETECTORS.md: e-bike chargers draw 50-300 W (the real
   * Ninebot trace in tests/data peaks at 77 W), so > 400 W for 5 min is a
   * tampered or oversized charger; sockets are rated 1000 W (schema
   * sockets.rated_w default); 10 s rides through plug-in inrush. */
  /* Charger limit (socket/station charge_max_w override it): e-bike
   * chargers draw up to ~600 W (72 V 8 A lithium fast chargers; lead-acid
   * 48/60 V chargers 150-300 W), so 700 W leaves a margin for their
   * tolerance; a real 470 W charge must not warn. */
  c->overload_tamper_w = 700.0;
  c->overload_tamper_s = 300.0;
  c->overload_rated_s = 10.0;
  c->overload_station_frac = 0.8; /* docs/DETECTORS.md: 80 % of breaker_w (continuous-load margin) */
  c->default_rated_w = 1000.0;
  /* overnight_charging. docs/DETECTORS.md: 15 W separates charging from a
   * charger's standby draw; 5 min in the night window; sessions > 8 h warn,
   * > 12 h critical (a healthy e-bike pack fills in 4-8 h); 6 h in the night
   * window still drawing power means the battery is not filling. */
  c->charging_w = 15.0;
  c->night_min_s = 300.0;
  c->session_warn_s = 8 * 3600.0;
  c->session_crit_s = 12 * 3600.0;
  c->night_stuck_s = 6 * 3600.0;
  /* offline. docs/DETECTORS.md: 3 missed readings, never under 90 s. */
  c->offline_factor = 3.0;
  c->offline_min_s = 90.0;
  /* lifecycle. docs/DETECTORS.md: hold 60 s (hysteresis), cool-down 300 s. */
  c->hold_s = 60.0;
  c->cooldown_s = 300.0;
  /* 2 kWh: more than any e-bike pack can take (0.4-1.5 kWh packs at ~80 %
   * charger efficiency is at most ~1.9 kWh from empty). */
  c->night_stuck_wh = 2000.0;
  /* Offline ceiling 30 min and a 15 min allowance for report-on-change
   * metering plugs (real gaps of 3-13 min while the draw is steady). */
  c->offline_max_s = 1800.0;
  c->offline_quiet_s = 900.0;
  /* An unconfirmed rise (no current, no corroboration) must hold two rise
   * windows: a probe step of ~8 C in 50 s holds the 60 s slope ~80 s. */
  c->thermal_confirm_s = 120.0;
  /* Fusion: 1 C/min is twice the fastest sun warming (< 0.5 C/min). */
  c->thermal_fusion_rise_c_min = 1.0;
  /* EN 54-5 class A1 heat detectors respond at 54-65 C static. */
  c->thermal_ambient_c = 54.0;
  /* charging sessions: open ones are written every 5 min, so one open when
   * the daemon stops is kept (end_reason restart) at most 5 min short. */
  c->session_checkpoint_s = 300.0;
}

void cw_station_policy_defaults(cw_station_policy_t *p) {
  memset(p, 0, sizeof(*p));
  p->utc_offset_min = 480;      /* schema stations.utc_offset_min default */
  p->night_start_min = 22 * 60; /* schema stations.night_start default '22:00' */
  p->night_end_min = 6 * 60;    /* schema stations.night_end default '06:00' */
  p->overnight_allowed = true;
  p->breaker_w = 0; /* unknown: no station sum check */
  p->site_type = CW_SITE_OUTDOOR;
  p->charge_max_w = 0; /* unknown: cfg overload_tamper_w */
}

/* ------------------------------------------------------------ cfg_set */
typedef struct {
  const char *key;
  size_t off;
  bool is_int;
  double min, max; /* inclusive sane range */
} cfg_key_t;

#define D(f, lo, hi) {#f, offsetof(cw_detect_cfg_t, f), false, lo, hi}
#define I(f, lo, hi) {#f, offsetof(cw_detect_cfg_t, f), true, lo, hi}
static const cfg_key_t cfg_keys[] = {
    D(thermal_warn_c, 0, 1200),          D(thermal_crit_c, 0, 1200),
    D(thermal_rise_warn_c_min, 0.01, 600), D(thermal_rise_window_s, 6, 3600),
    I(thermal_rise_warn_count, 1, 100),  D(thermal_rate_crit_c_s, 0.01, 100),
    D(thermal_rate_crit_s, 0, 120),      D(overload_tamper_w, 0, 30000),
    D(overload_tamper_s, 0, 86400),      D(overload_rated_s, 0, 3600),
    D(overload_station_frac, 0.01, 1.0), D(default_rated_w, 1, 30000),
    D(charging_w, 0.1, 30000),           D(night_min_s, 0, 86400),
    D(session_warn_s, 60, 7 * 86400.0),  D(session_crit_s, 60, 7 * 86400.0),
    D(night_stuck_s, 60, 86400),         D(offline_factor, 1, 1000),
    D(offline_min_s, 1, 86400),          D(hold_s, 0, 86400),
    D(cooldown_s, 0, 7 * 86400.0),       D(night_stuck_wh, 0, 1e6),
    D(offline_max_s, 1, 7 * 86400.0),    D(offline_quiet_s, 0, 86400),
    D(thermal_confirm_s, 0, 3600),       D(thermal_fusion_rise_c_min, 0.01, 600),
    D(thermal_ambient_c, 0, 1200),       D(session_checkpoint_s, 0, 86400),
};
#undef D
#undef I

int cw_detect_cfg_set(cw_detect_cfg_t *cfg, const char *key, const char *value) {
  if (!cfg || !key) return -EINVAL;
  const cfg_key_t *k = NULL;
  for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
    if (strcmp(cfg_keys[i].key, key) == 0) k = &cfg_keys[i];
  if (!k) return -ENOENT;
  /* strict: a plain decimal number, nothing before or after it */
  if (!value || !*value || !(value[0] == '-' || value[0] == '+' || value[0] == '.' ||
                             (value[0] >= '0' && value[0] <= '9')))
    return -EINVAL;
  for (const char *p = value; *p; p++)
    if (!strchr("0123456789+-.eE", *p)) return -EINVAL; /* no hex, inf, nan, spaces */
  char *end = NULL;
  errno = 0;
  double d = strtod(value, &end);
  if (errno || end == value || *end || !isfinite(d) || d < k->min || d > k->max) return -EINVAL;
  char *base = (char *)cfg + k->off;
  if (k->is_int) {
    if (d != floor(d)) return -EINVAL;
    *(int *)base = (int)d;
  } else {
    *(double *)base = d;
  }
  return 0;
}

/* ------------------------------------------------------------ engine */
cw_engine_t *cw_engine_new(const cw_detect_cfg_t *cfg, cw_alert_fn on_alert,
                           cw_alert_id_fn next_id, void *ctx) {
  cw_engine_t *e = calloc(1, sizeof(*e));
  if (!e) return NULL;
  if (cfg)
    e->cfg = *cfg;
  else
    cw_detect_cfg_defaults(&e->cfg);
  if (cw_sock_table_init(&e->tab) < 0) goto fail_tab;
  if (cw_alert_pool_init(&e->alerts, on_alert, next_id, ctx) < 0) goto fail_pool;
  return e;
fail_pool:
  cw_sock_table_free(&e->tab);
fail_tab:
  free(e);
  return NULL;
}

void cw_engine_free(cw_engine_t *e) {
  if (!e) return;
  cw_alert_pool_free(&e->alerts);
  cw_sock_table_free(&e->tab);
  free(e);
}

/* Detector state is either raw measurement (re-judged against the current
 * thresholds on every reading) or a judgement made under the old thresholds;
 * the latter must not outlive a reload. Timers of "continuously above a
 * limit" restart by themselves on the first reading below the new limit. */
void cw_engine_set_cfg(cw_engine_t *e, const cw_detect_cfg_t *cfg) {
  bool rewindow = cfg->thermal_rise_window_s != e->cfg.thermal_rise_window_s;
  bool recount = cfg->thermal_rise_warn_c_min != e->cfg.thermal_rise_warn_c_min ||
                 cfg->thermal_rise_warn_count != e->cfg.thermal_rise_warn_count;
  e->cfg = *cfg;
  if (!rewindow && !recount) return;
  for (uint32_t i = 0; i < e->tab.nso; i++) {
    if (rewindow) /* sub-bucket width changed: old buckets are meaningless */
      cw__thermal_reset(&e->tab.so[i].th);
    else /* "n rises in a row" was counted against the old threshold */
      e->tab.so[i].th.rise_count = 0;
  }
}

static bool name_ok(const char *s) {
  size_t n = s ? strnlen(s, CW_STATION_MAX + 1) : 0;
  return n >= 1 && n <= CW_STATION_MAX;
}

int cw_engine_set_station(cw_engine_t *e, const char *station, const cw_station_policy_t *p) {
  if (!name_ok(station) || !p) return -EINVAL;
  int64_t si = cw_sock_table_station(&e->tab, station);
  if (si < 0) return (int)si;
  cw_station_t *st = &e->tab.st[si];
  /* A moved night window (or time zone): the current in-window run was
   * measured against the old one; it restarts at the next charging reading
   * inside the new window. Everything else is read from the policy on each
   * reading (overnight_allowed, breaker_w) and needs nothing here. */
  if (p->utc_offset_min != st->policy.utc_offset_min ||
      p->night_start_min != st->policy.night_start_min ||
      p->night_end_min != st->policy.night_end_min)
    for (uint32_t i = st->first; i; i = e->tab.so[i - 1].next) e->tab.so[i - 1].on.night_off = -1;
  st->policy = *p;
  return 0;
}

int cw_engine_set_socket(cw_engine_t *e, const char *station, uint8_t socket,
                         const cw_socket_policy_t *p) {
  if (!name_ok(station) || !socket || !p) return -EINVAL;
  int64_t si = cw_sock_table_station(&e->tab, station);
  if (si < 0) return (int)si;
  int64_t k = cw_sock_table_socket(&e->tab, (uint32_t)si, socket);
  if (k < 0) return (int)k;
  cw_sock_t *s = &e->tab.so[k];
  s->rated_w = p->rated_w > 0 && isfinite(p->rated_w) ? (float)p->rated_w : 0.0f;
  s->charge_max_w =
      p->charge_max_w > 0 && isfinite(p->charge_max_w) ? (float)p->charge_max_w : 0.0f;
  if (p->forbidden)
    s->flags |= CW_SOCK_FORBIDDEN;
  else
    s->flags &= (uint8_t)~CW_SOCK_FORBIDDEN;
  return 0;
}

int cw_engine_restore_last_ts(cw_engine_t *e, const char *station, uint8_t socket, int64_t ts_ms) {
  if (!name_ok(station) || !socket) return -EINVAL;
  int64_t si = cw_sock_table_station(&e->tab, station);
  if (si < 0) return (int)si;
  int64_t k = cw_sock_table_socket(&e->tab, (uint32_t)si, socket);
  if (k < 0) return (int)k;
  cw_sock_t *s = &e->tab.so[k];
  if (!(s->flags & CW_SOCK_HAVE_TS) || ts_ms > s->last_ts) s->last_ts = ts_ms;
  s->flags |= CW_SOCK_HAVE_TS;
  return 0;
}

/* The slot that holds the alert of (station, socket, kind); socket 0 is the
 * station itself (overload = breaker sum, offline = station silent). */
static uint32_t *owner_slot(cw_engine_t *e, uint32_t si, uint8_t socket, cw_kind_t kind,
                            bool create) {
  if (socket == 0) {
    if (kind == CW_KIND_OVERLOAD) return &e->tab.st[si].alert_overload;
    if (kind == CW_KIND_OFFLINE) return &e->tab.st[si].alert_offline;
    return NULL;
  }
  int64_t k = create ? cw_sock_table_socket(&e->tab, si, socket)
                     : cw_sock_table_find_socket(&e->tab, si, socket);
  return k < 0 ? NULL : &e->tab.so[k].alert[kind];
}

int cw_engine_restore_alert(cw_engine_t *e, const cw_alert_event_t *ev) {
  if (!ev || !name_ok(ev->station) || (unsigned)ev->kind >= CW_KIND__ENGINE) return -EINVAL;
  int64_t si = cw_sock_table_station(&e->tab, ev->station);
  if (si < 0) return (int)si;
  if (ev->socket == 0 && ev->kind != CW_KIND_OVERLOAD && ev->kind != CW_KIND_OFFLINE)
    return -EINVAL;
  uint32_t *slot = owner_slot(e, (uint32_t)si, ev->socket, ev->kind, true);
  if (!slot) return -ENOMEM;
  if (*slot && e->alerts.a[*slot].id != ev->id) { /* a different alert already holds it */
    cw_alert_release(&e->alerts, *slot);
    *slot = 0;
  }
  return cw_alert_restore(&e->alerts, slot, (uint32_t)si, ev);
}

#define STALE_WINDOW_MS 3600000LL
#define NO_CURRENT_A 0.05 /* below this the pack is not being charged */

/* Context of a reading for the thermal detector: is the socket charging,
 * and does anything besides its own probe point at a fire? */
void cw__therm_neighbours(cw_therm_ctx_t *cx) {
  if (cx->looked) return;
  cx->looked = true;
  const cw_engine_t *e = cx->e;
  for (uint32_t j = cx->st->first; j; j = e->tab.so[j - 1].next) {
    const cw_sock_t *o = &e->tab.so[j - 1];
    uint32_t ai = o->alert[CW_KIND_THERMAL_RUNAWAY];
    if (o == cx->self || !ai || !e->alerts.a[ai].active) continue;
    cx->neighbour = true;
    if (e->alerts.a[ai].sev >= CW_SEV_CRITICAL) cx->neighbour_crit = true;
  }
  if (cx->neighbour) cx->corroborated = true;
}

static void therm_ctx(const cw_engine_t *e, const cw_station_t *st, cw_sock_t *s,
                      const cw_reading_t *r, float prev_w, cw_therm_ctx_t *cx) {
  const cw_detect_cfg_t *cfg = &e->cfg;
  memset(cx, 0, sizeof(*cx));
  cx->e = e;
  cx->st = st;
  cx->self = s;
  if (!(r->have & CW_HAVE_T)) return;
  bool have_w = r->have & CW_HAVE_W;
  cx->no_current = (have_w && r->w < cfg->charging_w) ||
                   ((r->have & CW_HAVE_A) && r->a < NO_CURRENT_A);
  /* Power gone while the temperature climbs, with no full/idle/stop report:
   * a BMS or charger cut-off. Latched while the rise lasts. */
  bool ended = ((r->have & CW_HAVE_STATE) && r->state != CW_STATE_CHARGING) ||
               ((r->have & CW_HAVE_STOP) && r->stop != CW_STOP_NONE);
  if (!(s->th.fl & CW_TH_RISING) || ended || (have_w && r->w >= cfg->charging_w))
    s->th.fl &= (uint8_t)~CW_TH_CUT;
  else if (have_w && prev_w >= cfg->charging_w)
    s->th.fl |= CW_TH_CUT;
  bool hot_amb = (r->have & CW_HAVE_T_AMB) && r->t_amb >= cfg->thermal_ambient_c;
  cx->corroborated = hot_amb || (s->th.fl & CW_TH_CUT);
}

static void sensor_event(cw_engine_t *e, const cw_station_t *st, cw_sock_t *s, int64_t ts_ms,
                         const cw_therm_ctx_t *cx) {
  e->sensor_events++;
  if (!(s->flags & CW_SOCK_SENSOR)) {
    s->flags |= CW_SOCK_SENSOR;
    e->sensor_suspect++;
  }
  if (e->on_sensor)
    e->on_sensor(e->sensor_ctx, st->name, s->socket, ts_ms, cx->step_from, cx->step_to);
}

cw_reject_t cw_engine_process(cw_engine_t *e, const cw_reading_t *r, int64_t recv_ms) {
  const cw_detect_cfg_t *cfg = &e->cfg;
  if (!r->socket || !name_ok(r->station)) return CW_REJ_BAD_SOCKET;
  int64_t si = cw_sock_table_station(&e->tab, r->station);
  if (si < 0) return CW_REJ__COUNT;
  int64_t k = cw_sock_table_socket(&e->tab, (uint32_t)si, r->socket);
  if (k < 0) return CW_REJ__COUNT;
  /* No table additions below: these pointers stay valid. */
  cw_station_t *st = &e->tab.st[si];
  cw_sock_t *s = &e->tab.so[k];
  if ((s->flags & CW_SOCK_HAVE_TS) && r->ts_ms <= s->last_ts) return CW_REJ_DUPLICATE;
  int64_t prev_ts = (s->flags & CW_SOCK_HAVE_TS) ? s->last_ts : 0;
  /* The thermal window keeps 32/16-bit time stamps: after an hour of
   * silence it starts afresh (its contents are stale anyway). */
  if (prev_ts && r->ts_ms - prev_ts > STALE_WINDOW_MS) cw__thermal_reset(&s->th);
  s->last_ts = r->ts_ms;
  s->flags |= CW_SOCK_HAVE_TS;
  float prev_w = s->last_w;
  if (r->have & CW_HAVE_W) {
    bool fault = (r->have & CW_HAVE_STATE) && r->state == CW_STATE_FAULT;
    if (fault)
      s->flags &= (uint8_t)~CW_SOCK_METERED;
    else
      s->flags |= CW_SOCK_METERED;
  }
  /* While blind (or before the unblind reaches this worker: a session
   * backlog arrives first), a gap may span the blind spell: not a cadence. */
  cw__offline_seen(cfg, st, s, recv_ms, e->blind ? INT64_MAX : e->resume_ms);
  if (r->have & CW_HAVE_W) {
    st->sum_w += (double)r->w - (double)s->last_w;
    s->last_w = r->w;
  }

  cw_verdict_t v;
  int rc = 0;
  cw_therm_ctx_t cx;
  therm_ctx(e, st, s, r, prev_w, &cx);
  cw__thermal_eval(cfg, s, r, &cx, &v);
  if (cx.sensor_event) sensor_event(e, st, s, r->ts_ms, &cx);
  rc |= cw_alert_apply(&e->alerts, &s->alert[CW_KIND_THERMAL_RUNAWAY], st->name, (uint32_t)si,
                       s->socket, CW_KIND_THERMAL_RUNAWAY, &v, r->ts_ms, recv_ms, cfg->hold_s,
                       cfg->cooldown_s);
  cw__overload_eval(cfg, &st->policy, s, r, prev_ts, &v);
  rc |= cw_alert_apply(&e->alerts, &s->alert[CW_KIND_OVERLOAD], st->name, (uint32_t)si, s->socket,
                       CW_KIND_OVERLOAD, &v, r->ts_ms, recv_ms, cfg->hold_s, cfg->cooldown_s);
  if (r->have & CW_HAVE_W) {
    cw__overload_station_eval(cfg, st, &v);
    rc |= cw_alert_apply(&e->alerts, &st->alert_overload, st->name, (uint32_t)si, 0,
                         CW_KIND_OVERLOAD, &v, r->ts_ms, recv_ms, cfg->hold_s, cfg->cooldown_s);
  }
  int64_t start0 = s->on.session_start;
  int32_t low0 = s->on.low_off;
  cw__overnight_eval(cfg, &st->policy, s, r, prev_ts, &v);
  cw__session_step(e, st, s, r, prev_ts, start0, low0);
  rc |= cw_alert_apply(&e->alerts, &s->alert[CW_KIND_OVERNIGHT_CHARGING], st->name, (uint32_t)si,
                       s->socket, CW_KIND_OVERNIGHT_CHARGING, &v, r->ts_ms, recv_ms, cfg->hold_s,
                       cfg->cooldown_s);
  return rc < 0 ? CW_REJ__COUNT : CW_REJ_OK;
}

static void drop_owner(void *ctx, const cw_alert_t *a) {
  cw_engine_t *e = ctx;
  uint32_t *slot = owner_slot(e, a->station, a->socket, (cw_kind_t)a->kind, false);
  if (slot) *slot = 0;
}

void cw_engine_sweep(cw_engine_t *e, int64_t now_ms) {
  for (uint32_t i = 0; i < e->tab.nst; i++) {
    cw_station_t *st = &e->tab.st[i];
    double sum = 0; /* re-sum exactly: the running sum drifts by rounding */
    for (uint32_t j = st->first; j; j = e->tab.so[j - 1].next) sum += e->tab.so[j - 1].last_w;
    st->sum_w = sum;
    if (!e->blind) (void)cw__offline_sweep_station(e, i, now_ms); /* -ENOMEM: next sweep */
  }
  cw_alert_expire(&e->alerts, now_ms, e->cfg.cooldown_s, drop_owner, e);
  cw__session_checkpoint(e, now_ms);
}

void cw_engine_forget(cw_engine_t *e) {
  for (uint32_t i = 1; i < e->alerts.n; i++) cw_alert_release(&e->alerts, i);
  for (uint32_t i = 0; i < e->tab.nso; i++) {
    cw_sock_t *s = &e->tab.so[i], keep = *s;
    memset(s, 0, sizeof *s); /* as a socket just created (cw_sock_table_socket) */
    s->station = keep.station;
    s->next = keep.next;
    s->socket = keep.socket;
    s->flags = keep.flags & CW_SOCK_FORBIDDEN;
    s->rated_w = keep.rated_w;
    s->charge_max_w = keep.charge_max_w;
  }
  for (uint32_t i = 0; i < e->tab.nst; i++) {
    cw_station_t *st = &e->tab.st[i];
    st->sum_w = 0;
    st->last_recv = 0;
    st->alert_overload = st->alert_offline = 0;
  }
  e->sensor_suspect = 0;
  e->next_ckpt_ms = 0;
}

void cw_engine_set_blind(cw_engine_t *e, bool blind, int64_t now_ms) {
  if (e->blind && !blind) e->resume_ms = now_ms; /* silence is measured from here on */
  e->blind = blind;
}

static int operator_note(cw_engine_t *e, int64_t alert_id, cw_event_t action, const char *by,
                         const char *note, int64_t now_ms) {
  if (action != CW_EV_ACKNOWLEDGED && action != CW_EV_CLOSED && action != CW_EV_RECTIFIED)
    return -EINVAL;
  uint32_t i = cw_alert_find(&e->alerts, alert_id);
  if (!i) return -ENOENT;
  cw_alert_t owner = e->alerts.a[i]; /* copy: closing frees the entry */
  bool closed = false;
  int rc = cw_alert_operator(&e->alerts, i, e->tab.st[owner.station].name, action, by, note,
                             now_ms, &closed);
  if (rc == 0 && closed) drop_owner(e, &owner);
  return rc;
}

int cw_engine_operator(cw_engine_t *e, int64_t alert_id, cw_event_t action, const char *by,
                       int64_t now_ms) {
  return operator_note(e, alert_id, action, by, NULL, now_ms);
}

int cw_engine_rectify(cw_engine_t *e, int64_t alert_id, const char *by, const char *note,
                      int64_t now_ms) {
  return operator_note(e, alert_id, CW_EV_RECTIFIED, by, note, now_ms);
}

void cw_engine_on_sensor(cw_engine_t *e, cw_sensor_fn fn, void *ctx) {
  e->on_sensor = fn;
  e->sensor_ctx = ctx;
}

void cw_engine_on_ref(cw_engine_t *e, cw_alert_ref_fn fn) { e->alerts.next_ref = fn; }

uint64_t cw_engine_sensor_events(const cw_engine_t *e) { return e->sensor_events; }
size_t cw_engine_sensor_suspect(const cw_engine_t *e) { return e->sensor_suspect; }

int cw_engine_socket_sensor_flag(const cw_engine_t *e, const char *station, uint8_t socket) {
  if (!name_ok(station)) return -ENOENT;
  int64_t si = cw_sock_table_find_station(&e->tab, station);
  if (si < 0) return -ENOENT;
  int64_t k = cw_sock_table_find_socket(&e->tab, (uint32_t)si, socket);
  if (k < 0) return -ENOENT;
  return (e->tab.so[k].flags & CW_SOCK_SENSOR) ? 1 : 0;
}

size_t cw_engine_sockets(const cw_engine_t *e) { return e->tab.nso; }

/* One socket's share: its state plus its hash slots at the lowest load
 * (0.35 right after a rehash). The dense array grows by 1.5x, so up to a
 * third more is reserved but untouched (cw_engine_bytes counts it). */
size_t cw_engine_bytes_per_socket(void) {
  return sizeof(cw_sock_t) + (sizeof(uint32_t) * 100 + 34) / 35;
}

size_t cw_engine_open_alerts(const cw_engine_t *e) { return e->alerts.active; }

size_t cw_engine_bytes(const cw_engine_t *e) {
  return sizeof(*e) + cw_sock_table_bytes(&e->tab) + (size_t)e->alerts.cap * sizeof(cw_alert_t);
}
