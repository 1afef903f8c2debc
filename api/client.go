package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// StatusError is returned for a non-2xx answer; it carries the server's
// error kind so callers can branch on it without matching text.
type StatusError struct {
	Status int
	Err    Error
}

func (e *StatusError) Error() string { return e.Err.Message }

// ErrUnreachable is wrapped by the error of a request that could not be
// sent (connection refused, DNS): nothing happened, retrying later is safe.
// ErrNoAnswer is wrapped when the request was sent but its answer was lost
// (connection reset or closed): it may or may not have taken effect.
var (
	ErrUnreachable = errors.New("cannot reach tailor server")
	ErrNoAnswer    = errors.New("no answer")
)

// Client talks to a Tailor server over HTTP.
type Client struct {
	base    string
	http    *http.Client
	token   string // sent as Authorization: Bearer on every request
	project string // sent as X-Tailor-Project when set
}

// WithToken returns a copy of c that sends token ("tlr_<id>_<secret>",
// from `tailor token create` or the server's bootstrap-token file) as
// Authorization: Bearer on every request.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// WithProject returns a copy of c whose requests act in project (the
// X-Tailor-Project header) instead of the token's own project.
func (c *Client) WithProject(project string) *Client {
	cp := *c
	cp.project = project
	return &cp
}

// NewClient returns a client for the server at base ("http://127.0.0.1:7070"
// or "127.0.0.1:7070"). A nil hc means a client without a timeout, since
// uploads and follows can be long.
func NewClient(base string, hc *http.Client) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string, out any) error {
	return c.doHeader(ctx, method, path, q, contentType(ctype), body, out)
}

// contentType is the request header that names ctype ("" sends none).
func contentType(ctype string) http.Header {
	if ctype == "" {
		return nil
	}
	return http.Header{"Content-Type": {ctype}}
}

func (c *Client) doHeader(ctx context.Context, method, path string, q url.Values, hdr http.Header, body io.Reader, out any) error {
	resp, err := c.send(ctx, method, path, q, body, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.project != "" {
		req.Header.Set("X-Tailor-Project", c.project)
	}
	resp, err := c.http.Do(req)
	if err != nil && ctx.Err() == nil {
		if opErr := (*net.OpError)(nil); errors.As(err, &opErr) && opErr.Op == "dial" {
			return nil, fmt.Errorf("%w at %s (is `tailor server` running? set --server or TAILOR_SERVER): %w", ErrUnreachable, c.base, err)
		}
		return nil, fmt.Errorf("%w from %s: the request may or may not have taken effect; read the state before retrying: %w", ErrNoAnswer, c.base, err)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb ErrorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &eb) != nil || eb.Error.Message == "" {
			eb.Error = Error{Kind: "internal", Message: fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))}
		}
		return nil, &StatusError{Status: resp.StatusCode, Err: eb.Error}
	}
	return resp, nil
}

func (c *Client) jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	return bytes.NewReader(b), err
}

// DatasetImportOptions are the query parameters of a dataset import.
type DatasetImportOptions struct {
	Name     string
	Task     string // classify | sft
	Format   string // jsonl | csv; empty infers from FileName
	FileName string
	Region   string
	Owner    string
	Split    string // "0.8,0.1,0.1"; empty for the default
	Append   bool   // new version = latest version + these records
	// SkipExisting, with Append, skips records whose id is already in the
	// latest version, so retrying an append whose answer was lost is safe.
	SkipExisting bool
	// ExpectParent makes the import a compare-and-set: it fails with 409
	// (kind "conflict") unless the dataset's latest version is this id, or,
	// for "none", unless the dataset has no version yet. Sent as If-Match /
	// If-None-Match: *. Empty: the new version follows whatever is latest.
	ExpectParent string
}

// ExpectNone is DatasetImportOptions.ExpectParent for "no version yet".
const ExpectNone = "none"

