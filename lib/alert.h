/* alert.h - the alert state machine of one detection engine: one alert per
 * (station, socket, kind), raised -> escalated -> cleared (after a hold time)
 * -> acknowledged -> rectified -> closed by an operator, with re-raises
 * inside a cool-down merged into the same id: one "raised" event per
 * incident, each repeat a "repeated" event that only bumps count.
 * Detectors hand it a verdict per reading; it turns verdicts into
 * cw_alert_event_t events. Single-threaded. */
#ifndef CW_ALERT_H
#define CW_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "cw.h"
#include "detect.h"

/* What a detector concluded from one reading (or one sweep). */
typedef struct cw_verdict {
  bool known;           /* false: the reading says nothing about this kind (no update) */
  cw_severity_t sev;    /* CW_SEV_NONE: condition absent */
  double value, threshold;
  const char *unit;     /* static string */
  /* Human text, built only when an event is emitted (most readings that
   * keep an alert open emit nothing): a static printf format taking up to
   * three doubles, no control characters. */
  const char *fmt;
  double arg[3];
} cw_verdict_t;

static inline void cw_verdict_msg(cw_verdict_t *v, const char *fmt, double a0, double a1,
                                  double a2) {
  v->fmt = fmt;
  v->arg[0] = a0;
  v->arg[1] = a1;
  v->arg[2] = a2;
}

typedef struct cw_alert {
  int64_t id;
  int64_t last_seen;    /* event time the condition was last present */
  int64_t cleared_ts;   /* event time of the clear (cool-down start) */
  int64_t cleared_recv; /* receive time of the clear (sweep frees on this clock) */
  double value, threshold;
  uint32_t station;     /* owner: station index, socket (0 = station), kind */
  uint32_t next_free;   /* free list (index + 1) */
  uint32_t count;       /* raises within this alert: 1 + repeats inside the cool-down */
  uint8_t socket;
  uint8_t kind;
  uint8_t sev;
  uint8_t state;        /* cw_alert_state_t */
  bool active;          /* condition present (not cleared) */
  bool used;
  bool restored;        /* restored active; its hold starts at the first verdict */
  char unit[8];
} cw_alert_t;

typedef struct cw_alert_pool {
  cw_alert_t *a;        /* a[0] unused: index 0 means "no alert" */
  uint32_t n, cap;      /* entries in use incl. a[0] / allocated */
  uint32_t free_head;   /* index + 1 of a free entry; 0 = none */
  size_t active;        /* alerts with the condition present */
  size_t held;          /* alerts held (active or cleared in cool-down) */
  cw_alert_fn emit;
  cw_alert_id_fn next_id;
  void *ctx;
} cw_alert_pool_t;

int cw_alert_pool_init(cw_alert_pool_t *p, cw_alert_fn emit, cw_alert_id_fn next_id, void *ctx);
void cw_alert_pool_free(cw_alert_pool_t *p);

/* Apply a verdict taken at event time ts_ms to the alert in *slot (0 = none;
 * updated in place). hold_s: absent this long -> cleared; cooldown_s: a raise
 * within this of the clear reopens the same id. 0 or -ENOMEM. */
int cw_alert_apply(cw_alert_pool_t *p, uint32_t *slot, const char *station, uint32_t station_idx,
                   uint8_t socket, cw_kind_t kind, const cw_verdict_t *v, int64_t ts_ms,
                   int64_t recv_ms, double hold_s, double cooldown_s);

/* Put back an alert from before a restart (see cw_engine_restore_alert). */
int cw_alert_restore(cw_alert_pool_t *p, uint32_t *slot, uint32_t station_idx,
                     const cw_alert_event_t *ev);

/* Index of the held alert with this id, or 0. */
uint32_t cw_alert_find(const cw_alert_pool_t *p, int64_t id);

/* Operator action (ACKNOWLEDGED / RECTIFIED / CLOSED) on the alert at index
 * i; note (may be NULL) goes into the event message. RECTIFIED needs the
 * alert acknowledged first (found -> registered -> rectified -> closed). On
 * close the entry is freed and *closed is set: the caller zeroes the owner's
 * slot. 0 or -EINVAL. */
int cw_alert_operator(cw_alert_pool_t *p, uint32_t i, const char *station, cw_event_t action,
                      const char *by, const char *note, int64_t now_ms, bool *closed);

/* Drop alerts cleared longer than cooldown_s ago (receive time). For each
 * dropped one, drop(ctx, alert) is called first so the owner zeroes its slot. */
void cw_alert_expire(cw_alert_pool_t *p, int64_t now_ms, double cooldown_s,
                     void (*drop)(void *ctx, const cw_alert_t *a), void *ctx);

/* Release an entry (owner slot already forgotten). */
void cw_alert_release(cw_alert_pool_t *p, uint32_t i);

#endif
