/* copy.c - PostgreSQL binary COPY (PGCOPY) encoding of readings, and the
 * matching decoder. Encoding writes straight into one growable buffer (one
 * capacity check per row, no per-field allocation) because it runs once per
 * stored reading; decoding is used by tests and by the writer to split a
 * batch the server refused, so it trusts nothing it reads.
 * Format: PostgreSQL docs, "COPY", section "Binary Format". */
#include "copy.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* "PGCOPY\n\377\r\n\0", then int32 flags (bit 16 = OIDs included) and
 * int32 header extension length. */
static const uint8_t copy_sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
#define HEADER_LEN 19
#define NFIELDS 11
/* 2000-01-01 00:00:00 UTC in ms since the Unix epoch (PostgreSQL's epoch). */
#define PG_EPOCH_MS INT64_C(946684800000)
/* Worst-case bytes of one tuple: count + 11 lengths + ts 8 + station 32 +
 * socket 2 + 6 reals 24 + wh 8 + smoke 1 + state 2. */
#define ROW_MAX (2 + NFIELDS * 4 + 8 + CW_STATION_MAX + 2 + 6 * 4 + 8 + 1 + 2)

static int grow(cw_copy_t *c, size_t need) {
  if (c->cap - c->len >= need) return 0;
  size_t cap = c->cap ? c->cap : 256;
  while (cap - c->len < need) {
    if (cap > SIZE_MAX / 2) return -ENOMEM;
    cap *= 2;
  }
  uint8_t *nb = realloc(c->buf, cap);
  if (!nb) return -ENOMEM;
  c->buf = nb;
  c->cap = cap;
  return 0;
}

int cw_copy_init(cw_copy_t *c, size_t cap_hint) {
  memset(c, 0, sizeof(*c));
  if (cap_hint < HEADER_LEN + 2) cap_hint = 256;
  c->buf = malloc(cap_hint);
  if (!c->buf) return -ENOMEM;
  c->cap = cap_hint;
  cw_copy_reset(c);
  return 0;
}

void cw_copy_free(cw_copy_t *c) {
  free(c->buf);
  memset(c, 0, sizeof(*c));
}

/* Keeps the allocation: a batch buffer is reused for the life of the writer. */
void cw_copy_reset(cw_copy_t *c) {
  memcpy(c->buf, copy_sig, sizeof(copy_sig));
  memset(c->buf + sizeof(copy_sig), 0, 8); /* flags 0, extension length 0 */
  c->len = HEADER_LEN;
  c->rows = 0;
}

/* Unaligned big-endian stores; p advances past what was written. */
static inline uint8_t *put16(uint8_t *p, uint16_t v) {
  v = htobe16(v);
  memcpy(p, &v, 2);
  return p + 2;
}
static inline uint8_t *put32(uint8_t *p, uint32_t v) {
  v = htobe32(v);
  memcpy(p, &v, 4);
  return p + 4;
}
static inline uint8_t *put64(uint8_t *p, uint64_t v) {
  v = htobe64(v);
  memcpy(p, &v, 8);
  return p + 8;
}
static inline uint8_t *put_null(uint8_t *p) { return put32(p, UINT32_MAX); }

static inline uint8_t *put_real(uint8_t *p, bool have, float f) {
  if (!have) return put_null(p);
  uint32_t u;
  memcpy(&u, &f, 4);
  p = put32(p, 4);
  return put32(p, u);
}

/* Returns 0, -ENOMEM, or -ERANGE when ts_ms is so far from 2000 that its
 * microseconds overflow int64 (decode rejects such a ts long before this). */
