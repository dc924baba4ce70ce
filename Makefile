# w2v-async pipelines, each step a file target:
#   word2vec: corpus -> vocab -> vectors (sgns, cbow) -> eval JSON
#   GloVe:    corpus -> vocab -> co-occurrences -> vectors -> eval JSON
#   phrases:  corpus -> phrases -> vocab -> vectors (sgns) -> eval JSON   (make phrases)
#   make demo            set up, train sgns, cbow and glove on the Wikipedia sample shipped with gensim, evaluate
#   make test            set up and run the test suite
#   make test-cores      the suite as on a 1-core and on a 64-core machine
#   make bench-web       web text: a 30,000-character token, 10M junk types (scripts/bench_web_text.py)
#   make bench           w2v-async vs gensim on the benchmark corpus (scripts/bench_vs_gensim.py)
#   make bench-phrases   w2v-async phrases vs gensim Phrases + FrozenPhrases, the benchmark corpus and 12x (scripts/bench_phrases.py)
#   make bench-glove     the GloVe pipeline's stages, memory and quality (scripts/bench_glove.py)
#   make bench-engines   threads vs Downpour SGD on Ray, and a scaling estimate (scripts/bench_engines.py)
#   make bench-engines-glove  GloVe by Hogwild AdaGrad, Downpour and Sandblaster L-BFGS (scripts/bench_engines.py)
#   make bench-checkpoint  what a checkpoint costs, in time and size (scripts/bench_checkpoint.py)
#   make device-prep     wheels and the corpus for the lent GPU machine's scripts/device_gpu.sh (issue 28's checks)
#   make bench-scaling   every mode's words/s against threads beside gensim, JSON + PNG (scripts/bench_scaling.py)
#   make experiment      every update scheme (locks, Hogwild, HogBatch, Downpour) on the benchmark corpus, a report
#                        with plots in $(DATA)/experiment (w2v-async experiment; MODEL=glove adds Sandblaster)
#   make text8 && make CORPUS=data/text8 eval    the classic text8 corpus (needs internet)
#   make wiki WIKI=enwiki-latest-pages-articles.xml.bz2   a Wikipedia dump -> text (parallel) -> skip-gram -> eval
#   make phrases         word2vec.c's demo-phrases: the corpus with its phrases joined (2 passes) -> skip-gram -> eval
# Any corpus works: make CORPUS=my.txt.gz THREADS=8 eval

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
W2V := $(BIN)/w2v-async
DATA ?= data
CORPUS ?= $(DATA)/enwiki.txt
NAME := $(basename $(notdir $(CORPUS)))
MIN_COUNT ?= 5
THREADS ?= $(shell nproc 2>/dev/null || echo 2)
TRAIN_FLAGS ?= --dim 100 --window 5 --negative 5 --sample 1e-3 --epochs 5
COOC_FLAGS ?= --window 10 --memory 1
GLOVE_FLAGS ?= --dim 100 --epochs 15 --x-max 10
PHRASES_FLAGS ?= --scoring word2phrase --passes 2 --threshold 200,100

.PHONY: all demo test test-cores device-prep bench-web bench-subwords bench bench-finetune bench-glove bench-engines bench-engines-glove bench-checkpoint bench-scaling experiment eval text8 wiki phrases bench-phrases clean
.DELETE_ON_ERROR:
.SECONDARY:

all: demo

$(W2V): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,ray,plots]'
	touch $@

# The embedded default corpus: gensim's bundled English Wikipedia sample, no download.
$(DATA)/enwiki.txt: corpora/wiki.py | $(W2V)
	mkdir -p $(DATA)
	$(BIN)/python corpora/wiki.py $@ --processes $(THREADS)