// ImportDataset streams r to the server as a new dataset version.
func (c *Client) ImportDataset(ctx context.Context, r io.Reader, o DatasetImportOptions) (DatasetImport, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("task", o.Task)
	set("format", o.Format)
	set("filename", o.FileName)
	set("region", o.Region)
	set("owner", o.Owner)
	set("split", o.Split)
	if o.Append {
		q.Set("append", "true")
	}
	if o.SkipExisting {
		q.Set("skip_existing", "true")
	}
	hdr := contentType("application/octet-stream")
	switch o.ExpectParent {
	case "":
	case ExpectNone:
		hdr.Set("If-None-Match", "*")
	default:
		hdr.Set("If-Match", `"`+o.ExpectParent+`"`)
	}
	var out DatasetImport
	err := c.doHeader(ctx, "POST", "/v1/datasets/"+url.PathEscape(o.Name)+"/versions", q, hdr, r, &out)
	return out, err
}

// Datasets lists dataset versions, of one name or of all when name is "".
func (c *Client) Datasets(ctx context.Context, name string) ([]DatasetVersion, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var out []DatasetVersion
	return out, c.do(ctx, "GET", "/v1/datasets", q, nil, "", &out)
}

// Dataset returns one version ("latest", a version id or an id prefix).
func (c *Client) Dataset(ctx context.Context, name, ref string) (DatasetDetail, error) {
	var out DatasetDetail
	return out, c.do(ctx, "GET", "/v1/datasets/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref)), nil, nil, "", &out)
}

// DiffDatasets compares two versions of a dataset.
func (c *Client) DiffDatasets(ctx context.Context, name, a, b string) (json.RawMessage, error) {
	var out json.RawMessage
	q := url.Values{"a": {a}, "b": {orLatest(b)}}
	return out, c.do(ctx, "GET", "/v1/datasets/"+url.PathEscape(name)+"/diff", q, nil, "", &out)
}

// DatasetRecords streams the records of a version (one split, or all when
// split is "") as raw JSON lines to w.
func (c *Client) DatasetRecords(ctx context.Context, name, ref, split string, w io.Writer) error {
	q := url.Values{}
	if split != "" {
		q.Set("split", split)
	}
	resp, err := c.send(ctx, "GET", "/v1/datasets/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref))+"/records", q, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// ImportBase uploads a tar stream of a Hugging Face model folder.
func (c *Client) ImportBase(ctx context.Context, name, region string, tarStream io.Reader) (BaseImport, error) {
	q := url.Values{}
	if region != "" {
		q.Set("region", region)
	}
	var out BaseImport
	return out, c.do(ctx, "POST", "/v1/bases/"+url.PathEscape(name)+"/versions", q, tarStream, "application/x-tar", &out)
}

// ImportBaseFromRun records the model a pretraining run produced as a base.
func (c *Client) ImportBaseFromRun(ctx context.Context, name, runID string) (BaseImport, error) {
	var out BaseImport
	q := url.Values{"from_run": {runID}}
	return out, c.do(ctx, "POST", "/v1/bases/"+url.PathEscape(name)+"/versions", q, nil, "", &out)
}

// Bases lists base versions, of one name or all.
func (c *Client) Bases(ctx context.Context, name string) ([]BaseVersion, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var out []BaseVersion
	return out, c.do(ctx, "GET", "/v1/bases", q, nil, "", &out)
}

// Base returns one base version by selector ref ("latest", "v2", an id, an alias).
func (c *Client) Base(ctx context.Context, name, ref string) (BaseVersion, error) {
	var out BaseVersion
	return out, c.do(ctx, "GET", "/v1/bases/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref)), nil, nil, "", &out)
}

// ApplyRecipe stores a recipe's YAML text as a version if it changed.
func (c *Client) ApplyRecipe(ctx context.Context, fileName string, yamlText []byte) (RecipeApply, error) {
	var out RecipeApply
	q := url.Values{"filename": {fileName}}
	return out, c.do(ctx, "POST", "/v1/recipes", q, bytes.NewReader(yamlText), "application/yaml", &out)
}

// Recipes lists recipe versions, of one name or all.
func (c *Client) Recipes(ctx context.Context, name string) ([]RecipeVersion, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var out []RecipeVersion
	return out, c.do(ctx, "GET", "/v1/recipes", q, nil, "", &out)
}

// Recipe returns one recipe version.
func (c *Client) Recipe(ctx context.Context, name, ref string) (RecipeVersion, error) {
	var out RecipeVersion
	return out, c.do(ctx, "GET", "/v1/recipes/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref)), nil, nil, "", &out)
}

// StartRun queues a run (or returns the earlier succeeded one with the same key).
func (c *Client) StartRun(ctx context.Context, s RunStart) (Run, error) {
	body, err := c.jsonBody(s)
	if err != nil {
		return Run{}, err
	}
	var out Run
	return out, c.do(ctx, "POST", "/v1/runs", nil, body, "application/json", &out)
}

// StartEval queues an eval run of a model version on a dataset split.
func (c *Client) StartEval(ctx context.Context, s EvalStart) (Run, error) {
	body, err := c.jsonBody(s)
	if err != nil {
		return Run{}, err
	}
	var out Run
	return out, c.do(ctx, "POST", "/v1/evals", nil, body, "application/json", &out)
}

// Runs lists runs, optionally filtered by state.
func (c *Client) Runs(ctx context.Context, state string) ([]Run, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	var out []Run
	return out, c.do(ctx, "GET", "/v1/runs", q, nil, "", &out)
}

// Run returns one run.
func (c *Client) Run(ctx context.Context, id string) (Run, error) {
	var out Run
	return out, c.do(ctx, "GET", "/v1/runs/"+url.PathEscape(id), nil, nil, "", &out)
}

// CancelRun asks the server to cancel a queued or running run.
func (c *Client) CancelRun(ctx context.Context, id string) (Run, error) {
	var out Run
	return out, c.do(ctx, "POST", "/v1/runs/"+url.PathEscape(id)+"/cancel", nil, nil, "", &out)
}

// RunLogs calls fn for each log line after seq `after`. With follow, it keeps
// streaming until the run reaches a terminal state or ctx ends.
func (c *Client) RunLogs(ctx context.Context, id string, after int64, follow bool, fn func(RunLog) error) error {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.send(ctx, "GET", "/v1/runs/"+url.PathEscape(id)+"/logs", q, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readNDJSON(resp.Body, fn)
}

// Lineage returns the input graph of a run or an adapter digest.
func (c *Client) Lineage(ctx context.Context, id string) (LineageNode, error) {
	var out LineageNode
	return out, c.do(ctx, "GET", "/v1/lineage/"+url.PathEscape(id), nil, nil, "", &out)
}

// Events calls fn for each event after seq `after`; with follow it streams
// (server-sent events) until ctx ends or fn returns an error.
func (c *Client) Events(ctx context.Context, after int64, follow bool, fn func(Event) error) error {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.send(ctx, "GET", "/v1/events", q, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readSSE(resp.Body, fn)
}

// Fsck asks the server to re-hash every blob and check every reference.
func (c *Client) Fsck(ctx context.Context) (FsckReport, error) {
	var out FsckReport
	return out, c.do(ctx, "POST", "/v1/fsck", nil, nil, "", &out)
}

// GC asks the server to remove what nothing refers to (see GCOptions).
func (c *Client) GC(ctx context.Context, o GCOptions) (GCReport, error) {
	var out GCReport
	q := url.Values{"dry_run": {strconv.FormatBool(o.DryRun)}, "grace": {o.Grace.String()}, "keep_checkpoints": {o.KeepCheckpoints.String()}}
	return out, c.do(ctx, "POST", "/v1/gc", q, nil, "", &out)
}

// Health returns nil when the server answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, "GET", "/v1/health", nil, nil, "", nil)
}

func orLatest(ref string) string {
	if ref == "" {
		return "latest"
	}
	return ref
}

func readNDJSON[T any](r io.Reader, fn func(T) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("decode stream line: %w", err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return ignoreCanceled(sc.Err())
}

// readSSE reads "data: {json}" frames separated by blank lines.
func readSSE[T any](r io.Reader, fn func(T) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) == 0 {
				continue
			}
			var v T
			if err := json.Unmarshal(data, &v); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			data = data[:0]
			if err := fn(v); err != nil {
				return err
			}
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimSpace(line[5:])...)
		}
	}
	return ignoreCanceled(sc.Err())
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// ApplyMonitor stores a monitor spec (a new version only if it changed).
func (c *Client) ApplyMonitor(ctx context.Context, fileName string, yamlText []byte) (MonitorApply, error) {
	var out MonitorApply
	q := url.Values{"filename": {fileName}}
	return out, c.do(ctx, "POST", "/v1/monitors", q, bytes.NewReader(yamlText), "application/yaml", &out)
}

// Monitors lists every monitor's status.
func (c *Client) Monitors(ctx context.Context) ([]MonitorStatus, error) {
	var out []MonitorStatus
	return out, c.do(ctx, "GET", "/v1/monitors", nil, nil, "", &out)
}

// Monitor returns one monitor's status.
func (c *Client) Monitor(ctx context.Context, name string) (MonitorStatus, error) {
	var out MonitorStatus
	return out, c.do(ctx, "GET", "/v1/monitors/"+url.PathEscape(name), nil, nil, "", &out)
}

// MonitorProfile returns a monitor's reference profile as JSON (the
// layout of internal/monitor's Profile).
func (c *Client) MonitorProfile(ctx context.Context, name string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, "GET", "/v1/monitors/"+url.PathEscape(name)+"/profile", nil, nil, "", &out)
}

// MonitorWindows lists a monitor's evaluated windows with index > after
// (-1: all).
func (c *Client) MonitorWindows(ctx context.Context, name string, after int64) ([]MonitorWindow, error) {
	var out []MonitorWindow
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	return out, c.do(ctx, "GET", "/v1/monitors/"+url.PathEscape(name)+"/windows", q, nil, "", &out)
}

// PostFeedback sends the true label of a served request.
func (c *Client) PostFeedback(ctx context.Context, f Feedback) (FeedbackResult, error) {
	body, err := c.jsonBody(f)
	if err != nil {
		return FeedbackResult{}, err
	}
	var out FeedbackResult
	return out, c.do(ctx, "POST", "/v1/feedback", nil, body, "application/json", &out)
}

// AccumulateFeedback turns model's pending labels into a new version of its
// feedback dataset now (nil: nothing was pending).
func (c *Client) AccumulateFeedback(ctx context.Context, model string) (*DatasetVersion, error) {
	var out struct {
		Accumulated *DatasetVersion `json:"accumulated"`
	}
	return out.Accumulated, c.do(ctx, "POST", "/v1/feedback/"+url.PathEscape(model)+"/accumulate", nil, nil, "", &out)
}

// CreateToken mints an API token in the client's project (admin).
func (c *Client) CreateToken(ctx context.Context, t TokenCreate) (TokenCreated, error) {
	var out TokenCreated
	body, err := c.jsonBody(t)
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, "POST", "/v1/tokens", nil, body, "application/json", &out)
}

// Tokens lists the tokens with a role in the client's project (admin).
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out []Token
	return out, c.do(ctx, "GET", "/v1/tokens", nil, nil, "", &out)
}

// RevokeToken revokes the token with id (tlr_<id>).
func (c *Client) RevokeToken(ctx context.Context, id string) (Token, error) {
	var out Token
	return out, c.do(ctx, "POST", "/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, nil, "", &out)
}

// RevokeTokenWithReason revokes the token with id and says why; the
// reason is kept in the token.revoked event.
func (c *Client) RevokeTokenWithReason(ctx context.Context, id, reason string) (Token, error) {
	var out Token
	body, err := c.jsonBody(TokenRevoke{Reason: reason})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, "POST", "/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, body, "application/json", &out)
}

// CreateProject creates a project and returns it with the caller's admin
// token in it.
func (c *Client) CreateProject(ctx context.Context, name string) (ProjectCreated, error) {
	var out ProjectCreated
	body, err := c.jsonBody(ProjectCreate{Name: name})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, "POST", "/v1/projects", nil, body, "application/json", &out)
}

// Projects lists the projects the caller holds a role in.
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var out []Project
	return out, c.do(ctx, "GET", "/v1/projects", nil, nil, "", &out)
}

// WhoAmI returns who the client's requests act as, and where.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var out WhoAmI
	return out, c.do(ctx, "GET", "/v1/whoami", nil, nil, "", &out)
}
