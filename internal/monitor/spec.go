package monitor

import (
	"encoding/json"
	"time"

	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/specyaml"
)

// Spec declares one monitor: which served model alias it watches, how
// requests are grouped into windows, how the detectors decide, and when
// feedback becomes a new dataset version. It is versioned like a recipe:
// its id is the sha256 of its normalized form. docs/monitoring.md has the
// YAML reference.
type Spec struct {
	Name        string       `yaml:"name" json:"name"`
	Description string       `yaml:"description,omitempty" json:"description,omitempty"`
	Model       string       `yaml:"model" json:"model"`
	Alias       string       `yaml:"alias" json:"alias"`
	Window      SpecWindow   `yaml:"window" json:"window"`
	Detectors   SpecDetect   `yaml:"detectors,omitempty" json:"detectors"`
	Feedback    SpecFeedback `yaml:"feedback,omitempty" json:"feedback"`
}

// SpecWindow is the window part of a Spec.
type SpecWindow struct {
	Kind  string `yaml:"kind" json:"kind"`                     // count | time
	Size  int    `yaml:"size,omitempty" json:"size,omitempty"` // count windows
	Every string `yaml:"every,omitempty" json:"every,omitempty"`
}

// SpecDetect sets the detectors' Options; zero fields take their defaults.
type SpecDetect struct {
	Level        float64 `yaml:"level,omitempty" json:"level,omitempty"`
	Correction   string  `yaml:"correction,omitempty" json:"correction,omitempty"`
	PSIThreshold float64 `yaml:"psi_threshold,omitempty" json:"psi_threshold,omitempty"`
	JSThreshold  float64 `yaml:"js_threshold,omitempty" json:"js_threshold,omitempty"`
	AccuracyDrop float64 `yaml:"accuracy_drop,omitempty" json:"accuracy_drop,omitempty"`
	MinCount     int     `yaml:"min_count,omitempty" json:"min_count,omitempty"`
	Seed         uint64  `yaml:"seed,omitempty" json:"seed,omitempty"`
}

// SpecFeedback is the feedback accumulation policy.
type SpecFeedback struct {
	// Dataset is the dataset whose new versions collect the labels
	// (default "<model>-feedback").
	Dataset string `yaml:"dataset,omitempty" json:"dataset,omitempty"`
	// Every is how many new labels make a new version (default 100; a
	// trigger may ask for one sooner).
	Every int `yaml:"every,omitempty" json:"every,omitempty"`
}

// ParseSpec reads a monitor spec from YAML. Errors name the file, the line
// and the field.
func ParseSpec(file string, src []byte) (*Spec, error) {
	var s Spec
	if err := specyaml.Decode(file, src, "monitor needs name, model, alias and window", &s, s.check); err != nil {
		return nil, err
	}
	return &s, nil
}

// bad reports a broken rule of a field (specyaml.Bad).
var bad = specyaml.Bad

func (s *Spec) check() error {
	switch {
	case !ident.IsName(s.Name):
		return bad("name", "%q: use %s", s.Name, ident.NameRule)
	case !ident.IsName(s.Model):
		return bad("model", "%q: name a registered model, such as spam-lora", s.Model)
	case !ident.IsAlias(s.Alias):
		return bad("alias", "%q: name the served alias to watch, such as champion", s.Alias)
	case len(s.Description) > 1024:
		return bad("description", "%d characters; at most 1024", len(s.Description))
	}
	w := s.Window
	switch w.Kind {
	case CountWindows:
		if w.Size < 10 || w.Size > 1_000_000 {
			return bad("window.size", "%d: count windows need 10 to 1000000 requests", w.Size)
		}
		if w.Every != "" {
			return bad("window.every", "is for time windows; count windows take size")
		}
		if minCount := s.Options().withDefaults().MinCount; w.Size < minCount {
			return bad("window.size", "%d is below detectors.min_count %d: such windows would never be flagged; raise the size or lower min_count", w.Size, minCount)
		}
	case TimeWindows:
		d, err := time.ParseDuration(w.Every)
		if err != nil || d < time.Second {
			return bad("window.every", "%q: want a duration of at least 1s, such as 15m or 1h", w.Every)
		}
		if w.Size != 0 {
			return bad("window.size", "is for count windows; time windows take every")
		}
	default:
		return bad("window.kind", "%q: use count or time", w.Kind)
	}
	d := s.Detectors
	switch {
	case d.Level < 0 || d.Level >= 1:
		return bad("detectors.level", "%v: want a level in (0, 1), such as 0.005", d.Level)
	case d.Correction != "" && d.Correction != BH && d.Correction != HolmCorrection:
		return bad("detectors.correction", "%q: use bh or holm", d.Correction)
	case d.PSIThreshold < 0 || d.JSThreshold < 0 || d.AccuracyDrop < 0 || d.MinCount < 0:
		return bad("detectors", "thresholds and min_count must not be negative")
	}
	if f := s.Feedback; f.Dataset != "" && !ident.IsName(f.Dataset) {
		return bad("feedback.dataset", "%q: use %s", f.Dataset, ident.NameRule)
	} else if f.Every < 0 || f.Every > 1_000_000 {
		return bad("feedback.every", "%d: want 1 to 1000000 labels per version", f.Every)
	}
	return nil
}

// WithDefaults fills the documented defaults.
func (s Spec) WithDefaults() Spec {
	if s.Feedback.Dataset == "" {
		s.Feedback.Dataset = s.Model + "-feedback"
	}
	if s.Feedback.Every == 0 {
		s.Feedback.Every = 100
	}
	return s
}

// Normalize returns the spec's canonical form: its JSON with defaults
// filled, keys in declaration order, no comments.
func (s *Spec) Normalize() ([]byte, error) { return json.Marshal(s.WithDefaults()) }

// ID is the sha256 of the normalized form.
func (s *Spec) ID() (string, error) {
	n, err := s.Normalize()
	if err != nil {
		return "", err
	}
	return specyaml.ID(n), nil
}

// Options are the detector options the spec sets.
func (s *Spec) Options() Options {
	d := s.Detectors
	return Options{Level: d.Level, Correction: d.Correction, PSIThreshold: d.PSIThreshold, JSThreshold: d.JSThreshold,
		AccuracyDrop: d.AccuracyDrop, MinCount: d.MinCount, Seed: d.Seed}
}

// WindowSpec is the window spec for a profile with the given buckets and
// labels.
func (s *Spec) WindowSpec(p *Profile) WindowSpec {
	ws := WindowSpec{Kind: s.Window.Kind, Size: s.Window.Size, Buckets: p.Buckets, Labels: len(p.Labels)}
	if s.Window.Kind == TimeWindows {
		d, _ := time.ParseDuration(s.Window.Every)
		ws.Every = Duration(d)
	}
	return ws
}
