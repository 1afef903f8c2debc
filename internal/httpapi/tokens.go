package httpapi

import (
	"net/http"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// accessRoutes serve tokens, projects and whoami, through Options.Auth.
func (s *server) accessRoutes(mux *router) {
	mux.Handle("POST /v1/tokens", s.handle(func(r *http.Request) (any, error) {
		var req api.TokenCreate
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		project := store.ProjectFrom(r.Context())
		nt := auth.NewToken{Principal: req.Principal, Project: project, Roles: map[string]auth.Role{}, Note: req.Note}
		// role is the role in the request's project; roles may name it
		// too, but not differently.
		if r, ok := req.Roles[project]; ok {
			if req.Role != "" && req.Role != r {
				return nil, errs.Invalid("create token: role %q and roles[%q] %q differ: give the role in project %q once", req.Role, project, r, project)
			}
			req.Role = r
		}
		if req.Role == "" {
			req.Role = "viewer"
		}
		for proj, name := range mergeRoles(project, req.Role, req.Roles) {
			role, err := auth.ParseRole(name)
			if err != nil {
				return nil, errs.Invalid("create token: project %q: %v", proj, err)
			}
			nt.Roles[proj] = role
		}
		if req.ExpiresIn != "" {
			d, err := time.ParseDuration(req.ExpiresIn)
			if err != nil || d <= 0 {
				return nil, errs.Invalid("create token: expires_in %q: want a positive Go duration such as 720h", req.ExpiresIn)
			}
			nt.TTL = d
		}
		c, err := s.opts.Auth.CreateToken(r.Context(), principalFrom(r.Context()), nt)
		if err != nil {
			return nil, err
		}
		return api.TokenCreated{Secret: c.Secret.String(), Token: toAPIToken(c.Token, time.Now())}, nil
	}))
	mux.Handle("GET /v1/tokens", s.handle(func(r *http.Request) (any, error) {
		ts, err := s.opts.Auth.Tokens(r.Context(), store.ProjectFrom(r.Context()))
		if err != nil {
			return nil, err
		}
		out := make([]api.Token, len(ts))
		for i, t := range ts {
			out[i] = toAPIToken(t, time.Now())
		}
		return out, nil
	}))
	mux.Handle("POST /v1/tokens/{id}/revoke", s.handle(func(r *http.Request) (any, error) {
		// The body, {"reason": "…"}, is optional: clients from before it
		// send none.
		var req api.TokenRevoke
		if err := decodeOptionalBody(r, &req); err != nil {
			return nil, err
		}
		t, err := s.opts.Auth.RevokeToken(r.Context(), principalFrom(r.Context()), r.PathValue("id"), req.Reason)
		if err != nil {
			return nil, err
		}
		return toAPIToken(t, time.Now()), nil
	}))
	mux.Handle("POST /v1/projects", s.handle(func(r *http.Request) (any, error) {
		var req api.ProjectCreate
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		p, c, err := s.opts.Auth.CreateProject(r.Context(), principalFrom(r.Context()), req.Name)
		if err != nil {
			return nil, err
		}
		return api.ProjectCreated{Project: api.Project{Name: p.Name, CreatedBy: p.CreatedBy, CreatedAt: p.CreatedAt, Role: auth.Admin.String()},
			Secret: c.Secret.String(), Token: toAPIToken(c.Token, time.Now())}, nil
	}))
	mux.Handle("GET /v1/projects", s.handle(func(r *http.Request) (any, error) {
		// Only the projects the caller holds a role in: another tenant's
		// project names are theirs.
		p := principalFrom(r.Context())
		ps, err := s.opts.Auth.Projects(r.Context())
		if err != nil {
			return nil, err
		}
		out := []api.Project{}
		for _, pr := range ps {
			if role := p.Roles[pr.Name]; role != auth.NoRole {
				out = append(out, api.Project{Name: pr.Name, CreatedBy: pr.CreatedBy, CreatedAt: pr.CreatedAt, Role: role.String()})
			}
		}
		return out, nil
	}))
	mux.Handle("GET /v1/whoami", s.handle(func(r *http.Request) (any, error) {
		p := principalFrom(r.Context())
		roles := map[string]string{}
		for proj, role := range p.Roles {
			roles[proj] = role.String()
		}
		return api.WhoAmI{Principal: p.Name, Token: p.TokenID, Project: store.ProjectFrom(r.Context()), Roles: roles, ExpiresAt: p.ExpiresAt}, nil
	}))
}

// mergeRoles is role in project plus the other projects' roles.
func mergeRoles(project, role string, more map[string]string) map[string]string {
	out := map[string]string{project: role}
	for p, r := range more {
		if p != project {
			out[p] = r
		}
	}
	return out
}

func toAPIToken(t store.Token, now time.Time) api.Token {
	state := "live"
	switch {
	case !t.RevokedAt.IsZero():
		state = "revoked"
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		state = "expired"
	}
	return api.Token{ID: "tlr_" + t.ID, Principal: t.Principal, Project: t.Project, Roles: t.Roles, Note: t.Note,
		CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, State: state}
}
