package tokenizer

import (
	"regexp"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"` // "system", "user" or "assistant" ("tool" and others for ChatML)
	Content string `json:"content"`
}

// ChatFormat names a recognized chat template family.
type ChatFormat string

// The recognized chat formats.
const (
	ChatML      ChatFormat = "chatml"  // <|im_start|>role\n…<|im_end|> (Qwen2, SmolLM)
	ChatLlama2  ChatFormat = "llama2"  // <s>[INST] <<SYS>>…<</SYS>> … [/INST]
	ChatLlama3  ChatFormat = "llama3"  // <|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>
	ChatMistral ChatFormat = "mistral" // <s>[INST] … [/INST]…</s>
)

type chatFormat struct {
	kind          ChatFormat
	defaultSystem string // ChatML: system turn added when the first message is not one
	llama31       bool   // Llama 3.1: "Cutting Knowledge Date" system preamble
	bos, eos      string
}

var chatMLDefaultSystem = regexp.MustCompile(`<\|im_start\|>system(?:\\n|\n)([^'"{}<]*)<\|im_end\|>`)

// detectChat recognizes the chat format from the template source, or from
// the special tokens when there is no template.
func detectChat(template string, t *Tokenizer) (chatFormat, error) {
	f := chatFormat{bos: "<s>", eos: "</s>"}
	if t.bos >= 0 {
		f.bos = t.tokens[t.bos]
	}
	if t.eos >= 0 {
		f.eos = t.tokens[t.eos]
	}
	has := func(tok string) bool { _, ok := t.ids[tok]; return ok }
	switch {
	case template == "":
		switch {
		case has("<|im_start|>") && has("<|im_end|>"):
			f.kind = ChatML
		case has("<|start_header_id|>") && has("<|eot_id|>"):
			f.kind = ChatLlama3
			f.bos = "<|begin_of_text|>"
		default:
			return f, errs.Invalid("chat: tokenizer_config.json has no chat_template and the vocabulary has no ChatML or Llama 3 chat tokens")
		}
	case strings.Contains(template, "<|im_start|>"):
		f.kind = ChatML
		if m := chatMLDefaultSystem.FindStringSubmatch(template); m != nil {
			f.defaultSystem = m[1]
		}
	case strings.Contains(template, "<|start_header_id|>"):
		f.kind = ChatLlama3
		f.llama31 = strings.Contains(template, "Cutting Knowledge Date")
		if !strings.Contains(template, "bos_token") && strings.Contains(template, "<|begin_of_text|>") {
			f.bos = "<|begin_of_text|>"
		}
	case strings.Contains(template, "[INST]") && strings.Contains(template, "<<SYS>>"):
		f.kind = ChatLlama2
	case strings.Contains(template, "[INST]"):
		f.kind = ChatMistral
	default:
		return f, errs.Invalid("chat: chat_template in tokenizer_config.json is not a recognized format (ChatML, Llama 2, Llama 3, Mistral); Tailor has no Jinja engine, so format the prompt as plain text instead")
	}
	return f, nil
}

// ChatFormat returns the recognized chat format, or an error saying why
// there is none.
func (t *Tokenizer) ChatFormat() (ChatFormat, error) {
	if t.chatErr != nil {
		return "", t.chatErr
	}
	return t.chat.kind, nil
}

// ApplyChat renders messages in the tokenizer's chat format. The result
// already holds the BOS token where the format has one, so encode it with
// addSpecial false. addGenerationPrompt appends the opening of an
// assistant turn (ChatML, Llama 3; the [INST] formats end with [/INST]).
func (t *Tokenizer) ApplyChat(messages []Message, addGenerationPrompt bool) (string, error) {
	if t.chatErr != nil {
		return "", t.chatErr
	}
	if len(messages) == 0 {
		return "", errs.Invalid("chat: no messages")
	}
	for i, m := range messages {
		if m.Role == "" {
			return "", errs.Invalid("chat: message %d: empty role", i)
		}
	}
	f := t.chat
	switch f.kind {
	case ChatML:
		return f.chatML(messages, addGenerationPrompt), nil
	case ChatLlama3:
		return f.llama3(messages, addGenerationPrompt)
	case ChatLlama2, ChatMistral:
		return f.inst(messages)
	}
	return "", errs.Invalid("chat: no chat format")
}

func (f chatFormat) chatML(msgs []Message, gen bool) string {
	var sb strings.Builder
	if f.defaultSystem != "" && msgs[0].Role != "system" {
		sb.WriteString("<|im_start|>system\n" + f.defaultSystem + "<|im_end|>\n")
	}
	for _, m := range msgs {
		sb.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if gen {
		sb.WriteString("<|im_start|>assistant\n")
	}
	return sb.String()
}

func (f chatFormat) llama3(msgs []Message, gen bool) (string, error) {
	var sb strings.Builder
	sb.WriteString(f.bos)
	header := func(role string) {
		sb.WriteString("<|start_header_id|>" + role + "<|end_header_id|>\n\n")
	}
	if f.llama31 {
		system := ""
		if msgs[0].Role == "system" {
			system = strings.TrimSpace(msgs[0].Content)
			msgs = msgs[1:]
		}
		header("system")
		sb.WriteString("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + system + "<|eot_id|>")
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant", "ipython", "tool":
		default:
			return "", errs.Invalid("chat: message %d: role %q is not system, user or assistant", i, m.Role)
		}
		header(m.Role)
		sb.WriteString(strings.TrimSpace(m.Content) + "<|eot_id|>")
	}
	if gen {
		header("assistant")
	}
	return sb.String(), nil
}

// inst renders the Llama 2 and Mistral [INST] formats. Roles after an
// optional leading system message must alternate user/assistant starting
// with user. Llama 2 wraps the system message in <<SYS>>; Mistral has no
// system role, so it is put before the first user message, separated by a
// blank line.
func (f chatFormat) inst(msgs []Message) (string, error) {
	system, hasSystem := "", false
	if msgs[0].Role == "system" {
		system, hasSystem = msgs[0].Content, true
		msgs = msgs[1:]
	}
	var sb strings.Builder
	if f.kind == ChatMistral {
		sb.WriteString(f.bos)
	}
	for i, m := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			n := i
			if hasSystem {
				n++
			}
			return "", errs.Invalid("chat: message %d: role %q, want %q (roles must alternate user/assistant after an optional system message)", n, m.Role, want)
		}
		content := m.Content
		if i == 0 && hasSystem {
			if f.kind == ChatLlama2 {
				content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
			} else {
				content = system + "\n\n" + content
			}
		}
		switch {
		case f.kind == ChatLlama2 && want == "user":
			sb.WriteString(f.bos + "[INST] " + strings.TrimSpace(content) + " [/INST]")
		case f.kind == ChatLlama2:
			sb.WriteString(" " + strings.TrimSpace(content) + " " + f.eos)
		case want == "user":
			sb.WriteString("[INST] " + content + " [/INST]")
		default:
			sb.WriteString(content + f.eos)
		}
	}
	return sb.String(), nil
}
