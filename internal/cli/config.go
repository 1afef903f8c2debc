package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// clientConfig is what the CLI reads from its config file: the file named
// by $TAILOR_CONFIG, else ~/.config/tailor/config. The format is one
// "key = value" per line; blank lines and lines starting with # are
// skipped; keys are token, server and project. Environment variables
// (TAILOR_TOKEN, TAILOR_SERVER, TAILOR_PROJECT) win over the file, flags
// (--server, --project) over both. The file holds a secret: keep it mode
// 0600 (the CLI warns otherwise).
type clientConfig struct {
	path                   string
	token, server, project string
	loose                  bool // readable by group or others
}

// configPath is $TAILOR_CONFIG, else ~/.config/tailor/config ("" when
// there is no home directory).
func configPath(getenv func(string) string) string {
	if p := getenv("TAILOR_CONFIG"); p != "" {
		return p
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "tailor", "config")
	}
	return ""
}

// readConfig reads the config file at path; a missing file is an empty
// config unless it was named by $TAILOR_CONFIG (named is true).
func readConfig(path string, named bool) (clientConfig, error) {
	c := clientConfig{path: path}
	if path == "" {
		return c, nil
	}
	f, err := os.Open(path) // #nosec G304 -- the user's own config file, named by them or their home
	if os.IsNotExist(err) && !named {
		return c, nil
	}
	if err != nil {
		return c, errs.Invalid("config file %s: %v (set TAILOR_CONFIG to another file, or unset it)", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		c.loose = true
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || value == "" {
			return c, errs.Invalid("config file %s, line %d: want key = value (keys: token, server, project)", path, n)
		}
		switch key {
		case "token":
			c.token = value
		case "server":
			c.server = value
		case "project":
			c.project = value
		default:
			return c, errs.Invalid("config file %s, line %d: unknown key %q (keys: token, server, project)", path, n, key)
		}
	}
	if err := sc.Err(); err != nil {
		return c, errs.Invalid("config file %s: %v", path, err)
	}
	return c, nil
}

// credentials returns the token and project the client sends: the
// environment's, else the config file's. It warns when the file holding
// a token is readable by others.
func credentials(e *env) (token, project, server string, err error) {
	path := configPath(e.getenv)
	c, err := readConfig(path, e.getenv("TAILOR_CONFIG") != "")
	if err != nil {
		return "", "", "", err
	}
	token, project, server = e.getenv("TAILOR_TOKEN"), e.getenv("TAILOR_PROJECT"), e.getenv("TAILOR_SERVER")
	if token == "" {
		token = c.token
		if c.token != "" && c.loose {
			fmt.Fprintf(e.stderr, "tailor: warning: %s holds a token and is readable by others; run chmod 600 %s\n", path, path)
		}
	}
	if project == "" {
		project = c.project
	}
	if server == "" {
		server = c.server
	}
	return token, project, server, nil
}
