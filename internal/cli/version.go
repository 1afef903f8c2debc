package cli

import "fmt"

func versionCommand() *command {
	return &command{name: "version", usage: "print the engine version that run keys use", run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("version takes no arguments")
		}
		_, err := fmt.Fprintln(e.stdout, engineVersion())
		return err
	}}
}
