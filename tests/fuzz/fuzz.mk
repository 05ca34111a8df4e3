# libFuzzer targets (tests/fuzz/fuzz-*.c).  Included by the top Makefile.
#
#   make fuzz-build               build every target under build/fuzz
#   make fuzz FUZZ_SECONDS=N      build, then run each target N seconds (default 30)
#
# The libraries are compiled again with clang under build/fuzz with coverage
# instrumentation (fuzzer-no-link) and ASan+UBSan; only the targets' mains
# link libFuzzer itself.

FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?= 30
FUZZ_SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
# clang (unlike gcc) calls a variable used only by its cleanup attribute
# unused: every g_autoptr(GMutexLocker) "locker" would fail -Werror.  The gcc
# build keeps the warning.
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -DTURTLES_VERSION='"$(VERSION)"' -I. $(WARN) \
               -Wno-unused-variable -O1 -g $(FUZZ_SANFLAGS)

FUZZ_SRC     = $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
FUZZ_BINS    = $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))
fuzz_obj     = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(1))

FUZZ_HVCORE_LIB = $(FUZZ_BUILD)/libhvcore.a
FUZZ_API_LIB    = $(FUZZ_BUILD)/libapi.a
FUZZ_DAEMON_LIB = $(FUZZ_BUILD)/libturtled.a
FUZZ_LIBS       = $(FUZZ_DAEMON_LIB) $(FUZZ_HVCORE_LIB) $(FUZZ_API_LIB)

.PHONY: fuzz fuzz-build

$(FUZZ_BUILD)/obj/hvcore/%.o: hvcore/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(call pkg_cflags,$(PKG_HVCORE)) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/obj/api/%.o: api/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(call pkg_cflags,$(PKG_API)) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/obj/daemon/%.o: daemon/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(call pkg_cflags,$(PKG_DAEMON)) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(call pkg_cflags,$(PKG_DAEMON)) -MMD -MP -c $< -o $@

$(FUZZ_HVCORE_LIB): $(call fuzz_obj,$(HVCORE_SRC))
	rm -f $@ && ar rcs $@ $^
$(FUZZ_API_LIB): $(call fuzz_obj,$(API_SRC))
	rm -f $@ && ar rcs $@ $^
$(FUZZ_DAEMON_LIB): $(call fuzz_obj,$(filter-out daemon/main.c,$(DAEMON_SRC)))
	rm -f $@ && ar rcs $@ $^

# Every target links all libraries, like the unit tests.
$(FUZZ_BUILD)/fuzz-%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz-%.o $(FUZZ_LIBS)
	$(FUZZ_CC) $(FUZZ_SANFLAGS) -fsanitize=fuzzer -o $@ $^ $(call pkg_libs,$(PKG_DAEMON))

fuzz-build: $(FUZZ_BINS)

# Runs each target over its seed corpus and regression inputs; what it finds
# goes to a scratch corpus under build/, never into the tree.
fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run-fuzz $(FUZZ_TARGETS)

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
