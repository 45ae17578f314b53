/* tests of daemon/control.c (operator commands) */
TEST(control_parse_rules)
TEST(control_routes_and_rejects)
TEST(control_parse_rectify_notify)
TEST(control_by_control_chars_escaped)
