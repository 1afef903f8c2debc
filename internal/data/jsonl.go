package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// DefaultMaxRecordBytes bounds one input record (one JSONL line, one CSV
// record) unless ReadOptions or ImportOptions say otherwise.
const DefaultMaxRecordBytes = 1 << 20

// ReadOptions configure ReadJSONL and ReadCSV.
type ReadOptions struct {
	Task           string // TaskClassify, TaskSFT or TaskText; required
	FileName       string // used in error messages only
	MaxRecordBytes int    // default DefaultMaxRecordBytes
}

func (o *ReadOptions) defaults() error {
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	return checkTask(o.Task)
}

// utf8BOM is skipped at the start of a file.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ReadJSONL streams the records of a JSONL file to fn, validated for the
// task, one line at a time. Blank lines are skipped. Unknown top-level fields
// are moved into Metadata. Errors are errs.Invalid and name file, line and
// field; fn's errors are returned as they are.
func ReadJSONL(ctx context.Context, r io.Reader, o ReadOptions, fn func(Record, Pos) error) error {
	if err := o.defaults(); err != nil {
		return err
	}
	lr := newLineReader(r, o.MaxRecordBytes)
	pos := Pos{File: o.FileName}
	fast := &fastJSONL{task: o.Task}
	for {
		line, err := lr.next()
		pos.Line = lr.line
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, errLineTooLong) {
			return pos.invalidf("record larger than the limit of %d bytes; split it or raise the record size limit", o.MaxRecordBytes)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", pos.file(), err)
		}
		if pos.Line == 1 {
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if pos.Line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		pos.Record++
		rec, ok := fast.decode(line)
		if !ok {
			var err error
			if rec, err = decodeJSONLine(line, o.Task, pos, !lr.terminated); err != nil {
				return err
			}
		}
		if err := fn(rec, pos); err != nil {
			return err
		}
	}
}

// decodeJSONLine parses one JSONL line into a validated record.
func decodeJSONLine(line []byte, task string, pos Pos, last bool) (Record, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Record{}, jsonLineError(line, pos, last, err)
	}
	if raw == nil {
		return Record{}, pos.invalidf("want a JSON object, got null")
	}
	if f := invalidUTF8Field(raw); f != "" {
		return Record{}, pos.fieldf(f, "invalid UTF-8")
	}
	if !utf8.Valid(line) {
		return Record{}, pos.invalidf("invalid UTF-8 in a field name")
	}
	var rec Record
	if err := decodeFields(&rec, raw, task, pos); err != nil {
		return Record{}, err
	}
	err := validate(&rec, task, func(field, msg string) error { return pos.fieldf(field, "%s", msg) })
	return rec, err
}

func jsonLineError(line []byte, pos Pos, last bool, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		return pos.invalidf("want a JSON object, got %s", jsonKind(line))
	case errors.As(err, &syn) && syn.Offset >= int64(len(line)) && last:
		return pos.invalidf("truncated: the last line ends mid-value (%v)", err)
	case errors.As(err, &syn) && syn.Offset >= int64(len(line)):
		return pos.invalidf("malformed JSON: the line ends mid-value (%v)", err)
	case errors.As(err, &syn):
		return pos.invalidf("malformed JSON at byte %d: %v", syn.Offset, err)
	}
	return pos.invalidf("malformed JSON: %v", err)
}

// decodeFields fills rec from the raw fields of one JSON object.
func decodeFields(rec *Record, raw map[string]json.RawMessage, task string, pos Pos) error {
	known := map[string]*string{"id": &rec.ID}
	switch task {
	case TaskClassify:
		known["text"], known["label"] = &rec.Text, &rec.Label
	case TaskText:
		known["text"] = &rec.Text
	case TaskSFT:
		known["prompt"], known["completion"] = &rec.Prompt, &rec.Completion
	}
	for _, name := range []string{"id", "text", "label", "prompt", "completion"} {
		v, ok := raw[name]
		dst := known[name]
		if !ok || dst == nil {
			continue
		}
		s, err := decodeScalar(name, v)
		if err != nil {
			return pos.fieldf(name, "%v", err)
		}
		*dst = s
	}
	if v, ok := raw["metadata"]; ok {
		md, err := decodeMetadata(v)
		if err != nil {
			return pos.fieldf("metadata", "%v", err)
		}
		rec.Metadata = md
	}
	if v, ok := raw["messages"]; ok && task == TaskSFT {
		ms, err := decodeMessages(v, pos)
		if err != nil {
			return err
		}
		rec.Messages = ms
	}
	return foldUnknown(rec, raw, known, task, pos)
}

