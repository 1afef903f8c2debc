package run

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
)

// Executor starts workers. The local executor runs child processes; the
// Kubernetes executor (internal/run/kube) runs Jobs whose workers reach the
// server through Remote.
type Executor interface {
	Start(ctx context.Context, spec Spec) (Process, error)
}

// Process is a started worker.
type Process interface {
	// Messages delivers the worker's output lines; it is closed when the
	// worker's stdout ends.
	Messages() <-chan Message
	// Wait waits for the worker to exit; a non-nil error carries the tail of
	// its stderr.
	Wait() error
	// Kill stops the worker at once.
	Kill()
}

// LocalExecutor runs `Command... ` as a child process per run.
type LocalExecutor struct {
	// Command is the worker command line, e.g. [self, "worker", "train"].
	Command []string
	// Env is appended to the child's environment.
	Env    []string
	Logger *slog.Logger
}

var _ Executor = (*LocalExecutor)(nil)

// Start launches the worker and writes spec to its stdin. Stdin stays open
// for the life of the worker: when the server dies the pipe closes and the
// worker stops; on Linux the parent-death signal kills it as well.
func (e *LocalExecutor) Start(ctx context.Context, spec Spec) (Process, error) {
	if len(e.Command) == 0 {
		return nil, fmt.Errorf("start worker: no command configured")
	}
	// The run id on the command line names the process in ps and pgrep.
	args := append(append([]string{}, e.Command[1:]...), "--run", spec.RunID)
	// #nosec G204 -- the worker child is this binary (or the operator's configured command), args built in code, no shell
	cmd := exec.Command(e.Command[0], args...)
	cmd.Env = append(cmd.Environ(), e.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &localProcess{cmd: cmd, msgs: make(chan Message, 64), stdin: stdin}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", e.Command[0], err)
	}
	line, _ := json.Marshal(spec)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		p.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("send spec to worker: %w", err)
	}
	logger := e.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	go p.read(stdout, logger)
	return p, nil
}

type localProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	msgs   chan Message
	stderr tailBuffer
	once   sync.Once
}

// maxMessageBytes bounds one line of a worker's stdout.
const maxMessageBytes = 8 << 20

// read turns the worker's stdout into messages until it ends. A line over
// maxMessageBytes is skipped (and logged), never left unread: a worker
// blocked on a full pipe would hang its run.
func (p *localProcess) read(r io.Reader, logger *slog.Logger) {
	defer close(p.msgs)
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	size := 0 // bytes of the current line, kept or not
	for {
		chunk, err := br.ReadSlice('\n')
		size += len(chunk)
		if size <= maxMessageBytes {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		switch {
		case size > maxMessageBytes:
			logger.Warn("worker wrote a line over the message limit; skipped", "bytes", size, "limit", maxMessageBytes)
		case len(bytes.TrimSpace(line)) > 0:
			var m Message
			if err := json.Unmarshal(line, &m); err != nil {
				logger.Warn("worker wrote a line that is not a message", "line", string(line[:min(len(line), 200)]))
				break
			}
			p.msgs <- m
		}
		line, size = line[:0], 0
		if err != nil {
			return
		}
	}
}

func (p *localProcess) Messages() <-chan Message { return p.msgs }

// Metered is a Process the scheduler can meter on this machine: the pid to
// read /proc for while it runs, and its rusage once it has exited.
type Metered interface {
	Pid() int
	// ExitUsage returns the CPU-seconds (user + system, with its waited-for
	// children) and peak RSS in bytes of the exited process; ok is false
	// before Wait returned.
	ExitUsage() (cpuSeconds float64, maxRSS int64, ok bool)
}

var _ Metered = (*localProcess)(nil)

func (p *localProcess) Pid() int { return p.cmd.Process.Pid }

func (p *localProcess) ExitUsage() (float64, int64, bool) {
	st := p.cmd.ProcessState
	if st == nil {
		return 0, 0, false
	}
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return st.UserTime().Seconds() + st.SystemTime().Seconds(), 0, true
	}
	return st.UserTime().Seconds() + st.SystemTime().Seconds(), ru.Maxrss * 1024, true // Maxrss is in KiB on Linux
}

func (p *localProcess) Wait() error {
	err := p.cmd.Wait()
	// #nosec G104 -- the child has exited; closing our end of its stdin has nothing to report
	p.stdin.Close()
	if err != nil {
		if tail := bytes.TrimSpace(p.stderr.Bytes()); len(tail) > 0 {
			return fmt.Errorf("worker: %w: %s", err, tail)
		}
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

func (p *localProcess) Kill() {
	p.once.Do(func() {
		if p.cmd.Process != nil {
			// Kill the whole process group: the worker and anything it started.
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - 4096; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
