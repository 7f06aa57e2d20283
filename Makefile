# topicd - build, test, bench, install.
#   make                      build build/topicd (installs missing Debian packages first)
#   make test                 the whole suite that needs no GPU and no network
#   make SANITIZE=address,undefined test   (or SANITIZE=thread) sanitizer builds, own folders
#   make GPU=0                build without the CUDA plugin even when nvcc is present
#   make bench                benchmarks vs scikit-learn (needs ../shared/corpora/20news);
#                             BENCH_FLAGS=--all-rows adds every row of issue #19
#   make bench-upload         upload MB/s and peak RSS (BINS=old/topicd CORPUS=x.jsonl)
#   make bench-claims         the job queue's claims/s and latency (STORE=postgresql://...)
#   make run                  start the service (topicd serve) on port 8080
#   make install PREFIX=/usr/local DESTDIR=
#   make lint                 static analysis (cppcheck, configured in .cppcheck/)
#   make browser-test         the web page in headless Chromium (Selenium)
#   make screenshots          the same, keeping each page's PNG at desktop and phone width
#   make image | image-cuda   container images with podman (scripts/image.sh, as root)
#   make compose-images       docker/compose.yaml's PostgreSQL and nginx images (as root)
#   make check-compose        docker/compose.yaml against the Compose spec's schema
#   make check-openapi        api/openapi.yaml against the OpenAPI specification
#   make compose-test         docker/compose.yaml up with podman-compose (as root)

PREFIX ?= /usr/local
DESTDIR ?=
SANITIZE ?=
WERROR ?= $(if $(CI),1,0)
GPU ?= auto
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
PYTHON ?= python3
# make bench and make conformance compare with scikit-learn and SciPy as PyPI
# releases them today, which scripts/bench-python.sh installs once under
# build/tools/ (issue #19); PYTHON=... on the command line or in the
# environment picks another Python.
REF_PYTHON = $(if $(filter command line environment,$(origin PYTHON)),$(PYTHON),$$(scripts/bench-python.sh))
# A Python with gensim and scikit-learn for the coherence checks (the bench
# strips the documents with scikit-learn's functions; gensim pins numpy, so
# it often has its own virtual environment).
GENSIM_PYTHON ?= $(REF_PYTHON)

comma := ,
# BUILD_DIR lets several builds share one checkout without racing.
ifneq ($(BUILD_DIR),)
B := $(BUILD_DIR)
else ifeq ($(SANITIZE),)
B := build
else
B := build/san-$(subst $(comma),-,$(SANITIZE))
endif

PKGS := libcjson libmicrohttpd openblas lapacke libutf8proc sqlite3 libcurl libpq libcrypto zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC ?= cc
OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
ifeq ($(WERROR),1)
WARN += -Werror
endif
CPPFLAGS += -I. -Itests -I$(B)/tests -D_GNU_SOURCE $(PKG_CFLAGS)
CFLAGS ?= $(OPT) -g
CFLAGS += -std=c11 $(WARN) -MMD -MP -fPIC -pthread
LDLIBS += $(PKG_LIBS) -lpthread -lm -ldl
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
# core/alloc.c: no malloc_trim where a sanitizer's malloc replaces glibc's.
CPPFLAGS += -DTM_SANITIZER_MALLOC=1
LDFLAGS += -fsanitize=$(SANITIZE)
endif

