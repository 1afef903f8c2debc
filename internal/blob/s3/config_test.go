package s3

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    Options
		wantErr bool
	}{
		{in: "s3://bucket", want: Options{Bucket: "bucket"}},
		{in: "s3://bucket/", want: Options{Bucket: "bucket"}},
		{in: "s3://my.bucket-1/tailor/prod/", want: Options{Bucket: "my.bucket-1", Prefix: "tailor/prod"}},
		{in: "s3:///prefix", wantErr: true},
		{in: "s3://Bucket/x", wantErr: true},
		{in: "s3://ab", wantErr: true},
		{in: "s3://bucket/a//b", wantErr: true},
		{in: "s3://bucket/a/../b", wantErr: true},
		{in: "s3://key:secret@bucket/x", wantErr: true},
		{in: "s3://bucket/x?region=eu", wantErr: true},
		{in: "http://bucket/x", wantErr: true},
		{in: "bucket/x", wantErr: true},
		{in: "s3://-bucket", wantErr: true},
		{in: "s3://a..b", wantErr: true},
		{in: "s3://bucket/a%00b", wantErr: true},
		{in: "s3://bucket/%ff", wantErr: true},
		{in: "s3://bucket/a%3Fb%23c", want: Options{Bucket: "bucket", Prefix: "a?b#c"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if tc.wantErr {
				if !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("ParseURL(%q) = %+v, %v; want ErrInvalid", tc.in, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestOptionsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Options
		wantErr string
	}{
		{name: "nothing set: AWS defaults, anonymous", env: nil, want: Options{Bucket: "b-1", Prefix: "p"}},
		{name: "everything", env: map[string]string{
			"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:7070", "AWS_ENDPOINT_URL": "http://ignored",
			"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "ignored",
			"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK",
			"TAILOR_S3_PATH_STYLE": "true",
		}, want: Options{Bucket: "b-1", Prefix: "p", Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1",
			AccessKeyID: "AK", SecretAccessKey: "SK", SessionToken: "TOK", PathStyle: true}},
		{name: "fallbacks", env: map[string]string{"AWS_ENDPOINT_URL": "https://s3.example.com", "AWS_DEFAULT_REGION": "us-west-2"},
			want: Options{Bucket: "b-1", Prefix: "p", Endpoint: "https://s3.example.com", Region: "us-west-2"}},
		{name: "key without secret", env: map[string]string{"AWS_ACCESS_KEY_ID": "AK"}, wantErr: "AWS_SECRET_ACCESS_KEY"},
		{name: "bad path style", env: map[string]string{"TAILOR_S3_PATH_STYLE": "maybe"}, wantErr: "TAILOR_S3_PATH_STYLE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OptionsFromEnv("s3://b-1/p", func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrInvalid naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("OptionsFromEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://bucket", "s3://b.c-d/x/y/", "s3://bucket/a/../b", "s3://k:s@b/x", "s3://b/x?y", "s3://%zz", "s3://000/%00", "s3://bbb/%ff", "s3://bbb/a%3Fb%23c%25d e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("ParseURL(%q) error %v is not ErrInvalid", raw, err)
			}
			return
		}
		if !validBucket(o.Bucket) || strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/") {
			t.Fatalf("ParseURL(%q) = %+v", raw, o)
		}
		for _, part := range strings.Split(o.Prefix, "/") {
			if o.Prefix != "" && (part == "" || part == "." || part == "..") {
				t.Fatalf("ParseURL(%q) prefix %q has a bad part", raw, o.Prefix)
			}
		}
		// Round trip: the prefix written back as a URL path, escaped.
		again, err := ParseURL((&url.URL{Scheme: "s3", Host: o.Bucket, Path: "/" + o.Prefix}).String())
		if err != nil || again != o {
			t.Fatalf("round trip of %+v = %+v, %v", o, again, err)
		}
	})
}
