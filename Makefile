# secretsfs: build, test and run.
#   make            build bin/secretsfs
#   make SAN=address,undefined   build with sanitizers (into build-san/)
#   make check      install missing deps, build, run every test
#   make run        install missing deps, build, mount a demo store at ./secrets
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKGS := fuse3 tdb libgcrypt json-c libcurl libmicrohttpd

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wformat=2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE \
	  -Iinclude -Isrc $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread

ifdef SAN
BUILD := build-san
CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=$(SAN)
else
BUILD := build
endif

LIB_SRCS := $(wildcard src/util/*.c src/crypto/*.c src/store/*.c src/secrets/*.c src/cluster/*.c src/fs/*.c src/api/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
HEADERS := $(wildcard include/*/*.h src/*/*.h)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

BIN := $(BUILD)/secretsfs

.PHONY: all check unit unit-san pytest layers run stop clean install deps bench

# tests/live: programs the pytest suite runs against real services (etcd).
LIVE_BINS := $(patsubst tests/live/%.c,$(BUILD)/tests/%,$(wildcard tests/live/*.c))

all: $(BIN) bin/secretsfs $(LIVE_BINS)

bin/secretsfs: $(BIN)
	@mkdir -p bin
	cp --remove-destination $(BIN) $@

$(BIN): $(LIB_OBJS) $(CLI_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libsecretsfs.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsecretsfs.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libsecretsfs.a $(LDLIBS) \
		$(shell pkg-config --libs cmocka)

$(BUILD)/tests/%: tests/live/%.c $(BUILD)/libsecretsfs.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsecretsfs.a $(LDLIBS)

deps:
	scripts/install-deps

layers:
	scripts/check-layers

unit: $(UNIT_BINS)
	scripts/run-unit-tests $(UNIT_BINS)

unit-san:
	$(MAKE) SAN=address,undefined unit

pytest: all
	scripts/run-pytest

bench: all
	scripts/bench

check: deps
	$(MAKE) layers
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) unit-san
	$(MAKE) pytest

run: deps
	$(MAKE) all
	scripts/demo

stop:
	-fusermount3 -u secrets

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/sbin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)
	install -m 0755 bin/secretsfs $(DESTDIR)$(PREFIX)/bin/secretsfs
	ln -sfn $(PREFIX)/bin/secretsfs $(DESTDIR)/sbin/mount.fuse.secretsfs
	install -m 0644 docs/secretsfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/secretsfs.1
	sed 's|/usr/local/bin/secretsfs|$(PREFIX)/bin/secretsfs|g' scripts/systemd/secretsfs@.service > $(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)/secretsfs@.service
	chmod 0644 $(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)/secretsfs@.service

.PHONY: uninstall
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/secretsfs $(DESTDIR)/sbin/mount.fuse.secretsfs $(DESTDIR)$(PREFIX)/share/man/man1/secretsfs.1 $(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)/secretsfs@.service

clean:
	rm -rf build build-san bin

# ---- fuzzing (tests/fuzz, scripts/run-fuzz) ------------------------------
#   make fuzz     build every tests/fuzz/fuzz_*.c with libFuzzer, ASan and
#                 UBSan and run each for FUZZ_SECONDS (default 60); fails if
#                 any target finds a crash, leak or undefined behaviour.
# The parsers' layers (util crypto store secrets, and cluster's wire format
# without its libcurl transport) are compiled with clang into
# build-fuzz/, instrumented for coverage; not part of `make check`.
FUZZ_CC ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra \
	-D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -Iinclude -Isrc \
	$(shell pkg-config --cflags tdb libgcrypt json-c 2>/dev/null)
FUZZ_LIBS := $(shell pkg-config --libs tdb libgcrypt json-c 2>/dev/null) -lpthread
FUZZ_LIB_SRCS := $(wildcard src/util/*.c src/crypto/*.c src/store/*.c src/secrets/*.c src/api/*.c) \
	src/cluster/etcd_wire.c src/cluster/etcd_stream.c src/cluster/etcd_base64.c
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

.PHONY: fuzz

fuzz: deps
	$(MAKE) $(FUZZ_BINS)
	scripts/run-fuzz $(FUZZ_BINS)

$(FUZZ_BUILD)/src/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c -o $@ $<

$(FUZZ_BUILD)/libsecretsfs-fuzz.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libsecretsfs-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
		$(FUZZ_BUILD)/libsecretsfs-fuzz.a $(FUZZ_LIBS)
# ---- end of fuzzing --------------------------------------------------------

# ---- stress (tests/stress) -------------------------------------------------
#   make stress   the long reliability runs (kill -9 cycles, death at every
#                 write point, random damage, interrupted passwd/rekey, ...);
#                 not part of `make check`, which runs the short versions.
.PHONY: stress
stress: all
	/usr/bin/python3 -m pytest -q tests/stress
# ---- end of stress ---------------------------------------------------------
