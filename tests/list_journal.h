/* tests of journal: TEST(name) per line */
TEST(journal_append_replay)
TEST(journal_committed_mark)
TEST(journal_wrap)
TEST(journal_reopen)
TEST(journal_bad_header_set_aside)
TEST(journal_torn_record)
TEST(journal_full_waits)
TEST(journal_sigkill)
