/* deadletter.c - the bounded, rotated file of rejected input. One line per
 * reject (time, reason, element index, detail, topic, payload), escaped so a
 * hostile payload can neither break the line structure nor the terminal of
 * whoever reads it. When the file passes max_bytes it is renamed PATH.1
 * (replacing the previous one), so the disk use is bounded by 2 x max_bytes.
 * Also home of the JSON string escaper the alert sinks share. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define PAYLOAD_CAP 4096 /* payload bytes kept per line; the length says the rest */
#define LINE_CAP (PAYLOAD_CAP * 6 + 2048)

struct cw_deadletter {
  pthread_mutex_t mu;
  int fd;
  uint64_t size;
  uint64_t max_bytes;
  char path[256];
  cw_daemon_t *d; /* for the counter; may be NULL */
};

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid (RFC 3629:
 * no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const uint8_t *p, size_t n) {
  uint8_t c = p[0];
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) need = 2, lo = 0xA0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
  else if (c == 0xED) need = 2, hi = 0x9F;
  else if (c == 0xF0) need = 3, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else if (c == 0xF4) need = 3, hi = 0x8F;
  else return 0;
  if (n < need + 1) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i <= need; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return need + 1;
}

int cw__escape(char *out, size_t cap, const void *in, size_t len, int mode) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *p = in;
  size_t o = 0;
  if (cap == 0) return -ENOSPC;
  for (size_t i = 0; i < len;) {
    char tmp[8];
    size_t tn = 0, adv = 1;
    uint8_t c = p[i];
    if (c == '"' || c == '\\') tmp[tn++] = '\\', tmp[tn++] = (char)c;
    else if (c == '\n') tmp[tn++] = '\\', tmp[tn++] = 'n';
    else if (c == '\r') tmp[tn++] = '\\', tmp[tn++] = 'r';
    else if (c == '\t') tmp[tn++] = '\\', tmp[tn++] = 't';
    else if (c < 0x20 || c == 0x7f) {
      memcpy(tmp, "\\u00", 4);
      tmp[4] = hex[c >> 4], tmp[5] = hex[c & 15], tn = 6;
    } else if (c < 0x80) tmp[tn++] = (char)c;
    else {
      size_t u = utf8_len(p + i, len - i);
      if (u) {
        if (o + u >= cap) return out[o] = 0, -ENOSPC;
        memcpy(out + o, p + i, u);
        o += u;
        i += u;
        continue;
      }
      if (mode == CW_ESC_HEX) {
        tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[c >> 4], tmp[3] = hex[c & 15], tn = 4;
      } else {
        memcpy(tmp, "\\ufffd", 6), tn = 6; /* JSON has no byte escapes */
      }
    }
    if (o + tn >= cap) return out[o] = 0, -ENOSPC;
    memcpy(out + o, tmp, tn);
    o += tn;
    i += adv;
  }
  out[o] = 0;
  return (int)o;
}

