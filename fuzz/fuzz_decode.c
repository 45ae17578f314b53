/* fuzz-sources: lib/cw.c lib/topic.c lib/decode.c lib/json_arena.c lib/text.c */
/* fuzz-libs: -lcjson -lm */
/* fuzz_decode.c - libFuzzer target for cw_decode: the input is
 * "<topic>\n<payload>" (no '\n': all topic, empty payload). Checks the
 * callback contract on every message, not only the absence of crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

typedef struct {
  int calls, accepted;
} seen_t;

static void check(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  seen_t *s = ctx;
  s->calls++;
  if ((r != NULL) != (why == CW_REJ_OK) || (unsigned)why >= CW_REJ__COUNT || index < -1) abort();
  if (!r) return;
  s->accepted++;
  /* Whatever was accepted obeys the documented ranges. */
  if (r->socket < 1 || !cw_station_valid(r->station, strlen(r->station))) abort();
  if (!(r->have & CW_HAVE_MEASUREMENT)) abort();
  if ((r->have & CW_HAVE_V) && !(r->v >= 0 && r->v <= 400)) abort();
  if ((r->have & CW_HAVE_A) && !(r->a >= 0 && r->a <= 100)) abort();
  if ((r->have & CW_HAVE_W) && !(r->w >= 0 && r->w <= 30000)) abort();
  if ((r->have & CW_HAVE_WH) && !(r->wh >= 0 && r->wh <= 1e9)) abort();
  if ((r->have & CW_HAVE_T) && !(r->t >= -50 && r->t <= 1200)) abort();
  if ((r->have & CW_HAVE_T_AMB) && !(r->t_amb >= -50 && r->t_amb <= 1200)) abort();
  if ((r->have & CW_HAVE_SMOKE) && r->smoke != 0 && r->smoke != 1) abort();
  if ((r->have & CW_HAVE_STATE) && (r->state < 0 || r->state > CW_STATE_FAULT)) abort();
  if ((r->have & CW_HAVE_STOP) && (r->stop < CW_STOP_FULL || r->stop > CW_STOP_SMOKE)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static cw_decode_cfg_t cfg;
  static int ready;
  if (!ready) {
    cw_decode_cfg_defaults(&cfg);
    cfg.max_payload = 1024; /* under libFuzzer's 4096-byte max_len: "oversize" is reachable */
    ready = 1;
  }
  const uint8_t *nl = memchr(data, '\n', size);
  size_t tlen = nl ? (size_t)(nl - data) : size;
  const uint8_t *payload = nl ? nl + 1 : data + size;
  size_t plen = size - tlen - (nl ? 1 : 0);
  /* Copy both parts into exact-size heap buffers so ASan sees any read
   * past their ends (the real payloads are not NUL-terminated either). */
  char *topic = malloc(tlen ? tlen : 1);
  char *body = malloc(plen ? plen : 1);
  if (!topic || !body) abort();
  memcpy(topic, data, tlen);
  if (plen) memcpy(body, payload, plen);
  seen_t s = {0, 0};
  int n = cw_decode(&cfg, topic, tlen, body, plen, 1764374400123LL, check, &s);
  if (n != s.accepted || s.calls < 1) abort();
  /* The strict check is total: it must answer for any bytes. */
  (void)cw_json_strict_check(body, plen);
  free(body);
  free(topic);
  return 0;
}
