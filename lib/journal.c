/* journal.c - the ingest journal (journal.h): a MAP_SHARED file used as a
 * byte ring, so a message is safe from the death of the process once it is
 * copied in, without a system call per message. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "journal.h"
#include "spool.h" /* cw_crc32c */

#define MAGIC 0x4c4e524a57434843ull /* "CHCWJRNL" little-endian */
#define VERSION 1u
#define HDR_BYTES 4096u
#define REC_HDR 32u
#define PAD_MARK 0xffffffffu
#define MIN_CAP (64u << 10)

typedef struct hdr {
  uint64_t magic;
  uint32_t version;
  uint32_t crc; /* crc32c of magic and version, then capacity */
  uint64_t capacity;
  /* head: stored by the appending thread only (release, after the record's
   * bytes); read with acquire by replay and by committers (clamp) */
  _Alignas(64) _Atomic uint64_t head;
  /* committed: raised by cw_journal_commit (CAS, release); read with
   * acquire by the appending thread before it reuses space */
  _Alignas(64) _Atomic uint64_t committed;
} hdr_t;

_Static_assert(sizeof(hdr_t) <= HDR_BYTES, "journal header fits its page");

struct cw_journal {
  int fd;
  hdr_t *h;
  uint8_t *area; /* capacity bytes after the header page */
  uint64_t cap;  /* power of two */
  uint64_t head; /* appending thread's copy of h->head */
  size_t map_bytes;
};

static uint32_t hdr_crc(const hdr_t *h) {
  uint32_t c = cw_crc32c(0, &h->magic, sizeof h->magic + sizeof h->version);
  return cw_crc32c(c, &h->capacity, sizeof h->capacity);
}

uint64_t cw_journal_capacity_for(uint64_t n) {
  uint64_t c = MIN_CAP;
  while (c < n && c < (1ull << 40)) c <<= 1;
  return c;
}

static uint64_t align8(uint64_t n) { return (n + 7) & ~7ull; }

/* Is the mapped header one of ours, consistent with a file of size bytes? */
static int hdr_valid(const hdr_t *h, uint64_t size) {
  uint64_t head = atomic_load(&h->head), com = atomic_load(&h->committed);
  return h->magic == MAGIC && h->version == VERSION && h->crc == hdr_crc(h) &&
         h->capacity >= MIN_CAP && (h->capacity & (h->capacity - 1)) == 0 &&
         h->capacity + HDR_BYTES == size && com <= head && head - com <= h->capacity &&
         (head & 7) == 0 && (com & 7) == 0;
}

static int map_file(cw_journal_t *j, uint64_t size) {
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
  if (p == MAP_FAILED) return -errno;
  j->h = p;
  j->map_bytes = (size_t)size;
  j->area = (uint8_t *)p + HDR_BYTES;
  return 0;
}

