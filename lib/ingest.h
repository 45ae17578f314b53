/* ingest.h - one received message on its way to a detection engine, and
 * the record format of an ingest ring (lib/ring.h).
 *
 * cw_msg_t is what the ingest client hands to its pipeline and what the
 * worker decodes: every message takes one path, cw_pipeline_deliver ->
 * (inline, or through the ingest ring) the worker's one per-message
 * function -> one per-reading function that pushes the reading record to
 * the writer. The journal position travels with the message, not with its
 * readings: the pipeline marks a message processed once its readings are in
 * the reading ring (cw_pipeline_jpos_processed), and the writer commits
 * that mark into the journal after storing what it drained.
 *
 * Ingest ring records: cw_ingest_hdr_t, then topic_len topic bytes, then
 * payload_len payload bytes, in one record pushed with cw_ring_pushv (no
 * intermediate copy). Records carry no alignment: copy the header out
 * before reading it. */
#ifndef CW_INGEST_H
#define CW_INGEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_msg {
  const char *topic; /* not NUL-terminated */
  size_t topic_len;
  const void *payload;
  size_t payload_len;
  int64_t recv_ms; /* wall-clock receive time */
  int64_t jpos;    /* journal position (lib/journal.h), rising per client; 0: not journaled */
} cw_msg_t;

typedef struct cw_ingest_hdr {
  int64_t recv_ms;      /* wall-clock receive time */
  int64_t jpos;         /* journal position of the message (lib/journal.h), 0: none */
  uint32_t topic_len;
  uint32_t payload_len;
} cw_ingest_hdr_t;

#endif
