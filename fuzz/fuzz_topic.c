/* fuzz-sources: lib/cw.c lib/topic.c */
/* fuzz_topic.c - libFuzzer target for topic patterns: the input is
 * "<pattern>\n<topic>". Compiles the pattern, builds its filter, matches the
 * topic, and checks that a match yields a valid station and socket. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t plen = nl ? (size_t)(nl - data) : size;
  size_t tlen = nl ? size - plen - 1 : 0;
  char pattern[CW_TOPIC_MAX_LEN + 8];
  if (plen >= sizeof pattern) return 0;
  memcpy(pattern, data, plen);
  pattern[plen] = '\0'; /* a NUL inside just shortens the pattern */
  char *topic = malloc(tlen ? tlen : 1);
  if (!topic) abort();
  if (tlen) memcpy(topic, nl + 1, tlen);

  cw_topic_t t;
  if (cw_topic_compile(&t, pattern) == 0) {
    if (t.station_seg < 0 || t.nseg < 1 || t.nseg > CW_TOPIC_MAX_SEGMENTS) abort();
    char filter[CW_TOPIC_MAX_LEN * 2];
    if (cw_topic_filter(&t, filter, sizeof filter) != 0) abort();
    if (strlen(filter) > strlen(pattern)) abort(); /* placeholders only shrink to '+' */
    char st[CW_STATION_MAX + 1];
    int sock = -1;
    if (cw_topic_match(&t, topic, tlen, st, &sock) == CW_REJ_OK) {
      if (!cw_station_valid(st, strlen(st))) abort();
      if (t.socket_seg < 0 ? sock != 0 : (sock < 1 || sock > 255)) abort();
      /* A matching topic has as many segments as the pattern. */
      int segs = 1;
      for (size_t i = 0; i < tlen; i++) segs += topic[i] == '/';
      if (segs != t.nseg) abort();
    }
    /* The pattern's own text matches itself only when it has no placeholders
     * that reject their own names, i.e. never: "{station}" is not a station. */
    if (cw_topic_match(&t, pattern, plen, st, &sock) == CW_REJ_OK) abort();
  }
  free(topic);
  return 0;
}
