/* journal.h - the ingest journal: every telemetry message an ingest client
 * receives is appended here before the broker is acknowledged, so a killed
 * process loses nothing the broker no longer holds (docs/RELIABILITY.md).
 *
 * A file mapped MAP_SHARED and used as a byte ring: appending is a memcpy
 * and a release store of the head, no system call; the pages live in the
 * page cache, which survives the death of the process (not of the machine:
 * there is no msync). The writer stores the position up to which every
 * message is committed or spooled; a restart replays the entries between
 * that position and the head.
 *
 * File: a 4096-byte header page ([u64 magic][u32 version][u32 crc32c of the
 * fields before it][u64 capacity], then head and committed on their own cache
 * lines), then `capacity` bytes of records, each
 *   [u32 len][u32 crc32c(pos..end of payload)][u64 pos][i64 recv_ms]
 *   [u32 topic_len][u32 payload_len] topic payload, padded to 8 bytes.
 * A record never wraps: a pad record (topic_len 0xffffffff) or, when fewer
 * than 32 bytes remain, nothing fills the end of the area. Positions are
 * free-running byte counts; a message's journal position (jpos) is the end of
 * its record, so "committed >= jpos" means the message is safe.
 *
 * Threads: one appending thread (the ingest client's receive thread) and any
 * number of committing threads (cw_journal_commit only raises the mark).
 * Two processes may map one file; only the holder of its shard lease appends
 * (docs/SCALING.md). */
#ifndef CW_JOURNAL_H
#define CW_JOURNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* [spool] journal_bytes by default: holds what the rings and two COPY
 * batches can hold in the default configuration, several times over
 * (docs/RELIABILITY.md section 3) */
#define CW_JOURNAL_DEFAULT_BYTES (8u << 20)

typedef struct cw_journal cw_journal_t;

/* Open or create the journal file at path with capacity cap_bytes (rounded
 * up to a power of two >= 64 KiB; an existing file keeps its own). Returns 0,
 * 1 when an existing file had an invalid header (torn, foreign or
 * inconsistent): it was renamed to path.bad and a new journal created, or
 * -errno. The caller owns *out (cw_journal_close). */
int cw_journal_open(const char *path, uint64_t cap_bytes, cw_journal_t **out);
/* The same, for a caller that alone opens path (it holds a lock that says
 * so): an existing file of another size that holds no message to replay is
 * made anew at cap_bytes. Not for a journal other processes may map. */
int cw_journal_open_alone(const char *path, uint64_t cap_bytes, cw_journal_t **out);
/* The capacity a journal opened with cap_bytes gets, and the largest
 * message (topic + payload bytes) it takes: larger ones are refused with
 * -EMSGSIZE by cw_journal_append (kept in memory only). For checking a
 * configuration before any journal is opened. */
uint64_t cw_journal_capacity_for(uint64_t cap_bytes);
uint64_t cw_journal_max_message(uint64_t capacity);
void cw_journal_close(cw_journal_t *j);

/* Appending thread: copy one message in and publish it. Waits while the
 * journal is full (polling every millisecond until cw_journal_commit makes
 * room) unless *stop becomes non-zero. Returns the message's jpos (> 0),
 * -EMSGSIZE when it can never fit (larger than a quarter of the capacity),
 * -ECANCELED when stopped while waiting, or -EBUSY when another process has
 * appended since this handle's last append or replay (it holds the shard's
 * lease now; nothing written). *waited is set to 1 when it had to wait (may
 * be NULL). */
int64_t cw_journal_append(cw_journal_t *j, int64_t recv_ms, const char *topic, size_t topic_len,
                          const void *payload, size_t payload_len, const _Atomic int *stop,
                          int *waited);

/* Any thread: every message with jpos <= pos is committed or spooled. Only
 * raises the mark (a lower pos is ignored); a pos beyond the head is
 * clamped. */
void cw_journal_commit(cw_journal_t *j, int64_t pos);
int64_t cw_journal_committed(const cw_journal_t *j);
int64_t cw_journal_head(const cw_journal_t *j);
uint64_t cw_journal_capacity(const cw_journal_t *j);

/* One replayed message; pointers valid during the callback only. */
typedef struct cw_journal_entry {
  int64_t jpos;
  int64_t recv_ms;
  const char *topic;
  size_t topic_len;
  const void *payload;
  size_t payload_len;
} cw_journal_entry_t;
typedef void (*cw_journal_visit_fn)(void *ctx, const cw_journal_entry_t *e);

typedef struct cw_journal_replay_stats {
  uint64_t entries;   /* messages visited */
  uint64_t bytes;     /* bytes walked */
  uint64_t dropped;   /* bytes after the first invalid record, up to the head */
} cw_journal_replay_stats_t;

/* Before any append: visit, in order, every message whose record starts at
 * or after max(from, committed) and ends by the head. The walk stops at the
 * first invalid record (bad length, position or CRC: pages lost with the
 * machine); the head is moved back to it, so new appends overwrite the rest,
 * which is counted in st->dropped. Returns 0. st may be NULL. */
int cw_journal_replay(cw_journal_t *j, int64_t from, cw_journal_visit_fn fn, void *ctx,
                      cw_journal_replay_stats_t *st);

#endif
