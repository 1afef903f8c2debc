package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// ProjectHeader names the project a request acts in; without it, the
// token's home project.
const ProjectHeader = "X-Tailor-Project"

// access is every route's action class: the one table that says who may
// call what (viewer: read; operator: operate; admin: administer; see
// internal/auth). Registering a route that is not here panics, so a new
// route cannot ship unguarded. The dashboard's static files (GET / and
// /ui/) are not API routes and need no token; the API calls they make do.
var access = map[string]auth.Class{
	"GET /v1/health": auth.Public,

	// Reading: lists, details, histories, logs, events, lineage, reports.
	"GET /v1/datasets":                                     auth.Read,
	"GET /v1/datasets/{name}/diff":                         auth.Read,
	"GET /v1/datasets/{name}/versions/{ref}":               auth.Read,
	"GET /v1/datasets/{name}/versions/{ref}/records":       auth.Read,
	"GET /v1/bases":                                        auth.Read,
	"GET /v1/bases/{name}/versions/{ref}":                  auth.Read,
	"GET /v1/bases/{name}/versions/{ref}/files/{file}":     auth.Read,
	"GET /v1/recipes":                                      auth.Read,
	"GET /v1/recipes/{name}/versions/{ref}":                auth.Read,
	"GET /v1/runs":                                         auth.Read,
	"GET /v1/runs/{id}":                                    auth.Read,
	"GET /v1/runs/{id}/logs":                               auth.Read,
	"GET /v1/events":                                       auth.Read,
	"GET /v1/lineage/{id}":                                 auth.Read,
	"GET /v1/registry/models":                              auth.Read,
	"GET /v1/registry/models/{name}/versions/{ref}":        auth.Read,
	"GET /v1/registry/models/{name}/history":               auth.Read,
	"GET /v1/registry/models/{name}/approvals":             auth.Read,
	"GET /v1/reports/{digest}":                             auth.Read,
	"GET /v1/monitors":                                     auth.Read,
	"GET /v1/monitors/{name}":                              auth.Read,
	"GET /v1/monitors/{name}/windows":                      auth.Read,
	"GET /v1/monitors/{name}/profile":                      auth.Read,
	"GET /v1/triggers":                                     auth.Read,
	"GET /v1/triggers/{name}":                              auth.Read,
	"GET /v1/triggers/{name}/history":                      auth.Read,
	"GET /v1/deployments":                                  auth.Read,
	"GET /v1/deployments/{name}":                           auth.Read,
	"GET /v1/deployments/{name}/history":                   auth.Read,
	"GET /v1/deployments/{name}/compare":                   auth.Read,
	"GET /v1/projects":                                     auth.Read,
	"GET /v1/whoami":                                       auth.Read,
	"GET /v1/usage":                                        auth.Read,
	"GET /v1/runs/{id}/usage":                              auth.Read,
	"GET /v1/audit/verify":                                 auth.Read,    // says whether the chain holds, and its head
	"GET /v1/registry/models/{name}/versions/{ref}/export": auth.Operate, // the model's bytes leave the server

	// Using served models (the OpenAI-compatible routes and /metrics).
	"POST /v1/chat/completions": auth.Read,
	"POST /v1/completions":      auth.Read,
	"POST /v1/classify":         auth.Read,
	"GET /v1/models":            auth.Read,
	"GET /v1/models/{id...}":    auth.Read,
	"GET /metrics":              auth.Read,

	// Operating: import, apply, run, cancel, serve, feedback, checks.
	"POST /v1/datasets/{name}/versions":    auth.Operate,
	"POST /v1/bases/{name}/versions":       auth.Operate,
	"POST /v1/recipes":                     auth.Operate,
	"POST /v1/runs":                        auth.Operate,
	"POST /v1/evals":                       auth.Operate,
	"POST /v1/runs/{id}/cancel":            auth.Operate,
	"POST /v1/monitors":                    auth.Operate,
	"POST /v1/triggers":                    auth.Operate,
	"POST /v1/feedback":                    auth.Operate,
	"POST /v1/feedback/{model}/accumulate": auth.Operate,
	"POST /v1/deployments":                 auth.Operate,
	"POST /v1/fsck":                        auth.Operate,

	// Administering: what serves (promote, override, approve, reject,
	// rollback), deleting (gc), who may act (tokens, projects).
	"POST /v1/registry/models/{name}/promote":  auth.Administer,
	"POST /v1/registry/models/{name}/rollback": auth.Administer,
	"POST /v1/registry/approvals/{id}":         auth.Administer,
	"POST /v1/deployments/{name}/promote":      auth.Administer,
	"POST /v1/deployments/{name}/rollback":     auth.Administer,
	"POST /v1/gc":                              auth.Administer,
	"POST /v1/tokens":                          auth.Administer,
	"GET /v1/tokens":                           auth.Administer,
	"POST /v1/projects":                        auth.Administer,
	// The audit log names who did what: admins read it.
	"GET /v1/audit":        auth.Administer,
	"GET /v1/audit/export": auth.Administer,
	// Moving data across regions, and spending more than a budget allowed.
	"POST /v1/copies":           auth.Administer,
	"POST /v1/runs/{id}/resume": auth.Administer,
	// Revoking needs admin in the token's own project, or to be its
	// principal: internal/auth decides, as the token's project is not the
	// request's.
	"POST /v1/tokens/{id}/revoke": auth.Read,

	// A remote training worker (a Kubernetes Job's pod), with the
	// run-scoped credential of its attempt; no user token is accepted.
	"GET /v1/runs/{id}/worker/spec":      auth.Worker,
	"POST /v1/runs/{id}/worker/messages": auth.Worker,
}

