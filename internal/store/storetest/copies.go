package storetest

import (
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func copyOf(kind, name, id, region, srcName, srcRegion string, i int) store.Copy {
	return store.Copy{Kind: kind, Name: name, ID: id, Region: region, SourceName: srcName, SourceID: id, SourceRegion: srcRegion, CreatedAt: at(i)}
}

// testModelRegion: a model version keeps its region.
func testModelRegion(t *testing.T, s store.Store) {
	v := modelVersion("spam", "a", 0)
	v.Region = "us"
	got, _, err := s.PutModelVersion(ctx, v, nil)
	must(t, err)
	read, err := s.ModelVersion(ctx, "spam", "v1")
	must(t, err)
	if got.Region != "us" || read.Region != "us" {
		t.Errorf("region stored %q, read %q; want us", got.Region, read.Region)
	}
	byID, err := s.ModelVersionByID(ctx, v.ID)
	must(t, err)
	equal(t, "by id", byID, read)
}

// testCopies: each kind's copy is its row and its record, written with its
// events in one transaction; a bad record writes neither.
func testCopies(t *testing.T, s store.Store) {
	ds := dataset("mail", "d1", 0)
	must2(s.PutDatasetVersion(ctx, ds, nil))(t)
	bs := base("tiny", "b1", 1)
	_, _, err := s.PutBaseVersion(ctx, bs, nil)
	must(t, err)
	mv := modelVersion("spam", "m1", 2)
	mv.Region = "eu"
	_, _, err = s.PutModelVersion(ctx, mv, nil)
	must(t, err)

	prev := lastSeq(t, s)
	dc := ds
	dc.Name, dc.Region, dc.Parent, dc.CreatedAt = "mail-us", "us", "", at(3)
	sent := []store.Event{ev("copy.created", "mail-us")}
	got, err := s.PutDatasetCopy(ctx, dc, copyOf(store.CopyDataset, "mail-us", ds.ID, "us", "mail", "eu", 3), sent)
	must(t, err)
	checkEvents(t, s, prev, sent, got)
	read, err := s.DatasetVersion(ctx, "mail-us", "")
	must(t, err)
	equal(t, "dataset copy", read, dc)

	bc := bs
	bc.Name, bc.Region, bc.CreatedAt = "tiny-us", "us", at(4)
	storedBase, _, err := s.PutBaseCopy(ctx, bc, copyOf(store.CopyBase, "tiny-us", bs.ID, "us", "tiny", "eu", 4), nil)
	must(t, err)
	if storedBase.Version != 1 || storedBase.Region != "us" {
		t.Errorf("base copy stored as %+v, want v1 in us", storedBase)
	}
	mc := mv
	mc.Name, mc.Region, mc.CreatedAt = "spam-us", "us", at(5)
	storedModel, _, err := s.PutModelCopy(ctx, mc, copyOf(store.CopyModel, "spam-us", mv.ID, "us", "spam", "eu", 5), nil)
	must(t, err)
	if storedModel.Version != 1 || storedModel.Region != "us" {
		t.Errorf("model copy stored as %+v, want v1 in us", storedModel)
	}

	for _, k := range []struct{ kind, name, src, id string }{
		{store.CopyDataset, "mail-us", "mail", ds.ID}, {store.CopyBase, "tiny-us", "tiny", bs.ID}, {store.CopyModel, "spam-us", "spam", mv.ID}} {
		c, err := s.CopySource(ctx, k.kind, k.name, k.id)
		must(t, err)
		if c.Seq == 0 || c.SourceName != k.src || c.SourceRegion != "eu" || c.Region != "us" || c.CreatedAt.IsZero() {
			t.Errorf("%s copy record %+v", k.kind, c)
		}
		cs, err := s.CopiesOf(ctx, k.kind, k.src, k.id)
		must(t, err)
		if len(cs) != 1 || cs[0] != c {
			t.Errorf("%s copies of %s: %+v, want [%+v]", k.kind, k.src, cs, c)
		}
		_, err = s.CopySource(ctx, k.kind, k.src, k.id)
		wantKind(t, "source is no copy", err, errs.ErrNotFound, k.src)
	}

	// A record that does not match its row, or a row that cannot be
	// written, leaves nothing behind.
	prev = lastSeq(t, s)
	bad := dc
	bad.Name, bad.Region = "mail-ap", "ap"
	_, err = s.PutDatasetCopy(ctx, bad, copyOf(store.CopyDataset, "mail-ap", ds.ID, "eu", "mail", "eu", 6), []store.Event{ev("copy.created", "x")})
	wantKind(t, "mismatched record", err, errs.ErrInvalid, "mail-ap", `"ap"`)
	_, err = s.PutDatasetCopy(ctx, dc, copyOf(store.CopyDataset, "mail-us", ds.ID, "us", "mail", "eu", 6), []store.Event{ev("copy.created", "x")})
	wantKind(t, "copy again", err, errs.ErrConflict)
	_, _, err = s.PutBaseCopy(ctx, bc, store.Copy{Kind: store.CopyBase, Name: "tiny-us", ID: bs.ID, Region: "us"}, nil)
	wantKind(t, "record without source", err, errs.ErrInvalid, "source_name")
	if lastSeq(t, s) != prev {
		t.Error("a refused copy appended events")
	}
	if _, err := s.DatasetVersion(ctx, "mail-ap", ""); !errorsIsNotFound(err) {
		t.Errorf("refused dataset copy was written: %v", err)
	}
	cs, err := s.CopiesOf(ctx, store.CopyDataset, "mail", ds.ID)
	must(t, err)
	if len(cs) != 1 {
		t.Errorf("refused copies left records: %+v", cs)
	}
}

func errorsIsNotFound(err error) bool { return errs.Kind(err) == "not_found" }

func must2(_ []store.Event, err error) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		must(t, err)
	}
}
