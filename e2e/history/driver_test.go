package history

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailor-ml/tailor/api"
)

// config sizes one history.
type config struct {
	Clients  int
	Ops      int // per client
	Seed     int64
	Kills    int // SIGKILLs of the server during the history
	Datasets int // dataset names the appends spread over
	Recipes  int // recipe names applied again and again
	// ReadBack is how many versions per dataset to read back at the end
	// (the newest ones and a seeded sample); 0 reads them all.
	ReadBack int
}

// driver runs clients against one server and records the history.
type driver struct {
	cfg  config
	srv  *server
	w    world
	hc   *http.Client
	base string

	mu      sync.Mutex
	history []Op
	done    atomic.Int64 // operations finished, for the killer
	skipped atomic.Int64 // reads before a write that failed, so no write was sent
}

func newDriver(cfg config, srv *server, w world) *driver {
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return &driver{cfg: cfg, srv: srv, w: w, hc: hc, base: "http://" + srv.Addr()}
}

func (d *driver) datasetName(i int) string { return fmt.Sprintf("ds%d", i) }

// run drives the clients (and the killer, if any) to completion.
func (d *driver) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < d.cfg.Clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d.client(ctx, i)
		}(i)
	}
	killErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() { killErr <- d.killer(stop) }()
	wg.Wait()
	close(stop)
	return <-killErr
}

// killer sends SIGKILL to the server at seeded points of the history (after
// so many operations finished, plus a seeded delay) and restarts it.
func (d *driver) killer(stop <-chan struct{}) error {
	if d.cfg.Kills == 0 {
		return nil
	}
	rng := rand.New(rand.NewSource(d.cfg.Seed ^ 0x5eed))
	total := d.cfg.Clients * d.cfg.Ops
	points := make([]int, d.cfg.Kills)
	for i := range points {
		points[i] = total/20 + rng.Intn(total*17/20)
	}
	sort.Ints(points)
	for _, p := range points {
		for d.done.Load() < int64(p) {
			select {
			case <-stop:
				return nil
			case <-time.After(5 * time.Millisecond):
			}
		}
		time.Sleep(time.Duration(rng.Intn(50)) * time.Millisecond)
		if err := d.srv.killRestart(); err != nil {
			return err
		}
	}
	return nil
}

func (d *driver) record(op Op) {
	d.mu.Lock()
	d.history = append(d.history, op)
	d.mu.Unlock()
	d.done.Add(1)
	if op.Outcome == Unknown {
		// The server may be down; wait for it rather than spin.
		<-d.srv.ready()
	}
}

// client runs one client's operations, mixed by its own seeded RNG.
func (d *driver) client(ctx context.Context, id int) {
	rng := rand.New(rand.NewSource(d.cfg.Seed*1_000_003 + int64(id)))
	c := api.NewClient(d.base, d.hc)
	for i := 0; i < d.cfg.Ops; i++ {
		op := Op{Client: id, Index: i}
		tag := fmt.Sprintf("c%d-o%d", id, i)
		newRecords := func() {
			for r := 0; r < 1+rng.Intn(3); r++ {
				op.Records = append(op.Records, fmt.Sprintf("%s-r%d", tag, r))
			}
		}
		if q := rng.Float64(); q < 0.10 {
			op.Model = d.w.Model
			if q < 0.085 {
				op.Kind = Feedback
				if !d.feedbackOp(ctx, c, &op, tag, rng) {
					continue
				}
			} else {
				op.Kind = Accumulate
				v, err := c.AccumulateFeedback(ctx, op.Model)
				op.Accumulated = v
				setOutcome(&op, err)
			}
			d.record(op)
			continue
		}
		p := rng.Float64()
		switch {
		case p < 0.60:
			op.Dataset = d.datasetName(rng.Intn(d.cfg.Datasets))
			newRecords()
			switch {
			case p < 0.33: // blind append
				op.Kind = Append
				d.importOp(ctx, c, &op, nil, true)
			case p < 0.53: // append on the version just read
				op.Kind = Append
				latest, ok := d.readLatest(ctx, c, &op, false)
				if !ok {
					continue
				}
				if latest == nil {
					op.Kind = Import // nothing to append to yet
				}
				d.importOp(ctx, c, &op, latest, op.Kind == Append)
			case p < 0.57: // full import: what was read plus the new records
				op.Kind = Import
				latest, ok := d.readLatest(ctx, c, &op, true)
				if !ok {
					continue
				}
				d.importOp(ctx, c, &op, latest, false)
			default: // the same records again: must create nothing
				op.Kind, op.Records = Reimport, nil
				latest, ok := d.readLatest(ctx, c, &op, true)
				if !ok || latest == nil {
					continue
				}
				op.Read, op.ExpectParent = op.ExpectParent, ""
				d.importOp(ctx, c, &op, latest, false)
			}
		case p < 0.68:
			op.Kind = ApplyRecipe
			n := rng.Intn(d.cfg.Recipes)
			op.Recipe = fmt.Sprintf("apply-%d", n)
			res, err := c.ApplyRecipe(ctx, op.Recipe+".yaml", []byte(applyText(n)))
			op.Applied = res
			setOutcome(&op, err)
		case p < 0.78:
			op.Kind, op.Recipe = StartRun, d.w.KeyedRecipe
			res, err := c.StartRun(ctx, api.RunStart{Recipe: op.Recipe})
			op.Run = res
			setOutcome(&op, err)
		case p < 0.91:
			op.Kind, op.Model, op.Alias, op.Tag = Promote, d.w.Model, d.w.Alias, tag
			op.Target = fmt.Sprintf("v%d", 1+rng.Intn(d.w.Versions))
			res, err := c.Promote(ctx, op.Model, api.Promote{Version: op.Target, Alias: op.Alias, Reason: tag, Actor: fmt.Sprintf("c%d", id),
				Override: true, OverrideReason: "history test: tiny models"})
			op.Move = res.Move
			setOutcome(&op, err)
			if op.Outcome == OK && op.Move == nil {
				op.Outcome, op.Err = Fail, "promotion answered no move (approval?)"
			}
		default:
			op.Kind, op.Model, op.Alias, op.Tag = Rollback, d.w.Model, d.w.Alias, tag
			res, err := c.Rollback(ctx, op.Model, api.Rollback{Alias: op.Alias, Reason: tag, Actor: fmt.Sprintf("c%d", id)})
			if err == nil {
				op.Move = &res
			}
			setOutcome(&op, err)
		}
		d.record(op)
	}
}