int cw_copy_add(cw_copy_t *c, const cw_reading_t *r) {
  int64_t us;
  if (__builtin_sub_overflow(r->ts_ms, PG_EPOCH_MS, &us) || __builtin_mul_overflow(us, 1000, &us))
    return -ERANGE;
  int rc = grow(c, ROW_MAX);
  if (rc) return rc;
  uint8_t *p = c->buf + c->len;
  unsigned h = r->have;
  p = put16(p, NFIELDS);
  p = put32(p, 8); /* ts timestamptz */
  p = put64(p, (uint64_t)us);
  size_t sl = strnlen(r->station, CW_STATION_MAX); /* station text */
  p = put32(p, (uint32_t)sl);
  memcpy(p, r->station, sl);
  p += sl;
  p = put32(p, 2); /* socket smallint */
  p = put16(p, r->socket);
  p = put_real(p, h & CW_HAVE_V, r->v);
  p = put_real(p, h & CW_HAVE_A, r->a);
  p = put_real(p, h & CW_HAVE_W, r->w);
  if (h & CW_HAVE_WH) { /* wh double precision */
    uint64_t u;
    memcpy(&u, &r->wh, 8);
    p = put32(p, 8);
    p = put64(p, u);
  } else {
    p = put_null(p);
  }
  p = put_real(p, h & CW_HAVE_T, r->t);
  p = put_real(p, h & CW_HAVE_T_AMB, r->t_amb);
  if (h & CW_HAVE_SMOKE) { /* smoke bool: one byte 0/1 */
    p = put32(p, 1);
    *p++ = r->smoke ? 1 : 0;
  } else {
    p = put_null(p);
  }
  if (h & CW_HAVE_STATE) { /* state smallint */
    p = put32(p, 2);
    p = put16(p, (uint16_t)(int16_t)r->state);
  } else {
    p = put_null(p);
  }
  c->len = (size_t)(p - c->buf);
  c->rows++;
  return 0;
}

int cw_copy_finish(cw_copy_t *c) {
  int rc = grow(c, 2);
  if (rc) return rc;
  put16(c->buf + c->len, UINT16_MAX); /* int16 -1: end of data */
  c->len += 2;
  return 0;
}

/* ---- decoding: a bounds-checked cursor ---- */

typedef struct {
  const uint8_t *p, *end;
} cursor_t;

static bool take(cursor_t *k, void *out, size_t n) {
  if ((size_t)(k->end - k->p) < n) return false;
  memcpy(out, k->p, n);
  k->p += n;
  return true;
}
static bool get16(cursor_t *k, int16_t *v) {
  uint16_t u;
  if (!take(k, &u, 2)) return false;
  *v = (int16_t)be16toh(u);
  return true;
}
static bool get32(cursor_t *k, int32_t *v) {
  uint32_t u;
  if (!take(k, &u, 4)) return false;
  *v = (int32_t)be32toh(u);
  return true;
}
static bool get64(cursor_t *k, uint64_t *v) {
  if (!take(k, v, 8)) return false;
  *v = be64toh(*v);
  return true;
}

/* Reads one field length: -1 (NULL) or exactly `want` (or up to `want` when
 * `upto`). 1 = value present, 0 = NULL, -1 = malformed. */
static int field(cursor_t *k, int32_t want, bool upto, int32_t *len) {
  if (!get32(k, len)) return -1;
  if (*len == -1) return 0;
  if (*len < 0 || (upto ? *len > want : *len != want)) return -1;
  if ((size_t)(k->end - k->p) < (size_t)*len) return -1;
  return 1;
}

static int opt_real(cursor_t *k, float *f, uint16_t *have, uint16_t bit) {
  int32_t len;
  int rc = field(k, 4, false, &len);
  if (rc <= 0) return rc;
  int32_t u = 0;
  get32(k, &u);
  uint32_t b = (uint32_t)u;
  memcpy(f, &b, 4);
  *have |= bit;
  return 1;
}

