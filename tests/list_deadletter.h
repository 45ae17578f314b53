/* tests of daemon/deadletter.c */
TEST(deadletter_escaping)
TEST(deadletter_cap_and_rotation)
