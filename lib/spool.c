/* spool.c - crash-safe on-disk queue of COPY batches (see spool.h). The
 * writer appends here while PostgreSQL is down and replays in append order
 * once it is back; every append is fdatasync'ed before it returns, because
 * "spooled" is the promise that a batch survives a crash.
 *
 * Layout of DIR:
 *   NNNNNNNNNNNNNNNNNNNN.spool  segments, 20-digit sequence, append order.
 *       Records: [u32 magic][u32 len][u32 crc32c(payload)][payload], all LE.
 *   ack   where replay stands: two 32-byte slots
 *       [u32 magic][u32 crc32c(rest)][u64 generation][u64 segment][u64 offset]
 *       written alternately with pwrite + fdatasync. The valid slot with the
 *       higher generation wins, so a write torn by a crash leaves the previous
 *       position intact. Acknowledged records are therefore never replayed
 *       twice, even when a crash comes between ack and segment deletion; the
 *       worst case is a crash between COMMIT and cw_spool_ack, which replays
 *       one batch (the writer sees it as duplicate rows).
 * Damage: a record whose header is intact but whose CRC fails (a flipped
 * payload byte) is skipped alone; a damaged header (bad magic, a length past
 * the end: a torn tail, a flipped header byte) makes the reader resynchronise
 * at the next offset holding a whole record with a matching CRC, or at the
 * end of the segment. Good records after the damage therefore still replay;
 * stats.torn counts each damaged spot. The open-time count and the replay
 * walk the same path, so stats.records stays exact.
 * Invariants: segments are never appended to once reopened (a new process
 * starts a new segment, so nothing lands behind a torn tail); a new segment
 * number is above every number on disk and in the ack file; a segment is
 * deleted as soon as all its records are acknowledged or skipped. */
#include "fsutil.h"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define REC_MAGIC 0x31505343u /* "CSP1" little-endian */
#define ACK_MAGIC 0x314b4341u /* "ACK1" */
#define REC_HDR 12
#define ACK_SLOT 32
#define SEG_NAME_DIGITS 20
#define DEFAULT_SEGMENT_BYTES (64u << 20)

typedef struct {
  uint64_t seq;
  uint64_t size; /* bytes in the file */
  uint64_t nrec; /* well-framed records at or after the start offset (scan / appends) */
} seg_t;

struct cw_spool {
  int dirfd;
  int ackfd;
  int wfd;       /* active segment for appends, -1 until the first append */
  uint64_t wseq; /* its sequence number when wfd >= 0 */
  uint64_t next_seq;
  uint64_t max_bytes, segment_bytes;
  seg_t *segs; /* oldest first; segs[0] is being replayed */
  size_t nseg, capseg;
  uint64_t roff;    /* replay offset in segs[0] */
  uint64_t rdone;   /* records of segs[0] acknowledged or skipped since roff start */
  int rfd;          /* segs[0] opened for reading, or -1 */
  uint64_t rfd_seq; /* which segment rfd is */
  uint8_t *rbuf;    /* last peeked payload */
  size_t rcap;
  uint64_t pending; /* bytes of the peeked, not yet acknowledged record; 0 if none */
  uint64_t ack_gen;
  cw_spool_stats_t st;
};

/* ---- CRC-32C (Castagnoli, reflected 0x82F63B78), as in iSCSI/ext4 ---- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_tab[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++) crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
  __builtin_cpu_init();
  crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* Slice-by-8: eight table lookups per 8 input bytes. */
uint32_t cw_crc32c_sw(uint32_t crc, const void *data, size_t len) {
  pthread_once(&crc_once, crc_init);
  const uint8_t *p = data;
  crc = ~crc;
  while (len && ((uintptr_t)p & 7)) {
    crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    len--;
  }
  while (len >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo = le32toh(lo) ^ crc;
    hi = le32toh(hi);
    crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
          crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
          crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c = ~crc;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
#endif

uint32_t cw_crc32c(uint32_t crc, const void *data, size_t len) {
  pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
  if (crc_hw) return crc_sse42(crc, data, len);
#endif
  return cw_crc32c_sw(crc, data, len);
}

/* ---- small I/O helpers ---- */

static void put_le32(uint8_t *p, uint32_t v) {
  v = htole32(v);
  memcpy(p, &v, 4);
}
static void put_le64(uint8_t *p, uint64_t v) {
  v = htole64(v);
  memcpy(p, &v, 8);
}
static uint32_t get_le32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return le32toh(v);
}
static uint64_t get_le64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return le64toh(v);
}

