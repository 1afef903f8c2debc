// Package loadgen drives a serving endpoint with concurrent classify
// requests and reports throughput and latency percentiles: the load test
// for many adapters on one base and for hot swaps under load (see
// docs/serving.md for the command and measured numbers).
//
// It imports only the standard library.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Options configure Run. Zero values take the defaults in brackets.
type Options struct {
	URL         string   // server root, e.g. http://127.0.0.1:8080 (required)
	Models      []string // request i goes to Models[i % len] (required)
	Inputs      []string // request i classifies Inputs[i % len] (required)
	Concurrency int      // parallel clients [8]
	Requests    int      // total requests [1000]
	Client      *http.Client
}

// Result summarizes a run.
type Result struct {
	Requests   int
	Errors     int         // transport errors and non-200 answers
	Status     map[int]int // by HTTP status (0: transport error)
	Versions   map[string]int
	Duration   time.Duration
	Throughput float64 // requests per second
	P50, P99   time.Duration
	FirstError string
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %v: %.1f req/s, p50 %v, p99 %v, %d errors",
		r.Requests, r.Duration.Round(time.Millisecond), r.Throughput, r.P50, r.P99, r.Errors)
}

// Run sends the requests and waits for every answer.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.URL == "" || len(o.Models) == 0 || len(o.Inputs) == 0 {
		return Result{}, fmt.Errorf("loadgen: URL, models and inputs are required")
	}
	if o.Concurrency < 1 {
		o.Concurrency = 8
	}
	if o.Requests < 1 {
		o.Requests = 1000
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency}}
	}
	lat := make([]time.Duration, o.Requests)
	res := Result{Requests: o.Requests, Status: map[int]int{}, Versions: map[string]int{}}
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t0 := time.Now()
				status, version, err := one(ctx, o, i)
				d := time.Since(t0)
				mu.Lock()
				lat[i] = d
				res.Status[status]++
				res.Versions[version]++
				if status != http.StatusOK {
					res.Errors++
					if res.FirstError == "" && err != nil {
						res.FirstError = err.Error()
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range o.Requests {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	res.Duration = time.Since(start)
	res.Throughput = float64(o.Requests) / res.Duration.Seconds()
	slices.Sort(lat)
	res.P50, res.P99 = lat[len(lat)*50/100], lat[min(len(lat)-1, len(lat)*99/100)]
	return res, ctx.Err()
}

func one(ctx context.Context, o Options, i int) (int, string, error) {
	body, _ := json.Marshal(map[string]any{"model": o.Models[i%len(o.Models)], "input": o.Inputs[i%len(o.Inputs)]})
	req, err := http.NewRequestWithContext(ctx, "POST", o.URL+"/v1/classify", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header.Get("X-Tailor-Model-Version"), err
}
