package corpus

import (
	"fmt"
	"testing"

	"github.com/tailor-ml/tailor/internal/data"
)

func TestHamBodies(t *testing.T) {
	var recs []Record
	splits := map[string]int{}
	for i := range 400 {
		label := LabelHam
		if i%3 == 0 {
			label = LabelSpam
		}
		body := fmt.Sprintf("body %d", i)
		if i%10 == 1 {
			body = ""
		}
		id := fmt.Sprintf("easy-ham-1/%05d", i)
		recs = append(recs, Record{ID: id, Label: label, Body: body, Metadata: map[string]string{"subject": "s"}})
		splits[data.SplitOf(id, data.DefaultSplit())]++
	}
	// The fixture must exercise every split, or the check below is empty.
	for _, s := range []string{data.SplitTrain, data.SplitValidation, data.SplitTest} {
		if splits[s] == 0 {
			t.Fatalf("no record falls in %s: %v", s, splits)
		}
	}
	got := HamBodies(recs)
	want := 0
	for _, r := range recs {
		if r.Label == LabelHam && r.Body != "" && data.SplitOf(r.ID, data.DefaultSplit()) == data.SplitTrain {
			want++
		}
	}
	if len(got) != want || want == 0 {
		t.Fatalf("%d bodies, want %d", len(got), want)
	}
	last := -1
	for _, d := range got {
		var i int
		fmt.Sscanf(d.ID, "easy-ham-1/%05d", &i)
		r := recs[i]
		switch {
		case i <= last:
			t.Errorf("%s out of order", d.ID)
		case r.Label != LabelHam:
			t.Errorf("%s is %s", d.ID, r.Label)
		case data.SplitOf(d.ID, data.DefaultSplit()) != data.SplitTrain:
			t.Errorf("%s is not a train record", d.ID)
		case d.Text != r.Body || d.Title != "s":
			t.Errorf("%s: text %q title %q", d.ID, d.Text, d.Title)
		}
		last = i
	}
}
