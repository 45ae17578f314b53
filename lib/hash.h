/* hash.h - FNV-1a (Fowler/Noll/Vo, http://www.isthe.com/chongo/tech/comp/fnv/):
 * cheap, and stable across builds and restarts, which station routing needs
 * (a station keeps its worker). Not for untrusted keys in a table whose
 * collisions an attacker could force: the tables here are keyed by stations
 * the operator registers, and they grow with load. */
#ifndef CW_HASH_H
#define CW_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CW_FNV32_BASIS 2166136261u
#define CW_FNV32_PRIME 16777619u
#define CW_FNV64_BASIS 1469598103934665603ULL
#define CW_FNV64_PRIME 1099511628211ULL

static inline uint32_t cw_fnv1a32(const void *p, size_t len) {
  const uint8_t *s = p;
  uint32_t h = CW_FNV32_BASIS;
  for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * CW_FNV32_PRIME;
  return h;
}

/* 64-bit over a NUL-terminated string, then one extra byte (a socket). */
static inline uint64_t cw_fnv1a64_str_byte(const char *s, uint8_t extra) {
  uint64_t h = CW_FNV64_BASIS;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * CW_FNV64_PRIME;
  return (h ^ extra) * CW_FNV64_PRIME;
}

#endif
