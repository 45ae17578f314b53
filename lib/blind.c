/* blind.c - see blind.h. */
#include "blind.h"

#include <stdio.h>

void cw_blind_init(cw_blind_t *b, int64_t lag_ms, int64_t alert_ms, int64_t stall_ms,
                   int64_t now_ms) {
  *b = (cw_blind_t){.lag_ms = lag_ms, .alert_ms = alert_ms, .stall_ms = stall_ms};
  b->blind = true;
  b->why = CW_BLIND_DISCONNECTED;
  b->since_ms = now_ms;
}

int cw_blind_update(cw_blind_t *b, const cw_blind_obs_t *o, int64_t now_ms) {
  unsigned why = 0;
  if (!o->connected) why |= CW_BLIND_DISCONNECTED;
  /* readings kept arriving for lag_ms after the last live one */
  if (o->latest_recv_ms && o->latest_recv_ms - o->fresh_recv_ms > b->lag_ms)
    why |= CW_BLIND_LAGGING;
  if (o->stalled_ms >= b->stall_ms) why |= CW_BLIND_STALLED;
  int out = 0;
  bool blind = why != 0;
  if (blind != b->blind) {
    if (b->blind && now_ms - b->since_ms > b->longest_ms) b->longest_ms = now_ms - b->since_ms;
    b->blind = blind;
    b->since_ms = now_ms;
    out |= CW_BLIND_CHANGED;
    if (!blind && b->alerted) {
      b->alerted = false;
      out |= CW_BLIND_CLEAR;
    }
  }
  if (blind) b->why = why;
  if (blind && !b->alerted && now_ms - b->since_ms >= b->alert_ms) {
    b->alerted = true;
    out |= CW_BLIND_RAISE;
  }
  return out;
}

const char *cw_blind_why_name(unsigned why, char *buf, int cap) {
  static const char *names[] = {"disconnected", "lagging", "stalled"};
  int n = 0;
  if (cap > 0) buf[0] = 0;
  for (int i = 0; i < 3; i++)
    if ((why & (1u << i)) && n >= 0 && n < cap)
      n += snprintf(buf + n, (size_t)(cap - n), "%s%s", n ? "+" : "", names[i]);
  return why ? buf : "none";
}
