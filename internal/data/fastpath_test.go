package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// fastSeeds are JSONL lines at the edges of the fast path's shape.
var fastSeeds = []string{
	`{"text":"hello","label":"a"}`,
	` { "text" : "hello" , "label" : 3 , "id" : 17 } `,
	`{"text":"a\"b\\c\/d\b\f\n\r\t","label":"x","id":"q\u00e9\u2028"}`,
	`{"text":"pair \ud83d\ude00 lone \ud800 end","label":"x"}`,
	`{"text":"x","label":"1.5e-3","metadata":{"b":1,"a":"s","c":true,"d":null,"e":false}}`,
	`{"text":"x","label":"y","source":"web","score":-0.25,"flag":true,"nothing":null}`,
	`{"text":"x","label":"y","metadata":{"k":1},"k":2}`,
	`{"text":"x","label":"y","metadata":{"k":{"nested":1}}}`,
	`{"text":"x","label":"y","metadata":{}}`,
	`{"text":"x","label":"y","metadata":null,"id":null}`,
	`{"text":"x","label":"y","text":"z"}`,
	`{"text":"x","label":"y","extra":[1,2]}`,
	`{"text":"x","label":true}`,
	`{"text":"x","label":"y","id":1.5}`,
	`{"text":"x","label":"y","id":-0}`,
	`{"text":"x","label":01}`,
	`{"text":"x","label":"y"}` + "\x00",
	`{"text":"x","label":"y"} {}`,
	`{"text":"x\u0000y","label":"y"}`,
	`{"te\u0078t":"x","label":"y"}`,
	`{"prompt":"p","completion":"c","text":"t"}`,
	`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`,
	`{"id":"c1", "messages": [ {"content":"q\n","role":"user"} , {"role":"assistant","content":"a"} ], "lang":"en"}`,
	`{"messages":[{"role":"user","content":"hi","role":"assistant"}]}`,
	`{"messages":[{"role":"user","content":"hi"}]}`,
	`{"messages":[{"role":"bot","content":"hi"}]}`,
	`{"messages":[]}`,
	`{"messages":[{}]}`,
	`{"messages":[{"role":"assistant","content":1}]}`,
	`{"messages":[{"role":"assistant","content":"x","extra":"y"}]}`,
	`{"messages":[{"role":"assistant","content":"x"}],"prompt":"p"}`,
	`{"text":"tab	inside","label":"y"}`,
	`{"text":"x","label":"y",}`,
	`{"text":"x","label":"y"`,
	`[1,2]`,
	`null`,
	`{}`,
}

var fuzzTasks = []string{TaskClassify, TaskSFT, TaskText}

// FuzzFastJSONLAgrees holds the fast JSONL path to encoding/json: whenever
// the fast path takes a line, decodeJSONLine must accept it and give the
// same record, and both canonical encoders must write the same bytes.
func FuzzFastJSONLAgrees(f *testing.F) {
	for i, s := range fastSeeds {
		f.Add([]byte(s), uint8(i))
	}
	for _, file := range []string{"good/classify.jsonl", "good/classify_mixed.jsonl", "good/sft.jsonl", "bad/truncated.jsonl", "bad/bad_utf8.jsonl"} {
		sc := bufio.NewScanner(bytes.NewReader(readFixture(f, file)))
		for sc.Scan() {
			f.Add(append([]byte(nil), sc.Bytes()...), uint8(len(file)))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte, task uint8) {
		checkFastAgrees(t, line, fuzzTasks[int(task)%len(fuzzTasks)])
	})
}

func checkFastAgrees(t *testing.T, line []byte, task string) {
	fast := &fastJSONL{task: task}
	got, ok := fast.decode(line)
	want, err := decodeJSONLine(line, task, Pos{File: "f.jsonl", Line: 1, Record: 1}, false)
	if !ok {
		return // the slow path decides, as it always did
	}
	if err != nil {
		t.Fatalf("%s %q: fast path accepted, encoding/json: %v", task, line, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q:\nfast %#v\njson %#v", task, line, got, want)
	}
	checkCanonicalAgrees(t, &want)
}

// checkCanonicalAgrees wants appendCanonical to write what encoding/json
// writes, whenever it takes the record.
func checkCanonicalAgrees(t *testing.T, r *Record) {
	enc := newCanonicalEncoder()
	want, err := enc.encodeJSON(r)
	if err != nil {
		return
	}
	var keys []string
	got, ok := appendCanonical(nil, r, &keys)
	if ok && !bytes.Equal(got, want) {
		t.Fatalf("record %#v:\nfast %q\njson %q", r, got, want)
	}
}

// FuzzCanonicalAgrees builds records from arbitrary strings (invalid UTF-8,
// control characters, U+2028 included) and compares the canonical encoders.
func FuzzCanonicalAgrees(f *testing.F) {
	f.Add("a", "id-1", "l", "p", "t\n\"x\"\\", "k", "v\u2028\x01", "1.5e3", "assistant", "<&>")
	f.Add("", "", "", "", "\xff\xfe", "", "", "01", "", "\u2029\x7f")
	f.Fuzz(func(t *testing.T, completion, id, label, prompt, text, key, val, num, role, content string) {
		r := Record{Completion: completion, ID: id, Label: label, Prompt: prompt, Text: text}
		if key != "" || val != "" {
			r.Metadata = map[string]any{key: val, key + "#n": json.Number(num), key + "#b": true, key + "#z": nil}
		}
		if role != "" || content != "" {
			r.Messages = []Message{{Role: role, Content: content}, {Role: content, Content: role}}
		}
		checkCanonicalAgrees(t, &r)
		if !isJSONNumber(num) {
			return
		}
		var keys []string
		if _, ok := appendCanonical(nil, &r, &keys); !ok {
			t.Fatalf("appendCanonical refused %#v", r)
		}
	})
}

// TestFastJSONLTakesCommonLines makes sure the fast path is the one taken
// for the generator's lines and the common fixture shapes, so its speed is
// not silently lost to the fallback.
func TestFastJSONLTakesCommonLines(t *testing.T) {
	var gen bytes.Buffer
	if _, err := writeSynthetic(&gen, 200<<10, 3); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, task string
		in         []byte
	}{
		{"synthetic", TaskClassify, gen.Bytes()},
		{"classify.jsonl", TaskClassify, readFixture(t, "good/classify.jsonl")},
		{"sft.jsonl", TaskSFT, readFixture(t, "good/sft.jsonl")},
		{"seeds", TaskClassify, []byte(fastSeeds[0] + "\n" + fastSeeds[1] + "\n" + fastSeeds[2] + "\n" + fastSeeds[4] + "\n" + fastSeeds[5] + "\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := bufio.NewScanner(bytes.NewReader(tc.in))
			sc.Buffer(nil, 1<<20)
			n := 0
			for sc.Scan() {
				line := sc.Bytes()
				if len(bytes.TrimSpace(line)) == 0 {
					continue
				}
				n++
				if _, ok := (&fastJSONL{task: tc.task}).decode(line); !ok {
					t.Errorf("fast path refused %q", line)
				}
				checkFastAgrees(t, line, tc.task)
			}
			if n == 0 {
				t.Fatal("no lines")
			}
		})
	}
}
