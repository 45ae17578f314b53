/* detect_int.h - private to the detection engine (detect*.c): the engine
 * struct and the detector entry points. Each detector reads one reading and
 * the socket's state, updates that state, and returns a verdict; the facade
 * (detect.c) hands verdicts to the alert state machine (alert.c). */
#ifndef CW_DETECT_INT_H
#define CW_DETECT_INT_H

#include "alert.h"
#include "detect.h"
#include "socket_table.h"

struct cw_engine {
  cw_detect_cfg_t cfg;
  cw_sock_table_t tab;
  cw_alert_pool_t alerts;
  cw_sensor_fn on_sensor;
  void *sensor_ctx;
  uint64_t sensor_events;
  size_t sensor_suspect;
  /* cw_engine_set_blind: while blind the offline sweep judges nothing;
   * afterwards a socket's silence counts from max(last receive, resume_ms). */
  bool blind;
  int64_t resume_ms;
  cw_session_fn on_session;
  void *session_ctx;
  int64_t next_ckpt_ms; /* next checkpoint of open sessions (receive time); 0 = not yet set */
};

/* What the thermal detector needs to know beyond the socket's own reading.
 * The neighbours are looked at only when the socket's own temperature rises
 * (cw__therm_neighbours), so a quiet reading costs no walk of its station. */
typedef struct cw_therm_ctx {
  const struct cw_engine *e;
  const cw_station_t *st;
  const cw_sock_t *self;
  bool looked;      /* neighbour fields filled */
  bool no_current;  /* the reading shows the socket is not charging (w or a ~ 0) */
  bool corroborated;/* a neighbour's thermal alert, hot ambient, or a power cut */
  bool neighbour;   /* a neighbour socket holds a thermal alert */
  bool neighbour_crit;
  bool sensor_event;/* out: an unconfirmed rise ended: a sensor event */
  float step_from;  /* out: its temperatures */
  float step_to;
} cw_therm_ctx_t;

/* Fill cx's neighbour fields (once per reading). */
void cw__therm_neighbours(cw_therm_ctx_t *cx);

/* Event-time detectors, run in this order by cw_engine_process. */
void cw__thermal_eval(const cw_detect_cfg_t *cfg, cw_sock_t *s, const cw_reading_t *r,
                      cw_therm_ctx_t *cx, cw_verdict_t *out);
void cw__thermal_reset(cw_thermal_state_t *th);
/* prev_ts: the socket's previous reading ts (0 = none), for the run timers. */
void cw__overload_eval(const cw_detect_cfg_t *cfg, const cw_station_policy_t *pol, cw_sock_t *s,
                       const cw_reading_t *r, int64_t prev_ts, cw_verdict_t *out);
/* Station sum of the latest w of its sockets against breaker_w (socket 0). */
void cw__overload_station_eval(const cw_detect_cfg_t *cfg, const cw_station_t *st,
                               cw_verdict_t *out);
/* prev_ts: the socket's previous reading ts (0 = none), for the session energy. */
void cw__overnight_eval(const cw_detect_cfg_t *cfg, const cw_station_policy_t *pol, cw_sock_t *s,
                        const cw_reading_t *r, int64_t prev_ts, cw_verdict_t *out);

/* Charging session records (detect_session.c). After cw__overnight_eval:
 * start0/low0 are the overnight session's start and low_off before it. */
void cw__session_step(cw_engine_t *e, const cw_station_t *st, cw_sock_t *s, const cw_reading_t *r,
                      int64_t prev_ts, int64_t start0, int32_t low0);
/* The socket went overdue (silent past its offline threshold). */
void cw__session_timeout(cw_engine_t *e, const cw_station_t *st, cw_sock_t *s);
void cw__session_checkpoint(cw_engine_t *e, int64_t now_ms);

/* Receive-time bookkeeping for offline, called for each accepted reading.
 * resume_ms: the end of the engine's last blind spell (0 = none); a gap
 * that spans it says nothing about the socket's cadence. */
void cw__offline_seen(const cw_detect_cfg_t *cfg, cw_station_t *st, cw_sock_t *s, int64_t recv_ms,
                      int64_t resume_ms);
/* Offline threshold of a socket in ms (offline_factor x EWMA gap, >= offline_min_s). */
int64_t cw__offline_threshold_ms(const cw_detect_cfg_t *cfg, const cw_sock_t *s);
/* Sweep one station on receive time: station-silent and per-socket offline. 0 or -ENOMEM. */
int cw__offline_sweep_station(cw_engine_t *e, uint32_t station_idx, int64_t now_ms);

#endif
