package data

// profilePipe runs a profiler in a goroutine of its own (and its bigram
// counter in another, see bigramPipe): the importer hands
// it records in input order, in batches over a channel with one consumer, so
// the profiler sees exactly the sequence it would see if called directly and
// the profile does not depend on scheduling. Memory in flight is bounded by
// pipeDepth+2 batches of at most pipeRecords records or about pipeBytes
// canonical bytes each.
type profilePipe struct {
	prof   *profiler
	batch  []Record
	bytes  int
	full   chan []Record
	free   chan []Record
	done   chan struct{}
	closed bool
}

const (
	pipeDepth   = 4
	pipeRecords = 256
	pipeBytes   = 1 << 20
)

func newProfilePipe(p *profiler) *profilePipe {
	p.countPairsApart()
	pp := &profilePipe{
		prof: p, full: make(chan []Record, pipeDepth),
		free: make(chan []Record, pipeDepth+1), done: make(chan struct{}),
	}
	for range pipeDepth + 1 {
		pp.free <- make([]Record, 0, pipeRecords)
	}
	pp.batch = <-pp.free
	go pp.run()
	return pp
}

func (pp *profilePipe) run() {
	defer close(pp.done)
	for b := range pp.full {
		for i := range b {
			pp.prof.add(&b[i])
		}
		clear(b) // let the records' strings go
		pp.free <- b[:0]
	}
}

// add queues one record whose canonical line has size bytes.
func (pp *profilePipe) add(r *Record, size int) {
	pp.batch = append(pp.batch, *r)
	pp.bytes += size
	if len(pp.batch) >= pipeRecords || pp.bytes >= pipeBytes {
		pp.full <- pp.batch
		pp.batch, pp.bytes = <-pp.free, 0
	}
}

// finish profiles the queued records and returns the profile.
func (pp *profilePipe) finish() *Profile {
	if len(pp.batch) > 0 && !pp.closed {
		pp.full <- pp.batch
		pp.batch = nil
	}
	pp.stop()
	return pp.prof.finish()
}

// stop ends the goroutine (after the records queued so far); Import defers
// it so an error leaves no goroutine behind.
func (pp *profilePipe) stop() {
	if !pp.closed {
		pp.closed = true
		close(pp.full)
	}
	<-pp.done
	pp.prof.stopPairs()
}

// bigramPipe hands words to a bigrams counter in a goroutine of its own, in
// order, in batches of at most wordBatchBytes of words (or one longer word)
// and wordBatchWords words; memory in flight is pipeDepth+2 batches.
type bigramPipe struct {
	batch  *wordBatch
	full   chan *wordBatch
	free   chan *wordBatch
	done   chan struct{}
	closed bool
}

// wordBatch holds words back to back with, for each, its end in bytes, its
// FNV state and whether it starts a text.
type wordBatch struct {
	bytes []byte
	ends  []int
	raws  []uint64
	first []bool
}

const (
	wordBatchBytes = 64 << 10
	wordBatchWords = 8 << 10
)

func newBigramPipe(b *bigrams) *bigramPipe {
	bp := &bigramPipe{full: make(chan *wordBatch, pipeDepth), free: make(chan *wordBatch, pipeDepth+1), done: make(chan struct{})}
	for range pipeDepth + 1 {
		bp.free <- &wordBatch{}
	}
	bp.batch = <-bp.free
	go bp.run(b)
	return bp
}

func (bp *bigramPipe) run(b *bigrams) {
	defer close(bp.done)
	for wb := range bp.full {
		start := 0
		for i, end := range wb.ends {
			b.word(wb.bytes[start:end], wb.raws[i], wb.first[i])
			start = end
		}
		wb.bytes, wb.ends, wb.raws, wb.first = wb.bytes[:0], wb.ends[:0], wb.raws[:0], wb.first[:0]
		bp.free <- wb
	}
}

// word queues one word (copied).
func (bp *bigramPipe) word(w []byte, raw uint64, first bool) {
	wb := bp.batch
	wb.bytes = append(wb.bytes, w...)
	wb.ends = append(wb.ends, len(wb.bytes))
	wb.raws = append(wb.raws, raw)
	wb.first = append(wb.first, first)
	if len(wb.bytes) >= wordBatchBytes || len(wb.ends) >= wordBatchWords {
		bp.full <- wb
		bp.batch = <-bp.free
	}
}

// stop sends the last batch and waits for the goroutine to count it and end.
func (bp *bigramPipe) stop() {
	if !bp.closed {
		bp.closed = true
		if len(bp.batch.ends) > 0 {
			bp.full <- bp.batch
		}
		close(bp.full)
	}
	<-bp.done
}
