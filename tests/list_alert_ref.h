/* tests of lib/alert_ref.c: TEST(name) per line */
TEST(alert_ref_format)
TEST(alert_ref_counter_per_day)
TEST(alert_ref_parse_typed)
