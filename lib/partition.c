/* partition.c - station -> partition (partition.h). FNV-1a is the NATS
 * Server partition() hash; MD5's first 32 bits (big-endian) are what an EMQX
 * rule can compute (md5 + subbits). MD5 here follows RFC 1321 directly: it
 * runs once per station at restore time, never per message. */
#include <string.h>

#include "hash.h"
#include "partition.h"

static uint32_t rol(uint32_t x, int c) { return (x << c) | (x >> (32 - c)); }

/* RFC 1321 section 3.4: per-round shift amounts and the constants
 * floor(abs(sin(i + 1)) * 2^32). */
static const uint8_t S[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                              5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                              4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                              6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391};

static void md5_block(uint32_t st[4], const uint8_t b[64]) {
  uint32_t m[16];
  for (int i = 0; i < 16; i++)
    m[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
           (uint32_t)b[4 * i + 3] << 24;
  uint32_t a = st[0], bb = st[1], c = st[2], d = st[3];
  for (int i = 0; i < 64; i++) {
    uint32_t f;
    int g;
    if (i < 16) f = (bb & c) | (~bb & d), g = i;
    else if (i < 32) f = (d & bb) | (~d & c), g = (5 * i + 1) % 16;
    else if (i < 48) f = bb ^ c ^ d, g = (3 * i + 5) % 16;
    else f = c ^ (bb | ~d), g = (7 * i) % 16;
    uint32_t t = d;
    d = c;
    c = bb;
    bb = bb + rol(a + f + K[i] + m[g], S[i]);
    a = t;
  }
  st[0] += a, st[1] += bb, st[2] += c, st[3] += d;
}

void cw_md5(const void *data, size_t len, uint8_t out[16]) {
  uint32_t st[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  const uint8_t *p = data;
  uint8_t blk[64];
  size_t i = 0;
  for (; i + 64 <= len; i += 64) md5_block(st, p + i);
  size_t rest = len - i;
  memset(blk, 0, sizeof blk);
  if (rest) memcpy(blk, p + i, rest);
  blk[rest] = 0x80;
  if (rest >= 56) {
    md5_block(st, blk);
    memset(blk, 0, sizeof blk);
  }
  uint64_t bits = (uint64_t)len * 8;
  for (int k = 0; k < 8; k++) blk[56 + k] = (uint8_t)(bits >> (8 * k));
  md5_block(st, blk);
  for (int k = 0; k < 16; k++) out[k] = (uint8_t)(st[k / 4] >> (8 * (k % 4)));
}

uint32_t cw_partition_hash(cw_part_hash_t h, const char *station, size_t len) {
  if (h == CW_PART_MD5) {
    uint8_t d[16];
    cw_md5(station, len, d);
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
  }
  return cw_fnv1a32(station, len);
}

int cw_partition(cw_part_hash_t h, const char *station, size_t len, int partitions) {
  if (partitions <= 1) return 0;
  return (int)(cw_partition_hash(h, station, len) % (uint32_t)partitions);
}
