# fairimage: `make run` builds and serves a demo repository; `make test` runs the test suite.
# Both create the virtual environment and install what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK = 1

FRONTEND = fairimage/web/frontend
VIEWER = fairimage/web/static/build/viewer.js
CHROMIUM = /usr/bin/chromium
DCIODVFY = /usr/bin/dciodvfy
ORTHANC = /usr/share/orthanc/plugins/libOrthancDicomWeb.so

.PHONY: install web run test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/pip install -q -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import fairimage, zarr, tifffile, fastapi, ome_zarr_models, ome_zarr, bioio_ome_zarr, s3fs, moto, mypy, playwright"
	touch $@

# The viewers (viv, OpenSeadragon) are bundled from npm packages pinned by package-lock.json; nothing is
# fetched from a CDN when the pages are viewed.
# A wheel's build runs the same two steps (build_viewer.py); an editable install serves this checkout's bundle.
$(VIEWER): $(FRONTEND)/package-lock.json $(FRONTEND)/build.mjs $(wildcard $(FRONTEND)/src/*.js) $(wildcard $(FRONTEND)/src/icons/*.svg)
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

# A real OpenID Connect provider for the sign-in tests (tests/test_oidc.py): panva's oidc-provider, pinned by
# tests/oidc/package-lock.json, run by Node on 127.0.0.1. Its major 8 is the one that supports Node 20.
OIDC_PROVIDER = tests/oidc/node_modules/.package-lock.json
$(OIDC_PROVIDER): tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error

# GA4GH's DRS compliance suite pins old versions of pytest, requests and Flask, so it lives in its own
# environment, with what its wheel leaves out: jsonschema (imported, not declared) and a werkzeug its
# pinned Flask 2.2 still works with. tests/test_drs.py runs it against a live server.
DRS_SUITE = .venv-drs/bin/drs-compliance-suite
$(DRS_SUITE):
	$(PYTHON) -m venv .venv-drs
	.venv-drs/bin/pip install -q drs-compliance-suite==1.0.3 jsonschema "werkzeug<2.3" 2>&1 | grep -v "^WARNING: Location" || true

# roc-validator checks the RO-Crate exports, offline (tests/rocrate_check.py fills its HTTP cache with the
# RO-Crate context that ro-crate-py ships); it lives in its own environment for its own pins.
ROC_VALIDATOR = .venv-rocrate/bin/rocrate-validator
$(ROC_VALIDATOR):
	$(PYTHON) -m venv .venv-rocrate
	.venv-rocrate/bin/pip install -q roc-validator==0.13.0 rocrate==0.16.0 2>&1 | grep -v "^WARNING: Location" || true

# napari is a real client of the served volumes (tests/test_volumes.py, slow): napari and its OME-Zarr plugin
# with their own pins in their own environment, drawing with OpenGL on Debian's virtual X server (Mesa).
NAPARI = .venv-napari/bin/napari
XVFB = /usr/bin/xvfb-run
$(NAPARI):
	$(PYTHON) -m venv .venv-napari
	.venv-napari/bin/pip install -q napari==0.9.2 napari-ome-zarr==0.10.0 PyQt5==5.15.11 2>&1 | grep -v "^WARNING: Location" || true
$(XVFB):
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q xvfb xauth libgl1-mesa-dri >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q xvfb xauth libgl1-mesa-dri >/dev/null); \
	else echo "napari's test needs Debian's xvfb: sudo apt-get install xvfb xauth libgl1-mesa-dri"; fi

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; fi

# dciodvfy (Debian's dicom3tools) checks that de-identified DICOM is as conformant as it was.
$(DCIODVFY):
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q dicom3tools >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q dicom3tools >/dev/null); \
	else echo "DICOM conformance tests need Debian's dicom3tools: sudo apt-get install dicom3tools"; fi

# A real PACS for the DICOMweb pull tests: Debian's Orthanc and its DICOMweb plugin, started by the tests.
$(ORTHANC):
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q orthanc orthanc-dicomweb >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q orthanc orthanc-dicomweb >/dev/null); \
	else echo "DICOMweb tests need Debian's Orthanc: sudo apt-get install orthanc orthanc-dicomweb"; fi

web: $(VIEWER)

# Bytecode for the checkout: where PYTHONDONTWRITEBYTECODE is set, an editable install would otherwise compile
# every module from source at each start of the command (a wheel's install compiles them itself).
install: $(VENV)/.installed $(VIEWER)
	$(BIN)/python -m compileall -q -x /node_modules/ fairimage

run: install  ## build the demo repository and serve it on http://127.0.0.1:$(PORT)/
	@echo "fairimage is installed in $(VENV)/: run 'source $(VENV)/bin/activate' (or call $(BIN)/fairimage) to use the command line"
	$(BIN)/fairimage demo --repo demo-repo --port $(PORT)

test: install $(CHROMIUM) $(DCIODVFY) $(ORTHANC) $(DRS_SUITE) $(ROC_VALIDATOR) $(OIDC_PROVIDER)  ## the default suite (slow cases excluded), layer contract, lint and types
	$(BIN)/lint-imports
	$(BIN)/ruff check fairimage tests benchmarks build_viewer.py
	$(BIN)/mypy fairimage build_viewer.py
	$(BIN)/pytest -m "not slow" -n auto

test-all: install $(CHROMIUM) $(DCIODVFY) $(ORTHANC) $(DRS_SUITE) $(ROC_VALIDATOR) $(OIDC_PROVIDER) $(NAPARI) $(XVFB)  ## every test, slow ones included
	$(BIN)/pytest -n auto

lint: install
	$(BIN)/ruff check fairimage tests benchmarks build_viewer.py
	$(BIN)/lint-imports
	$(BIN)/mypy fairimage build_viewer.py

# benchmarks/serve.py loads the server with Debian's wrk, against Debian's nginx serving the same files.
NGINX = /usr/sbin/nginx
WRK = /usr/bin/wrk
$(NGINX) $(WRK):
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q nginx wrk >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q nginx wrk >/dev/null); \
	else echo "the serving benchmark needs Debian's nginx and wrk: sudo apt-get install nginx wrk"; fi

bench: install $(NGINX) $(WRK)  ## conversion against ome-zarr-py and ngff-zarr and the machine's ceiling; tile and search latency (benchmarks/README.md)
	$(BIN)/pip install -q -e '.[test,bench]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python benchmarks/convert.py
	$(BIN)/python benchmarks/tiles.py
	$(BIN)/python benchmarks/search.py --images 200000 --queries 100
	$(BIN)/python benchmarks/plates.py
	$(BIN)/python benchmarks/register.py --verify
	$(BIN)/python benchmarks/qc.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/plate_page.py
	$(BIN)/python benchmarks/ml_patches.py
	$(BIN)/python benchmarks/federation.py --images-per-node 10000
	$(BIN)/python benchmarks/mirror.py --size 16384

clean:
	rm -rf demo-repo .venv-drs .venv-rocrate .venv-napari .pytest_cache benchmarks/results test-artifacts $(FRONTEND)/node_modules tests/oidc/node_modules fairimage/web/static/build
