# esptiny: `make demo` runs the whole pipeline on the virtual board; `make test` tests it all.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN ?= runs/demo
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
# Debian packages the tests use: Fashion-MNIST, clang (libFuzzer and sanitizers),
# the RV32 cross compiler with picolibc, and QEMU for the emulated ESP32-C3-class core.
TEST_DEBS := dataset-fashion-mnist clang libclang-rt-14-dev gcc-riscv64-unknown-elf \
             picolibc-riscv64-unknown-elf qemu-system-misc

.PHONY: demo test venv data debs test-c test-py clean help

help:
	@echo "make demo   set up, train, compress, evaluate, bench on the virtual board, report ($(RUN))"
	@echo "make test   set up and run every test (C core, fuzzing, Python)"

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed
	@echo "venv: $(VENV) is up to date with pyproject.toml"

# Installs Debian's copy of Fashion-MNIST when no copy is found and we are root.
data: venv
	@$(BIN)/python -c "from esptiny.stages import data; import sys; found = [d for _, d in data.search_path() if data._has_all(d)]; print(f'data: Fashion-MNIST found in {found[0]}') if found else None; sys.exit(0 if found else 1)" \
	  || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && $(APT_INSTALL) dataset-fashion-mnist) \
	       || echo "no Fashion-MNIST copy found: keras will download it (online) or pass --data FILE.npz"; }

debs:
	@missing=$$(for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && $(APT_INSTALL) $$missing; \
	  else echo "missing Debian packages (tests that need them are skipped; in CI they fail): $$missing"; fi; \
	fi

# A second `make demo` keeps the venv and the data, and every stage whose inputs did not
# change (`--resume`); each says so.
demo: venv data
	$(BIN)/esptiny run $(RUN) --resume

# What skipped (nothing may in CI: a missing tool fails there), listed at the end.
SKIPPED := $(CURDIR)/build/skipped.txt

test-c: debs
	$(MAKE) -C firmware test SKIPPED=$(SKIPPED)

test-py: venv data debs
	ESPTINY_SKIPPED_FILE=$(SKIPPED) $(BIN)/python -m pytest -q

test:
	@mkdir -p build && rm -f $(SKIPPED)
	$(MAKE) test-c test-py
	@if [ -s $(SKIPPED) ]; then echo "make test: skipped: $$(paste -sd';' $(SKIPPED))"; \
	else echo "make test: skipped: nothing"; fi

clean:
	rm -rf runs build firmware/build .pytest_cache