# A full Wikipedia dump (download: https://dumps.wikimedia.org/enwiki/latest/enwiki-latest-pages-articles.xml.bz2):
# make wiki WIKI=enwiki-latest-pages-articles.xml.bz2 cleans it in parallel processes into $(DATA)/wiki.txt, then
# trains skip-gram and evaluates it (make CORPUS=$(DATA)/wiki.txt eval: all three models).
WIKI ?=
$(DATA)/wiki.txt: $(WIKI) corpora/wiki.py | $(W2V)
	@[ -n "$(WIKI)" ] || { echo "Error: give the dump: make wiki WIKI=enwiki-latest-pages-articles.xml.bz2" >&2; exit 2; }
	mkdir -p $(DATA)
	$(BIN)/python corpora/wiki.py $@ --dump $(WIKI) --processes $(THREADS)

# Phrases (word2vec.c's demo-phrases.sh runs word2phrase twice): new york -> new_york, then the phrased text is a corpus
$(DATA)/$(NAME)-phrases.txt: $(CORPUS) | $(W2V)
	mkdir -p $(DATA)
	$(W2V) phrases $< -o $@ --threads $(THREADS) $(PHRASES_FLAGS) --save $(DATA)/$(NAME)-phrases.tsv

phrases: $(DATA)/$(NAME)-phrases.txt
	$(MAKE) CORPUS=$(DATA)/$(NAME)-phrases.txt $(DATA)/$(NAME)-phrases.sgns.eval.json
	$(W2V) eval $(DATA)/$(NAME)-phrases.sgns.bin

wiki: $(DATA)/wiki.txt
	$(MAKE) CORPUS=$(DATA)/wiki.txt $(DATA)/wiki.sgns.eval.json
	$(W2V) eval $(DATA)/wiki.sgns.bin

$(DATA)/%.vocab.tsv: $(CORPUS) | $(W2V)
	$(W2V) vocab $< -o $@ --min-count $(MIN_COUNT)

$(DATA)/$(NAME).%.bin: $(CORPUS) $(DATA)/$(NAME).vocab.tsv | $(W2V)
	$(W2V) train $< --vocab $(DATA)/$(NAME).vocab.tsv --model $* --threads $(THREADS) $(TRAIN_FLAGS) -o $@

$(DATA)/$(NAME).cooc.npz: $(CORPUS) $(DATA)/$(NAME).vocab.tsv | $(W2V)
	$(W2V) cooccur $< --vocab $(DATA)/$(NAME).vocab.tsv --threads $(THREADS) $(COOC_FLAGS) -o $@

$(DATA)/$(NAME).glove.bin: $(DATA)/$(NAME).cooc.npz $(DATA)/$(NAME).vocab.tsv | $(W2V)
	$(W2V) train --model glove --cooccur $< --vocab $(DATA)/$(NAME).vocab.tsv --threads $(THREADS) $(GLOVE_FLAGS) -o $@

$(DATA)/%.eval.json: $(DATA)/%.bin | $(W2V)
	$(W2V) eval $< --json > $@.tmp && mv $@.tmp $@

eval: $(DATA)/$(NAME).sgns.eval.json $(DATA)/$(NAME).cbow.eval.json $(DATA)/$(NAME).glove.eval.json

demo: eval
	$(W2V) eval $(DATA)/$(NAME).sgns.bin
	$(W2V) eval $(DATA)/$(NAME).cbow.bin
	$(W2V) eval $(DATA)/$(NAME).glove.bin
	$(W2V) similar $(DATA)/$(NAME).sgns.bin king -n 8

test: $(W2V)
	$(BIN)/python -m pytest -q

# The suite as on a 1-core and on a 64-core machine: the cores Python reports are faked (tests/fake_cores)
test-cores: $(W2V)
	W2V_TEST_CORES=1 $(BIN)/python -m pytest -q
	W2V_TEST_CORES=64 $(BIN)/python -m pytest -q

bench-phrases: $(W2V)
	$(BIN)/python scripts/bench_phrases.py $(EXPERIMENT_CORPUS) --times 1,12 --threads 2

