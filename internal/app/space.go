package app

import (
	"fmt"
	"io"

	"github.com/tailor-ml/tailor/internal/errs"
)

// sized is an upload that knows its length: httpapi's import bodies carry
// the request's Content-Length (-1 when unknown).
type sized interface{ Size() int64 }

// spaceCheckEvery is how many bytes an import reads between two checks of
// the free space while it stages.
const spaceCheckEvery = 8 << 20

// checkSpace refuses an import the disk under the staging folder cannot
// hold. Staging doubles the disk use (the upload is staged, then copied
// into the artifact store before the stage is removed), so an upload of a
// known size needs twice that, plus ImportReserveBytes kept free for the
// metadata store and the logs. It returns r guarded for the rest: an upload
// of unknown length (or one longer than declared) stops as soon as the
// space left could not take a copy of what it has staged.
func (a *App) checkSpace(what string, r io.Reader) (io.Reader, error) {
	dir := a.opts.DataDir // staging/ and blobs/ are under it; staging/ may not exist yet
	free, err := a.opts.FreeSpace(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: check free space under %s: %w", what, dir, err)
	}
	if free < 0 {
		return r, nil // unknown on this platform
	}
	size := int64(-1)
	if s, ok := r.(sized); ok {
		size = s.Size()
	}
	need := a.opts.ImportReserveBytes
	if size > 0 {
		need += 2 * size
	}
	if free < need {
		return nil, a.noSpace(what, dir, size, 0, free)
	}
	return &spaceGuard{a: a, what: what, dir: dir, size: size, r: r}, nil
}

// noSpace words the refusal: what it needs, what is free, what to do.
func (a *App) noSpace(what, dir string, size, staged, free int64) error {
	reserve := a.opts.ImportReserveBytes
	if staged == 0 {
		if size > 0 {
			return errs.InsufficientStorage("%s: %d bytes need %d free under %s (staged, then copied into the artifact store) plus %d kept in reserve, and %d are free: free space on that disk (`tailor gc`) or import less; nothing was stored",
				what, size, 2*size, dir, reserve, free)
		}
		return errs.InsufficientStorage("%s: %d bytes are free under %s, less than the %d kept in reserve: free space on that disk (`tailor gc`); nothing was stored",
			what, free, dir, reserve)
	}
	return errs.InsufficientStorage("%s: stopped after staging %d bytes: %d are free under %s, too few to copy them into the artifact store and keep %d in reserve: free space on that disk (`tailor gc`) or import less; nothing was stored",
		what, staged, free, dir, reserve)
}

// spaceGuard reads an upload and checks the free space every
// spaceCheckEvery bytes.
type spaceGuard struct {
	a         *App
	what, dir string
	size      int64
	r         io.Reader
	read      int64
	checked   int64
	err       error
}

func (g *spaceGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	if g.read-g.checked >= spaceCheckEvery {
		g.checked = g.read
		free, ferr := g.a.opts.FreeSpace(g.dir)
		if ferr != nil {
			g.err = fmt.Errorf("%s: check free space under %s: %w", g.what, g.dir, ferr)
			return n, g.err
		}
		if free >= 0 && free < g.read+g.a.opts.ImportReserveBytes {
			g.err = g.a.noSpace(g.what, g.dir, g.size, g.read, free)
			return n, g.err
		}
	}
	return n, err
}
