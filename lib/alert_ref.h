/* alert_ref.h - short, typeable alert references "A-MMDD-NNNN": the UTC day
 * an alert was raised and a per-day sequence from 1 (four digits, more past
 * 9999). The daemon assigns them without a database round trip from a
 * counter it restores at start (SQL cw_alert_ref_last(day)); the database
 * fills the same format for rows inserted without one (schema/003_ops.sql).
 * Pure: no clock, no globals. */
#ifndef CW_ALERT_REF_H
#define CW_ALERT_REF_H

#include <stddef.h>
#include <stdint.h>

#define CW_ALERT_REF_MAX 24 /* "A-MMDD-" + up to 10 digits + NUL, rounded up */

/* Per-day counter. day is days since 1970-01-01 (UTC); last the highest
 * sequence handed out that day. Zero-initialised = nothing handed out. */
typedef struct cw_alert_ref_ctr {
  int32_t day;
  uint32_t last;
} cw_alert_ref_ctr_t;

/* UTC day number of a time in ms since the epoch (floor, also before 1970). */
int32_t cw_alert_ref_day(int64_t ts_ms);

/* Writes the reference for (day, seq) into out. Returns its length, or
 * -ENOSPC when cap is too small, -EINVAL when seq is 0. */
int cw_alert_ref_format(char *out, size_t cap, int32_t day, uint32_t seq);

/* Next reference at now_ms: restarts at 1 when the UTC day changed since the
 * last call. Returns the length written to out, or a negative errno code. */
int cw_alert_ref_next(cw_alert_ref_ctr_t *c, int64_t now_ms, char *out, size_t cap);

/* After a restart: never hand out a sequence at or below last for day
 * (keeps the larger of what the counter has and what is given). */
void cw_alert_ref_restore(cw_alert_ref_ctr_t *c, int32_t day, uint32_t last);

/* Parses a reference as an operator types it: "A-1129-0042", "a-1129-42",
 * "1129-42". Sets *mmdd (e.g. 1129) and *seq. Returns 0 or -EINVAL. */
int cw_alert_ref_parse(const char *s, int *mmdd, uint32_t *seq);

#endif
