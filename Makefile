# Bulkapp: `make run` serves the app on the embedded defaults, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-sqlite test-postgres lint bench worker clean translations

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Links (reply links, webhook URLs, API examples, invitations) point where this serves unless BASE_URL is set;
# a worker started with the same PORT makes the same links.
run worker: export BASE_URL ?= http://$(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST)):$(PORT)
# A local run tops up through the simulated M-Pesa (no money moves; the wallet says so) unless MPESA_ENV is set.
run worker: export MPESA_ENV ?= simulated

run: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	@echo "Bulkapp is starting on http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	$(FLASK) run --host $(HOST) --port $(PORT) --no-debugger --no-reload --with-threads

# The whole suite on SQLite; again on PostgreSQL when TEST_DATABASE_URL is set (browser tests run once).
test: $(VENV)/.dev
	TEST_POSTGRES_URL="$$TEST_DATABASE_URL" TEST_DATABASE_URL= $(BIN)/pytest -p no:cacheprovider
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== the suite again on $$TEST_DATABASE_URL =="; \
		$(BIN)/pytest -p no:cacheprovider -m "not browser"; \
	fi

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every benchmark script in bench/; each prints one JSON line (PostgreSQL too when BENCH_DATABASE_URL is set).
bench: $(VENV)/.dev
	@for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

worker: $(VENV)/.runtime
	$(BIN)/rq worker --with-scheduler --worker-class bulkapp.jobs.worker.PreloadedWorker --url "$$REDIS_URL" high default low

# Re-extract the English strings, merge them into the Swahili catalog (translate the new, empty msgstrs in
# bulkapp/translations/sw/LC_MESSAGES/messages.po), then compile the .mo the app loads.
translations: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k _ln:1,2 --no-location --sort-output \
		--project Bulkapp --copyright-holder Bulkapp -o bulkapp/translations/messages.pot .
	$(BIN)/pybabel update -i bulkapp/translations/messages.pot -d bulkapp/translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d bulkapp/translations

clean:
	rm -rf $(VENV) instance .pytest_cache tests/e2e/artifacts
