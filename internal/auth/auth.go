// Package auth is Tailor's identity and access: API tokens (a random
// secret shown once, stored only as its SHA-256, named by a visible id),
// principals with a role per project (viewer < operator < admin), the
// decision "may principal P do action class C in project X", and a
// per-token rate limiter (token bucket).
//
// The HTTP layer (internal/httpapi) authenticates every request with an
// Authority, checks the route's action class, and puts the principal's
// name and the project into the request context (store.WithActor,
// store.WithProject). Secrets never leave this package except once, as
// the answer to the request that created them.
//
// This package imports internal/store, internal/errs and internal/ident;
// nothing else in Tailor.
package auth

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Role is what a principal may do in one project. Each role includes the
// ones below it.
type Role int

// The roles, in order.
const (
	NoRole Role = iota
	Viewer
	Operator
	Admin
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseRole reads "viewer", "operator" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	case "admin":
		return Admin, nil
	}
	return NoRole, errs.Invalid("role %q: want viewer, operator or admin", s)
}

// Class is the kind of action a route performs; each needs one role.
type Class int

// The action classes.
const (
	// Public needs no token at all (GET /v1/health).
	Public Class = iota
	// Read lists and shows; it needs viewer.
	Read
	// Operate changes data and work: import, apply, run, cancel, serve
	// and deploy, feedback; it needs operator.
	Operate
	// Administer changes what serves and who may act: promote (and
	// override), approve and reject, rollback, tokens, projects, policy;
	// it needs admin.
	Administer
	// Worker is a run's remote worker fetching its spec and posting its
	// messages (/v1/runs/{id}/worker/…): only that run's worker
	// credential (WorkerCredentials) may call it, never a user token.
	Worker
)

func (c Class) String() string {
	switch c {
	case Public:
		return "public"
	case Read:
		return "read"
	case Operate:
		return "operate"
	case Administer:
		return "admin"
	case Worker:
		return "worker"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Needs is the least role that may perform c.
func (c Class) Needs() Role {
	switch c {
	case Public:
		return NoRole
	case Read:
		return Viewer
	case Operate:
		return Operator
	}
	return Admin
}

// Principal is who a request acts as: the token's principal with the
// token's roles.
type Principal struct {
	// Name is the actor every change is attributed to.
	Name string
	// TokenID is the visible id of the token used ("" for the insecure
	// local principal).
	TokenID string
	// Project is the token's home project: where a request that names
	// none acts.
	Project string
	// Roles maps each project the principal may act in to its role there.
	Roles map[string]Role
	// ExpiresAt is when the token stops authenticating (zero: never, and
	// for the insecure local principal).
	ExpiresAt time.Time
}

// LocalPrincipal is who every request without a token acts as on a
// server started with --insecure-local.
const LocalPrincipal = "local"

// who names p in messages: its token id and name, never a secret.
func (p Principal) who() string {
	if p.TokenID == "" {
		return fmt.Sprintf("principal %q", p.Name)
	}
	return fmt.Sprintf("token %s (%s)", p.TokenID, p.Name)
}

// roles lists p's roles as "project (role), …" in project order.
func (p Principal) roles() string {
	var out []string
	for proj, r := range p.Roles {
		out = append(out, fmt.Sprintf("%s (%s)", proj, r))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// Authorize decides whether p may perform an action of class c, described
// by what ("POST /v1/runs"), in project. The error is errs.ErrForbidden and
// names the role missing and where.
func Authorize(p Principal, project string, c Class, what string) error {
	if c == Worker {
		return errs.Forbidden("%s: only the run's own worker may call this, with the credential the server gave it; %s is not one", what, p.who())
	}
	need := c.Needs()
	if need == NoRole {
		return nil
	}
	have := p.Roles[project]
	if have == NoRole {
		return errs.Forbidden("%s: %s has no role in project %q (its roles: %s); use a token of that project or ask one of its admins for one",
			what, p.who(), project, p.roles())
	}
	if have < need {
		return errs.Forbidden("%s: needs role %s in project %q; %s is %s there; ask an admin of %q for a token with role %s",
			what, need, project, p.who(), have, project, need)
	}
	return nil
}
