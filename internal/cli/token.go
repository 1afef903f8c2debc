package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailor-ml/tailor/api"
)

func tokenCommand() *command {
	return &command{name: "token", usage: "create, list and revoke API tokens (docs/security.md)", subs: []*command{
		{name: "create", usage: "create [--principal NAME] [--role viewer|operator|admin] [--grant PROJECT=ROLE]... [--expires 720h] [--note TEXT]: prints the token once", run: tokenCreate},
		{name: "list", usage: "list the tokens with a role in the project, without their secrets", run: tokenList},
		{name: "revoke", usage: "revoke ID (tlr_<id>)", run: tokenRevoke},
		{name: "whoami", usage: "who your token acts as, in which project, with which roles", run: tokenWhoAmI},
	}}
}

func projectCommand() *command {
	return &command{name: "project", usage: "create and list projects (tenants)", subs: []*command{
		{name: "create", usage: "create NAME: prints your admin token in the new project once", run: projectCreate},
		{name: "list", usage: "list the projects you hold a role in", run: projectList},
	}}
}

// grants is a repeatable --grant PROJECT=ROLE.
type grants map[string]string

func (g grants) String() string {
	var out []string
	for p, r := range g {
		out = append(out, p+"="+r)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (g grants) Set(s string) error {
	p, r, ok := strings.Cut(s, "=")
	if !ok || p == "" || r == "" {
		return fmt.Errorf("%q: want PROJECT=ROLE", s)
	}
	g[p] = r
	return nil
}

func tokenCreate(e *env, args []string) error {
	cc := newClientCmd(e, "token create")
	var req api.TokenCreate
	more := grants{}
	cc.fs.StringVar(&req.Principal, "principal", "", "who the token acts as (default: you)")
	cc.fs.StringVar(&req.Role, "role", "viewer", "role in the project: viewer, operator or admin")
	cc.fs.Var(more, "grant", "a role in another project, PROJECT=ROLE (repeatable; you must be admin there)")
	cc.fs.StringVar(&req.ExpiresIn, "expires", "", "lifetime, a Go duration such as 720h (default: until revoked)")
	cc.fs.StringVar(&req.Note, "note", "", "what the token is for")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	if len(more) > 0 {
		req.Roles = more
	}
	res, err := c.CreateToken(e.ctx, req)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	// The secret alone on stdout, so $(tailor token create) is the token;
	// what it is goes to stderr.
	fmt.Fprintf(e.stderr, "token %s for %s (%s); it is shown only now\n", res.Token.ID, res.Token.Principal, rolesText(res.Token.Roles))
	fmt.Fprintln(e.stdout, res.Secret)
	return nil
}

func rolesText(roles map[string]string) string {
	var out []string
	for p, r := range roles {
		out = append(out, p+"="+r)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func tokenList(e *env, args []string) error {
	cc := newClientCmd(e, "token list")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	ts, err := c.Tokens(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tPROJECT\tROLES\tSTATE\tEXPIRES\tCREATED\tBY\tNOTE")
	for _, t := range ts {
		expires := "never"
		if !t.ExpiresAt.IsZero() {
			expires = t.ExpiresAt.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Principal, t.Project, rolesText(t.Roles), t.State, expires,
			t.CreatedAt.Format(time.DateTime), t.CreatedBy, orNone(t.Note))
	}
	return tw.Flush()
}

func tokenRevoke(e *env, args []string) error {
	cc := newClientCmd(e, "token revoke")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	t, err := c.RevokeToken(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, t)
	}
	fmt.Fprintf(e.stdout, "token %s (%s) revoked at %s\n", t.ID, t.Principal, t.RevokedAt.Format(time.DateTime))
	return nil
}

func projectCreate(e *env, args []string) error {
	cc := newClientCmd(e, "project create")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	res, err := c.CreateProject(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stderr, "project %s created; admin token %s for %s, shown only now\n", res.Project.Name, res.Token.ID, res.Token.Principal)
	fmt.Fprintln(e.stdout, res.Secret)
	return nil
}

func projectList(e *env, args []string) error {
	cc := newClientCmd(e, "project list")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	ps, err := c.Projects(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ps)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tBY")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Role, p.CreatedAt.Format(time.DateTime), p.CreatedBy)
	}
	return tw.Flush()
}

func tokenWhoAmI(e *env, args []string) error {
	cc := newClientCmd(e, "token whoami")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	me, err := c.WhoAmI(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, me)
	}
	fmt.Fprintf(e.stdout, "principal  %s\ntoken      %s\nproject    %s\nroles      %s\n", me.Principal, orNone(me.Token), me.Project, rolesText(me.Roles))
	return nil
}
