// Package s3 is the scale-out blob.Store: a content-addressed prefix in an
// S3-compatible bucket (AWS S3, versitygw, Ceph RGW, …), reached with
// github.com/minio/minio-go/v7.
//
// Layout under Options.Prefix:
//
//	<prefix>/sha256/<64 hex>   one object per blob, named by its digest
//	<prefix>/tmp/put-<random>  large uploads in progress
//
// Put hashes while it reads. A blob of at most Options.PartSize bytes is
// held in memory and written straight to its digest's key in one PUT that is
// signed over its sha256 (so the server refuses damaged bytes) and
// conditional (If-None-Match: *). A larger one goes up part by part, each
// part signed over its own sha256, as a multipart upload into a temp object,
// which is then copied server-side to its digest's key and removed. Memory
// stays at about one part whatever the blob's size. An existing blob is
// never written again: Put stats the key first and, when the blob is there,
// only touches it; the conditional PUT covers a writer that raced it.
//
// Every read is checked: Open returns a reader that hashes what it yields
// and, instead of io.EOF, returns an error wrapping errs.ErrConflict when the
// bytes (or their count) do not match the digest, so a damaged object cannot
// be read as if it were whole. Verify reads the whole blob the same way.
//
// Temp objects and incomplete multipart uploads left by a crashed process are
// invisible to List and Open; a bucket lifecycle rule on "<prefix>/tmp/" and
// AbortIncompleteMultipartUpload removes them (see docs/scale-out.md).
//
// This package imports only internal/blob and internal/errs (and minio-go).
// Only the config layer reads the environment: OptionsFromEnv takes a
// getenv function.
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/errs"
)

const (
	algo      = "sha256"
	digestPre = algo + ":"

	// DefaultPartSize is the multipart part size (and so the memory one Put
	// holds) when Options.PartSize is 0. With S3's limit of 10,000 parts it
	// allows blobs up to 160 GiB.
	DefaultPartSize = 16 << 20
	// MinPartSize is S3's smallest part size for all but the last part.
	MinPartSize = 5 << 20

	copyBuf = 1 << 20
)

var (
	_ blob.Store   = (*Store)(nil)
	_ blob.Toucher = (*Store)(nil)
)

// Options configures a Store. Bucket is required; the rest have defaults.
type Options struct {
	// Endpoint is the S3 service URL, "https://host[:port]" or
	// "http://host[:port]" (plain HTTP only for loopback tests). Default
	// "https://s3.amazonaws.com".
	Endpoint string
	// Region is the bucket's region; empty lets the client discover it.
	Region string
	// Bucket must already exist; New does not create it.
	Bucket string
	// Prefix is the key prefix every object of this store lives under,
	// without leading or trailing slashes ("" for the bucket's root).
	Prefix string

	// Static credentials. Empty AccessKeyID means anonymous access.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// PathStyle forces path-style requests (http://host/bucket/key), which
	// most non-AWS servers need; otherwise the client picks (virtual-host
	// style for AWS, path style for IP addresses and localhost).
	PathStyle bool

	// PartSize is the multipart part size, at least MinPartSize. Default
	// DefaultPartSize.
	PartSize int64

	// Transport is the HTTP transport; nil uses minio-go's default.
	Transport http.RoundTripper

	// Logger receives warnings about cleanups that failed; nil discards.
	Logger *slog.Logger
}

// Store is a blob.Store on an S3 bucket. It is safe for concurrent use by
// several goroutines and several processes (replicas, workers) sharing the
// bucket and prefix.
type Store struct {
	client *minio.Client
	bucket string
	prefix string // "" or "p/q/"
	part   int64
	logger *slog.Logger
}

