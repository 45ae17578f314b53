/* tz.c - TZif reader and POSIX TZ footer rules (tz.h). */
#include "tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int64_t be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  if (n == 4) return (int32_t)(uint32_t)v;
  return (int64_t)v;
}

/* --------------------------------------------------------------- footer */

static const char *name_end(const char *s) {
  if (*s == '<') {
    const char *e = strchr(s, '>');
    return e && e - s >= 4 ? e + 1 : NULL;
  }
  const char *p = s;
  while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) p++;
  return p - s >= 3 ? p : NULL;
}

/* [+-]h[h][:mm[:ss]] -> seconds (hours up to 167); NULL on error */
static const char *hms(const char *s, int32_t *out) {
  int sign = 1;
  if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
  if (*s < '0' || *s > '9') return NULL;
  long h = strtol(s, (char **)&s, 10), m = 0, sec = 0;
  if (h > 167) return NULL;
  if (*s == ':') {
    m = strtol(s + 1, (char **)&s, 10);
    if (*s == ':') sec = strtol(s + 1, (char **)&s, 10);
  }
  if (m > 59 || sec > 59) return NULL;
  *out = (int32_t)(sign * (h * 3600 + m * 60 + sec));
  return s;
}

static const char *rule(const char *s, cw_tz_rule_t *r) {
  if (*s != 'M') return NULL; /* Jn and n: not used by tzdata */
  char *e;
  r->month = (int)strtol(s + 1, &e, 10);
  if (*e != '.') return NULL;
  r->week = (int)strtol(e + 1, &e, 10);
  if (*e != '.') return NULL;
  r->wday = (int)strtol(e + 1, &e, 10);
  if (r->month < 1 || r->month > 12 || r->week < 1 || r->week > 5 || r->wday < 0 || r->wday > 6)
    return NULL;
  r->secs = 7200;
  s = e;
  if (*s == '/') s = hms(s + 1, &r->secs);
  return s;
}

/* "CET-1CEST,M3.5.0,M10.5.0/3": POSIX offsets are west-positive. */
static void footer(cw_tz_t *z, const char *s) {
  const char *p = name_end(s);
  int32_t o, d;
  if (!p || !(p = hms(p, &o))) return;
  z->std_off = -o;
  if (!*p) {
    z->have_rule = 1;
    return;
  }
  if (!(p = name_end(p))) return;
  d = o - 3600;
  if (*p && *p != ',' && !(p = hms(p, &d))) return;
  if (*p != ',' || !(p = rule(p + 1, &z->start)) || *p != ',' || !(p = rule(p + 1, &z->end)) || *p)
    return;
  z->dst_off = -d;
  z->have_dst = 1;
  z->have_rule = 1;
}

