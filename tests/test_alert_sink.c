/* test_alert_sink.c - the alert sink (alert_sink.c): every event in the
 * alert rings reaches the log, the publish callback (retained topic, the
 * retained copy cleared on close, cut_power with actuate), the store
 * callback and the note callback, in ring order. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "alert_sink.h"
#include "fixture.h"
#include "test.h"

typedef struct rec {
  int published, stored, noted, retained_clears, cut_power;
  char last_topic[256];
  int64_t stored_ids[8];
} rec_t;

static int on_publish(void *ctx, const char *topic, const void *payload, size_t len, int retain) {
  rec_t *r = ctx;
  r->published++;
  if (len == 0 && retain) r->retained_clears++;
  if (len && strstr((const char *)payload, "cut_power") && len < 200) r->cut_power++;
  else snprintf(r->last_topic, sizeof r->last_topic, "%s", topic);
  return 0;
}

static int on_store(void *ctx, const cw_alert_event_t *ev) {
  rec_t *r = ctx;
  if (r->stored < 8) r->stored_ids[r->stored] = ev->id;
  r->stored++;
  return 0;
}

static void on_note(void *ctx, const cw_alert_event_t *ev) {
  (void)ev;
  ((rec_t *)ctx)->noted++;
}

CW_TEST(alert_sink_every_sink) {
  static cw_fx_t f;
  static cw_ring_t ring; /* an alert ring (cache-line aligned) */
  rec_t r = {0};
  char dir[] = "/tmp/cwsinkXXXXXX", log[64];
  CHECK_EQ(cw_fx_init(&f), 0);
  CHECK(mkdtemp(dir) != NULL);
  snprintf(log, sizeof log, "%s/alerts.log", dir);
  snprintf(f.cfg.alert_log, sizeof f.cfg.alert_log, "%s", log);
  f.cfg.alert_actuate = true;
  CHECK_EQ(cw_ring_init(&ring, 1 << 16), 0);
  cw_ring_t *rings[1] = {&ring};
  cw_alert_sink_cfg_t sc = {.env = &f.env, .rings = rings, .nrings = 1, .publish = on_publish,
                            .publish_ctx = &r, .store = on_store, .store_ctx = &r,
                            .note = on_note, .note_ctx = &r};
  cw_alert_sink_t *s = NULL;
  CHECK_EQ(cw_alert_sink_create(&sc, &s), 0);
  cw_alert_event_t ev = {.id = 5, .ts_ms = 1764374400000LL, .kind = CW_KIND_THERMAL_RUNAWAY,
                         .severity = CW_SEV_CRITICAL, .event = CW_EV_RAISED,
                         .state = CW_ALERT_OPEN, .socket = 3, .value = 95, .threshold = 80};
  snprintf(ev.station, sizeof ev.station, "ST1");
  snprintf(ev.unit, sizeof ev.unit, "C");
  CHECK(cw_ring_push(&ring, &ev, sizeof ev) >= 0);
  ev.id = 6;
  ev.event = CW_EV_CLOSED;
  ev.state = CW_ALERT_CLOSED;
  CHECK(cw_ring_push(&ring, &ev, sizeof ev) >= 0);
  CHECK_EQ(cw_alert_sink_drain(s), 2);
  CHECK_EQ(cw_alert_sink_drain(s), 0);
  cw_alert_sink_free(s);
  FILE *fp = fopen(log, "r");
  char line[1300];
  int lines = 0;
  while (fp && fgets(line, sizeof line, fp)) lines++;
  if (fp) fclose(fp);
  unlink(log);
  rmdir(dir);
  cw_ring_destroy(&ring);
  cw_fx_free(&f);
  CHECK_EQ(lines, 2);
  CHECK_EQ(r.stored, 2);
  CHECK_EQ(r.stored_ids[0], 5);
  CHECK_EQ(r.stored_ids[1], 6);
  CHECK_EQ(r.noted, 2);
  CHECK_EQ(r.cut_power, 1);       /* critical raised, actuate on */
  CHECK_EQ(r.retained_clears, 1); /* the close */
  CHECK_EQ(r.published, 4);       /* raised, cut_power, closed, clear */
  CHECK_STR(r.last_topic, "cw/alerts/ST1/3/thermal_runaway");
  CHECK_EQ(atomic_load(&f.m.alert_events[CW_KIND_THERMAL_RUNAWAY][CW_SEV_CRITICAL]), 2);
}
