package monitor

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/reference"
)

// fisherTables are (x, n, xr, nr): the window's share against the
// reference's, from none to all and the rare shares unknown_byte_rate meets.
var fisherTables = [][4]int64{
	{0, 100, 5, 2903}, {1, 100, 5, 2903}, {2, 100, 5, 2903}, {3, 100, 5, 2903}, {7, 100, 5, 2903},
	{10, 100, 300, 2903}, {50, 100, 1451, 2903}, {100, 100, 2903, 2903}, {0, 100, 0, 2903},
	{3, 10, 1, 12}, {9, 10, 2, 12}, {40, 200, 5, 50},
}

func TestFisherExactAgainstScipy(t *testing.T) {
	py := reference.Python(t, "scipy")
	var rows []string
	for _, tb := range fisherTables {
		rows = append(rows, fmt.Sprintf("[[%d,%d],[%d,%d]]", tb[0], tb[1]-tb[0], tb[2], tb[3]-tb[2]))
	}
	script := "import json,sys\nfrom scipy.stats import fisher_exact\n" +
		"print(json.dumps([fisher_exact(t)[1] for t in [" + strings.Join(rows, ",") + "]]))\n"
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		t.Fatalf("scipy: %v", err)
	}
	var want []float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("scipy output %q: %v", out, err)
	}
	for i, tb := range fisherTables {
		got := FisherExact(tb[0], tb[1], tb[2], tb[3])
		if math.Abs(got-want[i]) > 1e-9*math.Max(1, want[i]) && math.Abs(got-want[i]) > 1e-12 {
			t.Errorf("FisherExact%v = %.15g, scipy %.15g", tb, got, want[i])
		}
	}
}

func TestHistDispersion(t *testing.T) {
	hist := func(texts []string) []int64 {
		h := make([]int64, 64)
		for _, tx := range texts {
			for _, g := range Tokenize(tx) {
				h[Bucket(g, 64)]++
			}
		}
		return h
	}
	id := func(toks []string) []string { return toks }
	// Each text repeats one word: all of a text's tokens share a bucket,
	// far more clustered than a multinomial.
	var clustered []string
	for i := range 40 {
		w := fmt.Sprintf("w%d", i%8)
		clustered = append(clustered, strings.Repeat(w+" ", 20))
	}
	if phi := HistDispersion(clustered, hist(clustered), 64, id); phi < 10 {
		t.Errorf("clustered texts: φ = %.3g, want large", phi)
	}
	// Every text holds the same words in the same proportions: less
	// variable than a multinomial, floored at 1.
	var even []string
	for range 40 {
		even = append(even, "alpha beta gamma delta alpha beta gamma delta")
	}
	if phi := HistDispersion(even, hist(even), 64, id); phi != 1 {
		t.Errorf("identical texts: φ = %v, want the floor 1", phi)
	}
	if phi := HistDispersion([]string{"one text only"}, hist([]string{"one text only"}), 64, id); phi != 1 {
		t.Errorf("one text: φ = %v, want 1", phi)
	}
}
