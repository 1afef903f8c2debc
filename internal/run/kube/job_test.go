package kube

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
)

func normalized(t *testing.T, file string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "recipes", file))
	if err != nil {
		t.Fatal(err)
	}
	r, err := recipe.Parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestJobFor pins the Job and Secret of an attempt: name and labels per
// attempt, the command, the credential only through the Secret, the
// recipe's resources as requests and limits, no retries by Kubernetes.
func TestJobFor(t *testing.T) {
	opts := Options{Namespace: "ml", Image: "registry.example/tailor:1", Command: []string{"tailor", "worker", "train"},
		API: "http://tailor.ml.svc:7070", EnvSecret: "tailor-s3"}
	const token = "tlw_0123456789abcdef_" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tests := []struct {
		name     string
		recipe   string
		runID    string
		attempt  int
		job      string
		cpu, mem string // "" none
		envFrom  string
	}{
		{"no resources", "plain.yaml", "run-0a1b2c3d4e5f", 1, "tailor-run-0a1b2c3d4e5f-a1", "", "", "tailor-s3"},
		{"cpu and memory", "sized.yaml", "run-0a1b2c3d4e5f", 2, "tailor-run-0a1b2c3d4e5f-a2", "1500m", "2Gi", "tailor-s3"},
		{"cpu only", "cpu-only.yaml", "run-ffffffffffff", 3, "tailor-run-ffffffffffff-a3", "250m", "", ""},
		{"odd run id", "plain.yaml", "Run_X/1", 1, "tailor-run-x-1-a1", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			o.EnvSecret = tc.envFrom
			spec := run.Spec{RunID: tc.runID, Attempt: tc.attempt, Recipe: normalized(t, tc.recipe)}
			job, secret, err := jobFor(o, spec, token)
			if err != nil {
				t.Fatal(err)
			}
			if job.Name != tc.job || secret.Name != tc.job || job.Namespace != "ml" || secret.Namespace != "ml" {
				t.Errorf("names %s/%s and %s/%s, want ml/%s", job.Namespace, job.Name, secret.Namespace, secret.Name, tc.job)
			}
			for what, l := range map[string]map[string]string{"job": job.Labels, "pod": job.Spec.Template.Labels, "secret": secret.Labels} {
				if l[LabelRun] != labelValue(tc.runID) || l[LabelAttempt] != strconv.Itoa(tc.attempt) || l[LabelManagedBy] != "tailor" {
					t.Errorf("%s labels %v", what, l)
				}
			}
			if *job.Spec.BackoffLimit != 0 || job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || *job.Spec.Template.Spec.AutomountServiceAccountToken {
				t.Errorf("job spec: backoffLimit %d restart %s automount %v", *job.Spec.BackoffLimit, job.Spec.Template.Spec.RestartPolicy,
					*job.Spec.Template.Spec.AutomountServiceAccountToken)
			}
			c := job.Spec.Template.Spec.Containers[0]
			wantCmd := []string{"tailor", "worker", "train", "--api", "http://tailor.ml.svc:7070", "--run", tc.runID}
			if c.Image != o.Image || !slices.Equal(c.Command, wantCmd) || len(c.Args) != 0 {
				t.Errorf("container %s %q %q", c.Image, c.Command, c.Args)
			}
			// The credential is in the Secret and nowhere in the Job.
			if string(secret.Data[TokenKey]) != token {
				t.Errorf("secret data %q", secret.Data)
			}
			if len(c.Env) != 1 || c.Env[0].Name != "TAILOR_TOKEN" || c.Env[0].Value != "" || c.Env[0].ValueFrom.SecretKeyRef.Name != tc.job ||
				c.Env[0].ValueFrom.SecretKeyRef.Key != TokenKey {
				t.Errorf("env %+v", c.Env)
			}
			if text := job.String(); strings.Contains(text, token[4:20]) {
				t.Error("the Job spec holds the credential")
			}
			if got := len(c.EnvFrom) == 1 && c.EnvFrom[0].SecretRef.Name == tc.envFrom; got != (tc.envFrom != "") {
				t.Errorf("envFrom %+v, want secret %q", c.EnvFrom, tc.envFrom)
			}
			for name, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: tc.cpu, corev1.ResourceMemory: tc.mem} {
				req, hasReq := c.Resources.Requests[name]
				lim, hasLim := c.Resources.Limits[name]
				if want == "" {
					if hasReq || hasLim {
						t.Errorf("%s: request %v limit %v, want none", name, req.String(), lim.String())
					}
					continue
				}
				if req.String() != want || lim.String() != want {
					t.Errorf("%s: request %s limit %s, want %s", name, req.String(), lim.String(), want)
				}
			}
		})
	}
}

func TestJobName(t *testing.T) {
	long := "run-" + strings.Repeat("a", 80)
	if n := JobName(long, 12); len(n) > 63 || !strings.HasSuffix(n, "-a12") {
		t.Fatalf("JobName = %q (%d)", n, len(n))
	}
	if JobName("run-1", 1) == JobName("run-1", 2) {
		t.Fatal("two attempts share a Job name")
	}
}
