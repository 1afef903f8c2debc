package corpus

import "github.com/tailor-ml/tailor/internal/data"

// HamBodies returns, as documents, the bodies of the ham records of recs
// that an import with the default split ratios puts in the train split
// (data.SplitOf on the record id): text a base model may be pretrained on
// without ever seeing a validation or test record of the spam datasets or
// of the SFT example built from the same messages. Records with an empty
// body are left out; the order is recs' order. The title is the subject.
func HamBodies(recs []Record) []Document {
	var out []Document
	for _, r := range recs {
		if r.Label != LabelHam || r.Body == "" || data.SplitOf(r.ID, data.DefaultSplit()) != data.SplitTrain {
			continue
		}
		out = append(out, Document{ID: r.ID, Title: r.Metadata["subject"], Text: r.Body})
	}
	return out
}
