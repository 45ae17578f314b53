/* alert.c - alert lifecycle per (station, socket, kind). Hysteresis lives
 * here, not in the detectors: an alert clears only after its condition has
 * been absent for hold_s, and a raise within cooldown_s of the clear reopens
 * the same id (event "raised", state open), so a flapping signal makes one
 * alert, not hundreds. Severity only goes up while an alert is held. */
#include "alert.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if UINTPTR_MAX == 0xffffffffffffffffu
/* count was added in the struct's tail padding: spooled events keep their size. */
_Static_assert(sizeof(cw_alert_event_t) == 296, "cw_alert_event_t size changed");
#endif

int cw_alert_pool_init(cw_alert_pool_t *p, cw_alert_fn emit, cw_alert_id_fn next_id, void *ctx) {
  memset(p, 0, sizeof(*p));
  p->cap = 16;
  p->a = calloc(p->cap, sizeof(cw_alert_t));
  if (!p->a) return -ENOMEM;
  p->n = 1; /* a[0] is the "no alert" sentinel */
  p->emit = emit;
  p->next_id = next_id;
  p->ctx = ctx;
  return 0;
}

void cw_alert_pool_free(cw_alert_pool_t *p) {
  free(p->a);
  memset(p, 0, sizeof(*p));
}

static uint32_t take(cw_alert_pool_t *p) {
  uint32_t i;
  if (p->free_head) {
    i = p->free_head - 1;
    p->free_head = p->a[i].next_free;
  } else {
    if (p->n == p->cap) {
      uint32_t ncap = p->cap * 2;
      cw_alert_t *na = realloc(p->a, (size_t)ncap * sizeof(cw_alert_t));
      if (!na) return 0;
      p->a = na;
      p->cap = ncap;
    }
    i = p->n++;
  }
  memset(&p->a[i], 0, sizeof(p->a[i]));
  p->a[i].used = true;
  p->held++;
  return i;
}

void cw_alert_release(cw_alert_pool_t *p, uint32_t i) {
  cw_alert_t *a = &p->a[i];
  if (!a->used) return;
  if (a->active) p->active--;
  p->held--;
  memset(a, 0, sizeof(*a));
  a->next_free = p->free_head;
  p->free_head = i + 1;
}

/* Copy text, replacing control characters so every sink can print it raw. */
static void copy_clean(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < cap; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  dst[i] = '\0';
}

static void emit(cw_alert_pool_t *p, const cw_alert_t *a, const char *station, cw_event_t ev,
                 int64_t ts_ms, int64_t recv_ms, const char *by, const char *msg) {
  cw_alert_event_t e;
  memset(&e, 0, sizeof(e));
  e.id = a->id;
  e.ts_ms = ts_ms;
  e.recv_ms = recv_ms;
  e.value = a->value;
  e.threshold = a->threshold;
  e.kind = (cw_kind_t)a->kind;
  e.severity = (cw_severity_t)a->sev;
  e.event = ev;
  e.state = (cw_alert_state_t)a->state;
  e.socket = a->socket;
  e.count = a->count;
  copy_clean(e.station, sizeof(e.station), station);
  copy_clean(e.unit, sizeof(e.unit), a->unit);
  copy_clean(e.by, sizeof(e.by), by);
  copy_clean(e.message, sizeof(e.message), msg);
  if (p->emit) p->emit(p->ctx, &e);
}

