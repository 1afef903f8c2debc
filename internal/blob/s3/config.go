package s3

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/errs"
)

// The environment variables OptionsFromEnv reads. They are the AWS SDKs'
// own names, so a deployment that already configures an AWS client needs
// nothing new; TAILOR_S3_PATH_STYLE is ours.
const (
	EnvEndpointS3   = "AWS_ENDPOINT_URL_S3" // endpoint for S3 only; wins over AWS_ENDPOINT_URL
	EnvEndpoint     = "AWS_ENDPOINT_URL"    // endpoint for every AWS service
	EnvRegion       = "AWS_REGION"
	EnvRegionOld    = "AWS_DEFAULT_REGION" // read when AWS_REGION is empty
	EnvAccessKeyID  = "AWS_ACCESS_KEY_ID"
	EnvSecretKey    = "AWS_SECRET_ACCESS_KEY" // #nosec G101 -- the name of an environment variable, not a credential
	EnvSessionToken = "AWS_SESSION_TOKEN"     // #nosec G101 -- the name of an environment variable, not a credential
	EnvPathStyle    = "TAILOR_S3_PATH_STYLE"  // "true": path-style requests
)

// ParseURL reads "s3://bucket/prefix" into an Options' Bucket and Prefix.
// The URL carries no credentials, endpoint or query: those come from the
// environment (OptionsFromEnv), so secrets stay out of flags, process lists
// and logs.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Options{}, errs.Invalid("blob store URL %q: %v; want s3://bucket/prefix", raw, err)
	}
	if u.Scheme != "s3" {
		return Options{}, errs.Invalid("blob store URL %q: scheme %q; want s3://bucket/prefix", raw, u.Scheme)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Options{}, errs.Invalid("blob store URL %q: want only s3://bucket/prefix; give the endpoint and credentials in %s and %s/%s",
			raw, EnvEndpointS3, EnvAccessKeyID, EnvSecretKey)
	}
	if !validBucket(u.Host) {
		return Options{}, errs.Invalid("blob store URL %q: bucket %q is not a valid S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)", raw, u.Host)
	}
	prefix := strings.Trim(u.Path, "/")
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return Options{}, errs.Invalid("blob store URL %q: prefix %q has an empty, . or .. part", raw, prefix)
		}
	}
	if !utf8.ValidString(prefix) || strings.IndexFunc(prefix, unicode.IsControl) >= 0 {
		return Options{}, errs.Invalid("blob store URL %q: prefix %q is not UTF-8 text without control characters", raw, prefix)
	}
	return Options{Bucket: u.Host, Prefix: prefix}, nil
}

// OptionsFromEnv is ParseURL(raw) completed from the environment, read
// through getenv (os.Getenv in the config layer; a map in tests):
//
//	AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL   endpoint (default https://s3.amazonaws.com)
//	AWS_REGION, else AWS_DEFAULT_REGION          region (default: discovered)
//	AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY     static credentials (both or neither)
//	AWS_SESSION_TOKEN                            with temporary credentials
//	TAILOR_S3_PATH_STYLE                         "true" forces path-style requests
func OptionsFromEnv(raw string, getenv func(string) string) (Options, error) {
	o, err := ParseURL(raw)
	if err != nil {
		return Options{}, err
	}
	first := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return v
			}
		}
		return ""
	}
	o.Endpoint = first(EnvEndpointS3, EnvEndpoint)
	o.Region = first(EnvRegion, EnvRegionOld)
	o.AccessKeyID = first(EnvAccessKeyID)
	o.SecretAccessKey = first(EnvSecretKey)
	o.SessionToken = first(EnvSessionToken)
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		return Options{}, errs.Invalid("blob store %s: set both %s and %s, or neither for anonymous access", raw, EnvAccessKeyID, EnvSecretKey)
	}
	if v := first(EnvPathStyle); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Options{}, errs.Invalid("%s=%q: want true or false", EnvPathStyle, v)
		}
		o.PathStyle = b
	}
	return o, nil
}

// validBucket checks S3's bucket naming rules (the common subset).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(b)-1 {
				return false
			}
		default:
			return false
		}
	}
	return !strings.Contains(b, "..")
}
