/* ingest.h - one received message on its way to a detection engine, and
 * the record format of an ingest ring (lib/ring.h).
 *
 * cw_msg_t is what the ingest client hands to its pipeline and what the
 * worker decodes: every message takes one path, cw_pipeline_deliver ->
 * (inline, or through the ingest ring) the worker's one per-message
 * function -> one per-reading function that pushes the reading record to
 * the writer. A per-message field that must travel with each reading (e.g.
 * a journal position) is added here, copied into cw_ingest_hdr_t by
 * pipeline.c for the threaded mode, and appended to the reading record by
 * the worker's per-reading function.
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
} cw_msg_t;

typedef struct cw_ingest_hdr {
  int64_t recv_ms;      /* wall-clock receive time */
  uint32_t topic_len;
  uint32_t payload_len;
} cw_ingest_hdr_t;

#endif