/* v->fmt is always a string literal of detect_*.c taking only doubles
 * (cw_verdict_msg); unused trailing arguments are ignored by printf. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void verdict_text(const cw_verdict_t *v, char *out, size_t cap) {
  if (v->fmt)
    snprintf(out, cap, v->fmt, v->arg[0], v->arg[1], v->arg[2]);
  else
    out[0] = '\0';
}
#pragma GCC diagnostic pop

static void set_reading(cw_alert_t *a, const cw_verdict_t *v) {
  a->sev = (uint8_t)v->sev;
  a->value = v->value;
  a->threshold = v->threshold;
  copy_clean(a->unit, sizeof(a->unit), v->unit);
}

int cw_alert_apply(cw_alert_pool_t *p, uint32_t *slot, const char *station, uint32_t station_idx,
                   uint8_t socket, cw_kind_t kind, const cw_verdict_t *v, int64_t ts_ms,
                   int64_t recv_ms, double hold_s, double cooldown_s) {
  if (!v->known) return 0;
  cw_alert_t *a = *slot ? &p->a[*slot] : NULL;

  /* A cleared alert past its cool-down is forgotten (the database keeps it). */
  if (a && !a->active && (double)(ts_ms - a->cleared_ts) > cooldown_s * 1000.0) {
    cw_alert_release(p, *slot);
    *slot = 0;
    a = NULL;
  }

  if (a && a->restored && a->active) {
    /* First verdict since a restart. The detector's timers started empty
     * (10 s above rated_w, a confirmed session, a night run), so "absent"
     * now may only mean "not re-established yet": count the hold from here,
     * not from the alert's last event before the restart. */
    a->restored = false;
    if (v->sev == CW_SEV_NONE && ts_ms > a->last_seen) a->last_seen = ts_ms;
  }

  if (v->sev == CW_SEV_NONE) {
    if (a && a->active && (double)(ts_ms - a->last_seen) >= hold_s * 1000.0) {
      char msg[120];
      snprintf(msg, sizeof(msg), "condition absent for %.0f s",
               (double)(ts_ms - a->last_seen) / 1000.0);
      a->active = false;
      p->active--;
      a->cleared_ts = ts_ms;
      a->cleared_recv = recv_ms;
      if (a->state != CW_ALERT_ACKNOWLEDGED && a->state != CW_ALERT_RECTIFIED)
        a->state = CW_ALERT_CLEARED;
      emit(p, a, station, CW_EV_CLEARED, ts_ms, recv_ms, "", msg);
    }
    return 0;
  }

  if (!a) {
    uint32_t i = take(p);
    if (!i) return -ENOMEM;
    *slot = i;
    a = &p->a[i];
    a->id = p->next_id ? p->next_id(p->ctx) : (int64_t)i;
    a->station = station_idx;
    a->socket = socket;
    a->kind = (uint8_t)kind;
    a->state = CW_ALERT_OPEN;
    a->active = true;
    a->last_seen = ts_ms;
    a->count = 1;
    p->active++;
    set_reading(a, v);
    char msg[120];
    verdict_text(v, msg, sizeof(msg));
    emit(p, a, station, CW_EV_RAISED, ts_ms, recv_ms, "", msg);
    return 0;
  }

  if (!a->active) {
    /* Back within the cool-down: the same incident (a thermostat cycling an
     * iron, a plug that keeps dropping out). Reopen the same id and count the
     * repeat; operators were told once ("raised"), a repeat is "repeated". A
     * worse severity than before is still an escalation. */
    bool worse = v->sev > a->sev;
    a->active = true;
    p->active++;
    if (a->count < UINT32_MAX) a->count++;
    if (worse || (a->state != CW_ALERT_ACKNOWLEDGED && a->state != CW_ALERT_RECTIFIED))
      a->state = CW_ALERT_OPEN;
    a->last_seen = ts_ms;
    if (worse || v->sev == a->sev) set_reading(a, v);
    char msg[120];
    verdict_text(v, msg, sizeof(msg));
    emit(p, a, station, worse ? CW_EV_ESCALATED : CW_EV_REPEATED, ts_ms, recv_ms, "", msg);
    return 0;
  }

  a->last_seen = ts_ms;
  if (v->sev > a->sev) {
    set_reading(a, v);
    a->state = CW_ALERT_OPEN; /* a worse condition needs a fresh look, even if acknowledged */
    char msg[120];
    verdict_text(v, msg, sizeof(msg));
    emit(p, a, station, CW_EV_ESCALATED, ts_ms, recv_ms, "", msg);
  } else if (v->sev == a->sev && strcmp(a->unit, v->unit) == 0 && v->value > a->value) {
    a->value = v->value; /* keep the peak of the rule that set the severity; no event */
  }
  return 0;
}