/* Full pread; returns bytes read (short only at EOF) or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    done += (size_t)r;
  }
  return 0;
}

static void seg_name(char *out, size_t n, uint64_t seq) {
  snprintf(out, n, "%0*llu.spool", SEG_NAME_DIGITS, (unsigned long long)seq);
}

static bool seg_parse(const char *name, uint64_t *seq) {
  uint64_t v = 0;
  for (int i = 0; i < SEG_NAME_DIGITS; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(name[i] - '0');
  }
  if (strcmp(name + SEG_NAME_DIGITS, ".spool") != 0) return false;
  *seq = v;
  return true;
}

/* ---- ack position ---- */

static int ack_store(cw_spool_t *s, uint64_t seq, uint64_t off) {
  uint8_t slot[ACK_SLOT];
  uint64_t gen = s->ack_gen + 1;
  put_le32(slot, ACK_MAGIC);
  put_le64(slot + 8, gen);
  put_le64(slot + 16, seq);
  put_le64(slot + 24, off);
  put_le32(slot + 4, cw_crc32c(0, slot + 8, ACK_SLOT - 8));
  int rc = pwrite_full(s->ackfd, slot, sizeof(slot), (gen & 1) * ACK_SLOT);
  if (rc) return rc;
  if (fdatasync(s->ackfd) < 0) return -errno;
  s->ack_gen = gen;
  return 0;
}

/* Best valid slot, or seq = off = 0 (nothing acknowledged) when none. */
static int ack_load(cw_spool_t *s, uint64_t *seq, uint64_t *off) {
  uint8_t buf[2 * ACK_SLOT];
  ssize_t n = pread_full(s->ackfd, buf, sizeof(buf), 0);
  if (n < 0) return (int)n;
  *seq = *off = 0;
  s->ack_gen = 0;
  for (int i = 0; i < 2; i++) {
    const uint8_t *p = buf + i * ACK_SLOT;
    if ((i + 1) * ACK_SLOT > n || get_le32(p) != ACK_MAGIC) continue;
    if (get_le32(p + 4) != cw_crc32c(0, p + 8, ACK_SLOT - 8)) continue;
    uint64_t gen = get_le64(p + 8);
    if (gen < s->ack_gen) continue;
    s->ack_gen = gen;
    *seq = get_le64(p + 16);
    *off = get_le64(p + 24);
  }
  return 0;
}

/* ---- segments ---- */

static int seg_push(cw_spool_t *s, seg_t sg) {
  if (s->nseg == s->capseg) {
    size_t cap = s->capseg ? s->capseg * 2 : 16;
    seg_t *n = realloc(s->segs, cap * sizeof(*n));
    if (!n) return -ENOMEM;
    s->segs = n;
    s->capseg = cap;
  }
  s->segs[s->nseg++] = sg;
  return 0;
}

static int seg_cmp(const void *a, const void *b) {
  uint64_t x = ((const seg_t *)a)->seq, y = ((const seg_t *)b)->seq;
  return x < y ? -1 : x > y;
}

/* Is there a whole record at off (magic, length inside the file, CRC)? The
 * payload is read into *buf (grown as needed). 1 yes, 0 no, -errno. */
static int rec_valid(int fd, uint64_t off, uint64_t size, uint8_t **buf, size_t *cap) {
  uint8_t h[REC_HDR];
  if (size - off < REC_HDR) return 0;
  ssize_t n = pread_full(fd, h, REC_HDR, off);
  if (n < 0) return (int)n;
  if (n < REC_HDR || get_le32(h) != REC_MAGIC) return 0;
  uint64_t len = get_le32(h + 4);
  if (len > size - off - REC_HDR) return 0;
  if (len > *cap || !*buf) {
    uint8_t *nb = realloc(*buf, len ? (size_t)len : 1);
    if (!nb) return -ENOMEM;
    *buf = nb;
    *cap = len ? (size_t)len : 1;
  }
  n = pread_full(fd, *buf, (size_t)len, off + REC_HDR);
  if (n < 0) return (int)n;
  return (uint64_t)n == len && cw_crc32c(0, *buf, (size_t)len) == get_le32(h + 8);
}

/* After a damaged header at from - 1: the next offset >= from holding a
 * whole valid record, or size when there is none (*next). The CRC check
 * makes a false match in payload bytes that happen to hold the magic a
 * 2^-32 event on top of the magic and length matching. 0 or -errno. */
