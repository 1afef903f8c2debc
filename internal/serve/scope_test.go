package serve_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
)

type scopeKey struct{}

func scopeOf(ctx context.Context) string { s, _ := ctx.Value(scopeKey{}).(string); return s }

func inScope(scope string) context.Context {
	return context.WithValue(context.Background(), scopeKey{}, scope)
}

// scopedResolver resolves in the registry of the request's scope, as the
// application's resolver resolves in the request's project.
type scopedResolver map[string]*serve.MemResolver

func (r scopedResolver) Resolve(ctx context.Context, ref serve.Ref) (serve.Target, error) {
	if m := r[scopeOf(ctx)]; m != nil {
		return m.Resolve(ctx, ref)
	}
	return serve.Target{}, errs.NotFound("scope %q has no models", scopeOf(ctx))
}

func (r scopedResolver) Models(ctx context.Context) ([]serve.ModelEntry, error) {
	if m := r[scopeOf(ctx)]; m != nil {
		return m.Models(ctx)
	}
	return nil, nil
}

// TestScopes: with Options.Scope, one model name resolves apart in each
// scope (the application's projects): what one scope cached, deployed or
// swapped is not another's; metrics carry a project label; observations
// carry the scope.
func TestScopes(t *testing.T) {
	f := sharedFixture(t)
	res := scopedResolver{"blue": serve.NewMemResolver(), "red": serve.NewMemResolver()}
	// blue's spam has one version; red's two, its champion v2.
	blue := fixCls[0]
	blue.Model = "spam"
	res["blue"].AddVersion(blue)
	only := fixShort
	only.Model = "blue-only"
	res["blue"].AddVersion(only)
	for _, tg := range fixCls[1:3] {
		tg.Model = "spam"
		res["red"].AddVersion(tg)
	}
	must(t, res["red"].SetAlias("spam", "champion", 2))
	// red's "same" is blue's spam@v1 under another name: one loaded
	// content, answered under the name each request resolved.
	same := fixCls[0]
	same.Model = "same"
	res["red"].AddVersion(same)
	eng, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
	must(t, err)
	rec := &recorder{}
	srv, err := serve.New(serve.Options{Engine: eng, Resolver: res, Observer: rec, Scope: scopeOf})
	must(t, err)
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, r.Header.Get("X-Test-Scope"))))
	}))
	t.Cleanup(func() { hs.Close(); srv.Close() })
	w := &world{f: f, srv: srv, http: hs}

	// blue first: a cache keyed by the name alone would hand red blue's.
	for _, c := range []struct{ scope, model, version string }{
		{"blue", "spam", "spam@v1"}, {"red", "spam", "spam@v2"}, {"blue", "spam", "spam@v1"},
		{"blue", "blue-only", "blue-only@v1"}, {"red", "blue-only", ""}, {"red", "same", "same@v1"},
	} {
		code, version, _, body := w.classify(t, c.model, "win money now", "X-Test-Scope", c.scope)
		if c.version == "" {
			if code != http.StatusNotFound {
				t.Errorf("%s classify %s: %d %s, want 404", c.scope, c.model, code, body)
			}
			continue
		}
		if code != 200 || version != c.version {
			t.Errorf("%s classify %s: %d %q %s, want %s", c.scope, c.model, code, version, body, c.version)
		}
	}

	// A swap announced in red moves red's spam only.
	must(t, res["red"].SetAlias("spam", "champion", 1))
	must(t, srv.AliasMoved(inScope("red"), "spam", "champion"))
	if _, v, _, _ := w.classify(t, "spam", "x", "X-Test-Scope", "red"); v != "spam@v1" {
		t.Errorf("red's spam after its champion moved: %q, want spam@v1", v)
	}
	if _, v, _, _ := w.classify(t, "spam", "x", "X-Test-Scope", "blue"); v != "spam@v1" {
		t.Errorf("blue's spam after red's move: %q", v)
	}

	// A deployment belongs to its scope.
	must(t, srv.Deploy(inScope("blue"), serve.Deployment{Model: "spam", Shadow: "blue-only@v1"}))
	if n, m := len(srv.Deployments(inScope("blue"))), len(srv.Deployments(inScope("red"))); n != 1 || m != 0 {
		t.Errorf("deployments: blue %d, red %d; want 1 and 0", n, m)
	}
	srv.Undeploy(inScope("red"), "spam")
	if n := len(srv.Deployments(inScope("blue"))); n != 1 {
		t.Errorf("red's undeploy removed blue's deployment")
	}

	for series, want := range map[string]string{
		`tailor_serve_requests_total{endpoint="classify",project="blue",model="spam",status="200"}`:    "3",
		`tailor_serve_requests_total{endpoint="classify",project="red",model="spam",status="200"}`:     "2",
		`tailor_serve_requests_total{endpoint="classify",project="red",model="unknown",status="404"}`:  "1",
		`tailor_serve_request_duration_seconds_count{project="blue",model="blue-only",status="200"}`:   "1",
		`tailor_serve_requests_total{endpoint="classify",model="spam",status="200"}`:                   "",
		`tailor_serve_requests_total{endpoint="classify",project="blue",model="unknown",status="404"}`: "",
	} {
		if got := w.metricValue(t, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	scopes := map[string]int{}
	for _, o := range rec.obs {
		if o.Variant != serve.VariantShadow {
			scopes[o.Scope+"/"+o.Model]++
		}
	}
	if scopes["blue/spam"] != 3 || scopes["red/spam"] != 2 || scopes["blue/blue-only"] != 1 || scopes["red/same"] != 1 || len(scopes) != 4 {
		t.Errorf("observations by scope: %v", scopes)
	}
}
