package cli

import (
	"log/slog"
	"net/url"

	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/run/kube"
)

// executorFlags checks the server's --executor flags and returns what
// builds the executor (nil: local child processes). ko holds the
// kubernetes flags: Namespace, Image, API (--worker-api), EnvSecret and
// PendingTimeout.
func executorFlags(kind, kubeConfig string, ko kube.Options) (func(*run.Remote, *slog.Logger) (run.Executor, error), error) {
	switch kind {
	case "local", "":
		if kubeConfig != "" || ko.Image != "" || ko.API != "" || ko.EnvSecret != "" {
			return nil, usagef("server: --kube-config, --kube-image, --worker-api and --kube-env-secret need --executor kubernetes")
		}
		return nil, nil
	case "kubernetes":
	default:
		return nil, usagef("server: --executor %q: want local or kubernetes", kind)
	}
	if ko.Image == "" {
		return nil, usagef("server: --executor kubernetes needs --kube-image, an image holding the tailor binary")
	}
	u, err := url.Parse(ko.API)
	if ko.API == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("server: --executor kubernetes needs --worker-api, this server's http(s):// URL as the Jobs' pods reach it (got %q)", ko.API)
	}
	return func(remote *run.Remote, logger *slog.Logger) (run.Executor, error) {
		client, err := kube.Client(kubeConfig)
		if err != nil {
			return nil, err
		}
		o := ko
		o.Client, o.Remote, o.Logger = client, remote, logger
		return kube.New(o)
	}, nil
}
