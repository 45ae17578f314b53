/* tests of decode: TEST(name) per line */
