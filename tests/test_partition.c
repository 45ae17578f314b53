/* test_partition.c - the station -> partition function (lib/partition.c)
 * against the vectors in docs/SCALING.md (FNV-1a checked against
 * nats-server's partition() mapping by tests/it/test_nats_partition.sh; MD5
 * against RFC 1321's own test suite), and {partition} in topic patterns. */
#include <errno.h>

#include "decode.h"
#include "partition.h"
#include "test.h"

static int part(cw_part_hash_t h, const char *s, int p) { return cw_partition(h, s, strlen(s), p); }

CW_TEST(partition_fnv1a_vectors) {
  CHECK_EQ(cw_partition_hash(CW_PART_FNV1A, "A", 1), 0xc40bf6ccu);
  CHECK_EQ(cw_partition_hash(CW_PART_FNV1A, "CX-0001", 7), 0xa4e54de6u);
  CHECK_EQ(cw_partition_hash(CW_PART_FNV1A, "ST001", 5), 0xe3a9b539u);
  CHECK_EQ(part(CW_PART_FNV1A, "A", 64), 12);
  CHECK_EQ(part(CW_PART_FNV1A, "CX-0001", 64), 38);
  CHECK_EQ(part(CW_PART_FNV1A, "ST001", 64), 57);
  CHECK_EQ(part(CW_PART_FNV1A, "ST001", 1), 0);
  /* shard k owns the partitions p with p mod S = k */
  CHECK_EQ(cw_partition_shard(part(CW_PART_FNV1A, "ST001", 64), 8), 1);
  CHECK_EQ(cw_partition_shard(12, 8), 4);
}

CW_TEST(partition_md5_vectors) {
  /* RFC 1321 appendix A.5 */
  static const struct {
    const char *in, *hex;
  } v[] = {{"", "d41d8cd98f00b204e9800998ecf8427e"},
           {"abc", "900150983cd24fb0d6963f7d28e17f72"},
           {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
           {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "d174ab98d277d9f5a5611c2c9f419d9f"},
           {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a"}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint8_t d[16];
    char hex[33];
    cw_md5(v[i].in, strlen(v[i].in), d);
    for (int k = 0; k < 16; k++) snprintf(hex + 2 * k, 3, "%02x", d[k]);
    CHECK_STR(hex, v[i].hex);
  }
  /* the EMQX rule's partition: first 32 bits big-endian, mod P */
  CHECK_EQ(cw_partition_hash(CW_PART_MD5, "A", 1), 0x7fc56270u);
  CHECK_EQ(part(CW_PART_MD5, "A", 64), 48);
  CHECK_EQ(part(CW_PART_MD5, "CX-0001", 64), 24);
  CHECK_EQ(part(CW_PART_MD5, "ST001", 64), 11);
}

CW_TEST(topic_partition_segment) {
  cw_topic_t t;
  char out[96], st[CW_STATION_MAX + 1];
  int sock = 0;
  CHECK_EQ(cw_topic_compile(&t, "cwp/{partition}/cw/{station}/{socket}/telemetry"), 0);
  CHECK_EQ(t.partition_seg, 1);
  CHECK_EQ(cw_topic_filter(&t, out, sizeof out), 0);
  CHECK_STR(out, "cwp/+/cw/+/+/telemetry");
  CHECK_EQ(cw_topic_filter_partition(&t, 38, out, sizeof out), 0);
  CHECK_STR(out, "cwp/38/cw/+/+/telemetry");
  CHECK_EQ(cw_topic_filter_partition(&t, 38, out, 10), -ENOSPC);
  const char *ok = "cwp/38/cw/CX-0001/3/telemetry";
  CHECK_EQ(cw_topic_match(&t, ok, strlen(ok), st, &sock), CW_REJ_OK);
  CHECK_STR(st, "CX-0001");
  CHECK_EQ(sock, 3);
  ok = "cwp/0/cw/A/1/telemetry";
  CHECK_EQ(cw_topic_match(&t, ok, strlen(ok), st, &sock), CW_REJ_OK);
  const char *bad[] = {"cwp/038/cw/A/1/telemetry", "cwp/x/cw/A/1/telemetry",
                       "cwp//cw/A/1/telemetry", "cwp/123456/cw/A/1/telemetry",
                       "cw/A/1/telemetry"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ(cw_topic_match(&t, bad[i], strlen(bad[i]), st, &sock), CW_REJ_BAD_TOPIC);
  CHECK_EQ(cw_topic_compile(&t, "cw/{station}/telemetry"), 0);
  CHECK_EQ(t.partition_seg, -1);
  CHECK_EQ(cw_topic_filter_partition(&t, 5, out, sizeof out), 0);
  CHECK_STR(out, "cw/+/telemetry"); /* no {partition}: unchanged */
  CHECK_EQ(cw_topic_compile(&t, "{partition}/{partition}/{station}"), -EINVAL);
}
