# The commands that matter:
#   make demo   install what the build needs (compiler, CMake), build a release, run the main job
#   make test   install what the tests need too (cmocka, python3, peers), build, run every test
#   make lint   clang-format and clang-tidy, every finding an error (scripts/lint.sh)
#   make fuzz   every libFuzzer target for FUZZ_SECONDS each (scripts/fuzz.sh)
#   make netns  the network-namespace tests alone (root), full message count
#   make soak   SOAK_SECONDS (600) of mixed load on sockmsg serve; not in CI
#   make docs   the API reference (Doxygen) in build/docs/html, every warning an error
# And: make install PREFIX=/opt/sockmsg   the release build, installed there.
# A thin layer over CMake + Ninja; the real build is CMakeLists.txt.

JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
SANITIZE ?=
BACKEND  ?=
PREFIX   ?= /usr/local
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 600

comma := ,
ifeq ($(SANITIZE),)
TESTDIR := build/dev
else
TESTDIR := build/san-$(subst $(comma),-,$(SANITIZE))
endif

.PHONY: all deps deps-test demo release install test test-asan test-tsan lint docs fuzz netns soak format tidy clean

all: release

# What the release build and the demo need; the test suite needs more.
deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

release: deps
	@mkdir -p build
	@cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSM_WERROR=OFF -DSM_BUILD_TESTS=OFF \
	    >build/release.configure.log || { cat build/release.configure.log; exit 1; }
	@# Say what the build goes without (TLS, io_uring); the rest is in the log.
	@grep -E 'TLS: on|sockmsg: OpenSSL|io_uring backend' build/release.configure.log || true
	cmake --build build/release -j $(JOBS)

install: release
	cmake --install build/release --prefix $(PREFIX)

demo: release
	scripts/demo.sh build/release

test: deps-test
	cmake -S . -B $(TESTDIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSM_SANITIZE=$(SANITIZE) >/dev/null
	cmake --build $(TESTDIR) -j $(JOBS)
	scripts/run-tests.sh $(TESTDIR) $(JOBS)

test-asan:
	$(MAKE) test SANITIZE=address,undefined

test-tsan:
	$(MAKE) test SANITIZE=thread

lint:
	LINT_JOBS=$(JOBS) scripts/lint.sh build/dev

# Dead and lossy links between network namespaces (tests/netns, test_netns);
# needs root. SM_NETNS_MESSAGES overrides the message count per case.
netns: deps
	cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build/dev -j $(JOBS)
	ctest --test-dir build/dev -L netns --output-on-failure -V

# Mixed load (every framing, both models, disconnects, slow readers) on
# sockmsg serve while its RSS and fds are sampled; prints a table, fails when
# a server is not flat (tests/soak/soak.c states the criterion).
soak: deps
	cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build/dev -j $(JOBS) --target soak
	SOAK_SECONDS=$(SOAK_SECONDS) build/dev/tests/soak

# libFuzzer needs clang and its runtime (Debian 12: libclang-rt-14-dev). A
# crash is kept in fuzz/regressions/, which every make test then replays.
fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev
	CC=clang cmake -S . -B build/fuzz -G Ninja -DSM_BUILD_FUZZ=ON -DSM_BUILD_TESTS=OFF -DSM_BUILD_TOOLS=OFF >/dev/null
	cmake --build build/fuzz -j $(JOBS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build/fuzz

# Doxygen is installed here only: the build and the demo do not need it.
# docs/Doxyfile fails on any warning (an undocumented function, parameter,
# type, field or macro), and scripts/docs-check.py on an undocumented enum
# value.
docs:
	scripts/deps.sh docs
	rm -rf build/docs && mkdir -p build/docs
	doxygen docs/Doxyfile
	scripts/docs-check.py build/docs/xml
	@echo "docs: build/docs/html/index.html"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The old name of the clang-tidy half of the gate.
tidy: lint

clean:
	rm -rf build
