/* tests of blind: TEST(name) per line */
TEST(blind_disconnect_alert_once)
TEST(blind_short_spell_no_alert)
TEST(blind_lagging_backlog)
TEST(blind_stalled_and_names)
