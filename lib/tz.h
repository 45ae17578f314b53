/* tz.h - UTC offsets of an IANA time zone from its compiled tzfile (TZif,
 * RFC 8536), without the C library's process-wide TZ: thread-safe once
 * loaded. Times after the file's last transition follow its footer's POSIX
 * TZ rule (the Mm.w.d form tzdata uses); a footer this parser does not know
 * keeps the last transition's offset. */
#ifndef CW_TZ_H
#define CW_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_tz_rule {
  int month, week, wday; /* Mm.w.d: week 1..5 (5 = last), wday 0 = Sunday */
  int32_t secs;          /* local time of the change, seconds (may be < 0 or > 24 h) */
} cw_tz_rule_t;

typedef struct cw_tz {
  int64_t *at;       /* transition instants, seconds since the epoch, ascending */
  int32_t *off;      /* UTC offset in seconds from at[i] on */
  uint32_t n;
  int32_t off0;      /* before the first transition */
  int have_rule;     /* footer: std_off, or std_off/dst_off switched by start/end */
  int have_dst;
  int32_t std_off, dst_off;
  cw_tz_rule_t start, end;
} cw_tz_t;

/* 0, -EINVAL (not a TZif file this parser reads) or -ENOMEM. z is freed on error. */
int cw_tz_parse(cw_tz_t *z, const uint8_t *buf, size_t len);
/* name: an IANA zone ("Europe/Berlin") under dir (NULL: $TZDIR, else
 * /usr/share/zoneinfo). 0, -ENOENT, -EINVAL or -ENOMEM. */
int cw_tz_load(cw_tz_t *z, const char *dir, const char *name);
void cw_tz_free(cw_tz_t *z);
/* UTC offset in seconds at t (seconds since the epoch). */
int32_t cw_tz_offset(const cw_tz_t *z, int64_t t);

#endif
