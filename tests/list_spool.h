/* tests of spool: TEST(name) per line */
