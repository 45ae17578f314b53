/* session.h - a finished charging session (table charging_sessions), as the
 * detection engine reports it, and its envelope for the alert path: a
 * session travels through the alert ring, the writer's alert queue and the
 * alert spool inside a cw_alert_event_t (same size, so the ring, queue and
 * spool record format carry it unchanged and it is spooled across a
 * database outage like an alert event). The envelope's kind is
 * CW_SESSION_KIND, outside the alert kinds; nothing but the store reads it. */
#ifndef CW_SESSION_H
#define CW_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "cw.h"

/* How a session ended (charging_sessions.end_reason). 1..7 are the
 * device's stop values (cw_stop_t, same numbers). */
typedef enum {
  CW_SEND_FULL = 1,
  CW_SEND_TIME,
  CW_SEND_MANUAL,
  CW_SEND_UNPLUGGED,
  CW_SEND_OVER_POWER,
  CW_SEND_OVER_TEMP,
  CW_SEND_SMOKE,
  CW_SEND_IDLE,    /* the socket stopped drawing: state idle, or w < charging_w for 2 min */
  CW_SEND_TIMEOUT, /* the socket went silent (offline threshold) mid-session */
  CW_SEND_RESTART, /* still open at the last checkpoint before the daemon stopped */
  CW_SEND__COUNT
} cw_session_end_t;

typedef struct cw_session {
  int64_t start_ms;  /* ts of the first charging reading */
  int64_t end_ms;    /* see docs/OPERATIONS.md "Charging sessions" */
  double energy_wh;
  float peak_w;      /* NAN: no power in any reading */
  float peak_t;      /* NAN: no temperature */
  uint32_t readings;
  uint8_t socket;
  uint8_t end;       /* cw_session_end_t */
  char station[CW_STATION_MAX + 1];
} cw_session_t;

#define CW_SESSION_KIND ((cw_kind_t)CW_KIND__COUNT)

const char *cw_session_end_name(unsigned end); /* "full" .. "restart"; "?" out of range */
void cw_session_wrap(const cw_session_t *s, cw_alert_event_t *ev);
/* true (and *s filled) when ev is a session envelope. */
bool cw_session_unwrap(const cw_alert_event_t *ev, cw_session_t *s);

#endif
