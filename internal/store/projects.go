package store

import "context"

// AllProjects is the reserved project of a context that reads every
// project's events at once: WithAllProjects(ctx). No project can be named
// so (project names are identifiers, internal/ident). Background work
// that follows the one event sequence of the server (the trigger loop)
// reads with it and then acts on each event in the event's own project
// (Event.Project), never in AllProjects:
//
//   - Events returns the events of every project under it;
//   - every other read of a project's rows (the nouns) sees none under
//     it; what is server-wide reads as always (projects and tokens, the
//     audit log, usage rows, which carry their project as data);
//   - every write is refused with errs.ErrInvalid, since a change belongs
//     to exactly one project.
//
// Work that must visit every project's rows of another kind (queued runs,
// monitors, trigger firings) lists the projects (AuthStore.Projects) and
// reads each with WithProject.
const AllProjects = "*"

// WithAllProjects returns ctx reading every project (see AllProjects).
func WithAllProjects(ctx context.Context) context.Context {
	return WithProject(ctx, AllProjects)
}

// IsAllProjects reports whether ctx reads every project.
func IsAllProjects(ctx context.Context) bool {
	return ProjectFrom(ctx) == AllProjects
}

// InProjects calls fn once per project, in name order, with ctx carrying
// that project (WithProject): how background work visits every project's
// rows. It stops at the first error fn returns.
func InProjects(ctx context.Context, st AuthStore, fn func(ctx context.Context, project string) error) error {
	ps, err := st.Projects(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := fn(WithProject(ctx, p.Name), p.Name); err != nil {
			return err
		}
	}
	return nil
}
