package childengine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// proc is one serving process: its pipes, the calls waiting for an answer,
// and whether it is gone.
type proc struct {
	e     *Engine
	cmd   *exec.Cmd
	pid   int
	stdin *os.File

	wmu sync.Mutex // one frame at a time on stdin

	mu      sync.Mutex
	pending map[uint64]chan frame
	dead    error         // why it is gone, once it is
	gone    chan struct{} // closed when dead is set
	once    sync.Once     // kill
}

// closeAll closes pipe ends whose Close errors have nothing to add: the
// caller is already failing, or the child has exited or holds its own copy.
func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close() // #nosec G104 -- a pipe end being discarded (see closeAll)
	}
}

// start launches a serving process, sends it the spec and waits for its
// hello.
func (e *Engine) start() (*proc, error) {
	// #nosec G204 -- the serving child is this binary (or the operator's configured command), no shell
	cmd := exec.Command(e.opts.Command[0], e.opts.Command[1:]...)
	cmd.Env = append(cmd.Environ(), e.opts.Env...)
	// Its own process group, so a kill reaches anything it started; the
	// parent-death signal and stdin EOF end it when the server dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	closeAll(inR, outW, errW) // the child holds its own copies
	if err != nil {
		closeAll(inW, outR, errR)
		return nil, fmt.Errorf("start %s: %w", e.opts.Command[0], err)
	}
	p := &proc{e: e, cmd: cmd, pid: cmd.Process.Pid, stdin: inW, pending: map[uint64]chan frame{}, gone: make(chan struct{})}
	logs := make(chan struct{})
	go func() {
		defer close(logs)
		forwardLogs(errR, e.opts.Logger, p.pid)
	}()
	out := bufio.NewReaderSize(outR, 1<<20)
	hello, err := p.hello(out)
	if err != nil {
		p.kill()
		_ = cmd.Wait()
		closeAll(inW, outR)
		<-logs
		return nil, fmt.Errorf("serving process %d: %w", p.pid, err)
	}
	e.opts.Logger.Info("serving process started", "pid", hello.PID)
	go func() {
		err := p.read(out)
		p.kill()
		werr := cmd.Wait()
		closeAll(inW, outR)
		<-logs
		if werr != nil {
			err = werr // the exit status says more than a closed pipe
		}
		p.fail(err)
	}()
	return p, nil
}

// hello sends the spec and reads the process's hello within StartTimeout.
func (p *proc) hello(out *bufio.Reader) (helloReply, error) {
	var h helloReply
	f, err := jsonFrame(frameHello, 0, p.e.opts.Spec, nil)
	if err != nil {
		return h, err
	}
	if err := p.send(f); err != nil {
		return h, err
	}
	type res struct {
		f   frame
		err error
	}
	ch := make(chan res, 1)
	go func() {
		f, err := readFrame(out)
		ch <- res{f, err}
	}()
	timer := time.NewTimer(p.e.opts.StartTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return h, fmt.Errorf("read its hello: %w", r.err)
		}
		if r.f.typ != frameHello {
			return h, fmt.Errorf("%w: first answer is %q, want a hello", errProtocol, r.f.typ)
		}
		return h, decodeMeta(r.f, &h)
	case <-timer.C:
		p.kill() // unblocks the read
		<-ch
		return h, fmt.Errorf("no hello within %s", p.e.opts.StartTimeout)
	}
}

// read delivers answers to their calls until the stream ends.
func (p *proc) read(out *bufio.Reader) error {
	for {
		f, err := readFrame(out)
		if err != nil {
			return err
		}
		p.mu.Lock()
		ch := p.pending[f.id]
		delete(p.pending, f.id)
		p.mu.Unlock()
		if ch != nil {
			ch <- f // buffered 1, one answer per call
		}
	}
}

func (p *proc) register(id uint64, ch chan frame) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead != nil {
		return p.dead
	}
	p.pending[id] = ch
	return nil
}

func (p *proc) unregister(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, id)
}

// send writes one frame. A process that does not take it within
// WriteTimeout is hung: it is killed, and the supervisor starts another.
func (p *proc) send(f frame) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.stdin.SetWriteDeadline(time.Now().Add(p.e.opts.WriteTimeout)); err != nil {
		return p.unavailable(err)
	}
	err := writeFrame(p.stdin, f)
	if errs.Kind(err) == "invalid" {
		return err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		p.e.opts.Logger.Error("the serving process takes no requests; killing it", "pid", p.pid, "timeout", p.e.opts.WriteTimeout)
		p.kill()
	}
	if err != nil {
		return p.unavailable(err)
	}
	return nil
}

// fail marks p gone: its pending calls and those that come after fail.
func (p *proc) fail(cause error) {
	p.e.lost(p) // new calls wait for the next process
	p.mu.Lock()
	p.dead = p.unavailable(cause)
	p.pending = map[uint64]chan frame{}
	p.mu.Unlock()
	close(p.gone)
}

func (p *proc) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

func (p *proc) unavailable(cause error) error {
	return errs.Unavailable("the serving process (pid %d) died or stopped answering (%v); it is being restarted: retry after the Retry-After delay", p.pid, cause)
}

func (p *proc) kill() {
	p.once.Do(func() { _ = syscall.Kill(-p.pid, syscall.SIGKILL) })
}

// maxLogLine bounds one forwarded line of the child's stderr; the rest of
// a longer line is dropped.
const maxLogLine = 64 << 10

// forwardLogs re-logs the child's stderr through the parent's logger: a
// JSON slog record keeps its level, message and attributes; any other line
// (a panic's trace) is logged as a warning.
func forwardLogs(r *os.File, logger *slog.Logger, pid int) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		long := errors.Is(err, bufio.ErrBufferFull)
		forwardLine(logger, pid, bytes.TrimSpace(line))
		for errors.Is(err, bufio.ErrBufferFull) { // drop the rest of a long line
			_, err = br.ReadSlice('\n')
		}
		if long {
			logger.Warn("serving process wrote a log line over the limit; cut", "pid", pid, "limit", maxLogLine)
		}
		if err != nil {
			return
		}
	}
}

func forwardLine(logger *slog.Logger, pid int, line []byte) {
	if len(line) == 0 {
		return
	}
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // 268435456, not 2.68435456e+08
	if dec.Decode(&rec) != nil {
		logger.Warn("serving process", "pid", pid, "stderr", string(line))
		return
	}
	msg, _ := rec["msg"].(string)
	var level slog.Level
	if s, ok := rec["level"].(string); !ok || level.UnmarshalText([]byte(s)) != nil {
		level = slog.LevelInfo
	}
	attrs := []any{"pid", pid}
	for _, k := range slices.Sorted(maps.Keys(rec)) {
		if k != "msg" && k != "level" && k != "time" && k != "pid" {
			attrs = append(attrs, k, rec[k])
		}
	}
	if msg == "" {
		msg = "serving process"
	} else if !strings.HasPrefix(msg, "serving process") {
		msg = "serving process: " + msg
	}
	logger.Log(context.Background(), level, msg, attrs...)
}