CORE_SRC := $(wildcard core/*.c core/text/*.c core/numerics/*.c core/numerics/cpu/*.c)
API_SRC := $(wildcard api/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
GPU_HOST_SRC := $(wildcard gpu/*.c)
TEST_SRC := tests/runner.c tests/testalloc.c tests/fixture.c tests/tmpstore.c $(wildcard tests/unit/test_*.c) $(wildcard tests/integration/test_*.c) \
  tests/fuzz/test_replay.c
# The fuzz targets' entry points, each renamed tm_fuzz_NAME, for
# tests/fuzz/test_replay.c: `make test` replays the kept inputs through them.
FUZZ_REPLAY_OBJ := $(patsubst tests/fuzz/%.c,$(B)/tests/fuzz/%.o,$(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(B)/%.o,$(1))
CORE_OBJ := $(call obj,$(CORE_SRC))
API_OBJ := $(call obj,$(API_SRC))
SERVER_OBJ := $(call obj,$(SERVER_SRC))
# api/openapi.yaml, served at /v1/openapi.yaml, is compiled in as a C array;
# so is the web page of api/ui/, served at / and /ui/ (tm_ui_<name>_<ext>).
SERVER_OBJ += $(B)/gen/openapi_data.o $(B)/gen/ui_data.o
UI_FILES := api/ui/index.html api/ui/app.js api/ui/app.css
GPU_HOST_OBJ := $(call obj,$(GPU_HOST_SRC))
TEST_OBJ := $(call obj,$(TEST_SRC))

# The CUDA backend is a plugin (dlopen'ed at run time) so that the same
# topicd binary starts on machines with no GPU, driver or CUDA libraries.
CUDA_SRC := $(wildcard gpu/*.cu)
ifeq ($(GPU),0)
CUDA_PLUGIN :=
else ifeq ($(NVCC),)
CUDA_PLUGIN :=
else ifeq ($(CUDA_SRC),)
CUDA_PLUGIN :=
else
CUDA_PLUGIN := $(B)/libtopicd_cuda.so
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# sm_90 (H100/H200) and sm_80 machine code, plus compute_90 PTX so newer GPUs can JIT it.
NVCC_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O2 -std=c++17 -Xcompiler -fPIC,-Wall $(NVCC_ARCH) -I. -I$(CUDA_HOME)/include

.PHONY: all deps test unit browser-test screenshots bench bench-http bench-upload bench-kernels bench-claims conformance run install clean format check-format gpu lint
.DEFAULT_GOAL := all

all: deps $(B)/topicd $(CUDA_PLUGIN)

# Cheap when everything is there: pkg-config checks only.
deps:
	@scripts/deps.sh

# Made afresh: `ar r` on an old archive would keep the object of a source
# file since moved or deleted.
$(B)/libtopicd_core.a: $(CORE_OBJ)
	rm -f $@ && $(AR) rcs $@ $^
$(B)/libtopicd_api.a: $(API_OBJ)
	rm -f $@ && $(AR) rcs $@ $^
$(B)/libtopicd_server.a: $(SERVER_OBJ)
	rm -f $@ && $(AR) rcs $@ $^
$(B)/libtopicd_gpu.a: $(GPU_HOST_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

# One archive per layer, each before the ones it calls (server/ calls api/,
# gpu/ and core/; gpu/ the plugin loader, calls core/; core/ calls nothing
# of the others), so one pass of the linker resolves every symbol.
LIBS_ORDERED := $(B)/libtopicd_server.a $(B)/libtopicd_api.a $(B)/libtopicd_gpu.a \
  $(B)/libtopicd_core.a

$(B)/topicd: $(B)/server/main.o $(LIBS_ORDERED)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The version a model file records (api/model_file.c): what git describe
# said when that file was compiled.
TM_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(B)/api/model_file.o: CPPFLAGS += -DTM_VERSION='"$(TM_VERSION)"'

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libtopicd_cuda.so: $(CUDA_SRC) $(wildcard gpu/*.h) $(wildcard core/*.h core/*/*.h)
	@mkdir -p $(B)
	$(NVCC) $(NVCCFLAGS) -shared -o $@ $(CUDA_SRC) -L$(CUDA_HOME)/lib64 -lcublas -lcusparse -lcusolver \
	  -cudart static -Xlinker -rpath,$(CUDA_HOME)/lib64

gpu: $(CUDA_PLUGIN)

