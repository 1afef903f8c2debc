package replicas

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tailor-ml/tailor/internal/blob/s3"
	"github.com/tailor-ml/tailor/internal/blob/s3/s3test"
	"github.com/tailor-ml/tailor/internal/bus/nats/natstest"
	"github.com/tailor-ml/tailor/internal/run/kube/kubetest"
	"github.com/tailor-ml/tailor/internal/store/postgres/pgtest"
)

// kubeSwitch adds Kubernetes Jobs to the scaled test: the control plane's
// binaries take long to build cold (scripts/kube.sh; make test-kube).
const kubeSwitch = "TAILOR_KUBE"

// scaled starts the scale-out engines as real servers on 127.0.0.1 for
// the replicas to share: PostgreSQL (a fresh database), versitygw (a
// fresh bucket; the replicas get its credentials in their environment)
// and nats-server. With TAILOR_KUBE=1 it also starts a control plane with
// a KWOK node and the kubetest runner, and every replica trains in Jobs
// (--executor kubernetes) whose workers reach the replica that started
// them (--worker-api, its own address) and the bucket (--kube-env-secret).
func scaled(t *testing.T) setup {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	db := pg.Database(t) // its URL
	must(t, os.MkdirAll(filepath.Join(dir, "s3"), 0o755))
	gw, err := s3test.Start(filepath.Join(dir, "s3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	bucket, err := gw.NewBucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natstest.Process(filepath.Join(dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	s3env := map[string]string{s3.EnvEndpointS3: gw.Endpoint, s3.EnvAccessKeyID: gw.AccessKey, s3.EnvSecretKey: gw.SecretKey,
		s3.EnvRegion: "us-east-1", s3.EnvPathStyle: "true"}
	c := setup{shared: []string{"--store", db, "--blob", "s3://" + bucket + "/tailor", "--bus", ns.URL, "--lease-ttl", leaseTTL.String()}}
	for k, v := range s3env {
		c.env = append(c.env, k+"="+v)
	}
	t.Logf("store %s, blob versitygw %s bucket %s, nats-server %s at %s, lease ttl %s", db, gw.Endpoint, bucket, ns.Version, ns.URL, leaseTTL)
	if os.Getenv(kubeSwitch) != "1" {
		t.Logf("training in child processes of the leader; %s=1 trains in Kubernetes Jobs on KWOK too (make test-kube)", kubeSwitch)
		return c
	}
	if m := kubetest.Missing(kubetest.CacheDir()); len(m) > 0 {
		t.Fatalf("%s=1 but %s lacks %v: run scripts/kube.sh (make test-kube does)", kubeSwitch, kubetest.CacheDir(), m)
	}
	start := time.Now()
	kc, err := kubetest.Start(ctx, kubetest.Options{Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Stop)
	const namespace, secret = "tailor-jobs", "tailor-s3"
	must(t, kc.CreateNamespace(ctx, namespace))
	_, err = kc.Client.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret}, StringData: s3env}, metav1.CreateOptions{})
	must(t, err)
	pods := filepath.Join(dir, "pods")
	must(t, os.MkdirAll(pods, 0o755))
	runner := kc.Run(kubetest.RunnerOptions{Commands: map[string]string{"tailor": tailorBin}, Dir: pods,
		Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}})
	t.Cleanup(runner.Stop)
	t.Logf("control plane and KWOK node ready in %s", time.Since(start).Round(time.Millisecond))
	c.shared = append(c.shared, "--executor", "kubernetes", "--kube-config", kc.Kubeconfig, "--kube-namespace", namespace,
		"--kube-image", "tailor:test", "--kube-env-secret", secret)
	c.own = func(addr string) []string { return []string{"--worker-api", fmt.Sprintf("http://%s", addr)} }
	c.pods = runner.Started
	return c
}
