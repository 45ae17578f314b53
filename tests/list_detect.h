/* tests of detect: TEST(name) per line */
