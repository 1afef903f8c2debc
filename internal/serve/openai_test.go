package serve_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tailor-ml/tailor/internal/reference"
	"github.com/tailor-ml/tailor/internal/serve"
)

const openaiDir = "../../scripts/openai"

// openaiClient is the pinned openai package's install prefix.
func openaiClient(t *testing.T) string { return reference.OpenAI(t, openaiDir) }

func TestOfficialOpenAIClient(t *testing.T) {
	prefix := openaiClient(t)
	w := newWorld(t, serve.Options{}, nil)
	cmd := exec.Command("node", filepath.Join(openaiDir, "client.js"), prefix, w.http.URL+"/v1")
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.js: %v", err)
	}
	type use struct{ Prompt_tokens, Completion_tokens, Total_tokens int }
	var out struct {
		Version string
		Models  []string
		Chat    struct {
			Content, Finish, Object string
			Usage                   use
		}
		Stream struct {
			Content, Finish string
			Usage           use
			Chunks          int
		}
		Completion struct {
			Text, Finish string
			Usage        use
		}
		Unknown struct {
			Status                     int
			Code, Type, Param, Message string
		}
	}
	must(t, json.Unmarshal(raw, &out))
	t.Logf("openai %s: %s", out.Version, raw)
	if !slices.Contains(out.Models, "spam@champion") || !slices.Contains(out.Models, "tiny") || !slices.Contains(out.Models, "chat@v1") {
		t.Errorf("models %v", out.Models)
	}
	if out.Chat.Object != "chat.completion" || out.Chat.Finish == "" || out.Chat.Usage.Completion_tokens < 1 ||
		out.Chat.Usage.Total_tokens != out.Chat.Usage.Prompt_tokens+out.Chat.Usage.Completion_tokens {
		t.Errorf("chat %+v", out.Chat)
	}
	if out.Stream.Content != out.Chat.Content || out.Stream.Finish != out.Chat.Finish || out.Stream.Usage != out.Chat.Usage || out.Stream.Chunks < 3 {
		t.Errorf("stream %+v differs from chat %+v", out.Stream, out.Chat)
	}
	if out.Completion.Finish == "" || out.Completion.Usage.Completion_tokens < 1 {
		t.Errorf("completion %+v", out.Completion)
	}
	if u := out.Unknown; u.Status != 404 || u.Code != "model_not_found" || u.Type != "invalid_request_error" || u.Param != "model" {
		t.Errorf("unknown model %+v", u)
	}
}
