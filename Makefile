# chargewatch - build, test, run, bench. `make help` lists the targets.
BUILD   ?= build
SAN     ?=
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=

PKGS      := libuv libcjson libpq inih libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread \
               -Ilib -Idaemon -Itests -I$(BUILD) $(PKG_CFLAGS)
ifeq ($(SAN),asan)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else ifeq ($(SAN),tsan)
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
  SANFLAGS :=
endif
CFLAGS  ?=
CFLAGS  += $(CFLAGS_BASE) $(SANFLAGS)
LDFLAGS += $(SANFLAGS) -pthread
LIBS    := $(PKG_LIBS) -lpaho-mqtt3as -lcrypto -lm

LIB_SRC    := $(sort $(wildcard lib/*.c))
DAEMON_SRC := $(sort $(wildcard daemon/*.c))
TEST_SRC   := $(sort $(wildcard tests/*.c))
BENCH_SRC  := $(sort $(wildcard bench/*.c))

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/schema_sql.o
DAEMON_LIBOBJ := $(filter-out $(BUILD)/daemon/main.o,$(DAEMON_OBJ))
TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps check check-unit graph run bench bench-full bench-peers bench-detect soak fuzz install clean help
all: $(BUILD)/chargewatchd $(BUILD)/chargewatch $(BUILD)/test_unit $(BENCH_BIN)

help:
	@echo "make            build everything into $(BUILD)/"
	@echo "make deps       install the Debian packages the project needs"
	@echo "make run        build, start broker + database, run the daemon on a sample city"
	@echo "make check      the whole test suite (also ASan+UBSan and TSan builds)"
	@echo "make graph      the include and call graph of daemon/ and lib/ (fails on a cycle)"
	@echo "make bench      quick benchmark run; bench-full, bench-peers: longer"
	@echo "make bench-detect  detector false-alarm / detection table over real and generated traces"
	@echo "make fuzz       libFuzzer targets (clang) for a longer time"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"
	@echo "make deb        Debian package ../chargewatch_<version>_<arch>.deb into $(BUILD)/deb/"

deps:
	@sh .ci/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The schema ships inside the binary: schema/NNN_*.sql as C strings.
SCHEMA_SQL := $(sort $(wildcard schema/[0-9][0-9][0-9]_*.sql))
$(BUILD)/schema_sql.c: $(SCHEMA_SQL) Makefile
	@mkdir -p $(BUILD)
	@sh schema/embed.sh $(SCHEMA_SQL) > $@.tmp && mv $@.tmp $@
# The source commit for chargewatch_build_info: rewritten only when it
# changes, so a build with no new commit recompiles nothing ("unknown"
# outside a git checkout, e.g. a source package).
$(BUILD)/commit.h: FORCE
	@mkdir -p $(BUILD)
	@c=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	  echo "#define CW_COMMIT \"$$c\"" > $@.tmp; cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/daemon/http.o: $(BUILD)/commit.h
.PHONY: FORCE
FORCE:
$(BUILD)/schema_sql.o: $(BUILD)/schema_sql.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcw.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/chargewatchd: $(DAEMON_OBJ) $(BUILD)/libcw.a
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJ) $(BUILD)/libcw.a $(LIBS)

$(BUILD)/test_unit: $(TEST_OBJ) $(DAEMON_LIBOBJ) $(BUILD)/libcw.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(DAEMON_LIBOBJ) $(BUILD)/libcw.a $(LIBS)

$(BUILD)/bench/ring: $(BUILD)/bench/ring.o $(BUILD)/libcw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs ck 2>/dev/null || echo -lck)
# bench/pipeline drives the daemon's own worker (daemon/worker.c)
$(BUILD)/bench/pipeline: $(BUILD)/bench/pipeline.o $(DAEMON_LIBOBJ) $(BUILD)/libcw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
# The detection benchmark shares its corpus loaders and scenarios with the
# unit tests (tests/test_detect_util.c).
$(BUILD)/bench/detect: $(BUILD)/bench/detect.o $(BUILD)/tests/test_detect_util.o $(BUILD)/libcw.a
	$(CC) $(LDFLAGS) -o $@ $^ -lm
bench-detect: $(BUILD)/bench/detect
	@$(BUILD)/bench/detect
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libcw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

check:
	@sh tests/run.sh

check-unit: $(BUILD)/test_unit
	$(BUILD)/test_unit

graph: $(DAEMON_OBJ) $(LIB_OBJ)
	@BUILD=$(BUILD) sh tests/depgraph.sh -v

run:
	@sh bench/run-sample.sh

bench:
	@sh bench/bench.sh quick
bench-full:
	@sh bench/bench.sh full
bench-peers:
	@sh bench/bench.sh peers
soak:
	@sh tests/soak.sh

fuzz:
	@sh fuzz/run.sh 300

clean:
	rm -rf build

# ---------------------------------------------------------------- operator side
# The operator command (cli/, libpq), installation honouring PREFIX and
# DESTDIR everywhere (the unit is generated for the installed path), and the
# Debian package built from debian/ with debhelper.
CLI_SRC := $(sort $(wildcard cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/chargewatch
VERSION    := $(shell sed -nE 's/^\#define CW_VERSION "([^"]*)".*/\1/p' lib/cw.h)

$(BUILD)/chargewatch: $(CLI_OBJ)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(shell pkg-config --libs libpq)

$(BUILD)/chargewatchd.service: systemd/chargewatchd.service.in Makefile
	@mkdir -p $(BUILD)
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@.tmp && mv $@.tmp $@

.PHONY: install deb
install: $(BUILD)/chargewatchd $(BUILD)/chargewatch $(BUILD)/chargewatchd.service
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(SYSCONFDIR)/chargewatch $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/logrotate.d \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 $(BUILD)/chargewatchd $(DESTDIR)$(PREFIX)/bin/chargewatchd
	install -m 755 $(BUILD)/chargewatch $(DESTDIR)$(PREFIX)/bin/chargewatch
	install -m 644 docs/chargewatchd.8 $(DESTDIR)$(MANDIR)/man8/chargewatchd.8
	install -m 644 docs/chargewatch.1 $(DESTDIR)$(MANDIR)/man1/chargewatch.1
	install -m 644 daemon/chargewatch.conf $(DESTDIR)$(DOCDIR)/chargewatch.conf.example
	test -e $(DESTDIR)$(SYSCONFDIR)/chargewatch/chargewatch.conf || \
	  install -m 644 systemd/chargewatch.conf $(DESTDIR)$(SYSCONFDIR)/chargewatch/chargewatch.conf
	install -m 644 $(BUILD)/chargewatchd.service $(DESTDIR)$(UNITDIR)/chargewatchd.service
	install -m 644 systemd/chargewatch.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/chargewatch
	install -m 644 systemd/chargewatch.sysusers $(DESTDIR)$(SYSUSERSDIR)/chargewatch.conf
	install -m 644 systemd/chargewatch.tmpfiles $(DESTDIR)$(TMPFILESDIR)/chargewatch.conf
	install -m 644 docs/alerting-rules.yml $(DESTDIR)$(DOCDIR)/alerting-rules.yml

# Builds in a copy of the tree (debian/ rules call make with PREFIX=/usr);
# the .deb and lintian's report land in $(BUILD)/deb/.
deb:
	@sh debian/build.sh $(BUILD)/deb

-include $(shell find $(BUILD) \( -path '$(BUILD)/deb' -o -path '$(BUILD)/it' \) -prune -o -name '*.d' -type f -print 2>/dev/null)
