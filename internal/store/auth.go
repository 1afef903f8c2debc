package store

import (
	"context"
	"time"
)

// Project is a tenant: every request acts in one. DefaultProject exists
// from the first migration on.
type Project struct {
	Name      string    `json:"name"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is an API token as stored: never its secret, only the secret's
// hash. ID is the visible part of the token (tlr_<id>_<secret>), safe to
// name in lists and logs.
type Token struct {
	ID        string `json:"id"`
	Principal string `json:"principal"`
	// Hash is the hex SHA-256 of the token's secret part.
	Hash string `json:"-"`
	// Project is the project a request made with the token acts in when it
	// names none.
	Project string `json:"project"`
	// Roles maps each project the token may act in to its role there
	// ("viewer", "operator", "admin"); it holds Project.
	Roles     map[string]string `json:"roles"`
	Note      string            `json:"note,omitempty"`
	CreatedBy string            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"` // zero: never
	RevokedAt time.Time         `json:"revoked_at,omitzero"` // zero: live
}

// AuthStore holds projects and API tokens (migration 0005). Each mutating
// method appends its events in the same transaction, as Store's do.
type AuthStore interface {
	// PutProject inserts p and, when admin is not nil, that token in the
	// same transaction (the creator's admin token in the new project);
	// errs.ErrConflict if the name exists.
	PutProject(ctx context.Context, p Project, admin *Token, events []Event) ([]Event, error)
	// Project returns the project named name.
	Project(ctx context.Context, name string) (Project, error)
	// Projects lists every project by name.
	Projects(ctx context.Context) ([]Project, error)

	// PutToken inserts t; errs.ErrConflict if its ID exists,
	// errs.ErrNotFound if a project it names a role in does not.
	PutToken(ctx context.Context, t Token, events []Event) ([]Event, error)
	// Token returns the token with id.
	Token(ctx context.Context, id string) (Token, error)
	// Tokens lists the tokens with a role in project ("" = every token),
	// oldest first.
	Tokens(ctx context.Context, project string) ([]Token, error)
	// RevokeToken sets the token's RevokedAt to at unless it is revoked
	// already (then it changes nothing and appends no events) and returns
	// the stored token.
	RevokeToken(ctx context.Context, id string, at time.Time, events []Event) (Token, []Event, error)
	// CountTokens is the number of tokens stored, revoked ones included.
	CountTokens(ctx context.Context) (int, error)
}
