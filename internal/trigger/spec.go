package trigger

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/specyaml"
)

// The events a trigger can react to (the value of on.event).
const (
	OnDrift    = "drift"    // monitor.drift.detected
	OnFeedback = "feedback" // feedback.accumulated
	OnBase     = "base"     // base.version.created
	OnSchedule = "schedule" // a cron tick
)

// EventTypes maps on.event to the stored event type it reacts to (none
// for schedule: its ticks come from the clock).
var EventTypes = map[string]string{
	OnDrift:    "monitor.drift.detected",
	OnFeedback: "feedback.accumulated",
	OnBase:     "base.version.created",
}

// Spec declares one trigger. Its id is the sha256 of its normalized form;
// docs/triggers.md has the YAML reference.
type Spec struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	On          On       `yaml:"on" json:"on"`
	When        When     `yaml:"when,omitempty" json:"when"`
	Do          []Action `yaml:"do" json:"do"`
	Limits      Limits   `yaml:"limits,omitempty" json:"limits"`
}

// On says which events fire the trigger. The filters are optional; an
// empty filter matches every value.
type On struct {
	Event   string `yaml:"event" json:"event"`
	Model   string `yaml:"model,omitempty" json:"model,omitempty"`     // drift, feedback: the model named in the event
	Monitor string `yaml:"monitor,omitempty" json:"monitor,omitempty"` // drift: the monitor that detected it
	Base    string `yaml:"base,omitempty" json:"base,omitempty"`       // base: the base model name
	Cron    string `yaml:"cron,omitempty" json:"cron,omitempty"`       // schedule: five fields, UTC
}

// When are the conditions a matching event must also meet.
type When struct {
	// MinSeverity (drift): the share of detectors that drifted, in [0, 1].
	MinSeverity float64 `yaml:"min_severity,omitempty" json:"min_severity,omitempty"`
	// MinNewRecords (feedback): labelled records added by the accumulation.
	MinNewRecords int `yaml:"min_new_records,omitempty" json:"min_new_records,omitempty"`
}

// Limits bound how often and how much a trigger acts.
type Limits struct {
	// Debounce: an event within this long of the trigger's last firing is
	// skipped, with the reason recorded (default 0: none).
	Debounce string `yaml:"debounce,omitempty" json:"debounce,omitempty"`
	// MaxConcurrent firings of this trigger run at once; more wait,
	// pending, in order (default 1).
	MaxConcurrent int `yaml:"max_concurrent,omitempty" json:"max_concurrent,omitempty"`
	// Budget, when set, caps what the runs of the trigger's firings use
	// over a period: once reached, new firings are refused (recorded as
	// skipped, with the limit and the measured value).
	Budget *Budget `yaml:"budget,omitempty" json:"budget,omitempty"`
}

