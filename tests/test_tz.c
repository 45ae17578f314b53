/* test_tz.c - lib/tz.h on the system's real tzdata: exact offsets around
 * Europe/Berlin's 2026 daylight-saving changes and after the file's last
 * transition (the footer rule), fixed zones, and agreement with the C
 * library's localtime_r for many instants in many zones (TZ set in this
 * single-threaded test only; the daemon never sets it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "tz.h"

CW_TEST(tz_berlin_dst_exact) {
  cw_tz_t z;
  CHECK_EQ(cw_tz_load(&z, NULL, "Europe/Berlin"), 0);
  /* 2026-03-29 01:00:00 UTC: 02:00 CET -> 03:00 CEST; 2026-10-25 01:00:00 UTC back */
  CHECK_EQ(cw_tz_offset(&z, 1774746000 - 1), 3600);
  CHECK_EQ(cw_tz_offset(&z, 1774746000), 7200);
  CHECK_EQ(cw_tz_offset(&z, 1792890000 - 1), 7200);
  CHECK_EQ(cw_tz_offset(&z, 1792890000), 3600);
  /* 2045-07-01 and 2045-12-01 (past the last transition in the file: the footer rule) */
  CHECK_EQ(cw_tz_offset(&z, 2382998400), 7200);
  CHECK_EQ(cw_tz_offset(&z, 2395612800), 3600);
  cw_tz_free(&z);
  CHECK_EQ(cw_tz_load(&z, NULL, "Asia/Shanghai"), 0);
  CHECK_EQ(cw_tz_offset(&z, 1792890000), 8 * 3600);
  CHECK_EQ(cw_tz_offset(&z, 2395612800), 8 * 3600);
  cw_tz_free(&z);
  CHECK_EQ(cw_tz_load(&z, NULL, "Asia/Kathmandu"), 0);
  CHECK_EQ(cw_tz_offset(&z, 1792890000), 5 * 3600 + 45 * 60);
  cw_tz_free(&z);
  CHECK_EQ(cw_tz_load(&z, NULL, "No/Such_Zone"), -ENOENT);
  CHECK_EQ(cw_tz_load(&z, NULL, "../etc/passwd"), -EINVAL);
  CHECK_EQ(cw_tz_load(&z, "/etc", "hostname"), -EINVAL);
}

CW_TEST(tz_agrees_with_libc) {
  static const char *const zones[] = {"Europe/Berlin",   "Europe/London",    "America/New_York",
                                      "America/Sao_Paulo", "Australia/Sydney", "Australia/Lord_Howe",
                                      "Asia/Shanghai",   "Asia/Kolkata",     "Pacific/Chatham",
                                      "America/Santiago", "Africa/Casablanca", "UTC"};
  char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
  unsigned seed = 12345;
  long checked = 0;
  for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++) {
    cw_tz_t z;
    CHECK_EQ(cw_tz_load(&z, NULL, zones[k]), 0);
    setenv("TZ", zones[k], 1);
    tzset();
    for (int i = 0; i < 4000; i++) {
      seed = seed * 1103515245u + 12345u;
      /* 1971 .. 2099, and every hour across 2026's changes */
      int64_t t = i < 2000 ? 31536000LL + (int64_t)((uint64_t)seed * 4008000000ULL >> 32)
                           : 1767225600LL + (int64_t)(i - 2000) * 15 * 3600;
      time_t tt = (time_t)t;
      struct tm tm;
      localtime_r(&tt, &tm);
      if (cw_tz_offset(&z, t) != tm.tm_gmtoff) {
        printf("    %s at %lld: %d, libc %ld\n", zones[k], (long long)t, cw_tz_offset(&z, t),
               (long)tm.tm_gmtoff);
        CHECK(0);
        break;
      }
      checked++;
    }
    cw_tz_free(&z);
  }
  if (old) setenv("TZ", old, 1);
  else unsetenv("TZ");
  tzset();
  free(old);
  CHECK_EQ(checked, 48000);
}
