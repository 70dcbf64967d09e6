# The two set-up commands of the README, plus bench. Everything real is in CMakeLists.txt.
#   make demo   install what is missing, build, run the pipeline on embedded defaults
#   make test   install what is missing, build (ASan+UBSan), run every test through ctest
#   make bench  build without sanitizers, print the benchmark figures
#   make fuzz   build the libFuzzer targets with clang, run each for FUZZ_SECONDS
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
BENCH_BUILD ?= build-bench
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS := sheet wire ingest

# Debian packages the build, the tests and the demo need.
PKGS := build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler \
        liblmdb-dev libuv1-dev libcmocka-dev libjansson-dev libsodium-dev libhttp-parser-dev \
        python3 python3-zmq python3-protobuf protobuf-compiler
# Packages only some tests need (browser, metrics and PDF checks, a CJK font for screenshots).
TEST_PKGS := prometheus chromium poppler-utils fonts-wqy-zenhei
# Packages only make fuzz needs: clang and libFuzzer's runtime (which clang merely recommends).
FUZZ_PKGS := clang libclang-rt-dev

.PHONY: all deps test-deps build test demo bench fuzz clean format

all: build

deps:
	@scripts/install-deps.sh $(PKGS)

test-deps:
	@scripts/install-deps.sh $(PKGS) $(TEST_PKGS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DAIDSTAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: test-deps
	$(MAKE) build
	cd $(BUILD) && ctest --verbose --timeout 300 -j 2

demo: deps
	$(MAKE) build
	scripts/demo.sh $(BUILD)/bin

bench: deps
	cmake -S . -B $(BENCH_BUILD) -DAIDSTAT_SANITIZE=OFF -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BENCH_BUILD) -j $(JOBS)
	scripts/bench.sh $(BENCH_BUILD)

# New inputs go to $(FUZZ_BUILD)/corpus/NAME (the seeds in tests/fuzz/corpus stay as they are),
# crashes to $(FUZZ_BUILD)/crash-NAME-*; add a minimised crash to the seeds once fixed.
fuzz: deps
	@scripts/install-deps.sh $(FUZZ_PKGS)
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DAIDSTAT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZERS))
	set -e; for f in $(FUZZERS); do mkdir -p $(FUZZ_BUILD)/corpus/$$f; \
	  dict=tests/fuzz/$$f.dict; [ -f $$dict ] && dict=-dict=$$dict || dict=; \
	  $(FUZZ_BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) $$dict \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$f- $(FUZZ_BUILD)/corpus/$$f tests/fuzz/corpus/$$f; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BENCH_BUILD) $(FUZZ_BUILD) var/demo
