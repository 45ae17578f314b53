/* detect.h - the detection engine: per-socket state (socket_table.c), the
 * four detectors (detect_*.c) and the alert state machine (alert.c) behind
 * one facade. Pure and single-threaded: one engine per worker thread, which
 * owns every socket of the stations routed to it (routing is by station so
 * that station sums and "whole station silent" need no locks). */
#ifndef CW_DETECT_H
#define CW_DETECT_H

#include "cw.h"
#include "session.h"

/* Thresholds. Defaults (cw_detect_cfg_defaults) follow docs/DETECTORS.md;
 * each default's source is cited in detect.c / docs/DETECTORS.md. Config file
 * keys in [detectors] have exactly these field names. */
typedef struct cw_detect_cfg {
  /* thermal_runaway */
  double thermal_warn_c;          /* 60: t >= this -> warning */
  double thermal_crit_c;          /* 90: t >= this -> critical */
  double thermal_rise_warn_c_min; /* 2.0 C/min over thermal_rise_window_s ... */
  double thermal_rise_window_s;   /* 60 */
  int thermal_rise_warn_count;    /* ... twice in a row -> warning */
  double thermal_rate_crit_c_s;   /* 1.0 C/s ... */
  double thermal_rate_crit_s;     /* ... for >= 3 s -> critical (GB 38031 C.5.3.7) */
  /* overload */
  double overload_tamper_w;   /* 700 W (when neither socket nor station sets charge_max_w) ... */
  double overload_tamper_s;   /* ... for >= 300 s -> warning */
  double overload_rated_s;    /* w > rated_w for >= 10 s -> critical */
  double overload_station_frac; /* 0.8: station sum > frac * breaker_w -> warning */
  double default_rated_w;     /* 1000 */
  /* overnight_charging */
  double charging_w;          /* 15: w >= this means charging */
  double night_min_s;         /* 300: charging in the night window for >= this */
  double session_warn_s;      /* 8 h */
  double session_crit_s;      /* 12 h */
  double night_stuck_s;       /* 6 h in the night window still > charging_w -> critical */
  /* offline (receive time) */
  double offline_factor;      /* 3 x observed interval ... */
  double offline_min_s;       /* ... but at least 90 s */
  /* alert lifecycle */
  double hold_s;              /* 60: condition absent this long -> cleared */
  double cooldown_s;          /* 300: re-raise within this merges into the cleared alert */
  /* Added after the first release (appended: existing keys unchanged). */
  double night_stuck_wh;      /* 2000: "still drawing" at night_stuck_s needs this much energy */
  double offline_max_s;       /* 1800: ceiling of any socket's silence threshold */
  double offline_quiet_s;     /* 900: silence allowed to a metering socket of unlearned or
                               * irregular cadence (report-on-change plugs) */
  double thermal_confirm_s;   /* 120: a rise with no current and no corroboration must go on
                               * this long before it is a warning (else a sensor event) */
  double thermal_fusion_rise_c_min; /* 1.0: own rise that a neighbour alert escalates */
  double thermal_ambient_c;   /* 54: ambient this hot corroborates a rise (EN 54-5 class A1) */
  double session_checkpoint_s;/* 300: open charging sessions are written (as restart) this often;
                               * 0 = never (see lib/detect_session.c) */
} cw_detect_cfg_t;

void cw_detect_cfg_defaults(cw_detect_cfg_t *cfg);
/* Set one threshold by its field name from a string. Returns 0, -ENOENT
 * (unknown key) or -EINVAL (not a finite number / out of sane range). */
int cw_detect_cfg_set(cw_detect_cfg_t *cfg, const char *key, const char *value);

typedef enum {
  CW_SITE_OUTDOOR = 0,
  CW_SITE_INDOOR,
  CW_SITE_GROUND_FLOOR,
  CW_SITE_BASEMENT,
} cw_site_type_t;

/* Per-station policy (table stations). Defaults: utc_offset_min 480,
 * night 22:00-06:00, overnight_allowed true, breaker_w 0 (unknown: no sum check). */
typedef struct cw_station_policy {
  int utc_offset_min;
  int night_start_min; /* minutes after local midnight */
  int night_end_min;
  bool overnight_allowed;
  double breaker_w;
  cw_site_type_t site_type;
  double charge_max_w; /* added: highest legitimate charger draw at this station; 0 = cfg */
} cw_station_policy_t;
void cw_station_policy_defaults(cw_station_policy_t *p);

/* Per-socket policy (table sockets). Defaults: rated_w 0 (= cfg default_rated_w),
 * not forbidden, charge_max_w 0 (= the station's, else cfg overload_tamper_w). */
typedef struct cw_socket_policy {
  double rated_w;
  bool forbidden;
  double charge_max_w; /* added: above this for overload_tamper_s -> overload warning */
} cw_socket_policy_t;

typedef struct cw_engine cw_engine_t;

/* Sink for every alert event; called synchronously from process/sweep/operator. */
typedef void (*cw_alert_fn)(void *ctx, const cw_alert_event_t *ev);
/* Allocates a new alert id (unique across restarts; the daemon seeds it). */
typedef int64_t (*cw_alert_id_fn)(void *ctx);

/* Writes a new alert's short reference (lib/alert_ref.h) for a raise at
 * now_ms into out; returns its length or a negative errno (no reference). */
typedef int (*cw_alert_ref_fn)(void *ctx, int64_t now_ms, char *out, size_t cap);

