/* partition.h - the broker's station -> partition function and the fixed
 * partition -> shard grouping (docs/SCALING.md). The broker computes the
 * partition (NATS subject mapping partition(P,1): FNV-1a 32-bit of the
 * station token; an EMQX rule: the first 32 bits of MD5, big-endian); the
 * daemon computes the same to restore a shard's stations and to check
 * which shard a station belongs to. Pure. */
#ifndef CW_PARTITION_H
#define CW_PARTITION_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CW_PART_FNV1A = 0, CW_PART_MD5 = 1 } cw_part_hash_t;

/* The 32-bit hash of a station code (bytes, not NUL-terminated). */
uint32_t cw_partition_hash(cw_part_hash_t h, const char *station, size_t len);
/* Partition of a station, 0..partitions-1 (partitions >= 1). */
int cw_partition(cw_part_hash_t h, const char *station, size_t len, int partitions);
/* Shard owning a partition: p mod shards (shards >= 1). */
static inline int cw_partition_shard(int partition, int shards) { return partition % shards; }

/* MD5 (RFC 1321) of len bytes into out[16]: only for the EMQX hash. */
void cw_md5(const void *data, size_t len, uint8_t out[16]);

#endif
