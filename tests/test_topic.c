/* test_topic.c - topic pattern compile, subscription filter and matching
 * (lib/topic.c), including the station and socket segment rules. */
#include <errno.h>

#include "decode.h"
#include "test.h"

/* Match a NUL-terminated topic; returns the socket, or -1 when rejected. */
static int match(const cw_topic_t *t, const char *topic, char *station) {
  int sock = -2;
  char st[CW_STATION_MAX + 1];
  if (cw_topic_match(t, topic, strlen(topic), station ? station : st, &sock) != CW_REJ_OK)
    return -1;
  return sock;
}

CW_TEST(topic_compile_default) {
  cw_topic_t t;
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/{socket}/telemetry"), 0);
  CHECK_EQ(t.nseg, 4);
  CHECK_EQ(t.station_seg, 1);
  CHECK_EQ(t.socket_seg, 2);
  CHECK_STR(t.seg[0], "cw");
  CHECK_STR(t.seg[3], "telemetry");
  CHECK_STR(t.pattern, "cw/{station}/{socket}/telemetry");
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/telemetry"), 0);
  CHECK_EQ(t.nseg, 3);
  CHECK_EQ(t.socket_seg, -1);
  CHECK_EQ(cw_topic_compile(&t, "{station}"), 0);
  CHECK_EQ(t.nseg, 1);
  CHECK_EQ(t.station_seg, 0);
}

CW_TEST(topic_compile_rejects) {
  cw_topic_t t;
  char big[300];
  const char *bad[] = {
      "", "cw/+/x/{station}", "cw/#", "cw/{station}/#", "cw/a+b/{station}",
      "cw//{station}", "/cw/{station}", "cw/{station}/", "{socket}/x",
      "{station}/{station}", "{station}/{socket}/{socket}", "{station}/{foo}",
      "x{station}/y", "{station}}", "cw/{Station}", "no/placeholder",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (cw_topic_compile(&t, bad[i]) != -EINVAL) {
      cw_test_fail(__FILE__, __LINE__, "accepted pattern \"%s\"", bad[i]);
      return;
    }
  }
  /* 17 segments: one over CW_TOPIC_MAX_SEGMENTS. */
  strcpy(big, "{station}");
  for (int i = 0; i < 16; i++) strcat(big, "/a");
  CHECK_EQ(cw_topic_compile(&t, big), -EINVAL);
  big[strlen(big) - 2] = '\0'; /* 16 segments: fine */
  CHECK_EQ(cw_topic_compile(&t, big), 0);
  CHECK_EQ(t.nseg, 16);
  /* A 64-byte literal does not fit seg[][64]; 63 does. */
  memset(big, 'x', 64);
  strcpy(big + 64, "/{station}");
  CHECK_EQ(cw_topic_compile(&t, big), -EINVAL);
  CHECK_EQ(cw_topic_compile(&t, big + 1), 0);
  /* Whole pattern must fit pattern[256]. */
  memset(big, 0, sizeof big);
  strcpy(big, "{station}");
  while (strlen(big) < 260) strcat(big, "/abcdefghij");
  CHECK_EQ(cw_topic_compile(&t, big), -EINVAL);
  CHECK_EQ(cw_topic_compile(&t, NULL), -EINVAL);
}

CW_TEST(topic_filter_output) {
  cw_topic_t t;
  char out[64];
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/{socket}/telemetry"), 0);
  CHECK_EQ(cw_topic_filter(&t, out, sizeof out), 0);
  CHECK_STR(out, "cw/+/+/telemetry");
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/telemetry"), 0);
  CHECK_EQ(cw_topic_filter(&t, out, sizeof out), 0);
  CHECK_STR(out, "cw/+/telemetry");
  CHECK_EQ(cw_topic_compile(&t, "site/{station}/plug/{socket}/data"), 0);
  CHECK_EQ(cw_topic_filter(&t, out, sizeof out), 0);
  CHECK_STR(out, "site/+/plug/+/data");
  CHECK_EQ(cw_topic_compile(&t, "{station}/x"), 0);
  CHECK_EQ(cw_topic_filter(&t, out, sizeof out), 0);
  CHECK_STR(out, "+/x");
  /* "+/x" needs 4 bytes with its NUL: 3 is too small, 4 is exact. */
  CHECK_EQ(cw_topic_filter(&t, out, 3), -ENOSPC);
  memset(out, '#', sizeof out);
  CHECK_EQ(cw_topic_filter(&t, out, 4), 0);
  CHECK_STR(out, "+/x");
  CHECK_EQ(cw_topic_filter(&t, out, 0), -ENOSPC);
}