int cw_alert_restore(cw_alert_pool_t *p, uint32_t *slot, uint32_t station_idx,
                     const cw_alert_event_t *ev) {
  if (ev->state == CW_ALERT_CLOSED || ev->severity == CW_SEV_NONE ||
      ev->severity > CW_SEV_CRITICAL || (unsigned)ev->kind >= CW_KIND__COUNT)
    return -EINVAL;
  if (!*slot) {
    uint32_t i = take(p);
    if (!i) return -ENOMEM;
    *slot = i;
  } else if (p->a[*slot].active) {
    p->active--;
  }
  cw_alert_t *a = &p->a[*slot];
  a->id = ev->id;
  a->station = station_idx;
  a->socket = ev->socket;
  a->kind = (uint8_t)ev->kind;
  a->sev = (uint8_t)ev->severity;
  a->state = (uint8_t)ev->state;
  a->count = ev->count ? ev->count : 1;
  a->value = isfinite(ev->value) ? ev->value : 0;
  a->threshold = isfinite(ev->threshold) ? ev->threshold : 0;
  copy_clean(a->unit, sizeof(a->unit), ev->unit);
  /* open/acknowledged: still present as of its last event; cleared: in cool-down */
  a->active = ev->state != CW_ALERT_CLEARED;
  a->restored = a->active;
  a->last_seen = ev->ts_ms;
  a->cleared_ts = ev->ts_ms;
  a->cleared_recv = ev->recv_ms ? ev->recv_ms : ev->ts_ms;
  if (a->active) p->active++;
  return 0;
}

uint32_t cw_alert_find(const cw_alert_pool_t *p, int64_t id) {
  for (uint32_t i = 1; i < p->n; i++)
    if (p->a[i].used && p->a[i].id == id) return i;
  return 0;
}

int cw_alert_operator(cw_alert_pool_t *p, uint32_t i, const char *station, cw_event_t action,
                      const char *by, const char *note, int64_t now_ms, bool *closed) {
  cw_alert_t *a = &p->a[i];
  char msg[160];
  char who[32];
  *closed = false;
  copy_clean(who, sizeof(who), by ? by : "");
  if (action == CW_EV_RECTIFIED) {
    if (a->state != CW_ALERT_ACKNOWLEDGED) return -EINVAL; /* registered first */
    a->state = CW_ALERT_RECTIFIED;
    snprintf(msg, sizeof(msg), "rectified by %s%s%.100s", who[0] ? who : "operator",
             note && note[0] ? ": " : "", note ? note : "");
    emit(p, a, station, CW_EV_RECTIFIED, now_ms, now_ms, who, msg);
    return 0;
  }
  if (action == CW_EV_ACKNOWLEDGED) {
    if (a->state == CW_ALERT_ACKNOWLEDGED || a->state == CW_ALERT_RECTIFIED) return -EINVAL;
    a->state = CW_ALERT_ACKNOWLEDGED;
    snprintf(msg, sizeof(msg), "acknowledged by %s", who[0] ? who : "operator");
    emit(p, a, station, CW_EV_ACKNOWLEDGED, now_ms, now_ms, who, msg);
    return 0;
  }
  if (action == CW_EV_CLOSED) {
    a->state = CW_ALERT_CLOSED;
    snprintf(msg, sizeof(msg), "closed by %s", who[0] ? who : "operator");
    emit(p, a, station, CW_EV_CLOSED, now_ms, now_ms, who, msg);
    cw_alert_release(p, i);
    *closed = true;
    return 0;
  }
  return -EINVAL;
}

void cw_alert_expire(cw_alert_pool_t *p, int64_t now_ms, double cooldown_s,
                     void (*drop)(void *ctx, const cw_alert_t *a), void *ctx) {
  if (p->held == p->active) return; /* nothing cleared: skip the scan */
  for (uint32_t i = 1; i < p->n; i++) {
    cw_alert_t *a = &p->a[i];
    if (!a->used || a->active) continue;
    if ((double)(now_ms - a->cleared_recv) > cooldown_s * 1000.0) {
      drop(ctx, a);
      cw_alert_release(p, i);
    }
  }
}
