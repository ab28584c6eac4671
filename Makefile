# The two set-up commands of the README:
#   make demo   – the whole loop in ./demo-workspace, with an embedded mail server
#   make test   – installs the test readers and runs the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-workspace

.PHONY: test demo bench readers wheel-check

$(BIN)/formtool: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Independent readers and peers for the tests: qpdf, pdftk, poppler, LibreOffice Calc,
# Dovecot, Chromium for the web page (Debian) and
# pdf.js / pdf-lib / axe-core (npm, into tests/js/node_modules).
readers:
	@missing=""; for t in qpdf pdftk pdftotext soffice; do command -v $$t >/dev/null || missing=1; done; \
	test -x /usr/sbin/dovecot || missing=1; test -x /usr/bin/chromium || missing=1; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qpdf pdftk-java poppler-utils libreoffice-calc-nogui dovecot-imapd chromium >/dev/null; \
	  else echo "Bitte installieren: sudo apt-get install qpdf pdftk-java poppler-utils libreoffice-calc-nogui dovecot-imapd chromium"; exit 1; fi; \
	fi
	@test -d tests/js/node_modules/axe-core || (cd tests/js && npm ci --no-audit --no-fund --silent)

test: $(BIN)/formtool readers
	$(BIN)/ruff check formtool tests
	$(BIN)/mypy
	$(BIN)/python -m pytest

demo: $(BIN)/formtool
	$(BIN)/formtool demo --dir $(DEMO_DIR)
	$(BIN)/formtool --workspace $(DEMO_DIR) forms generate regionalgruppe -o $(DEMO_DIR)/Regionalgruppe_gruenden.pdf

bench: $(BIN)/formtool
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_personalise.py
	$(BIN)/python bench/bench_send.py
	$(BIN)/python bench/bench_web.py

# The way a coordinator installs formtool (docs/anleitung.md): the project's wheel in a
# fresh venv, then the demo from it. CI runs this after the tests.
wheel-check: $(BIN)/formtool
	rm -rf dist build/wheel-venv build/wheel-demo
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/python -m pip install --quiet dist/formtool-*.whl
	cd build && wheel-venv/bin/formtool demo --dir wheel-demo
	test -s build/wheel-demo/antworten/buendnispartner.xlsx
	build/wheel-venv/bin/formtool --workspace build/wheel-demo status
	build/wheel-venv/bin/python tools/web_smoke.py build/wheel-venv/bin/formtool build/wheel-demo
	rm -rf build/wheel-init && build/wheel-venv/bin/formtool init build/wheel-init
	test -s build/wheel-init/forms/buendnispartner.toml && test -s build/wheel-init/templates/erinnerung.md.j2 && test -s build/wheel-init/contacts/fachberatungen.csv
