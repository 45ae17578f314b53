/* decode.h - MQTT topic patterns and strict JSON payload decoding into
 * validated readings. Pure: no I/O, no globals. Duplicate/stale ts is not
 * decided here (it needs socket state: see cw_engine_process). */
#ifndef CW_DECODE_H
#define CW_DECODE_H

#include "cw.h"

#define CW_TOPIC_MAX_SEGMENTS 16
#define CW_TOPIC_MAX_LEN 256

/* A compiled pattern such as "cw/{station}/{socket}/telemetry" or
 * "cw/{station}/telemetry": '/'-separated literal segments plus the
 * placeholders {station} (required), {socket} and {partition} (optional;
 * {partition} is the broker's partition number, docs/SCALING.md). */
typedef struct cw_topic {
  char pattern[CW_TOPIC_MAX_LEN];
  int nseg;
  int station_seg; /* index of {station} */
  int socket_seg;  /* index of {socket}, -1 if absent */
  int partition_seg; /* index of {partition}, -1 if absent */
  char seg[CW_TOPIC_MAX_SEGMENTS][64]; /* literal segments ("" for placeholders) */
} cw_topic_t;

/* Returns 0 or -EINVAL (no {station}, repeated placeholder, MQTT wildcard
 * characters, empty segment, too many segments, too long). */
int cw_topic_compile(cw_topic_t *t, const char *pattern);
/* MQTT subscription filter: placeholders become '+'. Returns 0 or -ENOSPC. */
int cw_topic_filter(const cw_topic_t *t, char *out, size_t cap);
/* The same with {partition} replaced by the number partition (>= 0), or by
 * '+' when partition < 0. Returns 0 or -ENOSPC. */
int cw_topic_filter_partition(const cw_topic_t *t, int partition, char *out, size_t cap);
/* Match a received topic (not NUL-terminated). On match writes the station
 * (NUL-terminated) and socket (0 when the pattern has no {socket}) and
 * returns CW_REJ_OK; otherwise CW_REJ_BAD_TOPIC. */
cw_reject_t cw_topic_match(const cw_topic_t *t, const char *topic, size_t len,
                           char station[CW_STATION_MAX + 1], int *socket);

typedef struct cw_decode_cfg {
  cw_topic_t socket_topic;  /* default "cw/{station}/{socket}/telemetry" */
  cw_topic_t station_topic; /* default "cw/{station}/telemetry" */
  size_t max_payload;       /* default 16384 bytes */
  int64_t max_age_ms;       /* default 7 days */
  int64_t max_future_ms;    /* default 5 minutes */
} cw_decode_cfg_t;

/* Fills the defaults above. Returns 0. */
int cw_decode_cfg_defaults(cw_decode_cfg_t *cfg);

/* Called once per accepted reading (r != NULL, why == CW_REJ_OK) and once per
 * rejection (r == NULL). index is the array element (0-based) or -1 for the
 * whole message / a single-object payload. */
typedef void (*cw_decode_fn)(void *ctx, const cw_reading_t *r, cw_reject_t why, int index);

/* Decode one MQTT message received at now_ms. The topic is tried against the
 * socket pattern, then the station pattern. Payload: one object or an array
 * of objects (on a station topic every element must name its "socket"; on a
 * socket topic a "socket" field, if present, must equal the topic's).
 * Valid elements of an array are accepted even if others are rejected.
 * Returns the number of readings accepted. */
int cw_decode(const cw_decode_cfg_t *cfg, const char *topic, size_t topic_len,
              const void *payload, size_t len, int64_t now_ms, cw_decode_fn fn, void *ctx);

/* Strict RFC 8259 check cJSON does not do: returns 0 if the bytes contain no
 * NUL and no raw control character (< 0x20) inside a string, else -EINVAL. */
int cw_json_strict_check(const char *p, size_t len);

#endif