// foldUnknown moves top-level fields the task does not know into Metadata.
func foldUnknown(rec *Record, raw map[string]json.RawMessage, known map[string]*string, task string, pos Pos) error {
	var extra []string
	for k := range raw {
		if known[k] != nil || k == "metadata" || (k == "messages" && task == TaskSFT) {
			continue
		}
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		if _, dup := rec.Metadata[k]; dup {
			return pos.fieldf(k, "also present in \"metadata\"")
		}
		v, err := decodeAny(raw[k])
		if err != nil {
			return pos.fieldf(k, "%v", err)
		}
		if rec.Metadata == nil {
			rec.Metadata = map[string]any{}
		}
		rec.Metadata[k] = v
	}
	return nil
}

// decodeScalar accepts a string, or for label and id a number literal
// (id: integers only), and returns it as text. null counts as missing.
func decodeScalar(name string, v json.RawMessage) (string, error) {
	switch k := jsonKind(v); k {
	case "string":
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case "null":
		return "", nil
	case "number":
		lit := string(bytes.TrimSpace(v))
		if name == "label" || (name == "id" && isInteger(lit)) {
			return lit, nil
		}
		if name == "id" {
			return "", fmt.Errorf("want a string or an integer, got %s", lit)
		}
		return "", fmt.Errorf("want a string, got number")
	default:
		if name == "label" {
			return "", fmt.Errorf("want a string or a number, got %s", k)
		}
		return "", fmt.Errorf("want a string, got %s", k)
	}
}

func decodeAny(v json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var out any
	err := d.Decode(&out)
	return out, err
}

func decodeMetadata(v json.RawMessage) (map[string]any, error) {
	switch k := jsonKind(v); k {
	case "null":
		return nil, nil
	case "object":
	default:
		return nil, fmt.Errorf("want an object, got %s", k)
	}
	out, err := decodeAny(v)
	if err != nil {
		return nil, err
	}
	md := out.(map[string]any)
	if len(md) == 0 {
		return nil, nil
	}
	return md, nil
}

func decodeMessages(v json.RawMessage, pos Pos) ([]Message, error) {
	if k := jsonKind(v); k != "array" {
		return nil, pos.fieldf("messages", "want an array of {role, content}, got %s", k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, pos.fieldf("messages", "%v", err)
	}
	if len(items) == 0 {
		return nil, pos.fieldf("messages", "empty")
	}
	out := make([]Message, len(items))
	for i, item := range items {
		field := fmt.Sprintf("messages[%d]", i)
		if k := jsonKind(item); k != "object" {
			return nil, pos.fieldf(field, "want an object {role, content}, got %s", k)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(item, &m); err != nil {
			return nil, pos.fieldf(field, "%v", err)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k != "role" && k != "content" {
				return nil, pos.fieldf(field+"."+k, "unknown key (want role and content)")
			}
		}
		for _, k := range []string{"role", "content"} {
			raw, ok := m[k]
			if !ok {
				return nil, pos.fieldf(field+"."+k, "missing")
			}
			if jsonKind(raw) != "string" {
				return nil, pos.fieldf(field+"."+k, "want a string, got %s", jsonKind(raw))
			}
		}
		_ = json.Unmarshal(m["role"], &out[i].Role)
		_ = json.Unmarshal(m["content"], &out[i].Content)
	}
	return out, nil
}
