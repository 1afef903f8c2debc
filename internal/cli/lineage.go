package cli

import (
	"fmt"
	"io"

	"github.com/tailor-ml/tailor/api"
)

func lineageCommand() *command {
	return &command{name: "lineage", usage: "lineage RUN|ADAPTER: the inputs of a run with their hashes", run: lineage}
}

func lineage(e *env, args []string) error {
	cc := newClientCmd(e, "lineage")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	n, err := c.Lineage(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, n)
	}
	printTree(e.stdout, &n, "", "")
	return nil
}

// printTree writes a node and its children as an indented text tree.
func printTree(w io.Writer, n *api.LineageNode, first, rest string) {
	label := n.Kind + " " + n.ID
	if n.Name != "" && n.Name != n.ID {
		label = n.Kind + " " + n.Name + " " + short(n.ID)
	}
	if n.Detail != "" {
		label += " (" + n.Detail + ")"
	}
	fmt.Fprintf(w, "%s%s\n", first, label)
	for i, ch := range n.Children {
		if i == len(n.Children)-1 {
			printTree(w, ch, rest+"└── ", rest+"    ")
		} else {
			printTree(w, ch, rest+"├── ", rest+"│   ")
		}
	}
}
