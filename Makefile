# destination-s3 developer commands. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CODE := destination_s3 unit_tests integration_tests benchmarks demo main.py setup.py

.PHONY: help venv lint test asan unit integration demo bench clean

help:
	@echo "make demo   - start a local S3 server, sync a real source into it, show what landed"
	@echo "              (make demo KEEP=1 leaves the server running to look inside)"
	@echo "make test   - lint (ruff, mypy, hadolint) and run every test"
	@echo "make asan   - run the C code's differential tests under AddressSanitizer"
	@echo "make bench  - measure throughput, CPU and memory (see benchmarks/README.md)"

venv: $(INSTALLED)

$(INSTALLED): setup.py $(wildcard destination_s3/*.c destination_s3/*.h)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[tests]'
	touch $@

lint: venv
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

test: lint
	$(PY) -m pytest -q
	$(MAKE) asan

# The C code's differential tests again, built under AddressSanitizer (needs gcc + libasan).
asan: venv
	unit_tests/asan.sh $(PY)

unit: venv
	$(PY) -m pytest -q unit_tests

integration: venv
	$(PY) -m pytest -q integration_tests

demo: venv
	$(PY) -m demo.run_demo $(if $(KEEP),--keep)

bench: venv
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build .demo benchmarks/out .pytest_cache .mypy_cache .ruff_cache
