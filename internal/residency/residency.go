// Package residency owns the residency policy: for each compute region,
// which regions a run or a server computing there may read from and write
// to, and the one decision every check in Tailor calls (Policy.Read and
// Policy.Write). It parses the policy file (YAML, strict, errors naming the
// file, line and field) and imports only internal/errs, internal/specyaml
// and the standard library; it never imports the store or the app.
package residency

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/specyaml"
)

// regionRE is the grammar of a region name (as recipe.Validate's).
var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// IsRegion reports whether s is a well-formed region name.
func IsRegion(s string) bool { return regionRE.MatchString(s) }

// Rule is what compute in one region may touch.
type Rule struct {
	Read  []string `yaml:"read" json:"read"`
	Write []string `yaml:"write" json:"write"`
}

// Policy maps each compute region to its Rule. A compute region with no
// rule may read and write nothing. Source names where it came from
// ("default" or the file), for error messages.
type Policy struct {
	Regions map[string]Rule `yaml:"regions" json:"regions"`
	Source  string          `yaml:"-" json:"-"`
}

// Default is the policy without a file: each of regions may read and write
// only itself.
func Default(regions ...string) *Policy {
	p := &Policy{Regions: map[string]Rule{}, Source: "default policy"}
	for _, r := range regions {
		p.Regions[r] = Rule{Read: []string{r}, Write: []string{r}}
	}
	return p
}

// Parse reads a policy file:
//
//	regions:
//	  eu: {read: [eu], write: [eu]}
//	  us: {read: [us, eu-public], write: [us]}
//
// Every region named must be well formed, each list non-empty and without
// duplicates. Errors name the file, the line and the field.
func Parse(file string, src []byte) (*Policy, error) {
	p := &Policy{Source: "policy " + file}
	if err := specyaml.Decode(file, src, "residency policy needs regions: {REGION: {read: [...], write: [...]}}", p, p.check); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Policy) check() error {
	if len(p.Regions) == 0 {
		return specyaml.Bad("regions", "empty: name at least one compute region with its read and write lists")
	}
	for _, r := range p.ComputeRegions() {
		if !IsRegion(r) {
			return specyaml.Bad("regions."+r, "region %q: use lowercase letters, digits and '-'", r)
		}
		rule := p.Regions[r]
		for _, l := range []struct {
			field string
			list  []string
		}{{"read", rule.Read}, {"write", rule.Write}} {
			field := "regions." + r + "." + l.field
			if len(l.list) == 0 {
				return specyaml.Bad(field, "empty: list the regions compute in %s may %s (at least %s itself)", r, l.field, r)
			}
			for i, x := range l.list {
				if !IsRegion(x) {
					return specyaml.Bad(fmt.Sprintf("%s[%d]", field, i), "region %q: use lowercase letters, digits and '-'", x)
				}
				if slices.Index(l.list, x) != i {
					return specyaml.Bad(fmt.Sprintf("%s[%d]", field, i), "region %q listed twice", x)
				}
			}
		}
	}
	return nil
}

// ComputeRegions lists the regions that have a rule, sorted.
func (p *Policy) ComputeRegions() []string {
	out := make([]string, 0, len(p.Regions))
	for r := range p.Regions {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// AllRegions lists every region the policy names (compute regions and the
// regions in their lists), sorted, once each.
func (p *Policy) AllRegions() []string {
	var out []string
	for r, rule := range p.Regions {
		out = append(out, r)
		out = append(out, rule.Read...)
		out = append(out, rule.Write...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Object is what a check is about: Kind ("dataset", "base", "model"…),
// Name (with its version, as the user would write it) and the Region
// it lives in (or is to be written to).
type Object struct {
	Kind, Name, Region string
}

func (o Object) String() string { return o.Kind + " " + o.Name }

// Op is what compute does with an object.
type Op string

const (
	OpRead  Op = "read"
	OpWrite Op = "write"
)

// Read decides whether compute in region compute may read o: nil, or an
// errs.ErrForbidden naming o, its region, the compute region and the rule.
func (p *Policy) Read(compute string, o Object) error { return p.Check(compute, OpRead, o) }

// Write decides whether compute in region compute may write o into
// o.Region.
func (p *Policy) Write(compute string, o Object) error { return p.Check(compute, OpWrite, o) }

// Check is the one decision: may compute in region compute do op on o.
func (p *Policy) Check(compute string, op Op, o Object) error {
	rule, ok := p.Regions[compute]
	if !ok {
		return errs.Forbidden("residency: %s is in region %q, but the %s has no rule for compute region %q, so nothing may be %s there; add regions.%s to the policy",
			o, o.Region, p.Source, compute, pastTense(op), compute)
	}
	list := rule.Read
	if op == OpWrite {
		list = rule.Write
	}
	if slices.Contains(list, o.Region) {
		return nil
	}
	where := fmt.Sprintf("%s: regions.%s.%s = [%s]", p.Source, compute, op, strings.Join(list, ", "))
	if op == OpWrite {
		return errs.Forbidden("residency: %s would be written to region %q, but compute in region %q may not write there (%s); write it to an allowed region, or do this on a server in a region that may",
			o, o.Region, compute, where)
	}
	return errs.Forbidden("residency: %s is in region %q, but compute in region %q may not read it (%s); copy it with `tailor copy` to a region the policy lets %s read, or do this on a server in a region that may",
		o, o.Region, compute, where, compute)
}

func pastTense(op Op) string {
	if op == OpWrite {
		return "written"
	}
	return "read"
}
