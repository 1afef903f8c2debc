// Package kube is the run executor for Kubernetes: each attempt of a run
// is a batch/v1 Job whose pod runs `tailor worker train --api URL --run
// ID`. The worker fetches its spec from the server and posts its messages
// back through the API (run.Remote, the /v1/runs/{id}/worker/… routes), with
// a run-scoped credential the server mints for the attempt and hands over
// in a Secret owned by the Job. Wait watches the Job: Complete is success;
// Failed after the worker reported its own error is that error; a Job or
// pod that vanished (deleted by someone else, evicted, its node lost)
// without a report is run.ErrWorkerLost, which the scheduler re-queues so
// that the next attempt resumes from the last checkpoint in a new Job. A
// pod the scheduler cannot place for Options.PendingTimeout fails the
// attempt with the scheduler's message (not re-queued). Kill (cancel) deletes the Job and its pods. A finished attempt's Job is
// deleted too, and a new attempt first deletes every Job an earlier server
// process left for its run, so nothing leaks.
//
// This package imports internal/run, internal/recipe (the resources
// block) and client-go; the application wires it (internal/cli server
// --executor kubernetes). Package kubetest starts a real control plane
// with a KWOK node for its tests.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/run"
)

// Options configure the executor. Zero values take the documented
// defaults.
type Options struct {
	// Client talks to the cluster (required; see Client).
	Client kubernetes.Interface
	// Namespace holds the Jobs (default "default").
	Namespace string
	// Image is the container image with the tailor binary (required).
	Image string
	// PullPolicy is the image's pull policy (default: Kubernetes').
	PullPolicy corev1.PullPolicy
	// Command starts the worker in the image (default ["tailor", "worker",
	// "train"]); "--api URL --run ID" follow.
	Command []string
	// API is the server's URL as the pods reach it (required).
	API string
	// EnvSecret, when set, names a Secret of the namespace whose keys
	// become the worker's environment: the S3 endpoint and credentials of
	// an s3:// artifact store (docs/scale-out.md).
	EnvSecret string
	// Remote opens each attempt and mints its worker credential (required).
	Remote *run.Remote
	Logger *slog.Logger
	// Retry is how long to wait before watching a Job again after the
	// API server failed to answer (default 1 s).
	Retry time.Duration
	// PendingTimeout is how long an attempt's pod may stay unschedulable
	// (the scheduler's PodScheduled=False, reason Unschedulable: no node
	// has the resources the recipe asks for, a taint, a quota) before the
	// attempt fails with the scheduler's message and its Job is deleted
	// (default 10 minutes; negative: wait for ever). The run then fails;
	// it is not re-queued, since a new attempt would ask for the same.
	PendingTimeout time.Duration
}

// Executor runs each attempt of a run as a Kubernetes Job.
type Executor struct{ opts Options }

var _ run.Executor = (*Executor)(nil)

// Client returns a client for the cluster of a kubeconfig file; an empty
// path means the pod's in-cluster configuration.
func Client(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, errs.Invalid("kubernetes executor: cluster configuration %q: %v", kubeconfig, err)
	}
	return kubernetes.NewForConfig(cfg)
}

