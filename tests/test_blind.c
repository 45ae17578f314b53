/* test_blind.c - lib/blind.h: when the daemon can see its stations. */
#include <string.h>

#include "blind.h"
#include "test.h"

#define S 1000

/* Start blind; connected and nothing received: sighted. Broker down 60 s:
 * blind at once, the ingest alert after alert_ms, cleared on reconnect. */
CW_TEST(blind_disconnect_alert_once) {
  cw_blind_t b;
  cw_blind_init(&b, 10 * S, 10 * S, 1 * S, 0);
  CHECK(b.blind);
  cw_blind_obs_t o = {.connected = true};
  CHECK_EQ(cw_blind_update(&b, &o, 1 * S), CW_BLIND_CHANGED);
  CHECK(!b.blind);
  o.connected = false;
  CHECK_EQ(cw_blind_update(&b, &o, 100 * S), CW_BLIND_CHANGED);
  CHECK(b.blind && b.why == CW_BLIND_DISCONNECTED);
  int raised = 0;
  for (int64_t t = 101 * S; t < 160 * S; t += 250)
    if (cw_blind_update(&b, &o, t) & CW_BLIND_RAISE) raised++;
  CHECK_EQ(raised, 1);
  o.connected = true;
  CHECK_EQ(cw_blind_update(&b, &o, 160 * S), CW_BLIND_CHANGED | CW_BLIND_CLEAR);
  CHECK_EQ(b.longest_ms, 60 * S);
  CHECK_EQ(cw_blind_update(&b, &o, 161 * S), 0);
}

/* A short reconnect (under alert_ms) pauses the engines but pages nobody. */
CW_TEST(blind_short_spell_no_alert) {
  cw_blind_t b;
  cw_blind_init(&b, 10 * S, 10 * S, 1 * S, 0);
  cw_blind_obs_t o = {.connected = true};
  cw_blind_update(&b, &o, 0);
  o.connected = false;
  int bits = 0;
  for (int64_t t = S; t < 5 * S; t += 250) bits |= cw_blind_update(&b, &o, t);
  o.connected = true;
  bits |= cw_blind_update(&b, &o, 5 * S);
  CHECK_EQ(bits, CW_BLIND_CHANGED);
  CHECK(!b.blind);
}

/* Replaying a backlog: connected, readings arrive, none of them live for
 * more than lag_ms: lagging. Once a live one arrives: sighted. A station
 * with a slow clock among live ones does not make the daemon blind. */
CW_TEST(blind_lagging_backlog) {
  cw_blind_t b;
  cw_blind_init(&b, 10 * S, 10 * S, 1 * S, 0);
  cw_blind_obs_t o = {.connected = true, .latest_recv_ms = 1 * S, .fresh_recv_ms = 0};
  cw_blind_update(&b, &o, 1 * S); /* 1 s of old readings only: not yet */
  CHECK(!b.blind);
  o.latest_recv_ms = 12 * S;
  CHECK_EQ(cw_blind_update(&b, &o, 12 * S), CW_BLIND_CHANGED);
  CHECK(b.blind && b.why == CW_BLIND_LAGGING);
  char buf[64];
  CHECK(!strcmp(cw_blind_why_name(b.why, buf, sizeof buf), "lagging"));
  o.fresh_recv_ms = o.latest_recv_ms = 13 * S;
  CHECK_EQ(cw_blind_update(&b, &o, 13 * S), CW_BLIND_CHANGED);
  /* slow-clock station: latest is its old reading, a live one 3 s before */
  o.latest_recv_ms = 16 * S;
  CHECK_EQ(cw_blind_update(&b, &o, 16 * S), 0);
}

/* A delivery waiting on a full ring for stall_ms: stalled; names combine. */
CW_TEST(blind_stalled_and_names) {
  cw_blind_t b;
  cw_blind_init(&b, 10 * S, 10 * S, 1 * S, 0);
  cw_blind_obs_t o = {.connected = true, .stalled_ms = 500};
  cw_blind_update(&b, &o, 0);
  CHECK(!b.blind);
  o.stalled_ms = 1500;
  o.connected = false;
  cw_blind_update(&b, &o, S);
  char buf[64];
  CHECK(!strcmp(cw_blind_why_name(b.why, buf, sizeof buf), "disconnected+stalled"));
  CHECK(!strcmp(cw_blind_why_name(0, buf, sizeof buf), "none"));
}
