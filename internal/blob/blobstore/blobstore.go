// Package blobstore opens the blob.Store an address names. It is the one
// parser of blob store addresses, shared by `tailor server --blob`, the
// training workers and the serving process, which get the address in their
// spec and open the same store:
//
//	file:///abs/dir       blob/local, a directory on this machine
//	s3://bucket/prefix    blob/s3; endpoint and credentials from the
//	                      environment (see s3.OptionsFromEnv)
//
// An address never carries credentials, so it can go into specs, process
// lists and logs. This package imports internal/blob, blob/local, blob/s3
// and internal/errs. It is imported by the composition root (app), the
// training worker (worker) and the serving process (serve/childengine);
// never by blob or its implementations.
package blobstore

import (
	"context"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/blob/s3"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Schemes of the addresses Parse accepts.
const (
	SchemeFile = "file"
	SchemeS3   = "s3"
)

// Location is a parsed blob store address.
type Location struct {
	Scheme string // SchemeFile or SchemeS3
	// Dir is a file store's absolute, clean directory (SchemeFile).
	Dir string
	// Bucket and Prefix name an S3 store's objects (SchemeS3); Prefix has
	// no leading or trailing slash.
	Bucket, Prefix string
}

// String is the address in its canonical form; Parse(l.String()) == l.
func (l Location) String() string {
	switch l.Scheme {
	case SchemeFile:
		return (&url.URL{Scheme: SchemeFile, Path: filepath.ToSlash(l.Dir)}).String()
	case SchemeS3:
		return (&url.URL{Scheme: SchemeS3, Host: l.Bucket, Path: "/" + l.Prefix}).String()
	}
	return ""
}

// FileURL is the address of the local store in dir ("file:///abs/dir").
func FileURL(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", errs.Invalid("blob store directory %q: %v", dir, err)
	}
	return Location{Scheme: SchemeFile, Dir: abs}.String(), nil
}

const want = "want file:///absolute/dir or s3://bucket/prefix"

// Parse reads a blob store address. It does not touch the store.
func Parse(raw string) (Location, error) {
	if raw == "" {
		return Location{}, errs.Invalid("blob store address is empty; %s", want)
	}
	if filepath.IsAbs(raw) {
		return Location{}, errs.Invalid("blob store address %q is a path; write it as file://%s", raw, filepath.ToSlash(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, errs.Invalid("blob store address %q: %v; %s", raw, err, want)
	}
	switch u.Scheme {
	case SchemeS3:
		o, err := s3.ParseURL(raw)
		if err != nil {
			return Location{}, err
		}
		return Location{Scheme: SchemeS3, Bucket: o.Bucket, Prefix: o.Prefix}, nil
	case SchemeFile:
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
			return Location{}, errs.Invalid("blob store address %q: a file address is only file:///absolute/dir", raw)
		}
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, errs.Invalid("blob store address %q: host %q; a file store is on this machine (file:///absolute/dir); for another machine's store use s3://", raw, u.Host)
		}
		if !path.IsAbs(u.Path) {
			return Location{}, errs.Invalid("blob store address %q: the directory must be absolute (file:///absolute/dir)", raw)
		}
		if strings.ContainsRune(u.Path, 0) {
			return Location{}, errs.Invalid("blob store address %q: the directory has a NUL byte", raw)
		}
		return Location{Scheme: SchemeFile, Dir: filepath.Clean(filepath.FromSlash(u.Path))}, nil
	case "":
		return Location{}, errs.Invalid("blob store address %q has no scheme; %s", raw, want)
	}
	return Location{}, errs.Invalid("blob store address %q: unknown scheme %q; %s", raw, u.Scheme, want)
}

// Open parses raw and opens its store. An S3 store reads its endpoint and
// credentials through getenv (os.Getenv in the config layer and the
// worker processes; nil reads nothing) and checks that the bucket exists.
func Open(ctx context.Context, raw string, getenv func(string) string) (blob.Store, error) {
	l, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	switch l.Scheme {
	case SchemeFile:
		return local.Open(l.Dir)
	default: // SchemeS3
		if getenv == nil {
			getenv = func(string) string { return "" }
		}
		o, err := s3.OptionsFromEnv(l.String(), getenv)
		if err != nil {
			return nil, err
		}
		return s3.New(ctx, o)
	}
}
