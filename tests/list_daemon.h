/* tests of daemon: TEST(name) per line */