// guard puts h behind the route's access check: authenticate the bearer
// token (401), take one request from its rate limit (429), resolve the
// project (the token's, or X-Tailor-Project), authorize the route's class
// there (403), and carry the principal's name and the project in the
// request's context (store.WithActor, store.WithProject).
func (s *server) guard(pattern string, h http.Handler) http.Handler {
	class, ok := access[pattern]
	if !ok {
		panic(fmt.Sprintf("httpapi: route %q has no action class in access (access.go)", pattern))
	}
	if class == auth.Public {
		return h
	}
	if class == auth.Worker {
		return s.guardWorker(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, project, err := s.authorize(r, class, pattern)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := store.WithProject(store.WithActor(r.Context(), p.Name), project)
		h.ServeHTTP(w, r.WithContext(context.WithValue(ctx, principalKey{}, p)))
	})
}

func (s *server) authorize(r *http.Request, class auth.Class, pattern string) (auth.Principal, string, error) {
	if s.opts.Auth == nil {
		return auth.Principal{}, "", fmt.Errorf("%s: the server was built without an authority (httpapi.Options.Auth)", pattern)
	}
	p, err := s.opts.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return p, "", err
	}
	project := p.Project
	if h := strings.TrimSpace(r.Header.Get(ProjectHeader)); h != "" {
		project = h
	}
	if project == store.AllProjects {
		// The store's read-everything context is for the server's own
		// background work; no request acts in it, whatever its roles.
		return p, "", errs.Forbidden("%s: project %q is reserved; name one project in %s", pattern, project, ProjectHeader)
	}
	return p, project, auth.Authorize(p, project, class, pattern)
}

type principalKey struct{}

// principalFrom is the principal guard authenticated.
func principalFrom(ctx context.Context) auth.Principal {
	p, _ := ctx.Value(principalKey{}).(auth.Principal)
	return p
}

// Access returns the action class of a route pattern ("POST /v1/runs")
// and whether the table has it.
func Access(pattern string) (auth.Class, bool) {
	c, ok := access[pattern]
	return c, ok
}
