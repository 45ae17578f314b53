/* log.c - the daemon's diagnostic log on stderr. Under systemd each line
 * starts with an sd-daemon "<N>" priority prefix so journald files it at the
 * right level and adds its own timestamp; on a terminal the prefix becomes an
 * ISO-8601 local time and a level word, for people running it by hand. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static _Atomic int log_level = CW_LOG_INFO;
static _Atomic int tty_mode = -1; /* -1 unknown, decided on first use */

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
  int tty = atomic_load_explicit(&tty_mode, memory_order_relaxed);
  if (tty < 0) {
    tty = isatty(STDERR_FILENO) ? 1 : 0;
    atomic_store_explicit(&tty_mode, tty, memory_order_relaxed);
  }
  if (tty) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ld", ts.tv_nsec / 1000000L);
    char zone[8];
    strftime(zone, sizeof zone, "%z", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, "%s %s: ", zone, word[level]);
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
