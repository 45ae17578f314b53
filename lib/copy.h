/* copy.h - PostgreSQL binary COPY (PGCOPY) encoding of readings, for
 *   COPY readings (ts, station, socket, v, a, w, wh, t, t_amb, smoke, state)
 *   FROM STDIN (FORMAT binary)
 * Absent fields are NULL. Timestamps are microseconds since 2000-01-01 UTC.
 * Pure: a growable byte buffer the caller sends with PQputCopyData. */
#ifndef CW_COPY_H
#define CW_COPY_H

#include "cw.h"

#define CW_COPY_COLUMNS "ts, station, socket, v, a, w, wh, t, t_amb, smoke, state"

typedef struct cw_copy {
  uint8_t *buf; /* owned; header + tuples (+ trailer after finish) */
  size_t len, cap;
  uint32_t rows;
} cw_copy_t;

int cw_copy_init(cw_copy_t *c, size_t cap_hint); /* 0 or -ENOMEM; writes the header */
void cw_copy_free(cw_copy_t *c);
void cw_copy_reset(cw_copy_t *c);                /* back to header only, rows = 0 */
int cw_copy_add(cw_copy_t *c, const cw_reading_t *r); /* 0 or -ENOMEM */
int cw_copy_finish(cw_copy_t *c);                /* appends the trailer; 0 or -ENOMEM */

/* Decode one buffer back into readings (tests, spool replay splitting).
 * Calls fn for each tuple; returns rows or -EINVAL on malformed input. */
typedef int (*cw_copy_row_fn)(void *ctx, const cw_reading_t *r);
long cw_copy_parse(const uint8_t *buf, size_t len, cw_copy_row_fn fn, void *ctx);

#endif