// New connects to opts.Endpoint and checks that the bucket exists.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Bucket == "" {
		return nil, errs.Invalid("s3 blob store: no bucket named; give one as s3://bucket/prefix")
	}
	if opts.Endpoint == "" {
		opts.Endpoint = "https://s3.amazonaws.com"
	}
	u, err := url.Parse(opts.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, errs.Invalid("s3 blob store: endpoint %q: want http(s)://host[:port] with no path", opts.Endpoint)
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize {
		return nil, errs.Invalid("s3 blob store: part size %d is below S3's minimum of %d bytes", opts.PartSize, MinPartSize)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	prefix := strings.Trim(opts.Prefix, "/")
	if prefix != "" {
		if path.Clean(prefix) != prefix || strings.Contains(prefix, "..") {
			return nil, errs.Invalid("s3 blob store: prefix %q: want slash-separated names with no . or .. parts", opts.Prefix)
		}
		prefix += "/"
	}
	mo := &minio.Options{
		Secure:    u.Scheme == "https",
		Region:    opts.Region,
		Transport: opts.Transport,
	}
	if opts.AccessKeyID != "" {
		mo.Creds = credentials.NewStaticV4(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)
	} else {
		mo.Creds = credentials.New(&credentials.Static{}) // anonymous
	}
	if opts.PathStyle {
		mo.BucketLookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, mo)
	if err != nil {
		return nil, errs.Invalid("s3 blob store: %v", err)
	}
	s := &Store{client: client, bucket: opts.Bucket, prefix: prefix, part: opts.PartSize, logger: opts.Logger}
	ok, err := client.BucketExists(ctx, opts.Bucket)
	if err != nil {
		return nil, errs.Unavailable("s3 blob store: reach bucket %q at %s: %v; check the endpoint and credentials", opts.Bucket, opts.Endpoint, err)
	}
	if !ok {
		return nil, errs.NotFound("s3 blob store: bucket %q does not exist at %s; create it first", opts.Bucket, opts.Endpoint)
	}
	return s, nil
}

// Bucket and Prefix name where the store keeps its objects.
func (s *Store) Bucket() string { return s.bucket }

// Prefix is the key prefix ("" or ending in "/").
func (s *Store) Prefix() string { return s.prefix }

// Key returns the object key of blob d.
func (s *Store) Key(d blob.Digest) (string, error) {
	h, err := blob.ParseDigest(d)
	if err != nil {
		return "", err
	}
	return s.objectsPrefix() + h, nil
}

func (s *Store) objectsPrefix() string { return s.prefix + algo + "/" }
func (s *Store) tmpPrefix() string     { return s.prefix + "tmp/" }

// Put stores the bytes of r and returns their digest and size.
func (s *Store) Put(ctx context.Context, r io.Reader) (blob.Digest, int64, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	h := sha256.New()
	src := io.TeeReader(ctxReader{ctx: ctx, r: r}, h)
	// Most blobs are small: read up to smallMax into a buffer that grows
	// as needed before committing a whole part's memory.
	var head bytes.Buffer
	n, err := io.CopyN(&head, src, smallMax+1)
	if err == io.EOF {
		return s.putSmall(ctx, head.Bytes(), h.Sum(nil))
	}
	if err != nil {
		return "", 0, fmt.Errorf("put blob: after %d bytes: %w", n, err)
	}
	part := make([]byte, s.part)
	copy(part, head.Bytes())
	m, err := io.ReadFull(src, part[n:])
	n += int64(m)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return s.putSmall(ctx, part[:n], h.Sum(nil))
	case err != nil:
		return "", 0, fmt.Errorf("put blob: after %d bytes: %w", n, err)
	}
	return s.putLarge(ctx, src, part, h)
}

// smallMax is how much Put reads before it allocates a whole part.
const smallMax = 1 << 20

// putSmall writes a blob held in memory straight to its key.
func (s *Store) putSmall(ctx context.Context, data []byte, sum []byte) (blob.Digest, int64, error) {
	d := digestPre + hex.EncodeToString(sum)
	key := s.objectsPrefix() + hex.EncodeToString(sum)
	size := int64(len(data))
	if done, err := s.touchIfStored(ctx, d, key); err != nil || done {
		return d, size, err
	}
	if _, err := s.putIfAbsent(ctx, key, data, sum); err != nil {
		return "", 0, s.wrap(ctx, "put blob "+d, err)
	}
	return d, size, nil
}

// putIfAbsent writes data, whose sha256 is sum, to key unless an object is
// there already; it reports whether it wrote. The request is signed over
// sum, so the server refuses bytes that arrive damaged, and it carries
// If-None-Match: *, so a writer that raced ours is never overwritten.
func (s *Store) putIfAbsent(ctx context.Context, key string, data, sum []byte) (bool, error) {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true}
	opts.SetMatchETagExcept("*")
	_, err := minio.Core{Client: s.client}.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), "", hex.EncodeToString(sum), opts)
	if isPreconditionFailed(err) {
		return false, nil
	}
	return err == nil, err
}

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

