package httpapi

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPI is the part of docs/openapi.yaml the checks read.
type openAPI struct {
	Paths map[string]map[string]struct {
		Parameters []param `yaml:"parameters"`
	} `yaml:"paths"`
}

type param struct {
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

func readOpenAPI(t *testing.T) openAPI {
	t.Helper()
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesRoutes holds docs/openapi.yaml to the routes the server
// registers: the same method and path set, every path parameter declared,
// and every query parameter a handler reads documented.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := readOpenAPI(t)
	_, rt, _ := newRouter(Options{Inference: http.NotFoundHandler(), Auth: local})
	var served, documented []string
	for _, p := range rt.patterns {
		method, path, _ := strings.Cut(p, " ")
		served = append(served, strings.ToLower(method)+" "+strings.ReplaceAll(path, "...}", "}"))
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, method+" "+path)
			for _, name := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(path, -1) {
				if !slices.ContainsFunc(op.Parameters, func(p param) bool { return p.Name == name[1] && p.In == "path" }) {
					t.Errorf("docs/openapi.yaml: %s %s does not declare path parameter %s", method, path, name[1])
				}
			}
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is served but not in docs/openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("docs/openapi.yaml documents %s, which the server does not serve", r)
		}
	}

	// Query parameters: what the handlers read (q.Get, Query().Get,
	// queryBool, queryDuration) against what the document declares.
	read := map[string]bool{}
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`(?:q\.Get|Query\(\)\.Get|queryBool\(q,|queryDuration\(q,)\s*\(?"(\w+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			read[m[1]] = true
		}
	}
	declared := map[string]bool{}
	for _, ops := range doc.Paths {
		for _, op := range ops {
			for _, p := range op.Parameters {
				if p.In == "query" {
					declared[p.Name] = true
				}
			}
		}
	}
	for name := range read {
		if !declared[name] {
			t.Errorf("a handler reads query parameter %q; docs/openapi.yaml declares it nowhere", name)
		}
	}
	for name := range declared {
		if !read[name] {
			t.Errorf("docs/openapi.yaml declares query parameter %q; no handler reads it", name)
		}
	}
	if len(read) < 10 {
		t.Errorf("found only %d query parameters in the handlers; the scan is broken", len(read))
	}
}
