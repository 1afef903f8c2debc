package tokenizer

import (
	"encoding/json"
	"strings"
	"testing"
)

// Abbreviated chat_template sources, as found in tokenizer_config.json of
// the model families (only the markers detection relies on matter).
const (
	tmplQwen2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
	tmplSmol  = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
	tmplL3    = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
	tmplL2    = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
	tmplMis   = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}"
)

func chatConfig(tmpl, bos, eos string) string {
	m := map[string]any{"chat_template": tmpl, "bos_token": bos, "eos_token": eos}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestApplyChat(t *testing.T) {
	conv := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Sum 2+2?"}}
	noSys := conv[1:]
	for _, tc := range []struct {
		name   string
		config string
		msgs   []Message
		gen    bool
		format ChatFormat
		want   string
	}{
		{"qwen2 default system", chatConfig(tmplQwen2, "", "<|im_end|>"), noSys[:1], true, ChatML,
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
		{"smollm", chatConfig(tmplSmol, "<|im_start|>", "<|im_end|>"), conv[:2], false, ChatML,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"},
		{"llama3", chatConfig(tmplL3, "<|begin_of_text|>", "<|eot_id|>"), conv[:2], true, ChatLlama3,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama2", chatConfig(tmplL2, "<s>", "</s>"), conv, false, ChatLlama2,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Sum 2+2? [/INST]"},
		{"mistral", chatConfig(tmplMis, "<s>", "</s>"), noSys, false, ChatMistral,
			"<s>[INST] Hi [/INST]Hello!</s>[INST] Sum 2+2? [/INST]"},
		{"tokens only", "", noSys[:1], true, ChatML,
			"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := loadTiny(t, tc.config)
			if f, err := tok.ChatFormat(); err != nil || f != tc.format {
				t.Fatalf("ChatFormat = %q, %v; want %q", f, err, tc.format)
			}
			got, err := tok.ApplyChat(tc.msgs, tc.gen)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ApplyChat =\n%q\nwant\n%q", got, tc.want)
			}
			// The special tokens in the prompt encode as single ids.
			ids := tok.Encode(got, false)
			if !tok.IsSpecial(ids[0]) {
				t.Errorf("prompt starts with %d, not a special token", ids[0])
			}
		})
	}
}

func TestApplyChatErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string
		msgs   []Message
		want   string
	}{
		{"unknown template", chatConfig("{{ messages }}", "<s>", "</s>"), []Message{{"user", "x"}}, "no Jinja engine"},
		{"no messages", chatConfig(tmplQwen2, "", ""), nil, "no messages"},
		{"alternation", chatConfig(tmplMis, "<s>", "</s>"), []Message{{"user", "a"}, {"user", "b"}}, "message 1"},
		{"empty role", chatConfig(tmplQwen2, "", ""), []Message{{"", "a"}}, "message 0: empty role"},
		{"llama3 role", chatConfig(tmplL3, "<|begin_of_text|>", ""), []Message{{"narrator", "a"}}, "role \"narrator\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := loadTiny(t, tc.config)
			_, err := tok.ApplyChat(tc.msgs, true)
			if err == nil || !isInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ApplyChat: err = %v, want invalid mentioning %q", err, tc.want)
			}
		})
	}
}
