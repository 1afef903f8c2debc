// Command tailor is the single Tailor binary: server, CLI and worker.
package main

import (
	"os"

	"github.com/tailor-ml/tailor/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
