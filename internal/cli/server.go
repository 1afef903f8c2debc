package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/run/kube"
	"github.com/tailor-ml/tailor/internal/ui"
)

func serverCommand() *command {
	return &command{name: "server", usage: "run the Tailor server (API, scheduler, workers)", run: runServer}
}

func runServer(e *env, args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory (required)")
	blobURL := fs.String("blob", "", "artifact store: file:///abs/dir or s3://bucket/prefix, with the S3 endpoint and credentials in AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (see docs/scale-out.md); default the local store in --data-dir/blobs")
	listen := fs.String("listen", "127.0.0.1:7070", "listen address")
	region := fs.String("region", "local", "region this server computes and stores in")
	regions := fs.String("regions", "", "comma-separated region names recipes and datasets may use (default: --region, plus those the residency policy names)")
	policyFile := fs.String("residency-policy", "", "YAML file saying which regions compute in each region may read from and write to (see docs/security.md); default: each region reads and writes only itself")
	concurrency := fs.Int("concurrency", 1, "runs that train at once")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	budget := fs.Int64("serve-budget-bytes", 256<<20, "adapter bytes resident for serving")
	baseBudget := fs.Int64("serve-base-budget-bytes", 0, "base model bytes resident for serving; past it the least recently used bases are evicted and reloaded on demand (0: no bound)")
	inProcess := fs.Bool("serve-in-process", false, "run inference inside the server process instead of the supervised `tailor worker serve` child")
	sample := fs.Float64("request-log-sample", 1, "fraction of served requests logged, in [0, 1] (0: none); only a logged request's input is kept for feedback datasets")
	logMaxBytes := fs.Int64("request-log-max-bytes", 1<<30, "bytes the request log may hold on disk; past it the oldest records are deleted (0: no bound)")
	logMaxAge := fs.Duration("request-log-max-age", 30*24*time.Hour, "age past which request log records are deleted (0: no bound)")
	redact := fs.String("redact", "", "comma-separated regular expressions replaced by [REDACTED] in logged inputs")
	approval := fs.String("require-approval", "", "comma-separated model aliases whose moves need a second person's approval")
	maxImport := fs.Int64("max-import-bytes", 64<<30, "largest dataset or base import body; a larger one is refused with 413 (staging needs twice its size free on the data disk)")
	maxUploads := fs.Int("max-uploads", 4, "dataset and base imports served at once; more wait up to 30 s, then answer 503 with Retry-After")
	bodyIdle := fs.Duration("body-idle-timeout", 30*time.Second, "the longest a request body may stall before the request fails with 408")
	wattsPerCore := fs.Float64("meter-watts-per-core", meter.DefaultWattsPerCore, "power of one busy core in the energy estimate used where RAPL is not readable (docs/metering.md)")
	noRAPL := fs.Bool("meter-no-rapl", false, "estimate energy from CPU time even where RAPL (/sys/class/powercap) is readable")
	costCPU := fs.Float64("cost-cpu-hour-usd", meter.DefaultCostCPUHourUSD, "price of one CPU-hour in usage and budgets (0: free)")
	costKWh := fs.Float64("cost-kwh-usd", meter.DefaultCostKWhUSD, "price of one kWh in usage and budgets (0: free)")
	insecure := fs.Bool("insecure-local", false, "serve requests without a token as principal \"local\", admin in the default project; only with a loopback --listen address (tokens still work)")
	rate := fs.Float64("rate-limit", 100, "requests per second each token may make; past it, 429 (negative: no limit)")
	burst := fs.Int("rate-burst", 200, "requests a token may make at once before --rate-limit applies")
	busURL := fs.String("bus", "local", "event bus: local (in-process, one server) or nats://host:port[,nats://…] (NATS JetStream shared by replicas; credentials file in TAILOR_NATS_CREDS); see docs/scale-out.md")
	storeURL := fs.String("store", "", "metadata store: sqlite:///abs/file.db or postgres://user@host:port/db?sslmode=disable, the password in the URL or in PGPASSWORD (pgx reads the PG* variables; see docs/scale-out.md); default the SQLite file --data-dir/tailor.db")
	replica := fs.String("replica", "", "this server's name among replicas, the holder of the leader lease (default: host name and a hash of --data-dir)")
	leaseTTL := fs.Duration("lease-ttl", app.DefaultLeaseTTL, "how long the leader lease lasts unless renewed (renewed every third of it); a replica takes over within about 4/3 of it after the leader dies")
	executor := fs.String("executor", "local", "where training runs: local (child processes of this server) or kubernetes (a Job per attempt; docs/scale-out.md)")
	kubeConfig := fs.String("kube-config", "", "kubeconfig file of the cluster of --executor kubernetes (default: the pod's in-cluster configuration)")
	kubeNamespace := fs.String("kube-namespace", "default", "namespace of the training Jobs")
	kubeImage := fs.String("kube-image", "", "container image with the tailor binary that the training Jobs run (required with --executor kubernetes)")
	workerAPI := fs.String("worker-api", "", "this server's URL as the training Jobs' pods reach it (required with --executor kubernetes)")
	kubeEnvSecret := fs.String("kube-env-secret", "", "Secret of --kube-namespace whose keys become the training workers' environment (the S3 endpoint and credentials of an s3:// --blob)")
	kubePending := fs.Duration("kube-pending-timeout", 10*time.Minute, "how long a training Job's pod may stay unschedulable (no node fits its resources) before its run fails with the scheduler's message (negative: wait for ever)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	newExecutor, err := executorFlags(*executor, *kubeConfig, kube.Options{Namespace: *kubeNamespace, Image: *kubeImage, API: *workerAPI,
		EnvSecret: *kubeEnvSecret, PendingTimeout: *kubePending})
	if err != nil {
		return err
	}
	if *dataDir == "" {
		return usagef("server: --data-dir is required")
	}
	if *sample < 0 || *sample > 1 {
		return usagef("server: --request-log-sample %g must be in [0, 1] (0 logs no request, 1 every request)", *sample)
	}
	if *maxImport <= 0 {
		return usagef("server: --max-import-bytes %d must be positive", *maxImport)
	}
	if *wattsPerCore <= 0 || *costCPU < 0 || *costKWh < 0 {
		return usagef("server: --meter-watts-per-core must be positive and --cost-cpu-hour-usd, --cost-kwh-usd not negative")
	}
	if *logMaxBytes < 0 || *logMaxAge < 0 {
		return usagef("server: --request-log-max-bytes and --request-log-max-age must not be negative (0: no bound)")
	}
	if *insecure {
		if err := checkLoopback(*listen); err != nil {
			return usagef("server: --insecure-local: %v", err)
		}
	}
	if *burst < 1 {
		return usagef("server: --rate-burst %d must be at least 1", *burst)
	}
	if *leaseTTL < 300*time.Millisecond {
		return usagef("server: --lease-ttl %s must be at least 300ms", *leaseTTL)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("server: --log-level %q: %v", *logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	opts := app.Options{DataDir: *dataDir, Blob: *blobURL, Getenv: e.getenv, Region: *region, Concurrency: *concurrency, Logger: logger,
		EngineVersion: engineVersion(), ServeBudgetBytes: *budget, ServeBaseBudgetBytes: *baseBudget, ServeInProcess: *inProcess,
		RequestLogSampleRate: sample, RequestLogMaxBytes: *logMaxBytes, RequestLogMaxAge: *logMaxAge,
		Meter: meter.Options{WattsPerCore: *wattsPerCore, NoRAPL: *noRAPL, CostCPUHourUSD: freeAsNegative(*costCPU), CostKWhUSD: freeAsNegative(*costKWh)},
		Bus:   *busURL, Store: *storeURL, Replica: *replica, LeaseTTL: *leaseTTL}
	if newExecutor != nil {
		opts.NewExecutor = func(remote *run.Remote) (run.Executor, error) { return newExecutor(remote, logger) }
		if !strings.HasPrefix(*blobURL, "s3://") {
			logger.Warn("--executor kubernetes with a file artifact store: the Jobs' pods must see it at the same path; use --blob s3://… otherwise", "blob", *blobURL)
		}
	}
	if *redact != "" {
		opts.Redact = strings.Split(*redact, ",")
	}
	if fp := e.getenv("TAILOR_FAILPOINTS"); fp != "" {
		opts.Failpoints = strings.Split(fp, ",")
		logger.Warn("failpoints armed: the server kills itself at them (fault-injection tests only)", "failpoints", fp)
	}
	if *approval != "" {
		opts.RequireApproval = map[string]bool{}
		for _, al := range strings.Split(*approval, ",") {
			opts.RequireApproval[al] = true
		}
	}
	if *regions != "" {
		opts.Regions = strings.Split(*regions, ",")
	}
	if *policyFile != "" {
		// #nosec G304 -- the policy file the operator named on the command line
		src, err := os.ReadFile(*policyFile)
		if err != nil {
			return fmt.Errorf("server: --residency-policy: %w", err)
		}
		if opts.Residency, err = residency.Parse(*policyFile, src); err != nil {
			return err
		}
		logger.Info("residency policy", "file", *policyFile, "region", *region, "read", opts.Residency.Regions[*region].Read,
			"write", opts.Residency.Regions[*region].Write)
	}
	a, err := app.Open(opts)
	if err != nil {
		return err
	}
	authority := a.Authority(auth.Options{InsecureLocal: *insecure, Rate: *rate, Burst: *burst})
	if *insecure {
		logger.Warn("--insecure-local: requests without a token act as principal \"local\", admin in the default project", "listen", *listen)
	} else if err := bootstrapToken(e, authority, *dataDir, logger); err != nil {
		// #nosec G104 -- cleanup on an error path; the bootstrap error is returned
		a.Close()
		return err
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		// #nosec G104 -- cleanup on an error path; the start error is returned
		a.Close()
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		cancel()
		// #nosec G104 -- cleanup on an error path; the listen error is returned
		a.Close()
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	hopts := httpapi.Options{Service: a, Auth: authority, Logger: logger, Inference: a.Inference(), UI: ui.Handler(),
		MaxUpload: *maxImport, MaxUploads: *maxUploads, BodyIdleTimeout: *bodyIdle}
	if w := a.Workers(); w != nil {
		hopts.Workers = w
	}
	srv := httpapi.NewServer(hopts)
	logger.Info("tailor server listening", "addr", ln.Addr().String(), "dashboard", "http://"+ln.Addr().String()+"/", "data_dir", *dataDir, "blob", a.BlobAddress(), "engine", opts.EngineVersion,
		"bus", *busURL, "replica", a.Replica(), "store", a.StoreAddress(), "executor", *executor)
	fmt.Fprintf(e.stdout, "listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		shutdown, c := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(shutdown)
		c()
	}
	cancel()
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// freeAsNegative maps a flag's 0 (free) to meter.Options' negative (free):
// there, 0 takes the default.
func freeAsNegative(rate float64) float64 {
	if rate == 0 {
		return -1
	}
	return rate
}

// checkLoopback refuses a listen address that is not on loopback:
// 127.0.0.0/8, ::1 or localhost (an empty host listens everywhere).
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not on loopback: without tokens anyone who reaches the port could do anything; listen on 127.0.0.1 or drop the flag and use tokens", listen)
	}
	return nil
}

// bootstrapFile is where the first admin token is written, in the data
// directory.
const bootstrapFile = "bootstrap-token"

// bootstrapToken mints the first admin token when the store holds none
// and writes it to <data-dir>/bootstrap-token, mode 0600 (through a
// temporary file and a rename, so the file is whole or absent). It logs
// and prints the path, never the token.
func bootstrapToken(e *env, authority *auth.Authority, dataDir string, logger *slog.Logger) error {
	path := filepath.Join(dataDir, bootstrapFile)
	made, err := authority.Bootstrap(e.ctx, func(token string) error { return writeSecret(path, token+"\n") })
	if err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	if made {
		logger.Info("bootstrap admin token written", "path", path, "principal", "admin", "project", "default")
		fmt.Fprintf(e.stdout, "bootstrap admin token written to %s (mode 0600): export TAILOR_TOKEN=$(cat %s)\n", path, path)
	}
	return nil
}

// writeSecret writes text to path, readable by its owner only.
func writeSecret(path, text string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".bootstrap-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // #nosec G104 -- gone after the rename; on failure the partial file goes
	if err := f.Chmod(0o600); err != nil {
		// #nosec G104 -- cleanup on an error path; the chmod error is returned
		f.Close()
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		// #nosec G104 -- cleanup on an error path; the write error is returned
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// engineVersion names the engine build and its numeric backend; it is part
// of every run key.
func engineVersion() string {
	return "tailor-engine/0.2 " + gemm.Info()
}