// New returns an executor.
func New(o Options) (*Executor, error) {
	switch {
	case o.Client == nil:
		return nil, errs.Invalid("kubernetes executor: no cluster client (--kube-config)")
	case o.Image == "":
		return nil, errs.Invalid("kubernetes executor: no image: pass --kube-image, an image holding the tailor binary")
	case o.API == "":
		return nil, errs.Invalid("kubernetes executor: no worker API URL: pass --worker-api, the server's URL as the cluster's pods reach it")
	case o.Remote == nil:
		return nil, errs.Invalid("kubernetes executor: no remote-worker hub")
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if len(o.Command) == 0 {
		o.Command = []string{"tailor", "worker", "train"}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.PendingTimeout == 0 {
		o.PendingTimeout = 10 * time.Minute
	}
	return &Executor{opts: o}, nil
}

// Start creates the attempt's Secret and Job and returns at once; the
// worker's messages arrive through the API.
func (e *Executor) Start(ctx context.Context, spec run.Spec) (run.Process, error) {
	if spec.Attempt <= 0 {
		return nil, fmt.Errorf("kubernetes executor: run %s has no attempt number", spec.RunID)
	}
	if err := e.deleteJobs(ctx, spec.RunID); err != nil {
		return nil, err
	}
	att, token, err := e.opts.Remote.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("kubernetes executor: mint the worker credential: %w", err)
	}
	job, secret, err := jobFor(e.opts, spec, token)
	if err != nil {
		att.Close()
		return nil, err
	}
	ns := e.opts.Namespace
	secrets, jobs := e.opts.Client.CoreV1().Secrets(ns), e.opts.Client.BatchV1().Jobs(ns)
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		att.Close()
		return nil, fmt.Errorf("kubernetes executor: create Secret %s/%s: %w", ns, secret.Name, err)
	}
	created, err := jobs.Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		att.Close()
		e.deleteSecret(secret.Name)
		return nil, fmt.Errorf("kubernetes executor: create Job %s/%s: %w", ns, job.Name, err)
	}
	// The Secret belongs to the Job: deleting the Job deletes it.
	secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: created.Name, UID: created.UID,
		BlockOwnerDeletion: ptr(true)}}
	if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		e.opts.Logger.Warn("kubernetes executor: could not make the Job own its Secret; it is deleted with the attempt", "job", job.Name, "err", err)
	}
	e.opts.Logger.Info("kubernetes Job created", "run", spec.RunID, "attempt", spec.Attempt, "job", ns+"/"+job.Name)
	p := &process{e: e, att: att, name: job.Name, secret: secret.Name, done: make(chan struct{})}
	go p.watch(ctx)
	if e.opts.PendingTimeout > 0 {
		go p.schedulable(ctx)
	}
	return p, nil
}

// deleteJobs deletes every Job of run (left by an earlier attempt or an
// earlier server process), with its pods.
func (e *Executor) deleteJobs(ctx context.Context, runID string) error {
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelRun: labelValue(runID)}).String()
	err := e.opts.Client.BatchV1().Jobs(e.opts.Namespace).DeleteCollection(ctx,
		metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}, metav1.ListOptions{LabelSelector: sel})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("kubernetes executor: delete earlier Jobs of run %s: %w", runID, err)
	}
	return nil
}

func (e *Executor) deleteSecret(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.opts.Client.CoreV1().Secrets(e.opts.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.opts.Logger.Warn("kubernetes executor: delete Secret", "secret", name, "err", err)
	}
}

// process is one attempt's Job.
type process struct {
	e      *Executor
	att    *run.RemoteAttempt
	name   string
	secret string
	done   chan struct{}
	err    error
	once   sync.Once

	mu            sync.Mutex
	killed        bool
	unschedulable string // why the pod was never scheduled, once PendingTimeout passed
}

func (p *process) Messages() <-chan run.Message { return p.att.Messages() }

// Wait waits for the Job to finish, then deletes it (and its pods and
// Secret) and returns its outcome.
func (p *process) Wait() error {
	<-p.done
	p.delete()
	return p.err
}

// Kill deletes the Job with its pods; Wait then returns.
func (p *process) Kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.delete()
}

func (p *process) delete() {
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := p.e.opts.Client.BatchV1().Jobs(p.e.opts.Namespace).Delete(ctx, p.name,
			metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)})
		if err != nil && !apierrors.IsNotFound(err) {
			p.e.opts.Logger.Warn("kubernetes executor: delete Job", "job", p.name, "err", err)
		}
		p.e.deleteSecret(p.secret)
	})
}

// watch follows the Job until it finishes or vanishes, records the
// outcome and ends the attempt.
func (p *process) watch(ctx context.Context) {
	p.err = p.follow(ctx)
	p.att.Close()
	close(p.done)
}

