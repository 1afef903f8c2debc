package data

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestImportBadInput(t *testing.T) {
	tests := []struct {
		file string
		task string
		want []string // substrings of the error message
	}{
		{"truncated.jsonl", TaskClassify, []string{"truncated.jsonl:3: ", "truncated"}},
		{"bad_utf8.jsonl", TaskClassify, []string{"bad_utf8.jsonl:2: ", `field "text": invalid UTF-8`}},
		{"missing_label.jsonl", TaskClassify, []string{"missing_label.jsonl:3: ", `field "label": missing`}},
		{"missing_text.jsonl", TaskClassify, []string{"missing_text.jsonl:2: ", `field "text": missing`}},
		{"empty_text.jsonl", TaskClassify, []string{"empty_text.jsonl:2: ", `field "text": missing or empty`}},
		{"sft_missing_prompt.jsonl", TaskSFT, []string{"sft_missing_prompt.jsonl:2: ", `field "prompt": missing`}},
		{"sft_missing_completion.jsonl", TaskSFT, []string{"sft_missing_completion.jsonl:3: ", `field "completion": missing`}},
		{"sft_unknown_role.jsonl", TaskSFT, []string{"sft_unknown_role.jsonl:1: ", `field "messages[1].role": unknown role "bot"`}},
		{"sft_message_key.jsonl", TaskSFT, []string{":1: ", `field "messages[1].name": unknown key`}},
		{"sft_no_assistant.jsonl", TaskSFT, []string{":1: ", `field "messages": no assistant message`}},
		{"sft_both.jsonl", TaskSFT, []string{":1: ", `field "messages": not allowed together`}},
		{"dup_ids.jsonl", TaskClassify, []string{"dup_ids.jsonl:3: ", `field "id": duplicate id "a" (first at line 1)`}},
		{"empty.jsonl", TaskClassify, []string{"empty.jsonl: empty: no records"}},
		{"blank.jsonl", TaskClassify, []string{"blank.jsonl: empty: no records"}},
		{"label_bool.jsonl", TaskClassify, []string{":1: ", `field "label": want a string or a number, got boolean`}},
		{"text_number.jsonl", TaskClassify, []string{":1: ", `field "text": want a string, got number`}},
		{"id_float.jsonl", TaskClassify, []string{":1: ", `field "id": want a string or an integer, got 1.5`}},
		{"not_object.jsonl", TaskClassify, []string{"not_object.jsonl:2: ", "want a JSON object, got array"}},
		{"malformed.jsonl", TaskClassify, []string{"malformed.jsonl:2: ", "malformed JSON at byte"}},
		{"metadata_array.jsonl", TaskClassify, []string{":1: ", `field "metadata": want an object, got array`}},
		{"metadata_clash.jsonl", TaskClassify, []string{":1: ", `field "source": also present in "metadata"`}},
		{"reserved_id.jsonl", TaskClassify, []string{":1: ", `field "id": "c-0123": ids starting with "c-" are reserved`}},
		{"ragged.csv", TaskClassify, []string{"ragged.csv:3: ", "record 2: ragged row: 3 fields, the header has 2"}},
		{"csv_missing_label.csv", TaskClassify, []string{"csv_missing_label.csv:3: ", `record 2, column "label": missing`}},
		{"csv_missing_column.csv", TaskClassify, []string{"csv_missing_column.csv:1: ", `header: missing column "label"`}},
		{"csv_bad_utf8.csv", TaskClassify, []string{"csv_bad_utf8.csv:3: ", `record 2, column "text": invalid UTF-8`}},
		{"empty.csv", TaskClassify, []string{"empty.csv:1: ", "empty file: want a header row"}},
		{"header_only.csv", TaskClassify, []string{"header_only.csv: empty: no records"}},
		{"csv_dup_header.csv", TaskClassify, []string{"csv_dup_header.csv:1: ", `header column 3: duplicate name "text"`}},
		{"csv_bad_quote.csv", TaskClassify, []string{"csv_bad_quote.csv:3: ", "record 2, character"}},
		{"sft_csv_missing.csv", TaskSFT, []string{"sft_csv_missing.csv:1: ", `header: missing column "completion"`}},
		{"csv_dup_ids.csv", TaskClassify, []string{"csv_dup_ids.csv:3: ", `record 2, column "id": duplicate id "7" (first at line 2)`}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			st := newMemStore()
			_, err := importBytes(t, st, tc.file, tc.task, readFixture(t, "bad/"+tc.file), nil)
			if err == nil {
				t.Fatal("Import succeeded, want an error")
			}
			t.Log(err)
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error kind %s, want invalid: %v", errs.Kind(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestImportBadOptions(t *testing.T) {
	good := readFixture(t, "good/classify.jsonl")
	tests := []struct {
		name string
		mod  func(*ImportOptions)
		want string
	}{
		{"unknown task", func(o *ImportOptions) { o.Task = "regress" }, `unknown task "regress"`},
		{"unknown format", func(o *ImportOptions) { o.FileName = "x.parquet" }, `unknown format "parquet"`},
		{"split sum", func(o *ImportOptions) { o.Split = SplitRatios{0.5, 0.2, 0.2} }, "want 1"},
		{"split negative", func(o *ImportOptions) { o.Split = SplitRatios{1.2, -0.1, -0.1} }, "[0, 1]"},
		{"append without source", func(o *ImportOptions) { o.Append = &Manifest{ID: "x", Task: TaskClassify} }, "needs a Source"},
		{"append other task", func(o *ImportOptions) {
			o.Append, o.Src = &Manifest{ID: "x", Task: TaskSFT}, newMemStore()
		}, `differs from the parent version's task "sft"`},
		{"chunking", func(o *ImportOptions) { o.Chunking = Chunking{Bits: 4, MinRecords: 9, MaxRecords: 3} }, "chunking"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := importBytes(t, newMemStore(), "emails.jsonl", TaskClassify, good, tc.mod)
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want invalid containing %q", err, tc.want)
			}
		})
	}
}

