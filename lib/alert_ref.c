/* alert_ref.c - short alert references A-MMDD-NNNN (see alert_ref.h); the
 * civil-date conversion is the days-to-date algorithm of H. Hinnant's
 * "chrono-compatible low-level date algorithms", valid for any day. */
#include "alert_ref.h"

#include <errno.h>
#include <stdio.h>

int32_t cw_alert_ref_day(int64_t ts_ms) {
  int64_t d = ts_ms / 86400000;
  if (ts_ms % 86400000 < 0) d--;
  return (int32_t)d;
}

static void civil(int32_t z, int *m, int *d) {
  int64_t zz = (int64_t)z + 719468;
  int64_t era = (zz >= 0 ? zz : zz - 146096) / 146097;
  int64_t doe = zz - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
}

int cw_alert_ref_format(char *out, size_t cap, int32_t day, uint32_t seq) {
  int m, d;
  if (seq == 0) return -EINVAL;
  civil(day, &m, &d);
  int n = snprintf(out, cap, "A-%02d%02d-%04u", m, d, (unsigned)seq);
  if (n < 0 || (size_t)n >= cap) {
    if (cap) out[0] = 0;
    return -ENOSPC;
  }
  return n;
}

int cw_alert_ref_next(cw_alert_ref_ctr_t *c, int64_t now_ms, char *out, size_t cap) {
  int32_t day = cw_alert_ref_day(now_ms);
  if (day != c->day) {
    c->day = day;
    c->last = 0;
  }
  if (c->last == UINT32_MAX) return -EOVERFLOW;
  int n = cw_alert_ref_format(out, cap, day, c->last + 1);
  if (n >= 0) c->last++;
  return n;
}

void cw_alert_ref_restore(cw_alert_ref_ctr_t *c, int32_t day, uint32_t last) {
  if (c->day != day) {
    if (day < c->day) return; /* an older day: the counter is ahead already */
    c->day = day;
    c->last = 0;
  }
  if (last > c->last) c->last = last;
}

int cw_alert_ref_parse(const char *s, int *mmdd, uint32_t *seq) {
  int md = 0;
  uint64_t n = 0;
  int i = 0;
  while (*s == ' ' || *s == '\t') s++;
  if (*s == 'A' || *s == 'a') {
    s++;
    if (*s == '-') s++;
  }
  for (i = 0; i < 4; i++, s++) {
    if (*s < '0' || *s > '9') return -EINVAL;
    md = md * 10 + (*s - '0');
  }
  if (*s++ != '-') return -EINVAL;
  if (*s < '0' || *s > '9') return -EINVAL;
  for (i = 0; *s >= '0' && *s <= '9'; s++, i++) {
    n = n * 10 + (uint64_t)(*s - '0');
    if (n > UINT32_MAX) return -EINVAL;
  }
  while (*s == ' ' || *s == '\t') s++;
  if (*s || n == 0 || md / 100 < 1 || md / 100 > 12 || md % 100 < 1 || md % 100 > 31) return -EINVAL;
  *mmdd = md;
  *seq = (uint32_t)n;
  return 0;
}