func (p *process) follow(ctx context.Context) error {
	jobs := p.e.opts.Client.BatchV1().Jobs(p.e.opts.Namespace)
	for {
		j, err := jobs.Get(ctx, p.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return p.gone()
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.e.opts.Logger.Warn("kubernetes executor: read Job", "job", p.name, "err", err)
			if !sleep(ctx, p.e.opts.Retry) {
				return ctx.Err()
			}
			continue
		}
		if done, err := p.outcome(j); done {
			return err
		}
		w, err := jobs.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", p.name).String(),
			ResourceVersion: j.ResourceVersion})
		if err != nil {
			if !sleep(ctx, p.e.opts.Retry) {
				return ctx.Err()
			}
			continue
		}
		done, err := p.events(w)
		w.Stop()
		if done {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// events reads one watch until the Job finishes or the watch ends.
func (p *process) events(w watch.Interface) (bool, error) {
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Deleted:
			return true, p.gone()
		case watch.Added, watch.Modified:
			if j, ok := ev.Object.(*batchv1.Job); ok {
				if done, err := p.outcome(j); done {
					return true, err
				}
			}
		case watch.Error:
			return false, nil
		}
	}
	return false, nil
}

// outcome reads a finished Job's conditions.
func (p *process) outcome(j *batchv1.Job) (bool, error) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, nil
		case batchv1.JobFailed:
			if p.wasKilled() {
				return true, errors.New("canceled: Job deleted")
			}
			if f := p.att.Failure(); f != "" {
				return true, fmt.Errorf("worker in Job %s failed: %s", p.name, f)
			}
			return true, fmt.Errorf("job %s failed (%s: %s) without a report from its worker: %w", p.name, c.Reason, c.Message, run.ErrWorkerLost)
		}
	}
	return false, nil
}

// gone is the outcome of a Job that vanished.
func (p *process) gone() error {
	if why := p.unschedulableFor(); why != "" {
		return errors.New(why)
	}
	if p.wasKilled() {
		return errors.New("canceled: Job deleted")
	}
	if f := p.att.Failure(); f != "" {
		return fmt.Errorf("worker in Job %s failed: %s", p.name, f)
	}
	return fmt.Errorf("job %s was deleted by someone else: %w", p.name, run.ErrWorkerLost)
}

func (p *process) unschedulableFor() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unschedulable
}

// schedulable watches the attempt's pods until one is scheduled or the
// attempt ends. A pod the scheduler has reported Unschedulable for
// PendingTimeout (counted on this server's clock from when it first saw
// the report, so the cluster's clock does not matter) fails the attempt:
// the reason is recorded for gone, and the Job is deleted.
func (p *process) schedulable(ctx context.Context) {
	poll := min(5*time.Second, max(p.e.opts.PendingTimeout/4, 100*time.Millisecond))
	pods := p.e.opts.Client.CoreV1().Pods(p.e.opts.Namespace)
	sel := labels.SelectorFromSet(labels.Set{"job-name": p.name}).String()
	since := map[string]time.Time{} // pod → when first seen unschedulable
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			continue // the Job's watch reports what matters; try again
		}
		for _, pod := range list.Items {
			for _, c := range pod.Status.Conditions {
				if c.Type != corev1.PodScheduled {
					continue
				}
				if c.Status == corev1.ConditionTrue {
					return // placed on a node: from here on the Job's outcome tells
				}
				if c.Reason != corev1.PodReasonUnschedulable {
					continue
				}
				first, seen := since[pod.Name]
				if !seen {
					since[pod.Name] = time.Now()
					continue
				}
				if time.Since(first) < p.e.opts.PendingTimeout {
					continue
				}
				why := fmt.Sprintf("job %s: its pod %s could not be scheduled for %s: %s", p.name, pod.Name,
					p.e.opts.PendingTimeout, c.Message)
				p.e.opts.Logger.Warn("kubernetes executor: pod unschedulable; failing the attempt", "job", p.name, "pod", pod.Name, "message", c.Message)
				p.mu.Lock()
				p.unschedulable = why
				p.mu.Unlock()
				p.delete()
				return
			}
		}
	}
}

func (p *process) wasKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
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