# The test table is generated from the TM_TEST(...) lines of the test files;
# a TM_STORE_TEST(name) (tests/tmpstore.h) is two tests, name_sqlite and name_pg.
$(B)/tests/test-list.h: $(TEST_SRC) Makefile
	@mkdir -p $(dir $@)
	@grep -hoE '^TM_(STORE_)?TEST\([a-z0-9_]*\)' $(TEST_SRC) /dev/null \
	  | sed -e 's/^TM_TEST(\(.*\))/TM_TEST_DECLARE(\1)/' \
	    -e 's/^TM_STORE_TEST(\(.*\))/TM_TEST_DECLARE(\1_sqlite)\nTM_TEST_DECLARE(\1_pg)/' \
	  > $@.tmp && mv $@.tmp $@

$(TEST_OBJ): $(B)/tests/test-list.h

$(B)/tests/fuzz/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DLLVMFuzzerTestOneInput=tm_fuzz_$* -c -o $@ $<

# The tests alone read XML (the plots' SVG), with expat.
TEST_LIBS := $(shell pkg-config --libs expat 2>/dev/null)
$(B)/tests/run_tests: $(TEST_OBJ) $(FUZZ_REPLAY_OBJ) $(LIBS_ORDERED)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# Stand-ins for the CUDA plugin (same entry point, a pretend device), so the
# loader's success and ABI-mismatch paths run without a GPU.
TEST_PLUGINS := $(B)/tests/fake_gpu_plugin.so $(B)/tests/fake_gpu_plugin_abi0.so
$(B)/tests/fake_gpu_plugin.so: tests/gpu/fake_plugin.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -shared -o $@ $<
$(B)/tests/fake_gpu_plugin_abi0.so: tests/gpu/fake_plugin.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -DFAKE_ABI=0 -shared -o $@ $<

# tests/gpu/oracle.c: every backend op on the CUDA backend against the CPU
# backend (tests/gpu/run.sh), or CPU against CPU as its own self-test here.
$(B)/oracle: tests/gpu/oracle.c $(B)/libtopicd_gpu.a $(B)/libtopicd_core.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libtopicd_gpu.a $(B)/libtopicd_core.a $(LDLIBS)

# OpenBLAS gets one thread in tests: the suite checks numbers, not speed, and
# the sanitizers do not see inside OpenBLAS's own thread pool.
# TOPICD_GPU_PLUGIN: the GPU tests load the plugin this build made (if any).
# scripts/with-pg.sh starts a throwaway PostgreSQL cluster for the run (the
# PostgreSQL tests skip, saying why, where its server binaries are missing:
# `scripts/deps.sh test` installs them).
# The oracle's self-test runs first (not with T=): tiny sizes in sanitizer
# builds, tiny plus --quick's shrunk medium and grid sizes otherwise (a few
# seconds; tests/gpu/run.sh runs the real ones on a GPU); its PASS lines go
# to $(B)/oracle.log, anything else is shown.
ORACLE_SIZES := $(if $(SANITIZE),tiny,tiny$(comma)medium$(comma)grid)
test: all $(B)/tests/run_tests $(TEST_PLUGINS) $(B)/oracle
	@scripts/deps.sh test
	$(if $(T),,@OPENBLAS_NUM_THREADS=1 $(B)/oracle --quick --sizes $(ORACLE_SIZES) \
	  >$(B)/oracle.log 2>&1 && grep -v '^PASS' $(B)/oracle.log \
	  || { grep -v '^PASS' $(B)/oracle.log; exit 1; })
	scripts/with-pg.sh env TM_BINDIR=$(B) OPENBLAS_NUM_THREADS=1 \
	  TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) $$TSAN_OPTIONS" \
	  TOPICD_GPU_PLUGIN=$(if $(CUDA_PLUGIN),$(abspath $(CUDA_PLUGIN))) $(B)/tests/run_tests $(T)

