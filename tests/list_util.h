/* tests of the pure helpers of lib/ (text, hash, fsutil, idgen, ring sizes) */
TEST(util_utf8_len)
TEST(util_escape_modes)
TEST(util_iso_time)
TEST(util_conninfo_redacted)
TEST(util_fnv1a_vectors)
TEST(util_mkdir_p)
TEST(util_idgen_and_ring_sizes)