// feedbackOp classifies a text with op.Model's served alias and labels the
// answer. It returns false when the classification got no answer: then no
// label is sent.
func (d *driver) feedbackOp(ctx context.Context, c *api.Client, op *Op, tag string, rng *rand.Rand) bool {
	body, _ := json.Marshal(map[string]string{"model": op.Model, "input": "message " + tag + " about the project"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/v1/classify", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := d.hc.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		op.Request = res.Header.Get("X-Tailor-Request-Id")
	}
	if err != nil || res.StatusCode != http.StatusOK || op.Request == "" {
		d.skip()
		return false
	}
	op.Label = []string{"ham", "spam"}[rng.Intn(2)]
	res2, err := c.PostFeedback(ctx, api.Feedback{RequestID: op.Request, Label: op.Label, Actor: fmt.Sprintf("c%d", op.Client)})
	op.Labelled = res2
	setOutcome(op, err)
	if op.Outcome == OK && (res2.Label != op.Label || res2.RequestID != op.Request) {
		op.Outcome, op.Err = Fail, fmt.Sprintf("feedback answered %+v", res2)
	}
	return true
}

// readLatest reads the latest version of op.Dataset (and, with records, its
// records) and sets op.ExpectParent to it, or to NoParent when there is
// none. It returns false when the read failed: then no write is sent.
func (d *driver) readLatest(ctx context.Context, c *api.Client, op *Op, records bool) (*latestRead, bool) {
	det, err := c.Dataset(ctx, op.Dataset, "latest")
	var se *api.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		op.ExpectParent = NoParent
		return nil, true
	case err != nil:
		d.skip()
		return nil, false
	}
	op.ExpectParent = det.Version.ID
	l := &latestRead{id: det.Version.ID}
	if records {
		var buf bytes.Buffer
		if err := c.DatasetRecords(ctx, op.Dataset, det.Version.ID, "", &buf); err != nil {
			d.skip()
			return nil, false
		}
		l.records = buf.Bytes()
	}
	return l, true
}

func (d *driver) skip() {
	d.skipped.Add(1)
	d.done.Add(1)
	<-d.srv.ready()
}

type latestRead struct {
	id      string
	records []byte // JSON lines
}

// importOp sends op's records (after what was read, for a full import) as
// a dataset import, with op.ExpectParent as its precondition.
func (d *driver) importOp(ctx context.Context, c *api.Client, op *Op, read *latestRead, appendMode bool) {
	var body bytes.Buffer
	if read != nil && !appendMode {
		body.Write(read.records)
	}
	for i, id := range op.Records {
		label := "ham"
		if i%2 == 1 {
			label = "spam"
		}
		fmt.Fprintf(&body, "{\"id\":%q,\"text\":\"record %s about the project\",\"label\":%q}\n", id, id, label)
	}
	res, err := c.ImportDataset(ctx, &body, api.DatasetImportOptions{Name: op.Dataset, Task: "classify", Format: "jsonl",
		Append: appendMode, ExpectParent: op.ExpectParent})
	op.Imported = res
	setOutcome(op, err)
}

// setOutcome classifies err: nil is OK, a 4xx a definite failure, anything
// else (no answer, a cut connection, a 5xx) indeterminate.
func setOutcome(op *Op, err error) {
	if err == nil {
		op.Outcome = OK
		return
	}
	op.Err = err.Error()
	var se *api.StatusError
	if errors.As(err, &se) {
		op.Status = se.Status
		if se.Status >= 400 && se.Status < 500 {
			op.Outcome = Fail
			return
		}
	}
	op.Outcome = Unknown
}

