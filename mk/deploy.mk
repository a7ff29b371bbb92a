# Deployment (issue #10): the container image and the Helm chart.
#
#   make image        build the image liveness-gateway:<version> (starts a Docker engine if needed)
#   make test-image   build it, run it read-only as non-root, check it from outside
#   make test-helm    helm lint --strict, helm template and offline schema validation per values file
#
# Tools are built from the Go module proxy at pinned versions into .tools/ (git-ignored) and
# kept across runs; a version bump builds into a new directory.

HELM_VERSION := v3.22.0
# helm's default Kubernetes version (for `helm template` and lint) follows its client-go, as in
# helm's own release build; go install alone would leave it at 1.20.
HELM_K8S_VERSION := 1.37
GRPC_HEALTH_PROBE_VERSION := v0.4.61

DEPLOY_TOOLS := $(CURDIR)/.tools
HELM := $(DEPLOY_TOOLS)/helm-$(HELM_VERSION)/helm
GRPC_HEALTH_PROBE := $(DEPLOY_TOOLS)/grpc-health-probe-$(GRPC_HEALTH_PROBE_VERSION)/grpc-health-probe
CHART := helm/liveness-gateway
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and helm's default.
CHART_KUBE_VERSIONS := 1.27.0 $(HELM_K8S_VERSION).0
IMAGE_NAME ?= liveness-gateway
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= $(IMAGE_NAME):$(IMAGE_VERSION)
DEPLOY_TEST_STAMP := $(VENV)/.deploy-test-$(shell cat requirements-deploy-test.txt | sha1sum | cut -c1-12)

# The chart tests in tests/deploy run in the root pytest too: give it helm and their packages,
# and tell them where helm is.
pytest: $(HELM) $(DEPLOY_TEST_STAMP)
pytest: export LIVENESS_HELM = $(HELM)
TEST_TARGETS += test-helm

.PHONY: image test-image test-helm deploy-tools

deploy-tools: $(HELM) $(GRPC_HEALTH_PROBE)

$(HELM):
	GOBIN=$(dir $@) GOFLAGS=-mod=mod go install -trimpath \
	  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
	    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(word 2,$(subst ., ,$(HELM_K8S_VERSION))) \
	    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
	    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(word 2,$(subst ., ,$(HELM_K8S_VERSION)))" \
	  helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(GRPC_HEALTH_PROBE):
	GOBIN=$(dir $@) GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
	  github.com/grpc-ecosystem/grpc-health-probe@$(GRPC_HEALTH_PROBE_VERSION)

$(DEPLOY_TEST_STAMP): requirements-deploy-test.txt $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-deploy-test.txt
	@rm -f $(VENV)/.deploy-test-*
	@touch $@

# Every values file the chart is tested with: the defaults, then one per feature in ci/.
CHART_VALUES := $(wildcard $(CHART)/ci/*-values.yaml)

test-helm: $(HELM) $(DEPLOY_TEST_STAMP)
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	for values in "" $(CHART_VALUES); do \
	  name=$${values:-defaults}; \
	  $(HELM) lint --strict $(CHART) $${values:+--values $$values} >$$tmp/lint.log 2>&1 || \
	    { cat $$tmp/lint.log; echo "test-helm: helm lint --strict failed for $$name"; exit 1; }; \
	  for kube in $(CHART_KUBE_VERSIONS); do \
	    $(HELM) template release $(CHART) --namespace liveness --kube-version $$kube \
	      $${values:+--values $$values} >$$tmp/rendered.yaml; \
	    $(BIN)/python scripts/validate-manifests.py --kube-version $$kube $$tmp/rendered.yaml \
	      || { echo "test-helm: $$name does not validate against Kubernetes $$kube"; exit 1; }; \
	  done; \
	  echo "test-helm: $$name: lint --strict, template, schemas of Kubernetes $(CHART_KUBE_VERSIONS): ok"; \
	done

image:
	IMAGE=$(IMAGE) IMAGE_VERSION=$(IMAGE_VERSION) PYTHON=$(PYTHON) scripts/build-image.sh

test-image: image $(GRPC_HEALTH_PROBE) $(STAMP) $(CLIENT_PY_STAMP)
	IMAGE=$(IMAGE) GRPC_HEALTH_PROBE=$(GRPC_HEALTH_PROBE) VENV_PYTHON=$(BIN)/python \
	  scripts/test-image.sh
