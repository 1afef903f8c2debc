package api

import "time"

// TokenCreate asks for an API token (POST /v1/tokens). The token acts in
// the request's project (X-Tailor-Project, or the caller's token's) with
// Role; Roles adds roles in other projects. The caller must be admin in
// every project named.
type TokenCreate struct {
	// Principal is who the token acts as (default: the caller).
	Principal string `json:"principal,omitempty"`
	// Role in the request's project: viewer, operator or admin (default
	// viewer).
	Role  string            `json:"role,omitempty"`
	Roles map[string]string `json:"roles,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty: until revoked.
	ExpiresIn string `json:"expires_in,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Token describes an API token without its secret. ID is the visible
// prefix of the token text (tlr_<id>).
type Token struct {
	ID        string            `json:"id"`
	Principal string            `json:"principal"`
	Project   string            `json:"project"`
	Roles     map[string]string `json:"roles"`
	Note      string            `json:"note,omitempty"`
	CreatedBy string            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	RevokedAt time.Time         `json:"revoked_at,omitzero"`
	// State is live, expired or revoked.
	State string `json:"state"`
}

// TokenCreated is a new token: Secret is the whole token text, shown
// this once and stored nowhere.
type TokenCreated struct {
	Secret string `json:"secret"`
	Token  Token  `json:"token"`
}

// ProjectCreate asks for a project (POST /v1/projects).
type ProjectCreate struct {
	Name string `json:"name"`
}

// Project is a tenant, with the caller's role in it.
type Project struct {
	Name      string    `json:"name"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Role      string    `json:"role,omitempty"`
}

// ProjectCreated is a new project and its creator's admin token in it
// (the secret shown this once).
type ProjectCreated struct {
	Project Project `json:"project"`
	Secret  string  `json:"secret"`
	Token   Token   `json:"token"`
}

// WhoAmI is the principal a request acts as (GET /v1/whoami).
type WhoAmI struct {
	Principal string            `json:"principal"`
	Token     string            `json:"token,omitempty"` // its id; empty for the insecure local principal
	Project   string            `json:"project"`         // where this request acts
	Roles     map[string]string `json:"roles"`
	// ExpiresAt is when the token stops working; absent for a token
	// without expiry and for the insecure local principal.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// TokenRevoke is the optional body of POST /v1/tokens/{id}/revoke: why,
// kept in the token.revoked event.
type TokenRevoke struct {
	Reason string `json:"reason,omitempty"`
}
