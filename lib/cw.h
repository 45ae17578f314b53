/* cw.h - types shared by every chargewatch module: one telemetry reading,
 * the reject reasons, and alert kinds/severities/events. Pure data, no I/O. */
#ifndef CW_H
#define CW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_VERSION "0.1.0"
#define CW_STATION_MAX 32 /* [A-Za-z0-9_-]{1,32} (docs/ARCHITECTURE.md section 7) */

/* Which optional fields a reading carries (cw_reading_t.have). */
enum {
  CW_HAVE_V = 1 << 0,
  CW_HAVE_A = 1 << 1,
  CW_HAVE_W = 1 << 2,
  CW_HAVE_WH = 1 << 3,
  CW_HAVE_T = 1 << 4,
  CW_HAVE_T_AMB = 1 << 5,
  CW_HAVE_SMOKE = 1 << 6,
  CW_HAVE_STATE = 1 << 7,
  CW_HAVE_STOP = 1 << 8,
};
/* Fields that count as "a measurement" (a reading needs at least one). */
#define CW_HAVE_MEASUREMENT \
  (CW_HAVE_V | CW_HAVE_A | CW_HAVE_W | CW_HAVE_WH | CW_HAVE_T | CW_HAVE_T_AMB | CW_HAVE_SMOKE)

/* Stored as smallint in readings.state: keep the numbers stable. */
typedef enum {
  CW_STATE_IDLE = 0,
  CW_STATE_CHARGING = 1,
  CW_STATE_FULL = 2,
  CW_STATE_FAULT = 3,
} cw_charge_state_t;

/* `stop` on a session's last reading; the last three are device-side trips. */
typedef enum {
  CW_STOP_NONE = 0,
  CW_STOP_FULL,
  CW_STOP_TIME,
  CW_STOP_MANUAL,
  CW_STOP_UNPLUGGED,
  CW_STOP_OVER_POWER,
  CW_STOP_OVER_TEMP,
  CW_STOP_SMOKE,
} cw_stop_t;

/* One validated reading. Stored by value in rings (no pointers). */
typedef struct cw_reading {
  int64_t ts_ms; /* event time, ms since Unix epoch */
  double wh;     /* cumulative Wh */
  float v, a, w; /* volts, amps, watts */
  float t, t_amb;/* socket / ambient temperature, deg C */
  uint16_t have; /* CW_HAVE_* bits: which fields are present */
  uint8_t socket;/* 1..255 */
  int8_t smoke;  /* 0/1 when CW_HAVE_SMOKE */
  int8_t state;  /* cw_charge_state_t when CW_HAVE_STATE */
  int8_t stop;   /* cw_stop_t when CW_HAVE_STOP */
  char station[CW_STATION_MAX + 1];
} cw_reading_t;

/* Why an input was rejected. The string names (cw_reject_name) are a
 * contract: they are metric labels and dead-letter reasons. Append only. */
typedef enum {
  CW_REJ_OK = 0,
  CW_REJ_BAD_TOPIC,      /* "bad_topic": topic matches no pattern / bad station or socket */
  CW_REJ_EMPTY,          /* "empty": zero-length payload */
  CW_REJ_OVERSIZE,       /* "oversize": payload over max_payload */
  CW_REJ_INVALID_JSON,   /* "invalid_json": not strict RFC 8259 JSON (incl. raw control chars, NUL) */
  CW_REJ_NOT_OBJECT,     /* "not_object": top level / array element is not an object */
  CW_REJ_MISSING_TS,     /* "missing_ts" */
  CW_REJ_WRONG_TYPE,     /* "wrong_type": a known field has the wrong JSON type */
  CW_REJ_NON_FINITE,     /* "non_finite": NaN/inf (e.g. 1e999) */
  CW_REJ_OUT_OF_RANGE,   /* "out_of_range": outside physical range */
  CW_REJ_NO_MEASUREMENT, /* "no_measurement": only ts (and state/stop) */
  CW_REJ_BAD_SOCKET,     /* "bad_socket": station array element without a valid socket, or mismatch */
  CW_REJ_FUTURE_TS,      /* "future_ts": ts more than max_future ahead of receive time */
  CW_REJ_TOO_OLD,        /* "too_old": ts older than max_age */
  CW_REJ_DUPLICATE,      /* "duplicate": ts not after the socket's last stored ts */
  CW_REJ_DB_REJECTED,    /* "db_rejected": PostgreSQL refused the row for its content */
  CW_REJ__COUNT
} cw_reject_t;

