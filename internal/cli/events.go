package cli

import (
	"fmt"

	"github.com/tailor-ml/tailor/api"
)

func eventsCommand() *command {
	return &command{name: "events", usage: "print committed events [--follow] [--after SEQ]", run: events}
}

func events(e *env, args []string) error {
	cc := newClientCmd(e, "events")
	follow := cc.fs.Bool("follow", false, "keep streaming new events")
	after := cc.fs.Int64("after", 0, "start after this sequence number")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	return c.Events(e.ctx, *after, *follow, func(ev api.Event) error {
		if cc.json() {
			return printJSON(e.stdout, ev)
		}
		_, err := fmt.Fprintf(e.stdout, "%6d %s %-26s %s %s\n", ev.Seq, ev.Time.Format("2006-01-02T15:04:05.000Z"), ev.Type, ev.Subject, ev.Data)
		return err
	})
}
