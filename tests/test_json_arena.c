/* test_json_arena.c - lib/json_arena.c: a parsed tree lives in the calling
 * thread's arena and is given back whole; a tree larger than the arena, a
 * parse nested in another and a failed parse take the malloc path or give
 * the arena back; two threads never share one; cJSON used outside a parse
 * (building and printing JSON) is unchanged. Under AddressSanitizer the
 * free part of the arena is poisoned, so a read past a node fails there. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_arena.h"
#include "test.h"

static cJSON *parse(const char *s, size_t *used) {
  const char *end = NULL;
  cJSON *j = cw_json_parse(s, strlen(s), &end);
  if (used) *used = cw_json_arena_used();
  return j;
}

CW_TEST(json_arena_tree_and_release) {
  size_t used;
  cJSON *j = parse("{\"socket\":3,\"w\":1500.5,\"state\":\"charging\",\"r\":[1,2,3]}", &used);
  CHECK(j != NULL);
  CHECK(used > 0 && used < 4096);
  CHECK_EQ(cJSON_GetObjectItemCaseSensitive(j, "socket")->valueint, 3);
  CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(j, "w")->valuedouble, 1500.5, 0);
  CHECK_STR(cJSON_GetObjectItemCaseSensitive(j, "state")->valuestring, "charging");
  CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "r")), 3);
  cw_json_release(j);
  CHECK_EQ(cw_json_arena_used(), 0);
  /* the next parse starts from the beginning of the arena again */
  size_t again;
  j = parse("{\"socket\":3,\"w\":1500.5,\"state\":\"charging\",\"r\":[1,2,3]}", &again);
  CHECK_EQ(again, used);
  cw_json_release(j);
  cw_json_release(NULL);
}

/* 20,000 numbers: ~1.3 MB of nodes, far past the 64 KiB arena; the rest
 * comes from malloc and is freed by the release (LeakSanitizer checks). */
CW_TEST(json_arena_outgrown_falls_back) {
  size_t n = 20000, cap = n * 8 + 8;
  char *s = malloc(cap);
  CHECK(s != NULL);
  size_t o = 0;
  s[o++] = '[';
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(s + o, cap - o, "%s%zu", i ? "," : "", i % 1000);
  s[o++] = ']';
  s[o] = '\0';
  size_t used;
  cJSON *j = parse(s, &used);
  free(s);
  CHECK(j != NULL);
  CHECK(used <= CW_JSON_ARENA_BYTES);
  CHECK_EQ(cJSON_GetArraySize(j), (int)n);
  long long sum = 0;
  for (const cJSON *e = j->child; e; e = e->next) sum += e->valueint;
  CHECK_EQ(sum, 20LL * 499500); /* 20 laps of 0..999 */
  cw_json_release(j);
  CHECK_EQ(cw_json_arena_used(), 0);
}

CW_TEST(json_arena_nested_parse_uses_malloc) {
  size_t outer_used, inner_used;
  cJSON *a = parse("{\"a\":\"outer\",\"n\":[10,20]}", &outer_used);
  CHECK(a != NULL);
  cJSON *b = parse("{\"b\":\"inner\"}", &inner_used);
  CHECK(b != NULL);
  CHECK_EQ(inner_used, outer_used); /* b did not touch the arena */
  CHECK_STR(cJSON_GetObjectItemCaseSensitive(b, "b")->valuestring, "inner");
  cw_json_release(b);
  CHECK_EQ(cw_json_arena_used(), outer_used); /* a still owns it */
  CHECK_STR(cJSON_GetObjectItemCaseSensitive(a, "a")->valuestring, "outer");
  CHECK_EQ(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a, "n"), 1)->valueint, 20);
  cw_json_release(a);
  CHECK_EQ(cw_json_arena_used(), 0);
}

CW_TEST(json_arena_invalid_gives_back) {
  size_t used;
  CHECK(parse("{\"a\":[1,2,{\"b\":", &used) == NULL);
  CHECK_EQ(used, 0);
  CHECK(parse("", &used) == NULL);
  cJSON *j = parse("[true]", &used);
  CHECK(j != NULL && used > 0); /* the arena serves the next parse */
  cw_json_release(j);
}

typedef struct {
  int id, bad;
} worker_t;

static void *parse_many(void *arg) {
  worker_t *w = arg;
  char s[64];
  for (int i = 0; i < 20000 && !w->bad; i++) {
    snprintf(s, sizeof s, "{\"id\":%d,\"i\":%d}", w->id, i);
    cJSON *j = parse(s, NULL);
    if (!j || cJSON_GetObjectItemCaseSensitive(j, "id")->valueint != w->id ||
        cJSON_GetObjectItemCaseSensitive(j, "i")->valueint != i)
      w->bad = 1;
    cw_json_release(j);
  }
  return NULL;
}

/* Two threads parsing at once: each reads back only its own values. */
CW_TEST(json_arena_threads_own_arenas) {
  worker_t w[2] = {{1, 0}, {2, 0}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) CHECK_EQ(pthread_create(&t[i], NULL, parse_many, &w[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  CHECK_EQ(w[0].bad, 0);
  CHECK_EQ(w[1].bad, 0);
}

/* With the hooks installed, building, printing and parsing with cJSON's own
 * calls still works (malloc underneath), also while an arena tree lives. */
CW_TEST(json_arena_other_cjson_users) {
  cw_json_arena_install();
  cJSON *held = parse("{\"held\":1}", NULL);
  CHECK(held != NULL);
  cJSON *o = cJSON_CreateObject();
  CHECK(o != NULL);
  cJSON_AddStringToObject(o, "kind", "thermal");
  cJSON_AddNumberToObject(o, "t", 95.5);
  char *txt = cJSON_PrintUnformatted(o);
  CHECK(txt != NULL);
  CHECK_STR(txt, "{\"kind\":\"thermal\",\"t\":95.5}");
  cJSON *back = cJSON_Parse(txt);
  CHECK(back != NULL);
  CHECK_STR(cJSON_GetObjectItemCaseSensitive(back, "kind")->valuestring, "thermal");
  cJSON_Delete(back);
  cJSON_free(txt);
  cJSON_Delete(o);
  CHECK_EQ(cJSON_GetObjectItemCaseSensitive(held, "held")->valueint, 1);
  cw_json_release(held);
}
