package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
)

func recipeCommand() *command {
	return &command{name: "recipe", usage: "apply, list and show recipes", subs: []*command{
		{name: "apply", usage: "apply FILE (stores a new version only if it changed)", run: recipeApply},
		{name: "list", usage: "list recipe versions", run: recipeList},
		{name: "show", usage: "show NAME[@VERSION]", run: recipeShow},
	}}
}

func recipeApply(e *env, args []string) error {
	return applyFile(e, "recipe", args, (*api.Client).ApplyRecipe, func(r api.RecipeApply) applied {
		return applied{name: r.Version.Name, id: r.Version.ID, version: r.Version.Version, created: r.Created}
	})
}

func recipeList(e *env, args []string) error {
	cc := newClientCmd(e, "recipe list")
	name := cc.fs.String("name", "", "only this recipe")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	vs, err := c.Recipes(e.ctx, *name)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, vs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tID\tCREATED")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\n", v.Name, v.Version, short(v.ID), v.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func recipeShow(e *env, args []string) error {
	cc := newClientCmd(e, "recipe show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	name, ref := splitRef(pos[0])
	v, err := c.Recipe(e.ctx, name, ref)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, "# recipe %s v%d, id %s, created %s\n%s", v.Name, v.Version, v.ID, v.CreatedAt.Format("2006-01-02 15:04:05"), v.Normalized)
	return nil
}
