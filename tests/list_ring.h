/* tests of ring: TEST(name) per line */