/* One tuple after its field count; false when malformed. */
static bool parse_tuple(cursor_t *k, cw_reading_t *r) {
  int32_t len;
  uint64_t u = 0; /* get*() cannot fail after field() checked the length */
  int16_t s = 0;
  memset(r, 0, sizeof(*r));
  if (field(k, 8, false, &len) != 1) return false; /* ts: required */
  get64(k, &u);
  int64_t us = (int64_t)u;
  /* floor division: a ts before 2000 with sub-ms digits rounds down */
  int64_t ms = us / 1000 - (us % 1000 < 0 ? 1 : 0);
  if (__builtin_add_overflow(ms, PG_EPOCH_MS, &r->ts_ms)) return false;
  if (field(k, CW_STATION_MAX, true, &len) != 1) return false; /* station */
  if (memchr(k->p, 0, (size_t)len)) return false;
  memcpy(r->station, k->p, (size_t)len);
  r->station[len] = 0;
  k->p += len;
  if (field(k, 2, false, &len) != 1) return false; /* socket */
  get16(k, &s);
  if (s < 0 || s > 255) return false;
  r->socket = (uint8_t)s;
  if (opt_real(k, &r->v, &r->have, CW_HAVE_V) < 0) return false;
  if (opt_real(k, &r->a, &r->have, CW_HAVE_A) < 0) return false;
  if (opt_real(k, &r->w, &r->have, CW_HAVE_W) < 0) return false;
  int rc = field(k, 8, false, &len); /* wh */
  if (rc < 0) return false;
  if (rc) {
    get64(k, &u);
    memcpy(&r->wh, &u, 8);
    r->have |= CW_HAVE_WH;
  }
  if (opt_real(k, &r->t, &r->have, CW_HAVE_T) < 0) return false;
  if (opt_real(k, &r->t_amb, &r->have, CW_HAVE_T_AMB) < 0) return false;
  rc = field(k, 1, false, &len); /* smoke */
  if (rc < 0) return false;
  if (rc) {
    r->smoke = *k->p++ ? 1 : 0; /* like boolrecv: any non-zero byte is true */
    r->have |= CW_HAVE_SMOKE;
  }
  rc = field(k, 2, false, &len); /* state */
  if (rc < 0) return false;
  if (rc) {
    get16(k, &s);
    if (s < INT8_MIN || s > INT8_MAX) return false;
    r->state = (int8_t)s;
    r->have |= CW_HAVE_STATE;
  }
  return true;
}

/* Walks the buffer; with fn == NULL only validates. Returns rows, -EINVAL,
 * or what fn returned when it returned < 0. */
static long walk(const uint8_t *buf, size_t len, cw_copy_row_fn fn, void *ctx) {
  cursor_t k = {buf, buf + len};
  uint8_t sig[sizeof(copy_sig)];
  int32_t flags, ext;
  if (!take(&k, sig, sizeof(sig)) || memcmp(sig, copy_sig, sizeof(sig)) != 0) return -EINVAL;
  if (!get32(&k, &flags) || !get32(&k, &ext)) return -EINVAL;
  if (flags & (1 << 16)) return -EINVAL; /* OIDs: never written by us */
  if ((flags & 0xffff0000) != 0 || ext < 0 || (size_t)(k.end - k.p) < (size_t)ext) return -EINVAL;
  k.p += ext;
  long rows = 0;
  for (;;) {
    int16_t n;
    if (k.p == k.end) return rows; /* no trailer yet: an unfinished buffer */
    if (!get16(&k, &n)) return -EINVAL;
    if (n == -1) return k.p == k.end ? rows : -EINVAL; /* nothing after the trailer */
    if (n != NFIELDS) return -EINVAL;
    cw_reading_t r;
    if (!parse_tuple(&k, &r)) return -EINVAL;
    if (fn) {
      int rc = fn(ctx, &r);
      if (rc < 0) return rc;
    }
    rows++;
  }
}

/* Validates the whole buffer before the first callback, so fn never sees
 * part of a malformed batch. The trailer is optional (an unfinished buffer
 * parses); a partial tuple, a wrong field count, a bad length, or bytes after
 * the trailer are -EINVAL. fn returns 0 to go on; a negative return stops
 * the walk and is returned. */
long cw_copy_parse(const uint8_t *buf, size_t len, cw_copy_row_fn fn, void *ctx) {
  if (!buf) return -EINVAL;
  long rows = walk(buf, len, NULL, NULL);
  if (rows < 0 || !fn) return rows;
  return walk(buf, len, fn, ctx);
}
