/* blind.h - whether the daemon can see its stations (pure, no I/O).
 * Silence is evidence only while the ingest client is connected, caught up
 * and not back-pressured. Caught up: among the readings received over the
 * last lag_ms at least one was received within lag_ms of its own ts (a
 * session backlog being replayed after a reconnect or a restart is all
 * old; one station with a slow clock among live ones is not). The caller
 * feeds observations every tick and acts on the result: tell the detection
 * engines (cw_engine_set_blind) on a change, raise the daemon-level
 * `ingest` alert once the blind spell has lasted alert_ms, clear it when
 * sighted again. */
#ifndef CW_BLIND_H
#define CW_BLIND_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  CW_BLIND_NONE = 0,
  CW_BLIND_DISCONNECTED = 1, /* the ingest client is not connected */
  CW_BLIND_LAGGING = 2,      /* replaying a backlog: readings arrive, none live */
  CW_BLIND_STALLED = 4,      /* a delivery has waited on a full ring for stall_ms */
} cw_blind_why_t;

typedef struct cw_blind_obs {
  bool connected;
  int64_t latest_recv_ms; /* receive time of the newest accepted reading (0 = none) */
  int64_t fresh_recv_ms;  /* receive time of the newest one received within lag_ms of its ts */
  int64_t stalled_ms;     /* how long the current delivery has waited (0 = none) */
} cw_blind_obs_t;

typedef struct cw_blind {
  int64_t lag_ms, alert_ms, stall_ms; /* configuration */
  bool blind;
  unsigned why;      /* cw_blind_why_t bits while blind */
  int64_t since_ms;  /* start of the current state */
  bool alerted;      /* the ingest alert is raised */
  int64_t longest_ms;/* longest blind spell so far (for the log) */
} cw_blind_t;

/* Starts blind (not connected yet) since now_ms. */
void cw_blind_init(cw_blind_t *b, int64_t lag_ms, int64_t alert_ms, int64_t stall_ms,
                   int64_t now_ms);

enum {
  CW_BLIND_CHANGED = 1, /* b->blind flipped: tell the engines */
  CW_BLIND_RAISE = 2,   /* raise the ingest alert (once per spell) */
  CW_BLIND_CLEAR = 4,   /* clear it: sighted again */
};
/* One tick. Returns CW_BLIND_* bits. */
int cw_blind_update(cw_blind_t *b, const cw_blind_obs_t *o, int64_t now_ms);
/* "disconnected", "lagging", "stalled", "disconnected+lagging", ... or "none". */
const char *cw_blind_why_name(unsigned why, char *buf, int cap);

#endif