// putLarge uploads part (full) and the rest of src as the parts of a
// multipart upload into a temp object, reusing part's memory, then copies
// the temp object to its digest's key. Each part is signed over its own
// sha256, so the server refuses a part that arrives damaged. On failure the
// upload is aborted and the temp object removed, even when ctx is done.
func (s *Store) putLarge(ctx context.Context, src io.Reader, part []byte, h hash.Hash) (blob.Digest, int64, error) {
	core := minio.Core{Client: s.client}
	tmp := s.tmpPrefix() + "put-" + randomHex(12)
	id, err := core.NewMultipartUpload(ctx, s.bucket, tmp, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", 0, s.wrap(ctx, "put blob: start upload", err)
	}
	completed := false
	defer func() {
		if !completed {
			s.abortUpload(tmp, id)
		}
		s.removeTemp(tmp)
	}()
	var parts []minio.CompletePart
	var total int64
	data := part
	for {
		if len(parts) == maxParts {
			return "", 0, errs.Invalid("put blob: more than %d parts of %d bytes; raise the part size", maxParts, s.part)
		}
		sum := sha256.Sum256(data)
		p, err := core.PutObjectPart(ctx, s.bucket, tmp, id, len(parts)+1, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(sum[:]), DisableContentSha256: true})
		if err != nil {
			return "", 0, s.wrap(ctx, fmt.Sprintf("put blob: upload part %d", len(parts)+1), err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
		total += int64(len(data))
		n, err := io.ReadFull(src, part)
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return "", 0, fmt.Errorf("put blob: after %d bytes: %w", total+int64(n), err)
		}
		data = part[:n]
	}
	if _, err := core.CompleteMultipartUpload(ctx, s.bucket, tmp, id, parts, minio.PutObjectOptions{}); err != nil {
		return "", 0, s.wrap(ctx, "put blob: complete upload", err)
	}
	completed = true
	sum := h.Sum(nil)
	d := digestPre + hex.EncodeToString(sum)
	key := s.objectsPrefix() + hex.EncodeToString(sum)
	if done, err := s.touchIfStored(ctx, d, key); err != nil || done {
		return d, total, err
	}
	if err := s.copy(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: key}, tmp, total); err != nil {
		return "", 0, s.wrap(ctx, "put blob "+d+": copy into place", err)
	}
	return d, total, nil
}

// abortUpload aborts a multipart upload even when the Put's context is done.
func (s *Store) abortUpload(key, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := (minio.Core{Client: s.client}).AbortMultipartUpload(ctx, s.bucket, key, id); err != nil && !isNotFound(err) {
		s.logger.Warn("s3 blob store: abort multipart upload", "bucket", s.bucket, "key", key, "err", err)
	}
}

// touchIfStored reports whether blob d is already stored, and if so marks
// it written now (see Touch).
func (s *Store) touchIfStored(ctx context.Context, d blob.Digest, key string) (bool, error) {
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap(ctx, "put blob "+d, err)
	}
	if err := s.touchKey(ctx, key, info.Size); err != nil && !isNotFound(err) {
		return true, s.wrap(ctx, "put blob "+d+": touch", err)
	}
	return true, nil
}

// removeTemp deletes a temp object even when the Put's context is done.
func (s *Store) removeTemp(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		s.logger.Warn("s3 blob store: remove temp object", "bucket", s.bucket, "key", key, "err", err)
	}
}

// Open returns a reader of blob d that checks the bytes against d: when they
// differ it returns an error wrapping errs.ErrConflict instead of io.EOF.
func (s *Store) Open(ctx context.Context, d blob.Digest) (io.ReadCloser, error) {
	key, err := s.keyFor(ctx, d)
	if err != nil {
		return nil, err
	}
	body, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.blobErr(ctx, d, err)
	}
	return &verifyReader{rc: body, d: d, size: info.Size, h: sha256.New()}, nil
}

// Stat returns the size of blob d.
func (s *Store) Stat(ctx context.Context, d blob.Digest) (int64, error) {
	info, err := s.stat(ctx, d)
	return info.Size, err
}

// ModTime returns when blob d was last written (or found already stored by
// a Put, or touched), by the S3 server's clock.
func (s *Store) ModTime(ctx context.Context, d blob.Digest) (time.Time, error) {
	info, err := s.stat(ctx, d)
	return info.LastModified, err
}

func (s *Store) stat(ctx context.Context, d blob.Digest) (minio.ObjectInfo, error) {
	key, err := s.keyFor(ctx, d)
	if err != nil {
		return minio.ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return minio.ObjectInfo{}, s.blobErr(ctx, d, err)
	}
	return info, nil
}

// Touch marks blob d as written now, so garbage collection's grace period
// covers it until a reference to it is recorded. S3 has no way to change an
// object's time alone: the object is copied onto itself with new metadata,
// server-side.
func (s *Store) Touch(ctx context.Context, d blob.Digest) error {
	info, err := s.stat(ctx, d)
	if err != nil {
		return err
	}
	if err := s.touchKey(ctx, info.Key, info.Size); err != nil {
		return s.blobErr(ctx, d, err)
	}
	return nil
}

