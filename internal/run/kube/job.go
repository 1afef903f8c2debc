package kube

import (
	"fmt"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
)

// Labels on every Job, pod and Secret this executor makes.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelRun       = "tailor.dev/run"
	LabelAttempt   = "tailor.dev/attempt"
	managedBy      = "tailor"
	// TokenKey is the key of the worker credential in the attempt's Secret.
	TokenKey = "token"
	// containerName names the worker's container.
	containerName = "worker"
)

// JobName is the name of the Job (and of its Secret) of one attempt of a
// run: "tailor-<run>-a<attempt>", a DNS label. Each attempt gets a new one.
func JobName(runID string, attempt int) string {
	var b strings.Builder
	for _, c := range strings.ToLower(runID) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-")
	if len(id) > 45 {
		id = id[:45]
	}
	return fmt.Sprintf("tailor-%s-a%d", id, attempt)
}

// jobLabels name the run and the attempt. A run id that is not a valid label
// value is cut to one (run ids are "run-<hex>", which are).
func jobLabels(spec run.Spec) map[string]string {
	return map[string]string{LabelManagedBy: managedBy, LabelRun: labelValue(spec.RunID), LabelAttempt: strconv.Itoa(spec.Attempt)}
}

func labelValue(s string) string {
	var b strings.Builder
	for _, c := range s {
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' {
			b.WriteRune(c)
		}
	}
	v := b.String()
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.Trim(v, "-_.")
}

// jobFor builds the Job and the Secret of one attempt: the Job runs
// `<command> --api <API> --run <id>` with the worker credential in
// TAILOR_TOKEN from the Secret (never in the Job spec), the recipe's
// resources as requests and equal limits, backoffLimit 0 (the server, not
// Kubernetes, decides whether to try again), and no service account token
// (the worker talks to Tailor's API, not to Kubernetes).
func jobFor(o Options, spec run.Spec, token string) (*batchv1.Job, *corev1.Secret, error) {
	res, err := resourcesOf(spec.Recipe)
	if err != nil {
		return nil, nil, err
	}
	name := JobName(spec.RunID, spec.Attempt)
	meta := metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: jobLabels(spec)}
	secret := &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{TokenKey: []byte(token)}}
	secret.Labels = jobLabels(spec)
	args := append(append([]string{}, o.Command...), "--api", o.API, "--run", spec.RunID)
	c := corev1.Container{
		Name:            containerName,
		Image:           o.Image,
		ImagePullPolicy: o.PullPolicy,
		Command:         args,
		Env: []corev1.EnvVar{{Name: "TAILOR_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: TokenKey}}}},
		Resources: res,
	}
	if o.EnvSecret != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.EnvSecret}}}}
	}
	job := &batchv1.Job{
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr(int32(0)),
			TTLSecondsAfterFinished: ptr(int32(3600)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: jobLabels(spec)},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr(false),
					EnableServiceLinks:           ptr(false),
					Containers:                   []corev1.Container{c},
				},
			},
		},
	}
	job.Labels = jobLabels(spec)
	return job, secret, nil
}

// resourcesOf reads the recipe's resources block: requests, and limits
// equal to them.
func resourcesOf(normalized []byte) (corev1.ResourceRequirements, error) {
	r, err := recipe.Parse("recipe", normalized)
	if err != nil {
		return corev1.ResourceRequirements{}, fmt.Errorf("kubernetes executor: %w", err)
	}
	var out corev1.ResourceRequirements
	if x := r.Resources; x != nil {
		rl := corev1.ResourceList{}
		if x.MilliCPU > 0 {
			rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(x.MilliCPU, resource.DecimalSI)
		}
		if x.MemoryBytes > 0 {
			rl[corev1.ResourceMemory] = *resource.NewQuantity(x.MemoryBytes, resource.BinarySI)
		}
		out.Requests, out.Limits = rl, rl.DeepCopy()
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
