package cli

import (
	"flag"
	"fmt"

	"github.com/tailor-ml/tailor/api"
)

func eventsCommand() *command {
	return &command{name: "events", usage: "print committed events [--follow] [--after SEQ]", run: events}
}

func events(e *env, args []string) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, e)
	follow := fs.Bool("follow", false, "keep streaming new events")
	after := fs.Int64("after", 0, "start after this sequence number")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.Events(e.ctx, *after, *follow, func(ev api.Event) error {
		if cf.output == "json" {
			return printJSON(e.stdout, ev)
		}
		_, err := fmt.Fprintf(e.stdout, "%6d %s %-26s %s %s\n", ev.Seq, ev.Time.Format("2006-01-02T15:04:05.000Z"), ev.Type, ev.Subject, ev.Data)
		return err
	})
}