// final reads the server's state after the history.
func (d *driver) final(ctx context.Context) (Final, error) {
	c := api.NewClient(d.base, d.hc)
	f := Final{Datasets: map[string]DatasetState{}, Recipes: map[string][]api.RecipeVersion{}, Aliases: map[string][]api.AliasMove{},
		SetupTags: []string{d.w.SetupTag}}
	// Let the keyed run finish, so a failure shows.
	runs, err := c.Runs(ctx, "")
	if err != nil {
		return f, err
	}
	for _, r := range runs {
		if _, err := waitRun(ctx, c, r.ID); err != nil {
			return f, err
		}
	}
	if f.Runs, err = c.Runs(ctx, ""); err != nil {
		return f, err
	}
	rng := rand.New(rand.NewSource(d.cfg.Seed ^ 0xf1a1))
	for i := 0; i < d.cfg.Datasets; i++ {
		name := d.datasetName(i)
		st, err := readDataset(ctx, c, name, d.cfg.ReadBack, rng)
		if err != nil {
			return f, err
		}
		f.Datasets[name] = st
	}
	for i := 0; i < d.cfg.Recipes; i++ {
		name := fmt.Sprintf("apply-%d", i)
		vs, err := c.Recipes(ctx, name)
		if err != nil {
			return f, err
		}
		f.Recipes[name] = vs
	}
	// A last accumulation takes in every label still pending.
	f.FeedbackModel = d.w.Model
	if _, err := c.AccumulateFeedback(ctx, d.w.Model); err != nil {
		return f, fmt.Errorf("accumulate feedback: %w", err)
	}
	if f.Feedback, err = readDataset(ctx, c, d.w.Model+"-feedback", 0, rng); err != nil {
		return f, err
	}
	if f.Feedback.Latest != "" {
		recs, err := records(ctx, c, d.w.Model+"-feedback", f.Feedback.Latest)
		if err != nil {
			return f, err
		}
		f.FeedbackLabels = map[string]string{}
		for _, r := range recs {
			f.FeedbackLabels[r.ID] = r.Label
		}
	}
	hist, err := c.AliasHistory(ctx, d.w.Model, d.w.Alias)
	if err != nil {
		return f, err
	}
	f.Aliases[d.w.Model+"@"+d.w.Alias] = hist
	f.Fsck, err = c.Fsck(ctx)
	return f, err
}

// readDataset lists a dataset's versions, streams latest's records, and
// reads back up to n versions (all when n is 0) to compare their record
// counts.
func readDataset(ctx context.Context, c *api.Client, name string, n int, rng *rand.Rand) (DatasetState, error) {
	st := DatasetState{ReadBack: map[string]int{}}
	var err error
	if st.Versions, err = c.Datasets(ctx, name); err != nil {
		return st, err
	}
	det, err := c.Dataset(ctx, name, "latest")
	var se *api.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return st, nil
	case err != nil:
		return st, err
	}
	st.Latest = det.Version.ID
	ids, err := recordIDs(ctx, c, name, st.Latest)
	if err != nil {
		return st, fmt.Errorf("read latest of %s: %w", name, err)
	}
	st.LatestRecords = ids
	pick := make([]int, len(st.Versions))
	for i := range pick {
		pick[i] = i
	}
	if n > 0 && len(pick) > n {
		// The newest n/2 and a seeded sample of the rest.
		newest := pick[len(pick)-n/2:]
		rest := pick[:len(pick)-n/2]
		rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		pick = append(rest[:n-n/2], newest...)
	}
	for _, i := range pick {
		v := st.Versions[i]
		ids, err := recordIDs(ctx, c, name, v.ID)
		if err != nil {
			st.ReadBack[v.ID] = -1
			st.ReadErrors = append(st.ReadErrors, fmt.Sprintf("version %s cannot be read back: %v", short(v.ID), err))
			continue
		}
		st.ReadBack[v.ID] = len(ids)
	}
	return st, nil
}

// recordIDs streams a version's records and returns their ids.
func recordIDs(ctx context.Context, c *api.Client, name, ref string) ([]string, error) {
	recs, err := records(ctx, c, name, ref)
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids, err
}

type record struct{ ID, Label string }

// records streams a version's records and returns their ids and labels.
func records(ctx context.Context, c *api.Client, name, ref string) ([]record, error) {
	var buf bytes.Buffer
	if err := c.DatasetRecords(ctx, name, ref, "", &buf); err != nil {
		return nil, err
	}
	var out []record
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec struct {
			ID    string `json:"id"`
			Label string `json:"label"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("record line %q: %w", line, err)
		}
		out = append(out, record{rec.ID, rec.Label})
	}
	return out, sc.Err()
}
