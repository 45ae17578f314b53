/* test_alert_ref.c - short alert references (lib/alert_ref.c): format,
 * per-day counter and its restore, and what operators type. The same
 * references from the database side are checked in test_schema_ops.c. */
#include <errno.h>

#include "alert_ref.h"
#include "test.h"

#define DAY_MS 86400000LL

CW_TEST(alert_ref_format) {
  char out[CW_ALERT_REF_MAX];
  /* 2026-11-29 is day 20786 since 1970-01-01 */
  CHECK_EQ(cw_alert_ref_day(20786 * DAY_MS + 5), 20786);
  CHECK_EQ(cw_alert_ref_format(out, sizeof out, 20786, 42), 11);
  CHECK_STR(out, "A-1129-0042");
  CHECK_EQ(cw_alert_ref_format(out, sizeof out, 0, 12345), 12);
  CHECK_STR(out, "A-0101-12345");
  CHECK_EQ(cw_alert_ref_format(out, sizeof out, 19782, 1), 11); /* 2024-02-29 */
  CHECK_STR(out, "A-0229-0001");
  CHECK_EQ(cw_alert_ref_format(out, sizeof out, -1, 7), 11); /* 1969-12-31 */
  CHECK_STR(out, "A-1231-0007");
  CHECK_EQ(cw_alert_ref_day(-1), -1);
  CHECK_EQ(cw_alert_ref_format(out, 11, 20786, 42), -ENOSPC);
  CHECK_STR(out, "");
  CHECK_EQ(cw_alert_ref_format(out, sizeof out, 20786, 0), -EINVAL);
}

CW_TEST(alert_ref_counter_per_day) {
  cw_alert_ref_ctr_t c = {0, 0};
  char out[CW_ALERT_REF_MAX];
  int64_t t = 20786 * DAY_MS + 23 * 3600000LL;
  CHECK(cw_alert_ref_next(&c, t, out, sizeof out) > 0);
  CHECK_STR(out, "A-1129-0001");
  CHECK(cw_alert_ref_next(&c, t + 1000, out, sizeof out) > 0);
  CHECK_STR(out, "A-1129-0002");
  /* a restart restored from the database: continue after 17 */
  cw_alert_ref_restore(&c, 20786, 17);
  CHECK(cw_alert_ref_next(&c, t + 2000, out, sizeof out) > 0);
  CHECK_STR(out, "A-1129-0018");
  cw_alert_ref_restore(&c, 20786, 3); /* lower: ignored */
  cw_alert_ref_restore(&c, 20785, 99); /* older day: ignored */
  CHECK(cw_alert_ref_next(&c, t + 3000, out, sizeof out) > 0);
  CHECK_STR(out, "A-1129-0019");
  /* midnight UTC: back to 1 */
  CHECK(cw_alert_ref_next(&c, t + 3600000LL, out, sizeof out) > 0);
  CHECK_STR(out, "A-1130-0001");
  CHECK_EQ(c.last, 1);
  /* a failed format hands nothing out */
  CHECK_EQ(cw_alert_ref_next(&c, t + 3600000LL, out, 4), -ENOSPC);
  CHECK_EQ(c.last, 1);
}

CW_TEST(alert_ref_parse_typed) {
  int md = 0;
  uint32_t n = 0;
  CHECK_EQ(cw_alert_ref_parse("A-1129-0042", &md, &n), 0);
  CHECK_EQ(md, 1129);
  CHECK_EQ(n, 42);
  CHECK_EQ(cw_alert_ref_parse(" a-0101-7 ", &md, &n), 0);
  CHECK_EQ(md, 101);
  CHECK_EQ(n, 7);
  CHECK_EQ(cw_alert_ref_parse("0229-12345", &md, &n), 0);
  CHECK_EQ(n, 12345);
  CHECK_EQ(cw_alert_ref_parse("A1129-3", &md, &n), 0);
  const char *bad[] = {"", "A-", "A-1129", "A-1129-", "A-1129-0", "A-1329-1", "A-1100-1",
                       "A-129-1", "A-1129-1x", "1795971244435718", "B-1129-1", "A-1129-99999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (cw_alert_ref_parse(bad[i], &md, &n) != -EINVAL) {
      cw_test_fail(__FILE__, __LINE__, "parse(\"%s\") accepted", bad[i]);
      return;
    }
  }
}
