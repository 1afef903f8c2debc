package blobstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob/blobstore"
	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/errs"
)

func TestParse(t *testing.T) {
	cases := []struct {
		raw  string
		want blobstore.Location
		str  string // canonical form
		err  string // substring of the error; "" when it parses
	}{
		{raw: "file:///srv/tailor/blobs", want: blobstore.Location{Scheme: "file", Dir: "/srv/tailor/blobs"}, str: "file:///srv/tailor/blobs"},
		{raw: "file://localhost/srv/blobs", want: blobstore.Location{Scheme: "file", Dir: "/srv/blobs"}, str: "file:///srv/blobs"},
		{raw: "file:/srv/blobs/", want: blobstore.Location{Scheme: "file", Dir: "/srv/blobs"}, str: "file:///srv/blobs"},
		{raw: "file:///srv/a/../b", want: blobstore.Location{Scheme: "file", Dir: "/srv/b"}, str: "file:///srv/b"},
		{raw: "file:///with%20space", want: blobstore.Location{Scheme: "file", Dir: "/with space"}, str: "file:///with%20space"},
		{raw: "s3://bucket-1/tailor/prod", want: blobstore.Location{Scheme: "s3", Bucket: "bucket-1", Prefix: "tailor/prod"}, str: "s3://bucket-1/tailor/prod"},
		{raw: "s3://bucket-1", want: blobstore.Location{Scheme: "s3", Bucket: "bucket-1"}, str: "s3://bucket-1/"},
		{raw: "s3://bucket-1/p/", want: blobstore.Location{Scheme: "s3", Bucket: "bucket-1", Prefix: "p"}, str: "s3://bucket-1/p"},

		{raw: "", err: "empty"},
		{raw: "/srv/blobs", err: "write it as file:///srv/blobs"},
		{raw: "blobs", err: "no scheme"},
		{raw: "file://host/srv", err: "on this machine"},
		{raw: "file://./rel", err: "on this machine"},
		{raw: "file:rel/dir", err: "only file:///absolute/dir"},
		{raw: "file:///srv?x=1", err: "only file:///absolute/dir"},
		{raw: "file:///srv#frag", err: "only file:///absolute/dir"},
		{raw: "file://u:p@/srv", err: "only file:///absolute/dir"},
		{raw: "gs://bucket/p", err: `unknown scheme "gs"`},
		{raw: "s3://Bucket/p", err: "not a valid S3 bucket name"},
		{raw: "s3://key:secret@bucket/p", err: "AWS_ACCESS_KEY_ID"},
		{raw: "s3://bucket/a/../b", err: "empty, . or .. part"},
		{raw: "s3://bucket/p?endpoint=x", err: "want only s3://bucket/prefix"},
		{raw: "::", err: "missing protocol scheme"},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			got, err := blobstore.Parse(c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("Parse(%q) = %+v, %v; want an invalid error containing %q", c.raw, got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", c.raw, got, c.want)
			}
			if s := got.String(); s != c.str {
				t.Fatalf("String() = %q, want %q", s, c.str)
			}
		})
	}
}

func TestFileURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b%c?d#e")
	raw, err := blobstore.FileURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := blobstore.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if l.Scheme != blobstore.SchemeFile || l.Dir != dir {
		t.Fatalf("Parse(FileURL(%q)) = %+v (via %q)", dir, l, raw)
	}
}

func TestOpenFile(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blobs")
	raw, err := blobstore.FileURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := blobstore.Open(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls, ok := s.(*local.Store)
	if !ok || ls.Dir() != dir {
		t.Fatalf("Open(%q) = %T %v, want the local store in %s", raw, s, s, dir)
	}
	if _, err := blobstore.Open(ctx, "gs://b/p", nil); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("Open(gs://) = %v, want invalid", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"file:///srv/blobs", "file://localhost/a/../b", "s3://bucket/p/q", "s3://bucket", "/abs", "file:rel",
		"s3://b..c/p", "file:///a%00b", "s3://bucket/%2e%2e", "file:///x?y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, err := blobstore.Parse(raw)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Parse(%q): error %v is not ErrInvalid", raw, err)
			}
			return
		}
		switch l.Scheme {
		case blobstore.SchemeFile:
			if !filepath.IsAbs(l.Dir) || filepath.Clean(l.Dir) != l.Dir || l.Bucket != "" || l.Prefix != "" {
				t.Fatalf("Parse(%q) = %+v: not a clean absolute directory", raw, l)
			}
		case blobstore.SchemeS3:
			if l.Bucket == "" || l.Dir != "" || strings.HasPrefix(l.Prefix, "/") || strings.HasSuffix(l.Prefix, "/") {
				t.Fatalf("Parse(%q) = %+v", raw, l)
			}
		default:
			t.Fatalf("Parse(%q) = %+v: unknown scheme", raw, l)
		}
		again, err := blobstore.Parse(l.String())
		if err != nil || again != l {
			t.Fatalf("Parse(%q) = %+v, whose String %q parses as %+v, %v", raw, l, l.String(), again, err)
		}
	})
}
