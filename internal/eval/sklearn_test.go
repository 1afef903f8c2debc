package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/reference"
)

// synthText generates a labelled text set that is learnable but not
// trivially so: four topics of unequal frequency with their own words,
// words borrowed from other topics, shared filler, one-letter tokens and
// punctuation the tokenizer must drop, and 8 % label noise.
func synthText(seed uint64, n int) []TextExample {
	topics := []struct {
		label string
		words []string
	}{
		{"sports", strings.Fields("goal match team coach league score player win season stadium referee penalty striker cup final")},
		{"tech", strings.Fields("software chip cloud server code startup data network device app update bug kernel robot model")},
		{"food", strings.Fields("recipe chef taste bread sauce dinner flavor kitchen cheese spicy menu dessert soup grill model")},
		{"travel", strings.Fields("flight hotel beach passport journey island tour museum train luggage map visa cruise season final")},
	}
	common := strings.Fields("the of and to in is it that was for on are with as this be at by from new good time year people day week great just like really very more")
	odd := []string{"a", "I", "x", "e-mail", "U.S.", "café", "naïve", "2024", "co_op"}
	cum := []float64{0.4, 0.7, 0.9, 1.0}
	rng := splitMix64{state: seed}
	unif := func() float64 { return float64(rng.next()>>11) / (1 << 53) }
	out := make([]TextExample, n)
	for i := range out {
		u, t := unif(), 0
		for u > cum[t] {
			t++
		}
		words := make([]string, 6+rng.intn(15))
		for j := range words {
			switch r := unif(); {
			case r < 0.30:
				words[j] = topics[t].words[rng.intn(len(topics[t].words))]
			case r < 0.42:
				o := topics[rng.intn(len(topics))]
				words[j] = o.words[rng.intn(len(o.words))]
			case r < 0.47:
				words[j] = odd[rng.intn(len(odd))]
			default:
				words[j] = common[rng.intn(len(common))]
			}
		}
		words[0] = strings.ToUpper(words[0][:1]) + words[0][1:]
		label := topics[t].label
		if unif() < 0.08 {
			label = topics[rng.intn(len(topics))].label
		}
		out[i] = TextExample{Text: strings.Join(words, " ") + ".", Label: label}
	}
	return out
}

func writeJSONL(t *testing.T, path string, ex []TextExample) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range ex {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type sklearnResult struct {
	Accuracy    float64  `json:"accuracy"`
	MacroF1     float64  `json:"macro_f1"`
	Predictions []string `json:"predictions"`
	TFIDF       []struct {
		Doc   int                `json:"doc"`
		Terms map[string]float64 `json:"terms"`
	} `json:"tfidf"`
}

func TestTFIDFBaselineMatchesSklearn(t *testing.T) {
	refPython := reference.Python(t, "sklearn")
	train, test := synthText(1, 600), synthText(2, 300)
	dir := t.TempDir()
	trainPath, testPath := filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "test.jsonl")
	writeJSONL(t, trainPath, train)
	writeJSONL(t, testPath, test)
	docs := []int{0, 1, 7, 42, 299}
	var docArg []string
	for _, d := range docs {
		docArg = append(docArg, strconv.Itoa(d))
	}
	for _, sublinear := range []bool{false, true} {
		t.Run("sublinear="+strconv.FormatBool(sublinear), func(t *testing.T) {
			args := []string{"../../scripts/sklearncheck/check.py", "--train", trainPath, "--test", testPath, "--docs", strings.Join(docArg, ",")}
			if sublinear {
				args = append(args, "--sublinear")
			}
			cmd := exec.Command(refPython, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("check.py: %v\n%s", err, stderr.String())
			}
			var ref sklearnResult
			if err := json.Unmarshal(out, &ref); err != nil {
				t.Fatalf("check.py output: %v\n%s", err, out)
			}

			opts := BaselineOptions{TFIDF: TFIDFOptions{Sublinear: sublinear}}
			preds, err := TFIDFPredict(train, test, opts)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Classify(preds)
			if err != nil {
				t.Fatal(err)
			}
			agree := 0
			for i, p := range preds {
				if i < len(ref.Predictions) && p.Output == ref.Predictions[i] {
					agree++
				}
			}
			t.Logf("go: accuracy %.4f macro-F1 %.4f; sklearn: accuracy %.4f macro-F1 %.4f; same prediction on %d/%d",
				m.Accuracy, m.MacroF1, ref.Accuracy, ref.MacroF1, agree, len(preds))
			if m.MacroF1 < 0.5 || m.MacroF1 > 0.99 {
				t.Errorf("macro-F1 %.4f: the synthetic task should be learnable but not trivial", m.MacroF1)
			}
			if d := math.Abs(m.MacroF1 - ref.MacroF1); d > 0.02 {
				t.Errorf("macro-F1 go %.4f vs sklearn %.4f: differ by %.4f > 0.02", m.MacroF1, ref.MacroF1, d)
			}
			compareTFIDF(t, train, test, opts.TFIDF, ref)
		})
	}
}

func compareTFIDF(t *testing.T, train, test []TextExample, opts TFIDFOptions, ref sklearnResult) {
	t.Helper()
	docs := make([]string, len(train))
	for i, e := range train {
		docs[i] = e.Text
	}
	vec, err := FitTFIDF(docs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.TFIDF) == 0 {
		t.Fatal("check.py returned no TF-IDF rows")
	}
	for _, row := range ref.TFIDF {
		x := vec.Transform(test[row.Doc].Text)
		got := map[string]float64{}
		for k, i := range x.Idx {
			got[vec.Vocab[i]] = x.Val[k]
		}
		if len(got) != len(row.Terms) {
			t.Errorf("doc %d: go has %d terms, sklearn %d", row.Doc, len(got), len(row.Terms))
		}
		for term, want := range row.Terms {
			if g, ok := got[term]; !ok || math.Abs(g-want) > 1e-6 {
				t.Errorf("doc %d term %q: go %v (present %v), sklearn %v", row.Doc, term, g, ok, want)
			}
		}
	}
}
