/* log.c - the daemon's diagnostic log on stderr. When stderr is journald's
 * stream (JOURNAL_STREAM names its device and inode) each line starts with
 * an sd-daemon "<N>" priority prefix so journald files it at the right level
 * and adds its own timestamp; anywhere else (a terminal, a file, a pipe to
 * another logger) each line starts with an RFC 3339 UTC time with
 * milliseconds and a level word, so lines from different machines and zones
 * sort and compare. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static _Atomic int log_level = CW_LOG_INFO;
static _Atomic int journal_mode = -1; /* -1 unknown, decided on first use */

int cw_log_journal_stream(void) {
  /* systemd.exec(5): JOURNAL_STREAM is "device:inode" of the stream it
   * connected; a child whose stderr was redirected elsewhere inherits the
   * variable but not the stream, hence the comparison. */
  const char *v = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0) return 0;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void cw_log_set_level(int level) {
  if (level < CW_LOG_ERROR) level = CW_LOG_ERROR;
  if (level > CW_LOG_DEBUG) level = CW_LOG_DEBUG;
  atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

void cw_log(int level, const char *fmt, ...) {
  /* syslog priorities: err 3, warning 4, info 6, debug 7 */
  static const int prio[] = {3, 4, 6, 7};
  static const char *word[] = {"error", "warn", "info", "debug"};
  char line[2048];
  size_t n = 0;
  va_list ap;

  if (level > atomic_load_explicit(&log_level, memory_order_relaxed)) return;
  if (level < CW_LOG_ERROR) level = CW_LOG_ERROR;
  if (level > CW_LOG_DEBUG) level = CW_LOG_DEBUG;
  int journal = atomic_load_explicit(&journal_mode, memory_order_relaxed);
  if (journal < 0) {
    journal = cw_log_journal_stream();
    atomic_store_explicit(&journal_mode, journal, memory_order_relaxed);
  }
  if (!journal) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000L,
                          word[level]);
  } else {
    n = (size_t)snprintf(line, sizeof line, "<%d>", prio[level]);
  }
  va_start(ap, fmt);
  int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
  va_end(ap);
  if (k < 0) k = 0;
  n += (size_t)k;
  if (n > sizeof line - 2) n = sizeof line - 2;
  /* one write per line so lines from different threads never interleave */
  for (size_t i = 0; i < n; i++)
    if (line[i] == '\n') line[i] = ' ';
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}
