package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// RunnerOptions configure the kubelet stand-in.
type RunnerOptions struct {
	// Commands maps a container's command name to a local executable
	// ("tailor" → the binary the test built). A command not here fails
	// its pod with exit status 127.
	Commands map[string]string
	// Env is every child's base environment (PATH, HOME, TMPDIR, …); the
	// pod's env, with its Secret references resolved, follows it.
	Env []string
	// Dir receives each pod's output as <namespace>_<pod>.log.
	Dir string
}

// Runner stands in for the kubelet of the fake node: it runs the single
// container of each pod bound to the node as a local child process (its
// command, args and env, Secret-backed variables resolved), reports
// Running and then Succeeded or Failed with the exit status in the pod's
// status, and when a pod is deleted it stops the child (SIGTERM, then
// SIGKILL after 5 s) and removes the pod, as a kubelet would.
type Runner struct {
	c      *Cluster
	o      RunnerOptions
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[types.UID]*podRun
	started []string // namespace/name of every pod started, in order
}

type podRun struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Run starts the runner; Stop ends it and its children.
func (c *Cluster) Run(o RunnerOptions) *Runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{c: c, o: o, cancel: cancel, running: map[types.UID]*podRun{}}
	r.wg.Add(1)
	go r.loop(ctx)
	return r
}

// Stop ends the runner and kills the children still running.
func (r *Runner) Stop() {
	r.cancel()
	r.mu.Lock()
	for _, p := range r.running {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Started lists the pods the runner started, "namespace/name", in order.
func (r *Runner) Started() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.started...)
}

func (r *Runner) loop(ctx context.Context) {
	defer r.wg.Done()
	pods := r.c.Client.CoreV1().Pods(metav1.NamespaceAll)
	sel := fields.OneTermEqualSelector("spec.nodeName", r.c.Node).String()
	for ctx.Err() == nil {
		list, err := pods.List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for i := range list.Items {
			r.handle(ctx, &list.Items[i], false)
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion})
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			if p, ok := ev.Object.(*corev1.Pod); ok {
				r.handle(ctx, p, ev.Type == watch.Deleted)
			}
		}
		w.Stop()
	}
}

func (r *Runner) handle(ctx context.Context, p *corev1.Pod, deleted bool) {
	r.mu.Lock()
	run := r.running[p.UID]
	r.mu.Unlock()
	switch {
	case deleted || p.DeletionTimestamp != nil:
		if run != nil {
			r.stop(run)
		}
		if !deleted {
			r.forceDelete(ctx, p)
		}
	case run == nil && p.Status.Phase == corev1.PodPending && p.Status.StartTime == nil:
		r.start(ctx, p)
	}
}

// start runs the pod's container and reports its status.
func (r *Runner) start(ctx context.Context, p *corev1.Pod) {
	c := p.Spec.Containers[0]
	argv := append(append([]string{}, c.Command...), c.Args...)
	started := metav1.Now()
	env, err := r.env(ctx, p.Namespace, c)
	exe, known := "", false
	if len(argv) > 0 {
		exe, known = r.o.Commands[argv[0]]
	}
	if err != nil || !known {
		if err == nil {
			err = fmt.Errorf("command %q is not one the runner knows", argv)
		}
		r.report(ctx, p, started, 127, err.Error())
		return
	}
	logf, err := os.Create(filepath.Join(r.o.Dir, p.Namespace+"_"+p.Name+".log"))
	if err != nil {
		r.report(ctx, p, started, 127, err.Error())
		return
	}
	// #nosec G204 -- a test's pod command, mapped to a binary the test built
	cmd := exec.Command(exe, argv[1:]...)
	cmd.Env = append(append([]string{}, r.o.Env...), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		r.report(ctx, p, started, 127, err.Error())
		return
	}
	run := &podRun{cmd: cmd, done: make(chan struct{})}
	r.mu.Lock()
	r.running[p.UID] = run
	r.started = append(r.started, p.Namespace+"/"+p.Name)
	r.mu.Unlock()
	r.setStatus(ctx, p, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.StartTime = &started
		s.HostIP = "127.0.0.1"
		s.Conditions = conditions(s.Conditions, corev1.ConditionTrue, started)
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}
	})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := cmd.Wait()
		_ = logf.Close()
		close(run.done)
		r.mu.Lock()
		delete(r.running, p.UID)
		r.mu.Unlock()
		code := 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
			if code < 0 {
				code = 137 // killed by a signal
			}
		} else if err != nil {
			code = 127
		}
		r.report(ctx, p, started, code, "")
	}()
}