CW_TEST(topic_match_socket_segment) {
  cw_topic_t t;
  char st[CW_STATION_MAX + 1];
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/{socket}/telemetry"), 0);
  CHECK_EQ(match(&t, "cw/CX-0423/7/telemetry", st), 7);
  CHECK_STR(st, "CX-0423");
  CHECK_EQ(match(&t, "cw/a_b/1/telemetry", st), 1);
  CHECK_EQ(match(&t, "cw/a/10/telemetry", NULL), 10);
  CHECK_EQ(match(&t, "cw/a/255/telemetry", NULL), 255);
  const char *bad[] = {"cw/a/0/telemetry", "cw/a/256/telemetry", "cw/a/07/telemetry",
                       "cw/a/-1/telemetry", "cw/a/+7/telemetry", "cw/a/7a/telemetry",
                       "cw/a/ 7/telemetry", "cw/a/1000/telemetry", "cw/a//telemetry",
                       "cw/a/99999999999/telemetry", "cw/a/+/telemetry"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (match(&t, bad[i], NULL) != -1) {
      cw_test_fail(__FILE__, __LINE__, "matched \"%s\"", bad[i]);
      return;
    }
  }
}

CW_TEST(topic_match_segments) {
  cw_topic_t t;
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/{socket}/telemetry"), 0);
  const char *bad[] = {"cw/a/7", "cw/a/7/telemetry/extra", "cw/a/7/telemetry/", "/cw/a/7/telemetry",
                       "cw/a/7/telemetr", "cw/a/7/telemetryx", "CW/a/7/telemetry", "cw",
                       "cw//7/telemetry", "cw/#/7/telemetry", "cw/a+/7/telemetry", "",
                       "cw/a b/7/telemetry", "cw/a.b/7/telemetry"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (match(&t, bad[i], NULL) != -1) {
      cw_test_fail(__FILE__, __LINE__, "matched \"%s\"", bad[i]);
      return;
    }
  }
  /* The topic is a (pointer, length) pair: bytes past len are not read, and
   * a NUL inside the literal is a mismatch, not an early end. */
  char st[CW_STATION_MAX + 1];
  int sock = 0;
  const char *buf = "cw/a/7/telemetry/ignored";
  CHECK_EQ(cw_topic_match(&t, buf, 16, st, &sock), CW_REJ_OK);
  CHECK_EQ(sock, 7);
  CHECK_EQ(cw_topic_match(&t, buf, 15, st, &sock), CW_REJ_BAD_TOPIC);
  CHECK_EQ(cw_topic_match(&t, "cw/a/7/tele\0metry", 17, st, &sock), CW_REJ_BAD_TOPIC);
  CHECK_EQ(cw_topic_match(&t, "cw\0/a/7/telemetry", 17, st, &sock), CW_REJ_BAD_TOPIC);
  CHECK_EQ(cw_topic_match(&t, "cw/a\0/7/telemetry", 17, st, &sock), CW_REJ_BAD_TOPIC);
  /* An uncompiled (zeroed) pattern matches nothing. */
  cw_topic_t z;
  memset(&z, 0, sizeof z);
  CHECK_EQ(cw_topic_match(&z, "cw/a/7/telemetry", 16, st, &sock), CW_REJ_BAD_TOPIC);
}

CW_TEST(topic_match_custom_patterns) {
  cw_topic_t t;
  char st[CW_STATION_MAX + 1];
  CHECK_EQ(cw_topic_compile(&t, "site/{station}/plug/{socket}/data"), 0);
  CHECK_EQ(match(&t, "site/S1/plug/12/data", st), 12);
  CHECK_STR(st, "S1");
  CHECK_EQ(match(&t, "site/S1/plug/12", st), -1);
  CHECK_EQ(match(&t, "site/S1/sock/12/data", st), -1);
  CHECK_EQ(cw_topic_compile(&t, "{station}/x"), 0);
  CHECK_EQ(match(&t, "ABC/x", st), 0); /* no {socket}: socket 0 */
  CHECK_STR(st, "ABC");
  CHECK_EQ(match(&t, "ABC/y", st), -1);
  CHECK_EQ(match(&t, "ABC/x/", st), -1);
  CHECK_EQ(match(&t, "/x", st), -1);
  /* Socket before station. */
  CHECK_EQ(cw_topic_compile(&t, "{socket}/{station}"), 0);
  CHECK_EQ(match(&t, "3/Z", st), 3);
  CHECK_STR(st, "Z");
}

CW_TEST(topic_station_length) {
  cw_topic_t t;
  char st[CW_STATION_MAX + 1], topic[64];
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/telemetry"), 0);
  snprintf(topic, sizeof topic, "cw/%s/telemetry", "abcdefghijABCDEFGHIJ0123456789_-");
  CHECK_EQ(match(&t, topic, st), 0);
  CHECK_EQ(strlen(st), 32);
  CHECK_STR(st, "abcdefghijABCDEFGHIJ0123456789_-");
  snprintf(topic, sizeof topic, "cw/%s/telemetry", "abcdefghijABCDEFGHIJ0123456789_-x");
  CHECK_EQ(match(&t, topic, st), -1);
  CHECK(cw_station_valid("a", 1));
  CHECK(!cw_station_valid("", 0));
  CHECK(!cw_station_valid("a/b", 3));
  CHECK(!cw_station_valid("\xc3\xa9", 2));
}
