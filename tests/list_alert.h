/* tests of daemon/alert_render.c and daemon/alert_sink.c */
TEST(alerts_json_exact)
TEST(alerts_json_numbers)
TEST(alerts_json_escaping)
TEST(alerts_json_enospc)
TEST(alerts_text_line)
TEST(alerts_render_count_note)
TEST(alerts_topic)
TEST(alert_sink_every_sink)