/* cfg is copied. Returns NULL on ENOMEM. */
cw_engine_t *cw_engine_new(const cw_detect_cfg_t *cfg, cw_alert_fn on_alert,
                           cw_alert_id_fn next_id, void *ctx);
void cw_engine_free(cw_engine_t *e);
void cw_engine_set_cfg(cw_engine_t *e, const cw_detect_cfg_t *cfg); /* reload */

/* Policies (from the database, at start and on SIGHUP). Copied. 0 or -ENOMEM. */
int cw_engine_set_station(cw_engine_t *e, const char *station, const cw_station_policy_t *p);
int cw_engine_set_socket(cw_engine_t *e, const char *station, uint8_t socket,
                         const cw_socket_policy_t *p);

/* Restart state: last stored ts per socket, and alerts still open/cleared-in-cooldown
 * (ev->event ignored; id, kind, severity, state, station, socket, ts_ms, value used). */
int cw_engine_restore_last_ts(cw_engine_t *e, const char *station, uint8_t socket, int64_t ts_ms);
int cw_engine_restore_alert(cw_engine_t *e, const cw_alert_event_t *ev);
/* Forget what the readings taught: held alerts (no event), open charging
 * sessions (not written), the detectors' and the offline state, the last
 * ts; keep the stations, their sockets and every policy. For stations
 * another process watches now (a shard given away) or watched meanwhile (a
 * shard taken back): what this engine still holds may have been cleared,
 * closed or superseded there; the restore from the database that follows a
 * take-back brings the truth. */
void cw_engine_forget(cw_engine_t *e);

/* Run one validated reading through socket state and the detector chain.
 * recv_ms is the receive time (for offline). Returns CW_REJ_OK, or
 * CW_REJ_DUPLICATE when ts_ms is not after the socket's last accepted ts
 * (state unchanged, no alert), or CW_REJ__COUNT when there is no memory for
 * a new socket's state (not a reject: the reading is valid, detection skipped). */
cw_reject_t cw_engine_process(cw_engine_t *e, const cw_reading_t *r, int64_t recv_ms);

/* Periodic (e.g. every 1 s) on receive time: offline detection and clearing of
 * offline alerts' hold timers. */
void cw_engine_sweep(cw_engine_t *e, int64_t now_ms);
/* The caller cannot see (ingest disconnected, replaying a backlog, back-
 * pressured): silence is no evidence. While blind the sweep judges no
 * station silent and clears no offline alert; once sighted again a socket
 * not heard since counts its silence from now_ms, and its station's state
 * is unknown (neither raised nor cleared) until that runs out. O(1). */
void cw_engine_set_blind(cw_engine_t *e, bool blind, int64_t now_ms);

/* Operator action on an alert by id: CW_EV_ACKNOWLEDGED, CW_EV_RECTIFIED
 * (only after acknowledged; no note) or CW_EV_CLOSED. Emits the event
 * through on_alert. Returns 0, -ENOENT (id not held by this engine) or
 * -EINVAL (bad transition). */
int cw_engine_operator(cw_engine_t *e, int64_t alert_id, cw_event_t action, const char *by,
                       int64_t now_ms);
/* "rectified" with the operator's note (the event message is
 * "rectified by <by>: <note>", note cut at 100 bytes). Same returns. */
int cw_engine_rectify(cw_engine_t *e, int64_t alert_id, const char *by, const char *note,
                      int64_t now_ms);

/* Sensor events: a temperature step with no continuation, no current and no
 * corroborating signal (not an alert). The callback (may be NULL) is called
 * synchronously from cw_engine_process; from..to is the step in deg C. */
typedef void (*cw_sensor_fn)(void *ctx, const char *station, uint8_t socket, int64_t ts_ms,
                             double from_c, double to_c);
void cw_engine_on_sensor(cw_engine_t *e, cw_sensor_fn fn, void *ctx);
/* Charging sessions (lib/session.h) as they end, and open ones at each
 * checkpoint; called synchronously from process/sweep. NULL: none. */
typedef void (*cw_session_fn)(void *ctx, const cw_session_t *s);
void cw_engine_on_session(cw_engine_t *e, cw_session_fn fn, void *ctx);
/* Every open session now, as restart ended at its last reading (what the
 * periodic checkpoint writes): a clean stop calls it once after the last
 * reading, so the stored row holds every reading the daemon took. */
void cw_engine_write_open_sessions(cw_engine_t *e);
/* References for new alerts (called with the engine's ctx; NULL: none).
 * Every event of the alert carries it; restored alerts keep theirs. */
void cw_engine_on_ref(cw_engine_t *e, cw_alert_ref_fn fn);
uint64_t cw_engine_sensor_events(const cw_engine_t *e); /* total since start */
size_t cw_engine_sensor_suspect(const cw_engine_t *e);  /* sockets flagged (metric gauge) */
/* 1 if this socket's probe produced a sensor event, 0 if not, -ENOENT. */
int cw_engine_socket_sensor_flag(const cw_engine_t *e, const char *station, uint8_t socket);

/* Introspection for metrics and bench: sockets tracked, bytes of state per
 * socket (table slot + detector state), alerts currently open. */
size_t cw_engine_sockets(const cw_engine_t *e);
size_t cw_engine_bytes_per_socket(void);
size_t cw_engine_open_alerts(const cw_engine_t *e);
/* Added: bytes this engine has allocated (tables, hash slots, alert pool),
 * for measuring memory per socket against cw_engine_bytes_per_socket(). */
size_t cw_engine_bytes(const cw_engine_t *e);

#endif
