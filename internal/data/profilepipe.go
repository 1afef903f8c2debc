package data

// profilePipe runs a profiler in a goroutine of its own: the importer hands
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
}
