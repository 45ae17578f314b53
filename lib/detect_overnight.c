/* detect_overnight.c - overnight_charging detector (docs/DETECTORS.md):
 * unattended charging is when e-bike battery fires do the most harm. Tracks a
 * charging session per socket (w >= charging_w; ends after SESSION_GAP_MS
 * below it, on state idle/full, or on any stop field) and the part of it
 * inside the station's local night window. */
#include <string.h>

#include "detect_int.h"

/* A charger's power can dip below 15 W for a minute (pack balancing, CV
 * tail wobble) without the session ending: 2 min below ends it. */
#define SESSION_GAP_MS 120000
/* Forbidden socket: 2 consecutive charging readings confirm a session, so a
 * single spike (plug-in transient) does not count. Confirmation is a fact
 * about the session, not about the policy: whether the socket is forbidden
 * is read from the current policy on every reading (it may change at
 * SIGHUP), so lifting the ban clears the alert after hold_s. */
#define FORBIDDEN_CONFIRM 2

static bool in_night(const cw_station_policy_t *p, int64_t ts_ms) {
  int64_t m = ts_ms / 60000;
  if (ts_ms < 0 && ts_ms % 60000) m--; /* floor */
  m += p->utc_offset_min;
  int lm = (int)(((m % 1440) + 1440) % 1440);
  if (p->night_start_min == p->night_end_min) return false;
  if (p->night_start_min < p->night_end_min)
    return lm >= p->night_start_min && lm < p->night_end_min;
  return lm >= p->night_start_min || lm < p->night_end_min; /* crosses midnight */
}

/* Energy is integrated over gaps of at most this (a longer silence is not
 * evidence of drawing power all along). */
#define WH_MAX_GAP_MS 600000

static void end_session(cw_overnight_state_t *on) {
  memset(on, 0, sizeof(*on));
  on->low_off = on->night_off = -1;
}

/* Offset of ts from the session start in ms, saturating. */
static int32_t off_ms(const cw_overnight_state_t *on, int64_t ts) {
  int64_t d = ts - on->session_start;
  return d < 0 ? 0 : d > INT32_MAX ? INT32_MAX : (int32_t)d;
}

void cw__overnight_eval(const cw_detect_cfg_t *cfg, const cw_station_policy_t *pol, cw_sock_t *s,
                        const cw_reading_t *r, int64_t prev_ts, cw_verdict_t *out) {
  cw_overnight_state_t *on = &s->on;
  bool have_w = r->have & CW_HAVE_W, have_state = r->have & CW_HAVE_STATE;
  bool have_stop = (r->have & CW_HAVE_STOP) && r->stop != CW_STOP_NONE;
  memset(out, 0, sizeof(*out));
  out->known = have_w || have_state || have_stop;
  out->unit = "h";
  if (!out->known) return;

  int64_t ts = r->ts_ms;
  bool charging = have_w ? r->w >= cfg->charging_w : (have_state && r->state == CW_STATE_CHARGING);
  bool ends = have_stop || (have_state && (r->state == CW_STATE_IDLE || r->state == CW_STATE_FULL));
  if (ends) {
    end_session(on);
    return; /* condition absent: open alerts clear after hold_s */
  }
  if (!on->session_start) on->low_off = on->night_off = -1;
  if (charging) {
    if (on->chg_run < UINT8_MAX) on->chg_run++;
    on->low_off = -1;
    if (!on->session_start) {
      on->session_start = ts;
      on->session_wh = 0;
    } else if (have_w && prev_ts && ts > prev_ts) {
      int64_t dt = ts - prev_ts;
      if (dt > WH_MAX_GAP_MS) dt = WH_MAX_GAP_MS;
      on->session_wh += (float)((double)r->w * (double)dt / 3600000.0);
    }
  } else {
    on->chg_run = 0;
    if (on->session_start) {
      if (on->low_off < 0) on->low_off = off_ms(on, ts);
      if (off_ms(on, ts) - on->low_off >= SESSION_GAP_MS) end_session(on);
    }
  }
  if (!on->session_start) return;

  bool night = in_night(pol, ts);
  if (!night) on->night_off = -1;
  else if (charging && on->night_off < 0) on->night_off = off_ms(on, ts);
  if (on->chg_run >= FORBIDDEN_CONFIRM) on->confirmed = 1;
  bool forbidden = (s->flags & CW_SOCK_FORBIDDEN) && on->confirmed;

  double dur_s = (double)(ts - on->session_start) / 1000.0;
  double night_s = on->night_off >= 0 ? (double)(off_ms(on, ts) - on->night_off) / 1000.0 : -1;
  /* "Still drawing after 6 h" alone is normal for a lead-acid e-bike pack
   * (6-10 h chargers). A charger that never finishes also delivers energy no
   * e-bike pack can take (0.4-1.5 kWh packs, ~80 % charger efficiency):
   * both are needed. */
  bool stuck = night_s >= cfg->night_stuck_s && charging && (!have_w || r->w > cfg->charging_w) &&
               (!have_w || on->session_wh >= cfg->night_stuck_wh);
  if (dur_s > cfg->session_crit_s) {
    out->sev = CW_SEV_CRITICAL;
    out->value = dur_s / 3600.0;
    out->threshold = cfg->session_crit_s / 3600.0;
    cw_verdict_msg(out, "charging session running for %.1f h", dur_s / 3600.0, 0, 0);
  } else if (stuck) {
    out->sev = CW_SEV_CRITICAL;
    out->value = night_s / 3600.0;
    out->threshold = cfg->night_stuck_s / 3600.0;
    cw_verdict_msg(out, "still drawing %.0f W after %.1f h of night charging, %.0f Wh delivered",
                   have_w ? r->w : 0.0, night_s / 3600.0, on->session_wh);
  } else if (forbidden) {
    out->sev = CW_SEV_WARNING;
    out->value = have_w ? r->w : 0;
    out->threshold = cfg->charging_w;
    out->unit = "W";
    cw_verdict_msg(out, "charging at a socket where charging is forbidden", 0, 0, 0);
  } else if (!pol->overnight_allowed && night_s >= cfg->night_min_s) {
    out->sev = CW_SEV_WARNING;
    out->value = night_s;
    out->threshold = cfg->night_min_s;
    out->unit = "s";
    cw_verdict_msg(out, "charging for %.0f min in the night window at a site that forbids it",
                   night_s / 60.0, 0, 0);
  } else if (dur_s > cfg->session_warn_s) {
    out->sev = CW_SEV_WARNING;
    out->value = dur_s / 3600.0;
    out->threshold = cfg->session_warn_s / 3600.0;
    cw_verdict_msg(out, "charging session running for %.1f h", dur_s / 3600.0, 0, 0);
  }
}