/* Days since the epoch of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int64_t year_of(int64_t t) {
  int64_t z = (t >= 0 ? t : t - 86399) / 86400 + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  return yoe + era * 400 + (mp >= 10);
}

/* Instant (UTC) of a rule's change in year y, local time at offset off. */
static int64_t rule_at(const cw_tz_rule_t *r, int64_t y, int32_t off) {
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int64_t first = days_from_civil(y, r->month, 1);
  int wd1 = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
  int dim = mdays[r->month - 1] + (r->month == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
  int day = 1 + (r->wday - wd1 + 7) % 7 + (r->week - 1) * 7;
  while (day > dim) day -= 7;
  return (first + day - 1) * 86400 + r->secs - off;
}

static int32_t rule_offset(const cw_tz_t *z, int64_t t) {
  if (!z->have_dst) return z->std_off;
  int64_t y = year_of(t + z->std_off);
  int64_t a = rule_at(&z->start, y, z->std_off), b = rule_at(&z->end, y, z->dst_off);
  int dst = a < b ? (t >= a && t < b) : !(t >= b && t < a);
  return dst ? z->dst_off : z->std_off;
}

/* --------------------------------------------------------------- TZif */

void cw_tz_free(cw_tz_t *z) {
  free(z->at);
  free(z->off);
  memset(z, 0, sizeof *z);
}

int cw_tz_parse(cw_tz_t *z, const uint8_t *buf, size_t len) {
  memset(z, 0, sizeof *z);
  if (len < 44 || memcmp(buf, "TZif", 4)) return -EINVAL;
  int v2 = buf[4] >= '2';
  const uint8_t *h = buf;
  int tsz = 4;
  for (int pass = 0; pass < 2; pass++) {
    if ((size_t)(h - buf) + 44 > len) return -EINVAL;
    uint32_t isut = (uint32_t)be(h + 20, 4), isstd = (uint32_t)be(h + 24, 4),
             leap = (uint32_t)be(h + 28, 4), timecnt = (uint32_t)be(h + 32, 4),
             typecnt = (uint32_t)be(h + 36, 4), charcnt = (uint32_t)be(h + 40, 4);
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || leap > 100000 || charcnt > 100000 ||
        isut > 256 || isstd > 256)
      return -EINVAL;
    size_t body = (size_t)timecnt * (size_t)tsz + timecnt + typecnt * 6u + charcnt +
                  leap * (size_t)(tsz + 4) + isstd + isut;
    const uint8_t *d = h + 44;
    if ((size_t)(d - buf) + body > len) return -EINVAL;
    if (pass == 0 && v2) { /* skip the 32-bit block: the 64-bit one follows */
      h = d + body;
      tsz = 8;
      v2 = 0;
      pass = -1;
      continue;
    }
    const uint8_t *idx = d + (size_t)timecnt * (size_t)tsz, *types = idx + timecnt;
    z->at = malloc((timecnt ? timecnt : 1) * sizeof *z->at);
    z->off = malloc((timecnt ? timecnt : 1) * sizeof *z->off);
    if (!z->at || !z->off) {
      cw_tz_free(z);
      return -ENOMEM;
    }
    for (uint32_t i = 0; i < timecnt; i++) {
      if (idx[i] >= typecnt) {
        cw_tz_free(z);
        return -EINVAL;
      }
      z->at[i] = be(d + (size_t)i * (size_t)tsz, tsz);
      z->off[i] = (int32_t)be(types + idx[i] * 6u, 4);
    }
    z->n = timecnt;
    z->off0 = (int32_t)be(types, 4);
    const uint8_t *f = d + body;
    if (tsz == 8 && (size_t)(f - buf) < len && *f == '\n') {
      const uint8_t *e = memchr(f + 1, '\n', len - (size_t)(f + 1 - buf));
      if (e && e - f - 1 < 128) {
        char s[128];
        memcpy(s, f + 1, (size_t)(e - f - 1));
        s[e - f - 1] = '\0';
        footer(z, s);
      }
    }
    return 0;
  }
  return -EINVAL;
}

int cw_tz_load(cw_tz_t *z, const char *dir, const char *name) {
  memset(z, 0, sizeof *z);
  if (!name || !*name || name[0] == '/' || strstr(name, "..")) return -EINVAL;
  if (!dir) dir = getenv("TZDIR");
  if (!dir || !*dir) dir = "/usr/share/zoneinfo";
  char path[512];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) return -EINVAL;
  FILE *f = fopen(path, "rbe");
  if (!f) return -errno;
  uint8_t *buf = malloc(1 << 16);
  size_t n = buf ? fread(buf, 1, 1 << 16, f) : 0;
  fclose(f);
  if (!buf) return -ENOMEM;
  int rc = cw_tz_parse(z, buf, n);
  free(buf);
  return rc;
}

int32_t cw_tz_offset(const cw_tz_t *z, int64_t t) {
  if (z->n == 0 || t >= z->at[z->n - 1]) {
    if (z->have_rule && (z->n == 0 || t >= z->at[z->n - 1])) return rule_offset(z, t);
    return z->n ? z->off[z->n - 1] : z->off0;
  }
  if (t < z->at[0]) return z->off0;
  uint32_t lo = 0, hi = z->n - 1; /* at[lo] <= t < at[hi] */
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (z->at[mid] <= t) lo = mid;
    else hi = mid;
  }
  return z->off[lo];
}
