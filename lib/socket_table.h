/* socket_table.h - per-socket and per-station state of one detection engine.
 * Two open-addressing hash indexes (linear probing, uint32 slots) over two
 * dense arrays: entries never move index, so a station can chain its sockets
 * by index and alerts can name their owner. Single-threaded (one per worker). */
#ifndef CW_SOCKET_TABLE_H
#define CW_SOCKET_TABLE_H

#include <stdint.h>

#include "cw.h"
#include "detect.h"

/* Thermal window: the rise rule needs a least-squares slope over the last
 * ~60 s. Instead of keeping every sample we keep the centroid of each
 * window/6 sub-bucket (n, sum of offsets, sum of t): exact between-bucket
 * slope, constant memory at any sampling rate. */
#define CW_THERM_NB 7  /* ring of sub-buckets (>= CW_THERM_WIN + 1: the window and the current one;
                        * slot = full bucket number modulo this) */
#define CW_THERM_WIN 6 /* sub-buckets per window */
#define CW_THERM_NRAW 4 /* raw (ts, t) samples >= 750 ms apart, for the 1 C/s for 3 s rule */

/* Time stamps inside the thermal window are kept as the low 32 bits of the
 * ms time (only differences of at most a few minutes are used; a socket
 * silent for longer starts a fresh window, see cw_engine_process). */
typedef struct cw_therm_bucket {
  float sum_dx;  /* sum of (ts - bucket start), seconds */
  float sum_t;   /* sum of t, deg C */
  uint16_t idx;  /* ts_ms / bucket_ms, modulo 2^16 (only small differences are used) */
  uint16_t n;    /* samples; 0 = empty */
} cw_therm_bucket_t;

typedef struct cw_therm_raw {
  uint32_t ts32; /* low 32 bits of ts_ms */
  float t;
} cw_therm_raw_t;

/* cw_thermal_state_t.fl */
enum {
  CW_TH_PENDING = 1 << 0, /* a rise without current or corroboration: waiting for continuation */
  CW_TH_RISING = 1 << 1,  /* last window slope >= thermal_fusion_rise_c_min */
  CW_TH_CUT = 1 << 2,     /* charging power dropped to nothing without a full/stop report */
  CW_TH_RISE_WARN = 1 << 3, /* the rise rule holds on this reading */
};

typedef struct cw_thermal_state {
  cw_therm_bucket_t b[CW_THERM_NB];
  cw_therm_raw_t raw[CW_THERM_NRAW];
  uint16_t pend_idx;  /* CW_TH_PENDING: bucket index when the unconfirmed rise started */
  int16_t pend_from;  /* ... and the lowest window temperature then, 0.1 C */
  uint8_t raw_n;     /* valid raw samples */
  uint8_t raw_head;  /* next slot to write */
  uint8_t rise_count;/* consecutive rise evaluations >= threshold */
  uint8_t fl;        /* CW_TH_* */
} cw_thermal_state_t;

/* Run lengths kept as int32 ms (+1; 0 = no run) instead of the run's start
 * ts: each reading adds its ts step, so the length is exactly ts - start.
 * They saturate at ~24.8 days, far above any overload duration threshold. */
typedef struct cw_overload_state {
  int32_t tamper_run; /* 1 + ms since the first reading of the run above the charger limit */
  int32_t rated_run;  /* same, above rated_w */
} cw_overload_state_t;

/* The charging_sessions record being built (lib/detect_session.c). It
 * follows the overnight detector's session (cw_overnight_state_t) and is
 * open while that one is, unless CW_SOCK_SESS_CUT (the socket went silent
 * and the record was written as a timeout; a new one starts at the next
 * reading if the charge goes on). */
typedef struct cw_session_state {
  int32_t start_off; /* record start relative to on.session_start, ms */
  float wh_last;     /* last wh counter value in the record; NAN = none yet */
  float energy_wh;   /* rises of the wh counter (or integral of w without one) */
  float peak_w;      /* highest w (-1 = none) */
  int16_t peak_t;    /* highest t in 0.1 C (INT16_MIN = none) */
  uint16_t readings; /* readings in the record (saturating) */
} cw_session_state_t;

