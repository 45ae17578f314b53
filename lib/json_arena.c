/* json_arena.c - the per-thread bump arena behind cw_json_parse (see
 * json_arena.h for why). The hooks decide by address: a pointer inside the
 * calling thread's arena is the arena's (freed with the tree), anything else
 * came from malloc. Only a parse on this thread allocates from it, so a
 * tree never crosses threads while it lives in an arena. */
#include "json_arena.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* Under AddressSanitizer the free part of the arena stays poisoned and each
 * allocation is followed by a poisoned gap, so an overrun of a node or a key
 * string is still reported as it would be between two mallocs. */
#define GAP 16u
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define GAP 0u
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 16u /* as malloc: cJSON nodes hold doubles and pointers */

typedef struct {
  unsigned char *base; /* CW_JSON_ARENA_BYTES, or NULL before the first parse */
  size_t used;
  bool on;   /* inside cw_json_parse: allocations come from here */
  bool busy; /* a tree from here is alive */
} arena_t;

static _Thread_local arena_t ar;
static pthread_key_t ar_key; /* its destructor frees the arena at thread exit */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static bool in_arena(const void *p) {
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)ar.base;
  return ar.base && a >= b && a < b + CW_JSON_ARENA_BYTES;
}

static void *hook_malloc(size_t n) {
  if (ar.on) {
    size_t need = (n + GAP + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need >= n && need <= CW_JSON_ARENA_BYTES - ar.used) {
      void *p = ar.base + ar.used;
      ar.used += need;
      UNPOISON(p, n);
      return p;
    }
  }
  return malloc(n); /* outside a parse, or the tree outgrew the arena */
}

static void hook_free(void *p) {
  if (!in_arena(p)) free(p); /* arena memory goes back with the whole tree */
}

static void thread_exit(void *base) {
  UNPOISON(base, CW_JSON_ARENA_BYTES);
  free(base);
  ar.base = NULL;
}

static void install(void) {
  cJSON_Hooks h = {hook_malloc, hook_free};
  (void)pthread_key_create(&ar_key, thread_exit);
  cJSON_InitHooks(&h);
}

void cw_json_arena_install(void) { pthread_once(&once, install); }

/* The calling thread's arena, allocated on its first use; false: none
 * (out of memory or already holding a tree), the parse uses malloc. */
static bool take(void) {
  if (ar.busy) return false;
  if (!ar.base) {
    unsigned char *b = malloc(CW_JSON_ARENA_BYTES);
    if (!b) return false;
    if (pthread_setspecific(ar_key, b) != 0) {
      free(b);
      return false;
    }
    ar.base = b;
    POISON(b, CW_JSON_ARENA_BYTES);
  }
  ar.used = 0;
  ar.busy = true;
  return true;
}

static void give_back(void) {
  POISON(ar.base, ar.used);
  ar.used = 0;
  ar.busy = false;
}

cJSON *cw_json_parse(const char *p, size_t len, const char **end) {
  cw_json_arena_install();
  bool mine = take();
  ar.on = mine;
  cJSON *root = cJSON_ParseWithLengthOpts(p, len, end, 0);
  ar.on = false;
  /* the root is the parse's first allocation: in the arena iff it was used */
  if (mine && !(root && in_arena(root))) give_back();
  return root;
}

void cw_json_release(cJSON *root) {
  if (!root) return;
  bool mine = ar.busy && in_arena(root);
  cJSON_Delete(root); /* frees what fell back to malloc; arena nodes are no-ops */
  if (mine) give_back();
}

size_t cw_json_arena_used(void) { return ar.busy ? ar.used : 0; }