static int resync(int fd, uint64_t from, uint64_t size, uint8_t **buf, size_t *cap, uint64_t *next) {
  uint8_t chunk[8192];
  const uint8_t magic[4] = {REC_MAGIC & 0xff, (REC_MAGIC >> 8) & 0xff, (REC_MAGIC >> 16) & 0xff,
                            REC_MAGIC >> 24};
  uint64_t off = from;
  *next = size;
  while (size > off && size - off >= REC_HDR) {
    ssize_t n = pread_full(fd, chunk, sizeof(chunk), off);
    if (n < 0) return (int)n;
    if (n < 4) break;
    for (ssize_t i = 0; i + 4 <= n; i++) {
      if (memcmp(chunk + i, magic, 4)) continue;
      int rc = rec_valid(fd, off + (uint64_t)i, size, buf, cap);
      if (rc < 0) return rc;
      if (rc) {
        *next = off + (uint64_t)i;
        return 0;
      }
    }
    off += (uint64_t)n - 3; /* a magic may straddle two chunks */
  }
  return 0;
}

/* Counts the records from off that replay will visit: well-framed ones
 * (their CRC is checked on replay, where a mismatch skips just that one),
 * resynchronising past a damaged header as cw_spool_peek does. */
static int seg_count(int fd, uint64_t off, uint64_t size, uint64_t *nrec) {
  uint8_t h[REC_HDR];
  uint8_t *buf = NULL;
  size_t cap = 0;
  int rc = 0;
  *nrec = 0;
  while (size > off && size - off >= REC_HDR) {
    ssize_t n = pread_full(fd, h, REC_HDR, off);
    if (n < 0) {
      rc = (int)n;
      break;
    }
    uint64_t len = n == REC_HDR ? get_le32(h + 4) : 0;
    if (n < REC_HDR || get_le32(h) != REC_MAGIC || len > size - off - REC_HDR) {
      if ((rc = resync(fd, off + 1, size, &buf, &cap, &off))) break;
      continue;
    }
    off += REC_HDR + len;
    (*nrec)++;
  }
  free(buf);
  return rc;
}

static void close_reader(cw_spool_t *s) {
  if (s->rfd >= 0) close(s->rfd);
  s->rfd = -1;
}

/* Drops segs[0] (fully acknowledged or skipped): records the position
 * first, so a crash right after the unlink cannot replay it. */
static int seg_retire(cw_spool_t *s) {
  seg_t *sg = &s->segs[0];
  char name[SEG_NAME_DIGITS + 8];
  int rc = ack_store(s, sg->seq, sg->size);
  if (rc) return rc;
  close_reader(s);
  if (s->wfd >= 0 && s->wseq == sg->seq) { /* the next append starts a new segment */
    close(s->wfd);
    s->wfd = -1;
  }
  seg_name(name, sizeof(name), sg->seq);
  if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT) return -errno;
  s->st.bytes -= sg->size;
  s->st.records -= sg->nrec > s->rdone ? sg->nrec - s->rdone : 0;
  memmove(s->segs, s->segs + 1, (s->nseg - 1) * sizeof(*s->segs));
  s->nseg--;
  s->roff = 0;
  s->rdone = 0;
  return 0;
}

static int scan(cw_spool_t *s) {
  uint64_t ack_seq = 0, ack_off = 0, max_seq = 0;
  int rc = ack_load(s, &ack_seq, &ack_off);
  if (rc) return rc;
  int dfd = dup(s->dirfd);
  if (dfd < 0) return -errno;
  DIR *d = fdopendir(dfd);
  if (!d) {
    rc = -errno;
    close(dfd);
    return rc;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    seg_t sg = {0};
    if (!seg_parse(de->d_name, &sg.seq)) continue;
    if ((rc = seg_push(s, sg))) goto out;
  }
  if (s->nseg > 1) qsort(s->segs, s->nseg, sizeof(*s->segs), seg_cmp);
  size_t keep = 0;
  for (size_t i = 0; i < s->nseg; i++) {
    seg_t sg = s->segs[i];
    char name[SEG_NAME_DIGITS + 8];
    struct stat stt;
    seg_name(name, sizeof(name), sg.seq);
    if (sg.seq > max_seq) max_seq = sg.seq;
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      rc = -errno;
      goto out;
    }
    if (fstat(fd, &stt) < 0) {
      rc = -errno;
      close(fd);
      goto out;
    }
    sg.size = (uint64_t)stt.st_size;
    uint64_t start = sg.seq == ack_seq ? ack_off : 0;
    /* Acknowledged before a crash: finish the deletion now. */
    if (sg.seq < ack_seq || (sg.seq == ack_seq && ack_off >= sg.size)) {
      close(fd);
      if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT) {
        rc = -errno;
        goto out;
      }
      continue;
    }
    rc = seg_count(fd, start, sg.size, &sg.nrec);
    close(fd);
    if (rc) goto out;
    if (keep == 0) s->roff = start;
    s->segs[keep++] = sg;
    s->st.bytes += sg.size;
    s->st.records += sg.nrec;
  }
  s->nseg = keep;
  if (ack_seq > max_seq) max_seq = ack_seq;
  s->next_seq = max_seq + 1;
  rc = 0;