typedef struct cw_overnight_state {
  int64_t session_start; /* ts of the first charging reading of the session; 0 = no session */
  /* Both relative to session_start in ms (saturating; -1 = none): */
  int32_t low_off;       /* first non-charging reading inside the session */
  int32_t night_off;     /* first charging reading of the current in-night-window run */
  float session_wh;      /* energy drawn in this session (integral of w) */
  uint8_t chg_run;       /* consecutive charging readings (saturating) */
  uint8_t confirmed;     /* this session saw chg_run reach 2 (not a plug-in transient) */
} cw_overnight_state_t;

/* Flags of cw_sock_t.flags */
enum {
  CW_SOCK_HAVE_TS = 1 << 0,   /* last_ts is valid */
  CW_SOCK_FORBIDDEN = 1 << 1, /* socket policy: charging here is not allowed */
  CW_SOCK_OVERDUE = 1 << 2,   /* sweep: no reading for the offline threshold */
  CW_SOCK_ARMED = 1 << 3,     /* restored; silence clock started by a sweep, no gap yet */
  CW_SOCK_METERED = 1 << 4,   /* last reading carried power and no fault: may be quiet */
  CW_SOCK_SENSOR = 1 << 5,    /* temperature probe produced a sensor event (step, no rise) */
  CW_SOCK_SESS_CUT = 1 << 6,  /* the session record was written as a timeout (silence) */
};

typedef struct cw_sock {
  uint32_t station;   /* index into the station array */
  uint32_t next;      /* next socket of the same station (index + 1; 0 = end) */
  uint8_t socket;     /* 1..255 */
  uint8_t flags;      /* CW_SOCK_* */
  uint8_t long_gaps;  /* consecutive receive gaps above the offline threshold */
  uint8_t ngaps;      /* receive gaps learned (saturating): cadence known from LEARN_GAPS */
  float rated_w;      /* socket policy; 0 = cfg default_rated_w */
  float charge_max_w; /* socket policy: highest legitimate charger draw; 0 = station/cfg */
  float last_w;       /* latest w, counted in the station sum */
  uint32_t gap_ms;    /* EWMA of receive-time gaps; 0 = not known yet */
  uint32_t gap_max_ms;/* learned longest gap that ended in a reading (decays) */
  int64_t last_ts;    /* last accepted event time */
  int64_t last_recv;  /* receive time of the last accepted reading; 0 = never */
  uint32_t alert[CW_KIND__ENGINE]; /* alert pool index per kind; 0 = none */
  cw_thermal_state_t th;
  cw_overload_state_t ov;
  cw_session_state_t se; /* before on: fills what would be padding */
  cw_overnight_state_t on;
} cw_sock_t;

typedef struct cw_station {
  char name[CW_STATION_MAX + 1];
  cw_station_policy_t policy;
  double sum_w;        /* sum of last_w over this station's sockets */
  int64_t last_recv;   /* latest receive time over its sockets */
  uint32_t first;      /* first socket (index + 1; 0 = none) */
  uint32_t nsock;
  uint32_t alert_overload; /* socket-0 alerts (station sum, station silent) */
  uint32_t alert_offline;
} cw_station_t;

typedef struct cw_sock_table {
  cw_station_t *st;
  uint32_t nst, capst;
  uint32_t *st_idx; /* hash slots: station index + 1; 0 = empty */
  uint32_t st_mask;
  cw_sock_t *so;
  uint32_t nso, capso;
  uint32_t *so_idx; /* hash slots: socket index + 1; 0 = empty */
  uint32_t so_mask;
} cw_sock_table_t;

int cw_sock_table_init(cw_sock_table_t *t);
void cw_sock_table_free(cw_sock_table_t *t);

/* Find or add. Return the index (>= 0) or -ENOMEM. Adding may move the
 * arrays: pointers into them are valid only until the next add. A new
 * station gets the default policy; a new socket zeroed state. */
int64_t cw_sock_table_station(cw_sock_table_t *t, const char *name);
int64_t cw_sock_table_socket(cw_sock_table_t *t, uint32_t station, uint8_t socket);
/* Lookup only: index or -ENOENT. */
int64_t cw_sock_table_find_station(const cw_sock_table_t *t, const char *name);
int64_t cw_sock_table_find_socket(const cw_sock_table_t *t, uint32_t station, uint8_t socket);

/* Bytes allocated by the table (arrays and hash slots). */
size_t cw_sock_table_bytes(const cw_sock_table_t *t);

#endif