int cw__iso_time(char *out, size_t cap, int64_t ms, int utc_offset_min) {
  time_t t = (time_t)(ms / 1000) + (time_t)utc_offset_min * 60;
  int frac = (int)(ms % 1000);
  if (frac < 0) frac += 1000, t -= 1;
  struct tm tm;
  gmtime_r(&t, &tm);
  int off = utc_offset_min < 0 ? -utc_offset_min : utc_offset_min;
  int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac,
                   utc_offset_min < 0 ? '-' : '+', off / 60, off % 60);
  return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static int open_file(cw_deadletter_t *dl) {
  int fd = open(dl->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return -errno;
  struct stat st;
  dl->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  dl->fd = fd;
  return 0;
}

int cw_deadletter_open(cw_deadletter_t **out, const char *path, uint64_t max_bytes) {
  cw_deadletter_t *dl = calloc(1, sizeof *dl);
  int rc;
  if (!dl) return -ENOMEM;
  if (strlen(path) >= sizeof dl->path - 2) {
    rc = -ENAMETOOLONG;
    goto fail;
  }
  snprintf(dl->path, sizeof dl->path, "%s", path);
  dl->max_bytes = max_bytes;
  dl->fd = -1;
  if ((rc = open_file(dl))) goto fail;
  pthread_mutex_init(&dl->mu, NULL);
  *out = dl;
  return 0;
fail:
  free(dl);
  return rc;
}

void cw_deadletter_bind(cw_deadletter_t *dl, cw_daemon_t *d) { dl->d = d; }

/* Caller holds mu. Rename PATH -> PATH.1 and start a new file. */
static void rotate(cw_deadletter_t *dl) {
  char old[sizeof dl->path + 2];
  snprintf(old, sizeof old, "%s.1", dl->path);
  if (rename(dl->path, old) != 0) {
    cw_log(CW_LOG_WARN, "deadletter: rotate %s: %s", dl->path, strerror(errno));
    return; /* keep appending; better over the bound than silent loss */
  }
  close(dl->fd);
  dl->fd = -1;
  if (open_file(dl)) cw_log(CW_LOG_ERROR, "deadletter: reopen %s: %s", dl->path, strerror(errno));
}

void cw_deadletter_write(cw_deadletter_t *dl, cw_reject_t why, int index, const char *detail,
                         const char *topic, size_t topic_len, const void *payload, size_t len) {
  char *line = malloc(LINE_CAP);
  if (!line) return;
  size_t n = 0;
  char ts[48];
  cw__iso_time(ts, sizeof ts, cw_now_ms(), 0);
  n += (size_t)snprintf(line + n, LINE_CAP - n, "%s reason=%s index=%d", ts, cw_reject_name(why),
                        index);
  if (detail && *detail) {
    n += (size_t)snprintf(line + n, LINE_CAP - n, " detail=\"");
    int k = cw__escape(line + n, 512, detail, strlen(detail), CW_ESC_HEX);
    n += k < 0 ? strlen(line + n) : (size_t)k;
    line[n++] = '"';
  }
  n += (size_t)snprintf(line + n, LINE_CAP - n, " topic=\"");
  size_t tl = topic_len > 512 ? 512 : topic_len;
  int k = cw__escape(line + n, 512 * 4 + 1, topic ? topic : "", topic ? tl : 0, CW_ESC_HEX);
  n += k < 0 ? strlen(line + n) : (size_t)k;
  n += (size_t)snprintf(line + n, LINE_CAP - n, "%s\" len=%zu payload=\"",
                        tl < topic_len ? "..." : "", len);
  size_t pl = len > PAYLOAD_CAP ? PAYLOAD_CAP : len;
  /* worst case 6 output bytes per input byte: always fits LINE_CAP */
  k = cw__escape(line + n, LINE_CAP - n - 16, payload ? payload : "", payload ? pl : 0, CW_ESC_HEX);
  n += k < 0 ? strlen(line + n) : (size_t)k;
  n += (size_t)snprintf(line + n, LINE_CAP - n, "%s\"\n", pl < len ? "..." : "");

  pthread_mutex_lock(&dl->mu);
  if (dl->fd >= 0 && dl->size > 0 && dl->size + n > dl->max_bytes) rotate(dl);
  if (dl->fd >= 0) {
    ssize_t w = write(dl->fd, line, n);
    if (w > 0) dl->size += (uint64_t)w;
    if (w == (ssize_t)n && dl->d) atomic_fetch_add(&dl->d->m.deadletter_written, 1);
  }
  pthread_mutex_unlock(&dl->mu);
  free(line);
}

void cw_deadletter_reopen(cw_deadletter_t *dl) {
  pthread_mutex_lock(&dl->mu);
  if (dl->fd >= 0) close(dl->fd);
  dl->fd = -1;
  int rc = open_file(dl);
  pthread_mutex_unlock(&dl->mu);
  if (rc) cw_log(CW_LOG_ERROR, "deadletter: reopen %s: %s", dl->path, strerror(-rc));
}

void cw_deadletter_close(cw_deadletter_t *dl) {
  if (!dl) return;
  if (dl->fd >= 0) close(dl->fd);
  pthread_mutex_destroy(&dl->mu);
  free(dl);
}