static int create_file(const char *path, uint64_t cap, int *fd_out) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp) return -ENAMETOOLONG;
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  hdr_t h = {.magic = MAGIC, .version = VERSION, .capacity = cap};
  h.crc = hdr_crc(&h);
  int rc = 0;
  /* the header written, then the size set (sparse), then renamed in: a
   * journal file with our name always has a complete header */
  if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || ftruncate(fd, (off_t)(HDR_BYTES + cap)))
    rc = -errno;
  /* blocks reserved now: a first write into a page then costs a page fault,
   * not a block allocation (and no SIGBUS on a full disk later) */
  if (!rc && (rc = -posix_fallocate(fd, 0, (off_t)(HDR_BYTES + cap))) == -EOPNOTSUPP) rc = 0;
  if (!rc && (fsync(fd) || rename(tmp, path))) rc = -errno;
  if (rc) {
    close(fd);
    unlink(tmp);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

static int journal_open(const char *path, uint64_t cap_bytes, int resize, cw_journal_t **out) {
  cw_journal_t *j = calloc(1, sizeof *j);
  int rc, reset = 0;
  struct stat st;
  *out = NULL;
  if (!j) return -ENOMEM;
  j->fd = open(path, O_RDWR | O_CLOEXEC);
  if (j->fd < 0 && errno != ENOENT) {
    rc = -errno;
    goto fail;
  }
  if (j->fd >= 0) {
    if (fstat(j->fd, &st)) {
      rc = -errno;
      goto fail;
    }
    if ((uint64_t)st.st_size >= HDR_BYTES + MIN_CAP && (rc = map_file(j, (uint64_t)st.st_size)))
      goto fail;
    if (resize && j->h && hdr_valid(j->h, (uint64_t)st.st_size) && j->h->capacity != cw_journal_capacity_for(cap_bytes) &&
        atomic_load(&j->h->head) == atomic_load(&j->h->committed)) {
      /* another size asked for, and nothing to replay: made anew */
      munmap(j->h, j->map_bytes);
      j->h = NULL;
      close(j->fd);
      j->fd = -1;
      if (unlink(path)) {
        rc = -errno;
        goto fail;
      }
    } else if (!j->h || !hdr_valid(j->h, (uint64_t)st.st_size)) {
      /* set aside, never overwritten: it may still hold messages */
      char bad[PATH_MAX];
      if (j->h) munmap(j->h, j->map_bytes);
      j->h = NULL;
      close(j->fd);
      j->fd = -1;
      if (snprintf(bad, sizeof bad, "%s.bad", path) >= (int)sizeof bad || rename(path, bad)) {
        rc = errno ? -errno : -ENAMETOOLONG;
        goto fail;
      }
      reset = 1;
    }
  }
  if (j->fd < 0) {
    uint64_t cap = cw_journal_capacity_for(cap_bytes);
    if ((rc = create_file(path, cap, &j->fd)) || (rc = map_file(j, HDR_BYTES + cap)))
      goto fail;
  }
  /* the mapping kept: every page mapped writable now, in one call; a first
   * write into each page otherwise traps (~1 us per 150 B message over the
   * first lap after every start: bench/journal). Older kernels refuse the
   * advice: the pages then fault in as they are written. */
#ifdef MADV_POPULATE_WRITE
  (void)madvise(j->h, j->map_bytes, MADV_POPULATE_WRITE);
#endif
  j->cap = j->h->capacity;
  j->head = atomic_load_explicit(&j->h->head, memory_order_acquire);
  *out = j;
  return reset;
fail:
  if (j->h) munmap(j->h, j->map_bytes);
  if (j->fd >= 0) close(j->fd);
  free(j);
  return rc;
}

int cw_journal_open(const char *path, uint64_t cap_bytes, cw_journal_t **out) {
  return journal_open(path, cap_bytes, 0, out);
}

int cw_journal_open_alone(const char *path, uint64_t cap_bytes, cw_journal_t **out) {
  return journal_open(path, cap_bytes, 1, out);
}

void cw_journal_close(cw_journal_t *j) {
  if (!j) return;
  munmap(j->h, j->map_bytes);
  close(j->fd);
  free(j);
}

uint64_t cw_journal_capacity(const cw_journal_t *j) { return j->cap; }
int64_t cw_journal_head(const cw_journal_t *j) {
  return (int64_t)atomic_load_explicit(&j->h->head, memory_order_acquire);
}
int64_t cw_journal_committed(const cw_journal_t *j) {
  return (int64_t)atomic_load_explicit(&j->h->committed, memory_order_acquire);
}

void cw_journal_commit(cw_journal_t *j, int64_t pos) {
  uint64_t p = pos > 0 ? (uint64_t)pos : 0;
  uint64_t head = atomic_load_explicit(&j->h->head, memory_order_acquire);
  if (p > head) p = head;
  uint64_t cur = atomic_load_explicit(&j->h->committed, memory_order_relaxed);
  /* release pairs with the acquire load in room(): the appender may reuse
   * the bytes below p only after this store */
  while (cur < p && !atomic_compare_exchange_weak_explicit(&j->h->committed, &cur, p,
                                                           memory_order_release,
                                                           memory_order_relaxed)) {
  }
}

static uint64_t room(const cw_journal_t *j) {
  uint64_t com = atomic_load_explicit(&j->h->committed, memory_order_acquire);
  return j->cap - (j->head - com);
}

static void put_rec(uint8_t *p, uint32_t len, uint64_t pos, int64_t recv_ms, uint32_t tlen,
                    uint32_t plen, const void *topic, const void *payload) {
  memcpy(p + 8, &pos, 8);
  memcpy(p + 16, &recv_ms, 8);
  memcpy(p + 24, &tlen, 4);
  memcpy(p + 28, &plen, 4);
  size_t body = 0;
  if (tlen != PAD_MARK) {
    memcpy(p + REC_HDR, topic, tlen);
    memcpy(p + REC_HDR + tlen, payload, plen);
    body = (size_t)tlen + plen;
  }
  uint32_t crc = cw_crc32c(0, p + 8, REC_HDR - 8 + body);
  memcpy(p, &len, 4);
  memcpy(p + 4, &crc, 4);
}

/* A record is at most a quarter of the area: the append never waits for
 * more than that to be committed. */
uint64_t cw_journal_max_message(uint64_t capacity) { return capacity / 4 - REC_HDR; }

int64_t cw_journal_append(cw_journal_t *j, int64_t recv_ms, const char *topic, size_t topic_len,
                          const void *payload, size_t payload_len, const _Atomic int *stop,
                          int *waited) {
  uint64_t len = align8(REC_HDR + (uint64_t)topic_len + payload_len);
  if (waited) *waited = 0;
  if ((uint64_t)topic_len + payload_len > cw_journal_max_message(j->cap) || topic_len >= PAD_MARK ||
      payload_len >= PAD_MARK)
    return -EMSGSIZE;
  /* another process appended since our replay (it holds the shard's lease
   * now): never write over its records */
  if (atomic_load_explicit(&j->h->head, memory_order_relaxed) != j->head) return -EBUSY;
  uint64_t off = j->head & (j->cap - 1), tail = j->cap - off;
  uint64_t need = tail < len ? tail + len : len; /* the end of the area is padded first */
  while (room(j) < need) {
    if (stop && atomic_load_explicit(stop, memory_order_relaxed)) return -ECANCELED;
    if (waited) *waited = 1;
    cw_sleep_ms(1);
  }
  if (tail < len) {
    if (tail >= REC_HDR) put_rec(j->area + off, (uint32_t)tail, j->head, 0, PAD_MARK, 0, NULL, NULL);
    j->head += tail;
    off = 0;
  }
  put_rec(j->area + off, (uint32_t)len, j->head, recv_ms, (uint32_t)topic_len,
          (uint32_t)payload_len, topic, payload);
  j->head += len;
  /* release: the record's bytes are in the shared pages before the head
   * says so (pairs with the acquire load in replay and cw_journal_head) */
  atomic_store_explicit(&j->h->head, j->head, memory_order_release);
  return (int64_t)j->head;
}

/* The record at pos, checked: its length (0 when invalid), or the implicit
 * pad to the end of the area. */
static uint64_t rec_check(const cw_journal_t *j, uint64_t pos, uint64_t head, int *pad) {
  uint64_t off = pos & (j->cap - 1), tail = j->cap - off;
  *pad = 1;
  if (tail < REC_HDR) return tail <= head - pos ? tail : 0;
  const uint8_t *p = j->area + off;
  uint32_t len, crc, tlen, plen;
  uint64_t rpos;
  memcpy(&len, p, 4);
  memcpy(&crc, p + 4, 4);
  memcpy(&rpos, p + 8, 8);
  memcpy(&tlen, p + 24, 4);
  memcpy(&plen, p + 28, 4);
  if (rpos != pos || len < REC_HDR || (len & 7) || len > tail || len > head - pos) return 0;
  uint64_t body = 0;
  if (tlen == PAD_MARK) {
    if (len != tail) return 0;
  } else {
    body = (uint64_t)tlen + plen;
    if (align8(REC_HDR + body) != len) return 0;
    *pad = 0;
  }
  if (cw_crc32c(0, p + 8, REC_HDR - 8 + (size_t)body) != crc) return 0;
  return len;
}

int cw_journal_replay(cw_journal_t *j, int64_t from, cw_journal_visit_fn fn, void *ctx,
                      cw_journal_replay_stats_t *st) {
  cw_journal_replay_stats_t s = {0};
  uint64_t head = atomic_load_explicit(&j->h->head, memory_order_acquire);
  uint64_t pos = (uint64_t)cw_journal_committed(j);
  if (from > 0 && (uint64_t)from > pos && (uint64_t)from <= head) pos = (uint64_t)from;
  while (pos < head) {
    int pad;
    uint64_t len = rec_check(j, pos, head, &pad);
    if (!len) break;
    if (!pad) {
      const uint8_t *p = j->area + (pos & (j->cap - 1));
      cw_journal_entry_t e = {.jpos = (int64_t)(pos + len)};
      uint32_t tlen, plen;
      memcpy(&e.recv_ms, p + 16, 8);
      memcpy(&tlen, p + 24, 4);
      memcpy(&plen, p + 28, 4);
      e.topic = (const char *)p + REC_HDR;
      e.topic_len = tlen;
      e.payload = p + REC_HDR + tlen;
      e.payload_len = plen;
      fn(ctx, &e);
      s.entries++;
    }
    s.bytes += len;
    pos += len;
  }
  if (pos < head) {
    s.dropped = head - pos;
    atomic_store_explicit(&j->h->head, pos, memory_order_release);
  }
  j->head = atomic_load_explicit(&j->h->head, memory_order_acquire);
  if (st) *st = s;
  return 0;
}
