/* ctl.h - the control message: a rare cross-thread request to the
 * detection engine of the worker that owns a station (policies, restored
 * state, thresholds, operator actions), and the port through which a part
 * posts one without knowing the workers. Plain data, no functions: the
 * worker applies a cw_ctl_t, pipeline.c routes it, main.c hands the port
 * to whoever produces them (writer: policies and restore; control: operator
 * commands; main: thresholds on SIGHUP). */
#ifndef CW_CTL_H
#define CW_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "cw.h"
#include "detect.h"

/* Rare cross-thread requests to a worker's engine (policies, restore state,
 * threshold reload, operator actions). Mutex-protected list; the worker
 * drains it before each burst. */
typedef enum {
  CW_CTL_STATION,       /* station + station policy */
  CW_CTL_SOCKET,        /* station + sockets: up to CW_CTL_SOCKETS_MAX sockets of it,
                         * each with its policy and (ts_ms > 0) its restored last
                         * reading time (as CW_CTL_RESTORE_TS) */
  CW_CTL_DETECT_CFG,    /* new thresholds */
  CW_CTL_RESTORE_TS,    /* station + socket + ts_ms */
  CW_CTL_RESTORE_ALERT, /* alert */
  CW_CTL_OPERATOR,      /* alert.id + alert.event (ACKNOWLEDGED/RECTIFIED/CLOSED) + alert.by,
                         * alert.message the rectify note, ts_ms the event time (0: now) */
  CW_CTL_BLIND,         /* socket = 1 blind, 0 sighted; ts_ms = when (cw_engine_set_blind) */
  CW_CTL_FORGET,        /* write the open sessions, then drop the state learned
                         * from readings, keep policies (cw_engine_forget): a
                         * shard given away or taken back */
} cw_ctl_type_t;

/* One socket of a CW_CTL_SOCKET message. A start-up sends one message per
 * CW_CTL_SOCKETS_MAX sockets of a station, not one per socket: the writer
 * restores 100,000 sockets in ~15,000 allocations instead of 200,000. */
typedef struct {
  uint8_t socket;
  int64_t ts_ms; /* > 0: the last reading time stored for it */
  cw_socket_policy_t policy;
} cw_ctl_socket_t;
#define CW_CTL_SOCKETS_MAX 7

typedef struct cw_ctl {
  struct cw_ctl *next;
  cw_ctl_type_t type;
  char station[CW_STATION_MAX + 1];
  uint8_t socket;
  int64_t ts_ms;
  union { /* one payload per type: a start-up posts one per station and socket */
    cw_station_policy_t station_policy;
    struct {
      uint8_t n;
      cw_ctl_socket_t s[CW_CTL_SOCKETS_MAX];
    } sockets;
    cw_detect_cfg_t det;
    cw_alert_event_t alert;
  };
} cw_ctl_t;
/* the batch must not make every control message larger than an alert's */
_Static_assert(sizeof(((cw_ctl_t *)0)->sockets) <= sizeof(cw_alert_event_t), "CW_CTL_SOCKETS_MAX too large");

/* Where control messages go. post takes ownership of a malloc'd c and
 * routes it: worker >= 0 to that worker, CW_CTL_BY_STATION to the worker
 * that owns c->station, CW_CTL_ALL to every worker (a copy each). route
 * says which worker owns a station (for a map kept by the caller). */
#define CW_CTL_BY_STATION (-1)
#define CW_CTL_ALL (-2)
typedef struct cw_ctl_port {
  void *ctx;
  void (*post)(void *ctx, int worker, cw_ctl_t *c);
  int (*route)(void *ctx, const char *station, size_t len);
} cw_ctl_port_t;

#endif
