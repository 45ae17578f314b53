/* ingest.h - the record format of an ingest ring (lib/ring.h): this header,
 * then topic_len topic bytes, then payload_len payload bytes, in one record
 * pushed with cw_ring_pushv (no intermediate copy). Records carry no
 * alignment: copy the header out before reading it. */
#ifndef CW_INGEST_H
#define CW_INGEST_H

#include <stdint.h>

typedef struct cw_ingest_hdr {
  int64_t recv_ms;      /* wall-clock receive time */
  int64_t jpos;         /* journal position of the message (lib/journal.h), 0: none */
  uint32_t topic_len;
  uint32_t payload_len;
} cw_ingest_hdr_t;

#endif