const char *cw_reject_name(cw_reject_t why); /* static string; "unknown" if out of range */

typedef enum {
  CW_KIND_THERMAL_RUNAWAY = 0,
  CW_KIND_OVERLOAD,
  CW_KIND_OVERNIGHT_CHARGING,
  CW_KIND_OFFLINE,
  CW_KIND_INGEST, /* the daemon itself cannot see (station "_daemon", socket 0): never an engine's */
  CW_KIND__COUNT
} cw_kind_t;
#define CW_KIND__ENGINE CW_KIND_INGEST /* kinds a detection engine raises: [0, CW_KIND__ENGINE) */
const char *cw_kind_name(cw_kind_t k);          /* "thermal_runaway", ... */
int cw_kind_parse(const char *s, cw_kind_t *out);/* 0 or -EINVAL */

typedef enum { CW_SEV_NONE = 0, CW_SEV_WARNING = 1, CW_SEV_CRITICAL = 2 } cw_severity_t;
const char *cw_severity_name(cw_severity_t s); /* "none", "warning", "critical" */

typedef enum {
  CW_EV_RAISED = 0,
  CW_EV_ESCALATED,
  CW_EV_CLEARED,
  CW_EV_ACKNOWLEDGED,
  CW_EV_CLOSED,
  /* Appended (the names are stored): the condition came back within the
   * cool-down of the same alert (count + 1, not re-announced as raised), and
   * an operator's "rectified" between acknowledged and closed. */
  CW_EV_REPEATED,
  CW_EV_RECTIFIED,
} cw_event_t;
const char *cw_event_name(cw_event_t e); /* "raised", "escalated", ... */

typedef enum {
  CW_ALERT_OPEN = 0,
  CW_ALERT_CLEARED,
  CW_ALERT_ACKNOWLEDGED,
  CW_ALERT_CLOSED,
  CW_ALERT_RECTIFIED, /* appended: acknowledged, then rectified on site */
} cw_alert_state_t;
const char *cw_alert_state_name(cw_alert_state_t s); /* "open", "cleared", ... */

/* One alert lifecycle event, by value (travels through the alert ring).
 * socket 0 means the whole station (station breaker sum, station silent). */
typedef struct cw_alert_event {
  int64_t id;      /* alert id, unique across restarts (see cw_engine id callback) */
  int64_t ts_ms;   /* event time: reading ts; receive time for offline */
  int64_t recv_ms; /* receive time of the reading that caused it (latency) */
  double value;    /* measured value (peak so far for escalations) */
  double threshold;
  cw_kind_t kind;
  cw_severity_t severity;
  cw_event_t event;
  cw_alert_state_t state; /* state after this event */
  uint8_t socket;
  char station[CW_STATION_MAX + 1];
  char unit[8];      /* "C", "C/s", "C/min", "W", "s", "h" */
  char by[32];       /* operator for acknowledged/closed, else "" */
  char message[160]; /* human text, no control characters */
  uint32_t count;    /* times the condition was raised within this alert (1 + repeats);
                      * sits in what was tail padding */
  char ref[16];      /* short reference "A-MMDD-NNNN" (lib/alert_ref.h), "" if none.
                      * Appended: the struct grew from 296 to 312 bytes; an alert
                      * spool record of 296-byte events is read with ref "" */
} cw_alert_event_t;

/* The operator's note of a rectified event, whose message is "rectified by
 * <by>: <note>" (lib/alert.c); NULL for other events or without a note.
 * Points into ev->message. */
const char *cw_alert_event_note(const cw_alert_event_t *ev);

/* Station name check: [A-Za-z0-9_-]{1,32}. */
bool cw_station_valid(const char *s, size_t len);

#endif
