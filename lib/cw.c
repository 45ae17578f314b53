/* cw.c - the stable names of the shared enums (reject reasons, alert kinds,
 * severities, events, states) and the station name check. The strings are a
 * contract: metric labels, dead-letter reasons, alert JSON and database
 * values all use them, so entries are appended, never renamed. */
#include <errno.h>
#include <string.h>

#include "cw.h"

static const char *const reject_names[CW_REJ__COUNT] = {
    [CW_REJ_OK] = "ok",
    [CW_REJ_BAD_TOPIC] = "bad_topic",
    [CW_REJ_EMPTY] = "empty",
    [CW_REJ_OVERSIZE] = "oversize",
    [CW_REJ_INVALID_JSON] = "invalid_json",
    [CW_REJ_NOT_OBJECT] = "not_object",
    [CW_REJ_MISSING_TS] = "missing_ts",
    [CW_REJ_WRONG_TYPE] = "wrong_type",
    [CW_REJ_NON_FINITE] = "non_finite",
    [CW_REJ_OUT_OF_RANGE] = "out_of_range",
    [CW_REJ_NO_MEASUREMENT] = "no_measurement",
    [CW_REJ_BAD_SOCKET] = "bad_socket",
    [CW_REJ_FUTURE_TS] = "future_ts",
    [CW_REJ_TOO_OLD] = "too_old",
    [CW_REJ_DUPLICATE] = "duplicate",
    [CW_REJ_DB_REJECTED] = "db_rejected",
};

const char *cw_reject_name(cw_reject_t why) {
  /* Compare as unsigned so a negative value from a corrupt record is "unknown". */
  if ((unsigned)why >= (unsigned)CW_REJ__COUNT || !reject_names[why]) return "unknown";
  return reject_names[why];
}

static const char *const kind_names[CW_KIND__COUNT] = {
    [CW_KIND_THERMAL_RUNAWAY] = "thermal_runaway",
    [CW_KIND_OVERLOAD] = "overload",
    [CW_KIND_OVERNIGHT_CHARGING] = "overnight_charging",
    [CW_KIND_OFFLINE] = "offline",
    [CW_KIND_INGEST] = "ingest",
};

const char *cw_kind_name(cw_kind_t k) {
  if ((unsigned)k >= (unsigned)CW_KIND__COUNT) return "unknown";
  return kind_names[k];
}

int cw_kind_parse(const char *s, cw_kind_t *out) {
  if (!s) return -EINVAL;
  for (int k = 0; k < CW_KIND__COUNT; k++) {
    if (strcmp(s, kind_names[k]) == 0) {
      if (out) *out = (cw_kind_t)k;
      return 0;
    }
  }
  return -EINVAL;
}

const char *cw_severity_name(cw_severity_t s) {
  switch (s) {
  case CW_SEV_NONE: return "none";
  case CW_SEV_WARNING: return "warning";
  case CW_SEV_CRITICAL: return "critical";
  }
  return "unknown";
}

const char *cw_event_name(cw_event_t e) {
  switch (e) {
  case CW_EV_RAISED: return "raised";
  case CW_EV_ESCALATED: return "escalated";
  case CW_EV_CLEARED: return "cleared";
  case CW_EV_ACKNOWLEDGED: return "acknowledged";
  case CW_EV_CLOSED: return "closed";
  case CW_EV_REPEATED: return "repeated";
  case CW_EV_RECTIFIED: return "rectified";
  }
  return "unknown";
}

const char *cw_alert_state_name(cw_alert_state_t s) {
  switch (s) {
  case CW_ALERT_OPEN: return "open";
  case CW_ALERT_CLEARED: return "cleared";
  case CW_ALERT_ACKNOWLEDGED: return "acknowledged";
  case CW_ALERT_CLOSED: return "closed";
  case CW_ALERT_RECTIFIED: return "rectified";
  }
  return "unknown";
}

const char *cw_alert_event_note(const cw_alert_event_t *ev) {
  static const char pre[] = "rectified by ";
  const char *who = ev->by[0] ? ev->by : "operator";
  size_t np = sizeof pre - 1, nw = strnlen(who, sizeof ev->by);
  if (ev->event != CW_EV_RECTIFIED || strncmp(ev->message, pre, np) ||
      strncmp(ev->message + np, who, nw) || strncmp(ev->message + np + nw, ": ", 2))
    return NULL;
  const char *note = ev->message + np + nw + 2;
  return note[0] ? note : NULL;
}

/* [A-Za-z0-9_-]{1,32} (docs/ARCHITECTURE.md section 7). The set is deliberately narrow:
 * the station code goes into MQTT topics, file names of logs and SQL values,
 * and none of those then needs escaping. */
bool cw_station_valid(const char *s, size_t len) {
  if (!s || len == 0 || len > CW_STATION_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-'))
      return false;
  }
  return true;
}