# libFuzzer targets for every parser of request bytes (tests/fuzz/README.md):
# the tree built with clang, -fsanitize=fuzzer-no-link,address,undefined, in
# build/fuzz/, each target linked with libFuzzer and run FUZZ_SECONDS (30)
# from its seeds (tests/fuzz/run.sh); a crash fails the target and make.
# FUZZ=fuzz_spec runs one target. `make test` replays every seed and
# regression input through the same entry points without libFuzzer.
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
.PHONY: fuzz fuzz-build
fuzz:
	@scripts/deps.sh fuzz
	$(MAKE) BUILD_DIR=build/fuzz CC=$(FUZZ_CC) SANITIZE=fuzzer-no-link,address,undefined \
	  fuzz-build
	tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS) $(or $(FUZZ),$(FUZZ_TARGETS))

fuzz-build: $(addprefix $(B)/,$(FUZZ_TARGETS))

# core/numerics parses nothing, and its kernel templates take minutes each
# to compile instrumented: built plain in the fuzz build.
ifeq ($(B),build/fuzz)
$(B)/core/numerics/%.o: CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=all,$(CFLAGS))
endif

$(B)/fuzz_%: tests/fuzz/fuzz_%.c $(LIBS_ORDERED)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBS_ORDERED) $(LDLIBS)

bench: all
	$(REF_PYTHON) bench/run.py --topicd $(B)/topicd --out bench/results.md --gensim-python $(GENSIM_PYTHON) $(BENCH_FLAGS)

# The HTTP load benchmark: status polls while a fit runs, jobs per minute;
# then the shipped topology on a throwaway PostgreSQL (needs nginx): one
# replica directly, one through nginx and REPLICAS (3) through nginx, with
# REPLICAS workers in all, in turns ROUNDS (3) times.
bench-http: all $(B)/bench_http
	$(B)/bench_http --topicd $(B)/topicd
	scripts/with-pg.sh $(B)/bench_http --topicd $(B)/topicd --topology $(or $(REPLICAS),3) \
	  --rounds $(or $(ROUNDS),3)

$(B)/bench_http: bench/bench_http.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Corpus uploads: a JSON Lines and a JSON array body of MB (200) MB each, from
# CORPUS, POSTed to fresh servers: MB/s and the server's peak RSS. BINS="a b"
# adds binaries, run in turns with this one, RUNS (3) rounds. STORE=URL runs
# each on that PostgreSQL store too, beside SQLite.
bench-upload: all $(B)/bench_upload
	$(B)/bench_upload $(foreach b,$(BINS),--topicd $(b)) --topicd $(B)/topicd \
	  --corpus $(or $(CORPUS),../shared/corpora/20news/train.jsonl) --runs $(or $(RUNS),3) \
	  --mb $(or $(MB),200) $(if $(STORE),--store '$(STORE)')

$(B)/bench_upload: bench/bench_upload.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# The job queue's claims on one store (bench/bench_claims.c): claims/s and
# claim latency with W (16) workers competing, then the submit-to-start
# latency of idle workers; on SQLite under /tmp, then on PostgreSQL: STORE
# (a conninfo; each run in a fresh schema), else a throwaway cluster
# (scripts/with-pg.sh). R=3: the workers spread over 3 store handles.
CLAIMS_ARGS = --workers $(or $(W),16) --replicas $(or $(R),1) --jobs $(or $(JOBS),4000)
bench-claims: $(B)/bench_claims
	$(B)/bench_claims --data-dir /tmp $(CLAIMS_ARGS)
	$(if $(STORE),$(B)/bench_claims --store '$(STORE)' $(CLAIMS_ARGS),\
	  scripts/with-pg.sh sh -c '$(B)/bench_claims --store "$$TOPICD_TEST_PG" $(CLAIMS_ARGS)')

$(B)/bench_claims: bench/bench_claims.c $(LIBS_ORDERED)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBS_ORDERED) $(LDLIBS)

# COPY against multi-row INSERT for an upload's batches, on a PostgreSQL
# store: $(B)/bench_pg_insert CONNINFO [--corpus F] [--mb M] [--runs N].
$(B)/bench_pg_insert: bench/bench_pg_insert.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# The CPU backend's hot primitives one at a time on a Matrix Market matrix
# (e.g. one `topicd vectorize --matrix-market` wrote): MTX=X.mtx [K=20] [THREADS=1].
bench-kernels: $(B)/bench_kernels
	$(B)/bench_kernels $(MTX) $(or $(K),20) $(or $(THREADS),1)

