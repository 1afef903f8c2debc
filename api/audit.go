package api

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"time"
)

// AuditEntry is one record of the hash-chained audit log (docs/security.md,
// "Audit log"): who (Actor, Project) did what (Action) to which object,
// the object's state digests before and after, and the chain hashes.
type AuditEntry struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	Project    string    `json:"project"`
	Action     string    `json:"action"`
	ObjectKind string    `json:"object_kind"`
	ObjectID   string    `json:"object_id"`
	EventSeq   int64     `json:"event_seq"`
	Before     string    `json:"before"`
	After      string    `json:"after"`
	PrevHash   string    `json:"prev_hash"`
	Hash       string    `json:"hash"`
}

// AuditPage is one page of GET /v1/audit. Oldest first (the default),
// Next is the after= of the following page (the Seq of the last entry);
// newest first (order=newest), it is the before= of the following, older
// page (the Seq of the last entry; 0 when none is older). Entries is
// shorter than the limit at the end of the log. Total is the number of
// the request's project's entries when the page was read. Seqs are one
// sequence for the whole server, so a project's entries have gaps and
// Total is not its newest Seq.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    int64        `json:"next"`
	Total   int64        `json:"total"`
}

// AuditBreak names the first entry that failed verification and the check
// it failed: "seq_gap", "prev_hash_mismatch", "hash_mismatch",
// "before_mismatch" or "event_mismatch".
type AuditBreak struct {
	Seq   int64  `json:"seq"`
	Check string `json:"check"`
	Want  string `json:"want"`
	Got   string `json:"got"`
}

// AuditVerification is the result of walking the whole chain. HeadHash is
// the last verified entry's hash: keep it outside the server to detect a
// chain rewritten from the start.
type AuditVerification struct {
	OK       bool        `json:"ok"`
	Entries  int64       `json:"entries"`
	HeadSeq  int64       `json:"head_seq"`
	HeadHash string      `json:"head_hash"`
	Broken   *AuditBreak `json:"broken,omitempty"`
}

// AuditEntries returns up to limit entries after seq after (limit 0: the
// server's default page).
func (c *Client) AuditEntries(ctx context.Context, after int64, limit int) (AuditPage, error) {
	var out AuditPage
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return out, c.do(ctx, "GET", "/v1/audit", q, nil, "", &out)
}

// AuditNewest returns up to limit entries older than seq before, newest
// first (before 0: from the newest entry; limit 0: the server's default
// page). Pass the page's Next as the following page's before; it is 0
// after the oldest entry.
func (c *Client) AuditNewest(ctx context.Context, before int64, limit int) (AuditPage, error) {
	var out AuditPage
	q := url.Values{"order": {"newest"}}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return out, c.do(ctx, "GET", "/v1/audit", q, nil, "", &out)
}

// VerifyAudit asks the server to walk the chain.
func (c *Client) VerifyAudit(ctx context.Context) (AuditVerification, error) {
	var out AuditVerification
	return out, c.do(ctx, "GET", "/v1/audit/verify", nil, nil, "", &out)
}

// ExportAudit streams the whole log as JSON lines, one AuditEntry each,
// oldest first. The caller closes the body; a transfer cut short ends in a
// read error, not a clean EOF.
func (c *Client) ExportAudit(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.send(ctx, "GET", "/v1/audit/export", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