out:
  closedir(d);
  return rc;
}

int cw_spool_open(cw_spool_t **out, const char *dir, uint64_t max_bytes, uint64_t segment_bytes) {
  int rc;
  *out = NULL;
  cw_spool_t *s = calloc(1, sizeof(*s));
  if (!s) return -ENOMEM;
  s->dirfd = s->ackfd = s->wfd = s->rfd = -1;
  s->max_bytes = max_bytes ? max_bytes : UINT64_MAX; /* 0: no bound */
  s->segment_bytes = segment_bytes ? segment_bytes : DEFAULT_SEGMENT_BYTES;
  if ((rc = cw_mkdir_p(dir))) goto fail;
  s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0) {
    rc = -errno;
    goto fail;
  }
  /* A new ack file's directory entry must be durable too, or a power cut
   * could forget the position (and replay acknowledged records). */
  s->ackfd = openat(s->dirfd, "ack", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (s->ackfd >= 0) {
    if (fsync(s->dirfd) < 0) {
      rc = -errno;
      goto fail;
    }
  } else if (errno == EEXIST) {
    s->ackfd = openat(s->dirfd, "ack", O_RDWR | O_CLOEXEC);
  }
  if (s->ackfd < 0) {
    rc = -errno;
    goto fail;
  }
  if ((rc = scan(s))) goto fail;
  *out = s;
  return 0;
fail:
  cw_spool_close(s);
  return rc;
}

void cw_spool_close(cw_spool_t *s) {
  if (!s) return;
  close_reader(s);
  if (s->wfd >= 0) close(s->wfd);
  if (s->ackfd >= 0) close(s->ackfd);
  if (s->dirfd >= 0) close(s->dirfd);
  free(s->segs);
  free(s->rbuf);
  free(s);
}

/* Creates the next segment and makes its directory entry durable. */
static int seg_create(cw_spool_t *s) {
  char name[SEG_NAME_DIGITS + 8];
  seg_t sg = {.seq = s->next_seq};
  int rc = seg_push(s, sg);
  if (rc) return rc;
  seg_name(name, sizeof(name), sg.seq);
  int fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || fsync(s->dirfd) < 0) {
    rc = -errno;
    if (fd >= 0) {
      close(fd);
      unlinkat(s->dirfd, name, 0);
    }
    s->nseg--;
    return rc;
  }
  if (s->wfd >= 0) close(s->wfd);
  s->wfd = fd;
  s->wseq = sg.seq;
  s->next_seq++;
  return 0;
}

/* The max_bytes bound counts whole segment files: acknowledged records give
 * their space back when their segment is deleted, so a bound should be a few
 * segment_bytes at least. */