$(B)/bench_kernels: bench/bench_kernels.c $(LIBS_ORDERED)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBS_ORDERED) $(LDLIBS)

$(B)/gen/openapi_data.c: api/openapi.yaml
	@mkdir -p $(dir $@)
	@{ printf '#include <stddef.h>\nconst unsigned char tm_openapi_yaml[] = {\n'; \
	  od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  printf '0x00};\nconst size_t tm_openapi_yaml_len = sizeof(tm_openapi_yaml) - 1;\n'; \
	} > $@.tmp && mv $@.tmp $@

$(B)/gen/openapi_data.o: $(B)/gen/openapi_data.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/gen/ui_data.c: $(UI_FILES) Makefile
	@mkdir -p $(dir $@)
	@{ printf '#include <stddef.h>\n'; \
	  for f in $(UI_FILES); do s=tm_ui_$$(basename $$f | tr . _); \
	    printf 'const unsigned char %s[] = {\n' $$s; \
	    od -An -v -tx1 $$f | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    printf '0x00};\nconst size_t %s_len = sizeof(%s) - 1;\n' $$s $$s; \
	  done; } > $@.tmp && mv $@.tmp $@

$(B)/gen/ui_data.o: $(B)/gen/ui_data.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The web page in a real browser; screenshots of each page into SHOTS.
SHOTS ?= build/screenshots
browser-test screenshots: all
	@scripts/deps.sh browser
	SHOTS=$(SHOTS) TOPICD=$(B)/topicd tests/browser/run.sh
	@echo "screenshots: $(SHOTS)/*.png"

conformance: all
	$(REF_PYTHON) bench/conformance.py --topicd $(B)/topicd --gensim-python $(GENSIM_PYTHON)

run: all
	$(B)/topicd serve --port $${TOPICD_PORT:-8080} --data-dir $${TOPICD_DATA_DIR:-./data}

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/topicd
	install -m 755 $(B)/topicd $(DESTDIR)$(PREFIX)/bin/topicd
	$(if $(CUDA_PLUGIN),install -m 755 $(CUDA_PLUGIN) $(DESTDIR)$(PREFIX)/lib/topicd/)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cu')

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cu')

# cppcheck's bug-finding checks (warning, portability; errors are always on)
# over every C file but the CUDA one, as the CI machine compiles them
# (glibc, x86-64). .cppcheck/topicd.cfg describes topicd's allocators and
# cJSON; .cppcheck/suppressions says what is suppressed and why.
LINT_SRC := core api server gpu/loader.c tests bench
lint:
	@scripts/deps.sh lint
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr --std=c11 \
	  -D_GNU_SOURCE -D__GLIBC__ -D__x86_64__ -I. -Itests \
	  --library=posix,gnu,sqlite3,libcurl,.cppcheck/topicd.cfg \
	  --suppressions-list=.cppcheck/suppressions $(LINT_SRC)

# The container images, built with podman as root (scripts/image.sh says how).
.PHONY: image image-cuda compose-images check-compose compose-test
image:
	scripts/image.sh
image-cuda:
	scripts/image.sh cuda
# docker/compose.yaml's PostgreSQL and nginx images, on the same base.
compose-images:
	scripts/image.sh compose
# docker/compose.yaml against the Compose specification's JSON schema.
check-compose:
	scripts/check-compose.sh
# docker/compose.yaml brought up with podman-compose, driven through nginx
# (as root; TOPICD_REPLICAS, 1 until job claims land).
compose-test:
	tests/compose/run.sh

# api/openapi.yaml, the served contract, against the OpenAPI specification.
.PHONY: check-openapi
check-openapi:
	scripts/check-openapi.sh

clean:
	rm -rf build

-include $(shell find $(B) -name '*.d' 2>/dev/null)
