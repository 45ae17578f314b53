/* spool.h - crash-safe on-disk queue of COPY batches for when PostgreSQL is
 * down: numbered segment files in a directory, each record framed as
 * [u32 magic][u32 len][u32 crc32c(payload)][payload], fsync per append.
 * A torn or corrupted tail is detected by length/CRC and dropped on replay.
 * Single-threaded (the writer thread owns it). */
#ifndef CW_SPOOL_H
#define CW_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_spool cw_spool_t;

typedef struct cw_spool_stats {
  uint64_t bytes;        /* bytes currently on disk */
  uint64_t records;      /* records currently queued */
  uint64_t appended;     /* total appended since open */
  uint64_t replayed;     /* total acknowledged (deleted) since open */
  uint64_t torn;         /* torn/corrupt tails dropped */
} cw_spool_stats_t;

/* Opens (creating) dir, scans existing segments. max_bytes bounds the disk
 * use: cw_spool_append returns -ENOSPC beyond it. 0 or -errno. */
int cw_spool_open(cw_spool_t **out, const char *dir, uint64_t max_bytes, uint64_t segment_bytes);
void cw_spool_close(cw_spool_t *s);

/* Append one record and fsync. 0, -ENOSPC (over max_bytes) or -errno. */
int cw_spool_append(cw_spool_t *s, const void *data, size_t len);

/* Oldest record, without removing it: *data valid until the next call.
 * Returns 1 when a record is returned, 0 when empty, -errno on I/O error.
 * Corrupt/torn records are skipped (counted in stats.torn). */
int cw_spool_peek(cw_spool_t *s, const void **data, size_t *len);
/* Remove the record last returned by peek (after COMMIT). Deletes a segment
 * file once all its records are acknowledged. 0 or -errno. */
int cw_spool_ack(cw_spool_t *s);

void cw_spool_stats(const cw_spool_t *s, cw_spool_stats_t *st);

uint32_t cw_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table path of cw_crc32c (which uses SSE4.2 when the CPU has
 * it), exposed so tests can check both give the same answer. */
uint32_t cw_crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