int cw_spool_append(cw_spool_t *s, const void *data, size_t len) {
  uint8_t h[REC_HDR];
  if (len > UINT32_MAX) return -EFBIG;
  uint64_t rec = REC_HDR + (uint64_t)len;
  if (s->st.bytes > s->max_bytes || rec > s->max_bytes - s->st.bytes) return -ENOSPC;
  seg_t *cur = s->wfd >= 0 ? &s->segs[s->nseg - 1] : NULL;
  if (!cur || (cur->size > 0 && cur->size + rec > s->segment_bytes)) {
    int rc = seg_create(s);
    if (rc) return rc;
    cur = &s->segs[s->nseg - 1];
  }
  put_le32(h, REC_MAGIC);
  put_le32(h + 4, (uint32_t)len);
  put_le32(h + 8, cw_crc32c(0, data, len));
  struct iovec iov[2] = {{h, REC_HDR}, {(void *)data, len}};
  size_t done = 0;
  int rc = 0;
  while (done < rec) { /* pwritev at the known end: a short write is resumed */
    ssize_t n;
    if (done < REC_HDR) {
      iov[0].iov_base = h + done;
      iov[0].iov_len = REC_HDR - done;
      n = pwritev(s->wfd, iov, 2, (off_t)(cur->size + done));
    } else {
      n = pwrite(s->wfd, (const uint8_t *)data + (done - REC_HDR), rec - done, (off_t)(cur->size + done));
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      break;
    }
    done += (size_t)n;
  }
  if (!rc && fdatasync(s->wfd) < 0) rc = -errno;
  if (rc) {
    /* Take the partial record back; if that fails too, leave this segment
     * (replay stops at the torn record) and start a fresh one next time. */
    if (ftruncate(s->wfd, (off_t)cur->size) < 0 || fdatasync(s->wfd) < 0) {
      close(s->wfd);
      s->wfd = -1;
    }
    return rc;
  }
  cur->size += rec;
  cur->nrec++;
  s->st.bytes += rec;
  s->st.records++;
  s->st.appended++;
  return 0;
}


int cw_spool_peek(cw_spool_t *s, const void **data, size_t *len) {
  uint8_t h[REC_HDR];
  int rc;
  *data = NULL;
  *len = 0;
  if (s->pending) {
    *data = s->rbuf;
    *len = (size_t)(s->pending - REC_HDR);
    return 1;
  }
  while (s->nseg > 0) {
    seg_t *sg = &s->segs[0];
    bool active = s->wfd >= 0 && s->wseq == sg->seq;
    if (s->roff >= sg->size) {
      if (active) return 0; /* caught up with the writer */
      if ((rc = seg_retire(s))) return rc;
      continue;
    }
    if (s->rfd < 0 || s->rfd_seq != sg->seq) {
      char name[SEG_NAME_DIGITS + 8];
      close_reader(s);
      seg_name(name, sizeof(name), sg->seq);
      s->rfd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
      if (s->rfd < 0) return -errno;
      s->rfd_seq = sg->seq;
    }
    uint64_t left = sg->size - s->roff;
    ssize_t n = pread_full(s->rfd, h, REC_HDR, s->roff);
    if (n < 0) return (int)n;
    uint64_t plen = n == REC_HDR ? get_le32(h + 4) : 0;
    if (left < REC_HDR || n < REC_HDR || get_le32(h) != REC_MAGIC || plen > left - REC_HDR) {
      /* damaged header or torn tail: on to the next whole record, if any */
      uint64_t next;
      s->st.torn++;
      if ((rc = resync(s->rfd, s->roff + 1, sg->size, &s->rbuf, &s->rcap, &next))) return rc;
      s->roff = next;
      continue;
    }
    if (plen > s->rcap || !s->rbuf) { /* bounded by the file size checked above */
      size_t cap = plen ? (size_t)plen : 1;
      uint8_t *nb = realloc(s->rbuf, cap);
      if (!nb) return -ENOMEM;
      s->rbuf = nb;
      s->rcap = cap;
    }
    n = pread_full(s->rfd, s->rbuf, (size_t)plen, s->roff + REC_HDR);
    if (n < 0) return (int)n;
    if ((uint64_t)n != plen || cw_crc32c(0, s->rbuf, (size_t)plen) != get_le32(h + 8)) {
      /* framing intact, content damaged: drop this record only (counted at
       * open, so it leaves stats.records like an acknowledged one) */
      s->st.torn++;
      s->roff += REC_HDR + plen;
      s->rdone++;
      if (s->st.records) s->st.records--;
      continue;
    }
    s->pending = REC_HDR + plen;
    *data = s->rbuf;
    *len = (size_t)plen;
    return 1;
  }
  return 0;
}

int cw_spool_ack(cw_spool_t *s) {
  if (!s->pending || s->nseg == 0) return -EINVAL;
  seg_t *sg = &s->segs[0];
  uint64_t off = s->roff + s->pending;
  int rc;
  if (off >= sg->size) {
    s->roff = off;
    s->rdone++;
    s->pending = 0;
    s->st.records--;
    s->st.replayed++;
    return seg_retire(s); /* stores the position, then deletes the file */
  }
  if ((rc = ack_store(s, sg->seq, off))) return rc;
  s->roff = off;
  s->rdone++;
  s->pending = 0;
  s->st.records--;
  s->st.replayed++;
  return 0;
}

void cw_spool_stats(const cw_spool_t *s, cw_spool_stats_t *st) { *st = s->st; }