// endless yields one JSONL line that never ends, and counts bytes read.
type endless struct {
	prefix string
	n      int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n == 0 && len(p) > 0 && e.prefix != "" {
		n := copy(p, e.prefix)
		e.n += int64(n)
		return n, nil
	}
	if e.n > 10<<20 {
		return 0, io.EOF
	}
	for i := range p {
		p[i] = 'a'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestRecordTooLargeFailsFast(t *testing.T) {
	for _, format := range []string{FormatJSONL, FormatCSV} {
		t.Run(format, func(t *testing.T) {
			src := &endless{prefix: `{"text":"`}
			var r io.Reader = src
			if format == FormatCSV {
				src.prefix = ""
				r = io.MultiReader(strings.NewReader("text,label\n\""), src)
			}
			o := ImportOptions{Task: TaskClassify, FileName: "big." + format, MaxRecordBytes: 1 << 20}
			_, err := Import(context.Background(), r, o, newMemStore())
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "larger than the limit of 1048576 bytes") {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), "big."+format+":") {
				t.Errorf("error %q does not name the file", err)
			}
			t.Log(err)
			if src.n > 3<<20 {
				t.Errorf("read %d bytes before failing, want about 1 MiB", src.n)
			}
		})
	}
}

func TestReadAcceptsVariants(t *testing.T) {
	var got []Record
	err := ReadJSONL(context.Background(), bytes.NewReader(readFixture(t, "good/classify_mixed.jsonl")),
		ReadOptions{Task: TaskClassify, FileName: "mixed.jsonl"}, func(r Record, _ Pos) error {
			got = append(got, r)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d records, want 5", len(got))
	}
	if got[0].Label != "1" || got[3].ID != "17" || got[4].Text != "last line without newline" {
		t.Errorf("numbers not converted as documented: %+v", got)
	}
	if got[3].Metadata["extra"] == nil {
		t.Errorf("unknown field not folded into metadata: %+v", got[3].Metadata)
	}
	var sft []Record
	err = ReadCSV(context.Background(), bytes.NewReader(readFixture(t, "good/sft.csv")),
		ReadOptions{Task: TaskSFT, FileName: "sft.csv"}, func(r Record, p Pos) error {
			sft = append(sft, r)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(sft) != 2 || sft[1].Prompt != "Write a haiku\nabout rain" || sft[1].Metadata["topic"] != "poetry" {
		t.Errorf("sft csv: %+v", sft)
	}
}
