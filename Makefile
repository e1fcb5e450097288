# Two commands for a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip install -q -c constraints.txt
STAMP   := $(VENV)/.installed

.PHONY: run test install validate bench wheel clean apicheck

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(PIP) -e '.[reference,server,mcp,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kb build
	$(BIN)/kb query "which method to explain my CNN's prediction?"
	@echo "kb lives in $(BIN)/: run '. $(BIN)/activate' to put it on your PATH (or call $(BIN)/kb)"

validate: $(STAMP)
	$(BIN)/kb validate

test: $(STAMP)
	$(BIN)/kb validate
	$(BIN)/kb build --no-progress
	# two workers (CI has two cores); whole files per worker so module fixtures train once
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# every library API name the records give resolves in that library (one venv per compatible group)
apicheck: $(STAMP)
	tools/apicheck.sh .apicheck

bench: $(STAMP)
	$(BIN)/python bench/run.py

wheel: $(STAMP)
	$(BIN)/pip wheel --no-deps --no-build-isolation -q -w dist .

clean:
	rm -rf .kb site out build dist