bench-web: $(W2V)
	$(BIN)/python scripts/bench_web_text.py

# fastText itself in its own virtual environment (never a dependency of ours); FT_VENV=DIR to use another
FT_VENV ?= $(DATA)/fasttext-venv
$(FT_VENV)/bin/python:
	mkdir -p $(DATA)
	python3 -m venv $(FT_VENV) && $(FT_VENV)/bin/pip install --quiet fasttext-wheel numpy

bench-subwords: $(W2V) $(FT_VENV)/bin/python
	$(BIN)/python scripts/bench_subwords.py --threads $(THREADS) --fasttext-python $(FT_VENV)/bin/python

bench: $(W2V)
	$(BIN)/python scripts/bench_vs_gensim.py --threads $(THREADS)

bench-finetune: $(W2V)
	$(BIN)/python scripts/bench_finetune.py --threads $(THREADS)

bench-glove: $(W2V)
	$(BIN)/python scripts/bench_glove.py --threads $(THREADS)

bench-engines: $(W2V)
	$(BIN)/python scripts/bench_engines.py --threads $(THREADS)

bench-engines-glove: $(W2V)
	$(BIN)/python scripts/bench_engines.py --model glove --threads $(THREADS)

bench-checkpoint: $(W2V)
	$(BIN)/python scripts/bench_checkpoint.py --threads $(THREADS)

# threads 1, 2, 4, ... up to the machine's cores; matplotlib (the plot) is the benchmark scripts' extra
SCALING_THREADS ?= $(shell n=$(THREADS); t=1; s=1; while [ $$((t * 2)) -le $$n ]; do t=$$((t * 2)); s="$$s,$$t"; done; [ $$t -eq $$n ] || s="$$s,$$n"; echo $$s)
bench-scaling: $(W2V)
	$(BIN)/pip install --quiet -r scripts/requirements.txt
	mkdir -p $(DATA)
	$(BIN)/python scripts/bench_scaling.py --threads $(SCALING_THREADS) --gensim-threads 1,$(THREADS) \
		--json-out $(DATA)/scaling.json --plot $(DATA)/scaling.png

# The question behind the project, measured: each update scheme for BUDGET seconds on the benchmark corpus
# (about 13 minutes on 2 cores with the defaults); any corpus works: make experiment EXPERIMENT_CORPUS=my.txt
REGISTRY := ../shared/corpora/registry-en.txt.gz
EXPERIMENT_CORPUS ?= $(if $(wildcard $(REGISTRY)),$(REGISTRY),$(DATA)/enwiki.txt)
MODEL ?= sgns
BUDGET ?= 60
experiment: $(EXPERIMENT_CORPUS) | $(W2V)
	$(W2V) experiment $(EXPERIMENT_CORPUS) -o $(DATA)/experiment-$(MODEL) --model $(MODEL) --budget $(BUDGET)

# text8 (100M characters of Wikipedia, one line): for users with internet access.
text8: $(DATA)/text8
$(DATA)/text8:
	mkdir -p $(DATA)
	curl -L -o $(DATA)/text8.zip https://mattmahoney.net/dc/text8.zip
	cd $(DATA) && unzip -o text8.zip && rm text8.zip

clean:
	rm -rf $(DATA)/*.bin $(DATA)/*.json $(DATA)/*.tsv $(DATA)/*.npz

# The lent GPU machine (../shared/device/RECIPE.md) has no network and no gensim: its wheels (Python
# 3.12, x86-64) and the benchmark corpus, git-ignored, for the device tool to carry to scripts/device_gpu.sh
DEVICE_WHEELS ?= gensim==4.4.0 smart_open==7.3.1 wrapt==1.17.2 pytest==8.3.5 pluggy==1.5.0 iniconfig==2.1.0 packaging==24.2
device-prep:
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl $(DEVICE_WHEELS)
	mkdir -p .bench-data && cp $(REGISTRY) .bench-data/
	du -sh .whl .bench-data