// report sets a pod's terminal status from its exit status.
func (r *Runner) report(ctx context.Context, p *corev1.Pod, started metav1.Time, code int, msg string) {
	now := metav1.Now()
	r.setStatus(ctx, p, func(s *corev1.PodStatus) {
		reason := "Completed"
		s.Phase = corev1.PodSucceeded
		if code != 0 {
			s.Phase, reason = corev1.PodFailed, "Error"
		}
		if s.StartTime == nil {
			s.StartTime = &started
		}
		s.Conditions = conditions(s.Conditions, corev1.ConditionFalse, now)
		c := p.Spec.Containers[0]
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptr(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(min(max(code, 0), 255)), Reason: reason, Message: msg,
				StartedAt: started, FinishedAt: now}}}}
	})
}

// setStatus updates a pod's status, reading it again on a conflict; a pod
// that is gone or being deleted is left alone.
func (r *Runner) setStatus(ctx context.Context, p *corev1.Pod, edit func(*corev1.PodStatus)) {
	pods := r.c.Client.CoreV1().Pods(p.Namespace)
	for i := 0; i < 20; i++ {
		cur, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || cur.UID != p.UID || cur.DeletionTimestamp != nil {
			return
		}
		edit(&cur.Status)
		if _, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err == nil || !apierrors.IsConflict(err) {
			return
		}
	}
}

func conditions(old []corev1.PodCondition, ready corev1.ConditionStatus, at metav1.Time) []corev1.PodCondition {
	out := []corev1.PodCondition{}
	for _, c := range old {
		if c.Type == corev1.PodScheduled {
			out = append(out, c)
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		st := ready
		if t == corev1.PodInitialized {
			st = corev1.ConditionTrue
		}
		out = append(out, corev1.PodCondition{Type: t, Status: st, LastTransitionTime: at})
	}
	return out
}

// env resolves a container's environment, waiting up to 30 s for a
// Secret it names (it may be created just before the Job).
func (r *Runner) env(ctx context.Context, ns string, c corev1.Container) ([]string, error) {
	secret := func(name string) (*corev1.Secret, error) {
		var err error
		for i := 0; i < 120; i++ {
			var s *corev1.Secret
			if s, err = r.c.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				return s, nil
			}
			sleep(ctx, 250*time.Millisecond)
		}
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	var out []string
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil {
			continue
		}
		s, err := secret(ef.SecretRef.Name)
		if err != nil {
			return nil, err
		}
		for k, v := range s.Data {
			out = append(out, ef.Prefix+k+"="+string(v))
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out = append(out, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			s, err := secret(e.ValueFrom.SecretKeyRef.Name)
			if err != nil {
				return nil, err
			}
			v, ok := s.Data[e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				return nil, fmt.Errorf("secret %s/%s has no key %s", ns, s.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			out = append(out, e.Name+"="+string(v))
		default:
			return nil, fmt.Errorf("env %s: only values and secret keys are supported", e.Name)
		}
	}
	return out, nil
}

// stop ends a pod's child: SIGTERM, then SIGKILL after 5 s.
func (r *Runner) stop(p *podRun) {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// forceDelete removes a pod whose deletion was asked, once its child is
// gone, as the kubelet does.
func (r *Runner) forceDelete(ctx context.Context, p *corev1.Pod) {
	err := r.c.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0)),
		Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return
	}
}

func ptr[T any](v T) *T { return &v }
