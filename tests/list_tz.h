/* tests of lib/tz: TEST(name) per line */
TEST(tz_berlin_dst_exact)
TEST(tz_agrees_with_libc)
