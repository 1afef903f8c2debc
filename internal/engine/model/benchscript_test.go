package model

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tailor-ml/tailor/internal/reference"
)

// TestBenchScripts runs scripts/torchref/test_compare.py: the arithmetic of
// `make bench-engine` (model FLOPs per token, each MFU over the peak of its
// own precision, the parsing of this package's benchmark lines).
func TestBenchScripts(t *testing.T) {
	py := reference.Python(t, "torch") // compare.py imports bench.py, which imports torch
	cmd := exec.Command(py, "-m", "unittest", "-v", "test_compare")
	cmd.Dir = filepath.Join("..", "..", "..", "scripts", "torchref")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test_compare.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