// Budget caps the summed usage (docs/metering.md) of the runs a trigger's
// firings started within the last Period; zero fields are no cap.
type Budget struct {
	// Period is the window the usage is summed over (default 24h; at
	// most 8760h).
	Period       string  `yaml:"period,omitempty" json:"period,omitempty"`
	MaxDuration  string  `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	MaxCostUSD   float64 `yaml:"max_cost_usd,omitempty" json:"max_cost_usd,omitempty"`
	MaxEnergyKWh float64 `yaml:"max_energy_kwh,omitempty" json:"max_energy_kwh,omitempty"`
}

// PeriodDuration is Period parsed (24h when unset).
func (b *Budget) PeriodDuration() time.Duration {
	if d, err := time.ParseDuration(b.Period); err == nil && d > 0 {
		return d
	}
	return 24 * time.Hour
}

// MaxDurationValue is MaxDuration parsed (0: no cap).
func (b *Budget) MaxDurationValue() time.Duration {
	d, _ := time.ParseDuration(b.MaxDuration)
	return d
}

func (b *Budget) check() error {
	if b.Period != "" {
		d, err := time.ParseDuration(b.Period)
		if err != nil || d <= 0 || d > 365*24*time.Hour {
			return bad("limits.budget.period", "%q: want a duration from 1s to 8760h, such as 24h", b.Period)
		}
	}
	if b.MaxDuration != "" {
		d, err := time.ParseDuration(b.MaxDuration)
		if err != nil || d < 0 {
			return bad("limits.budget.max_duration", "%q: want a duration such as 2h", b.MaxDuration)
		}
	}
	if b.MaxCostUSD < 0 || math.IsNaN(b.MaxCostUSD) || math.IsInf(b.MaxCostUSD, 0) {
		return bad("limits.budget.max_cost_usd", "%v: want an amount >= 0", b.MaxCostUSD)
	}
	if b.MaxEnergyKWh < 0 || math.IsNaN(b.MaxEnergyKWh) || math.IsInf(b.MaxEnergyKWh, 0) {
		return bad("limits.budget.max_energy_kwh", "%v: want an amount >= 0", b.MaxEnergyKWh)
	}
	if b.MaxDurationValue() == 0 && b.MaxCostUSD == 0 && b.MaxEnergyKWh == 0 {
		return bad("limits.budget", "no limit: set max_duration, max_cost_usd or max_energy_kwh")
	}
	return nil
}

// Action is one step of Do: exactly one of its fields is set.
type Action struct {
	Retrain       *Retrain       `yaml:"retrain,omitempty" json:"retrain,omitempty"`
	Rebase        *Rebase        `yaml:"rebase,omitempty" json:"rebase,omitempty"`
	Evaluate      *Evaluate      `yaml:"evaluate,omitempty" json:"evaluate,omitempty"`
	PromoteIfPass *PromoteIfPass `yaml:"promote_if_pass,omitempty" json:"promote_if_pass,omitempty"`
	Rollback      *Rollback      `yaml:"rollback,omitempty" json:"rollback,omitempty"`
	Webhook       *Webhook       `yaml:"webhook,omitempty" json:"webhook,omitempty"`
}

// Retrain runs the named recipe (incremental or full is the recipe's
// choice: its data selector and method) and waits for the run; its model
// version is what later evaluate and promote_if_pass steps act on.
type Retrain struct {
	Recipe string `yaml:"recipe" json:"recipe"`
}

// Rebase re-applies a recipe to a new base version: it runs Recipe with
// its base selector replaced by Base and waits for the run; then, when
// Compare points at a version of the model, it evaluates that version (on
// the old base) and the new one on the new run's dataset version's test
// split, so the firing shows old base and new base side by side. A later
// promote_if_pass moves the alias only if the new version's gates pass
// (a not_worse_than champion gate compares the two across bases).
type Rebase struct {
	// Recipe is "name" or "name@ref": a full recipe, not an incremental
	// one (an adapter only continues training on its own base), such as
	// the version that made the first champion.
	Recipe string `yaml:"recipe" json:"recipe"`
	// Base is the base version to run on, "name@ref"; default (and only
	// then may it be left out) the version a base event created.
	Base string `yaml:"base,omitempty" json:"base,omitempty"`
	// Compare is the alias of the current version to compare with
	// (default champion).
	Compare string `yaml:"compare,omitempty" json:"compare,omitempty"`
}

// Evaluate runs an eval of a model version on a dataset split and waits
// for it; its report is attached to the version.
type Evaluate struct {
	// Model is "name@ref"; default: the version an earlier retrain made.
	Model   string `yaml:"model,omitempty" json:"model,omitempty"`
	Dataset string `yaml:"dataset" json:"dataset"`
	Split   string `yaml:"split,omitempty" json:"split,omitempty"` // default test
}

// PromoteIfPass points Alias at the version an earlier retrain made, only
// if its eval gates passed.
type PromoteIfPass struct {
	Alias string `yaml:"alias" json:"alias"`
}

// Rollback moves Alias of Model back to its previous target.
type Rollback struct {
	// Model defaults to the model the event names (drift, feedback).
	Model string `yaml:"model,omitempty" json:"model,omitempty"`
	Alias string `yaml:"alias" json:"alias"`
}

// Webhook POSTs the firing as JSON to URL. Loopback, link-local, private
// and unspecified addresses are refused unless AllowPrivate.
type Webhook struct {
	URL          string `yaml:"url" json:"url"`
	AllowPrivate bool   `yaml:"allow_private,omitempty" json:"allow_private,omitempty"`
}

// The action kinds, as written in YAML.
const (
	ActRetrain       = "retrain"
	ActRebase        = "rebase"
	ActEvaluate      = "evaluate"
	ActPromoteIfPass = "promote_if_pass"
	ActRollback      = "rollback"
	ActWebhook       = "webhook"
)

// Kind names the action that is set ("" when none or several are).
func (a Action) Kind() string {
	var kinds []string
	if a.Retrain != nil {
		kinds = append(kinds, ActRetrain)
	}
	if a.Rebase != nil {
		kinds = append(kinds, ActRebase)
	}
	if a.Evaluate != nil {
		kinds = append(kinds, ActEvaluate)
	}
	if a.PromoteIfPass != nil {
		kinds = append(kinds, ActPromoteIfPass)
	}
	if a.Rollback != nil {
		kinds = append(kinds, ActRollback)
	}
	if a.Webhook != nil {
		kinds = append(kinds, ActWebhook)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// isAddress reports whether s is "name" or "name@ref" (ident's grammar).
func isAddress(s string) bool {
	_, err := ident.ParseAddress("model", s)
	return err == nil
}

// ParseSpec reads a trigger spec from YAML. Errors name the file, the line
// and the field; unknown fields are refused.
func ParseSpec(file string, src []byte) (*Spec, error) {
	var s Spec
	if err := specyaml.Decode(file, src, "trigger needs name, on and do", &s, s.check); err != nil {
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
	case len(s.Description) > 1024:
		return bad("description", "%d characters; at most 1024", len(s.Description))
	}
	if err := s.checkOn(); err != nil {
		return err
	}
	if err := s.checkWhen(); err != nil {
		return err
	}
	if len(s.Do) == 0 {
		return bad("do", "no actions: list at least one of retrain, rebase, evaluate, promote_if_pass, rollback, webhook")
	}
	if len(s.Do) > 20 {
		return bad("do", "%d actions; at most 20", len(s.Do))
	}
	retrained := false
	for i, a := range s.Do {
		if err := s.checkAction(i, a, retrained); err != nil {
			return err
		}
		retrained = retrained || a.Retrain != nil || a.Rebase != nil
	}
	l := s.Limits
	if l.Debounce != "" {
		d, err := time.ParseDuration(l.Debounce)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			return bad("limits.debounce", "%q: want a duration from 0s to 720h, such as 1m or 6h", l.Debounce)
		}
	}
	if l.MaxConcurrent < 0 || l.MaxConcurrent > 100 {
		return bad("limits.max_concurrent", "%d: want 1 to 100 (0: the default, 1)", l.MaxConcurrent)
	}
	if l.Budget != nil {
		return l.Budget.check()
	}
	return nil
}

func (s *Spec) checkOn() error {
	o := s.On
	for _, f := range []struct{ field, v string }{{"on.model", o.Model}, {"on.monitor", o.Monitor}, {"on.base", o.Base}} {
		if f.v != "" && !ident.IsName(f.v) {
			return bad(f.field, "%q: use %s", f.v, ident.NameRule)
		}
	}
	only := func(field, v string, events ...string) error {
		for _, e := range events {
			if o.Event == e {
				return nil
			}
		}
		if v != "" {
			return bad(field, "is for on.event %s, not %s", strings.Join(events, " or "), o.Event)
		}
		return nil
	}
	switch o.Event {
	case OnDrift, OnFeedback, OnBase, OnSchedule:
	default:
		return bad("on.event", "%q: use drift, feedback, base or schedule", o.Event)
	}
	if err := only("on.model", o.Model, OnDrift, OnFeedback); err != nil {
		return err
	}
	if err := only("on.monitor", o.Monitor, OnDrift); err != nil {
		return err
	}
	if err := only("on.base", o.Base, OnBase); err != nil {
		return err
	}
	if err := only("on.cron", o.Cron, OnSchedule); err != nil {
		return err
	}
	if o.Event == OnSchedule {
		if o.Cron == "" {
			return bad("on.cron", "a schedule needs a cron expression, such as \"0 3 * * *\" (03:00 UTC daily)")
		}
		if _, err := ParseCron(o.Cron); err != nil {
			return bad("on.cron", "%v", err)
		}
	}
	return nil
}

func (s *Spec) checkWhen() error {
	w := s.When
	if w.MinSeverity != 0 {
		if s.On.Event != OnDrift {
			return bad("when.min_severity", "is for on.event drift, not %s", s.On.Event)
		}
		if w.MinSeverity < 0 || w.MinSeverity > 1 {
			return bad("when.min_severity", "%v: want a share of drifted detectors in [0, 1], such as 0.5", w.MinSeverity)
		}
	}
	if w.MinNewRecords != 0 {
		if s.On.Event != OnFeedback {
			return bad("when.min_new_records", "is for on.event feedback, not %s", s.On.Event)
		}
		if w.MinNewRecords < 0 || w.MinNewRecords > 100_000_000 {
			return bad("when.min_new_records", "%d: want 1 to 100000000", w.MinNewRecords)
		}
	}
	return nil
}

func (s *Spec) checkAction(i int, a Action, retrained bool) error {
	at := fmt.Sprintf("do[%d]", i)
	kind := a.Kind()
	if kind == "" {
		return bad(at, "want exactly one of retrain, rebase, evaluate, promote_if_pass, rollback, webhook")
	}
	at += "." + kind
	switch kind {
	case ActRetrain:
		if !ident.IsName(a.Retrain.Recipe) {
			return bad(at+".recipe", "%q: name a stored recipe, such as spam-lora", a.Retrain.Recipe)
		}
	case ActRebase:
		rb := a.Rebase
		if !isAddress(rb.Recipe) {
			return bad(at+".recipe", "%q: want name or name@ref of a stored recipe, such as spam-lora@v1", rb.Recipe)
		}
		if rb.Base == "" && s.On.Event != OnBase {
			return bad(at+".base", "a %s event creates no base version: name one, such as tailor-tiny@v2", s.On.Event)
		}
		if rb.Base != "" && !isAddress(rb.Base) {
			return bad(at+".base", "%q: want name or name@ref, such as tailor-tiny@v2", rb.Base)
		}
		if rb.Compare != "" && ident.CheckAliasName(rb.Compare) != nil {
			return bad(at+".compare", "%q: name an alias, such as champion", rb.Compare)
		}
	case ActEvaluate:
		e := a.Evaluate
		if e.Model == "" && !retrained {
			return bad(at+".model", "no model: name one (such as spam-lora@champion) or retrain before evaluating")
		}
		if e.Model != "" && !isAddress(e.Model) {
			return bad(at+".model", "%q: want name or name@ref, such as spam-lora@champion", e.Model)
		}
		if !isAddress(e.Dataset) {
			return bad(at+".dataset", "%q: want name or name@version, such as spam-holdout", e.Dataset)
		}
		switch e.Split {
		case "", "train", "validation", "test":
		default:
			return bad(at+".split", "%q: want train, validation or test", e.Split)
		}
	case ActPromoteIfPass:
		if !retrained {
			return bad(at, "promotes the version a retrain or rebase made: put one before it")
		}
		if ident.CheckAliasName(a.PromoteIfPass.Alias) != nil {
			return bad(at+".alias", "%q: name an alias, such as champion", a.PromoteIfPass.Alias)
		}
	case ActRollback:
		r := a.Rollback
		if r.Model == "" && s.On.Event != OnDrift && s.On.Event != OnFeedback {
			return bad(at+".model", "a %s event names no model: say which model to roll back", s.On.Event)
		}
		if r.Model != "" && !ident.IsName(r.Model) {
			return bad(at+".model", "%q: name a registered model, such as spam-lora", r.Model)
		}
		if ident.CheckAliasName(r.Alias) != nil {
			return bad(at+".alias", "%q: name an alias, such as champion", r.Alias)
		}
	case ActWebhook:
		u, err := url.Parse(a.Webhook.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return bad(at+".url", "%s: want an http or https URL without credentials", RedactURL(a.Webhook.URL))
		}
	}
	return nil
}

// WithDefaults fills the documented defaults.
func (s Spec) WithDefaults() Spec {
	if s.Limits.MaxConcurrent == 0 {
		s.Limits.MaxConcurrent = 1
	}
	if s.Limits.Budget != nil && s.Limits.Budget.Period == "" {
		b := *s.Limits.Budget
		b.Period = "24h"
		s.Limits.Budget = &b
	}
	if s.Limits.Debounce == "" {
		s.Limits.Debounce = "0s"
	}
	do := make([]Action, len(s.Do))
	for i, a := range s.Do {
		if a.Evaluate != nil && a.Evaluate.Split == "" {
			e := *a.Evaluate
			e.Split = "test"
			a.Evaluate = &e
		}
		do[i] = a
	}
	s.Do = do
	return s
}

// DebounceDuration is Limits.Debounce parsed (0 when unset).
func (s *Spec) DebounceDuration() time.Duration {
	d, _ := time.ParseDuration(s.Limits.Debounce)
	return d
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
