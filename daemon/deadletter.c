/* deadletter.c - the bounded, rotated file of rejected input. One line per
 * reject (time, reason, element index, detail, topic, payload), escaped so a
 * hostile payload can neither break the line structure nor the terminal of
 * whoever reads it. When the file passes max_bytes it is renamed PATH.1
 * (replacing the previous one), so the disk use is bounded by 2 x max_bytes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "deadletter.h"
#include "log.h"
#include "text.h"

#define PAYLOAD_CAP 4096 /* payload bytes kept per line; the length says the rest */
#define LINE_CAP (PAYLOAD_CAP * 6 + 2048)

struct cw_deadletter {
  pthread_mutex_t mu;
  int fd;
  uint64_t size;
  uint64_t max_bytes;
  char path[256];
  _Atomic uint64_t *written; /* lines written; may be NULL */
};

static int open_file(cw_deadletter_t *dl) {
  int fd = open(dl->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return -errno;
  struct stat st;
  dl->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  dl->fd = fd;
  return 0;
}

int cw_deadletter_open(cw_deadletter_t **out, const char *path, uint64_t max_bytes,
                       _Atomic uint64_t *written) {
  cw_deadletter_t *dl = calloc(1, sizeof *dl);
  int rc;
  if (!dl) return -ENOMEM;
  if (strlen(path) >= sizeof dl->path - 2) {
    rc = -ENAMETOOLONG;
    goto fail;
  }
  snprintf(dl->path, sizeof dl->path, "%s", path);
  dl->max_bytes = max_bytes;
  dl->written = written;
  dl->fd = -1;
  if ((rc = open_file(dl))) goto fail;
  pthread_mutex_init(&dl->mu, NULL);
  *out = dl;
  return 0;
fail:
  free(dl);
  return rc;
}


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
  cw_iso_time(ts, sizeof ts, cw_now_ms(), 0);
  n += (size_t)snprintf(line + n, LINE_CAP - n, "%s reason=%s index=%d", ts, cw_reject_name(why),
                        index);
  if (detail && *detail) {
    n += (size_t)snprintf(line + n, LINE_CAP - n, " detail=\"");
    int k = cw_escape(line + n, 512, detail, strlen(detail), CW_ESC_HEX);
    n += k < 0 ? strlen(line + n) : (size_t)k;
    line[n++] = '"';
  }
  n += (size_t)snprintf(line + n, LINE_CAP - n, " topic=\"");
  size_t tl = topic_len > 512 ? 512 : topic_len;
  int k = cw_escape(line + n, 512 * 4 + 1, topic ? topic : "", topic ? tl : 0, CW_ESC_HEX);
  n += k < 0 ? strlen(line + n) : (size_t)k;
  n += (size_t)snprintf(line + n, LINE_CAP - n, "%s\" len=%zu payload=\"",
                        tl < topic_len ? "..." : "", len);
  size_t pl = len > PAYLOAD_CAP ? PAYLOAD_CAP : len;
  /* worst case 6 output bytes per input byte: always fits LINE_CAP */
  k = cw_escape(line + n, LINE_CAP - n - 16, payload ? payload : "", payload ? pl : 0, CW_ESC_HEX);
  n += k < 0 ? strlen(line + n) : (size_t)k;
  n += (size_t)snprintf(line + n, LINE_CAP - n, "%s\"\n", pl < len ? "..." : "");

  pthread_mutex_lock(&dl->mu);
  if (dl->fd >= 0 && dl->size > 0 && dl->size + n > dl->max_bytes) rotate(dl);
  if (dl->fd >= 0) {
    ssize_t w = write(dl->fd, line, n);
    if (w > 0) dl->size += (uint64_t)w;
    if (w == (ssize_t)n && dl->written) atomic_fetch_add(dl->written, 1);
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
