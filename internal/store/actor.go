package store

import "context"

type actorKey struct{}

// WithActor returns ctx carrying the principal every state change made with
// it is attributed to: the authenticated token's principal, set once by the
// HTTP layer, or a named system actor (a trigger, the scheduler). Stores
// record it in the audit log in the same transaction as the change.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor ctx carries, or "" when none was set.
func ActorFrom(ctx context.Context) string {
	s, _ := ctx.Value(actorKey{}).(string)
	return s
}

type projectKey struct{}

// DefaultProject is the project of a request that names none and of every
// row written before projects existed.
const DefaultProject = "default"

// WithProject returns ctx carrying the project (tenant) a request acts in,
// set by the HTTP layer from the authenticated token and the request.
func WithProject(ctx context.Context, project string) context.Context {
	return context.WithValue(ctx, projectKey{}, project)
}

// ProjectFrom returns the project ctx carries, or DefaultProject.
func ProjectFrom(ctx context.Context) string {
	if s, _ := ctx.Value(projectKey{}).(string); s != "" {
		return s
	}
	return DefaultProject
}