func (s *Store) touchKey(ctx context.Context, key string, size int64) error {
	return s.copy(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: key, ReplaceMetadata: true,
		UserMetadata: map[string]string{"Tailor-Touched": time.Now().UTC().Format(time.RFC3339Nano)}}, key, size)
}

// maxCopy is the largest object one CopyObject request may copy.
const maxCopy = 5 << 30

// copy copies object src of the store's bucket, size bytes, to dst,
// server-side: one request up to 5 GiB, a multipart copy above.
func (s *Store) copy(ctx context.Context, dst minio.CopyDestOptions, src string, size int64) error {
	if size <= maxCopy {
		_, err := s.client.CopyObject(ctx, dst, minio.CopySrcOptions{Bucket: s.bucket, Object: src})
		return err
	}
	_, err := s.client.ComposeObject(ctx, dst, minio.CopySrcOptions{Bucket: s.bucket, Object: src})
	return err
}

// List calls fn for every blob in digest order; an error from fn stops the
// walk and is returned.
func (s *Store) List(ctx context.Context, fn func(d blob.Digest, size int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	pre := s.objectsPrefix()
	last := ""
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: pre, Recursive: true}) {
		if obj.Err != nil {
			return s.wrap(ctx, "list blobs", obj.Err)
		}
		h := strings.TrimPrefix(obj.Key, pre)
		if !blob.IsHex(h, 64) {
			continue // not ours
		}
		if h <= last {
			return fmt.Errorf("list blobs: the server listed %s after %s, out of key order", h, last)
		}
		last = h
		if err := fn(digestPre+h, obj.Size); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Verify re-reads and re-hashes blob d; a mismatch wraps errs.ErrConflict and
// names the digest the content has.
func (s *Store) Verify(ctx context.Context, d blob.Digest) error {
	rc, err := s.Open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyBuffer(io.Discard, rc, make([]byte, copyBuf)); err != nil {
		if errors.Is(err, errs.ErrConflict) {
			return err
		}
		return fmt.Errorf("verify blob %s: %w", d, err)
	}
	return nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, d blob.Digest) error {
	key, err := s.keyFor(ctx, d)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return s.wrap(ctx, "delete blob "+d, err)
	}
	return nil
}

// keyFor is blob d's key, unless ctx is done.
func (s *Store) keyFor(ctx context.Context, d blob.Digest) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return s.Key(d)
}

// verifyReader hashes what it reads and, at the end, compares the sum and
// the count with the digest and the size the server announced.
type verifyReader struct {
	rc   io.ReadCloser
	d    blob.Digest
	size int64
	n    int64
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
	err error // sticky end-of-stream result
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.n += int64(n)
	_, _ = v.h.Write(p[:n])
	switch {
	case err == io.EOF:
		got := digestPre + hex.EncodeToString(v.h.Sum(nil))
		switch {
		case got != v.d:
			err = errs.Conflict("read blob: expected %s, content has %s (the stored object is damaged; restore it from a copy or delete it)", v.d, got)
		case v.n != v.size:
			err = errs.Conflict("read blob %s: got %d bytes, the server announced %d", v.d, v.n, v.size)
		}
		v.err = err
	case err != nil:
		err = fmt.Errorf("read blob %s: after %d bytes: %w", v.d, v.n, err)
		v.err = err
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.rc.Close() }

// blobErr maps a failed request about blob d.
func (s *Store) blobErr(ctx context.Context, d blob.Digest, err error) error {
	if isNotFound(err) {
		return errs.NotFound("blob %s: not found", d)
	}
	return s.wrap(ctx, "blob "+d, err)
}

// wrap adds context to err; a done context is reported as such, and errors
// that are the server's or the network's wrap errs.ErrUnavailable.
func (s *Store) wrap(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.Code == "NoSuchBucket":
			return errs.NotFound("%s: bucket %q does not exist; create it", what, s.bucket)
		case er.StatusCode == http.StatusForbidden || er.Code == "AccessDenied" || er.Code == "InvalidAccessKeyId" || er.Code == "SignatureDoesNotMatch":
			return errs.Forbidden("%s: %s (%s); check the S3 credentials", what, er.Message, er.Code)
		}
	}
	return errs.Unavailable("%s: %w", what, err)
}

func isNotFound(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.Code == "NoSuchKey" || er.Code == "NotFound" ||
		(er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket"))
}

func isPreconditionFailed(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.StatusCode == http.StatusPreconditionFailed || er.Code == "PreconditionFailed")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
