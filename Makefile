# Tailor's entry points. The first two are the README's two commands.
.PHONY: demo test deps deps-demo build vet lint unit fuzz bench-engine bench-import bench-replicas clean

GO ?= go
BIN := bin/tailor

# The end-to-end demo on the embedded defaults (data in ./.tailor-demo).
demo: deps-demo build
	$(BIN) demo --data-dir .tailor-demo

# Everything CI runs: install, vet, lint, unit and integration tests, short fuzzing.
test: deps vet lint unit fuzz

deps:
	scripts/deps.sh

# What the demo needs and no more: no numerical references.
deps-demo:
	scripts/deps.sh demo

build:
	$(GO) build -o $(BIN) ./cmd/tailor

vet:
	$(GO) vet ./...

# staticcheck and gosec, pinned in tools.mod (a separate module file so the
# linters' dependencies never enter go.mod and the shipped binary); gosec's
# settings and the reason for each are in .gosec.json. A finding is fixed or
# justified where it is (//lint:ignore, // #nosec GXXX -- reason).
TOOL := $(GO) tool -modfile=tools.mod
lint:
	$(TOOL) staticcheck ./...
	$(TOOL) gosec -quiet -conf .gosec.json ./...

# Under TAILOR_REFERENCES=require a missing reference tool (torch, numpy,
# scipy, sklearn, node packages, chromium) fails its test instead of
# skipping; the log then lists which references ran. Test artifacts (the
# dashboard's screenshots) are kept under bin/test-output.
REFLOG := $(CURDIR)/bin/references.log
unit:
	@mkdir -p bin/test-output && rm -f $(REFLOG)
	TAILOR_REFERENCES=require TAILOR_REFERENCES_LOG=$(REFLOG) $(GO) test -count=1 -timeout 25m -artifacts -outputdir $(CURDIR)/bin/test-output ./...
	@scripts/references-summary.sh $(REFLOG)

fuzz:
	scripts/fuzz.sh

# Engine speed against PyTorch on the same machine (see README and
# docs/engine.md). BENCH_ENGINE_ARGS narrows it, e.g. "--cases decode_b8
# --rounds 1 --iters 3".
BENCH_ENGINE_ARGS ?=
bench-engine: deps
	scripts/bench-engine.sh $(BENCH_ENGINE_ARGS)

# Dataset import of a generated 1 GB JSONL (see docs/datasets.md).
bench-import:
	$(GO) test -tags long -run TestImport1GB -v -timeout 60m ./internal/data/

# Classify requests/s against 1 vs 2 server replicas serving the same
# adapter, as a ratio (see docs/scale-out.md). BENCH_REPLICAS_ARGS, e.g.
# "-bench-clients 16 -bench-seconds 30".
bench-replicas:
	$(GO) test -tags bench -run TestBenchReplicas -v -count=1 -timeout 30m ./e2e/replicas/ -args $(BENCH_REPLICAS_ARGS)

clean:
	rm -rf bin .tailor-demo

# The Kubernetes executor against a real control plane with a KWOK node
# (docs/scale-out.md, Training on Kubernetes): scripts/kube.sh builds the
# cluster's binaries into $TAILOR_CACHE/kube-v1.37.2 (58 minutes
# cold, then cached), then the test runs with TAILOR_KUBE=1.
.PHONY: test-kube
test-kube:
	scripts/kube.sh
	TAILOR_KUBE=1 $(GO) test -count=1 -timeout 30m -run TestKubernetesJobs -v ./internal/run/kube/
	TAILOR_KUBE=1 $(GO) test -count=1 -timeout 30m -run TestFailoverScaled -v ./e2e/replicas/
