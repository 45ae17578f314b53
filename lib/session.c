/* session.c - names and the alert-path envelope of charging sessions (session.h). */
#include "session.h"

#include <string.h>

_Static_assert(sizeof(cw_session_t) <= sizeof(((cw_alert_event_t *)0)->message),
               "a session fits in the envelope's message field");

static const char *const end_names[CW_SEND__COUNT] = {
    [CW_SEND_FULL] = "full",           [CW_SEND_TIME] = "time",
    [CW_SEND_MANUAL] = "manual",       [CW_SEND_UNPLUGGED] = "unplugged",
    [CW_SEND_OVER_POWER] = "over_power", [CW_SEND_OVER_TEMP] = "over_temp",
    [CW_SEND_SMOKE] = "smoke",         [CW_SEND_IDLE] = "idle",
    [CW_SEND_TIMEOUT] = "timeout",     [CW_SEND_RESTART] = "restart"};

const char *cw_session_end_name(unsigned end) {
  return end < CW_SEND__COUNT && end_names[end] ? end_names[end] : "?";
}

void cw_session_wrap(const cw_session_t *s, cw_alert_event_t *ev) {
  memset(ev, 0, sizeof *ev);
  ev->kind = CW_SESSION_KIND;
  ev->socket = s->socket;
  ev->ts_ms = s->end_ms;
  ev->recv_ms = s->end_ms;
  memcpy(ev->station, s->station, sizeof ev->station);
  memcpy(ev->message, s, sizeof *s);
}

bool cw_session_unwrap(const cw_alert_event_t *ev, cw_session_t *s) {
  if (ev->kind != CW_SESSION_KIND) return false;
  memcpy(s, ev->message, sizeof *s);
  s->station[CW_STATION_MAX] = '\0';
  return true;
}
