# The two commands a fresh clone needs: `make demo` (main job on the embedded mini source) and `make test`.
APT_PACKAGES = espeak-ng libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4
PYTHON ?= python3

.PHONY: setup demo test bench

setup:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); }
	$(PYTHON) -m pip install -q -c constraints/cpu.txt -e '.[test]'

demo: setup
	luma build clean --out build/datasets

test: setup
	ruff check . && ruff format --check .
	$(PYTHON) -m pytest -q

bench: setup
	for script in build_speed.py variant_speed.py "first_record.py full" feeding_speed.py label_switching.py \
		export_speed.py; do $(PYTHON) bench/$$script || exit 1; done
