// Package cli implements the tailor command line: one file per subcommand.
// Subcommands other than `server`, `worker` and `demo` reach the server only
// through the public Go client in api/. This package is the one place where
// error kinds become exit codes.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Exit codes, one per error kind.
const (
	ExitOK          = 0
	ExitInternal    = 1
	ExitUsage       = 2
	ExitInvalid     = 3
	ExitNotFound    = 4
	ExitConflict    = 5
	ExitForbidden   = 6
	ExitUnavailable = 7
)

// ExitCode maps an error to the process exit code. It is the only such mapping.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return ExitUsage
	}
	kind := errs.Kind(err)
	if errors.Is(err, api.ErrUnreachable) || errors.Is(err, api.ErrNoAnswer) {
		kind = "unavailable"
	}
	var se *api.StatusError
	if errors.As(err, &se) {
		kind = se.Err.Kind
	}
	switch kind {
	case "invalid":
		return ExitInvalid
	case "not_found":
		return ExitNotFound
	case "conflict":
		return ExitConflict
	case "forbidden", "unauthenticated":
		return ExitForbidden
	case "unavailable", "timeout", "insufficient_storage", "rate_limited":
		return ExitUnavailable
	}
	return ExitInternal
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// env is what every subcommand gets.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type command struct {
	name  string
	usage string
	run   func(e *env, args []string) error
	subs  []*command
}

func commands() []*command {
	return []*command{
		serverCommand(),
		workerCommand(),
		datasetCommand(),
		baseCommand(),
		recipeCommand(),
		runCommand(),
		lineageCommand(),
		eventsCommand(),
		fsckCommand(),
		gcCommand(),
		modelCommand(),
		evalCommand(),
		monitorCommand(),
		feedbackCommand(),
		triggerCommand(),
		deployCommand(),
		copyCommand(),
		auditCommand(),
		usageCommand(),
		tokenCommand(),
		projectCommand(),
		corpusCommand(),
		demoCommand(),
		versionCommand(),
	}
}

// Main runs the command line and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	err := dispatch(e, &command{name: "tailor", subs: commands()}, args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "tailor: %v\n", err)
	}
	return ExitCode(err)
}

func dispatch(e *env, c *command, args []string) error {
	if c.run != nil {
		return c.run(e, args)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(e.stderr, c)
		if len(args) == 0 {
			return usagef("%s: name a subcommand", c.name)
		}
		return flag.ErrHelp
	}
	for _, s := range c.subs {
		if s.name == args[0] {
			return dispatch(e, s, args[1:])
		}
	}
	printHelp(e.stderr, c)
	return usagef("%s: unknown subcommand %q", c.name, args[0])
}

func printHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: %s <subcommand>\n\nsubcommands:\n", c.name)
	subs := append([]*command(nil), c.subs...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for _, s := range subs {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.usage)
	}
}

// clientFlags are the flags of every command that talks to a server.
type clientFlags struct {
	e       *env
	server  string
	project string
	output  string
}

func (cf *clientFlags) register(fs *flag.FlagSet, e *env) {
	cf.e = e
	fs.StringVar(&cf.server, "server", "", "server address (env TAILOR_SERVER, config file, default 127.0.0.1:7070)")
	fs.StringVar(&cf.project, "project", "", "project to act in (env TAILOR_PROJECT, config file; default the token's)")
	fs.StringVar(&cf.output, "output", "text", "output format: text or json")
	fs.BoolFunc("json", "the same as --output json", func(string) error { cf.output = "json"; return nil })
}

// client is a client for the server, sending the token of TAILOR_TOKEN or
// the config file (see clientConfig) on every request.
func (cf *clientFlags) client() (*api.Client, error) {
	if cf.output != "text" && cf.output != "json" {
		return nil, usagef("--output %q: want text or json", cf.output)
	}
	token, project, server, err := credentials(cf.e)
	if err != nil {
		return nil, err
	}
	if cf.server != "" {
		server = cf.server
	}
	if server == "" {
		server = "127.0.0.1:7070"
	}
	if cf.project != "" {
		project = cf.project
	}
	c := api.NewClient(server, nil)
	if token != "" {
		c = c.WithToken(token)
	}
	if project != "" {
		c = c.WithProject(project)
	}
	return c, nil
}

// parse parses flags that may appear before, between or after positional
// arguments, and checks the number of positionals.
func parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		return nil, usagef("%s: wrong number of arguments (%d); usage: %s", fs.Name(), len(pos), fs.Name()+" "+flagUsage(fs))
	}
	return pos, nil
}

func flagUsage(fs *flag.FlagSet) string {
	var parts []string
	fs.VisitAll(func(f *flag.Flag) { parts = append(parts, "[--"+f.Name+"]") })
	return strings.Join(parts, " ")
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// splitRef splits "name@ref".
func splitRef(s string) (string, string) {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// clientCmd is a subcommand that talks to a server: its flag set holds
// --server and --output besides its own flags.
type clientCmd struct {
	fs *flag.FlagSet
	cf clientFlags
}

func newClientCmd(e *env, name string) *clientCmd {
	cc := &clientCmd{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	cc.cf.register(cc.fs, e)
	return cc
}

// parse parses args (min to max positionals) and returns the client.
func (cc *clientCmd) parse(args []string, minPos, maxPos int) (*api.Client, []string, error) {
	pos, err := parse(cc.fs, args, minPos, maxPos)
	if err != nil {
		return nil, nil, err
	}
	c, err := cc.cf.client()
	return c, pos, err
}

// json reports whether --output json was asked for.
func (cc *clientCmd) json() bool { return cc.cf.output == "json" }
