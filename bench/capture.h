/* capture.h - the capture file format (docs/CAPTURE.md) shared by the traffic
 * tools gen, replay and record: an 8-byte magic "CWCAP01\n", then records of
 * { u64 LE receive time in microseconds since the epoch, u16 LE topic length,
 * u32 LE payload length, topic bytes, payload bytes }. Binary-safe.
 * Header-only (static inline) because every bench/X.c is its own program. */
#ifndef CW_CAPTURE_H
#define CW_CAPTURE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CW_CAP_MAGIC "CWCAP01\n"
#define CW_CAP_MAGIC_LEN 8
#define CW_CAP_REC_HDR 14 /* 8 + 2 + 4 */
/* MQTT's own limit on a packet (268,435,455 bytes): a larger length field can
 * only come from a damaged file, so it is rejected instead of allocated. */
#define CW_CAP_MAX_PAYLOAD 268435455u

typedef struct cw_cap_rec {
  uint64_t recv_us;    /* receive time, microseconds since the epoch */
  const char *topic;   /* not NUL-terminated; valid until the next read */
  const uint8_t *payload;
  uint16_t topic_len;
  uint32_t payload_len;
} cw_cap_rec_t;

static inline void cw_cap_put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t cw_cap_get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* Writer: the magic once, then records. Returns 0 or -EIO / -EINVAL. */
static inline int cw_cap_write_header(FILE *f) {
  return fwrite(CW_CAP_MAGIC, 1, CW_CAP_MAGIC_LEN, f) == CW_CAP_MAGIC_LEN ? 0 : -EIO;
}

static inline int cw_cap_write(FILE *f, uint64_t recv_us, const char *topic, size_t topic_len,
                               const void *payload, size_t payload_len) {
  uint8_t h[CW_CAP_REC_HDR];
  if (topic_len > UINT16_MAX || payload_len > CW_CAP_MAX_PAYLOAD) return -EINVAL;
  cw_cap_put_le(h, recv_us, 8);
  cw_cap_put_le(h + 8, topic_len, 2);
  cw_cap_put_le(h + 10, payload_len, 4);
  if (fwrite(h, 1, sizeof h, f) != sizeof h) return -EIO;
  if (topic_len && fwrite(topic, 1, topic_len, f) != topic_len) return -EIO;
  if (payload_len && fwrite(payload, 1, payload_len, f) != payload_len) return -EIO;
  return 0;
}

/* A whole capture in memory (replay wants random access and no I/O while it
 * publishes). Caller owns; free with cw_cap_free. */
typedef struct cw_cap {
  uint8_t *buf;
  size_t len;
  size_t nrec;      /* records, counted by cw_cap_load */
  uint64_t first_us, last_us;
} cw_cap_t;

/* Parse the record at *off of buf[0..len). Returns 1 (record filled, *off
 * advanced), 0 at a clean end, -EINVAL if the record is truncated. */
static inline int cw_cap_parse(const uint8_t *buf, size_t len, size_t *off, cw_cap_rec_t *rec) {
  size_t o = *off;
  if (o == len) return 0;
  if (len - o < CW_CAP_REC_HDR) return -EINVAL;
  rec->recv_us = cw_cap_get_le(buf + o, 8);
  rec->topic_len = (uint16_t)cw_cap_get_le(buf + o + 8, 2);
  rec->payload_len = (uint32_t)cw_cap_get_le(buf + o + 10, 4);
  o += CW_CAP_REC_HDR;
  if (rec->payload_len > CW_CAP_MAX_PAYLOAD) return -EINVAL;
  if (len - o < (size_t)rec->topic_len + rec->payload_len) return -EINVAL;
  rec->topic = (const char *)buf + o;
  rec->payload = buf + o + rec->topic_len;
  *off = o + rec->topic_len + rec->payload_len;
  return 1;
}

/* Validate an in-memory image: magic, every record complete, topics
 * non-empty. Fills nrec/first_us/last_us. 0 or -EINVAL. */
static inline int cw_cap_index(cw_cap_t *c) {
  size_t off = CW_CAP_MAGIC_LEN;
  cw_cap_rec_t r;
  int rc;
  c->nrec = 0;
  c->first_us = c->last_us = 0;
  if (c->len < CW_CAP_MAGIC_LEN || memcmp(c->buf, CW_CAP_MAGIC, CW_CAP_MAGIC_LEN) != 0)
    return -EINVAL;
  while ((rc = cw_cap_parse(c->buf, c->len, &off, &r)) == 1) {
    if (r.topic_len == 0) return -EINVAL;
    if (c->nrec == 0) c->first_us = r.recv_us;
    c->last_us = r.recv_us;
    c->nrec++;
  }
  return rc;
}

static inline void cw_cap_free(cw_cap_t *c) {
  free(c->buf);
  memset(c, 0, sizeof *c);
}

/* Read and validate a whole file. 0, -errno from open/read, -EINVAL for a
 * file that is not a complete capture (bad magic, truncated record). */
static inline int cw_cap_load(cw_cap_t *c, const char *path) {
  FILE *f = NULL;
  long sz;
  int rc = 0;
  memset(c, 0, sizeof *c);
  f = fopen(path, "rb");
  if (!f) return -errno;
  if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    rc = -EIO;
    goto out;
  }
  c->len = (size_t)sz;
  c->buf = malloc(c->len ? c->len : 1);
  if (!c->buf) {
    rc = -ENOMEM;
    goto out;
  }
  if (fread(c->buf, 1, c->len, f) != c->len) {
    rc = -EIO;
    goto out;
  }
  rc = cw_cap_index(c);
out:
  if (f) fclose(f);
  if (rc) cw_cap_free(c);
  return rc;
}

#endif
