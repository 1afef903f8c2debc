package cli

import (
	"log/slog"
	"net/url"

	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/run/kube"
)

// executorFlags checks the server's --executor flags and returns what
// builds the executor (nil: local child processes).
func executorFlags(kind, kubeConfig, namespace, image, workerAPI, envSecret string) (func(*run.Remote, *slog.Logger) (run.Executor, error), error) {
	switch kind {
	case "local", "":
		if kubeConfig != "" || image != "" || workerAPI != "" || envSecret != "" {
			return nil, usagef("server: --kube-config, --kube-image, --worker-api and --kube-env-secret need --executor kubernetes")
		}
		return nil, nil
	case "kubernetes":
	default:
		return nil, usagef("server: --executor %q: want local or kubernetes", kind)
	}
	if image == "" {
		return nil, usagef("server: --executor kubernetes needs --kube-image, an image holding the tailor binary")
	}
	u, err := url.Parse(workerAPI)
	if workerAPI == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("server: --executor kubernetes needs --worker-api, this server's http(s):// URL as the Jobs' pods reach it (got %q)", workerAPI)
	}
	return func(remote *run.Remote, logger *slog.Logger) (run.Executor, error) {
		client, err := kube.Client(kubeConfig)
		if err != nil {
			return nil, err
		}
		return kube.New(kube.Options{Client: client, Namespace: namespace, Image: image, API: workerAPI, EnvSecret: envSecret,
			Remote: remote, Logger: logger})
	}, nil
}
