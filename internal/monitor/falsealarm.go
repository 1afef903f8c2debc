package monitor

import (
	"math/rand/v2"
	"time"
)

// FalseAlarmOptions configures MeasureAlarms.
type FalseAlarmOptions struct {
	Windows    int     // resampled windows; 500
	WindowSize int     // requests per window; 200
	Seed       uint64  // resampling seed
	Detect     Options // as Evaluate
}

// AlarmReport is the share of resampled windows that alarmed.
type AlarmReport struct {
	Windows    int            `json:"windows"`
	Alarmed    int            `json:"alarmed"`
	Fraction   float64        `json:"fraction"`
	ByDetector map[string]int `json:"by_detector"` // windows each detector flagged
	WindowSize int            `json:"window_size"`
}

// MeasureAlarms draws Windows windows of WindowSize requests from pool,
// uniformly with replacement (PCG seeded with Seed), evaluates each against
// p and reports how many alarmed. With pool drawn from the reference
// distribution the fraction is the false-alarm rate; with a shifted pool it
// is the detection rate.
func MeasureAlarms(p *Profile, pool []Request, o FalseAlarmOptions) (*AlarmReport, error) {
	if o.Windows <= 0 {
		o.Windows = 500
	}
	if o.WindowSize <= 0 {
		o.WindowSize = 200
	}
	if len(pool) == 0 {
		return &AlarmReport{ByDetector: map[string]int{}}, nil
	}
	ex := p.Extractor()
	feats := make([]Features, len(pool))
	for i, r := range pool {
		feats[i] = ex.Extract(r)
	}
	// #nosec G404 -- seeded simulation, reproducible by design; not a secret
	rng := rand.New(rand.NewPCG(o.Seed, 0x66616c7365)) // "false"
	rep := &AlarmReport{Windows: o.Windows, WindowSize: o.WindowSize, ByDetector: map[string]int{}}
	t0 := time.Unix(0, 0).UTC()
	for k := 0; k < o.Windows; k++ {
		st, err := NewState(WindowSpec{Kind: CountWindows, Size: o.WindowSize, Buckets: p.Buckets, Labels: len(p.Labels)})
		if err != nil {
			return nil, err
		}
		st.Next = int64(k)
		var w *Window
		for i := 0; i < o.WindowSize; i++ {
			if c := st.Add(feats[rng.IntN(len(feats))], t0); len(c) > 0 {
				w = c[0]
			}
		}
		res, err := Evaluate(p, w, o.Detect)
		if err != nil {
			return nil, err
		}
		if res.Drifted {
			rep.Alarmed++
		}
		for _, d := range res.Detectors {
			if d.Drifted {
				rep.ByDetector[d.Name]++
			}
		}
	}
	rep.Fraction = float64(rep.Alarmed) / float64(rep.Windows)
	return rep, nil
}
