/* tests of copy: TEST(name) per line */
