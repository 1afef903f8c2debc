// Package kubetest starts a real Kubernetes control plane for tests, as
// child processes built by scripts/kube.sh into a versioned cache folder:
// etcd, kube-apiserver, kube-scheduler, kube-controller-manager (the job,
// serviceaccount, garbagecollector, podgc and nodelifecycle controllers)
// and KWOK, which keeps one fake node Ready (its "fast" node stage and a
// node lease). KWOK's pod stages are not loaded: they would complete a
// Job's pod at once without running it. A Runner (runner.go) stands in for
// the kubelet instead and runs each pod bound to the fake node as a local
// child process.
//
// Everything listens on 127.0.0.1 on ports picked at start; nothing is
// reached outside the machine. It imports client-go only; nothing in
// Tailor's production code imports it.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Version is the Kubernetes release the cache folder holds.
const Version = "v1.37.2"

// Binaries the cache must hold.
var Binaries = []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok"}

// CacheDir is where scripts/kube.sh puts the cluster's binaries:
// $TAILOR_CACHE/kube-v1.37.2, or ~/.cache/tailor/kube-v1.37.2.
func CacheDir() string {
	base := os.Getenv("TAILOR_CACHE")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache", "tailor")
	}
	return filepath.Join(base, "kube-"+Version)
}

// Missing lists what of the cluster the cache folder lacks.
func Missing(cache string) []string {
	var out []string
	for _, b := range Binaries {
		if st, err := os.Stat(filepath.Join(cache, "bin", b)); err != nil || st.Mode()&0o111 == 0 {
			out = append(out, "bin/"+b)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "stages", "node-fast", "node-initialize.yaml")); err != nil {
		out = append(out, "stages/node-fast/node-initialize.yaml")
	}
	return out
}

// Options configure a cluster.
type Options struct {
	// Cache holds bin/ and stages/ (default CacheDir()).
	Cache string
	// Dir holds the cluster's data, certificates and logs (required).
	Dir string
	// Node names the fake node (default "kwok-node-0").
	Node string
}

// Cluster is a running control plane with one fake node.
type Cluster struct {
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string
	// Config and Client reach the API server as admin.
	Config *rest.Config
	Client kubernetes.Interface
	// Node is the fake node's name.
	Node string

	dir   string
	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts the control plane and the fake node and waits until the
// node is Ready. Stop it with Stop; on error, what started is stopped.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Cache == "" {
		o.Cache = CacheDir()
	}
	if o.Node == "" {
		o.Node = "kwok-node-0"
	}
	if m := Missing(o.Cache); len(m) > 0 {
		return nil, fmt.Errorf("kubetest: %s lacks %v: build it with scripts/kube.sh (most of an hour cold)", o.Cache, m)
	}
	c = &Cluster{dir: o.Dir, Node: o.Node}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	bin := func(b string) string { return filepath.Join(o.Cache, "bin", b) }
	for _, d := range []string{"etcd", "certs", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]

	// etcd
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := c.start("etcd", bin("etcd"), "--name=default", "--data-dir="+filepath.Join(o.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=default="+peerURL,
		"--listen-metrics-urls=http://127.0.0.1:"+strconv.Itoa(ports[3]), "--unsafe-no-fsync=true"); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, c, http.DefaultClient, etcdURL+"/health", 60*time.Second); err != nil {
		return nil, fmt.Errorf("kubetest: etcd: %w", err)
	}

	// kube-apiserver, with a static admin token and a service-account key.
	token, err := randomHex(24)
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(o.Dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",tailor-test-admin,tailor-test-admin,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	saKey := filepath.Join(o.Dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return nil, err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := c.start("kube-apiserver", bin("kube-apiserver"), "--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+filepath.Join(o.Dir, "certs"), "--token-auth-file="+tokens, "--authorization-mode=RBAC",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.96.0.0/24",
		"--endpoint-reconciler-type=none", "--allow-privileged=true"); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, server, token); err != nil {
		return nil, err
	}
	c.Config = &rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, 120*time.Second); err != nil {
		return nil, err
	}

	// Scheduler, controller manager, KWOK.
	if err := c.start("kube-scheduler", bin("kube-scheduler"), "--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0"); err != nil {
		return nil, err
	}
	if err := c.start("kube-controller-manager", bin("kube-controller-manager"), "--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--controllers=job,serviceaccount,garbagecollector,podgc,nodelifecycle", "--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", "--secure-port=0", "--service-account-private-key-file="+saKey); err != nil {
		return nil, err
	}
	if err := c.start("kwok", bin("kwok"), "--kubeconfig="+c.Kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--node-lease-duration-seconds=40",
		"--server-address=127.0.0.1:0", "--config="+filepath.Join(o.Cache, "stages", "node-fast", "node-initialize.yaml")); err != nil {
		return nil, err
	}
	if err := c.addNode(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// start launches one component, its output in logs/<name>.log.
func (c *Cluster) start(name, path string, args ...string) error {
	// #nosec G304 -- the log file of a component, in the cluster's own directory
	logf, err := os.Create(filepath.Join(c.dir, "logs", name+".log"))
	if err != nil {
		return err
	}
	// #nosec G204 -- a cluster binary from the test cache, arguments built here
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return nil
}

// exited names a component that has exited, with the tail of its log.
func (c *Cluster) exited() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("kubetest: %s exited (%v): %s", p.name, p.err, c.LogTail(p.name, 2000))
		default:
		}
	}
	return nil
}

// LogTail returns the last n bytes of a component's log.
func (c *Cluster) LogTail(name string, n int) string {
	// #nosec G304 -- the log file of a component, in the cluster's own directory
	b, _ := os.ReadFile(filepath.Join(c.dir, "logs", name+".log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop ends every component, last started first.
func (c *Cluster) Stop() {
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := c.exited(); err != nil {
			return err
		}
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubetest: kube-apiserver not ready after %s: %v: %s", limit, err, c.LogTail("kube-apiserver", 2000))
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// addNode creates the fake node and waits until KWOK has made it Ready
// and the default service account exists.
func (c *Cluster) addNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: c.Node,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": c.Node, "kubernetes.io/os": "linux"}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods: resource.MustParse("110")},
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kubetest: create node: %w", err)
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		if err := c.exited(); err != nil {
			return err
		}
		n, err := c.Client.CoreV1().Nodes().Get(ctx, c.Node, metav1.GetOptions{})
		ready := false
		if err == nil {
			for _, cond := range n.Status.Conditions {
				ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
			}
			for _, t := range n.Spec.Taints {
				ready = ready && t.Key != "node.kubernetes.io/not-ready"
			}
		}
		_, saErr := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if ready && saErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubetest: node %s not Ready (or no default service account) after 120 s: %v %v; kwok: %s", c.Node, err, saErr, c.LogTail("kwok", 2000))
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// CreateNamespace creates a namespace and waits for its default service
// account.
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	for i := 0; i < 240; i++ {
		if _, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("kubetest: namespace %s has no default service account after 60 s", name)
}

func waitHTTP(ctx context.Context, c *Cluster, hc *http.Client, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := c.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %s: %w", url, limit, err)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func writeRSAKey(path string) error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return os.WriteFile(path, b, 0o600)
}

func writeKubeconfig(path, server, token string) error {
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: admin
current-context: kubetest
`, server, token)
	return os.WriteFile(path, []byte(text), 0o600)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
