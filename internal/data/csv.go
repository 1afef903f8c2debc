package data

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// errRecordTooLarge is returned by guardReader once one CSV record spans
// more bytes than the limit.
var errRecordTooLarge = errors.New("record too large")

// guardReader fails a read once more than max bytes have been read past the
// start of the CSV record being parsed, so a huge quoted field fails fast
// instead of being buffered whole by encoding/csv.
type guardReader struct {
	r     io.Reader
	n     int64        // bytes handed to the csv reader so far
	start func() int64 // offset where the current record starts
	max   int64
}

func (g *guardReader) Read(p []byte) (int, error) {
	if g.n-g.start() > g.max {
		return 0, errRecordTooLarge
	}
	if int64(len(p)) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

// csvColumns maps header names to what they fill, for one task.
func csvColumns(task string) (required []string, known map[string]bool) {
	if task == TaskSFT {
		return []string{"prompt", "completion"}, map[string]bool{"id": true, "prompt": true, "completion": true}
	}
	if task == TaskText {
		return []string{"text"}, map[string]bool{"id": true, "text": true}
	}
	return []string{"text", "label"}, map[string]bool{"id": true, "text": true, "label": true}
}

// ReadCSV streams the records of a CSV file with a header row to fn. The
// header names the columns: classify needs text and label, sft needs prompt
// and completion; id is optional and every other column goes to Metadata as
// a string. Every row must have as many fields as the header. Errors are
// errs.Invalid and name file, line, record and column.
func ReadCSV(ctx context.Context, r io.Reader, o ReadOptions, fn func(Record, Pos) error) error {
	if err := o.defaults(); err != nil {
		return err
	}
	g := &guardReader{r: r, max: int64(o.MaxRecordBytes)}
	cr := csv.NewReader(g)
	g.start = cr.InputOffset
	cr.ReuseRecord = true
	pos := Pos{File: o.FileName, csv: true}
	header, err := readCSVHeader(cr, o.Task, pos)
	if err != nil {
		return err
	}
	next := int64(2) // line where the next record starts, for errors without one
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		pos.Record++
		if err != nil {
			pos.Line = next
			return csvError(err, row, len(header), pos, o.MaxRecordBytes)
		}
		line, _ := cr.FieldPos(0)
		pos.Line = int64(line)
		last, _ := cr.FieldPos(len(row) - 1)
		next = int64(last+strings.Count(row[len(row)-1], "\n")) + 1
		if pos.Record%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := csvRecord(row, header, o.Task, pos)
		if err != nil {
			return err
		}
		if err := fn(rec, pos); err != nil {
			return err
		}
	}
}

func readCSVHeader(cr *csv.Reader, task string, pos Pos) ([]string, error) {
	row, err := cr.Read()
	pos.Line = 1
	if errors.Is(err, io.EOF) {
		return nil, pos.invalidf("empty file: want a header row")
	}
	if err != nil {
		return nil, csvError(err, nil, 0, pos, 0)
	}
	header := make([]string, len(row))
	seen := map[string]bool{}
	for i, name := range row {
		if i == 0 && len(name) >= 3 && name[:3] == string(utf8BOM) {
			name = name[3:]
		}
		switch {
		case !utf8.ValidString(name):
			return nil, pos.invalidf("header column %d: invalid UTF-8", i+1)
		case name == "":
			return nil, pos.invalidf("header column %d: empty name", i+1)
		case seen[name]:
			return nil, pos.invalidf("header column %d: duplicate name %q", i+1, name)
		}
		seen[name] = true
		header[i] = name
	}
	required, _ := csvColumns(task)
	for _, name := range required {
		if !seen[name] {
			return nil, pos.invalidf("header: missing column %q (task %s needs %v)", name, task, required)
		}
	}
	return header, nil
}

func csvError(err error, row []string, want int, pos Pos, max int) error {
	var pe *csv.ParseError
	switch {
	case errors.Is(err, errRecordTooLarge):
		return pos.invalidf("record %d: larger than the limit of %d bytes; split it or raise the record size limit", pos.Record, max)
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		pos.Line = int64(pe.StartLine)
		return pos.invalidf("record %d: ragged row: %d fields, the header has %d", pos.Record, len(row), want)
	case errors.As(err, &pe):
		pos.Line = int64(pe.Line)
		return pos.invalidf("record %d, character %d of the line: %v", pos.Record, pe.Column, pe.Err)
	}
	return fmt.Errorf("read %s: %w", pos.file(), err)
}

// csvRecord builds and validates one record from a CSV row.
func csvRecord(row, header []string, task string, pos Pos) (Record, error) {
	var rec Record
	_, known := csvColumns(task)
	for i, v := range row {
		name := header[i]
		if !utf8.ValidString(v) {
			return Record{}, pos.columnf(name, "invalid UTF-8")
		}
		if !known[name] {
			if rec.Metadata == nil {
				rec.Metadata = make(map[string]any, len(row))
			}
			rec.Metadata[name] = v
			continue
		}
		switch name {
		case "id":
			rec.ID = v
		case "text":
			rec.Text = v
		case "label":
			rec.Label = v
		case "prompt":
			rec.Prompt = v
		case "completion":
			rec.Completion = v
		}
	}
	err := validate(&rec, task, func(field, msg string) error { return pos.fieldf(field, "%s", msg) })
	return rec, err
}
